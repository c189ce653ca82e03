"""`sources run` against upstreams that misbehave, each played by the real local HTTP server
(tests/localserver.py): one that trickles its answer a byte at a time, resets the connection,
cuts the body short, answers HTML where XML or JSON was asked for, or answers 429 with
Retry-After. For each: the exact error stored on the failing source's row, the other source of the
batch (a Crossref journal, its recorded page) still merged, nothing of the failing source written,
and the waits recorded through the injected sleep instead of slept."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from localserver import Reply
from sqlalchemy import func, select

from academichub.ingest.runner import make_http, run_sources
from academichub.settings import load_settings
from academichub.store.schema import papers
from academichub.store.sources import add_source, list_sources

NOW = datetime(2024, 11, 28, 18, 0)
JSON = {"Content-Type": "application/json"}
HTML = {"Content-Type": "text/html; charset=utf-8"}
CROSSREF_PAGE = "crossref/cr_journals_issn_workstrue_behavior-2.json"  # FEMS Microbiology Ecology, 20 works
GOOD = "/journals/1574-6941/works"  # the other source of every batch: 18 papers merged
FAULTY = "/journals/0028-0836/works"  # the misbehaving one (Nature's ISSN; nothing recorded is served)
# An HTML page where an API answer was expected, as a captive portal or a CDN error page sends.
HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>\n"


@pytest.fixture
def recorded_page(shared_data) -> bytes:
    return (shared_data / CROSSREF_PAGE).read_bytes()


@pytest.fixture
def configure(local_server, database_url, monkeypatch):
    """Settings pointing every upstream at the local server; `configure(NAME=value)` adds more."""

    def make(**extra):
        base = local_server.url("")
        values = {
            "DATABASE_URL": database_url, "ARXIV_RSS_URL": base + "/rss/", "CROSSREF_URL": base,
            "ARXIV_MIN_INTERVAL": "0", "HTTP_RETRIES": "0", "ALLOW_PRIVATE_URLS": "true", "SOURCE_LOOKBACK_DAYS": "8",
            **extra,
        }
        for name, value in values.items():
            monkeypatch.setenv(f"ACADEMICHUB_{name}", str(value))
        return load_settings()

    return make


class _Clock:
    """The clients' monotonic clock, moved on only by the injected sleep: waits are recorded, never
    slept, and the source-run deadline counts them as if they had been."""

    def __init__(self):
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _run(engine, settings, local_server, recorded_page, *, kind="crossref"):
    """Run a batch of two sources, "faulty" and "good"; return (results by name, waits, faulty row)."""
    local_server.route(GOOD, body=recorded_page, headers=JSON)
    params = {"issn": "0028-0836"} if kind == "crossref" else {"archives": "cs"}
    with engine.begin() as conn:
        add_source(conn, name="faulty", kind=kind, params=params, label=None, now=NOW)
        add_source(conn, name="good", kind="crossref", params={"issn": "1574-6941"}, label=None, now=NOW)
    clock = _Clock()

    def http_factory(settings_, source, engine_):
        return make_http(settings_, source, engine_, sleep=clock.sleep, clock=clock, backoff_base=1.0)

    results = {r.name: r for r in run_sources(engine, settings, now=NOW, http_factory=http_factory)}
    with engine.connect() as conn:
        row = next(s for s in list_sources(conn) if s["name"] == "faulty")
    return results, clock.waits, row


def _faulty_url(local_server) -> str:
    """The URL the faulty source asked for, query included, as errors name it."""
    path = next(path for path, _ in local_server.requests if path.startswith(FAULTY) or path.startswith("/rss/"))
    return local_server.url(path)


def _assert_batch_went_on(engine, results, row, error: str) -> None:
    assert (results["faulty"].ok, results["faulty"].error) == (False, error)
    assert (row["last_error"], row["consecutive_failures"], row["failing_since"]) == (error, 1, NOW)
    assert results["faulty"].summary.added == 0
    good = results["good"]
    assert (good.ok, good.error, good.summary.added, good.summary.failed) == (True, None, 18, 2)
    with engine.connect() as conn:  # the good source's papers, and nothing of the faulty one
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 18


def test_a_trickling_upstream_is_cut_at_the_request_deadline(engine, configure, local_server, recorded_page):
    # One byte every 20 ms: the 30 s read timeout never trips, and the page would take 30 minutes.
    local_server.route(FAULTY, responses=[Reply(200, recorded_page, JSON, trickle=0.02)])
    settings = configure(HTTP_REQUEST_DEADLINE="0.5", HTTP_RETRIES="2")
    results, waits, row = _run(engine, settings, local_server, recorded_page)
    url = _faulty_url(local_server)
    _assert_batch_went_on(engine, results, row, f"{url}: no complete response within the http_request_deadline of 0.5 s; stopped reading")
    assert local_server.hits(FAULTY) == 1 and waits == []  # a deadline is not retried
    assert _wait_for_trickle_end(local_server, FAULTY) < len(recorded_page)  # the client hung up part-way


def test_a_trickle_in_the_headers_is_cut_too(engine, configure, local_server, recorded_page):
    padded = {**JSON, "X-Padding": "p" * 300}  # headers that alone take 6 s at this pace
    local_server.route(FAULTY, responses=[Reply(200, recorded_page, padded, trickle=0.02, trickle_headers=True)])
    settings = configure(HTTP_REQUEST_DEADLINE="0.5")
    results, waits, row = _run(engine, settings, local_server, recorded_page)
    url = _faulty_url(local_server)
    _assert_batch_went_on(engine, results, row, f"{url}: no complete response within the http_request_deadline of 0.5 s; stopped reading")
    assert _wait_for_trickle_end(local_server, FAULTY) < 300  # cut inside the headers


def test_the_source_run_deadline_bounds_a_request_too(engine, configure, local_server, recorded_page):
    local_server.route(FAULTY, responses=[Reply(200, recorded_page, JSON, trickle=0.02)])
    settings = configure(HTTP_REQUEST_DEADLINE="600", SOURCE_RUN_DEADLINE="0.5")
    results, waits, row = _run(engine, settings, local_server, recorded_page)
    url = _faulty_url(local_server)
    _assert_batch_went_on(engine, results, row, f"{url}: no complete response within the source_run_deadline of 0.5 s; stopped reading")


def _wait_for_trickle_end(local_server, path: str) -> int:
    """Bytes the server trickled before the client left (the handler ends a write or two later)."""
    import time

    for _ in range(200):
        if path in local_server.trickled:
            return local_server.trickled[path]
        time.sleep(0.05)
    raise AssertionError(f"the server is still trickling {path}: the client never hung up")


def test_a_connection_reset_every_time_is_retried_then_recorded(engine, configure, local_server, recorded_page):
    local_server.route(FAULTY, responses=[Reply(reset=True)])
    settings = configure(HTTP_RETRIES="2")
    results, waits, row = _run(engine, settings, local_server, recorded_page)
    url = _faulty_url(local_server)
    _assert_batch_went_on(engine, results, row, f"{url}: ReadError: [Errno 104] Connection reset by peer")
    assert local_server.hits(FAULTY) == 3 and waits == [1.0, 2.0]


def test_a_truncated_body_is_retried_then_recorded(engine, configure, local_server, recorded_page):
    local_server.route(FAULTY, responses=[Reply(200, recorded_page, JSON, truncate_to=1000)])
    settings = configure(HTTP_RETRIES="1")
    results, waits, row = _run(engine, settings, local_server, recorded_page)
    url = _faulty_url(local_server)
    expected = (f"{url}: RemoteProtocolError: peer closed connection without sending complete message body "
                f"(received 1000 bytes, expected {len(recorded_page)})")
    _assert_batch_went_on(engine, results, row, expected)
    assert local_server.hits(FAULTY) == 2 and waits == [1.0]


def test_html_instead_of_json_is_a_parse_error_on_the_row(engine, configure, local_server, recorded_page):
    local_server.route(FAULTY, body=HTML_PAGE, headers=HTML)
    results, waits, row = _run(engine, configure(), local_server, recorded_page)
    url = _faulty_url(local_server)
    _assert_batch_went_on(engine, results, row, f"{url}:1: not JSON: unexpected character, expected a JSON value")
    assert waits == []


def test_html_instead_of_xml_is_a_parse_error_on_the_row(engine, configure, local_server, recorded_page):
    local_server.route("/rss/cs", body=HTML_PAGE, headers=HTML)
    results, waits, row = _run(engine, configure(), local_server, recorded_page, kind="arxiv")
    _assert_batch_went_on(engine, results, row, f"{local_server.url('/rss/cs')}:2: not an RSS feed (root <html>)")


def test_429_with_retry_after_waits_as_asked_and_then_merges(engine, configure, local_server, recorded_page):
    local_server.route(FAULTY, responses=[Reply(429, b"slow down", {"Retry-After": "7"}), Reply(200, recorded_page, JSON)])
    settings = configure(HTTP_RETRIES="2")
    results, waits, row = _run(engine, settings, local_server, recorded_page)
    assert waits == [7.0]  # recorded, not slept
    assert (results["faulty"].ok, results["faulty"].summary.added) == (True, 18)  # runs first (name order)
    assert (row["last_error"], row["consecutive_failures"]) == (None, 0)
    assert (results["good"].ok, results["good"].summary.added) == (True, 0)  # the same 20 works, merged already


def test_a_retry_after_past_the_source_run_deadline_fails_the_source_at_once(engine, configure, local_server, recorded_page):
    # Two waits of 40 s fit http_max_backoff (120 s) but not a 60 s run: the first is waited, the second refused.
    local_server.route(FAULTY, responses=[Reply(429, b"slow down", {"Retry-After": "40"})])
    settings = configure(HTTP_RETRIES="4", SOURCE_RUN_DEADLINE="60")
    results, waits, row = _run(engine, settings, local_server, recorded_page)
    url = _faulty_url(local_server)
    _assert_batch_went_on(engine, results, row, f"{url}: a wait of 40 s would run past the source_run_deadline of 60 s; stopped")
    assert waits == [40.0] and local_server.hits(FAULTY) == 2


def test_pages_merged_before_a_fault_stay_and_the_faulty_page_writes_nothing(engine, configure, local_server, recorded_page):
    """Each page is its own transaction. The recorded page, given a next-cursor so that the client
    asks for a second page, is merged; the second page's connection is reset every time."""
    first = json.loads(recorded_page)
    first["message"]["next-cursor"] = "page-2"

    def pages(raw_path: str, headers: dict) -> Reply:
        cursor = parse_qs(urlsplit(raw_path).query).get("cursor", ["*"])[0]
        return Reply(200, json.dumps(first).encode(), JSON) if cursor == "*" else Reply(reset=True)

    local_server.route(FAULTY, handler=pages)
    settings = configure()
    with engine.begin() as conn:
        add_source(conn, name="faulty", kind="crossref", params={"issn": "0028-0836", "rows": "20"}, label=None, now=NOW)
    clock = _Clock()
    [result] = run_sources(engine, settings, now=NOW, http_factory=lambda s, src, e: make_http(s, src, e, sleep=clock.sleep, clock=clock))
    second = local_server.url(local_server.requests[-1][0])
    assert parse_qs(urlsplit(second).query)["cursor"] == ["page-2"]
    assert (result.ok, result.error) == (False, f"{second}: ReadError: [Errno 104] Connection reset by peer")
    assert (result.summary.added, result.summary.failed) == (18, 2)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 18
        row = next(s for s in list_sources(conn) if s["name"] == "faulty")
    assert (row["last_error"], row["last_success_at"]) == (result.error, None)


