"""A token that changes whenever anything is committed to the store, by any connection of any
process: what a cache of rendered pages is keyed by (web/page_cache.py), so a page is never
served from before a write. Asked on every page view, so it must cost microseconds, not a scan.

SQLite: `PRAGMA data_version` on a connection of its own that never writes; its value changes
whenever another connection (this process's pool, a CLI import, another server process) commits.
PostgreSQL: the server's current snapshot (`pg_current_snapshot()`); read-only transactions take
no transaction id, so it moves only when something wrote (anywhere on the server: a spurious
change costs a render, never a stale page). An in-memory SQLite store has no second connection to
watch it: no token (callers then cache nothing)."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine


class DataVersion:
    """`token()`: an opaque value, equal only while nothing was committed in between; None when
    this store cannot tell (then nothing may be cached)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._lock = threading.Lock()
        self._watcher: sqlite3.Connection | None = None
        self._opened = 0  # watchers opened: a new one counts from its own start, so it is part of the token
        database = engine.url.database if self.dialect == "sqlite" else None
        self._path = database if database and database != ":memory:" and not database.startswith("file:") else None
        self.supported = self.dialect == "postgresql" or self._path is not None

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
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT pg_current_snapshot()::text")).scalar_one()
        return None

    def close_watcher(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._watcher is not None:
            try:
                self._watcher.close()
            finally:
                self._watcher = None


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


__all__ = ["DataVersion", "StateMemo"]
