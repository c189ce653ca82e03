"""Small state the fetchers keep between runs: HTTP validators for conditional GET and the
resumption point of bulk harvests. Also the store's conventions for values crossing its edge:
datetimes are stored naive in UTC (`utcnow`) and leave aware (`as_utc`); a row id typed by a
person is ASCII digits (`row_id`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Engine

from .schema import harvests, http_validators


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def as_utc(value: datetime) -> datetime:
    """A stored datetime (naive, UTC) as an aware one, so output says its zone."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


MAX_ROW_ID = 2**31 - 1  # ids are INTEGER columns: PostgreSQL refuses a larger one in a query ("out of range")


def row_id(text: str | int) -> int | None:
    """The row id a URL or a reader names, or None when `text` is not one: ASCII digits only
    (str.isdigit() also takes '²', which int() refuses), at most MAX_ROW_ID."""
    if not isinstance(text, int):
        text = text.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 10):
            return None
        text = int(text)
    return text if 0 <= text <= MAX_ROW_ID else None


class StoreValidatorCache:
    """ETag / Last-Modified per URL, kept in the database (implements sources.http.ValidatorCache)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def get_validators(self, url: str) -> tuple[str | None, str | None]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(http_validators.c.etag, http_validators.c.last_modified).where(http_validators.c.url == url)
            ).first()
        return (row[0], row[1]) if row else (None, None)

    def set_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        with self.engine.begin() as conn:
            values = {"etag": etag, "last_modified": last_modified, "updated_at": utcnow()}
            done = conn.execute(update(http_validators).where(http_validators.c.url == url).values(values))
            if not done.rowcount:
                conn.execute(insert(http_validators).values(url=url, **values))

    def forget(self, url: str) -> None:
        """Drop validators, e.g. when a 304 arrives for something we never stored."""
        with self.engine.begin() as conn:
            conn.execute(http_validators.delete().where(http_validators.c.url == url))


@dataclass(slots=True)
class Harvest:
    id: int
    source: str
    params: dict
    resumption_token: str | None
    records_done: int
    complete_list_size: int | None
    status: str


def params_key(params: dict) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))[:512]


def start_or_resume_harvest(conn: Connection, source: str, params: dict) -> Harvest:
    key = params_key(params)
    row = conn.execute(
        select(harvests).where(harvests.c.source == source, harvests.c.params_key == key)
    ).mappings().first()
    now = utcnow()
    if row is None:
        new_id = conn.execute(
            insert(harvests).values(
                source=source, params_key=key, params=params, resumption_token=None, records_done=0,
                status="running", started_at=now, updated_at=now,
            )
        ).inserted_primary_key[0]
        return Harvest(new_id, source, params, None, 0, None, "running")
    if row["status"] == "complete":
        # A finished harvest asked again starts over (new records may have appeared).
        conn.execute(
            update(harvests).where(harvests.c.id == row["id"]).values(
                resumption_token=None, records_done=0, status="running", error=None, started_at=now, updated_at=now
            )
        )
        return Harvest(row["id"], source, params, None, 0, None, "running")
    return Harvest(
        row["id"], source, params, row["resumption_token"], row["records_done"], row["complete_list_size"], row["status"]
    )


def save_harvest_progress(
    conn: Connection, harvest_id: int, *, token: str | None, records_done: int, complete_list_size: int | None
) -> None:
    conn.execute(
        update(harvests).where(harvests.c.id == harvest_id).values(
            resumption_token=token,
            records_done=records_done,
            complete_list_size=complete_list_size,
            status="running" if token else "complete",
            error=None,
            updated_at=utcnow(),
        )
    )


def mark_harvest_failed(conn: Connection, harvest_id: int, error: str, *, forget_token: bool = False) -> None:
    """A failed harvest keeps its token so the next run resumes, unless the token itself is dead."""
    values = {"status": "failed", "error": error[:2000], "updated_at": utcnow()}
    if forget_token:
        values.update(resumption_token=None, records_done=0)
    conn.execute(update(harvests).where(harvests.c.id == harvest_id).values(values))


def list_harvests(conn: Connection) -> list[dict]:
    return [dict(r) for r in conn.execute(select(harvests).order_by(harvests.c.updated_at.desc())).mappings()]
