"""The polite HTTP client every source uses: one connection, a minimum interval between requests,
a User-Agent naming the project and a contact, conditional GET, timeouts, and retries with
backoff on 429/5xx that honour Retry-After. Retries are tenacity's; the waiting rule is ours.
Bodies are streamed, so `max_bytes` stops a runaway (or decompression-bomb) response part-way
instead of after it has filled memory; gzip and deflate are inflated here in 64 KiB steps
(`_Inflater`), so the cap holds to within a step, and no other encoding is asked for.

Timeouts are per read, so an upstream sending one byte every few seconds never trips them. Two
deadlines bound the total instead: `request_deadline` for one request (connect, headers and body),
`deadline` for everything the client does (one source run, waits between retries included). The
network backend under the connection pool (`DeadlineBackend`) shortens each socket operation to
what is left, so a trickle is cut at the deadline, headers included."""

from __future__ import annotations

import email.utils
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

import httpcore
import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from ..errors import SourceError

RETRY_STATUSES = {429, 500, 502, 503, 504}


class ValidatorCache(Protocol):
    """Where ETag/Last-Modified live between runs (the store implements it)."""

    def get_validators(self, url: str) -> tuple[str | None, str | None]: ...

    def set_validators(self, url: str, etag: str | None, last_modified: str | None) -> None: ...


@dataclass(slots=True)
class Fetched:
    url: str
    status: int
    content: bytes
    headers: httpx.Headers
    not_modified: bool = False


class HTTPStatusError(SourceError):
    """An error status that retries did not cure. Keeps the body: some upstreams explain the
    refusal there (arXiv's API answers a bad query with 400 and an Atom error feed)."""

    def __init__(self, message: str, *, url: str, status: int, body: bytes):
        self.body = body
        super().__init__(message, url=url, status=status)


@dataclass(slots=True)
class _Reply:
    """A response read in full (within max_bytes) while the connection was still open."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    encoding: str

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class _Deadline:
    """When (time.monotonic) the request in flight must be done, and which limit that is."""

    at: float
    seconds: float
    name: str  # the setting, for the message: http_request_deadline or source_run_deadline


class _DeadlinePassed(Exception):
    """Raised under httpx (neither httpx's nor httpcore's: it is not mapped, so it is not retried)."""

    def __init__(self, deadline: _Deadline, *, waiting: float | None = None, unsent: bool = False):
        self.deadline = deadline
        self.waiting = waiting
        self.unsent = unsent
        super().__init__(deadline.name)

    def message(self) -> str:
        limit = f"{self.deadline.name} of {self.deadline.seconds:g} s"
        if self.waiting is not None:
            return f"a wait of {self.waiting:g} s would run past the {limit}; stopped"
        if self.unsent:
            return f"the {limit} has passed; request not sent"
        return f"no complete response within the {limit}; stopped reading"


_in_flight: ContextVar[_Deadline | None] = ContextVar("academichub_http_deadline", default=None)


def _bounded(operation, *args, timeout: float | None):
    """Run a socket operation with its timeout shortened to what is left of the deadline."""
    deadline = _in_flight.get()
    if deadline is None:
        return operation(*args, timeout=timeout)
    left = deadline.at - time.monotonic()
    if left <= 0:
        raise _DeadlinePassed(deadline)
    try:
        return operation(*args, timeout=left if timeout is None else min(timeout, left))
    except (httpcore.ConnectTimeout, httpcore.ReadTimeout, httpcore.WriteTimeout) as exc:
        if time.monotonic() >= deadline.at:
            raise _DeadlinePassed(deadline) from exc
        raise


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _bounded(self._inner.read, max_bytes, timeout=timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        return _bounded(self._inner.write, buffer, timeout=timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        return _DeadlineStream(_bounded(self._inner.start_tls, ssl_context, server_hostname, timeout=timeout))

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend with every connect, read and write bounded by the deadline of the
    request in flight (set by PoliteClient); without one, it is the backend it wraps."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None):
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        def connect(timeout):
            return self._inner.connect_tcp(host, port, timeout, local_address, socket_options)

        return _DeadlineStream(_bounded(connect, timeout=timeout))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _BackendTransport(httpx.HTTPTransport):
    """httpx's transport over a given httpcore network backend (httpx takes none itself)."""

    def __init__(self, backend: httpcore.NetworkBackend, limits: httpx.Limits):
        super().__init__(limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineBackend(backend),
        )


ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1)


def pooled_transport(backend: httpcore.NetworkBackend | None = None, *, limits: httpx.Limits = ONE_CONNECTION):
    """The transport PoliteClient uses: httpx's own, with connections made through `backend`
    (default: plain sockets) and bounded by the request's deadline."""
    return _BackendTransport(backend or httpcore.SyncBackend(), limits)


def _environment_names_a_proxy() -> bool:
    return any(scheme in ("http", "https", "all") for scheme in urllib.request.getproxies())


