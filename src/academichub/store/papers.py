"""Paper rows in and out: batched look-ups by identifier, bulk inserts and updates, and the read
queries behind the feed. Every function takes an open Connection; the caller owns the transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from .schema import announcements, paper_authors, paper_subjects, papers, source_records

LOOKUP_CHUNK = 900
_PAPER_COLUMNS = [c for c in papers.c if c.name != "id"]
_AUTHOR_COLUMNS = ("position", "name", "name_norm", "name_key", "affiliation", "orcid")


def _chunks(items: list, size: int = LOOKUP_CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class StoredPaper:
    id: int
    values: dict
    authors: list[dict]
    categories: list[str]


def find_by_identifiers(conn: Connection, column: str, keys: list[str]) -> dict[str, StoredPaper]:
    """Stored papers whose `column` (arxiv_id, doi, ...) is one of keys, with authors and subjects."""
    found: dict[str, StoredPaper] = {}
    col = papers.c[column]
    for chunk in _chunks(sorted(set(keys))):
        for row in conn.execute(select(papers).where(col.in_(chunk))).mappings():
            values = dict(row)
            found[values[column]] = StoredPaper(id=values.pop("id"), values=values, authors=[], categories=[])
    if found:
        by_id = {p.id: p for p in found.values()}
        for paper_id, authors in load_authors(conn, list(by_id)).items():
            by_id[paper_id].authors = authors
        for paper_id, cats in load_categories(conn, list(by_id)).items():
            by_id[paper_id].categories = cats
    return found


def load_authors(conn: Connection, paper_ids: list[int]) -> dict[int, list[dict]]:
    result: dict[int, list[dict]] = defaultdict(list)
    for chunk in _chunks(paper_ids):
        rows = conn.execute(
            select(paper_authors).where(paper_authors.c.paper_id.in_(chunk)).order_by(
                paper_authors.c.paper_id, paper_authors.c.position
            )
        ).mappings()
        for row in rows:
            result[row["paper_id"]].append({k: row[k] for k in _AUTHOR_COLUMNS})
    return result


def load_categories(conn: Connection, paper_ids: list[int]) -> dict[int, list[str]]:
    result: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(paper_ids):
        rows = conn.execute(
            select(paper_subjects.c.paper_id, paper_subjects.c.code, paper_subjects.c.is_primary)
            .where(paper_subjects.c.paper_id.in_(chunk), paper_subjects.c.scheme == "arxiv")
            .order_by(paper_subjects.c.paper_id, paper_subjects.c.is_primary.desc(), paper_subjects.c.code)
        )
        for paper_id, code, _primary in rows:
            result[paper_id].append(code)
    return result


def insert_papers(conn: Connection, rows: list[dict]) -> list[int]:
    """Insert paper rows; returns their new ids in the same order."""
    if not rows:
        return []
    result = conn.execute(
        insert(papers).returning(papers.c.id, sort_by_parameter_order=True),
        rows,
    )
    return [r[0] for r in result]


def update_papers(conn: Connection, rows: list[tuple[int, dict]]) -> None:
    if not rows:
        return
    names = [c.name for c in _PAPER_COLUMNS if c.name != "created_at"]
    stmt = (
        update(papers)
        .where(papers.c.id == bindparam("p_id"))
        .values({n: bindparam(f"p_{n}", type_=papers.c[n].type) for n in names})
    )
    conn.execute(stmt, [{"p_id": pid, **{f"p_{n}": values[n] for n in names}} for pid, values in rows])


def replace_authors(conn: Connection, items: list[tuple[int, list[dict]]], *, fresh: bool) -> None:
    if not items:
        return
    if not fresh:
        for chunk in _chunks([pid for pid, _ in items]):
            conn.execute(delete(paper_authors).where(paper_authors.c.paper_id.in_(chunk)))
    rows = [{"paper_id": pid, **a} for pid, authors in items for a in authors]
    if rows:
        conn.execute(insert(paper_authors), rows)


def replace_categories(conn: Connection, items: list[tuple[int, list[str]]], *, fresh: bool) -> None:
    if not items:
        return
    if not fresh:
        for chunk in _chunks([pid for pid, _ in items]):
            conn.execute(
                delete(paper_subjects).where(paper_subjects.c.paper_id.in_(chunk), paper_subjects.c.scheme == "arxiv")
            )
    rows = [
        {"paper_id": pid, "scheme": "arxiv", "code": code, "is_primary": i == 0}
        for pid, codes in items
        for i, code in enumerate(codes)
    ]
    if rows:
        conn.execute(insert(paper_subjects), rows)


def upsert_source_records(conn: Connection, rows: list[dict]) -> None:
    """One row per (source, source_id): re-ingesting the same record updates it in place."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(source_records)
    stmt = stmt.on_conflict_do_update(
        index_elements=["source", "source_id"],
        set_={
            "paper_id": stmt.excluded.paper_id,
            "announce_type": stmt.excluded.announce_type,
            "raw": stmt.excluded.raw,
            "fetched_at": stmt.excluded.fetched_at,
        },
    )
    conn.execute(stmt, rows)


def record_announcement(
    conn: Connection, *, source: str, feed: str, day: date, items: int, skip_days: list[str], now: datetime
) -> None:
    status = "announced" if items else "empty"
    existing = conn.execute(
        select(announcements.c.id).where(
            announcements.c.source == source, announcements.c.feed == feed, announcements.c.announced_on == day
        )
    ).scalar()
    values = {"status": status, "items": items, "skip_days": skip_days, "checked_at": now}
    if existing:
        conn.execute(update(announcements).where(announcements.c.id == existing).values(values))
    else:
        conn.execute(insert(announcements).values(source=source, feed=feed, announced_on=day, **values))


def count_papers(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(papers)).scalar_one()


def table_counts(conn: Connection) -> dict[str, int]:
    return {
        t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
        for t in (papers, paper_authors, paper_subjects, source_records, announcements)
    }
