"""Radar pages are reads: the ranked list of a radar's day is stored (radar_rankings) and a page
view reads its next batch from it; the ranking is made once (the first view, or a job), made
again by a `rank` job when feedback or new papers made it stale (the page meanwhile shows the
stored order without what was dismissed), and at once after an edit of the radar. Over the
bundled real arXiv day in a real store (SQLite, or PostgreSQL in the suite's second pass); the
job runs on the real SQLite Huey queue; `serve --workers 2` is the real CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
import pytest

from academichub.app.hub import Hub
from academichub.settings import Settings
from academichub.store import jobs as ledger
from academichub.store.radars import add_feedback, add_rule, create_radar, default_user
from academichub.store.rankings import load_ranking
from academichub.web.app import create_app
from academichub.workers.queue import JobQueue
from test_web import cards

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DAY = "2024-11-28"
NAME = "spin qubits"
FEED = "/?radar=spin+qubits"


@pytest.fixture
def radar_id(sample_engine) -> int:
    with sample_engine.begin() as conn:
        return create_radar(conn, user_id=default_user(conn), name=NAME, interest="spin qubits in semiconductor quantum dots")


@pytest.fixture
def hub(sample_engine, radar_id):
    return Hub(Settings(load_sample=False, default_language="en", batch_size=10), engine=sample_engine)


@pytest.fixture
def client(hub):
    """The app without its lifespan: no warm-up and no consumer, so what ranks is what a view does."""
    return TestClient(create_app(hub=hub))


def stored(engine, radar_id):
    with engine.connect() as conn:
        return load_ranking(conn, radar_id, DAY)


def test_the_first_view_ranks_once_and_later_views_only_read(client, hub, sample_engine, radar_id):
    assert stored(sample_engine, radar_id) is None
    first = cards(client.get(FEED).text)
    assert len(first) == 10 and hub.rankings_computed == 1
    ranking = stored(sample_engine, radar_id)
    assert ranking is not None and len(ranking.ids) > 100 and ranking.period == DAY
    assert set(c.id for c in first) <= set(ranking.ids.tolist())
    builds = hub.candidates.builds
    # a new batch is a POST (a GET changes nothing): the page's "Another batch" records what was on show
    second = cards(client.post("/radars/spin%20qubits/batches", data={"seen": [c.id for c in first]}).text)
    again = cards(client.get(FEED + "&batch=0").text)  # batch 0 again
    json_batch = client.post("/api/papers?radar=spin+qubits").json()  # a third batch through the API
    assert hub.rankings_computed == 1 and hub.candidates.builds == builds  # read, not ranked
    assert [c.id for c in again] == [c.id for c in first]
    shown = [c.id for c in first] + [c.id for c in second] + [i["id"] for i in json_batch["items"]]
    assert len(shown) == 30 == len(set(shown))  # batches never repeat within the day
    assert json_batch["remaining"] == len(ranking.ids) - 30
    assert all(i["reasons"] is not None for i in json_batch["items"])
    assert stored(sample_engine, radar_id).computed_at == ranking.computed_at


def test_feedback_makes_it_stale_the_page_drops_the_dismissed_and_the_job_reranks(client, hub, sample_engine, radar_id,
                                                                                      tmp_path):
    client.get(FEED)
    before = stored(sample_engine, radar_id)
    next_best = [int(i) for i in before.ids[10:40]]
    dismissed, liked = next_best[0], next_best[1]
    with sample_engine.begin() as conn:
        add_feedback(conn, radar_id, dismissed, "dismiss")
        add_feedback(conn, radar_id, liked, "like")
    queue = JobQueue(hub.settings, hub=hub)  # the real SQLite queue in data_dir, consumed here
    hub.attach_queue(queue.enqueue)
    page = cards(client.get(FEED).text)  # stale: read as stored, less the dismissed paper; a job asked for
    assert hub.rankings_computed == 1
    assert dismissed not in [c.id for c in page]
    with sample_engine.connect() as conn:
        keys = [job.key for job in ledger.recent(conn, 10) if job.name == "rank"]
    assert len(keys) == 1 and keys[0].startswith(f"rank:{radar_id}:{DAY}:")
    queue.start_in_process()
    try:
        assert queue.wait_idle(120)
    finally:
        queue.stop()
    with sample_engine.connect() as conn:
        job = ledger.get(conn, keys[0])
    assert job.status == "done" and job.result == {"periods": [DAY]}
    after = stored(sample_engine, radar_id)
    assert hub.rankings_computed == 2 and after.version != before.version
    assert dismissed not in after.ids.tolist() and liked not in after.ids.tolist()  # a positive is not shown again
    assert not np.array_equal(after.ids[:50], before.ids[:50][~np.isin(before.ids[:50], [dismissed, liked])])
    client.get(FEED)  # current again: read
    assert hub.rankings_computed == 2


def test_an_edit_of_the_radar_ranks_again_at_once(client, hub, sample_engine, radar_id):
    client.get(FEED)
    with sample_engine.begin() as conn:
        add_rule(conn, radar_id, "keyword", "graphene")
    page = cards(client.get(FEED).text)
    assert hub.rankings_computed == 2
    assert "graphene" in page[0].title.lower()


def test_unchanged_pages_and_static_files_answer_304(client, radar_id):
    client.get(FEED)
    for url in (FEED + "&batch=0", "/api/papers?radar=spin+qubits&batch=0", "/static/app.css"):
        first = client.get(url)
        etag = first.headers["etag"]
        assert first.status_code == 200 and etag.startswith('"')
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        other = client.get(url, headers={"If-None-Match": '"another"'})
        assert other.status_code == 200 and other.content == first.content


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def test_serve_with_two_workers_serves_pages_and_runs_one_job_consumer(sample_engine, radar_id, database_url, tmp_path):
    data_dir = tmp_path / "served"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACADEMICHUB_")}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"), ACADEMICHUB_EMBED_ON_INGEST="false",
               ACADEMICHUB_DATABASE_URL=database_url, ACADEMICHUB_DATA_DIR=str(data_dir))
    script = Path(sys.executable).parent / "academichub"
    server = subprocess.Popen([str(script), "serve", "--port", str(port), "--workers", "2", "--no-load-sample"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            deadline = time.monotonic() + 90
            while True:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the server did not start"
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            workers = _children(server.pid)  # uvicorn's supervisor and its two worker processes
            assert len([p for p in workers if "academichub" in Path(f"/proc/{p}/cmdline").read_text()
                        or "multiprocessing" in Path(f"/proc/{p}/cmdline").read_text()]) >= 2
            # the first batch read (GET), then five more through the page's "Another batch" (a POST
            # recording what was on show), whichever process answers each
            pages = [http.get(FEED)]
            for _ in range(5):
                pages.append(http.post("/radars/spin%20qubits/batches", data={"seen": [c.id for c in cards(pages[-1].text)]},
                                       follow_redirects=True))
            assert all(p.status_code == 200 for p in pages)
            shown = [c.id for p in pages for c in cards(p.text)]
            assert len(shown) == 60 == len(set(shown))  # six batches, none repeated, whichever process answered
            leader = int((data_dir / "serve-jobs.lock").read_text())
            assert leader in workers
            with sample_engine.begin() as conn:
                add_feedback(conn, radar_id, shown[0], "like")
            for _ in range(4):  # each process finds the ranking stale: one job for the version
                assert http.get(FEED + "&batch=0").status_code == 200
            deadline = time.monotonic() + 90
            while True:
                with sample_engine.connect() as conn:
                    jobs = [j for j in ledger.recent(conn, 20) if j.name == "rank"]
                if jobs and all(j.status == "done" for j in jobs):
                    break
                assert time.monotonic() < deadline, f"the rank job did not run: {jobs}"
                time.sleep(0.2)
            assert len(jobs) == 1 and int(jobs[0].worker.split(":")[1]) == leader  # run by the one consumer
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert "2 processes" in output
