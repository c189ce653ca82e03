"""The reading list: the papers each user saved (once per user, whichever radar or page it was
saved from), whether each is read, the user's note on it, and whether it went to Zotero; and the
user's Zotero library link. Reads and writes only; every function takes an open Connection and
the caller owns the transaction. Saving from a radar also records the radar's "save" feedback:
app/saved.py does both in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from sqlalchemy import Connection, delete, func, insert, select, update

from ..errors import AcademicHubError
from .schema import papers, radar_feedback, radars, saved_papers, zotero_links
from .state import utcnow

NOTE_MAX = 10_000  # characters; a note is a line or a paragraph, not a manuscript


class SavedError(AcademicHubError):
    """A reading-list change the store refuses: an unknown paper, a radar of someone else."""


@dataclass(slots=True)
class SavedPaper:
    paper_id: int
    saved_at: datetime
    read_at: datetime | None
    note: str | None
    radar_id: int | None
    radar_name: str | None = None
    zotero_key: str | None = None
    zotero_pushed_at: datetime | None = None
    new: bool = False  # save_paper: it was not on the list before

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


_COLUMNS = (
    saved_papers.c.paper_id, saved_papers.c.saved_at, saved_papers.c.read_at, saved_papers.c.note,
    saved_papers.c.radar_id, radars.c.name, saved_papers.c.zotero_key, saved_papers.c.zotero_pushed_at,
)


def _query():
    return select(*_COLUMNS).select_from(saved_papers.outerjoin(radars, radars.c.id == saved_papers.c.radar_id))


def get_saved(conn: Connection, user_id: int, paper_id: int) -> SavedPaper | None:
    row = conn.execute(_query().where(saved_papers.c.user_id == user_id, saved_papers.c.paper_id == paper_id)).first()
    return SavedPaper(*row) if row else None


def add_saved(conn: Connection, user_id: int, paper_id: int, *, radar_id: int | None = None) -> SavedPaper:
    """Put a paper on the user's list; a paper already there keeps its first save (and note)."""
    if conn.execute(select(papers.c.id).where(papers.c.id == paper_id)).scalar() is None:
        raise SavedError.translatable("no paper with id {ids}", ids=paper_id)
    found = get_saved(conn, user_id, paper_id)
    if found is not None:
        return found
    conn.execute(insert(saved_papers).values(user_id=user_id, paper_id=paper_id, radar_id=radar_id, saved_at=utcnow()))
    saved = get_saved(conn, user_id, paper_id)
    assert saved is not None
    saved.new = True
    return saved


def remove_saved(conn: Connection, user_id: int, paper_id: int) -> bool:
    """Take a paper off the list, and the "save" feedback the user's radars hold for it."""
    done = conn.execute(delete(saved_papers).where(saved_papers.c.user_id == user_id, saved_papers.c.paper_id == paper_id))
    own = select(radars.c.id).where(radars.c.user_id == user_id)
    conn.execute(
        delete(radar_feedback).where(
            radar_feedback.c.radar_id.in_(own), radar_feedback.c.paper_id == paper_id, radar_feedback.c.action == "save"
        )
    )
    return bool(done.rowcount)


def set_read(conn: Connection, user_id: int, paper_id: int, read: bool) -> bool:
    """Mark read (now) or unread; False when the paper is not on the list."""
    done = conn.execute(
        update(saved_papers)
        .where(saved_papers.c.user_id == user_id, saved_papers.c.paper_id == paper_id)
        .values(read_at=utcnow() if read else None)
    )
    return bool(done.rowcount)


def set_note(conn: Connection, user_id: int, paper_id: int, note: str | None) -> bool:
    """Replace the note (blank clears it); False when the paper is not on the list."""
    note = (note or "").replace("\x00", "").strip()
    if len(note) > NOTE_MAX:
        raise SavedError.translatable("a note is at most {limit} characters", limit=NOTE_MAX)
    done = conn.execute(
        update(saved_papers)
        .where(saved_papers.c.user_id == user_id, saved_papers.c.paper_id == paper_id)
        .values(note=note or None)
    )
    return bool(done.rowcount)


