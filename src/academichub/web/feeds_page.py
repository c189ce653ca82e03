"""A radar in any feed reader: `GET /feeds/<token>/<radar id>.atom` (Atom, made with feedgen),
`GET /feeds/<token>.opml` (every radar of the token's user, for a reader's import), and the page
where the user sees and rotates their secret feed URLs (`/settings/feeds`).

The token in the path is the credential (app/radar_feeds.py), so a feed reader needs no login.
A GET never writes: no batch is marked shown, no briefing stored or asked of an LLM. Each answer
carries a strong ETag and Last-Modified from a fingerprint of the feed's inputs, and a matching
If-None-Match (or an If-Modified-Since not older than the inputs) is answered 304 before any
ranking. Entries: one per paper per radar (`tag:` id stable across days and polls), the day's
briefing as one more entry per day; text from upstream is escaped, TeX kept as written."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Callable
from xml.sax.saxutils import quoteattr

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markdown_it import MarkdownIt

from ..app.hub import Hub
from ..app.radar_feeds import (
    DEFAULT_DAYS, MAX_DAYS, MAX_PER_DAY, FeedTokenError, RadarFeed, day_time, feed_radars, feed_token, feed_user,
    feed_validators, radar_feed, rotate_feed_token,
)
from ..brief.briefing import render_markdown
from ..errors import NotFound
from . import i18n
from .app import _make_env
from .identity import viewer, viewer_user_id
from .radar_page import from_our_pages

ATOM_TYPE = "application/atom+xml; charset=utf-8"
OPML_TYPE = "text/x-opml; charset=utf-8"
_markdown = MarkdownIt("commonmark", {"html": False})  # raw HTML in a briefing stays text


def base_url(request: Request) -> str:
    """The server's own address as the request reached it (links in a feed must be absolute)."""
    return str(request.base_url).rstrip("/")


def feed_path(token: str, radar_id: int, lang: str | None = None) -> str:
    return f"/feeds/{token}/{int(radar_id)}.atom" + (f"?lang={lang}" if lang else "")


def _tag(request: Request, what: str) -> str:
    """A stable Atom id (RFC 4151 tag URI) under the server's host."""
    host = request.url.hostname or "localhost"
    return f"tag:{host},2026:academichub/{what}"


def _http_time(value: datetime) -> str:
    return format_datetime(value.astimezone(timezone.utc).replace(microsecond=0), usegmt=True)


def _not_modified(request: Request, etag: str, modified: datetime | None) -> bool:
    """RFC 9110: If-None-Match wins; If-Modified-Since only when there is none."""
    match = request.headers.get("if-none-match")
    if match is not None:
        return etag in [tag.strip().removeprefix("W/") for tag in match.split(",")] or match.strip() == "*"
    since = request.headers.get("if-modified-since")
    if since and modified is not None:
        try:
            told = parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            return False
        if told.tzinfo is None:
            return False
        return modified.replace(microsecond=0) <= told
    return False


def atom_document(request: Request, feed: RadarFeed, token: str, env) -> bytes:
    """The feed as Atom 1.0 (feedgen): a briefing entry and the ranked paper entries of each day."""
    from feedgen.feed import FeedGenerator

    root = base_url(request)
    translations = env.globals["translations"]
    generator = FeedGenerator()
    generator.id(_tag(request, f"radar-{feed.radar_id}"))
    generator.title(i18n.say(i18n.said("AcademicHub radar: {name}", name=feed.name), translations))
    generator.subtitle(feed.interest or i18n.say(i18n.said("The papers this radar ranks, each with why"), translations))
    generator.link(href=str(request.url), rel="self", type="application/atom+xml")
    generator.link(href=f"{root}/?radar={feed.radar_id}", rel="alternate", type="text/html")
    generator.language(i18n.HTML_LANG[feed.lang])
    generator.generator("AcademicHub")
    generator.updated(feed.updated or datetime.now(timezone.utc))
    entries = []  # newest first; feedgen prepends each added entry, so they are added in reverse
    card_template = env.get_template("_feed_entry.html")
    for day in feed.days:
        stamp = day_time(day.day)
        if day.briefing is not None:
            entries.append(("briefing", day, None, stamp))
        for rank, card in enumerate(day.papers, 1):
            entries.append(("paper", day, (rank, card), stamp))
    for kind, day, item, stamp in reversed(entries):
        entry = generator.add_entry()
        if kind == "briefing":
            briefing = day.briefing
            entry.id(_tag(request, f"radar-{feed.radar_id}/briefing/{day.day.isoformat()}/{feed.lang}"))
            entry.title(i18n.say(i18n.said("Briefing of {day}: {headline}", day=day.day.isoformat(),
                                            headline=briefing.doc.headline.text), translations))
            entry.link(href=f"{root}/briefing?date={day.day.isoformat()}&radar={feed.radar_id}&lang={feed.lang}",
                       rel="alternate")
            created = briefing.created_at
            entry.updated(created.replace(tzinfo=timezone.utc) if created and created.tzinfo is None else (created or stamp))
            entry.published(stamp)
            entry.content(_markdown.render(render_markdown(briefing, link="page", base_url=root)), type="html")
            continue
        rank, card = item
        entry.id(_tag(request, f"radar-{feed.radar_id}/paper-{card['id']}"))
        entry.title(card["title"])
        page = f"{root}/papers/{card['id']}"
        # One link: feedgen 1.0 writes an entry link's href only (its rel, type and title are lost),
        # so arXiv and the DOI are links in the content rather than rel="related" links.
        entry.link(href=page, rel="alternate")
        for author in card.get("authors", [])[:20]:
            entry.author(name=author["name"])
        published = stamp
        entry.published(published)
        modified = card.get("updated_at")
        if isinstance(modified, datetime):
            modified = modified if modified.tzinfo else modified.replace(tzinfo=timezone.utc)
        entry.updated(max(modified, published) if isinstance(modified, datetime) else published)
        for code in card.get("categories", [])[:8]:
            entry.category(term=code)
        html = card_template.render(item=card, rank=rank, day=day.day, page=page,
                                    card=f"{root}/?radar={feed.radar_id}#paper-{card['id']}")
        entry.content(html, type="html")
    return generator.atom_str(pretty=True)


