"""The sources page: the configured upstreams with their health, and the venue catalog where
following a journal is one click (a plain form POST; no JavaScript needed)."""

from __future__ import annotations

from typing import Annotated, Callable

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from ..errors import AcademicHubError
from ..ingest.runner import sources_for_venue
from ..settings import Settings
from ..store.sources import add_source, get_source, list_sources
from ..store.state import utcnow
from ..venues import find_venue, load_venues
from .app import UTCDateTime


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


class FollowedOut(BaseModel):
    added: list[str]


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


def register(app: FastAPI, engine, settings: Settings, render: Callable) -> None:
    def catalog():
        return load_venues(settings.data_dir)

    def followed_keys(rows: list[dict]) -> set[str]:
        names = {r["name"] for r in rows}
        return {key for key in catalog() if f"crossref:{key}" in names or f"feed:{key}" in names}

    @app.get("/sources", include_in_schema=False)
    def sources_page(request: Request):
        with engine.connect() as conn:
            rows = list_sources(conn)
        venues = sorted(catalog().values(), key=lambda v: (v.fields[0] if v.fields else "", v.name))
        return render(request, "sources.html", {"sources": rows, "venues": venues, "followed": followed_keys(rows)})

    @app.post("/sources/follow", include_in_schema=False)
    def follow_form(request: Request, venue: Annotated[str, Form(max_length=200)]):
        if not same_origin(request):
            raise HTTPException(403, "cross-site form")
        follow(venue)
        return RedirectResponse("/sources", status_code=303)

    @app.get("/api/sources", response_model=list[SourceOut], tags=["sources"], summary="Configured sources and their health")
    def api_sources():
        with engine.connect() as conn:
            return list_sources(conn)

    @app.get("/api/venues", tags=["sources"], summary="The venue catalog")
    def api_venues():
        return [
            {"key": v.key, "name": v.name, "short": v.short, "fields": list(v.fields), "issns": v.issns,
             "abbreviation": v.abbreviation, "rss": list(v.rss)}
            for v in catalog().values()
        ]

    @app.post("/api/sources/follow/{venue}", response_model=FollowedOut, tags=["sources"],
              summary="Follow a journal from the catalog",
              responses={400: {"description": "The journal's sources could not be added"},
                         404: {"description": "No such journal in the catalog"}})
    def api_follow(venue: str):
        return {"added": follow(venue)}

    def follow(text: str) -> list[str]:
        found = find_venue(text, catalog())
        if found is None:
            raise HTTPException(404, f"no journal {text!r} in the venue catalog")
        added = []
        try:
            with engine.begin() as conn:
                for name, kind, params, label in sources_for_venue(found):
                    if get_source(conn, name) is None:
                        add_source(conn, name=name, kind=kind, params=params, label=label, now=utcnow())
                        added.append(name)
        except AcademicHubError as exc:
            raise HTTPException(400, str(exc)) from exc
        return added
