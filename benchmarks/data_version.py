"""µs per `DataVersion.token()` call on PostgreSQL (store/data_version.py), the token before
migration 0014 (`pg_current_snapshot()` over a pooled connection) beside the current one,
alternating in one run: one thread, and 8 threads at once (wall time per call).

    PYTHONPATH=src python benchmarks/data_version.py --database-url postgresql+psycopg://HOST/DB [--rows 1000]

`--rows N` first puts N rows in `data_version_xacts` (what a reader counts just before a
compaction) and takes them out again at the end. The database must be migrated (0014).

    python benchmarks/data_version.py --neighbour postgresql://HOST/OTHER_DB

commits to OTHER_DB every ~3 ms until stopped: the busy neighbour of benchmarks/pg_kept_pages.sh."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from academichub.store.data_version import DataVersion
from academichub.store.database import open_store


def per_call_us(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def threaded_us(fn, threads: int, n: int) -> float:
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(pool.map(lambda _: per_call_us(fn, n), range(threads)))
        return (time.perf_counter() - start) / (n * threads) * 1e6


def busy_neighbour(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ticks (n integer)")
        while True:
            conn.execute("INSERT INTO ticks VALUES (1)")
            time.sleep(0.003)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--neighbour", help="commit to this database (a plain libpq URL) every ~3 ms until stopped")
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.neighbour:
        busy_neighbour(args.neighbour)
        return
    if not args.database_url:
        parser.error("--database-url or --neighbour")
    engine = open_store(args.database_url)
    new = DataVersion(engine)
    fake = range(-args.rows, 0)  # negative ids: never a transaction's
    if args.rows:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO data_version_xacts (xid) SELECT g FROM generate_series(CAST(:a AS bigint), CAST(:b AS bigint)) g"),
                         {"a": -args.rows, "b": -1})

    def old() -> str:
        with engine.connect() as conn:
            return conn.execute(text("SELECT pg_current_snapshot()::text")).scalar_one()

    try:
        for fn in (old, new.token):
            per_call_us(fn, 500)
        results: dict[str, list[float]] = {"old, 1 thread": [], "new, 1 thread": [], "old, 8 threads": [], "new, 8 threads": []}
        for _ in range(args.rounds):
            results["old, 1 thread"].append(per_call_us(old, 3000))
            results["new, 1 thread"].append(per_call_us(new.token, 3000))
            results["old, 8 threads"].append(threaded_us(old, 8, 500))
            results["new, 8 threads"].append(threaded_us(new.token, 8, 500))
    finally:
        if args.rows:
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM data_version_xacts WHERE xid < 0"))
        new.close_watcher()
        engine.dispose()
    print(f"DataVersion.token() on PostgreSQL, {len(fake)} rows to count, {args.rounds} rounds, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, values in results.items():
        print(f"  {name:15s} µs per call: min {min(values):7.1f}  median {statistics.median(values):7.1f}  max {max(values):7.1f}")
    for threads in ("1 thread", "8 threads"):
        ratio = statistics.median(results[f"new, {threads}"]) / statistics.median(results[f"old, {threads}"])
        print(f"  new / old, {threads} (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
