"""Rendered pages kept per request and store state, so that the feed, a radar's page and a search
are rendered once per change of the store rather than once per view (issue 17: 32 readers at once).

A kept page is served only to the same request: the same path and query string, the same viewer
(user, session and so its CSRF token, how it signed in, its language), the same language inputs
(the `lang` cookie, Accept-Language), and only while the store is unchanged, on the same day,
and before the moment the page names as coming (the loop's next fetch, which then reads "due
now": request.state.page_valid_until). The store's state is `hub.data_version`
(store/data_version.py): anything committed by any connection or process changes it (on
PostgreSQL, to a table a page reads: not the job ledger or sign-in records), so a
feedback, a save, a new batch, a stored ranking or an import is seen by the next view. One
viewer's page is never another's: the viewer is part of the key.

The feed without a `seed` (and without a search or a radar, whose order uses none) is a new shuffle on every view. Kept, it would be the same shuffle
until the store changes; instead each such view draws one of SHUFFLES slots, each rendered once
with its own random seed, so a reload still shows another shuffle (one of SHUFFLES per state).

Misses for the same page are rendered once (the others wait for it): a burst of readers after a
change costs one render, not one per reader. A seedless view whose slot is not rendered yet gets
another kept shuffle at once while its own is rendered in the background, one at a time. Only 200 HTML answers (and the
rank JSON below) are kept; anything else (errors, redirects, other JSON, HEAD) passes through.

A radar's ranking as JSON (`/api/radars/NAME/rank`, what scripts poll) is kept the same way: by
path, query and viewer, and a bearer token is part of the viewer (a digest of it: two tokens of
one user are two keys). A kept answer carries its ETag: an If-None-Match that names it is
answered 304 here, on the event loop, and a 200 replay is not hashed again downstream."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..store.state import as_utc
from . import i18n
from .http_cache import etag_of, send_tagged

PAGES_KEPT = 512  # rendered pages per process (a page is 30-100 KB)
SHUFFLES = 16  # kept shuffles of a seedless feed view per store state
WAIT_S = 30.0  # the longest a reader waits for another's render of the same page before rendering its own
CACHED_PATHS = frozenset({"/"})  # the feed, a radar's feed (?radar=) and search (?q=)
JSON_PREFIX, JSON_SUFFIX = "/api/radars/", "/rank"  # a radar's ranking as JSON: /api/radars/NAME/rank


def kept_json(path: str) -> bool:
    """Whether `path` is a JSON answer kept like a page (a radar's ranking)."""
    return path.startswith(JSON_PREFIX) and path.endswith(JSON_SUFFIX) and "/" not in path[len(JSON_PREFIX):-len(JSON_SUFFIX)]


@dataclass(slots=True)
class Kept:
    version: tuple
    valid_until: Any  # an aware datetime the page says something about (the next fetch), or None
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes = b""  # web/http_cache.py's tag of the body, made once when kept


class PageCache:
    """Pure ASGI middleware inside ViewerGate (it reads the viewer the gate resolved)."""

    def __init__(self, app: ASGIApp, *, hub, state=None, paths=CACHED_PATHS, kept: int = PAGES_KEPT,
                 shuffles: int = SHUFFLES) -> None:
        self.app = app
        self.state = state
        if state is not None:
            state.page_cache = self  # app.state.page_cache: its counters, for tests and benchmarks
        self.hub = hub
        self.paths = frozenset(paths)
        self.kept = kept
        self.shuffles = shuffles
        self.pages: OrderedDict[tuple, Kept] = OrderedDict()
        self.rendering: dict[tuple, asyncio.Future] = {}
        self.filling: set[asyncio.Task] = set()  # background renders of shuffles (kept referenced)
        self.hits = 0
        self.renders = 0

    @property
    def current_hub(self):
        """The app's hub of the moment (app.state.hub: a test may put one with its own clock)."""
        return getattr(self.state, "hub", None) or self.hub

    async def version(self) -> tuple | None:
        """The store's token and today; None when the store cannot say (nothing is kept)."""
        versions = self.current_hub.data_version
        if not versions.supported:
            return None
        token = versions.token() if versions.dialect == "sqlite" else await run_in_threadpool(versions.token)
        if token is None:
            return None
        return token, self.current_hub.today()

    def key_of(self, scope: Scope) -> tuple | None:
        viewer = scope.get("state", {}).get("viewer")
        if viewer is None or not viewer.signed_in:
            return None
        query: bytes = scope.get("query_string", b"")
        cookie = accept = bearer = b""
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                cookie = value
            elif name == b"accept-language":
                accept = value
            elif name == b"authorization":  # the token itself, not only its user (a digest, not the secret)
                bearer = hashlib.blake2b(value, digest_size=16).digest()
        lang_cookie = cookie_parser(cookie.decode("latin-1")).get(i18n.COOKIE) if cookie else None
        params = {name for name, _, value in (part.partition(b"=") for part in query.split(b"&")) if value}
        # a search's order and a radar's use no seed; nor does JSON
        shuffled = scope["path"] in self.paths and not params & {b"seed", b"radar", b"q"}
        slot = random.randrange(self.shuffles) if shuffled else None
        return scope["path"], query, viewer, bearer, lang_cookie, accept, slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or (scope["path"] not in self.paths
                                                                    and not kept_json(scope["path"])):
            await self.app(scope, receive, send)
            return
        key = self.key_of(scope)
        version = await self.version() if key is not None else None
        if key is None or version is None:
            await self.app(scope, receive, send)
            return
        kept = self.pages.get(key)
        if self._fresh(kept, version):
            self.pages.move_to_end(key)
            self.hits += 1
            await _replay(kept, scope, send)
            return
        shuffled = key[-1] is not None
        flight = (key[:-1] if shuffled else key, version)  # one render at a time per page (and its shuffles)
        waiting = self.rendering.get(flight)
        if waiting is not None and (waiting.get_loop() is not asyncio.get_running_loop() or waiting.done()):
            self.rendering.pop(flight, None)  # left by another event loop (a test client's, gone): not ours to wait on
            waiting = None
        other = self._another_shuffle(key, version) if shuffled else None
        if other is not None:  # this shuffle is not kept yet: another one now, this one rendered meanwhile
            if waiting is None:
                self._fill(scope, key, flight, version)
            self.hits += 1
            await _replay(other, scope, send)
            return
        if waiting is not None:
            try:
                kept = await asyncio.wait_for(asyncio.shield(waiting), WAIT_S)
            except asyncio.TimeoutError:
                kept = None  # render our own rather than wait longer
            if kept is not None:
                self.hits += 1
                await _replay(kept, scope, send)
                return
            await self.app(scope, receive, send)  # the first one was not kept (an error): render our own
            return
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.rendering[flight] = future
        kept = None
        try:
            kept = await self._render(scope, receive, send, version)
        finally:
            if self.rendering.get(flight) is future:
                del self.rendering[flight]
            future.set_result(kept)
        self._keep(key, kept)

    def _keep(self, key: tuple, kept: Kept | None) -> None:
        if kept is None:
            return
        self.renders += 1
        self.pages[key] = kept
        self.pages.move_to_end(key)
        while len(self.pages) > self.kept:
            self.pages.popitem(last=False)

    def _fill(self, scope: Scope, key: tuple, flight: tuple, version: tuple) -> None:
        """Render the shuffle `key` in the background (a copy of this request, its answer kept only)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self.rendering[flight] = future
        copy = {**scope, "state": dict(scope.get("state", {}))}

        async def run() -> None:
            kept = None
            try:
                kept = await self._render(copy, _no_body, _discard, version)
            finally:
                if self.rendering.get(flight) is future:
                    del self.rendering[flight]
                future.set_result(kept)
            self._keep(key, kept)

        task = loop.create_task(run())  # the request's context goes along (the acting user)
        self.filling.add(task)
        task.add_done_callback(self.filling.discard)

    def _fresh(self, kept: Kept | None, version: tuple) -> bool:
        return kept is not None and kept.version == version and (
            kept.valid_until is None or as_utc(self.current_hub.now()) < kept.valid_until)

    def _another_shuffle(self, key: tuple, version: tuple) -> Kept | None:
        """A kept shuffle of the same page (any slot but this missing one), or None."""
        found = [kept for slot in range(self.shuffles) if self._fresh(kept := self.pages.get((*key[:-1], slot)), version)]
        return random.choice(found) if found else None

    async def _render(self, scope: Scope, receive: Receive, send: Send, version: tuple) -> Kept | None:
        """Run the page, passing its answer on, and return it when it may be kept."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []
        keep = True

        async def capture(message: Message) -> None:
            nonlocal keep
            if message["type"] == "http.response.start":
                start.update(message)
                kind = dict(message.get("headers", [])).get(b"content-type", b"")
                wanted = b"application/json" if kept_json(scope["path"]) else b"text/html"
                keep = message["status"] == 200 and kind.startswith(wanted)
            elif message["type"] == "http.response.body" and keep:
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        if not keep or not start:
            return None
        valid_until = scope.get("state", {}).get("page_valid_until")
        body = b"".join(chunks)
        return Kept(version, valid_until, start["status"], list(start.get("headers", [])), body, etag_of(body).encode())

    def clear(self) -> None:
        self.pages.clear()


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(_message: Message) -> None:
    return None


async def _replay(kept: Kept, scope: Scope, send: Send) -> None:
    """The kept answer with its ETag; 304 (no body) when the request's If-None-Match names it."""
    start = {"type": "http.response.start", "status": kept.status, "headers": kept.headers}
    await send_tagged(scope, send, start, kept.body, kept.etag.decode())


__all__ = ["PageCache", "PAGES_KEPT", "SHUFFLES", "kept_json"]
