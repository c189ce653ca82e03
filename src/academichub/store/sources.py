"""The source registry: one row per configured upstream, carrying its own health (last success,
last error, consecutive failures, failing since) so a failing source is visible and never stops
the others."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from .schema import sources


def __getattr__(name: str):
    # KINDS: the kinds a source row can name, read from the registry (sources/kinds.py) when asked
    # for, so that a kind added by a module or plugin counts without an edit here.
    if name == "KINDS":
        from ..sources.kinds import addable_kinds

        return tuple(kind.name for kind in addable_kinds())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def add_source(
    conn: Connection,
    *,
    name: str,
    kind: str,
    params: dict,
    label: str | None,
    now: datetime,
    interval_minutes: int = 1440,
    enabled: bool = True,
) -> int:
    return conn.execute(
        insert(sources).values(
            name=name, kind=kind, label=label, params=params, enabled=enabled, interval_minutes=interval_minutes,
            consecutive_failures=0, last_added=0, last_updated=0, created_at=now,
        )
    ).inserted_primary_key[0]


def get_source(conn: Connection, name: str) -> dict | None:
    row = conn.execute(select(sources).where(sources.c.name == name)).mappings().first()
    return dict(row) if row else None


def list_sources(conn: Connection, *, enabled_only: bool = False) -> list[dict]:
    stmt = select(sources).order_by(sources.c.name)
    if enabled_only:
        stmt = stmt.where(sources.c.enabled.is_(True))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def remove_source(conn: Connection, name: str) -> bool:
    return bool(conn.execute(delete(sources).where(sources.c.name == name)).rowcount)


def set_enabled(conn: Connection, name: str, enabled: bool) -> bool:
    return bool(conn.execute(update(sources).where(sources.c.name == name).values(enabled=enabled)).rowcount)


def record_success(conn: Connection, source_id: int, *, added: int, updated: int, now: datetime) -> None:
    conn.execute(
        update(sources).where(sources.c.id == source_id).values(
            last_run_at=now, last_success_at=now, consecutive_failures=0, failing_since=None,
            last_error=None, last_added=added, last_updated=updated,
        )
    )


def record_failure(conn: Connection, source_id: int, *, error: str, now: datetime) -> None:
    row = conn.execute(select(sources.c.failing_since).where(sources.c.id == source_id)).first()
    conn.execute(
        update(sources).where(sources.c.id == source_id).values(
            last_run_at=now, last_error=error[:2000], last_error_at=now,
            failing_since=(row[0] if row and row[0] else now),
            consecutive_failures=sources.c.consecutive_failures + 1, last_added=0, last_updated=0,
        )
    )


def failing_sources(conn: Connection) -> list[dict]:
    stmt = select(sources).where(sources.c.enabled.is_(True), sources.c.consecutive_failures > 0).order_by(sources.c.failing_since)
    return [dict(r) for r in conn.execute(stmt).mappings()]
