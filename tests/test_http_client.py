"""PoliteClient against a real local server: identification, spacing between requests, retries that
honour Retry-After, broken connections, conditional GET, timeouts. Waits go to an injected sleep
(and the interval to an injected clock), so nothing here really waits or measures time."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from email.utils import format_datetime

import httpx
import pytest
from localserver import LocalServer, Reply

from academichub.errors import SourceError
from academichub.settings import Settings
from academichub.sources.http import HTTPStatusError, PoliteClient, retry_after_seconds
from academichub.store.state import StoreValidatorCache

ETAG = '"rss-2024-11-28"'
LAST_MODIFIED = "Thu, 28 Nov 2024 05:00:00 GMT"


class FakeClock:
    """A monotonic clock that only moves when told to, or when the client 'sleeps' on it."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class MemoryValidatorCache:
    def __init__(self):
        self.saved: dict[str, tuple[str | None, str | None]] = {}

    def get_validators(self, url: str) -> tuple[str | None, str | None]:
        return self.saved.get(url, (None, None))

    def set_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        self.saved[url] = (etag, last_modified)


def header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_client(clock):
    clients: list[PoliteClient] = []

    def make(**options) -> PoliteClient:
        options.setdefault("user_agent", "AcademicHub-tests")
        options.setdefault("sleep", clock.sleep)
        options.setdefault("clock", clock)
        client = PoliteClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def feed_body(shared_data) -> bytes:
    return (shared_data / "arxiv" / "rss" / "empty.xml").read_bytes()


def test_user_agent_names_the_project_and_the_contact(server, make_client, monkeypatch, tmp_path):
    monkeypatch.delenv("ACADEMICHUB_USER_AGENT", raising=False)
    settings = Settings(contact_email="radar@example.org", data_dir=tmp_path)
    server.route("/ua", body=b"ok")
    make_client(user_agent=settings.full_user_agent).get(server.url("/ua"))
    sent = header(server.requests[0][1], "User-Agent")
    assert sent == settings.full_user_agent
    assert "AcademicHub" in sent and "radar@example.org" in sent


def test_min_interval_spaces_requests(server, make_client, clock):
    server.route("/rss/cs", body=b"ok")
    client = make_client(min_interval=3.0)
    client.get(server.url("/rss/cs"))  # the first request never waits
    client.get(server.url("/rss/cs"))  # immediately after: waits the whole interval
    clock.now += 1.0  # one second of other work
    client.get(server.url("/rss/cs"))  # waits what is left of it
    clock.now += 5.0
    client.get(server.url("/rss/cs"))  # interval already over
    assert clock.sleeps == [3.0, 2.0]
    assert server.hits("/rss/cs") == 4


def test_429_with_retry_after_seconds_is_retried_after_that_wait(server, make_client, clock):
    server.route("/busy", responses=[Reply(429, headers={"Retry-After": "7"}), Reply(200, b"ok")])
    fetched = make_client(retries=2, backoff_base=5.0).get(server.url("/busy"))
    assert (fetched.status, fetched.content) == (200, b"ok")
    assert clock.sleeps == [7.0]
    assert server.hits("/busy") == 2


