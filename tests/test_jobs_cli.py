"""`academichub jobs run|list|status` on the test's store and a local upstream, and the consumer
threads that `serve` starts and stops with the web app (FastAPI lifespan)."""

from __future__ import annotations

import json
from datetime import date
import threading

import pytest
from typer.testing import CliRunner

from embedder_support import offline_embedder

from academichub.cli import app
from academichub.store import jobs as ledger

CROSSREF_PAGE = "crossref/cr_journals_issn_workstrue_behavior-2.json"


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    pytest.importorskip("sentence_transformers", reason="the embed job needs the embeddings extra")
    with offline_embedder(tmp_path_factory, max_seq_length=128) as loaded:
        yield loaded


def _job_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.split(":")[0] in ("sources", "embed", "candidates", "rank", "brief", "deliver")]


def test_jobs_run_list_and_status(engine, database_url, local_server, shared_data, monkeypatch, embedder):
    from academichub.rank import embeddings as E

    monkeypatch.setattr(E, "configured_embedder", lambda settings, engine=None: embedder)
    from academichub.store.radars import add_rule, create_radar, default_user
    from academichub.store.sources import add_source
    from academichub.store.state import utcnow

    local_server.route("/journals/1574-6941/works", body=(shared_data / CROSSREF_PAGE).read_bytes(),
                       headers={"Content-Type": "application/json"})
    for name, value in {"DATABASE_URL": database_url, "CROSSREF_URL": local_server.url(""), "HTTP_RETRIES": "0",
                        "EMBED_ON_INGEST": "true"}.items():
        monkeypatch.setenv(f"ACADEMICHUB_{name}", value)
    with engine.begin() as conn:
        add_source(conn, name="crossref:fems", kind="crossref", params={"issn": "1574-6941"}, label="FEMS", now=utcnow())
        radar = create_radar(conn, user_id=default_user(conn), name="microbes")
        add_rule(conn, radar, "keyword", "microbial")
    runner = CliRunner()

    ran = runner.invoke(app, ["jobs", "run", "sources"])
    assert ran.exit_code == 0, ran.output
    lines = _job_lines(ran.output)
    # The fetch, then what it chains: the embedding of its new papers and the candidate refresh.
    assert lines[0].startswith("sources:crossref:fems:now-") and '"added": 18' in lines[0]
    assert lines[1].startswith("embed:sources:crossref:fems:now-") and '"embedded": 18' in lines[1]
    assert lines[2].startswith("candidates:sources:crossref:fems:now-")
    # the radar's stored ranking follows the new papers
    assert lines[3].startswith(f"rank:{radar}:after-sources:crossref:fems:now-") and len(lines) == 4

    # Crossref works carry no announcement day: a briefing needs its day given.
    undated = runner.invoke(app, ["jobs", "run", "brief", "--radar", "microbes"])
    assert undated.exit_code == 1 and "no announced day to brief" in undated.output
    day = date(2024, 11, 28)
    brief = runner.invoke(app, ["jobs", "run", "brief", "--radar", "microbes", "--date", day.isoformat()])
    assert brief.exit_code == 0, brief.output
    lines = _job_lines(brief.output)
    assert lines[0].startswith(f"brief:{radar}:{day}: ran") and lines[1].startswith(f"deliver:{radar}:{day}: ran")
    again = runner.invoke(app, ["jobs", "run", "brief", "--radar", "microbes", "--date", day.isoformat()])
    assert again.exit_code == 0 and _job_lines(again.output) == [
        f"brief:{radar}:{day}: not run (done already) {{\"briefing_id\": 1, \"papers\": 0}}"]

    listed = runner.invoke(app, ["jobs", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert len(rows) == 6 and {r["status"] for r in rows} == {"done"} and all(r["attempts"] == 1 for r in rows)

    status = runner.invoke(app, ["jobs", "status", "--format", "json", "--timezone", "Asia/Shanghai"])
    assert status.exit_code == 0, status.output
    report = json.loads(status.output)
    assert report["counts"] == {"queued": 0, "running": 0, "done": 6, "failed": 0}
    assert report["queue"] == {"pending": 0, "scheduled": 0}
    assert [s["name"] for s in report["sources"]] == ["crossref:fems"]
    assert report["briefings"][0]["radar"] == "microbes" and report["briefings"][0]["zone"] == "Asia/Shanghai"
    assert report["briefings"][0]["last_job"] == {"key": f"brief:{radar}:{day}", "status": "done"}

    unknown = runner.invoke(app, ["jobs", "run", "brief", "--radar", "nope"])
    assert unknown.exit_code == 1 and "no radar 'nope'" in unknown.output
    bad_zone = runner.invoke(app, ["jobs", "status", "--timezone", "Mars/Olympus"])
    assert bad_zone.exit_code == 1 and "unknown time zone" in bad_zone.output


def test_serve_runs_consumer_threads_and_stops_them(engine, database_url, tmp_path):
    from fastapi.testclient import TestClient

    from academichub.settings import load_settings
    from academichub.web.app import create_app
    from academichub.workers import JobQueue

    settings = load_settings(database_url=database_url, data_dir=tmp_path / "data", load_sample=False,
                             scheduler=False, worker_concurrency=2)
    before = {t.name for t in threading.enumerate()}
    with TestClient(create_app(settings, engine=engine)) as client:
        assert client.get("/healthz").status_code == 200
        workers = [t for t in threading.enumerate() if t.name.startswith("Worker-") and t.name not in before]
        assert len(workers) == 2
        # A job asked for from anywhere (here: a producer of its own) is run by the server's threads.
        producer = JobQueue(settings, engine=engine)
        key = producer.jobs.request("candidates")
        assert producer.wait_idle(30)
        with engine.connect() as conn:
            assert ledger.get(conn, key).status == "done"
    assert not any(t.is_alive() for t in workers)


def test_api_jobs_shows_the_ledger(engine, database_url, tmp_path):
    from fastapi.testclient import TestClient

    from academichub.settings import load_settings
    from academichub.store.state import utcnow
    from academichub.web.app import create_app

    with engine.begin() as conn:
        ledger.ensure(conn, "source:c:2026-12-05", "sources", {"sources": ["c"]}, utcnow())
        ledger.ensure(conn, "brief:1:2026-12-04", "brief", {}, utcnow())
    ledger.claim(engine, "brief:1:2026-12-04", "w", utcnow(), 60)
    settings = load_settings(database_url=database_url, data_dir=tmp_path / "data", load_sample=False)
    client = TestClient(create_app(settings, engine=engine))
    body = client.get("/api/jobs").json()
    assert body["counts"] == {"queued": 1, "running": 1, "done": 0, "failed": 0}
    assert sorted((j["key"], j["status"], j["attempts"]) for j in body["jobs"]) == [
        ("brief:1:2026-12-04", "running", 1), ("source:c:2026-12-05", "queued", 0)]
    assert [j["key"] for j in client.get("/api/jobs", params={"status": "running"}).json()["jobs"]] == ["brief:1:2026-12-04"]
    assert client.get("/api/jobs", params={"status": "bogus"}).status_code == 422
