"""What the secret Atom feed URLs need from the store: each user's rotation counter (the feed
token is signed over user id and generation, app/radar_feeds.py), and a cheap fingerprint of
everything a radar's feed is made from, so a feed reader's conditional GET is answered without
ranking. Every function takes an open Connection; the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from .schema import briefings, feed_tokens, paper_embeddings, papers, radar_feedback, radar_rules, radar_seeds, radars


def generation(conn: Connection, user_id: int) -> int:
    """The user's current feed-token generation (0 before the first rotation)."""
    found = conn.execute(select(feed_tokens.c.generation).where(feed_tokens.c.user_id == user_id)).scalar()
    return int(found or 0)


def rotate(conn: Connection, user_id: int, now: datetime) -> int:
    """Bump the user's generation (every feed URL made before stops working); the new one."""
    current = conn.execute(select(feed_tokens.c.generation).where(feed_tokens.c.user_id == user_id)).scalar()
    if current is None:
        conn.execute(insert(feed_tokens).values(user_id=user_id, generation=1, rotated_at=now))
        return 1
    conn.execute(update(feed_tokens).where(feed_tokens.c.user_id == user_id)
                 .values(generation=feed_tokens.c.generation + 1, rotated_at=now))
    return int(current) + 1


def feed_fingerprint(conn: Connection, radar_id: int) -> tuple:
    """What a radar's feed depends on, in one round of aggregate reads: the radar (its edits,
    rules, seeds and feedback), the stored papers and vectors, and its briefings. Equal
    fingerprints give the same feed (the ranking and the briefings are functions of these), and
    the newest timestamp among them is the feed's Last-Modified."""
    radar = conn.execute(select(radars.c.updated_at).where(radars.c.id == radar_id)).scalar()
    rules = conn.execute(select(func.count()).select_from(radar_rules).where(radar_rules.c.radar_id == radar_id)).scalar()
    seeds = conn.execute(select(func.count()).select_from(radar_seeds).where(radar_seeds.c.radar_id == radar_id)).scalar()
    feedback = conn.execute(
        select(func.count(), func.max(radar_feedback.c.id), func.max(radar_feedback.c.created_at))
        .where(radar_feedback.c.radar_id == radar_id)
    ).one()
    stored = conn.execute(select(func.count(), func.max(papers.c.id), func.max(papers.c.modified_at))).one()
    vectors = conn.execute(select(func.count()).select_from(paper_embeddings)).scalar()
    briefed = conn.execute(
        select(func.count(), func.max(briefings.c.id), func.max(briefings.c.created_at))
        .where((briefings.c.radar_id == radar_id) & briefings.c.superseded_at.is_(None))
    ).one()
    return (radar, rules, seeds, tuple(feedback), tuple(stored), vectors, tuple(briefed))


def newest_time(fingerprint: tuple) -> datetime | None:
    """The latest timestamp a fingerprint holds (the feed's Last-Modified)."""
    found: list[datetime] = []

    def walk(value) -> None:
        if isinstance(value, datetime):
            found.append(value)
        elif isinstance(value, tuple):
            for item in value:
                walk(item)

    walk(fingerprint)
    return max(found, default=None)


__all__ = ["feed_fingerprint", "generation", "newest_time", "rotate"]
