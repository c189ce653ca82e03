"""Scale tests on real records: `academichub bench generate`, `bench web` and `bench scale`.

The generator replicates the recorded arXiv records (the OAI-PMH quant-ph harvest and the RSS
announcement day in ../shared/data/arxiv) into as many papers as asked, as OAI-PMH files in arXiv's
own `arXiv` metadata format, so they go through the real importer (`academichub ingest FILE…`)
like any harvest. Each copy is marked synthetic three ways, so nobody mistakes it for a paper:

- a new arXiv id in a range arXiv has not reached: `9NNN.IIIII` (new-style ids started at 0704
  in 2007; `90xx`–`99xx` would be the years 2090–2099), copy NNN of record IIIII;
- a DOI under Crossref's test prefix 10.5555 (`10.5555/academichub-synthetic.9NNN.IIIII`), never
  the real record's DOI;
- the title ends in "(synthetic copy N)", the comments say "SYNTHETIC benchmark record …" and the
  OAI header's setSpec is `synthetic`.

The text, authors and categories are the real record's, so search, facets and ranking see
realistic words and distributions.

`bench web` starts a real `academichub serve` process and loads it with `wrk` (or, without wrk,
an httpx load generator in a separate process) next to a bare FastAPI page served by the same
uvicorn setup in the same run. `bench scale` imports the synthetic sets into SQLite and
PostgreSQL through the real CLI and measures rates, peak memory and one-client search latency,
with the bare lxml + sqlite3 + FTS5 loader as the same-run baseline (and, for PostgreSQL, its
twin that COPYs the same fields into one table with the papers table's `tsvector` and GIN index)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from rich.console import Console

from .errors import AcademicHubError
from .terminal import plain_console

SYNTHETIC_SET = "synthetic"
SYNTHETIC_DOI_PREFIX = "10.5555/academichub-synthetic."
FIRST_COPY = 9000  # arXiv id prefix of copy 0: 9000.IIIII … 9999.IIIII
MAX_COPIES = 1000
MAX_INDEX = 100_000  # five-digit record numbers
FILE_RECORDS = 50_000  # records per generated file

_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
         '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
         "<responseDate>2026-01-01T00:00:00Z</responseDate>"
         '<request verb="ListRecords" metadataPrefix="arXiv" set="synthetic">https://example.invalid/oai</request>'
         "<ListRecords>\n")
_TAIL = "</ListRecords></OAI-PMH>\n"
_SYNTHETIC_ID = re.compile(r"^9[0-9]{3}\.[0-9]{5}$")


def synthetic_id(copy: int, index: int) -> str:
    """The arXiv id of copy `copy` of recorded record `index` (never a real arXiv id)."""
    if not 0 <= copy < MAX_COPIES or not 0 <= index < MAX_INDEX:
        raise ValueError(f"copy {copy} / record {index} out of the synthetic range")
    return f"{FIRST_COPY + copy:04d}.{index:05d}"


def is_synthetic_id(arxiv_id: str) -> bool:
    return bool(_SYNTHETIC_ID.match(arxiv_id or ""))


def recorded_records(shared_data: Path) -> list:
    """The recorded arXiv records, parsed by the product's own parsers: OAI quant-ph, then the RSS day."""
    from .sources.arxiv_oai import iter_oai
    from .sources.arxiv_rss import parse_rss

    oai_files = sorted((shared_data / "arxiv/oai-quant-ph").glob("*.xml"))
    rss_file = shared_data / "arxiv/rss/2024-11-28-all-archives.xml"
    if not oai_files or not rss_file.is_file():
        raise AcademicHubError(f"recorded arXiv data not found under {shared_data} (give --shared-data)")
    records = []
    for file in oai_files:
        with open(file, "rb") as handle:
            for record in iter_oai(handle, str(file)):
                if not record.categories:  # the harvest was of the quant-ph set
                    record.categories = ["quant-ph"]
                records.append(record)
    records.extend(parse_rss(rss_file.read_bytes(), str(rss_file)).papers)
    return records


