"""Following upstreams from a front end: arXiv categories from the bundled taxonomy, journals from
the venue catalog, and the first run that does both and creates a first radar in one step. Every
input is checked before anything is written, and each use case is one transaction: a refused
request stores nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from ..errors import AcademicHubError
from ..ingest.runner import check_params, sources_for_venue
from ..store import loop as loop_store
from ..sources.arxiv_oai import naive_utc
from ..store.radars import add_rule, create_radar, default_user
from ..store.sources import add_source, get_source, list_sources, remove_source
from ..taxonomy import check_codes
from ..venues import Venue, find_venue

WEB_ARXIV_SOURCE = "arxiv"  # the one arxiv source the web's category picker keeps: one polite feed request
ARXIV_LABEL = "arXiv"


class UnknownVenueError(AcademicHubError):
    """A journal the venue catalog does not know."""


def _archives(source: dict) -> list[str]:
    return [code for code in str(source["params"].get("archives", "")).replace(" ", "+").split("+") if code]


def followed_categories(engine: Engine) -> dict[str, str]:
    """Every arXiv category some arxiv source fetches -> the name of that source."""
    with engine.connect() as conn:
        rows = list_sources(conn)
    found: dict[str, str] = {}
    for row in rows:
        if row["kind"] == "arxiv":
            for code in _archives(row):
                found.setdefault(code, row["name"])
    return found


def _follow_codes(conn: Connection, codes: list[str], now: datetime) -> list[str]:
    now = naive_utc(now)
    existing = get_source(conn, WEB_ARXIV_SOURCE)
    if existing is not None and existing["kind"] != "arxiv":
        raise AcademicHubError.translatable("a {kind} source is named {name!r}; rename it to follow arXiv categories here",
                                            kind=existing["kind"], name=WEB_ARXIV_SOURCE)
    current = _archives(existing) if existing else []
    added = [code for code in codes if code not in current]
    if not added:
        return []
    params = {**(existing["params"] if existing else {}), "archives": "+".join(current + added)}
    check_params("arxiv", params)
    if existing is None:
        add_source(conn, name=WEB_ARXIV_SOURCE, kind="arxiv", params=params, label=ARXIV_LABEL, now=now)
    else:
        loop_store.set_source_params(conn, WEB_ARXIV_SOURCE, params)
    return added


def follow_categories(engine: Engine, codes: list[str], now: datetime) -> list[str]:
    """Add categories to the web's arxiv source (created on first use); the ones newly followed.
    Any code the taxonomy does not list refuses the whole request (UnknownCategoryError)."""
    checked = check_codes(codes)
    with engine.begin() as conn:
        return _follow_codes(conn, checked, now)


def unfollow_category(engine: Engine, code: str) -> bool:
    """Drop a category from the web's arxiv source; the source goes when its last category does
    (its papers stay)."""
    with engine.begin() as conn:
        existing = get_source(conn, WEB_ARXIV_SOURCE)
        if existing is None or existing["kind"] != "arxiv" or code not in _archives(existing):
            return False
        left = [c for c in _archives(existing) if c != code]
        if left:
            loop_store.set_source_params(conn, WEB_ARXIV_SOURCE, {**existing["params"], "archives": "+".join(left)})
        else:
            remove_source(conn, WEB_ARXIV_SOURCE)
        return True


def _venue(text: str, catalog: dict[str, Venue]) -> Venue:
    found = find_venue(text, catalog)
    if found is None:
        raise UnknownVenueError.translatable("no journal {name!r} in the venue catalog", name=text[:100])
    return found


def _follow_venue(conn: Connection, venue: Venue, now: datetime) -> list[str]:
    now = naive_utc(now)
    added = []
    for name, kind, params, label in sources_for_venue(venue):
        if get_source(conn, name) is None:
            add_source(conn, name=name, kind=kind, params=params, label=label, now=now)
            added.append(name)
    return added


def follow_venue(engine: Engine, text: str, catalog: dict[str, Venue], now: datetime) -> list[str]:
    """Follow a journal of the catalog (Crossref by ISSN, plus its TOC feed); the sources added."""
    venue = _venue(text, catalog)
    with engine.begin() as conn:
        return _follow_venue(conn, venue, now)


@dataclass(slots=True)
class FirstRun:
    radar: str
    categories: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def first_run(engine: Engine, catalog: dict[str, Venue], *, categories: list[str], venues: list[str],
              radar_name: str, interest: str, now: datetime, user_id: int | None = None) -> FirstRun:
    """A new user's one form: follow these categories and journals, and create a radar that
    follows the categories and states the interest (the user's: `user_id`, else the default owner).
    All or nothing."""
    codes = check_codes(categories)
    chosen = [_venue(text, catalog) for text in dict.fromkeys(v for v in venues if v.strip())]
    if not codes and not chosen:
        raise AcademicHubError.translatable("pick at least one arXiv category or journal to follow")
    result = FirstRun(radar=" ".join(radar_name.split()), categories=codes)
    with engine.begin() as conn:
        radar_id = create_radar(conn, user_id=user_id if user_id is not None else default_user(conn),
                                name=radar_name, interest=interest)
        if codes:
            _follow_codes(conn, codes, now)
            result.sources.append(WEB_ARXIV_SOURCE)
        for code in codes:
            add_rule(conn, radar_id, "category", code)
        for venue in chosen:
            result.sources += _follow_venue(conn, venue, now)
            add_rule(conn, radar_id, "venue", venue.name)
    return result