def list_saved(conn: Connection, user_id: int, *, read: bool | None = None, radar_id: int | None = None,
               limit: int | None = None, offset: int = 0) -> list[SavedPaper]:
    """The user's list, newest save first; `read` True/False keeps only read/unread papers."""
    query = _query().where(saved_papers.c.user_id == user_id)
    if read is True:
        query = query.where(saved_papers.c.read_at.is_not(None))
    elif read is False:
        query = query.where(saved_papers.c.read_at.is_(None))
    if radar_id is not None:
        query = query.where(saved_papers.c.radar_id == radar_id)
    query = query.order_by(saved_papers.c.saved_at.desc(), saved_papers.c.id.desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [SavedPaper(*row) for row in conn.execute(query)]


def saved_counts(conn: Connection, user_id: int) -> dict[str, int]:
    """{"all": n, "unread": n, "read": n}."""
    total, unread = conn.execute(
        select(func.count(), func.count().filter(saved_papers.c.read_at.is_(None))).where(saved_papers.c.user_id == user_id)
    ).one()
    return {"all": total, "unread": unread, "read": total - unread}


def saved_ids(conn: Connection, user_id: int | None, paper_ids: Iterable[int] | None = None) -> set[int]:
    """Which of these papers (all, with None) the user saved: the cards' ★ state."""
    if user_id is None:
        return set()
    query = select(saved_papers.c.paper_id).where(saved_papers.c.user_id == user_id)
    if paper_ids is not None:
        wanted = list(dict.fromkeys(int(p) for p in paper_ids))
        if not wanted:
            return set()
        query = query.where(saved_papers.c.paper_id.in_(wanted[:2000]))
    return set(conn.execute(query).scalars())


def liked_ids(conn: Connection, user_id: int, radar_id: int | None = None) -> list[int]:
    """Papers the user liked (♥) in one radar or any of theirs, first like first, each once."""
    query = (
        select(radar_feedback.c.paper_id, func.min(radar_feedback.c.id).label("first"))
        .join(radars, radars.c.id == radar_feedback.c.radar_id)
        .where(radars.c.user_id == user_id, radar_feedback.c.action == "like", radar_feedback.c.paper_id.is_not(None))
        .group_by(radar_feedback.c.paper_id)
        .order_by("first")
    )
    if radar_id is not None:
        query = query.where(radar_feedback.c.radar_id == radar_id)
    return [paper_id for paper_id, _first in conn.execute(query)]


def mark_pushed(conn: Connection, user_id: int, keys: dict[int, str | None]) -> None:
    """Record papers as pushed to Zotero (paper id -> item key, None when Zotero gave none)."""
    now = utcnow()
    for paper_id, key in keys.items():
        values = {"zotero_pushed_at": now}
        if key:
            values["zotero_key"] = key[:16]
        conn.execute(
            update(saved_papers).where(saved_papers.c.user_id == user_id, saved_papers.c.paper_id == paper_id).values(**values)
        )


# ----------------------------------------------------------------------------- the Zotero link


@dataclass(slots=True)
class ZoteroLink:
    library_type: str  # user | group
    library_id: str
    api_key: str
    updated_at: datetime

    @property
    def masked_key(self) -> str:
        """What a page may show of the key: its last four characters."""
        return "…" + self.api_key[-4:] if len(self.api_key) > 8 else "…"

    def __repr__(self) -> str:  # the key never reaches a log through a repr
        return f"ZoteroLink({self.library_type}/{self.library_id}, key {self.masked_key})"


def get_zotero_link(conn: Connection, user_id: int) -> ZoteroLink | None:
    row = conn.execute(
        select(zotero_links.c.library_type, zotero_links.c.library_id, zotero_links.c.api_key, zotero_links.c.updated_at)
        .where(zotero_links.c.user_id == user_id)
    ).first()
    return ZoteroLink(*row) if row else None


def set_zotero_link(conn: Connection, user_id: int, *, library_type: str, library_id: str, api_key: str | None) -> None:
    """Store the link; a blank key keeps the stored one (the form never shows it back)."""
    existing = get_zotero_link(conn, user_id)
    key = (api_key or "").strip() or (existing.api_key if existing else "")
    if not key:
        raise SavedError.translatable("a Zotero API key is needed")
    values = {"library_type": library_type, "library_id": library_id, "api_key": key, "updated_at": utcnow()}
    if existing is None:
        conn.execute(insert(zotero_links).values(user_id=user_id, **values))
    else:
        conn.execute(update(zotero_links).where(zotero_links.c.user_id == user_id).values(**values))


def remove_zotero_link(conn: Connection, user_id: int) -> bool:
    return bool(conn.execute(delete(zotero_links).where(zotero_links.c.user_id == user_id)).rowcount)


__all__ = [
    "NOTE_MAX", "SavedError", "SavedPaper", "ZoteroLink", "add_saved", "get_saved", "get_zotero_link", "liked_ids",
    "list_saved", "mark_pushed", "remove_saved", "remove_zotero_link", "saved_counts", "saved_ids", "set_note",
    "set_read", "set_zotero_link",
]
