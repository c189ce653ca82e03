"""The job ledger: one row per idempotency key, and the truth about what ran. The queue (Huey) only
carries messages, and a killed consumer loses the one it held; the ledger says what is queued,
running (and until when its worker's lease holds), done or failed, so a done key is never run
again and an abandoned one is claimed again.

Every state change is one UPDATE whose WHERE says which states it may come from: atomic on SQLite
(one writer at a time) and on PostgreSQL (a concurrent UPDATE of the same row waits, then re-checks
the WHERE against the committed row), so of two workers claiming one key exactly one wins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.engine import Engine

from .schema import jobs

STATUSES = ("queued", "running", "done", "failed")


@dataclass(frozen=True, slots=True)
class Job:
    key: str
    name: str
    params: dict
    status: str
    attempts: int
    error: str | None
    result: dict | None
    worker: str | None
    lease_until: datetime | None
    enqueued_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _job(row) -> Job:
    m = row._mapping
    return Job(**{name: m[name] for name in Job.__slots__})


def _naive(value: datetime) -> datetime:
    """Stored datetimes are naive UTC (store.state.utcnow); an aware one is converted."""
    from .state import as_utc

    return as_utc(value).replace(tzinfo=None) if value.tzinfo is not None else value


def ensure(conn: Connection, key: str, name: str, params: dict, now: datetime) -> bool:
    """Record a job as queued unless its key exists (whatever its state); True when it was new."""
    now = _naive(now)
    values = dict(key=key, name=name, params=params, status="queued", attempts=0, created_at=now, updated_at=now)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(jobs).values(**values).on_conflict_do_nothing(index_elements=["key"]).returning(jobs.c.id)
    return conn.execute(stmt).scalar() is not None


def get(conn: Connection, key: str) -> Job | None:
    row = conn.execute(select(jobs).where(jobs.c.key == key)).first()
    return _job(row) if row is not None else None


def states(conn: Connection, keys: list[str] | None = None) -> dict[str, Job]:
    """The jobs of these keys (all jobs not done, plus every key given, when None: the open ones)."""
    stmt = select(jobs)
    if keys is None:
        stmt = stmt.where(jobs.c.status.in_(("queued", "running")))
    else:
        if not keys:
            return {}
        stmt = stmt.where(jobs.c.key.in_(keys))
    return {row.key: _job(row) for row in conn.execute(stmt)}


def mark_enqueued(engine: Engine, keys: list[str], at: datetime) -> None:
    """When these queued jobs' messages were put on the queue (or, for a retry, are due)."""
    if keys:
        with engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.key.in_(keys), jobs.c.status == "queued")
                         .values(enqueued_at=_naive(at)))


def claim(engine: Engine, key: str, worker: str, now: datetime, lease_seconds: float, *, force: bool = False) -> Job | None:
    """Take a job to run it: a queued one, or a running one whose lease expired (its worker died).
    None when someone else holds it or it is finished (`force`: a failed one too, for `jobs run`)."""
    now = _naive(now)
    claimable = or_(jobs.c.status == "queued", and_(jobs.c.status == "running", jobs.c.lease_until < now))
    if force:
        claimable = or_(claimable, jobs.c.status == "failed")
    with engine.begin() as conn:
        claimed = conn.execute(
            update(jobs).where(jobs.c.key == key, claimable).values(
                status="running", worker=worker, attempts=jobs.c.attempts + 1, started_at=now,
                lease_until=now + timedelta(seconds=lease_seconds), updated_at=now,
            )
        ).rowcount
        return get(conn, key) if claimed == 1 else None


def heartbeat(engine: Engine, key: str, worker: str, now: datetime, lease_seconds: float) -> bool:
    """Extend the lease of a job this worker still holds; False when it lost it."""
    now = _naive(now)
    with engine.begin() as conn:
        return conn.execute(
            update(jobs).where(jobs.c.key == key, jobs.c.worker == worker, jobs.c.status == "running")
            .values(lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
        ).rowcount == 1


def finish(conn: Connection, key: str, worker: str, now: datetime, result: dict | None = None) -> bool:
    """Done, in the caller's transaction (so a job's own writes and its "done" commit together where
    they can); False when the worker no longer holds it."""
    now = _naive(now)
    return conn.execute(
        update(jobs).where(jobs.c.key == key, jobs.c.worker == worker, jobs.c.status == "running")
        .values(status="done", result=result, error=None, finished_at=now, lease_until=None, updated_at=now)
    ).rowcount == 1


def fail(engine: Engine, key: str, worker: str, now: datetime, error: str, *, retry_at: datetime | None) -> bool:
    """An attempt failed: queued again (due at `retry_at`), or failed for good when None."""
    now = _naive(now)
    values: dict = dict(error=error[:4000], lease_until=None, updated_at=now)
    if retry_at is None:
        values.update(status="failed", finished_at=now)
    else:
        values.update(status="queued", enqueued_at=_naive(retry_at))
    with engine.begin() as conn:
        return conn.execute(
            update(jobs).where(jobs.c.key == key, jobs.c.worker == worker, jobs.c.status == "running").values(**values)
        ).rowcount == 1


def requeue(conn: Connection, key: str, now: datetime) -> bool:
    """`jobs run` of a failed job: queued again with its attempts kept."""
    now = _naive(now)
    return conn.execute(
        update(jobs).where(jobs.c.key == key, jobs.c.status == "failed").values(status="queued", updated_at=now)
    ).rowcount == 1


def stranded(conn: Connection, now: datetime, grace_seconds: float) -> list[Job]:
    """Jobs whose message is probably gone: running with an expired lease (the worker died), or
    queued and not picked up `grace_seconds` after they were (due to be) enqueued."""
    now = _naive(now)
    late = now - timedelta(seconds=grace_seconds)
    rows = conn.execute(
        select(jobs).where(or_(
            and_(jobs.c.status == "running", jobs.c.lease_until < now),
            and_(jobs.c.status == "queued", or_(jobs.c.enqueued_at.is_(None), jobs.c.enqueued_at < late)),
        )).order_by(jobs.c.id)
    )
    return [_job(row) for row in rows]


def recent(conn: Connection, limit: int = 50, status: str | None = None) -> list[Job]:
    stmt = select(jobs).order_by(jobs.c.updated_at.desc(), jobs.c.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(jobs.c.status == status)
    return [_job(row) for row in conn.execute(stmt)]


def counts(conn: Connection) -> dict[str, int]:
    found = dict(conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all())
    return {status: int(found.get(status, 0)) for status in STATUSES}


def latest_of(conn: Connection, prefix: str) -> Job | None:
    """The newest job whose key starts with `prefix` (e.g. "brief:3:")."""
    row = conn.execute(
        select(jobs).where(jobs.c.key.like(prefix.replace("%", r"\%").replace("_", r"\_") + "%", escape="\\"))
        .order_by(jobs.c.id.desc()).limit(1)
    ).first()
    return _job(row) if row is not None else None


__all__ = [
    "Job", "STATUSES", "claim", "counts", "ensure", "fail", "finish", "get", "heartbeat", "latest_of", "mark_enqueued",
    "recent", "requeue", "stranded", "states",
]


def briefing_owners(conn: Connection) -> list[tuple[int, str, str | None, int | None]]:
    """Every radar with its owner's time zone and briefing hour (None: the settings'), for the
    scheduler's "brief each radar at its owner's hour"."""
    from .schema import radars, users

    rows = conn.execute(
        select(radars.c.id, radars.c.name, users.c.timezone, users.c.briefing_hour)
        .join(users, users.c.id == radars.c.user_id).order_by(radars.c.id)
    ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]
