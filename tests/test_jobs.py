"""The job system's use cases (app/jobs.py) on a real store and a local upstream, with an injected
clock: failed attempts back off exponentially and then fail for good, the tick re-sends the job of
a worker that died, and the job system keeps to its layers."""

from __future__ import annotations

import ast
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from academichub.app import Hub
from academichub.app.jobs import JobFailed, JobRetry, Jobs, backoff_delay
from academichub.settings import load_settings
from academichub.store import jobs as ledger

SRC = Path(__file__).resolve().parents[1] / "src" / "academichub"
START = datetime(2026, 12, 5, 6, 0)
CROSSREF_PAGE = "crossref/cr_journals_issn_workstrue_behavior-2.json"  # FEMS Microbiology Ecology


@pytest.fixture
def setup(engine, database_url, local_server, tmp_path):
    from academichub.store.sources import add_source

    settings = load_settings(database_url=database_url, data_dir=tmp_path / "data", crossref_url=local_server.url(""),
                             http_retries=0, job_lease_seconds=60)
    with engine.begin() as conn:
        add_source(conn, name="crossref:x", kind="crossref", params={"issn": "1574-6941"}, label="X", now=START)
    clock = [START]
    sent: list[str] = []
    jobs = Jobs(Hub(settings, engine=engine, clock=lambda: clock[0]), enqueue=sent.extend)
    return jobs, clock, sent


def test_failed_attempts_back_off_then_fail(setup, local_server, engine, shared_data):
    jobs, clock, sent = setup
    local_server.route("/journals/1574-6941/works", status=500, body=b"upstream down")
    key = "source:crossref:x:2026-12-05"
    assert jobs.tick() == [key] and sent == [key]
    assert [backoff_delay(n) for n in (1, 2, 3, 4, 5, 12)] == [30, 60, 120, 240, 480, 3600]
    for attempt in range(1, 5):
        with pytest.raises(JobRetry) as raised:
            jobs.execute(key)
        assert raised.value.delay == backoff_delay(attempt)
        with engine.connect() as conn:
            job = ledger.get(conn, key)
        assert (job.status, job.attempts) == ("queued", attempt) and "500" in job.error
        # Not re-sent while its retry is pending (the queue holds it, delayed)...
        clock[0] += timedelta(seconds=raised.value.delay)
        assert jobs.tick() == []
        # ...and re-sent when it was not picked up a lease after it was due (a lost message).
        clock[0] += timedelta(seconds=61)
        assert jobs.tick() == [key]
    with pytest.raises(JobFailed, match="failed after 5 attempts"):
        jobs.execute(key)
    with engine.connect() as conn:
        assert ledger.get(conn, key).status == "failed"
    assert jobs.tick() == []  # failed for good in its window
    clock[0] = START + timedelta(days=1, hours=1)  # a day after the last failed run
    local_server.route("/journals/1574-6941/works", body=(shared_data / CROSSREF_PAGE).read_bytes(),
                       headers={"Content-Type": "application/json"})
    assert jobs.tick() == ["source:crossref:x:2026-12-06"]  # the next window is a new job
    assert jobs.execute("source:crossref:x:2026-12-06").ran


def test_the_tick_resends_the_job_of_a_dead_worker(setup, engine, local_server, shared_data):
    jobs, clock, sent = setup
    local_server.route("/journals/1574-6941/works",
                       body=(shared_data / CROSSREF_PAGE).read_bytes(),
                       headers={"Content-Type": "application/json"})
    key = "source:crossref:x:2026-12-05"
    assert jobs.tick() == [key]
    assert ledger.claim(engine, key, "host:999999:1", START, 60) is not None  # claimed, then the worker died
    clock[0] = START + timedelta(seconds=59)
    assert jobs.tick() == [] and jobs.execute(key).ran is False  # its lease still holds
    clock[0] = START + timedelta(seconds=61)
    assert jobs.tick() == [key]
    outcome = jobs.execute(key)
    assert outcome.ran and outcome.result["added"] == 18 and outcome.chained == (f"embed:{key}",)
    with engine.connect() as conn:
        job = ledger.get(conn, key)
        assert (job.status, job.attempts) == ("done", 2)
        assert ledger.get(conn, f"embed:{key}").status == "queued"
    assert sent[-1] == f"embed:{key}"  # what follows is sent at once
    assert jobs.execute(key).ran is False  # a duplicate message is harmless


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against the package
                package = path.parent.relative_to(SRC.parent).parts
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found.add(module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_job_system_keeps_to_its_layers():
    front_ends = ("academichub.web", "academichub.cli", "academichub.workers")
    for path in [SRC / "app" / "jobs.py", SRC / "app" / "schedule.py"]:
        assert not [m for m in _imports(path) if m.startswith(front_ends)], path
    assert not [m for m in _imports(SRC / "store" / "jobs.py") if m.startswith(("academichub.app", "huey", *front_ends))]
    for path in (SRC / "workers").glob("*.py"):
        assert not [m for m in _imports(path) if m.startswith(("academichub.web", "academichub.cli", "academichub.store"))], path
    assert "huey" not in {m.split(".")[0] for m in _imports(SRC / "app" / "jobs.py")}


def test_an_announcement_job_fetches_its_arxiv_feeds_in_one_polite_sequence(engine, database_url, local_server,
                                                                         shared_data, tmp_path):
    """Two arXiv sources, one job; the interval is arXiv's 3 s scaled down to 0.3 s here (a real wait:
    it is the politeness under test), measured between the server's arrivals."""
    import time

    from academichub.store.sources import add_source

    from localserver import Reply

    feed = (shared_data / "arxiv/rss/empty.xml").read_bytes()
    arrivals = {}

    def stamped(path, headers):
        arrivals[path] = time.monotonic()
        return Reply(200, feed)

    for archive in ("cs", "math"):
        local_server.route(f"/rss/{archive}", handler=stamped)
    settings = load_settings(database_url=database_url, data_dir=tmp_path / "data", arxiv_rss_url=local_server.url("/rss/"),
                             arxiv_min_interval=0.3, http_retries=0)
    with engine.begin() as conn:
        for archive in ("cs", "math"):
            add_source(conn, name=f"arxiv-{archive}", kind="arxiv", params={"archives": archive}, label=None, now=START)
    jobs = Jobs(Hub(settings, engine=engine, clock=lambda: START))
    (key,) = jobs.tick()
    assert key == "arxiv:2026-12-03"  # Saturday 01:00 Eastern: Thursday's announcement
    outcome = jobs.execute(key)
    assert outcome.ran and outcome.result["failed"] == {}
    assert arrivals["/rss/math"] - arrivals["/rss/cs"] >= 0.3