def _template(record) -> str:
    """One record in arXiv's OAI metadata format, with {id}, {doi} and {copy} left to fill."""
    def field(tag: str, value) -> str:
        return f"<{tag}>{escape(str(value))}</{tag}>" if value else ""

    def brace(text: str) -> str:  # escaped text that survives str.format
        return text.replace("{", "{{").replace("}", "}}")

    authors = []
    for author in record.authors:
        forenames, _, keyname = author.name.rpartition(" ")
        parts = field("keyname", keyname) + field("forenames", forenames)
        if author.affiliation:
            parts += field("affiliation", author.affiliation)
        authors.append(f"<author>{parts}</author>")
    created = record.submitted.date().isoformat() if record.submitted else (
        record.announced.isoformat() if record.announced else None)
    note = f"SYNTHETIC benchmark record (AcademicHub bench generate), copy {{copy}} of arXiv:{record.arxiv_id}; not a real paper."
    body = "".join((
        "<title>", brace(escape(record.title)), " (synthetic copy {copy})</title>",
        brace(field("created", created)),
        "<authors>", brace("".join(authors)), "</authors>",
        brace(field("categories", " ".join(record.categories))),
        "<comments>", brace(escape(record.comments + " ")) if record.comments else "", note, "</comments>",
        brace(field("journal-ref", record.journal_ref)),
        "<doi>{doi}</doi>",
        brace(field("license", record.license)),
        brace(field("abstract", record.abstract)),
    ))
    return ("<record><header><identifier>oai:arXiv.org:{id}</identifier><datestamp>2026-01-01</datestamp>"
            f"<setSpec>{SYNTHETIC_SET}</setSpec></header><metadata>"
            '<arXiv xmlns="http://arxiv.org/OAI/arXiv/"><id>{id}</id>' + body + "</arXiv></metadata></record>\n")


@dataclass(slots=True)
class Generated:
    files: list[Path]
    papers: int
    recorded: int  # distinct recorded records replicated
    seconds: float


def generate(shared_data: Path, papers: int, output: Path, *, file_records: int = FILE_RECORDS) -> Generated:
    """Write `papers` synthetic records into `output` (synthetic-NNNN.xml, `file_records` each):
    copy 0 of every recorded record, then copy 1, … Existing synthetic-*.xml files there are
    replaced."""
    start = time.perf_counter()
    records = recorded_records(shared_data)
    if papers < 1:
        raise AcademicHubError("--papers must be at least 1")
    if papers > len(records) * MAX_COPIES:
        raise AcademicHubError(f"at most {len(records) * MAX_COPIES:,} synthetic papers can be made from {len(records):,} records")
    templates = [_template(r) for r in records]
    output.mkdir(parents=True, exist_ok=True)
    for old in output.glob("synthetic-*.xml"):
        old.unlink()
    files: list[Path] = []
    handle = None
    made = 0
    try:
        while made < papers:
            copy, index = divmod(made, len(templates))
            if made % file_records == 0:
                if handle is not None:
                    handle.write(_TAIL)
                    handle.close()
                path = output / f"synthetic-{len(files):04d}.xml"
                files.append(path)
                handle = open(path, "w", encoding="utf-8")
                handle.write(_HEAD)
            ident = synthetic_id(copy, index)
            handle.write(templates[index].format(id=ident, doi=SYNTHETIC_DOI_PREFIX + ident, copy=copy))
            made += 1
    finally:
        if handle is not None:
            handle.write(_TAIL)
            handle.close()
    return Generated(files, made, min(len(records), papers), time.perf_counter() - start)


