"""Delivery channels and the delivery record: one row per (user, channel, radar-or-all, period),
so a digest goes out once however many workers, retries and ticks ask for it.

A row's life: `pending` (recorded) -> `sending` (claimed by one worker, nothing handed over yet)
-> `committing` (the message's last part is on its way: the SMTP DATA, the webhook's POST) ->
`sent`; or `failed` (the server said no: retried by the job ledger). A worker that dies in
`sending` handed nothing over: its row is claimed again once stale. A worker that dies in
`committing` may or may not have delivered: the row becomes `unconfirmed` and is never sent again
(at most once; the Message-ID it carries finds it in the mail log). Every change is one UPDATE
whose WHERE names the states it may come from, atomic on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, delete, insert, or_, select, update
from sqlalchemy.engine import Engine

from .schema import deliveries, delivery_channels, radars, users
from .state import utcnow

KINDS = ("email", "slack", "discord", "feishu", "dingtalk", "wecom", "ntfy", "json")
CADENCES = ("daily", "weekly")
DELIVERY_STATUSES = ("pending", "sending", "committing", "sent", "failed", "unconfirmed")


@dataclass(frozen=True, slots=True)
class Channel:
    id: int
    user_id: int
    kind: str
    target: str
    secret: str | None
    radar_id: int | None
    cadence: str
    lang: str
    enabled: bool
    last_error: str | None
    last_error_at: datetime | None
    created_at: datetime

    @property
    def scope(self) -> str:
        return "all" if self.radar_id is None else f"radar:{self.radar_id}"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    user_id: int
    channel_id: int
    scope: str
    period: str
    status: str
    attempts: int
    error: str | None
    late: bool
    message_id: str | None
    worker: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


def _channel(row) -> Channel:
    m = row._mapping
    return Channel(**{name: m[name] for name in Channel.__slots__})


def _delivery(row) -> Delivery:
    m = row._mapping
    return Delivery(**{name: m[name] for name in Delivery.__slots__})


def _naive(value: datetime) -> datetime:
    from .state import as_utc

    return as_utc(value).replace(tzinfo=None) if value.tzinfo is not None else value


# ----------------------------------------------------------------------------- channels


def add_channel(conn: Connection, user_id: int, kind: str, target: str, *, secret: str | None = None,
                radar_id: int | None = None, cadence: str = "daily", lang: str = "zh", enabled: bool = True) -> int:
    return conn.execute(insert(delivery_channels).values(
        user_id=user_id, kind=kind, target=target, secret=secret or None, radar_id=radar_id, cadence=cadence,
        lang=lang, enabled=enabled, created_at=utcnow(),
    ).returning(delivery_channels.c.id)).scalar_one()


def update_channel(conn: Connection, channel_id: int, user_id: int, **values) -> bool:
    """Change a channel of this user (a None secret keeps the stored one)."""
    if "secret" in values and not values["secret"]:
        values.pop("secret")
    return conn.execute(update(delivery_channels).where(
        delivery_channels.c.id == channel_id, delivery_channels.c.user_id == user_id).values(**values)).rowcount == 1


def remove_channel(conn: Connection, channel_id: int, user_id: int) -> bool:
    return conn.execute(delete(delivery_channels).where(
        delivery_channels.c.id == channel_id, delivery_channels.c.user_id == user_id)).rowcount == 1


def get_channel(conn: Connection, channel_id: int) -> Channel | None:
    row = conn.execute(select(delivery_channels).where(delivery_channels.c.id == channel_id)).first()
    return _channel(row) if row is not None else None


def list_channels(conn: Connection, user_id: int | None = None, *, enabled_only: bool = False) -> list[Channel]:
    stmt = select(delivery_channels).order_by(delivery_channels.c.id)
    if user_id is not None:
        stmt = stmt.where(delivery_channels.c.user_id == user_id)
    if enabled_only:
        stmt = stmt.where(delivery_channels.c.enabled.is_(True))
    return [_channel(row) for row in conn.execute(stmt)]


def disable_channel(conn: Connection, channel_id: int) -> bool:
    return conn.execute(update(delivery_channels).where(delivery_channels.c.id == channel_id)
                        .values(enabled=False)).rowcount == 1


def record_channel_error(conn: Connection, channel_id: int, error: str | None, at: datetime) -> None:
    """The channel's last error (None clears it after a success)."""
    conn.execute(update(delivery_channels).where(delivery_channels.c.id == channel_id).values(
        last_error=error[:2000] if error else None, last_error_at=_naive(at) if error else None))


def channel_owners(conn: Connection) -> list[tuple[Channel, str | None, int | None]]:
    """Every enabled channel with its owner's time zone and briefing hour (None: the settings')."""
    rows = conn.execute(
        select(delivery_channels, users.c.timezone, users.c.briefing_hour)
        .join(users, users.c.id == delivery_channels.c.user_id)
        .where(delivery_channels.c.enabled.is_(True)).order_by(delivery_channels.c.id)
    ).all()
    return [(_channel(row), row._mapping["timezone"], row._mapping["briefing_hour"]) for row in rows]


