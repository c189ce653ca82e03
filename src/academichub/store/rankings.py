"""Stored rankings: a radar's ranked papers for a period, written by a job (or once inline, when
a page finds none) and read by every page view, so a view costs a read and not a ranking.

One row per (radar, period): the period is an ISO day (the papers of that announcement and since)
or "all" (every stored paper, for a feed filtered by date). Ids, scores and tiers are packed
arrays (a 15,000-paper ranking is ~200 KB, read in one row); reasons only for the explained head.
`version` is a hash of the inputs (app/radar_feed.py: ranking_version); a row whose version no
longer matches is stale: still shown, while a job ranks again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from sqlalchemy import Connection, delete, select

from .schema import radar_rankings

ALL = "all"


def period_key(since: date | None) -> str:
    """The stored period of a window: its first day, or "all"."""
    return since.isoformat() if since else ALL


@dataclass(slots=True)
class StoredRanking:
    radar_id: int
    period: str
    version: str
    model: str | None
    ids: np.ndarray  # int64, best first
    scores: np.ndarray  # float32
    tiers: np.ndarray  # int8
    reasons: dict[str, list]  # str(paper id) -> [[kind, text, weight], ...], as stored (read per card)
    computed_at: datetime


def save_ranking(conn: Connection, radar_id: int, period: str, *, version: str, model: str | None, ids, scores, tiers,
                 reasons: dict[int, list[tuple[str, str, float]]], now: datetime) -> None:
    """Replace the radar's ranking of this period: one upsert, so readers see the old or the new,
    and two processes that ranked it at once both succeed (the later one's row stays)."""
    values = dict(
        version=version, model=model,
        paper_ids=np.asarray(ids, dtype="<i8").tobytes(), scores=np.asarray(scores, dtype="<f4").tobytes(),
        tiers=np.asarray(tiers, dtype="i1").tobytes(),
        reasons={str(k): [list(r) for r in v] for k, v in reasons.items()}, computed_at=now,
    )
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(radar_rankings).values(radar_id=radar_id, period=period, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["radar_id", "period"], set_=values))


def load_ranking(conn: Connection, radar_id: int, period: str) -> StoredRanking | None:
    row = conn.execute(
        select(radar_rankings).where(radar_rankings.c.radar_id == radar_id, radar_rankings.c.period == period)
    ).mappings().first()
    if row is None:
        return None
    return StoredRanking(
        radar_id=row["radar_id"], period=row["period"], version=row["version"], model=row["model"],
        ids=np.frombuffer(row["paper_ids"], dtype="<i8"), scores=np.frombuffer(row["scores"], dtype="<f4"),
        tiers=np.frombuffer(row["tiers"], dtype="i1"),
        reasons=row["reasons"] or {},
        computed_at=row["computed_at"],
    )


def ranking_versions(conn: Connection, radar_id: int) -> dict[str, str]:
    """{period: version} of a radar's stored rankings (a job refreshes the stale ones)."""
    rows = conn.execute(select(radar_rankings.c.period, radar_rankings.c.version).where(radar_rankings.c.radar_id == radar_id))
    return {period: version for period, version in rows}


def vectors_of(conn: Connection, paper_ids: list[int], model: str | None) -> dict[int, np.ndarray]:
    """Stored vectors of a few papers (a batch's pool, for diversifying it), one query."""
    from .schema import paper_embeddings

    if not model or not paper_ids:
        return {}
    rows = conn.execute(select(paper_embeddings.c.paper_id, paper_embeddings.c.vector).where(
        paper_embeddings.c.paper_id.in_(list(paper_ids)), paper_embeddings.c.model == model))
    return {pid: np.frombuffer(blob, dtype="<f2").astype(np.float32) for pid, blob in rows}


def forget_rankings(conn: Connection, radar_id: int | None = None) -> int:
    """Drop stored rankings (of one radar, or all): the next view ranks again inline."""
    stmt = delete(radar_rankings)
    if radar_id is not None:
        stmt = stmt.where(radar_rankings.c.radar_id == radar_id)
    return conn.execute(stmt).rowcount or 0


__all__ = ["ALL", "StoredRanking", "forget_rankings", "load_ranking", "period_key", "ranking_versions", "save_ranking", "vectors_of"]