def test_503_with_retry_after_http_date_is_retried_after_that_wait(server, make_client, clock):
    # A date in the past means "now". Without the header the wait would be the exponential
    # backoff (5.0), so 0.0 proves the date was read. A date beyond max_backoff is not cut short:
    # see test_retry_after_longer_than_the_limit_is_not_cut_short.
    server.route(
        "/maintenance",
        responses=[
            Reply(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
            Reply(200, b"back"),
        ],
    )
    fetched = make_client(retries=3, backoff_base=5.0, max_backoff=120.0).get(server.url("/maintenance"))
    assert fetched.content == b"back"
    assert clock.sleeps == [0.0]


def test_retry_after_forms():
    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=timezone.utc)
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=now.timestamp()) == 30.0
    assert retry_after_seconds(format_datetime(now, usegmt=True), now=now.timestamp()) == 0.0
    assert retry_after_seconds(" 120 ") == 120.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_retries_exhausted_names_url_and_status(server, make_client, clock):
    server.route("/down", status=503, body=b"Service Unavailable")
    with pytest.raises(SourceError) as caught:
        make_client(retries=2, backoff_base=1.0).get(server.url("/down"), params={"page": "2"})
    error = caught.value
    assert error.status == 503
    assert error.url == server.url("/down?page=2")
    assert str(error) == f"{server.url('/down?page=2')}: HTTP 503 after 3 attempts"
    assert isinstance(error, HTTPStatusError) and error.body == b"Service Unavailable"
    assert clock.sleeps == [1.0, 2.0]  # exponential backoff when no Retry-After is given
    assert server.hits("/down") == 3


def test_client_errors_are_not_retried_and_keep_the_body(server, make_client, clock):
    server.route("/missing", status=404, body=b"Resource not found.")
    with pytest.raises(HTTPStatusError, match="HTTP 404: Resource not found.") as caught:
        make_client(retries=3).get(server.url("/missing"))
    assert (caught.value.status, caught.value.body) == (404, b"Resource not found.")
    assert server.hits("/missing") == 1
    assert clock.sleeps == []


def test_connection_reset_is_retried(server, make_client, clock):
    server.route("/reset", responses=[Reply(reset=True), Reply(200, b"ok")])
    fetched = make_client(retries=2, backoff_base=1.0).get(server.url("/reset"))
    assert fetched.content == b"ok"
    assert server.hits("/reset") == 2
    assert clock.sleeps == [1.0]


def test_truncated_body_is_retried(server, make_client, feed_body):
    server.route("/cut", responses=[Reply(200, feed_body, truncate_to=100), Reply(200, feed_body)])
    fetched = make_client(retries=2).get(server.url("/cut"))
    assert fetched.content == feed_body
    assert server.hits("/cut") == 2


def test_truncated_body_every_time_is_a_source_error(server, make_client, feed_body):
    server.route("/cut", responses=[Reply(200, feed_body, truncate_to=100)])
    with pytest.raises(SourceError, match="RemoteProtocolError") as caught:
        make_client(retries=2).get(server.url("/cut"))
    assert caught.value.url == server.url("/cut") and caught.value.status is None
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
    assert server.hits("/cut") == 3


def _conditional_route(server, path: str, body: bytes) -> None:
    """Like a real feed server: 304 when the request's validators match, else the body with them."""

    def answer(raw_path: str, headers: dict) -> Reply:
        if header(headers, "If-None-Match") == ETAG or header(headers, "If-Modified-Since") == LAST_MODIFIED:
            return Reply(304, headers={"ETag": ETAG})
        return Reply(200, body, {"ETag": ETAG, "Last-Modified": LAST_MODIFIED})

    server.route(path, handler=answer)


def _second_request_is_not_modified(server, first: PoliteClient, second: PoliteClient, body: bytes) -> None:
    url = server.url("/rss/cs")
    fetched = first.get(url)
    assert (fetched.status, fetched.content, fetched.not_modified) == (200, body, False)
    again = second.get(url)
    assert (again.status, again.content, again.not_modified) == (304, b"", True)
    (_, sent_first), (_, sent_again) = server.requests
    assert header(sent_first, "If-None-Match") is None and header(sent_first, "If-Modified-Since") is None
    assert header(sent_again, "If-None-Match") == ETAG
    assert header(sent_again, "If-Modified-Since") == LAST_MODIFIED


def test_conditional_get_sends_validators_and_reports_not_modified(server, make_client, feed_body):
    _conditional_route(server, "/rss/cs", feed_body)
    cache = MemoryValidatorCache()
    client = make_client(cache=cache)
    _second_request_is_not_modified(server, client, client, feed_body)
    assert cache.saved == {server.url("/rss/cs"): (ETAG, LAST_MODIFIED)}


