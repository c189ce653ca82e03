"""`academichub bench search`: search latency as the store grows, through the web's own path.

Stores of 15,000 and 150,000 papers are built from the recorded OAI (quant-ph) and RSS (one
announcement day) records, replicated under new arXiv ids (bench._derived_copies), as issue 17
did. Each named query is then asked of the feed page, GET /?q=… on the real app (ranked search,
facets, page render), and of the API; p50, min and max are printed per size, and the growth
150k/15k, which must stay at or under ×2: the ranked set is capped (store/search.py), so no
search reads every match for its count, facets and page. The stores hold no vectors: the
figures are the lexical path (the semantic side adds one matrix product over the stored
vectors, measured by `bench rank`)."""

from __future__ import annotations

import json
import statistics
import tempfile
from contextlib import ExitStack
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .errors import AcademicHubError
from .bench import _derived_copies, _fresh_engine, default_shared_data
from .terminal import add_text_row, plain_console

QUERIES = ("graph neural network", "quantum error correction", "图神经网络", "entanglement", "Multiscale Hodge Scattering")
SIZES = (15_000, 150_000)


def _records(data: Path) -> list:
    from .sources.arxiv_oai import iter_oai
    from .sources.arxiv_rss import parse_rss

    records = []
    for file in sorted((data / "arxiv/oai-quant-ph").glob("*.xml")):
        with open(file, "rb") as handle:
            records.extend(iter_oai(handle, str(file)))
    rss_file = data / "arxiv/rss/2024-11-28-all-archives.xml"
    records.extend(parse_rss(rss_file.read_bytes(), str(rss_file)).papers)
    return records


def build_store(folder: Path, records: list, size: int):
    """A SQLite store of `size` distinct papers made from the recorded ones."""
    from .ingest.pipeline import store_stream

    engine = _fresh_engine(folder, f"search{size}")
    copies = -(-size // len(records))
    stream = (r for i, r in enumerate(_derived_copies(records, copies)) if i < size)
    store_stream(engine, stream, batch_size=5000, commit_each_batch=True)
    return engine


def measure(gets: dict[int, object], queries=QUERIES, rounds: int = 9) -> dict[int, dict]:
    """{size: {"page"|"api": {query: {p50, min, max}}, "matches": {query: "1,000+"}}} in seconds.
    `gets[size](url, params) -> (status, text)`: a request to the real app over that store (the
    command line passes a test client; this layer may not import the web front end). Rounds
    alternate between the sizes, so that a busy machine slows both alike."""
    times: dict[tuple[int, str, str], list[float]] = {}
    figures: dict[int, dict] = {size: {"page": {}, "api": {}, "matches": {}} for size in gets}
    for size, get in gets.items():
        for q in queries:  # warm: the first query of a kind loads the index pages
            get("/", {"q": q})
            status, body = get("/api/papers", {"q": q})
            found = json.loads(body)
            figures[size]["matches"][q] = f"{found['total']:,}{'+' if found.get('capped') else ''}"
    for _ in range(rounds):
        for path, url in (("page", "/"), ("api", "/api/papers")):
            for q in queries:
                for size, get in gets.items():
                    start = time.perf_counter()
                    status, _ = get(url, {"q": q})
                    times.setdefault((size, path, q), []).append(time.perf_counter() - start)
                    if status != 200:
                        raise AcademicHubError(f"{url}?q={q} answered {status}")
    for (size, path, q), ts in times.items():
        figures[size][path][q] = {"p50": statistics.median(ts), "min": min(ts), "max": max(ts)}
    return figures


def run_search_bench(shared_data: Path | None, *, serve, sizes=SIZES, rounds: int = 15,
                     console: Console | None = None) -> dict:
    """`serve(engine)`: a context manager yielding get(url, params) -> status over the web app."""
    console = console or plain_console()
    data = Path(shared_data) if shared_data else default_shared_data()
    records = _records(data)
    with tempfile.TemporaryDirectory(prefix="academichub-bench-search-") as tmp, ExitStack() as stack:
        gets = {}
        for size in sizes:
            start = time.perf_counter()
            engine = build_store(Path(tmp), records, size)
            stack.callback(engine.dispose)
            console.print(f"{size:,} papers stored in {time.perf_counter() - start:.0f} s")
            gets[size] = stack.enter_context(serve(engine))
        results = measure(gets, rounds=rounds)
    small, large = sizes[0], sizes[-1]
    ratios = {}
    for path in ("page", "api"):
        table = Table(title=f"search latency, {'GET /?q= (page)' if path == 'page' else 'GET /api/papers?q='} (SQLite, ms)")
        table.add_column("query")
        for size in sizes:
            table.add_column(f"{size:,}: matches", justify="right")
            table.add_column(f"{size:,}: p50 (min–max)", justify="right")
        table.add_column(f"{large // 1000}k / {small // 1000}k", justify="right")
        for q in QUERIES:
            cells = []
            for size in sizes:
                f = results[size][path][q]
                cells.append(results[size]["matches"][q])
                cells.append(f"{f['p50'] * 1e3:.0f} ({f['min'] * 1e3:.0f}–{f['max'] * 1e3:.0f})")
            ratio = results[large][path][q]["p50"] / results[small][path][q]["p50"]
            ratios[(path, q)] = ratio
            add_text_row(table, q, *(str(c) for c in cells), f"×{ratio:.2f}")
        console.print(table)
    worst = max(r for (path, _), r in ratios.items() if path == "page")
    worst_api = max(r for (path, _), r in ratios.items() if path == "api")
    console.print(f"worst growth {small:,} → {large:,}: page ×{worst:.2f} (goal: at most ×2), API ×{worst_api:.2f} "
                  "(a query with more matches at the larger size returns more papers to serialise)")
    return {"figures": results, "ratios": ratios, "worst": worst}