class _RetryableStatus(Exception):
    def __init__(self, response: _Reply):
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class PoliteClient:
    def __init__(
        self,
        *,
        user_agent: str,
        min_interval: float = 0.0,
        timeout: float = 30.0,
        retries: int = 4,
        max_backoff: float = 120.0,
        backoff_base: float = 1.0,
        max_bytes: int | None = None,
        request_deadline: float | None = None,
        deadline: float | None = None,
        cache: ValidatorCache | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep=time.sleep,
        clock=time.monotonic,
    ):
        self.min_interval = min_interval
        self.retries = retries
        self.max_backoff = max_backoff
        self.backoff_base = backoff_base
        self.max_bytes = max_bytes
        self.request_deadline = request_deadline
        self.deadline = deadline
        self.cache = cache
        self._sleep = sleep
        self._clock = clock
        self._ends_at = clock() + deadline if deadline is not None else None
        self._last_request = float("-inf")
        self._lock = threading.Lock()
        if transport is None and not _environment_names_a_proxy():
            # Our own pool, so deadlines bound every socket operation. Where the environment names
            # a proxy, httpx's default transport keeps using it; deadlines then bound the body only.
            transport = pooled_transport()
        self._client = httpx.Client(
            # Only what _Inflater decodes in bounded steps (httpx would add br/zstd when installed).
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=timeout,
            follow_redirects=True,
            limits=ONE_CONNECTION,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _wait_turn(self) -> None:
        if self.min_interval <= 0:
            return
        delay = self._last_request + self.min_interval - self._clock()
        if delay > 0:
            self._sleep_within_deadline(delay)

    def _run_deadline(self) -> _Deadline | None:
        return _Deadline(self._ends_at, self.deadline, "source_run_deadline") if self._ends_at is not None else None

    def _sleep_within_deadline(self, seconds: float) -> None:
        """Waiting past the run's deadline is pointless: fail now, and say so."""
        if self._ends_at is not None and self._clock() + seconds > self._ends_at:
            raise _DeadlinePassed(self._run_deadline(), waiting=seconds)
        self._sleep(seconds)

    def _request_deadline(self) -> _Deadline | None:
        """The nearer of the request's own deadline and what is left of the run's, in real time."""
        limits = []
        if self.request_deadline is not None:
            limits.append((self.request_deadline, self.request_deadline, "http_request_deadline"))
        if self._ends_at is not None:
            left = self._ends_at - self._clock()
            if left <= 0:
                raise _DeadlinePassed(self._run_deadline(), unsent=True)
            limits.append((left, self.deadline, "source_run_deadline"))
        if not limits:
            return None
        left, seconds, name = min(limits)
        return _Deadline(time.monotonic() + left, seconds, name)

    def _retry_after_beyond_limit(self, exc: BaseException) -> float | None:
        """Retry-After longer than we are willing to wait: coming back early would be impolite."""
        if isinstance(exc, _RetryableStatus):
            hinted = retry_after_seconds(exc.response.headers.get("Retry-After"))
            if hinted is not None and hinted > self.max_backoff:
                return hinted
        return None

    def _should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, (_RetryableStatus, httpx.TransportError)):
            return False
        return self._retry_after_beyond_limit(exc) is None

    def _backoff(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus):
            hinted = retry_after_seconds(exc.response.headers.get("Retry-After"))
            if hinted is not None:
                return min(hinted, self.max_backoff)
        return min(self.backoff_base * (2 ** (state.attempt_number - 1)), self.max_backoff)

    def get(self, url: str, params: dict | None = None, *, conditional: bool = True) -> Fetched:
        """GET with politeness and retries. A 304 comes back as `not_modified=True` with no body."""
        headers: dict[str, str] = {}
        cache_key = str(httpx.URL(url, params=params))
        if conditional and self.cache is not None:
            etag, last_modified = self.cache.get_validators(cache_key)
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
        reply = self._send("GET", url, cache_key, params=params, headers=headers)
        if reply.status_code == 304:
            return Fetched(cache_key, 304, b"", reply.headers, not_modified=True)
        if conditional and self.cache is not None:
            etag = reply.headers.get("ETag")
            last_modified = reply.headers.get("Last-Modified")
            if etag or last_modified:
                self.cache.set_validators(cache_key, etag, last_modified)
        return Fetched(cache_key, reply.status_code, reply.content, reply.headers)

    def post_json(self, url: str, json: dict, headers: dict | None = None) -> Fetched:
        """POST a JSON body (batch lookups: Semantic Scholar's /paper/batch) with the same spacing,
        retries and errors as get(); nothing is conditional or cached."""
        reply = self._send("POST", url, url, json=json, headers=dict(headers or {}))
        return Fetched(url, reply.status_code, reply.content, reply.headers)

    def _send(self, method: str, url: str, cache_key: str, **request) -> _Reply:
        """One request with politeness and retries; an error status retries did not cure raises."""

        def attempt() -> _Reply:
            with self._lock:
                self._wait_turn()
                deadline = self._request_deadline()
                token = _in_flight.set(deadline)
                try:
                    with self._client.stream(method, url, **request) as response:
                        reply = self._read_capped(response, cache_key, deadline)
                finally:
                    _in_flight.reset(token)
                    self._last_request = self._clock()
            if reply.status_code in RETRY_STATUSES:
                raise _RetryableStatus(reply)
            return reply

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._backoff,
            retry=retry_if_exception(self._should_retry),
            sleep=self._sleep_within_deadline,
            reraise=True,
        )
        try:
            reply = retrying(attempt)
        except _RetryableStatus as exc:
            asked = self._retry_after_beyond_limit(exc)
            if asked is not None:
                raise HTTPStatusError(
                    f"HTTP {exc.response.status_code}: asked to come back in {asked:.0f} s, "
                    f"longer than http_max_backoff ({self.max_backoff:.0f} s); not retrying early",
                    url=cache_key,
                    status=exc.response.status_code,
                    body=exc.response.content,
                ) from exc
            raise HTTPStatusError(
                f"HTTP {exc.response.status_code} after {self.retries + 1} attempts",
                url=cache_key,
                status=exc.response.status_code,
                body=exc.response.content,
            ) from exc
        except httpx.TransportError as exc:
            raise SourceError(f"{type(exc).__name__}: {exc}", url=cache_key) from exc
        except _DeadlinePassed as exc:
            raise SourceError(exc.message(), url=cache_key) from exc

        if reply.status_code >= 400:
            snippet = reply.text[:200].strip().replace("\n", " ")
            raise HTTPStatusError(
                f"HTTP {reply.status_code}: {snippet}",
                url=cache_key,
                status=reply.status_code,
                body=reply.content,
            )
        return reply

    def _read_capped(self, response: httpx.Response, cache_key: str, deadline: _Deadline | None) -> _Reply:
        """Read the body, but stop as soon as it passes max_bytes (counted after decompression, so a
        small gzip bomb is stopped too): a runaway upstream must not fill memory. The deadline is
        checked per chunk as well, for transports that do not go through DeadlineBackend."""
        cap = self.max_bytes
        if cap is not None:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cap and not response.headers.get("Content-Encoding"):
                raise SourceError(f"response larger than {cap} bytes (Content-Length {declared})", url=cache_key)
        if response.is_stream_consumed:  # built in memory (a mock transport): httpx read and decoded it
            inflater, raws = _Inflater("", cache_key), iter([response.content])
        else:
            inflater, raws = _Inflater(response.headers.get("Content-Encoding", ""), cache_key), response.iter_raw()
        chunks: list[bytes] = []
        size = 0
        for raw in raws:
            for chunk in inflater.decode(raw):
                size += len(chunk)
                if cap is not None and size > cap:
                    raise SourceError(f"response larger than {cap} bytes; stopped reading", url=cache_key)
                chunks.append(chunk)
            if deadline is not None and time.monotonic() > deadline.at:
                raise _DeadlinePassed(deadline)
        return _Reply(response.status_code, response.headers, b"".join(chunks), response.encoding or "utf-8")


