"""Saved papers, the use cases: each user's reading list (save, unsave, read/unread, notes),
their liked papers, exports of either or of a radar's batch (BibTeX, RIS, CSL-JSON), and pushes
of the list to the user's Zotero library.

Saving from a radar records the radar's "save" feedback too (the ranker learns from it) in the
same transaction; unsaving removes both. Front ends (web, CLI, MCP) call these with the viewer's
user id; nothing here knows who is asking otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import AcademicHubError, NotFound
from ..export import formats
from ..export.records import ExportRecord, load_records
from ..store import saved as store
from ..store.radars import add_feedback, get_radar, shown_batches
from ..store.saved import SavedError, SavedPaper, ZoteroLink

if TYPE_CHECKING:
    from .hub import Hub

LIST_NAMES = ("saved", "liked")  # what `export` takes besides a radar; "radar:NAME" names a radar always
RADAR_PREFIX = "radar:"


@dataclass(slots=True)
class SavedEntry:
    saved: SavedPaper
    paper: dict  # the card's dict (store/feed.py)


def _owned_radar(conn, user_id: int, radar: int | str):
    found = get_radar(conn, radar, user_id)
    if found is None or found.user_id != user_id:
        raise NotFound.translatable("no radar {name!r}", name=str(radar))
    return found


def save_paper(hub: "Hub", user_id: int, paper_id: int, *, radar_id: int | None = None) -> SavedPaper:
    """Put a paper on the user's reading list; from a radar (`radar_id`), the radar's "save"
    feedback is recorded as well, so the radar shows more like it. Saving twice is one entry."""
    with hub.writing() as conn:
        if radar_id is not None:
            radar = _owned_radar(conn, user_id, radar_id)
            before = store.get_saved(conn, user_id, paper_id)
            add_feedback(conn, radar.id, paper_id, "save")  # puts it on the list too (store/radars.py)
            saved = store.get_saved(conn, user_id, paper_id)
            assert saved is not None
            saved.new = before is None
            return saved
        return store.add_saved(conn, user_id, paper_id, radar_id=radar_id)


def unsave_paper(hub: "Hub", user_id: int, paper_id: int) -> bool:
    """Take a paper off the list and the "save" feedback of the user's radars; False: it was not there."""
    with hub.writing() as conn:
        return store.remove_saved(conn, user_id, paper_id)


def mark_read(hub: "Hub", user_id: int, paper_id: int, read: bool = True) -> bool:
    with hub.writing() as conn:
        return store.set_read(conn, user_id, paper_id, read)


def set_note(hub: "Hub", user_id: int, paper_id: int, note: str | None) -> bool:
    with hub.writing() as conn:
        return store.set_note(conn, user_id, paper_id, note)


def list_saved(hub: "Hub", user_id: int | None, *, read: bool | None = None, limit: int | None = None,
               offset: int = 0) -> list[SavedEntry]:
    """The reading list, newest save first, each with its card dict; `read` filters."""
    if user_id is None:
        return []
    from ..store.feed import get_papers

    with hub.reading() as conn:
        rows = store.list_saved(conn, user_id, read=read, limit=limit, offset=offset)
        papers = get_papers(conn, [r.paper_id for r in rows])
    return [SavedEntry(r, papers[r.paper_id]) for r in rows if r.paper_id in papers]


def saved_counts(hub: "Hub", user_id: int | None) -> dict[str, int]:
    if user_id is None:
        return {"all": 0, "unread": 0, "read": 0}
    with hub.reading() as conn:
        return store.saved_counts(conn, user_id)


def saved_ids(hub: "Hub", user_id: int | None, paper_ids=None) -> set[int]:
    """Which of these papers the user saved (the ★ on cards)."""
    if user_id is None:
        return set()
    with hub.reading() as conn:
        return store.saved_ids(conn, user_id, paper_ids)


def liked_papers(hub: "Hub", user_id: int | None, *, radar: int | str | None = None) -> list[dict]:
    """The papers the user liked (♥) in one radar or in any of theirs, first like first."""
    if user_id is None:
        return []
    from ..store.feed import get_papers

    with hub.reading() as conn:
        radar_id = _owned_radar(conn, user_id, radar).id if radar is not None else None
        ids = store.liked_ids(conn, user_id, radar_id)
        papers = get_papers(conn, ids)
    return [papers[i] for i in ids if i in papers]


# ----------------------------------------------------------------------------- export


class ExportError(AcademicHubError):
    """An export the app refuses: an unknown format or list."""


@dataclass(slots=True)
class Export:
    text: str
    format: str
    count: int
    filename: str