def test_unconditional_get_sends_no_validators(server, make_client, feed_body):
    _conditional_route(server, "/rss/cs", feed_body)
    cache = MemoryValidatorCache()
    cache.set_validators(server.url("/rss/cs"), ETAG, LAST_MODIFIED)
    fetched = make_client(cache=cache).get(server.url("/rss/cs"), conditional=False)
    assert (fetched.status, fetched.content) == (200, feed_body)
    assert header(server.requests[0][1], "If-None-Match") is None


def test_validators_kept_in_the_store_survive_a_new_client(server, make_client, engine, feed_body):
    _conditional_route(server, "/rss/cs", feed_body)
    # two clients on one database: the second run of the fetcher sees the first run's validators
    first = make_client(cache=StoreValidatorCache(engine))
    second = make_client(cache=StoreValidatorCache(engine))
    _second_request_is_not_modified(server, first, second, feed_body)
    assert StoreValidatorCache(engine).get_validators(server.url("/rss/cs")) == (ETAG, LAST_MODIFIED)


def test_timeout_is_a_source_error(local_server, make_client, clock):
    # Its own server: the stalled handler holds the server's lock until released below.
    release = threading.Event()

    def stall(raw_path: str, headers: dict) -> Reply:
        release.wait(5)
        return Reply(reset=True)  # the client is long gone; nothing to write to

    local_server.route("/slow", handler=stall)
    try:
        with pytest.raises(SourceError, match="ReadTimeout") as caught:
            make_client(timeout=0.2, retries=1, backoff_base=1.0).get(local_server.url("/slow"))
        assert caught.value.url == local_server.url("/slow")
        assert isinstance(caught.value.__cause__, httpx.TimeoutException)
        assert clock.sleeps == [1.0]  # timed out once, retried once
    finally:
        release.set()


def test_retry_after_longer_than_the_limit_is_not_cut_short(local_server):
    from localserver import Reply

    from academichub.errors import SourceError
    from academichub.sources.http import PoliteClient

    local_server.route("/slow", responses=[Reply(503, b"busy", {"Retry-After": "600"}), Reply(200, b"ok")])
    waits: list[float] = []
    with PoliteClient(user_agent="AcademicHub-test", retries=3, max_backoff=120, sleep=waits.append) as client:
        with pytest.raises(SourceError, match="asked to come back in 600 s"):
            client.get(local_server.url("/slow"))
    assert local_server.hits("/slow") == 1
    assert waits == []


class _LengthHidingTransport(httpx.BaseTransport):
    """The real transport, but the response loses its Content-Length (as a chunked one would have
    none) and counts the bytes the client pulls from the connection."""

    def __init__(self):
        self._inner = httpx.HTTPTransport()
        self.bytes_read = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"content-length"]
        return httpx.Response(response.status_code, headers=headers, stream=_Counting(response.stream, self))

    def close(self) -> None:
        self._inner.close()


class _Counting(httpx.SyncByteStream):
    def __init__(self, inner, owner: _LengthHidingTransport):
        self._inner, self._owner = inner, owner

    def __iter__(self):
        for chunk in self._inner:
            self._owner.bytes_read += len(chunk)
            yield chunk

    def close(self) -> None:
        self._inner.close()


def test_max_bytes_stops_reading_a_large_body_part_way(server, make_client):
    big = b"x" * (8 * 1024 * 1024)
    server.route("/huge", body=big)
    transport = _LengthHidingTransport()
    client = make_client(max_bytes=100_000, transport=transport)
    with pytest.raises(SourceError, match=r"larger than 100000 bytes; stopped reading") as caught:
        client.get(server.url("/huge"))
    assert caught.value.url == server.url("/huge")
    assert transport.bytes_read < 1024 * 1024  # not the 8 MiB a read-then-check would have pulled
    assert server.hits("/huge") == 1  # too large is not retried


