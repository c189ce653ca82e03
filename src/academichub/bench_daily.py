"""`academichub bench daily`: one simulated announcement day through the daily loop, end to end,
and the same loop for many radars on 1, 2 and 4 worker processes.

The day is the recorded arXiv RSS announcement (1,504 items), its records replicated under new
arXiv ids up to the size asked for (as issue 17 replicated records to reach 150,000), served by a
local HTTP server; radars are made from the day's own categories, authors and title words. The
embedding is left out of the loop (it is measured apart, `academichub embed` / `bench rank`), so
the figures are those of fetching, merging, ranking, briefing and delivering."""

from __future__ import annotations

import copy
import os
import time
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from lxml import etree

from .errors import AcademicHubError
from .sources.xmlsafe import parse_xml

RECORDED_DAY = "arxiv/rss/2024-11-28-all-archives.xml"
_EASTERN = timezone(timedelta(hours=-5))


def day_feed(recorded: bytes, day: date, size: int) -> bytes:
    """The recorded announcement moved to `day`, with `size` items: the recorded ones first, then
    copies under new arXiv ids (the month part moved on by one per round of copies)."""
    root = parse_xml(recorded, RECORDED_DAY)
    channel = root.find("channel")
    stamp = format_datetime(datetime.combine(day, dtime(), _EASTERN))
    for node in root.iter("pubDate", "lastBuildDate"):
        node.text = stamp
    items = channel.findall("item")
    for item in items[size:]:
        channel.remove(item)
    used = {_arxiv_id(item) for item in items}
    made, round_ = len(items), 0
    while made < size:
        round_ += 1
        for item in items:
            if made >= size:
                break
            clone = _renumbered(item, round_)
            if _arxiv_id(clone) not in used:  # an old id moved on may land on one of the day's own
                used.add(_arxiv_id(clone))
                channel.append(clone)
                made += 1
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _arxiv_id(item) -> str:
    return item.findtext("link").rsplit("/", 1)[-1]


def _renumbered(item, round_: int):
    clone = copy.deepcopy(item)
    old = _arxiv_id(clone)
    yymm, number = old.split(".", 1)
    year, month = divmod(int(yymm[:2]) * 12 + int(yymm[2:]) - 1 + round_, 12)
    new = f"{year:02d}{month + 1:02d}.{number}"
    for node in clone.iter():
        if node.text and old in node.text:
            node.text = node.text.replace(old, new)
        if isinstance(node.tag, str) and node.tag.endswith("}DOI") and node.text:
            node.text = f"{node.text}.copy{round_}"  # one DOI is one work: a copy needs its own
    return clone


@dataclass(frozen=True)
class RadarPlan:
    name: str
    categories: tuple[str, ...]
    keywords: tuple[str, ...]
    authors: tuple[str, ...]
    interest: str | None


