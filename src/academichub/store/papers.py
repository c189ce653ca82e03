"""Paper rows in and out: batched look-ups by identifier, bulk inserts and updates, and the read
queries behind the feed. Every function takes an open Connection; the caller owns the transaction."""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable, Iterator

import orjson
from itertools import compress, repeat
from operator import is_not, itemgetter
from functools import lru_cache

from sqlalchemy import JSON, Connection, Date, DateTime, bindparam, delete, func, insert, select, text, tuple_, update

from .schema import (
    announcements,
    metadata,
    paper_authors,
    paper_identifiers,
    paper_relations,
    paper_embeddings,
    paper_subjects,
    papers,
    radar_feedback,
    radar_seeds,
    radar_shown,
    source_records,
)

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
    authors: list[dict] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    subjects: list[tuple[str, str]] = field(default_factory=list)
    identifiers: dict[tuple[str, str], str] = field(default_factory=dict)
    relations: dict[tuple[str, str, str], str] = field(default_factory=dict)


def _marker(paramstyle: str) -> str:
    return "?" if paramstyle == "qmark" else "%s"


def _driver_in(conn: Connection, sql: str, fixed: tuple, values: list) -> list[tuple]:
    """`sql` with `{in}` filled by one marker per value, straight to the driver: on bulk imports
    SQLAlchemy's compilation of an expanding IN list per chunk costs more than the query.
    PostgreSQL gets one array parameter instead: no statement of 900 markers to build, send and
    parse per chunk."""
    if conn.dialect.name == "postgresql":
        if not values:
            return []
        array, param = _pg_text_array(values)
        statement = sql.replace("IN ({markers})", f"= ANY({array})").format(m="%s")
        return conn.exec_driver_sql(statement, (*fixed, param)).fetchall()
    marker = _marker(conn.dialect.paramstyle)
    rows: list[tuple] = []
    for chunk in _chunks(values):
        statement = sql.format(m=marker, markers=", ".join([marker] * len(chunk)))
        rows.extend(conn.exec_driver_sql(statement, (*fixed, *chunk)).fetchall())
    return rows


_UNIT_SEPARATOR = "\x1f"


def _pg_text_array(values: list) -> tuple[str, str | list]:
    """(SQL for a text[] parameter, the parameter) for these values. psycopg dumps a list element
    by element in Python, a regular expression each (more client time than the look-up it feeds),
    so strings go as one joined string that the server splits; values that could not survive the
    split (one containing the separator, a lone empty string, a non-string) go as psycopg's own
    array."""
    if all(type(v) is str for v in values):
        joined = _UNIT_SEPARATOR.join(values)
        if joined.count(_UNIT_SEPARATOR) == len(values) - 1 and joined:
            return "string_to_array(%s, chr(31))", joined
    return "%s::text[]", list(values)


