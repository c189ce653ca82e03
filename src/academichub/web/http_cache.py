"""HTTP caching of what the server renders: an ETag on every HTML and JSON page (a hash of the
body), and 304 Not Modified when the client already holds it (If-None-Match), so an unchanged
batch is not sent again. Static files carry their own ETag (Starlette's StaticFiles) and are
answered 304 the same way; this middleware leaves them alone.

A page still runs to know its body (a radar page records its batch as shown): what is saved is
the transfer and the browser's work, not the server's. Rendered math, the costly part of a card,
is kept per text (`cached_math`), so rendering an unchanged card again is cheap."""

from __future__ import annotations

import functools
import hashlib

from markupsafe import Markup
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import mathtext

CACHED_TYPES = (b"text/html", b"application/json")
MATH_KEPT = 8192  # rendered titles and abstracts kept per process


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak or strong, or "*")."""
    wanted = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in wanted or etag in wanted


async def send_tagged(scope: Scope, send: Send, start: Message, body: bytes, etag: str) -> None:
    """The answer `start` + `body` with `etag`; a bodiless 304 when the request's If-None-Match
    names it (here and for kept pages, web/page_cache.py)."""
    wanted = dict(scope.get("headers", [])).get(b"if-none-match", b"").decode("latin-1")
    headers = [(k, v) for k, v in start.get("headers", []) if k != b"etag"] + [(b"etag", etag.encode())]
    if wanted and etag_matches(wanted, etag):
        headers = [(k, v) for k, v in headers if k not in (b"content-length", b"content-type")]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ETagMiddleware:
    """ETag on GET/HEAD 200 responses of HTML or JSON; 304 when If-None-Match names it."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []
        passing = False

        async def capture(message: Message) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                kind = headers.get(b"content-type", b"")
                if message["status"] != 200 or b"etag" in headers or not kind.startswith(CACHED_TYPES):
                    passing = True
                    await send(message)
                    return
                start = message
                return
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = b"".join(chunks)
                await send_tagged(scope, send, start, body, etag_of(body))
                return
            await send(message)

        await self.app(scope, receive, capture)


@functools.lru_cache(maxsize=MATH_KEPT)
def cached_math(text: str | None, links: bool = False) -> Markup:
    """mathtext.render_math, kept per text (a card's title or abstract changes only with the paper)."""
    return mathtext.render_math(text, links=links)


__all__ = ["ETagMiddleware", "cached_math", "etag_matches", "etag_of", "send_tagged"]
