"""The sources page: the configured upstreams with their schedule and health (last run, next run,
last error) and a "run now" button; the arXiv taxonomy, where following categories is a checkbox;
the venue catalog, where following a journal is one click. Plain form POSTs and a GET filter: no
JavaScript needed. The use cases live in app/ (following, the Hub); this module only adapts them."""

from __future__ import annotations

from typing import Annotated, Any, Callable
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from .. import taxonomy
from ..app.following import (
    WEB_ARXIV_SOURCE,
    UnknownVenueError,
    follow_categories,
    follow_venue,
    followed_categories,
    unfollow_category,
)
from ..errors import AcademicHubError
from ..ingest.runner import next_run
from ..settings import Settings
from ..sources.arxiv_oai import naive_utc
from ..store.sources import get_source, list_sources
from ..store.state import as_utc
from ..venues import load_venues
from . import i18n
from .app import UTCDateTime
from .identity import require_admin

MAX_CODES = 200  # categories in one form post (the taxonomy has 155)
FLASHES = ("queued", "ran", "failed", "followed", "unfollowed")


class SourceOut(BaseModel):
    """A configured source and its health (times in UTC)."""

    id: int
    name: str
    kind: str
    label: str | None = None
    params: dict
    enabled: bool
    interval_minutes: int
    last_run_at: UTCDateTime | None = None
    last_success_at: UTCDateTime | None = None
    last_error: str | None = None
    last_error_at: UTCDateTime | None = None
    failing_since: UTCDateTime | None = None
    consecutive_failures: int
    last_added: int
    last_updated: int
    created_at: UTCDateTime
    next_run: UTCDateTime | None = Field(None, description="When it is next due (now when it never ran); null when disabled.")
    due: bool = Field(False, description="Due now: the scheduler runs it at its next tick.")


class FollowedOut(BaseModel):
    added: list[str]


# Sources and the venue catalog are shared by every user: only an administrator changes them (the
# single local user is one).
ADMIN_ONLY = [Depends(require_admin)]


