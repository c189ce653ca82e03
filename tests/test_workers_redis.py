"""Two `academichub worker` processes on Redis and the test's store (SQLite, or PostgreSQL in the
second pass); the worker holding the arXiv fetch is killed with SIGKILL mid-request (the local
upstream holds that answer until told). Its message is gone with it; after its lease the tick hands
the job to the other worker, which finishes it and everything chained after it: every job key done
exactly once, no paper or briefing stored twice, nothing lost.

Real processes need real time here: the lease is two seconds and the test polls (it never sleeps a
fixed time for an outcome). Redis: ACADEMICHUB_TEST_REDIS_URL, else 127.0.0.1:6379 (.ci/run starts
one); the queue's name is private to the test and its keys are deleted after it."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import date

from sqlalchemy import func, select

from workers_support import kill_holder, running_workers, settings_of, wait_for

from academichub.store import jobs as ledger
from academichub.store.schema import briefings, papers

RSS = "arxiv/rss/2024-11-28-all-archives.xml"
CROSSREF_PAGE = "crossref/cr_journals_issn_workstrue_behavior-2.json"
ITEMS = 40
LEASE = 2.0


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


def test_a_killed_worker_loses_nothing(database_url, shared_data, tmp_path, engine):
    from test_daily_loop import day_feed

    from academichub.store.radars import add_rule, create_radar, default_user
    from academichub.store.sources import add_source
    from academichub.store.state import utcnow
    from academichub.workers import JobQueue

    feed = day_feed((shared_data / RSS).read_bytes(), 0)
    upstream = HeldUpstream(feed, (shared_data / CROSSREF_PAGE).read_bytes())
    with engine.begin() as conn:
        add_source(conn, name="arxiv-cs", kind="arxiv", params={"archives": "cs"}, label=None, now=utcnow())
        add_source(conn, name="crossref:fems", kind="crossref", params={"issn": "1574-6941"}, label="FEMS", now=utcnow())
        radar = create_radar(conn, user_id=default_user(conn), name="ml")
        add_rule(conn, radar, "category", "cs.LG")

    try:
        with running_workers(
            database_url, tmp_path, LEASE, arxiv_rss_url=upstream.url + "/rss/", crossref_url=upstream.url,
            arxiv_min_interval="0", http_retries="0", embedding_max_tokens="128", briefing_papers="10",
        ) as (workers, env):
            queue = JobQueue(settings_of(env), engine=engine)
            keys = queue.tick()
            arxiv_key = next(k for k in keys if k.startswith("arxiv:"))
            assert len(keys) == 2

            def holder():
                with engine.connect() as conn:
                    job = ledger.get(conn, arxiv_key)
                return job.worker if job.status == "running" else None

            wait_for(lambda: upstream.held.is_set() and holder(), 120, "a worker to start the arXiv fetch")
            victim, survivor = kill_holder(workers, holder())
            upstream.release.set()

            def drained():
                with engine.connect() as conn:
                    counts = ledger.counts(conn)
                    brief_done = ledger.get(conn, f"brief:{radar}:2024-12-02")
                return counts["queued"] == counts["running"] == 0 and brief_done is not None and brief_done.status == "done"

            # The test's tick stands in for the scheduler's every-minute one (off in the workers).
            wait_for(drained, 240, "the surviving worker to finish every job", tick=queue.tick)

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
        upstream.stop()