def radar_batch_ids(hub: "Hub", user_id: int, radar: int | str) -> list[int]:
    """A radar's current batch: today's latest batch shown, else the top of its ranking now."""
    with hub.reading() as conn:
        found = _owned_radar(conn, user_id, radar)
        shown = shown_batches(conn, found.id, hub.today())
    if shown:
        latest = max(shown.values())
        return [pid for pid, batch in sorted(shown.items()) if batch == latest]
    return [r.id for r in hub.rank(str(found.id), limit=max(1, hub.settings.batch_size))]


def export_records(hub: "Hub", user_id: int | None, what: str, *, radar: int | str | None = None) -> tuple[list[ExportRecord], str]:
    """The records of "saved", "liked" (of `radar`, or all the user's) or a radar's batch
    ("radar:NAME", or a bare name that is not "saved"/"liked"), with a file-name stem."""
    what = (what or "").strip()
    if user_id is None:
        return [], what or "export"
    if what == "saved":
        with hub.reading() as conn:
            ids = [r.paper_id for r in store.list_saved(conn, user_id)]
        stem = "saved"
    elif what == "liked":
        ids = [p["id"] for p in liked_papers(hub, user_id, radar=radar)]
        stem = "liked"
    else:
        name = what[len(RADAR_PREFIX):] if what.startswith(RADAR_PREFIX) else what
        if not name:
            # nothing by that name (a blank radar name names no radar): not found, as any other name
            raise NotFound.translatable("export what? saved, liked, or a radar's name")
        ids = radar_batch_ids(hub, user_id, name)
        stem = "radar-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)[:60]
    with hub.reading() as conn:
        return load_records(conn, ids), stem


def export(hub: "Hub", user_id: int | None, what: str, fmt: str, *, radar: int | str | None = None) -> Export:
    fmt = (fmt or "").strip().lower().replace("-", "")
    if fmt not in formats.FORMATS:
        raise ExportError.translatable("unknown export format {format!r}: use bibtex, ris or csljson", format=fmt)
    records, stem = export_records(hub, user_id, what, radar=radar)
    return Export(formats.render(records, fmt), fmt, len(records), f"{stem}.{formats.SUFFIXES[fmt]}")


def citations(hub: "Hub", paper_id: int) -> dict | None:
    """A paper's BibTeX, RIS, CSL-JSON and a plain line, from its full stored record."""
    with hub.reading() as conn:
        records = load_records(conn, [paper_id])
    if not records:
        return None
    record = records[0]
    return {"bibtex": formats.to_bibtex([record], full=False).strip(), "ris": formats.to_ris([record]).strip(),
            "csljson": formats.to_csljson([record]).strip(), "plain": formats.plain_citation(record)}


# ----------------------------------------------------------------------------- Zotero


def zotero_link(hub: "Hub", user_id: int | None) -> ZoteroLink | None:
    if user_id is None:
        return None
    with hub.reading() as conn:
        return store.get_zotero_link(conn, user_id)


def link_zotero(hub: "Hub", user_id: int, *, library_type: str, library_id: str, api_key: str | None) -> None:
    """Store where to push: a user or group library by its numeric id, and an API key allowed to write."""
    from ..export.zotero import check_link

    library_type, library_id, api_key = check_link(library_type, library_id, api_key)
    with hub.writing() as conn:
        store.set_zotero_link(conn, user_id, library_type=library_type, library_id=library_id, api_key=api_key)


def unlink_zotero(hub: "Hub", user_id: int) -> bool:
    with hub.writing() as conn:
        return store.remove_zotero_link(conn, user_id)


def push_to_zotero(hub: "Hub", user_id: int, *, all_papers: bool = False):
    """Push the saved papers not pushed yet (every one with `all_papers`) to the user's Zotero
    library, 50 per request, each request with its own write token, so a retried push is never a
    duplicate. Returns export.zotero.PushReport; pushed papers are marked in the same step."""
    from ..export.zotero import ZoteroClient, ZoteroError

    with hub.reading() as conn:
        link = store.get_zotero_link(conn, user_id)
        if link is None:
            raise ZoteroError.translatable("link a Zotero library first (settings: Zotero)")
        rows = store.list_saved(conn, user_id)
        wanted = [r.paper_id for r in reversed(rows) if all_papers or r.zotero_pushed_at is None]
        records = load_records(conn, wanted)
    client = ZoteroClient(hub.settings, link)

    def done(keys: dict[int, str | None]) -> None:
        with hub.writing() as conn:
            store.mark_pushed(conn, user_id, keys)

    try:
        return client.push(records, on_batch=done, salt=f"user{user_id}")
    finally:
        client.close()


__all__ = [
    "Export", "ExportError", "LIST_NAMES", "RADAR_PREFIX", "SavedEntry", "SavedError", "citations", "export",
    "export_records", "link_zotero", "liked_papers", "list_saved", "mark_read", "push_to_zotero", "radar_batch_ids",
    "save_paper", "saved_counts", "saved_ids", "set_note", "unlink_zotero", "unsave_paper", "zotero_link",
]