def same_origin(request: Request) -> bool:
    """A form POST must come from our own pages (a CSRF guard until accounts arrive). Browsers say
    so in Sec-Fetch-Site; under our `Referrer-Policy: no-referrer` they send `Origin: null` and no
    Referer for a plain form post, so Origin/Referer are only the fallback for older clients."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin") or request.headers.get("referer") or ""
    if origin == "null":
        return False
    if not origin:
        return True  # non-browser clients (curl, tests) send neither
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1].split("/", 1)[0] == host


def _refuse_cross_site(request: Request) -> None:
    if not same_origin(request):
        raise HTTPException(403, "cross-site form")


def schedule_of(rows: list[dict], now) -> list[dict]:
    """Each row with `next_run` (aware UTC, None when disabled) and `due` (it runs at the next tick)."""
    naive_now = naive_utc(now)
    shown = []
    for row in rows:
        when = next_run(row, naive_now)
        shown.append({**row, "next_run": as_utc(when) if when else None, "due": when is not None and when <= naive_now})
    return shown


def picker_groups(query: str, followed: dict[str, str]) -> list[dict]:
    """The taxonomy's groups, each with the categories a search text matches (all without one);
    a group is open when it was searched or holds a followed category."""
    groups = []
    for group in taxonomy.groups():
        members = [c for c in group.categories if c.matches(query)]
        if members:
            groups.append({"group": group, "categories": members,
                           "open": bool(query.strip()) or any(c.code in followed for c in members)})
    return groups


def register(app: FastAPI, engine, settings: Settings, render: Callable) -> None:
    def catalog():
        return load_venues(settings.data_dir)

    def followed_keys(rows: list[dict]) -> set[str]:
        names = {r["name"] for r in rows}
        return {key for key in catalog() if f"crossref:{key}" in names or f"feed:{key}" in names}

    def flash_of(request: Request) -> dict | None:
        done = request.query_params.get("done")
        if done not in FLASHES:
            return None
        with engine.connect() as conn:
            source = get_source(conn, request.query_params.get("source", "")[:200])
        codes = [c for c in request.query_params.getlist("category")[:MAX_CODES] if taxonomy.find(c)]
        return {"kind": done, "source": source, "categories": codes}

    def page(request: Request, *, error: Any = None, chosen: list[str] | None = None, status_code: int = 200):
        query = (request.query_params.get("q") or "")[:100]
        with engine.connect() as conn:
            rows = list_sources(conn)
        followed = followed_categories(engine)
        venues = sorted(catalog().values(), key=lambda v: (v.fields[0] if v.fields else "", v.name))
        context = {
            "sources": schedule_of(rows, request.app.state.hub.now()),
            "venues": venues,
            "followed": followed_keys(rows),
            "followed_categories": followed,
            "web_arxiv_source": WEB_ARXIV_SOURCE,
            "taxonomy_groups": picker_groups(query, followed),
            "category_query": query,
            "chosen": set(chosen or []),
            "error": error,
            "flash": flash_of(request),
        }
        return render(request, "sources.html", context, status_code=status_code)

    @app.get("/sources", include_in_schema=False)
    def sources_page(request: Request, q: Annotated[str | None, Query(max_length=100)] = None):
        return page(request)

    @app.post("/sources/follow", include_in_schema=False, dependencies=ADMIN_ONLY)
    def follow_form(request: Request, venue: Annotated[str, Form(max_length=200)]):
        _refuse_cross_site(request)
        try:
            follow_venue(engine, venue, catalog(), request.app.state.hub.now())
        except AcademicHubError as exc:  # an unknown journal too: said on the page, in its language
            return page(request, error=exc, status_code=404 if isinstance(exc, UnknownVenueError) else 400)
        return RedirectResponse("/sources", status_code=303)

    @app.post("/sources/run", include_in_schema=False, dependencies=ADMIN_ONLY)
    def run_now_form(request: Request, source: Annotated[str, Form(max_length=200)]):
        """"Run now": the Hub queues the run on the job system (or runs it here when none is
        attached); the flash says which, and how a run here went."""
        _refuse_cross_site(request)
        with engine.connect() as conn:
            before = get_source(conn, source)
        if before is None:
            raise HTTPException(404, f"no source named {source!r}")
        request.app.state.hub.request_source_run(source)
        with engine.connect() as conn:
            after = get_source(conn, source)
        if after is None or after["last_run_at"] == before["last_run_at"]:
            done = "queued"
        else:
            done = "failed" if after["last_error_at"] == after["last_run_at"] else "ran"
        return RedirectResponse(f"/sources?{_query(done=done, source=source)}", status_code=303)

    @app.post("/sources/categories", include_in_schema=False, dependencies=ADMIN_ONLY)
    def follow_categories_form(
        request: Request,
        category: Annotated[list[str], Form(max_length=64)] = [],  # noqa: B006 - FastAPI copies defaults
    ):
        _refuse_cross_site(request)
        if len(category) > MAX_CODES:
            return page(request, error=i18n.said("at most {limit} categories at once", limit=MAX_CODES), status_code=400)
        try:
            added = follow_categories(engine, category, request.app.state.hub.now())
        except AcademicHubError as exc:
            return page(request, error=exc, chosen=category, status_code=400)
        return RedirectResponse(f"/sources?{_query(done='followed', source=WEB_ARXIV_SOURCE, category=added)}", status_code=303)

    @app.post("/sources/categories/unfollow", include_in_schema=False, dependencies=ADMIN_ONLY)
    def unfollow_category_form(request: Request, category: Annotated[str, Form(max_length=64)]):
        _refuse_cross_site(request)
        unfollow_category(engine, category)
        return RedirectResponse(f"/sources?{_query(done='unfollowed', category=[category])}", status_code=303)

    @app.get("/api/sources", response_model=list[SourceOut], tags=["sources"], summary="Configured sources and their health")
    def api_sources(request: Request):
        with engine.connect() as conn:
            return schedule_of(list_sources(conn), request.app.state.hub.now())

    @app.get("/api/venues", tags=["sources"], summary="The venue catalog")
    def api_venues():
        return [
            {"key": v.key, "name": v.name, "short": v.short, "fields": list(v.fields), "issns": v.issns,
             "abbreviation": v.abbreviation, "rss": list(v.rss)}
            for v in catalog().values()
        ]

    @app.post("/api/sources/follow/{venue}", response_model=FollowedOut, tags=["sources"], dependencies=ADMIN_ONLY,
              summary="Follow a journal from the catalog",
              responses={400: {"description": "The journal's sources could not be added"},
                         404: {"description": "No such journal in the catalog"}})
    def api_follow(request: Request, venue: str):
        return {"added": follow(request, venue)}

    def follow(request: Request, text: str) -> list[str]:
        try:
            return follow_venue(engine, text, catalog(), request.app.state.hub.now())
        except UnknownVenueError as exc:
            raise HTTPException(404, f"no journal {text!r} in the venue catalog") from exc
        except AcademicHubError as exc:
            raise HTTPException(400, str(exc)) from exc


def _query(**values) -> str:
    pairs = []
    for key, value in values.items():
        pairs += [(key, v) for v in value] if isinstance(value, list) else [(key, value)]
    return urlencode(pairs)
