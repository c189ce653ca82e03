"""Two `academichub worker` processes on Redis and the test's store (SQLite, or PostgreSQL in the
second pass); the worker holding the arXiv fetch is killed with SIGKILL mid-request (the local
upstream holds that answer until told). Its message is gone with it; after its lease the tick hands
the job to the other worker, which finishes it and everything chained after it: every job key done
exactly once, no paper or briefing stored twice, nothing lost.

Real processes need real time here: the lease is two seconds and the test polls (it never sleeps a
fixed time for an outcome). Redis: ACADEMICHUB_TEST_REDIS_URL, else 127.0.0.1:6379 (.ci/run starts
one); the queue's name is private to the test and its keys are deleted after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from academichub.settings import load_settings
from academichub.store import jobs as ledger
from academichub.store.schema import briefings, papers

REDIS_URL = os.environ.get("ACADEMICHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REPO = Path(__file__).resolve().parents[1]
RSS = "arxiv/rss/2024-11-28-all-archives.xml"
CROSSREF_PAGE = "crossref/cr_journals_issn_workstrue_behavior-2.json"
ITEMS = 40
LEASE = 2.0


def _redis():
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means: no Redis here
        pytest.skip(f"no Redis at {REDIS_URL} ({type(exc).__name__}: {exc}); .ci/run starts one, "
                    "or set ACADEMICHUB_TEST_REDIS_URL")


class HeldUpstream:
    """arXiv's feed, answered only once `release` is set (the first request is the one held), and
    Crossref's page at once; counts requests per path."""

    def __init__(self, feed: bytes, crossref: bytes):
        self.release = threading.Event()
        self.held = threading.Event()
        self.hits: dict[str, int] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server naming
                path = self.path.split("?")[0]
                owner.hits[path] = owner.hits.get(path, 0) + 1
                if path == "/rss/cs":
                    owner.held.set()
                    owner.release.wait(60)
                    body, kind = feed, "application/rss+xml"
                elif path == "/journals/1574-6941/works":
                    body, kind = crossref, "application/json"
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the worker that asked was killed
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _wait(predicate, timeout: float, what: str, tick=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick:
            tick()
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_worker_loses_nothing(database_url, shared_data, tmp_path, engine):
    from test_daily_loop import day_feed

    from academichub.store.radars import add_rule, create_radar, default_user
    from academichub.store.sources import add_source
    from academichub.store.state import utcnow
    from academichub.workers import JobQueue

    client = _redis()
    queue_name = f"ahtest_{uuid.uuid4().hex[:10]}"
    feed = day_feed((shared_data / RSS).read_bytes(), 0)
    upstream = HeldUpstream(feed, (shared_data / CROSSREF_PAGE).read_bytes())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ACADEMICHUB_")},
        "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "ACADEMICHUB_DATABASE_URL": database_url, "ACADEMICHUB_DATA_DIR": str(tmp_path / "data"),
        "ACADEMICHUB_QUEUE_URL": REDIS_URL, "ACADEMICHUB_QUEUE_NAME": queue_name, "ACADEMICHUB_SCHEDULER": "false",
        "ACADEMICHUB_JOB_LEASE_SECONDS": str(LEASE), "ACADEMICHUB_ARXIV_RSS_URL": upstream.url + "/rss/",
        "ACADEMICHUB_CROSSREF_URL": upstream.url, "ACADEMICHUB_ARXIV_MIN_INTERVAL": "0",
        "ACADEMICHUB_HTTP_RETRIES": "0", "ACADEMICHUB_EMBEDDING_MAX_TOKENS": "128", "ACADEMICHUB_BRIEFING_PAPERS": "10",
    }
    with engine.begin() as conn:
        add_source(conn, name="arxiv-cs", kind="arxiv", params={"archives": "cs"}, label=None, now=utcnow())
        add_source(conn, name="crossref:fems", kind="crossref", params={"issn": "1574-6941"}, label="FEMS", now=utcnow())
        radar = create_radar(conn, user_id=default_user(conn), name="ml")
        add_rule(conn, radar, "category", "cs.LG")

    workers: list[subprocess.Popen] = []
    try:
        for i in range(2):
            workers.append(subprocess.Popen(
                [sys.executable, "-c", "from academichub.cli import app; app()", "worker", "--concurrency", "1"],
                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"worker{i}.log", "wb"),
            ))
        settings = load_settings(**{k.removeprefix("ACADEMICHUB_").lower(): v for k, v in env.items()
                                    if k.startswith("ACADEMICHUB_")})
        queue = JobQueue(settings, engine=engine)
        keys = queue.tick()
        arxiv_key = next(k for k in keys if k.startswith("arxiv:"))
        assert len(keys) == 2

        def holder():
            with engine.connect() as conn:
                job = ledger.get(conn, arxiv_key)
            return job.worker if job.status == "running" else None

        _wait(lambda: upstream.held.is_set() and holder(), 120, "a worker to start the arXiv fetch")
        pid = int(holder().split(":")[1])
        victim = next(w for w in workers if w.pid == pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        upstream.release.set()

        def drained():
            with engine.connect() as conn:
                counts = ledger.counts(conn)
                brief_done = ledger.get(conn, f"brief:{radar}:2024-12-02")
            return counts["queued"] == counts["running"] == 0 and brief_done is not None and brief_done.status == "done"

        # The test's tick stands in for the scheduler's every-minute one (off in the workers).
        _wait(drained, 240, "the surviving worker to finish every job", tick=queue.tick)

        with engine.connect() as conn:
            jobs = {job.key: job for job in ledger.recent(conn, 100)}
            assert {k: j.status for k, j in jobs.items()} == {k: "done" for k in jobs}
            # each fetch's chain: embed, candidates, then one `rank` per radar (its stored ranking
            # follows the new papers, app/jobs.py), each done exactly once
            assert set(jobs) == {
                arxiv_key, f"embed:{arxiv_key}", f"candidates:{arxiv_key}", f"rank:{radar}:after-{arxiv_key}",
                keys[1], f"embed:{keys[1]}", f"candidates:{keys[1]}", f"rank:{radar}:after-{keys[1]}",
                f"brief:{radar}:2024-12-02", f"deliver:{radar}:2024-12-02",
            }
            assert jobs[arxiv_key].attempts == 2  # the killed attempt, then the survivor's
            survivor = next(w for w in workers if w is not victim)
            assert jobs[arxiv_key].worker.split(":")[1] == str(survivor.pid)
            assert all(j.attempts == 1 for k, j in jobs.items() if k != arxiv_key)
            assert conn.execute(select(func.count()).select_from(papers).where(
                papers.c.announced_on == date(2024, 12, 2))).scalar_one() == ITEMS
            assert conn.execute(select(func.count(papers.c.arxiv_id.distinct()))).scalar_one() == ITEMS
            assert conn.execute(select(func.count()).select_from(briefings)).scalar_one() == 1
        assert upstream.hits["/rss/cs"] == 2  # the killed request and the one that finished
        assert upstream.hits["/journals/1574-6941/works"] == 1
        assert survivor.poll() is None  # still serving
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        upstream.stop()
        for key in client.scan_iter(match=f"huey.*{queue_name}*"):
            client.delete(key)