def radar_plans(feed: bytes, count: int) -> list[RadarPlan]:
    """`count` radars a lab might have, from the day itself: each follows one of the day's busy
    categories, a frequent title word of that category and one of its authors; every third also has
    an interest statement (a title of the day)."""
    from .sources.arxiv_rss import parse_rss

    papers = parse_rss(feed, "day").papers
    by_category: dict[str, list] = {}
    for paper in papers:
        if paper.categories:
            by_category.setdefault(paper.categories[0], []).append(paper)
    busy = [c for c, _ in Counter({c: len(p) for c, p in by_category.items()}).most_common(40)]
    plans = []
    for i in range(count):
        category = busy[i % len(busy)]
        group = by_category[category]
        words = Counter(w.lower().strip(".,:;()") for p in group for w in p.title.split() if len(w) > 6)
        keyword = [w for w, _ in words.most_common(5)][i // len(busy) % 5] if words else category
        author = group[(7 * i) % len(group)].authors[0].name if group[(7 * i) % len(group)].authors else None
        interest = group[(3 * i) % len(group)].title if i % 3 == 0 else None
        plans.append(RadarPlan(f"radar-{i:04d}", (category,), (keyword,), (author,) if author else (), interest))
    return plans


class _DayServer(ThreadingHTTPServer):
    daemon_threads = True


@contextmanager
def serve_day(feed: bytes) -> Iterator[tuple[str, list[str]]]:
    """A local arXiv: every /rss/… path answers the day's feed. Yields (base URL, requests seen)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 - http.server naming
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(feed)))
            self.end_headers()
            self.wfile.write(feed)

    server = _DayServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/rss/", seen
    finally:
        server.shutdown()
        server.server_close()


def recorded_day(shared_data: Path) -> bytes:
    return (Path(shared_data) / RECORDED_DAY).read_bytes()


# ----------------------------------------------------------------------------- the loop, measured

ALL_ARCHIVES = ("astro-ph+cond-mat+physics+quant-ph+math+cs+econ+eess+gr-qc+hep-ex+hep-lat+hep-ph+hep-th+math-ph"
                "+nlin+nucl-ex+nucl-th+q-bio+q-fin+stat")
BRIEF_AT = dtime(8, 0)  # UTC on the feed's day: after its announcement, past every radar's hour (0)


@dataclass
class LoopRun:
    """One day through the loop: seconds per phase and what the ledger says was done."""

    label: str
    fetch: float  # tick → the day fetched, merged and the candidates refreshed (no open job)
    brief: float  # tick → every radar briefed and delivered
    jobs: Counter
    papers: int

    @property
    def total(self) -> float:
        return self.fetch + self.brief


def _settings(data_dir: Path, base_url: str, **overrides):
    from .settings import load_settings

    values = dict(data_dir=data_dir, arxiv_rss_url=base_url, arxiv_min_interval=0.0, embed_on_ingest=False,
                  scheduler=False, load_sample=False, briefing_hour=0, timezone="UTC", worker_concurrency=2,
                  queue_name=f"academichub-bench-{os.getpid()}")
    values.update(overrides)
    return load_settings(**values)


def _clock(day: date):
    """Real time, moved to `day` at BRIEF_AT: the ledger's timestamps stay real durations."""
    start, origin = time.monotonic(), datetime.combine(day, BRIEF_AT, timezone.utc)
    return lambda: origin + timedelta(seconds=time.monotonic() - start)


def _set_up(hub, plans: list[RadarPlan]) -> None:
    from .store.radars import add_rule, create_radar, default_user
    from .store.sources import add_source

    with hub.writing() as conn:
        add_source(conn, name="arxiv", kind="arxiv", params={"archives": ALL_ARCHIVES}, label="arXiv", now=hub.now())
        user = default_user(conn)
        for plan in plans:
            radar = create_radar(conn, user_id=user, name=plan.name, interest=plan.interest)
            for kind, values in (("category", plan.categories), ("keyword", plan.keywords), ("author", plan.authors)):
                for value in values:
                    add_rule(conn, radar, kind, value)


def _wait(jobs, poll: float = 0.05, timeout: float = 3600.0) -> None:
    deadline = time.monotonic() + timeout
    while not jobs.idle():
        if time.monotonic() > deadline:
            raise AcademicHubError("bench daily: the jobs did not finish within an hour")
        time.sleep(poll)


def _ledger_counts(engine) -> Counter:
    from .store.jobs import recent

    with engine.connect() as conn:
        return Counter(f"{job.name}:{job.status}" for job in recent(conn, 100_000))


def _loop(label: str, jobs) -> LoopRun:
    """Tick, wait for the fetch and what follows it, tick again (the briefings are due), wait."""
    from .store.papers import count_papers

    start = time.perf_counter()
    jobs.tick()
    _wait(jobs)
    fetched = time.perf_counter()
    jobs.tick()
    _wait(jobs)
    done = time.perf_counter()
    with jobs.hub.reading() as conn:
        papers = count_papers(conn)
    return LoopRun(label, fetched - start, done - fetched, _ledger_counts(jobs.hub.engine), papers)


def _inline(label: str, hub, plans: list[RadarPlan], day: date) -> LoopRun:
    """The baseline: the same use cases called one after another in this process, no queue, no ledger."""
    from .store.papers import count_papers

    start = time.perf_counter()
    hub.run_sources(["arxiv"])
    hub.refresh_candidates()
    fetched = time.perf_counter()
    for plan in plans:
        hub.write_briefing(plan.name, day)
        hub.deliver(plan.name, day)
    done = time.perf_counter()
    with hub.reading() as conn:
        papers = count_papers(conn)
    return LoopRun(label, fetched - start, done - fetched, Counter(), papers)


def run_embedded(feed: bytes, plans: list[RadarPlan], day: date, folder: Path, *, threads: int = 2) -> tuple[LoopRun, LoopRun]:
    """The README's set-up: SQLite, Huey's SQLite queue consumed by threads in this process (as
    inside `serve`). Beside it, in the same run, the inline baseline on a fresh store."""
    from .app.hub import Hub
    from .workers import JobQueue

    with serve_day(feed) as (base, _seen):
        inline_dir = folder / "inline"
        hub = Hub(_settings(inline_dir, base), clock=_clock(day))
        _set_up(hub, plans)
        baseline = _inline("inline, no queue (baseline)", hub, plans, day)
        hub.close()

        queued_dir = folder / "embedded"
        settings = _settings(queued_dir, base, worker_concurrency=threads)
        hub = Hub(settings, clock=_clock(day))
        _set_up(hub, plans)
        queue = JobQueue(settings, hub=hub)
        queue.start_in_process(threads)
        try:
            run = _loop(f"serve's queue, {threads} threads", queue.jobs)
        finally:
            queue.stop()
            hub.close()
    return run, baseline


def _fresh_database(url: str, name: str) -> str:
    """A new PostgreSQL database beside the one `url` names (dropped first if it exists)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def run_workers(feed: bytes, plans: list[RadarPlan], day: date, folder: Path, *, processes: int,
                database_url: str, queue_url: str) -> LoopRun:
    """`processes` × `academichub worker --concurrency 1` on Redis and a fresh PostgreSQL database;
    this process only ticks (the scheduler), as a server with `scheduler` on would."""
    import subprocess
    import sys

    from .app.hub import Hub
    from .workers import JobQueue

    url = _fresh_database(database_url, f"academichub_bench_daily_{processes}")
    with serve_day(feed) as (base, _seen):
        settings = _settings(folder / f"workers-{processes}", base, database_url=url, queue_url=queue_url,
                             queue_name=f"academichub-bench-{os.getpid()}-{processes}")
        hub = Hub(settings, clock=_clock(day))
        _set_up(hub, plans)
        queue = JobQueue(settings, hub=hub)
        queue.huey.flush()
        env = {**os.environ, "ACADEMICHUB_DATABASE_URL": url, "ACADEMICHUB_QUEUE_URL": queue_url,
               "ACADEMICHUB_QUEUE_NAME": settings.queue_name, "ACADEMICHUB_SCHEDULER": "false",
               "ACADEMICHUB_ARXIV_RSS_URL": base, "ACADEMICHUB_ARXIV_MIN_INTERVAL": "0",
               "ACADEMICHUB_EMBED_ON_INGEST": "false", "ACADEMICHUB_DATA_DIR": str(settings.data_dir),
               "ACADEMICHUB_BRIEFING_HOUR": "0", "ACADEMICHUB_TIMEZONE": "UTC"}
        workers = [subprocess.Popen([sys.executable, "-c", "from academichub.cli import app; app()", "worker", "--concurrency", "1"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(processes)]
        try:
            time.sleep(3.0)  # the workers start (imports, the store opened) before the clock runs
            run = _loop(f"{processes} worker process{'es' if processes > 1 else ''}", queue.jobs)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(30)
            queue.huey.flush()
            hub.close()
    return run


def _row(table, run: LoopRun, radars: int, base: LoopRun | None) -> None:
    from .terminal import add_text_row

    ratio = f"{base.total / run.total:.2f}×" if base else "1.00×"
    if run.jobs:
        done = sum(v for k, v in run.jobs.items() if k.endswith(":done"))
        failed = sum(v for k, v in run.jobs.items() if not k.endswith(":done"))
        ledger = f"{run.jobs['brief:done']}/{run.jobs['deliver:done']}/{done}/{failed}"
    else:
        ledger = "-"
    add_text_row(table, run.label, f"{run.papers:,}", f"{run.fetch:.1f}", f"{run.brief:.1f}",
                  f"{radars / run.brief:.1f}" if run.brief else "", f"{run.total:.1f}", ratio, ledger)


def run_daily_bench(shared_data: Path | None, *, papers: int = 2000, radars: int = 100, scale_radars: int = 1000,
                    processes: tuple[int, ...] = (1, 2, 4), database_url: str | None = None,
                    queue_url: str | None = None, console=None) -> dict:
    """One simulated day of `papers` papers and `radars` radars on the embedded default, beside the
    inline baseline; then `scale_radars` radars on 1, 2, 4 worker processes (Redis + PostgreSQL)
    when both URLs are given."""
    import tempfile

    from rich.table import Table

    from .bench import default_shared_data
    from .terminal import plain_console

    console = console or plain_console()
    day = date(2026, 12, 3)
    feed = day_feed(recorded_day(shared_data or default_shared_data()), day, papers)
    figures: dict = {}
    # seconds; ledger: briefed / delivered / jobs done / jobs not done
    columns = ("run", "papers", "fetch s", "brief s", "radars/s", "total s", "vs first", "ledger b/d/done/not")
    with tempfile.TemporaryDirectory(prefix="academichub-bench-daily-") as tmp:
        plans = radar_plans(feed, radars)
        run, baseline = run_embedded(feed, plans, day, Path(tmp))
        table = Table(title=f"one day: {papers:,} papers, {radars} radars, SQLite (embedding measured apart)")
        for column in columns:
            table.add_column(column)
        _row(table, baseline, radars, None)
        _row(table, run, radars, baseline)
        console.print(table)
        figures["embedded"] = {"baseline": baseline, "queued": run}
        if database_url and queue_url:
            plans = radar_plans(feed, scale_radars)
            table = Table(title=f"one day: {papers:,} papers, {scale_radars} radars, Redis + PostgreSQL")
            for column in columns:
                table.add_column(column)
            first = None
            for count in processes:
                result = run_workers(feed, plans, day, Path(tmp), processes=count, database_url=database_url,
                                     queue_url=queue_url)
                first = first or result
                _row(table, result, scale_radars, first if result is not first else None)
                figures[f"workers-{count}"] = result
            console.print(table)
    return figures
