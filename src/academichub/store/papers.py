"""Paper rows in and out: batched look-ups by identifier, bulk inserts and updates, and the read
queries behind the feed. Every function takes an open Connection; the caller owns the transaction."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable

import orjson
from functools import lru_cache

from sqlalchemy import JSON, Connection, Date, DateTime, bindparam, delete, func, insert, select, text, update

from .schema import announcements, metadata, paper_authors, paper_subjects, papers, source_records

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


def _converter(column, dialect: str):
    """How one column's Python value becomes a driver value, matching what SQLAlchemy's own
    type processors would store (so reads through SQLAlchemy see the same thing)."""
    if isinstance(column.type, JSON):
        return lambda v: None if v is None else orjson.dumps(v).decode()
    if dialect == "sqlite" and isinstance(column.type, DateTime):
        return lambda v: None if v is None else v.isoformat(" ", "microseconds")
    if dialect == "sqlite" and isinstance(column.type, Date):
        return lambda v: None if v is None else v.isoformat()
    return None


@lru_cache(maxsize=32)
def _bulk_plan(table_name: str, columns: tuple[str, ...], dialect: str, paramstyle: str, suffix: str):
    table = metadata.tables[table_name]
    marker = "?" if paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))}){suffix}"
    converters = [(i, c) for i, name in enumerate(columns) if (c := _converter(table.c[name], dialect))]
    return sql, converters


def bulk_insert(
    conn: Connection, table_name: str, columns: tuple[str, ...], rows: list[dict], *, suffix: str = ""
) -> None:
    """executemany straight to the driver: SQLAlchemy's per-row parameter processing costs more
    than SQLite's own work on bulk imports. Only for INSERTs of known columns; `suffix` may add
    an ON CONFLICT clause (same syntax on SQLite and PostgreSQL)."""
    if not rows:
        return
    dialect = conn.dialect
    sql, converters = _bulk_plan(table_name, columns, dialect.name, dialect.paramstyle, suffix)
    if converters:
        params = []
        for row in rows:
            values = [row.get(name) for name in columns]
            for i, convert in converters:
                values[i] = convert(values[i])
            params.append(tuple(values))
    else:
        params = [tuple([row.get(name) for name in columns]) for row in rows]
    conn.exec_driver_sql(sql, params)


_PAPER_INSERT_COLUMNS = tuple(c.name for c in _PAPER_COLUMNS)


def insert_papers(conn: Connection, rows: list[dict], key_column: str) -> list[int]:
    """Insert paper rows; returns their new ids in the same order.

    A plain executemany followed by one look-up by identifier: RETURNING over many rows makes
    SQLite's driver go row by row, which is several times slower for bulk imports."""
    if not rows:
        return []
    bulk_insert(conn, "papers", _PAPER_INSERT_COLUMNS, rows)
    keys = [row[key_column] for row in rows]
    ids = ids_by_identifier(conn, key_column, keys)
    new_ids = [ids[k] for k in keys]
    _fts_add(conn, new_ids)
    return new_ids


_FTS_ADD = text(
    "INSERT INTO papers_fts(rowid, title, abstract, authors_text) "
    "SELECT id, title, abstract, authors_text FROM papers WHERE id IN :ids"
).bindparams(bindparam("ids", expanding=True))
_FTS_REMOVE = text(
    "INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors_text) "
    "SELECT 'delete', id, title, abstract, authors_text FROM papers WHERE id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def _fts_add(conn: Connection, ids: list[int]) -> None:
    """SQLite's FTS5 index is kept here, in bulk (PostgreSQL's tsvector column maintains itself)."""
    if conn.dialect.name != "sqlite":
        return
    for chunk in _chunks(ids):
        conn.execute(_FTS_ADD, {"ids": chunk})


def _fts_remove(conn: Connection, ids: list[int]) -> None:
    if conn.dialect.name != "sqlite":
        return
    for chunk in _chunks(ids):
        conn.execute(_FTS_REMOVE, {"ids": chunk})


def ids_by_identifier(conn: Connection, column: str, keys: list[str]) -> dict[str, int]:
    col = papers.c[column]
    found: dict[str, int] = {}
    for chunk in _chunks(keys):
        found.update({k: i for i, k in conn.execute(select(papers.c.id, col).where(col.in_(chunk)))})
    return found


def update_papers(conn: Connection, rows: list[tuple[int, dict]]) -> None:
    if not rows:
        return
    names = [c.name for c in _PAPER_COLUMNS if c.name != "created_at"]
    stmt = (
        update(papers)
        .where(papers.c.id == bindparam("p_id"))
        .values({n: bindparam(f"p_{n}", type_=papers.c[n].type) for n in names})
    )
    ids = [pid for pid, _ in rows]
    _fts_remove(conn, ids)
    conn.execute(stmt, [{"p_id": pid, **{f"p_{n}": values[n] for n in names}} for pid, values in rows])
    _fts_add(conn, ids)


def replace_authors(conn: Connection, items: list[tuple[int, list[dict]]], *, fresh: bool) -> None:
    if not items:
        return
    if not fresh:
        for chunk in _chunks([pid for pid, _ in items]):
            conn.execute(delete(paper_authors).where(paper_authors.c.paper_id.in_(chunk)))
    rows = [{"paper_id": pid, **a} for pid, authors in items for a in authors]
    bulk_insert(conn, "paper_authors", ("paper_id", *_AUTHOR_COLUMNS), rows)


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
    bulk_insert(conn, "paper_subjects", ("paper_id", "scheme", "code", "is_primary"), rows)


_SOURCE_COLUMNS = ("paper_id", "source", "source_id", "announce_type", "raw", "fetched_at")
_SOURCE_UPSERT = (
    " ON CONFLICT (source, source_id) DO UPDATE SET paper_id = excluded.paper_id, "
    "announce_type = excluded.announce_type, raw = excluded.raw, fetched_at = excluded.fetched_at"
)


def upsert_source_records(conn: Connection, rows: list[dict]) -> None:
    """One row per (source, source_id): re-ingesting the same record updates it in place."""
    bulk_insert(conn, "source_records", _SOURCE_COLUMNS, rows, suffix=_SOURCE_UPSERT)


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
