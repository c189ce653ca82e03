"""The polite HTTP client every source uses: one connection, a minimum interval between requests,
a User-Agent naming the project and a contact, conditional GET, timeouts, and retries with
backoff on 429/5xx that honour Retry-After. Retries are tenacity's; the waiting rule is ours.
Bodies are streamed, so `max_bytes` stops a runaway (or decompression-bomb) response part-way
instead of after it has filled memory."""

from __future__ import annotations

import email.utils
import threading
import time
from dataclasses import dataclass
from typing import Protocol

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
        self.cache = cache
        self._sleep = sleep
        self._clock = clock
        self._last_request = float("-inf")
        self._lock = threading.Lock()
        self._client = httpx.Client(
            headers={"User-Agent": user_agent},
            timeout=timeout,
            follow_redirects=True,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
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
            self._sleep(delay)

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
                try:
                    with self._client.stream(method, url, **request) as response:
                        reply = self._read_capped(response, cache_key)
                finally:
                    self._last_request = self._clock()
            if reply.status_code in RETRY_STATUSES:
                raise _RetryableStatus(reply)
            return reply

        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._backoff,
            retry=retry_if_exception(self._should_retry),
            sleep=self._sleep,
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

        if reply.status_code >= 400:
            snippet = reply.text[:200].strip().replace("\n", " ")
            raise HTTPStatusError(
                f"HTTP {reply.status_code}: {snippet}",
                url=cache_key,
                status=reply.status_code,
                body=reply.content,
            )
        return reply

    def _read_capped(self, response: httpx.Response, cache_key: str) -> _Reply:
        """Read the body, but stop as soon as it passes max_bytes (counted after decompression, so a
        small gzip bomb is stopped too): a runaway upstream must not fill memory."""
        cap = self.max_bytes
        if cap is not None:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cap and not response.headers.get("Content-Encoding"):
                raise SourceError(f"response larger than {cap} bytes (Content-Length {declared})", url=cache_key)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if cap is not None and size > cap:
                raise SourceError(f"response larger than {cap} bytes; stopped reading", url=cache_key)
            chunks.append(chunk)
        return _Reply(response.status_code, response.headers, b"".join(chunks), response.encoding or "utf-8")
