"""`academichub backfill` end to end through the application layer (Hub.backfill): the query-API
route against a local server replaying recorded arXiv API pages, into a real store."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from typer.testing import CliRunner

from academichub.cli import app
from academichub.store.papers import count_papers
from localserver import Reply


def test_backfill_via_the_api_stores_the_pages(database_url, engine, local_server, shared_data, monkeypatch):
    page = next((shared_data / "arxiv/api").glob("q_testing_s0_m10_*.xml")).read_bytes()  # 10 real entries
    local_server.route("/api/query", handler=lambda path, headers: Reply(200, page, {"Content-Type": "application/atom+xml"}))
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("ACADEMICHUB_ARXIV_API_URL", local_server.url("/api/query"))
    run = CliRunner()
    refused = run.invoke(app, ["backfill", "--via", "api", "--from", "2020-01-01"])
    assert refused.exit_code == 1 and "--via api needs --category" in refused.output and not local_server.requests

    result = run.invoke(app, ["--arxiv-min-interval", "0", "backfill", "--via", "api", "--category", "cs.SE",
                              "--from", "2020-01-01", "--until", "2020-12-31", "--limit", "10"])
    assert result.exit_code == 0, result.output
    assert "backfill: " in result.stdout and "10 added" in result.stdout
    query = parse_qs(urlsplit(local_server.requests[0][0]).query)
    assert query["search_query"] == ["cat:cs.SE AND submittedDate:[202001010000 TO 202012312359]"]
    with engine.connect() as conn:
        assert count_papers(conn) == 10
