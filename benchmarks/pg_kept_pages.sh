#!/bin/bash
# Kept pages on a PostgreSQL server shared with a busy database: `academichub serve` (one worker)
# over the same synthetic store in two databases, one per source tree, each route under
# `wrk -t2 -c32 -d5s`, the trees alternating, while another database of the server is committed
# every ~3 ms (benchmarks/data_version.py's neighbour); then once with the neighbour stopped.
#
#   benchmarks/pg_kept_pages.sh OLD_SRC NEW_SRC OAI_FILE [PG_SERVER_URL] [DB_PREFIX]
#
# OAI_FILE: e.g. `academichub bench generate --papers 15000 --output DIR`'s synthetic-0000.xml.
# Every database it makes is named DB_PREFIX_* (default academichub_kept) and dropped at the end.
set -euo pipefail
OLD_SRC=$1 NEW_SRC=$2 OAI=$3
PG=${4:-postgresql+psycopg://postgres@127.0.0.1:5432}
PREFIX=${5:-academichub_kept}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python}
ADMIN=${PG/+psycopg/}
WORK=$(mktemp -d)
export ACADEMICHUB_LOAD_SAMPLE=false ACADEMICHUB_EMBED_ON_INGEST=false ACADEMICHUB_CANDIDATES_ON_INGEST=false \
  ACADEMICHUB_SCHEDULER=false ACADEMICHUB_DEFAULT_LANGUAGE=en ACADEMICHUB_WORKERS=1 ACADEMICHUB_HOST=127.0.0.1
src() { if [ "$1" = old ]; then echo "$OLD_SRC"; else echo "$NEW_SRC"; fi; }
CLI="import sys; from academichub.cli import app; sys.argv[0] = 'academichub'; app()"
cli() { local tree=$1; shift
  ACADEMICHUB_DATA_DIR=$WORK/data_$tree PYTHONPATH=$(src "$tree") ACADEMICHUB_DATABASE_URL=$PG/${PREFIX}_$tree \
    $PY -c "$CLI" "$@"; }
sql() { psql "$ADMIN/postgres" -qc "$1"; }
cleanup() {
  [ -n "${NB:-}" ] && kill "$NB" 2>/dev/null || true
  [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
  for db in old new neighbour; do sql "DROP DATABASE IF EXISTS ${PREFIX}_$db WITH (FORCE)"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
for tree in old new; do
  sql "DROP DATABASE IF EXISTS ${PREFIX}_$tree WITH (FORCE)"; sql "CREATE DATABASE ${PREFIX}_$tree"
  mkdir -p "$WORK/data_$tree"
  cli $tree ingest "$OAI" | tail -1
  cli $tree radar create bench --keyword entanglement --keyword "quantum error correction" --category quant-ph \
    --interest "Entanglement, quantum error correction and quantum networks." | tail -1
done
sql "DROP DATABASE IF EXISTS ${PREFIX}_neighbour WITH (FORCE)"; sql "CREATE DATABASE ${PREFIX}_neighbour"
run() {  # TREE LABEL
  local tree=$1 label=$2 port=$((18000 + RANDOM % 1000)) i route r load
  # a simple command in the background, so $! is the server itself (not a subshell) and kill ends it
  ACADEMICHUB_PORT=$port ACADEMICHUB_DATA_DIR=$WORK/data_$tree PYTHONPATH=$(src "$tree") \
    ACADEMICHUB_DATABASE_URL=$PG/${PREFIX}_$tree $PY -c "$CLI" serve > "$WORK/serve_$tree.log" 2>&1 &
  local pid=$!
  SERVER=$pid
  local ready=
  for i in $(seq 1 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/" && ready=1 && break; sleep 0.2; done
  if [ -z "$ready" ]; then
    echo "$label $tree: serve did not answer; its log ends:"; tail -5 "$WORK/serve_$tree.log"
    kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; return 0
  fi
  curl -s -o /dev/null --max-time 600 "http://127.0.0.1:$port/?radar=bench" || true  # warm: the first ranking
  curl -s -o /dev/null --max-time 600 "http://127.0.0.1:$port/?q=entanglement" || true
  for route in "/?q=entanglement" "/?radar=bench"; do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    r=$( (wrk -t2 -c32 -d5s --latency "http://127.0.0.1:$port$route" || true) | awk '/Requests\/sec/{rps=$2} / 99%/{p99=$2} /Non-2xx/{e=$NF} END{print rps " req/s, p99 " p99 ", non-2xx " (e?e:0)}')
    echo "$label $tree $route: $r (load average before: $load)"
  done
  grep -m3 -i "error\|too many" "$WORK/serve_$tree.log" || true  # what a non-2xx was
  kill $pid; wait $pid 2>/dev/null || true
}
PYTHONPATH=$NEW_SRC $PY "$HERE/data_version.py" --neighbour "$ADMIN/${PREFIX}_neighbour" & NB=$!
sleep 1
for pair in 1 2; do run old "busy, pair $pair"; run new "busy, pair $pair"; done
kill $NB; wait $NB 2>/dev/null || true; NB=
run old quiet; run new quiet