def test_ingest_url_refuses_a_gzip_bomb_and_an_oversized_body(configure, engine, local_server, shared_data):
    """`ingest URL` reads at most max_response_bytes, counted after decompression; the store is untouched."""
    import gzip

    from typer.testing import CliRunner

    from academichub.cli import app

    day = (shared_data / "arxiv/rss/2024-11-28-all-archives.xml").read_bytes()  # 2.8 MB, 1504 papers
    bomb = gzip.compress(b"<rss>" + b" " * (64 * 1024 * 1024))  # some 64 KB on the wire, 64 MiB unpacked
    local_server.route("/day.xml", body=day)
    local_server.route("/bomb.xml", body=bomb, headers={"Content-Encoding": "gzip"})
    configure(MAX_RESPONSE_BYTES=str(len(day) - 1), ARXIV_MIN_INTERVAL="0")
    runner = CliRunner()
    for path, reason in [("/day.xml", f"response larger than {len(day) - 1} bytes (Content-Length {len(day)})"),
                         ("/bomb.xml", f"response larger than {len(day) - 1} bytes; stopped reading")]:
        result = runner.invoke(app, ["ingest", local_server.url(path)])
        assert result.exit_code == 1, result.output
        assert f"error: {local_server.url(path)}: {reason}" in " ".join(result.output.split())
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 0
    configure(MAX_RESPONSE_BYTES=str(len(day)))  # exactly the size: read whole, stored whole
    result = runner.invoke(app, ["ingest", local_server.url("/day.xml")])
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(papers)).scalar_one() == 1504


@pytest.mark.parametrize("name", ["HTTP_REQUEST_DEADLINE", "SOURCE_RUN_DEADLINE", "MAX_RESPONSE_BYTES"])
def test_a_limit_of_zero_or_less_is_a_clear_settings_error(configure, name):
    from academichub.errors import ConfigError

    with pytest.raises(ConfigError, match=f"setting {name.lower()}: Input should be greater than 0"):
        configure(**{name: "0"})