def find_by_identifiers(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(scheme, value) -> paper id, for the keys the store knows. One indexed query per scheme and chunk."""
    by_scheme: dict[str, list[str]] = defaultdict(list)
    for scheme, value in set(keys):
        by_scheme[scheme].append(value)
    found: dict[tuple[str, str], int] = {}
    for scheme, values in by_scheme.items():
        rows = _driver_in(
            conn, "SELECT value, paper_id FROM paper_identifiers WHERE scheme = {m} AND value IN ({markers})",
            (scheme,), sorted(values),
        )
        found.update({(scheme, value): paper_id for value, paper_id in rows})
    return found


def find_by_relation_targets(conn: Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[int]]:
    """Stored papers that name one of these identifiers as their other version (a preprint whose
    journal DOI arrives now)."""
    by_scheme: dict[str, list[str]] = defaultdict(list)
    for scheme, value in set(keys):
        by_scheme[scheme].append(value)
    found: dict[tuple[str, str], set[int]] = defaultdict(set)
    for scheme, values in by_scheme.items():
        for chunk in _chunks(sorted(values)):
            rows = conn.execute(
                select(paper_relations.c.value, paper_relations.c.paper_id).where(
                    paper_relations.c.scheme == scheme, paper_relations.c.value.in_(chunk)
                )
            )
            for value, paper_id in rows:
                found[(scheme, value)].add(paper_id)
    return found


def any_relations(conn: Connection) -> bool:
    return conn.execute(select(paper_relations.c.paper_id).limit(1)).first() is not None


def any_paper_without_arxiv_id(conn: Connection) -> bool:
    return conn.execute(select(papers.c.id).where(papers.c.arxiv_id.is_(None)).limit(1)).first() is not None


def find_by_title_keys(conn: Connection, title_keys: Iterable[str]) -> dict[str, list[int]]:
    """Candidates for the fuzzy fallback: papers with exactly this normalized title (indexed)."""
    found: dict[str, list[int]] = defaultdict(list)
    keys = sorted(set(k for k in title_keys if k))
    for paper_id, key in _driver_in(conn, "SELECT id, title_key FROM papers WHERE title_key IN ({markers})", (), keys):
        found[key].append(paper_id)
    return found


def load_papers(conn: Connection, paper_ids: Iterable[int]) -> dict[int, StoredPaper]:
    """Full stored papers (columns, authors, subjects, identifiers, relations) by id."""
    ids = sorted(set(paper_ids))
    found: dict[int, StoredPaper] = {}
    for chunk in _chunks(ids):
        for row in conn.execute(select(papers).where(papers.c.id.in_(chunk))).mappings():
            values = dict(row)
            paper_id = values.pop("id")
            found[paper_id] = StoredPaper(id=paper_id, values=values)
    if not found:
        return found
    ids = list(found)
    for paper_id, authors in load_authors(conn, ids).items():
        found[paper_id].authors = authors
    for chunk in _chunks(ids):
        rows = conn.execute(
            select(paper_subjects.c.paper_id, paper_subjects.c.scheme, paper_subjects.c.code, paper_subjects.c.is_primary)
            .where(paper_subjects.c.paper_id.in_(chunk))
            .order_by(paper_subjects.c.paper_id, paper_subjects.c.is_primary.desc(), paper_subjects.c.scheme, paper_subjects.c.code)
        )
        for paper_id, scheme, code, _primary in rows:
            if scheme == "arxiv":
                found[paper_id].categories.append(code)
            else:
                found[paper_id].subjects.append((scheme, code))
        for paper_id, scheme, value, source in conn.execute(
            select(paper_identifiers.c.paper_id, paper_identifiers.c.scheme, paper_identifiers.c.value, paper_identifiers.c.source)
            .where(paper_identifiers.c.paper_id.in_(chunk))
        ):
            found[paper_id].identifiers[(scheme, value)] = source
        for paper_id, relation, scheme, value, source in conn.execute(
            select(paper_relations.c.paper_id, paper_relations.c.relation, paper_relations.c.scheme,
                   paper_relations.c.value, paper_relations.c.source)
            .where(paper_relations.c.paper_id.in_(chunk))
        ):
            found[paper_id].relations[(relation, scheme, value)] = source
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


@lru_cache(maxsize=4096)
def _sqlite_datetime(value):
    """SQLAlchemy's SQLite storage format; cached, as a batch stamps every row with one `now`."""
    return None if value is None else value.isoformat(" ", "microseconds")


def _json_text(value) -> str | None:
    """JSON for the driver; bytes are JSON already serialised (by the parsing worker)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    return orjson.dumps(value).decode()


def _converter(column, dialect: str):
    """How one column's Python value becomes a driver value, matching what SQLAlchemy's own
    type processors would store (so reads through SQLAlchemy see the same thing)."""
    if isinstance(column.type, JSON):
        return _json_text
    if dialect == "sqlite" and isinstance(column.type, DateTime):
        return _sqlite_datetime
    if dialect == "sqlite" and isinstance(column.type, Date):
        return lambda v: None if v is None else v.isoformat()
    return None


@lru_cache(maxsize=512)
def _bulk_plan(table_name: str, columns: tuple[str, ...], dialect: str, paramstyle: str, suffix: str):
    table = metadata.tables[table_name]
    marker = _marker(paramstyle)
    sql = f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))}){suffix}"
    converters = [(i, c) for i, name in enumerate(columns) if (c := _converter(table.c[name], dialect))]
    return sql, converters


def bulk_insert(
    conn: Connection, table_name: str, columns: tuple[str, ...], rows: list[dict] | list[tuple], *, suffix: str = ""
) -> None:
    """executemany straight to the driver: SQLAlchemy's per-row parameter processing costs more
    than SQLite's own work on bulk imports. Only for INSERTs of known columns; `suffix` may add
    an ON CONFLICT clause (same syntax on SQLite and PostgreSQL)."""
    if not rows:
        return
    dialect = conn.dialect
    sql, converters = _bulk_plan(table_name, columns, dialect.name, dialect.paramstyle, suffix)
    if isinstance(rows[0], tuple):  # already in column order
        params = rows
    else:
        getter = _getter(columns)
        try:
            params = [getter(row) for row in rows]  # C-level; every row normally has every column
        except KeyError:
            params = [tuple([row.get(name) for name in columns]) for row in rows]
    if converters:
        converted = []
        for values in params:
            values = list(values)
            for i, convert in converters:
                values[i] = convert(values[i])
            converted.append(tuple(values))
        params = converted
    if dialect.name == "postgresql" and len(params) >= COPY_MIN_ROWS:
        _pg_copy_insert(conn, table_name, columns, params, suffix)
        return
    conn.exec_driver_sql(sql, params)


# PostgreSQL: batches of at least this many rows go in through COPY (executemany sends one
# statement per row: the 3,300 rec/s of issue 17); fewer are not worth the staging table.
COPY_MIN_ROWS = 64
# The conflict target of each upsert suffix used with bulk_insert: the rows staged for one
# INSERT ... ON CONFLICT DO UPDATE must be distinct on it (the last of equal keys wins, as it did
# when each row was its own statement).
_CONFLICT_KEYS = {"paper_identifiers": ("scheme", "value"), "source_records": ("source", "source_id")}


def _pg_copy_insert(conn: Connection, table_name: str, columns: tuple[str, ...], params: list[tuple], suffix: str) -> None:
    """Rows into a PostgreSQL table through COPY, inside the caller's transaction. A plain insert
    copies straight into the table; one with an ON CONFLICT suffix copies into a temporary staging
    table (dropped at commit) and then runs one INSERT ... SELECT with that suffix, so the merge
    semantics stay those of the row-by-row statements; an upsert none of whose keys is stored yet
    copies straight into the table. The caller holds the store's write lock (`lock_for_writing`):
    a second writer of the same keys would make that COPY fail on the unique key."""
    cursor = conn.connection.dbapi_connection.cursor()
    names = ", ".join(columns)
    try:
        if not suffix:
            with cursor.copy(f"COPY {table_name} ({names}) FROM STDIN") as copy:
                for row in params:
                    copy.write_row(row)
            return
        if "DO UPDATE" in suffix:
            key = [columns.index(c) for c in _CONFLICT_KEYS[table_name]]
            last = {tuple(row[i] for i in key): row for row in params}
            params = list(last.values())
            if not _pg_any_stored(cursor, table_name, list(last)):
                # nothing to update: the rows go straight in, without the staging table's second
                # write and the upsert's conflict checks; the caller's write lock keeps it so
                with cursor.copy(f"COPY {table_name} ({names}) FROM STDIN") as copy:
                    for row in params:
                        copy.write_row(row)
                return
        stage = f"_stage_{table_name}"
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS SELECT {names} FROM {table_name} WITH NO DATA")
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in params:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO {table_name} ({names}) SELECT {names} FROM {stage}{suffix}")
        cursor.execute(f"TRUNCATE {stage}")
    finally:
        cursor.close()


def _pg_any_stored(cursor, table_name: str, keys: list[tuple]) -> bool:
    """Whether any of these conflict keys is already in the table: one probe of its unique index
    per key, in one statement."""
    names = _CONFLICT_KEYS[table_name]
    arrays = [_pg_text_array(list(column)) for column in zip(*keys)]
    cursor.execute(
        f"SELECT 1 FROM {table_name} JOIN unnest({', '.join(sql for sql, _ in arrays)}) AS k({', '.join(names)}) "
        f"USING ({', '.join(names)}) LIMIT 1",
        [param for _, param in arrays],
    )
    return cursor.fetchone() is not None


@lru_cache(maxsize=512)
def _getter(columns: tuple[str, ...]):
    getter = itemgetter(*columns)
    return getter if len(columns) > 1 else (lambda row: (getter(row),))


_PAPER_INSERT_COLUMNS = tuple(c.name for c in _PAPER_COLUMNS)


_KEY_COLUMNS = ("arxiv_id", "doi", "pmid", "pmcid", "openalex_id", "s2_id")


@lru_cache(maxsize=512)
def _filled_converters(filled: tuple[str, ...], dialect: str) -> tuple:
    """(position, converter) for the filled columns whose values need converting."""
    return tuple((i, c) for i, name in enumerate(filled) if (c := _converter(papers.c[name], dialect)))


def driver_row(values: dict, dialect: str) -> tuple[str, tuple[str, ...], tuple]:
    """(dialect, the columns a paper row fills, their driver values): what `insert_papers` binds
    for it, computed ahead by the bulk import's parsing worker so the writer does not."""
    try:
        row = _getter(_PAPER_INSERT_COLUMNS)(values)
    except KeyError:
        row = tuple(values.get(name) for name in _PAPER_INSERT_COLUMNS)
    present = list(map(is_not, row, repeat(None)))
    filled = tuple(compress(_PAPER_INSERT_COLUMNS, present))
    filled = _FILLED.setdefault(filled, filled) if len(_FILLED) < 256 else filled
    params = list(compress(row, present))
    for i, convert in _filled_converters(filled, dialect):
        params[i] = convert(params[i])
    return (dialect, filled, tuple(params))


_FILLED: dict[tuple, tuple] = {}


def search_vectors(conn: Connection, texts: list[tuple[str | None, str | None, str | None]]) -> list[str]:
    """PostgreSQL: the search vectors, as text, of these (title, abstract, authors_text), in order,
    by the store's one definition (`papers_search_vector`, migration 0016). A bulk import asks for
    them on a second connection, so another backend computes the next batch's vectors while the
    import's own writes this batch; a vector given to `insert_papers` spares the row trigger."""
    if not texts:
        return []
    arrays = [_pg_text_array([value or "" for value in column]) for column in zip(*texts)]
    rows = conn.exec_driver_sql(
        "SELECT papers_search_vector(t, a, au)::text FROM unnest("
        f"{', '.join(sql for sql, _ in arrays)}) WITH ORDINALITY AS u(t, a, au, n) ORDER BY n",
        tuple(param for _, param in arrays),
    ).all()
    return [row[0] for row in rows]


def insert_papers(conn: Connection, rows: list[dict], drivers: list[tuple | None] | None = None) -> list[int]:
    """Insert paper rows; returns their new ids in the same order.

    Rows are grouped by their first unique identifier column and by which columns they fill, and
    each group goes in one plain executemany of just those columns (binding 40 parameters per row,
    most of them NULL, cost more than SQLite's own work). RETURNING over many rows makes SQLite's
    driver go row by row, so ids come from SQLite's rowid order (checked) or one look-up per
    group. Rows with no identifier column (a feed entry known only by its link) are few and go
    one by one with RETURNING. A driver row may carry a fourth item, the row's search vector
    (`search_vectors`), which PostgreSQL's COPY then writes instead of the trigger computing it."""
    if not rows:
        return []
    new_ids: list[int | None] = [None] * len(rows)
    groups: dict[tuple[str | None, tuple[str, ...]], list[int]] = defaultdict(list)
    dialect = conn.dialect.name
    params: list[tuple | None] = [None] * len(rows)
    vectors: list[str | None] = [None] * len(rows)
    for i, row in enumerate(rows):
        column = next((c for c in _KEY_COLUMNS if row.get(c)), None)
        if column is None:
            groups[(None, ())].append(i)
            continue
        driver = drivers[i] if drivers is not None else None
        if driver is None or driver[0] != dialect:  # not computed ahead (or for another store)
            driver = driver_row(row, dialect)
        params[i] = driver[2]
        if len(driver) > 3:
            vectors[i] = driver[3]
        groups[(column, driver[1])].append(i)
    for (column, filled), positions in groups.items():
        batch = [rows[i] for i in positions]
        if column is None:
            for i, row in zip(positions, batch):
                new_ids[i] = conn.execute(insert(papers).returning(papers.c.id), row).scalar_one()
            continue
        before = _max_id(conn) if dialect == "sqlite" else None
        if dialect == "postgresql" and len(positions) >= COPY_MIN_ROWS:
            ids = _pg_next_ids(conn, len(positions))
            given = any(vectors[i] for i in positions)  # then NULL where none was: the trigger's
            columns = ("id", *filled, "search_vector") if given else ("id", *filled)
            copied = [(pid, *params[i], vectors[i]) if given else (pid, *params[i]) for pid, i in zip(ids, positions)]
            _pg_copy_insert(conn, "papers", columns, copied, "")
            for i, new_id in zip(positions, ids):
                new_ids[i] = new_id
            continue
        else:
            sql, _ = _bulk_plan("papers", filled, dialect, conn.dialect.paramstyle, "")
            conn.exec_driver_sql(sql, [params[i] for i in positions])
        if before is not None and _max_id(conn) == before + len(batch):
            # SQLite gives each new row max(rowid) + 1: inside this write transaction the batch
            # got the next len(batch) ids, in order (checked by the new maximum).
            for i, new_id in zip(positions, range(before + 1, before + len(batch) + 1)):
                new_ids[i] = new_id
            continue
        keys = [row[column] for row in batch]
        ids = ids_by_identifier(conn, column, keys)
        for i, key in zip(positions, keys):
            new_ids[i] = ids[key]
    result = [i for i in new_ids if i is not None]
    _fts_add(conn, result)
    return result


def _pg_next_ids(conn: Connection, count: int) -> list[int]:
    """`count` new paper ids from the table's own sequence, ascending as the column default would
    give them row by row: COPY cannot return the ids it assigns, and looking them up afterwards
    by identifier cost a query per 900 rows."""
    rows = conn.exec_driver_sql(
        "SELECT nextval(pg_get_serial_sequence('papers', 'id')) FROM generate_series(1, %s)", (count,)
    ).fetchall()
    return sorted(r[0] for r in rows)


def _max_id(conn: Connection) -> int:
    return conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM papers").scalar_one()


_FTS_ADD = text(
    "INSERT INTO papers_fts(rowid, title, abstract, authors_text) "
    "SELECT id, title, abstract, authors_text FROM papers WHERE id IN :ids"
).bindparams(bindparam("ids", expanding=True))
_FTS_REMOVE = text(
    "INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors_text) "
    "SELECT 'delete', id, title, abstract, authors_text FROM papers WHERE id IN :ids"
).bindparams(bindparam("ids", expanding=True))


_FTS_ADD_RANGE = (
    "INSERT INTO papers_fts(rowid, title, abstract, authors_text) "
    "SELECT id, title, abstract, authors_text FROM papers WHERE id BETWEEN ? AND ?"
)


# conn.info key: the ids whose FTS5 rows a bulk import adds at the end of its transaction
_FTS_PENDING = "academichub.fts_pending"


@contextmanager
def search_index_deferred(conn: Connection) -> Iterator[None]:
    """Inside the caller's transaction, new papers reach SQLite's FTS5 index in one statement
    when the block ends rather than one per batch: FTS5 then writes its segments once instead of
    merging a new one per batch. An update or deletion of a paper inside the block adds what is
    pending first (the index must hold a row before its 'delete'). Leaving the block by an
    exception adds nothing: the transaction is being rolled back anyway."""
    if conn.dialect.name != "sqlite" or _FTS_PENDING in conn.info:
        yield
        return
    conn.info[_FTS_PENDING] = []
    try:
        yield
        _fts_flush(conn)
    finally:
        conn.info.pop(_FTS_PENDING, None)


def _fts_flush(conn: Connection) -> None:
    pending = conn.info.get(_FTS_PENDING)
    if pending:
        ids = sorted(pending)
        pending.clear()
        _fts_write(conn, ids)


def _fts_add(conn: Connection, ids: list[int]) -> None:
    """SQLite's FTS5 index is kept here, in bulk (PostgreSQL's tsvector column maintains itself),
    or left to the end of `search_index_deferred`."""
    if conn.dialect.name != "sqlite" or not ids:
        return
    pending = conn.info.get(_FTS_PENDING)
    if pending is not None:
        pending.extend(ids)
        return
    _fts_write(conn, ids)


def _fts_write(conn: Connection, ids: list[int]) -> None:
    """Runs of consecutive ids (fresh inserts) go in one range query each instead of IN lists."""
    scattered: list[int] = []
    ordered = sorted(set(ids))
    start = 0
    for end in range(1, len(ordered) + 1):
        if end == len(ordered) or ordered[end] != ordered[end - 1] + 1:
            if end - start >= 64:
                conn.exec_driver_sql(_FTS_ADD_RANGE, (ordered[start], ordered[end - 1]))
            else:
                scattered.extend(ordered[start:end])
            start = end
    for chunk in _chunks(scattered):
        conn.execute(_FTS_ADD, {"ids": chunk})


def _fts_remove(conn: Connection, ids: list[int]) -> None:
    if conn.dialect.name != "sqlite":
        return
    _fts_flush(conn)
    for chunk in _chunks(ids):
        conn.execute(_FTS_REMOVE, {"ids": chunk})


def ids_by_identifier(conn: Connection, column: str, keys: list[str]) -> dict[str, int]:
    if column not in _KEY_COLUMNS:
        raise ValueError(f"not an identifier column: {column}")
    rows = _driver_in(conn, f"SELECT id, {column} FROM papers WHERE {column} IN ({{markers}})", (), keys)
    return {k: i for i, k in rows}


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


def replace_subjects(
    conn: Connection, items: list[tuple[int, list[str], list[tuple[str, str]]]], *, fresh: bool
) -> None:
    """arXiv categories (primary first) and every other taxonomy's subjects of each paper."""
    if not items:
        return
    if not fresh:
        for chunk in _chunks([pid for pid, _, _ in items]):
            conn.execute(delete(paper_subjects).where(paper_subjects.c.paper_id.in_(chunk)))
    rows = []
    for pid, categories, subjects in items:
        rows.extend({"paper_id": pid, "scheme": "arxiv", "code": code, "is_primary": i == 0} for i, code in enumerate(categories))
        rows.extend({"paper_id": pid, "scheme": scheme, "code": code, "is_primary": False} for scheme, code in subjects)
    bulk_insert(conn, "paper_subjects", ("paper_id", "scheme", "code", "is_primary"), rows, suffix=" ON CONFLICT DO NOTHING")


_IDENTIFIER_UPSERT = " ON CONFLICT (scheme, value) DO UPDATE SET paper_id = excluded.paper_id"


def upsert_identifiers(conn: Connection, items: list[tuple[int, dict[tuple[str, str], str]]]) -> None:
    rows = [
        (scheme, value, pid, source)
        for pid, identifiers in items
        for (scheme, value), source in identifiers.items()
    ]
    bulk_insert(conn, "paper_identifiers", ("scheme", "value", "paper_id", "source"), rows, suffix=_IDENTIFIER_UPSERT)


def add_relations(conn: Connection, items: list[tuple[int, dict[tuple[str, str, str], str]]]) -> None:
    rows = [
        {"paper_id": pid, "relation": relation, "scheme": scheme, "value": value, "source": source}
        for pid, relations in items
        for (relation, scheme, value), source in relations.items()
    ]
    bulk_insert(
        conn, "paper_relations", ("paper_id", "relation", "scheme", "value", "source"), rows,
        suffix=" ON CONFLICT DO NOTHING",
    )


def absorb_papers(conn: Connection, target_id: int, other_ids: list[int]) -> None:
    """Two stored papers turned out to be one work: move what belongs to the others onto the
    target, then delete them (their authors, subjects and identifiers go with them; the merged
    row rewrites what the target keeps). A radar's seed, feedback or shown mark follows the paper;
    where the radar already has the target, the duplicate is dropped."""
    if not other_ids:
        return
    _fts_flush(conn)  # the delete trigger removes their FTS5 rows, which must be there first
    conn.execute(update(source_records).where(source_records.c.paper_id.in_(other_ids)).values(paper_id=target_id))
    conn.execute(update(radar_feedback).where(radar_feedback.c.paper_id.in_(other_ids)).values(paper_id=target_id))
    for table, keys in ((radar_seeds, ("radar_id",)), (radar_shown, ("radar_id", "day")), (paper_embeddings, ("model",))):
        taken = select(*[table.c[k] for k in keys]).where(table.c.paper_id == target_id)
        conn.execute(
            delete(table).where(table.c.paper_id.in_(other_ids), tuple_(*[table.c[k] for k in keys]).in_(taken))
            if len(keys) > 1 else delete(table).where(table.c.paper_id.in_(other_ids), table.c[keys[0]].in_(taken))
        )
        conn.execute(update(table).where(table.c.paper_id.in_(other_ids)).values(paper_id=target_id))
    conn.execute(delete(paper_identifiers).where(paper_identifiers.c.paper_id.in_(other_ids)))
    conn.execute(delete(papers).where(papers.c.id.in_(other_ids)))


_SOURCE_COLUMNS = ("paper_id", "source", "source_id", "announce_type", "raw", "fetched_at")
_SOURCE_UPSERT = (
    " ON CONFLICT (source, source_id) DO UPDATE SET paper_id = excluded.paper_id, "
    "announce_type = excluded.announce_type, raw = excluded.raw, fetched_at = excluded.fetched_at"
)


def upsert_source_records(conn: Connection, rows: list[dict] | list[tuple]) -> None:
    """One row per (source, source_id): re-ingesting the same record updates it in place. Rows
    are dicts or tuples in `_SOURCE_COLUMNS` order."""
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


def paper_titles(conn: Connection, paper_ids: Iterable[int]) -> dict[int, str]:
    """id -> title of the stored papers among `paper_ids`."""
    titles: dict[int, str] = {}
    for chunk in _chunks(list(dict.fromkeys(paper_ids))):
        titles.update(conn.execute(select(papers.c.id, papers.c.title).where(papers.c.id.in_(chunk))).all())
    return titles


def count_vectors(conn: Connection, model: str | None = None) -> int:
    """Stored embeddings (of one model, or of any)."""
    stmt = select(func.count()).select_from(paper_embeddings)
    if model is not None:
        stmt = stmt.where(paper_embeddings.c.model == model)
    return conn.execute(stmt).scalar_one()


def any_vectors(conn: Connection) -> bool:
    """Whether any paper has a stored embedding (cheaper than counting them)."""
    return conn.execute(select(paper_embeddings.c.paper_id).limit(1)).first() is not None


def refresh_statistics(conn: Connection) -> None:
    """PostgreSQL: ANALYZE the tables a merge looks up by identifier, inside the caller's
    transaction (its own uncommitted rows count). SQLite needs none: its planner takes the
    unique index for an IN list whatever the table's size. Only the looked-up columns: statistics
    of the `tsvector` and the long texts cost most of a whole-table ANALYZE and plan no look-up.
    A sample of 3,000 rows (statistics target 10, for this transaction) rather than 30,000: the
    look-ups' plans need the tables' sizes and that the keys are distinct, not fine histograms,
    and the larger sample made each refresh ten times dearer (docs/design.md, "PostgreSQL at a
    million"); autovacuum's ANALYZE after the commit takes the full sample again."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL default_statistics_target = 10")
        conn.exec_driver_sql(
            f"ANALYZE papers ({', '.join(_KEY_COLUMNS)}, title_key), paper_identifiers, paper_relations, "
            "source_records (source, source_id, paper_id)"
        )


def count_papers(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(papers)).scalar_one()


def table_counts(conn: Connection) -> dict[str, int]:
    return {
        t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
        for t in (papers, paper_authors, paper_subjects, source_records, announcements, paper_identifiers)
    }