def test_max_bytes_refuses_a_declared_length_before_reading(server, make_client):
    server.route("/huge", body=b"x" * 300_000)
    with pytest.raises(SourceError, match=r"larger than 100000 bytes \(Content-Length 300000\)"):
        make_client(max_bytes=100_000).get(server.url("/huge"))
    server.route("/fits", body=b"x" * 100_000)
    assert len(make_client(max_bytes=100_000).get(server.url("/fits")).content) == 100_000


def test_max_bytes_counts_decompressed_bytes(server, make_client):
    import gzip

    bomb = gzip.compress(b"\0" * (16 * 1024 * 1024))  # some 16 KB on the wire
    server.route("/bomb", body=bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(SourceError, match="larger than 1000000 bytes; stopped reading"):
        make_client(max_bytes=1_000_000).get(server.url("/bomb"))


def test_post_json_sends_json_with_the_same_retries_and_no_validators(clock):
    # The local server answers GET only, so a mock transport stands in for the upstream here.
    seen: list[httpx.Request] = []
    answers = [
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(200, json=[{"paperId": "abc"}]),
        httpx.Response(400, text='{"error": "bad ids"}'),
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    cache = MemoryValidatorCache()
    cache.set_validators("https://api.example.org/paper/batch", ETAG, LAST_MODIFIED)
    with PoliteClient(
        user_agent="AcademicHub-tests", transport=httpx.MockTransport(answer), sleep=clock.sleep, clock=clock, cache=cache
    ) as client:
        fetched = client.post_json("https://api.example.org/paper/batch", {"ids": ["abc"]}, headers={"x-api-key": "k"})
        assert (fetched.status, fetched.url) == (200, "https://api.example.org/paper/batch")
        assert fetched.content == b'[{"paperId":"abc"}]'
        with pytest.raises(HTTPStatusError, match="HTTP 400") as caught:
            client.post_json("https://api.example.org/paper/batch", {"ids": ["?"]})
    assert caught.value.body == b'{"error": "bad ids"}' and caught.value.status == 400
    assert clock.sleeps == [2.0]  # the 429 was retried after its Retry-After
    first = seen[0]
    assert first.method == "POST" and first.content == b'{"ids":["abc"]}'
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["x-api-key"] == "k" and first.headers["User-Agent"] == "AcademicHub-tests"
    assert "If-None-Match" not in first.headers and "If-Modified-Since" not in first.headers


def _trickled(server, path: str) -> int:
    """Bytes the server trickled before the client left (its handler ends a write or two later)."""
    import time

    for _ in range(200):
        if path in server.trickled:
            return server.trickled[path]
        time.sleep(0.05)
    raise AssertionError(f"the server is still trickling {path}: the client never hung up")


def test_a_trickled_body_is_cut_at_the_request_deadline(server, make_client, clock, feed_body):
    # One byte every 20 ms: each read is quick, so the 10 s read timeout alone would wait out the
    # whole body (some 18 s); the 0.5 s deadline stops it, and it is not retried.
    server.route("/slow", responses=[Reply(200, feed_body, trickle=0.02)])
    with pytest.raises(SourceError) as caught:
        make_client(timeout=10, retries=2, request_deadline=0.5).get(server.url("/slow"))
    assert str(caught.value) == f"{server.url('/slow')}: no complete response within the http_request_deadline of 0.5 s; stopped reading"
    assert server.hits("/slow") == 1 and clock.sleeps == []
    assert _trickled(server, "/slow") < len(feed_body)


def test_trickled_headers_are_cut_at_the_request_deadline(server, make_client, feed_body):
    # The deadline bounds each socket read, so it holds before the body (and its chunk loop) begins.
    padding = {"X-Padding": "p" * 300}  # headers that alone take 6 s at this pace
    server.route("/slow-head", responses=[Reply(200, feed_body, padding, trickle=0.02, trickle_headers=True)])
    with pytest.raises(SourceError, match="no complete response within the http_request_deadline of 0.5 s"):
        make_client(timeout=10, retries=0, request_deadline=0.5).get(server.url("/slow-head"))
    assert _trickled(server, "/slow-head") < 300  # cut inside the headers


def test_a_quick_answer_is_untouched_by_the_deadlines(server, make_client, feed_body):
    server.route("/rss/cs", body=feed_body)
    client = make_client(request_deadline=30, deadline=60)
    assert [client.get(server.url("/rss/cs")).content for _ in range(3)] == [feed_body] * 3


def test_no_request_is_sent_once_the_client_deadline_has_passed(server, make_client, clock):
    server.route("/page", body=b"ok")
    client = make_client(deadline=60)
    assert client.get(server.url("/page")).content == b"ok"
    clock.now += 61  # a minute of parsing and merging
    with pytest.raises(SourceError, match="the source_run_deadline of 60 s has passed; request not sent") as caught:
        client.get(server.url("/page"))
    assert caught.value.url == server.url("/page")
    assert server.hits("/page") == 1


def test_a_wait_that_would_pass_the_client_deadline_is_not_waited(server, make_client, clock):
    server.route("/busy", responses=[Reply(429, headers={"Retry-After": "40"}), Reply(429, headers={"Retry-After": "40"}), Reply(200, b"ok")])
    with pytest.raises(SourceError) as caught:
        make_client(retries=4, deadline=60).get(server.url("/busy"))
    assert str(caught.value) == f"{server.url('/busy')}: a wait of 40 s would run past the source_run_deadline of 60 s; stopped"
    assert clock.sleeps == [40.0] and server.hits("/busy") == 2
    # the minimum interval counts against the deadline too
    spaced = make_client(min_interval=3.0, deadline=2.0)
    spaced.get(server.url("/busy"))
    with pytest.raises(SourceError, match="a wait of 3 s would run past the source_run_deadline of 2 s"):
        spaced.get(server.url("/busy"))


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "raw-deflate", "identity"])
def test_compressed_answers_are_decoded(server, make_client, feed_body, encoding):
    import gzip
    import zlib

    squeeze = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = {
        "gzip": gzip.compress(feed_body), "x-gzip": gzip.compress(feed_body), "deflate": zlib.compress(feed_body),
        "raw-deflate": squeeze.compress(feed_body) + squeeze.flush(), "identity": feed_body,
    }[encoding]
    server.route("/packed", body=body, headers={"Content-Encoding": encoding.replace("raw-", "")})
    assert make_client(max_bytes=len(feed_body)).get(server.url("/packed")).content == feed_body
    assert header(server.requests[0][1], "Accept-Encoding") == "gzip, deflate"


def test_an_encoding_not_asked_for_is_refused(server, make_client):
    server.route("/br", body=b"\x1b\x03\x00", headers={"Content-Encoding": "br"})
    with pytest.raises(SourceError, match=r"unsupported Content-Encoding 'br' \(asked for gzip or deflate\)"):
        make_client().get(server.url("/br"))
    server.route("/broken", body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    with pytest.raises(SourceError, match="cannot decode the gzip body"):
        make_client().get(server.url("/broken"))


def test_a_gzip_bomb_costs_no_more_memory_than_the_cap(server, make_client):
    # 64 MiB of zeros is some 64 KB of gzip, one or two network reads: inflating a read whole (as
    # httpx does) holds tens of MiB at once; inflating in 64 KiB steps stops within the 1 MB cap.
    import gzip
    import tracemalloc

    server.route("/bomb", body=gzip.compress(b"\0" * (64 * 1024 * 1024)), headers={"Content-Encoding": "gzip"})
    client = make_client(max_bytes=1_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match="larger than 1000000 bytes; stopped reading"):
            client.get(server.url("/bomb"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
