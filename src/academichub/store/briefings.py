"""Stored briefings. A briefing is keyed by radar (NULL: the whole store), period, language and
the hash of its ordered paper ids; the current one of a key has no `superseded_at`. Regenerating
keeps the old row and marks it superseded. Every function takes an open Connection; the caller
owns the transaction."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from sqlalchemy import Connection, and_, insert, select, update

from .schema import briefings


def paper_hash(paper_ids: list[int]) -> str:
    """sha256 of the ordered ids: the same papers in another order are another briefing (the
    numbers [n] follow the order)."""
    return hashlib.sha256(",".join(str(int(i)) for i in paper_ids).encode()).hexdigest()


def _key(radar_id: int | None, start: date, end: date, lang: str, hash_: str):
    radar = briefings.c.radar_id.is_(None) if radar_id is None else briefings.c.radar_id == radar_id
    return and_(radar, briefings.c.period_start == start, briefings.c.period_end == end, briefings.c.lang == lang,
                briefings.c.paper_hash == hash_)


def find_current(conn: Connection, *, radar_id: int | None, start: date, end: date, lang: str, hash_: str) -> dict | None:
    row = conn.execute(
        select(briefings)
        .where(_key(radar_id, start, end, lang, hash_), briefings.c.superseded_at.is_(None))
        .order_by(briefings.c.id.desc())
        .limit(1)
    ).mappings().first()
    return dict(row) if row else None


def find_analysis(conn: Connection, *, hash_: str, radar_id: int | None = None) -> dict | None:
    """The analysis stored with any briefing (any language, radar, period) of exactly these papers:
    the analysis depends only on them (and, for changes, on the previous period's)."""
    stmt = select(briefings.c.analysis, briefings.c.radar_id).where(briefings.c.paper_hash == hash_)
    rows = conn.execute(stmt.order_by(briefings.c.id.desc()).limit(20)).all()
    for analysis, radar in rows:  # the same radar's first
        if radar == radar_id:
            return analysis
    return rows[0][0] if rows else None


def latest(conn: Connection, *, radar_id: int | None, start: date, end: date, lang: str) -> dict | None:
    """The newest current briefing of a radar and period in a language, whatever its papers."""
    radar = briefings.c.radar_id.is_(None) if radar_id is None else briefings.c.radar_id == radar_id
    row = conn.execute(
        select(briefings)
        .where(radar, briefings.c.period_start == start, briefings.c.period_end == end, briefings.c.lang == lang,
               briefings.c.superseded_at.is_(None))
        .order_by(briefings.c.id.desc())
        .limit(1)
    ).mappings().first()
    return dict(row) if row else None


def supersede(conn: Connection, *, radar_id: int | None, start: date, end: date, lang: str, hash_: str, now: datetime) -> int:
    result = conn.execute(
        update(briefings)
        .where(_key(radar_id, start, end, lang, hash_), briefings.c.superseded_at.is_(None))
        .values(superseded_at=now)
    )
    return result.rowcount or 0


def insert_briefing(conn: Connection, values: dict) -> int:
    return conn.execute(insert(briefings).values(**values).returning(briefings.c.id)).scalar_one()


def get_briefing(conn: Connection, briefing_id: int) -> dict | None:
    row = conn.execute(select(briefings).where(briefings.c.id == briefing_id)).mappings().first()
    return dict(row) if row else None


def history(conn: Connection, *, radar_id: int | None, start: date, end: date, lang: str, hash_: str) -> list[dict]:
    """Every briefing of a key, newest first (the current one and the superseded ones)."""
    rows = conn.execute(
        select(briefings.c.id, briefings.c.kind, briefings.c.model, briefings.c.created_at, briefings.c.superseded_at)
        .where(_key(radar_id, start, end, lang, hash_))
        .order_by(briefings.c.id.desc())
    ).mappings()
    return [dict(r) for r in rows]