def user_radars(conn: Connection, user_id: int) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in conn.execute(
        select(radars.c.id, radars.c.name).where(radars.c.user_id == user_id).order_by(radars.c.id))]


def radar_owner(conn: Connection, radar_id: int) -> int | None:
    return conn.execute(select(radars.c.user_id).where(radars.c.id == radar_id)).scalar()


def user_email(conn: Connection, user_id: int) -> str | None:
    return conn.execute(select(users.c.email).where(users.c.id == user_id)).scalar()


def set_user_email(conn: Connection, user_id: int, email: str | None) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(email=email or None))


# ----------------------------------------------------------------------------- the delivery record


def ensure_delivery(conn: Connection, channel: Channel, period: str, *, late: bool, now: datetime) -> Delivery:
    """The row of this channel's period, recorded as pending when missing."""
    now = _naive(now)
    values = dict(user_id=channel.user_id, channel_id=channel.id, scope=channel.scope, period=period, status="pending",
                  attempts=0, late=late, created_at=now, updated_at=now)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    conn.execute(dialect_insert(deliveries).values(**values).on_conflict_do_nothing())
    return get_delivery(conn, channel, period)


def get_delivery(conn: Connection, channel: Channel, period: str) -> Delivery | None:
    row = conn.execute(select(deliveries).where(
        deliveries.c.user_id == channel.user_id, deliveries.c.channel_id == channel.id,
        deliveries.c.scope == channel.scope, deliveries.c.period == period)).first()
    return _delivery(row) if row is not None else None


def delivery_by_id(conn: Connection, delivery_id: int) -> Delivery | None:
    row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
    return _delivery(row) if row is not None else None


def claim_delivery(engine: Engine, delivery_id: int, worker: str, message_id: str, now: datetime,
                   stale_seconds: float) -> Delivery | None:
    """Take a row to send it: pending, failed (a retry), or `sending` by a worker silent for
    `stale_seconds` (it died before handing anything over). A row left in `committing` that long
    becomes `unconfirmed` and is not taken. None when it is not ours to send."""
    now = _naive(now)
    stale = now - timedelta(seconds=stale_seconds)
    with engine.begin() as conn:
        conn.execute(update(deliveries).where(
            deliveries.c.id == delivery_id, deliveries.c.status == "committing", deliveries.c.updated_at < stale,
        ).values(status="unconfirmed", updated_at=now, error=(
            "the worker stopped after handing the message over, before the server's answer: "
            "not sent again (at most once)")))
        claimed = conn.execute(update(deliveries).where(
            deliveries.c.id == delivery_id,
            or_(deliveries.c.status.in_(("pending", "failed")),
                and_(deliveries.c.status == "sending", deliveries.c.updated_at < stale)),
        ).values(status="sending", worker=worker, attempts=deliveries.c.attempts + 1, message_id=message_id,
                 updated_at=now)).rowcount
        return delivery_by_id(conn, delivery_id) if claimed == 1 else None


def mark_committing(engine: Engine, delivery_id: int, worker: str, now: datetime) -> bool:
    """Just before the last part goes out; False when this worker no longer holds the row."""
    with engine.begin() as conn:
        return conn.execute(update(deliveries).where(
            deliveries.c.id == delivery_id, deliveries.c.worker == worker, deliveries.c.status == "sending",
        ).values(status="committing", updated_at=_naive(now))).rowcount == 1


def finish_delivery(engine: Engine, delivery_id: int, worker: str, now: datetime, status: str,
                    error: str | None = None) -> bool:
    """sent, failed (the server refused: may be retried) or unconfirmed (the answer was lost)."""
    now = _naive(now)
    values: dict = dict(status=status, error=error[:4000] if error else None, updated_at=now)
    if status == "sent":
        values["sent_at"] = now
    with engine.begin() as conn:
        return conn.execute(update(deliveries).where(
            deliveries.c.id == delivery_id, deliveries.c.worker == worker,
            deliveries.c.status.in_(("sending", "committing")),
        ).values(**values)).rowcount == 1


def recent_deliveries(conn: Connection, user_id: int, limit: int = 20) -> list[Delivery]:
    return [_delivery(row) for row in conn.execute(
        select(deliveries).where(deliveries.c.user_id == user_id)
        .order_by(deliveries.c.updated_at.desc(), deliveries.c.id.desc()).limit(limit))]


def deliveries_of(conn: Connection, channel_id: int) -> list[Delivery]:
    return [_delivery(row) for row in conn.execute(
        select(deliveries).where(deliveries.c.channel_id == channel_id).order_by(deliveries.c.id))]


__all__ = [
    "CADENCES", "Channel", "DELIVERY_STATUSES", "Delivery", "KINDS", "add_channel", "channel_owners", "claim_delivery",
    "deliveries_of", "delivery_by_id", "disable_channel", "ensure_delivery", "finish_delivery", "get_channel",
    "get_delivery", "list_channels", "mark_committing", "radar_owner", "record_channel_error", "recent_deliveries",
    "remove_channel", "set_user_email", "update_channel", "user_email", "user_radars",
]