# ----------------------------------------------------------------------------- processes

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _product_env(data_dir: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of an `academichub` child: its own store and data_dir, no sample day, no
    embedding or candidate files on ingest (an import is timed alone), no scheduler, this
    checkout's source first on the path."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(ACADEMICHUB_DATA_DIR=str(data_dir), ACADEMICHUB_LOAD_SAMPLE="false", ACADEMICHUB_EMBED_ON_INGEST="false",
               ACADEMICHUB_CANDIDATES_ON_INGEST="false", ACADEMICHUB_SCHEDULER="false", ACADEMICHUB_DEFAULT_LANGUAGE="en")
    env.pop("ACADEMICHUB_DATABASE_URL", None)
    if database_url:
        env["ACADEMICHUB_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def _cli(*args: str) -> list[str]:
    """`academichub ARGS` with this interpreter (and the PYTHONPATH of _product_env)."""
    return [sys.executable, "-c", "import sys; from academichub.cli import app; sys.argv[0] = 'academichub'; app()", *args]


@dataclass(slots=True)
class Measured:
    """What one child process took: wall time and its peak resident memory (from wait4)."""

    seconds: float
    peak_rss_mb: float
    output: str


def run_measured(argv: list[str], env: dict[str, str], *, what: str) -> Measured:
    """Run a child to completion, timing it and reading its peak RSS (ru_maxrss of that child alone)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    text = out.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise AcademicHubError(f"{what} failed (exit {proc.returncode}): {text[-2000:]}")
    return Measured(seconds, usage.ru_maxrss / 1024, text)


def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 300.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise AcademicHubError(f"the server on port {port} exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)
    raise AcademicHubError(f"the server on port {port} did not listen within {timeout:.0f} s (log {log})")


class ServerProcess:
    """A server in its own process, stopped (SIGINT, then kill) on exit."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log: Path):
        self.port, self.log = port, log
        self._handle = open(log, "wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._handle, stderr=subprocess.STDOUT)
        self.started = time.perf_counter()

    def __enter__(self) -> "ServerProcess":
        self.ready_s = _wait_listening(self.port, self.proc, self.log)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._handle.close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# ----------------------------------------------------------------------------- the bare page

def bare_app():
    """The baseline: a bare FastAPI page of 20 static cards (no database, no template engine)."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    cards = "".join(
        f'<article class="card"><h2><a href="/papers/{i}">A static paper title number {i}</a></h2>'
        f"<p class=\"authors\">Ada Lovelace, Alan Turing</p><p>{'An abstract sentence of a static card. ' * 8}</p></article>"
        for i in range(20)
    )
    page = f"<!doctype html><html lang=en><head><meta charset=utf-8><title>bare</title></head><body>{cards}</body></html>"
    application = FastAPI()

    @application.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    return application


def _serve_bare(port: int) -> None:
    """`python -m academichub.bench_scale bare PORT`: the bare page under uvicorn as `serve` runs it."""
    import uvicorn

    uvicorn.run(bare_app(), host="127.0.0.1", port=port, log_level="info")


# ----------------------------------------------------------------------------- load

@dataclass(slots=True)
class Load:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str


_WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise AcademicHubError(f"wrk printed a latency I cannot read: {text!r}")
    return float(match.group(1)) * _WRK_UNITS[match.group(2)]


def parse_wrk(output: str) -> Load:
    """req/s, p50, p99 and errors (socket errors of every kind + non-2xx/3xx) from `wrk --latency`."""
    def grab(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, output, re.M)
        if match is None:
            if default is None:
                raise AcademicHubError(f"wrk output without {pattern!r}: {output[-1500:]}")
            return default
        return match.group(1)

    errors = 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    errors += int(grab(r"Non-2xx or 3xx responses: (\d+)", "0"))
    requests = int(grab(r"^\s*(\d+) requests in"))
    return Load(requests=requests, rps=float(grab(r"^Requests/sec:\s+([0-9.]+)")),
                p50_ms=_wrk_ms(grab(r"^\s+50%\s+(\S+)", "0us")) if requests else float("nan"),
                p99_ms=_wrk_ms(grab(r"^\s+99%\s+(\S+)", "0us")) if requests else float("nan"),
                errors=errors, tool="wrk")


def load(url: str, *, connections: int, duration: float, timeout: float = 10.0) -> Load:
    """Load `url` with `connections` open connections for `duration` seconds, from another process:
    wrk when installed (2 threads), else this module's httpx load generator (`load` below)."""
    wrk = shutil.which("wrk")
    if wrk:
        proc = subprocess.run([wrk, f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration:g}s", "--latency",
                               f"--timeout={timeout:g}s", url], capture_output=True, text=True)
        if proc.returncode != 0:
            raise AcademicHubError(f"wrk failed on {url}: {proc.stderr or proc.stdout}")
        return parse_wrk(proc.stdout)
    proc = subprocess.run([sys.executable, "-m", "academichub.bench_scale", "load", url, str(connections), str(duration),
                           str(timeout)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise AcademicHubError(f"the httpx load generator failed on {url}: {proc.stderr[-1500:]}")
    import json

    return Load(**json.loads(proc.stdout))


def _httpx_load(url: str, connections: int, duration: float, timeout: float) -> dict:
    """The fallback load generator: `connections` asyncio workers over one httpx client, each
    asking again as soon as its answer is read (as wrk does)."""
    import asyncio
    import json

    import httpx

    async def main() -> dict:
        latencies: list[float] = []
        errors = 0
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            stop = time.perf_counter() + duration

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < stop:
                    start = time.perf_counter()
                    try:
                        response = await client.get(url)
                        await response.aread()
                        if response.status_code >= 400:
                            errors += 1
                        else:
                            latencies.append(time.perf_counter() - start)
                    except httpx.HTTPError:
                        errors += 1

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - start
        latencies.sort()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e3 if latencies else float("nan")

        return {"requests": len(latencies) + errors, "rps": len(latencies) / elapsed, "p50_ms": pct(0.5),
                "p99_ms": pct(0.99), "errors": errors, "tool": "httpx (separate process)"}

    return json.loads(json.dumps(asyncio.run(main())))


# ----------------------------------------------------------------------------- bench web

RADAR = "bench"
RADAR_ARGS = ("--keyword", "entanglement", "--keyword", "quantum error correction", "--category", "quant-ph",
              "--interest", "Entanglement, quantum error correction and quantum networks.")
UNKEPT_ROUTES = (f"/?radar={RADAR}", "/?seed=1")  # timed one client, a URL of their own each time
WEB_ROUTES = ("/", f"/?radar={RADAR}", f"/api/radars/{RADAR}/rank?limit=20", "/?q=entanglement", "/briefing")


def prepare_store(shared_data: Path, papers: int, data_dir: Path, database_url: str | None = None,
                  console: Console | None = None) -> Measured | None:
    """A store of `papers` synthetic papers and the radar `bench` in `data_dir`, made through the
    CLI (`academichub ingest`, `academichub radar create`); reused when data_dir already holds one of
    that size (a marker file says so). Returns the import's measure, None when reused."""
    marker = data_dir / f"bench-store-{papers}.done"
    if marker.is_file() and not database_url:
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    generated = generate(shared_data, papers, data_dir / "synthetic")
    if console:
        console.print(f"generated {generated.papers:,} synthetic papers in {generated.seconds:.1f} s")
    env = _product_env(data_dir, database_url)
    measured = run_measured(_cli("ingest", *map(str, generated.files)), env, what="academichub ingest")
    run_measured(_cli("radar", "create", RADAR, *RADAR_ARGS), env, what="academichub radar create")
    shutil.rmtree(data_dir / "synthetic")
    marker.write_text(f"{papers}\n")
    return measured


def _one_client(base: str, routes, rounds: int) -> dict[str, float]:
    import httpx

    figures = {}
    with httpx.Client(base_url=base, timeout=120) as client:
        for route in routes:
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                response = client.get(route)
                times.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise AcademicHubError(f"{base}{route} answered {response.status_code}")
            figures[route] = statistics.median(times)
    return figures


def run_web_bench(shared_data: Path | None, *, papers: int = 15_000, connections: int = 32, duration: float = 15.0,
                  data_dir: Path | None = None, rounds: int = 5, console: Console | None = None) -> dict:
    """`academichub bench web`: a real `academichub serve` process over a synthetic store, each route
    loaded at `connections` connections for `duration` s, next to the bare page in the same run."""
    from .bench import default_shared_data

    console = console or plain_console()
    data = Path(shared_data) if shared_data else default_shared_data()
    tool = "wrk" if shutil.which("wrk") else "httpx load generator (separate process)"
    with tempfile.TemporaryDirectory(prefix="academichub-bench-web-") as tmp:
        folder = Path(data_dir) if data_dir else Path(tmp) / "store"
        measured = prepare_store(data, papers, folder, console=console)
        if measured:
            console.print(f"stored {papers:,} papers through `academichub ingest` in {measured.seconds:.1f} s")
        else:
            console.print(f"reusing the store of {papers:,} papers in {folder}")

        port = _free_port()
        with ServerProcess([sys.executable, "-m", "academichub.bench_scale", "bare", str(port)], _product_env(folder),
                           port, Path(tmp) / "bare.log") as bare:
            _one_client(bare.base, ["/"], 3)  # warm
            bare_load = load(bare.base + "/", connections=connections, duration=duration)

        port = _free_port()
        env = _product_env(folder, ACADEMICHUB_PORT=str(port), ACADEMICHUB_HOST="127.0.0.1")
        with ServerProcess(_cli("serve"), env, port, Path(tmp) / "serve.log") as server:
            import httpx

            start = time.perf_counter()
            first = httpx.get(f"{server.base}/?radar={RADAR}", timeout=900)
            first_s = time.perf_counter() - start
            if first.status_code != 200:
                raise AcademicHubError(f"first radar page answered {first.status_code}")
            one = _one_client(server.base, WEB_ROUTES, rounds)
            # each a URL of its own: rendered, not a kept page (web/page_cache.py keeps pages per request)
            unkept = {route: statistics.median(_one_client(server.base, [f"{route}&view={n}" for n in range(rounds)], 1).values())
                      for route in UNKEPT_ROUTES}
            loads = {route: load(server.base + route, connections=connections, duration=duration) for route in WEB_ROUTES}

    workers = int(os.environ.get("ACADEMICHUB_WORKERS") or 0) or os.cpu_count() or 1
    console.print(f"academichub bench web: {papers:,} papers, SQLite, {connections} connections x {duration:g} s per route "
                  f"({tool}; `academichub serve` with {workers} worker process{'es' if workers > 1 else ''}, "
                  f"the bare page in one; {os.cpu_count()} CPUs)")
    line = "{:<42} {:>12} {:>9} {:>10} {:>10} {:>7} {:>9}"
    console.print(line.format("route", "1 client p50", "req/s", "p50", "p99", "errors", "vs bare"))
    console.print(line.format("bare FastAPI page (20 static cards)", "", f"{bare_load.rps:,.0f}", f"{bare_load.p50_ms:,.0f} ms",
                              f"{bare_load.p99_ms:,.0f} ms", bare_load.errors, "100%"))
    for route in WEB_ROUTES:
        f = loads[route]
        console.print(line.format(route, f"{one[route] * 1e3:,.0f} ms", f"{f.rps:,.1f}", f"{f.p50_ms:,.0f} ms",
                                  f"{f.p99_ms:,.0f} ms", f.errors, f"{f.rps / bare_load.rps:.1%}"))
    for route, seconds in unkept.items():
        console.print(line.format(f"{route} (a new URL each: rendered)", f"{seconds * 1e3:,.0f} ms", "", "", "", "", ""))
    console.print(line.format("first radar page after start", f"{first_s * 1e3:,.0f} ms", "", "", "", "", ""))
    console.print(line.format("server start (until it listens)", f"{server.ready_s * 1e3:,.0f} ms", "", "", "", "", ""))
    return {"bare": bare_load, "routes": loads, "one_client": one, "unkept": unkept, "first_radar_s": first_s,
            "ready_s": server.ready_s}



# ----------------------------------------------------------------------------- bench scale

SCALE_SIZES = (15_000, 150_000, 1_000_000)


def _pg_database(server_url: str, name: str, *, drop: bool = False) -> str:
    """A fresh database `name` on the PostgreSQL server of `server_url` (its URL), or dropped."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if not drop:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@dataclass(slots=True)
class Imported:
    store: str
    papers: int
    seconds: float
    startup_s: float
    peak_rss_mb: float
    first_search_s: float
    url: str

    @property
    def rate(self) -> float:
        return self.papers / max(self.seconds - self.startup_s, 1e-9)


def _count(url: str) -> int:
    from .store.database import open_store
    from .store.papers import count_papers

    engine = open_store(url, upgrade=False)
    try:
        with engine.connect() as conn:
            return count_papers(conn)
    finally:
        engine.dispose()


def run_scale_bench(shared_data: Path | None, *, serve, sizes=SCALE_SIZES, pg_url: str | None = None,
                    stores=("sqlite", "postgresql"), rounds: int = 5, work_dir: Path | None = None,
                    console: Console | None = None) -> dict:
    """`academichub bench scale`: each size's synthetic set imported by `academichub ingest` into a
    fresh SQLite store and (with `pg_url`) a fresh PostgreSQL database, timed as a whole process
    with its peak RSS; the bare loader on the same files in the same run; then one-client search
    latency on each store (`serve(engine)` yields get(url, params), as for bench search)."""
    from contextlib import ExitStack

    from .bench import default_shared_data

    console = console or plain_console()
    data = Path(shared_data) if shared_data else default_shared_data()
    if "postgresql" in stores and not pg_url:
        stores = tuple(s for s in stores if s != "postgresql")
        console.print("no --pg-url: PostgreSQL left out")
    results: dict = {"imports": [], "floor": {}, "pg_floor": {}, "search": {}}
    databases: list[str] = []
    with ExitStack() as cleanup:
        # the databases go whatever happens (a failed run used to leave academichub_scale_* behind)
        cleanup.callback(lambda: [_pg_database(pg_url, name, drop=True) for name in databases])
        latency = _import_and_measure(data, serve, sizes, stores, pg_url, rounds, work_dir, console, results,
                                       databases)

    line = "{:<10} {:>10} {:>9} {:>12} {:>13} {:>10} {:>13} {:>11} {:>12} {:>13}"
    console.print(f"academichub bench scale ({os.cpu_count()} CPUs; `academichub ingest` as a whole process, "
                  "rates net of its start-up; bare PG: the same fields COPYed with the papers table's tsvector and GIN index)")
    console.print(line.format("store", "papers", "seconds", "rec/s", "bare loader", "vs bare", "bare PG", "vs bare PG",
                              "peak RSS", "searchable"))
    for imp in results["imports"]:
        floor = results["floor"][imp.papers]
        pg_floor = results["pg_floor"].get(imp.papers) if imp.store == "postgresql" else None
        console.print(line.format(imp.store, f"{imp.papers:,}", f"{imp.seconds:,.0f}", f"{imp.rate:,.0f}", f"{floor:,.0f}",
                                  f"{imp.rate / floor:.0%}", f"{pg_floor:,.0f}" if pg_floor else "",
                                  f"{imp.rate / pg_floor:.0%}" if pg_floor else "", f"{imp.peak_rss_mb:,.0f} MiB",
                                  f"{imp.seconds + imp.first_search_s:,.0f} s"))
    from .bench_search import QUERIES

    for store, figures in latency.items():
        console.print(f"search latency, GET /?q= (one client, p50 ms; {store})")
        head = "{:<30}" + " {:>20}" * len(sizes) + " {:>10}"
        console.print(head.format("query", *(f"{s:,}" for s in sizes), f"{sizes[-1] // 1000}k/{sizes[0] // 1000}k"))
        for q in QUERIES:
            cells = [f"{figures[s]['matches'][q]} | {figures[s]['page'][q]['p50'] * 1e3:,.0f}" for s in sizes]
            ratio = figures[sizes[-1]]["page"][q]["p50"] / figures[sizes[0]]["page"][q]["p50"]
            console.print(head.format(q, *cells, f"x{ratio:.2f}"))
    return results


def _import_and_measure(data: Path, serve, sizes, stores, pg_url, rounds: int, work_dir, console, results: dict,
                        databases: list[str]) -> dict:
    """`run_scale_bench`'s imports and searches; each PostgreSQL database made is named in
    `databases` as soon as it exists, for the caller to drop."""
    from contextlib import ExitStack

    from sqlalchemy.engine import make_url

    from .bench import bare_loader, bare_pg_loader
    from .bench_search import measure
    from .store.database import open_store

    with tempfile.TemporaryDirectory(prefix="academichub-bench-scale-", dir=work_dir) as tmp, ExitStack() as stack:
        folder = Path(tmp)
        one = generate(data, 1, folder / "one")
        for size in sizes:
            made = generate(data, size, folder / "gen")
            console.print(f"{size:,}: generated in {made.seconds:.0f} s")
            start = time.perf_counter()
            floor_n = bare_loader(made.files, folder / f"floor-{size}.db")
            floor_s = time.perf_counter() - start
            results["floor"][size] = floor_n / floor_s
            (folder / f"floor-{size}.db").unlink()
            if "postgresql" in stores:
                databases.append("academichub_scale_bare")
                bare_url = _pg_database(pg_url, "academichub_scale_bare")
                start = time.perf_counter()
                floor_n = bare_pg_loader(made.files, make_url(bare_url).set(drivername="postgresql")
                                         .render_as_string(hide_password=False))
                results["pg_floor"][size] = floor_n / (time.perf_counter() - start)
                _pg_database(pg_url, "academichub_scale_bare", drop=True)
                console.print(f"{size:,}: bare PostgreSQL loader {results['pg_floor'][size]:,.0f} rec/s")
            for store in stores:
                data_dir = folder / f"{store}-{size}"
                data_dir.mkdir()
                if store == "postgresql":
                    databases.extend((f"academichub_scale_{size}", "academichub_scale_startup"))
                url = (_pg_database(pg_url, f"academichub_scale_{size}") if store == "postgresql"
                       else f"sqlite:///{data_dir / 'academichub.db'}")
                env = _product_env(data_dir, url)
                # start-up: the same command on a one-paper file into a store of its own
                warm_dir = folder / f"{store}-{size}-startup"
                warm_dir.mkdir()
                warm_url = (_pg_database(pg_url, f"academichub_scale_startup") if store == "postgresql"
                            else f"sqlite:///{warm_dir / 'academichub.db'}")
                run_measured(_cli("ingest", str(one.files[0])), _product_env(warm_dir, warm_url), what="warm-up ingest")
                startup = run_measured(_cli("ingest", str(one.files[0])), _product_env(warm_dir, warm_url),
                                       what="start-up ingest")
                if store == "postgresql":
                    _pg_database(pg_url, "academichub_scale_startup", drop=True)
                measured = run_measured(_cli("ingest", *map(str, made.files)), env, what=f"academichub ingest ({store})")
                stored = _count(url)
                if stored != size:
                    raise AcademicHubError(f"{store}: {stored:,} papers stored of {size:,} generated")
                # searchable: a user's first search, `academichub papers search` as a whole process
                first = run_measured(_cli("papers", "search", "entanglement", "--format", "json"), env,
                                     what=f"academichub papers search ({store})").seconds
                engine = open_store(url, upgrade=False)
                stack.callback(engine.dispose)
                results["search"][(store, size)] = stack.enter_context(serve(engine))
                imported = Imported(store, size, measured.seconds, startup.seconds, measured.peak_rss_mb, first, url)
                results["imports"].append(imported)
                pg_floor = f"; bare PG {results['pg_floor'][size]:,.0f} rec/s" if store == "postgresql" else ""
                console.print(f"{size:,} into {store}: {measured.seconds:.0f} s ({imported.rate:,.0f} rec/s net of "
                              f"{startup.seconds:.1f} s start-up; bare loader {results['floor'][size]:,.0f} rec/s{pg_floor}), "
                              f"peak RSS {measured.peak_rss_mb:,.0f} MiB, searchable after "
                              f"{measured.seconds + first:.0f} s")
            shutil.rmtree(folder / "gen")
        latency = {}
        for store in stores:
            gets = {size: results["search"][(store, size)] for size in sizes}
            latency[store] = measure(gets, rounds=rounds)
        results["latency"] = latency
    return latency


if __name__ == "__main__":  # the bare page's server and the fallback load generator, as child processes
    if sys.argv[1] == "bare":
        _serve_bare(int(sys.argv[2]))
    elif sys.argv[1] == "load":
        import json

        print(json.dumps(_httpx_load(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))))
