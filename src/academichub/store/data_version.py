"""A token that changes whenever something a page can show is committed to the store, by any
connection of any process: what a cache of rendered pages is keyed by (web/page_cache.py), so a
page is never served from before a write it could see. Asked on every page view, so it must cost
one round trip at most, not a scan.

SQLite: `PRAGMA data_version` on a connection of its own that never writes; its value changes
whenever another connection (this process's pool, a CLI import, another server process) commits.

PostgreSQL: the server's own counters (its snapshot, its statistics) are shared by every database
of the server and are not transactional, so migration 0014 keeps one for this database: each
committed transaction that wrote a watched table (every table but UNWATCHED_TABLES, store/schema.py)
leaves one row in `data_version_xacts`, inserted by a statement trigger in that transaction. The
token is `data_version_base.n` plus the rows, read in one statement, so under one snapshot. It is
exact because snapshots are nested: of two, the later sees every commit the earlier saw, so two
snapshots that count the same number of such transactions see the same ones: the same data. A
write to another database, to the job ledger or a rolled-back one adds no row. Writers only insert
rows with their own new transaction id, so they never wait on each other or on a reader.
Compaction (once the rows pass COMPACT_AT) deletes rows and adds their number to `n` in one
transaction, so every snapshot counts the same total before and after; a try-lock keeps two
compactors from waiting on each other. `epoch`, drawn when the table is made, keeps a database made
again from repeating a token. docs/design.md, "Kept pages", has the whole argument.

An in-memory SQLite store has no second connection to watch it, and a store the token cannot be
read from answers None: callers then cache nothing."""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine


COMPACT_AT = 1000  # rows in data_version_xacts past which a reader folds them into the base counter
COMPACT_LOCK_KEY = 0x41634862_03  # the advisory lock compactors try (database.py has _01 and _02)
TOKEN_SQL = "SELECT b.epoch, b.n, (SELECT count(*) FROM data_version_xacts) FROM data_version_base b"
COMPACT_SQL = ("WITH d AS (DELETE FROM data_version_xacts RETURNING 1) "
               "UPDATE data_version_base SET n = n + (SELECT count(*) FROM d)")
TRIGGER = "data_version"  # the trigger's name on each watched table (migration 0014)


class DataVersion:
    """`token()`: an opaque value, equal only while nothing was committed in between; None when
    this store cannot tell (then nothing may be cached)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._lock = threading.Lock()
        self._watcher: Any = None  # sqlite3 connection, or a psycopg one in autocommit on PostgreSQL
        self._watcher_pid = 0  # the process that opened it (a forked worker opens its own)
        self._opened = 0  # watchers opened: a new one counts from its own start, so it is part of the token
        database = engine.url.database if self.dialect == "sqlite" else None
        self._path = database if database and database != ":memory:" and not database.startswith("file:") else None
        self.supported = self.dialect == "postgresql" or self._path is not None
        self.compactions = 0  # done by this process (tests)

    def token(self) -> str | None:
        if self.dialect == "sqlite":
            if self._path is None:
                return None
            with self._lock:
                try:
                    if self._watcher is None:
                        self._watcher = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
                        self._opened += 1
                    return f"{self._opened}.{self._watcher.execute('PRAGMA data_version').fetchone()[0]}"
                except sqlite3.Error:
                    self._close()
                    return None
        if self.dialect == "postgresql":
            return self._postgresql_token()
        return None

    def _postgresql_token(self) -> str | None:
        """One statement on a connection of this object's own (autocommit: no BEGIN, no pool
        checkout or ping), prepared by psycopg after a few calls."""
        dbapi = self.engine.dialect.loaded_dbapi
        with self._lock:
            try:
                conn = self._pg_watcher()
                epoch, base, rows = conn.execute(TOKEN_SQL).fetchone()
            except dbapi.Error:  # the server went away, or the store predates 0014: cache nothing
                self._close()
                return None
            if rows > COMPACT_AT:
                try:
                    self._compact(conn)
                except dbapi.Error:  # the token read stands; the next reader compacts
                    self._close()
            return f"{epoch}.{base + rows}"

    def _pg_watcher(self):
        if self._watcher is not None and self._watcher_pid != os.getpid():
            self._watcher = None  # the parent's connection: never used (nor closed) from a forked child
        if self._watcher is None:
            cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
            self._watcher = self.engine.dialect.connect(*cargs, **cparams)
            self._watcher.autocommit = True
            self._watcher_pid = os.getpid()
        return self._watcher

    def _compact(self, conn) -> None:
        """Fold the counted rows into the base counter, in one short transaction of its own (the
        token just read stays right: the total is the same before and after); skipped when
        another process is compacting."""
        with conn.transaction():
            if conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (COMPACT_LOCK_KEY,)).fetchone()[0]:
                conn.execute(COMPACT_SQL)
                self.compactions += 1

    def compact(self) -> None:
        """Compact now, whatever the count (tests; any caller with a quiet moment)."""
        if self.dialect != "postgresql":
            return
        with self._lock:
            try:
                self._compact(self._pg_watcher())
            except self.engine.dialect.loaded_dbapi.Error:
                self._close()

    def close_watcher(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._watcher is not None:
            try:
                if self._watcher_pid == os.getpid() or self.dialect == "sqlite":
                    self._watcher.close()
            except Exception:  # noqa: BLE001 - a broken connection is dropped all the same
                pass
            finally:
                self._watcher = None


def unwatched_tables(conn: Connection) -> list[str]:
    """The tables of the declared schema that a data version trigger should watch and does not
    (PostgreSQL; SQLite needs none): a migration that adds a table and forgets the trigger makes
    kept pages miss its writes. `academichub db check` reports them."""
    if conn.dialect.name != "postgresql":
        return []
    from .schema import UNWATCHED_TABLES, metadata

    watched = set(conn.execute(text(
        "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname = :name AND t.tgenabled <> 'D' AND c.relnamespace = current_schema()::regnamespace"
    ), {"name": TRIGGER}).scalars())
    return sorted(t.name for t in metadata.sorted_tables if t.name not in UNWATCHED_TABLES and t.name not in watched)


class StateMemo:
    """Values computed once per store state (the sidebar's days and categories, the loop line, the
    feed's matching rows): `get(key, compute)` gives the value kept for the current
    data version, or computes it; a new token forgets every value. A store that cannot
    say its state (in-memory SQLite) computes every time."""

    def __init__(self, versions: DataVersion, kept: int = 256) -> None:
        self.versions = versions
        self.kept = kept
        self.token: Any = None
        self.values: dict = {}

    def get(self, key, compute):
        token = self.versions.token()
        if token is None:
            return compute()
        if token != self.token:
            self.values, self.token = {}, token
        values = self.values
        if key in values:
            return values[key]
        value = compute()
        if self.token == token and len(values) < self.kept:
            values[key] = value
        return value


__all__ = ["DataVersion", "StateMemo", "unwatched_tables"]
