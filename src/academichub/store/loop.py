"""What the web needs to show the daily loop: when the store last took in papers, which day an
announcement row names, and the one write the category picker makes (a source's parameters).
Kept apart from store/sources.py and store/feed.py so each stays about one thing."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Connection, func, select, update

from .schema import announcements, papers, sources
from .state import as_utc


def newest_success_at(conn: Connection) -> datetime | None:
    """The newest successful source run (aware UTC), or None when no source ever succeeded."""
    return _aware(conn.execute(select(func.max(sources.c.last_success_at))).scalar())


def newest_paper_stored_at(conn: Connection) -> datetime | None:
    """When the newest paper entered the store (aware UTC): the sample load counts too. The
    newest row by id (the primary key's index), so a page view never scans the papers."""
    return _aware(conn.execute(select(papers.c.created_at).order_by(papers.c.id.desc()).limit(1)).scalar())


def announcement_day(conn: Connection, *, source: str, feed: str) -> date | None:
    """The newest day a given feed announced (e.g. the bundled sample's all-archives feed)."""
    value = conn.execute(
        select(func.max(announcements.c.announced_on)).where(announcements.c.source == source, announcements.c.feed == feed)
    ).scalar()
    if isinstance(value, str):  # SQLite hands back text from an aggregate
        value = date.fromisoformat(value[:10])
    return value


def set_source_params(conn: Connection, name: str, params: dict) -> bool:
    """Replace a source's parameters (checked by the caller); False when there is no such source."""
    return bool(conn.execute(update(sources).where(sources.c.name == name).values(params=params)).rowcount)


def _aware(value) -> datetime | None:
    if isinstance(value, str):  # SQLite hands back text from an aggregate
        value = datetime.fromisoformat(value)
    return as_utc(value) if value is not None else None