class _Inflater:
    """Content-Encoding undone in pieces of at most STEP bytes. httpx's own decoders inflate each
    network chunk whole: 64 KiB of gzip can hold 64 MiB, so a cap checked after them is passed by
    that much before it can act. Here the cap is checked every STEP bytes."""

    STEP = 1 << 16

    def __init__(self, content_encoding: str, url: str):
        self._url = url
        self._encoding = content_encoding.strip().lower()
        self._raw_deflate_possible = False
        if self._encoding in ("", "identity"):
            self._inflate = None
        elif self._encoding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._encoding == "deflate":  # zlib-wrapped as the RFC says, or raw as some servers send
            self._inflate = zlib.decompressobj()
            self._raw_deflate_possible = True
        else:
            raise SourceError(f"unsupported Content-Encoding {content_encoding!r} (asked for gzip or deflate)", url=url)

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._inflate is None:
            if data:
                yield data
            return
        try:
            while True:
                piece = self._decompress(data)
                data = self._inflate.unconsumed_tail
                if piece:
                    yield piece
                if not data and len(piece) < self.STEP:
                    return
        except zlib.error as exc:
            raise SourceError(f"cannot decode the {self._encoding} body: {exc}", url=self._url) from exc

    def _decompress(self, data: bytes) -> bytes:
        try:
            piece = self._inflate.decompress(data, self.STEP)
        except zlib.error:
            if not self._raw_deflate_possible:
                raise
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            piece = self._inflate.decompress(data, self.STEP)
        self._raw_deflate_possible = False  # the first bytes decided which deflate this is
        return piece