def opml_document(request: Request, token: str, radars, title: str) -> bytes:
    """Every radar feed of the user as OPML 2.0, for a feed reader's "import subscriptions"."""
    root = base_url(request)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0">',
             f"  <head><title>{_escape(title)}</title></head>", "  <body>"]
    for summary in radars:
        url = root + feed_path(token, summary.id)
        lines.append(f"    <outline type=\"rss\" text={quoteattr(summary.name)} title={quoteattr(summary.name)} "
                     f"xmlUrl={quoteattr(url)} htmlUrl={quoteattr(f'{root}/?radar={summary.id}')}/>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines).encode("utf-8")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


FEEDS_KEPT = 64  # rendered feeds kept per process, by ETag and base URL


class _Documents:
    """Rendered feeds by ETag: the ETag fingerprints everything a feed is made of (validators
    above), so an unchanged one is served again without ranking or briefing."""

    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key: tuple[str, str]) -> bytes | None:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
            return self.items.get(key)

    def put(self, key: tuple[str, str], body: bytes) -> bytes:
        with self.lock:
            self.items[key] = body
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return body


def register(app: FastAPI, hub: Hub, render: Callable) -> None:
    translations = i18n.load_all()
    envs = {}
    for lang in i18n.LANGUAGES:
        env = _make_env(translations[lang], lang)
        env.globals["translations"] = translations[lang]
        envs[lang] = env
    default_language = i18n.normalize_language(hub.settings.default_language) or i18n.FALLBACK

    documents = _Documents(FEEDS_KEPT)

    def user_of(token: str) -> int:
        try:
            return feed_user(hub, token)
        except FeedTokenError:
            raise HTTPException(404, "no such feed") from None

    @app.get("/feeds/{token}/{radar_id}.atom", include_in_schema=False)
    def radar_atom(
        request: Request,
        token: str,
        radar_id: int,
        lang: Annotated[str | None, Query(max_length=16)] = None,
        days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = DEFAULT_DAYS,
        per_day: Annotated[int | None, Query(ge=1, le=MAX_PER_DAY)] = None,
    ):
        user_id = user_of(token)
        language = i18n.normalize_language(lang) or default_language
        size = per_day or hub.settings.batch_size
        try:
            etag, modified = feed_validators(hub, user_id, radar_id, days=days, per_day=size, lang=language, token=token)
        except NotFound:
            raise HTTPException(404, "no such feed") from None
        headers = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"}
        if modified is not None:
            headers["Last-Modified"] = _http_time(modified)
        if _not_modified(request, etag, modified):
            return Response(status_code=304, headers=headers)
        kept = (etag, str(request.base_url))  # the links in it are absolute
        body = documents.get(kept)
        if body is None:  # a reader polling without If-None-Match: ranked and briefed once per change
            feed = radar_feed(hub, user_id, radar_id, days=days, per_day=size, lang=language)
            body = documents.put(kept, atom_document(request, feed, token, envs[language]))
        return Response(body, media_type=ATOM_TYPE, headers=headers)

    @app.get("/feeds/{token}.opml", include_in_schema=False)
    def radars_opml(request: Request, token: str):
        user_id = user_of(token)
        language = i18n.normalize_language(request.query_params.get("lang")) or default_language
        title = i18n.say(i18n.said("AcademicHub radars"), translations[language])
        return Response(opml_document(request, token, feed_radars(hub, user_id), title), media_type=OPML_TYPE,
                        headers={"Cache-Control": "private, no-cache"})

    @app.get("/settings/feeds", response_class=HTMLResponse, include_in_schema=False)
    def feeds_settings(request: Request, done: str | None = None):
        user_id = viewer(request).user_id
        radars, token = [], None
        if user_id is not None:
            radars = feed_radars(hub, user_id)
            token = feed_token(hub, user_id)
        root = base_url(request)
        rows = [{"name": r.name, "url": root + feed_path(token, r.id)} for r in radars] if token else []
        return render(request, "feeds.html", {
            "feeds": rows, "opml_url": f"{root}/feeds/{token}.opml" if token else None, "done": done == "rotated",
        })

    @app.post("/settings/feeds/rotate", include_in_schema=False)
    def feeds_rotate(request: Request):
        if not from_our_pages(request):
            raise HTTPException(403, "cross-site form")
        if not viewer(request).can_write:
            raise HTTPException(403, "read-only")
        rotate_feed_token(hub, viewer_user_id(request))
        return RedirectResponse("/settings/feeds?done=rotated", status_code=303)


__all__ = ["atom_document", "feed_path", "opml_document", "register"]
