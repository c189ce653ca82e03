"""The reading list in the browser (/saved): every saved paper across days, read/unread with a
filter, a note per paper (a plain form: works without JavaScript), remove, and downloads as
BibTeX, RIS or CSL-JSON; saving from any card or paper page (POST /saved); a radar's batch as a
download (/radars/<name>/export); the Zotero link (/settings/zotero) and "Push to Zotero"; and the
JSON API under /api/saved, /api/export and /api/papers/<id>/citation.

Every change is a form POST answered by a redirect (POST/redirect/GET), refused unless it comes
from our own pages; the use cases are app/saved.py's, the user is web/identity.py's viewer."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import FastAPI, Form, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from ..app import saved
from ..app.hub import Hub
from ..errors import AcademicHubError, NotFound
from ..export.formats import FORMATS, MEDIA_TYPES
from ..store.state import MAX_ROW_ID, as_utc
from .app import invalid
from .identity import viewer, viewer_user_id
from .sources_page import same_origin

log = logging.getLogger(__name__)

SHOWS = ("all", "unread", "read")
MAX_NOTE = 10_000
_FLASHES = ("saved", "removed", "read", "unread", "noted", "zotero", "pushed", "unlinked")


# a paper's store id in a path: an INTEGER column's range (PostgreSQL refuses a larger one in a query)
PaperId = Annotated[int, Path(ge=0, le=MAX_ROW_ID, description="Store id of the paper.")]


class SavedOut(BaseModel):
    paper: int = Field(description="Store id of the paper.")
    title: str
    saved_at: str = Field(description="When it was saved (UTC, ISO 8601).")
    read: bool
    read_at: str | None = None
    note: str | None = None
    radar: str | None = Field(default=None, description="The radar it was saved from, if any.")
    url: str = Field(description="The paper's page.")


class SaveIn(BaseModel):
    paper: int | str = Field(description="Store id, arXiv id or DOI of a stored paper.")
    radar: str | None = Field(default=None, max_length=200, description="Save from this radar: its feedback learns too.")


class SavedPatch(BaseModel):
    read: bool | None = Field(default=None, description="Mark read (true) or unread (false).")
    note: str | None = Field(default=None, max_length=MAX_NOTE, description="Replace the note (empty clears it).")


class CitationOut(BaseModel):
    bibtex: str
    ris: str
    csljson: str
    plain: str


def _local(url: str | None, default: str) -> str:
    url = (url or "").strip()
    if not url.startswith("/") or url.startswith(("//", "/\\")) or len(url) > 2000 or any(ord(c) < 32 for c in url):
        return default
    return url


def _with(url: str, **params) -> str:
    from .radar_page import _with_params

    return _with_params(url, **params)


def _saved_out(entry: saved.SavedEntry) -> dict:
    s = entry.saved
    return {"paper": s.paper_id, "title": entry.paper["title"], "saved_at": as_utc(s.saved_at).isoformat(),
            "read": s.read_at is not None, "read_at": as_utc(s.read_at).isoformat() if s.read_at else None, "note": s.note,
            "radar": s.radar_name, "url": f"/papers/{s.paper_id}"}


def _download(result: saved.Export) -> Response:
    return Response(result.text, media_type=f"{MEDIA_TYPES[result.format]}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{result.filename}"',
                             "Cache-Control": "no-store"})


def register(app: FastAPI, hub: Hub, render) -> None:
    def refuse_cross_site(request: Request) -> None:
        if not same_origin(request):
            raise HTTPException(403, "cross-site form refused")

    def find(ref: int | str) -> int:
        from ..store.radars import find_paper

        text = str(ref)
        with hub.reading() as conn:
            paper_id = find_paper(conn, text) if len(text) <= 300 else None
        if paper_id is None:
            raise HTTPException(404, f"no paper {text[:100]!r} in the store")
        return paper_id

    # -- the page --

    @app.get("/saved", include_in_schema=False)
    def saved_page(request: Request, show: Annotated[str, Query(max_length=10)] = "all"):
        show = show if show in SHOWS else "all"
        user_id = viewer(request).user_id
        entries = saved.list_saved(hub, user_id, read={"all": None, "unread": False, "read": True}[show])
        flash = request.query_params.get("done")
        return render(request, "saved.html", {
            "entries": entries, "show": show, "counts": saved.saved_counts(hub, user_id),
            "flash": flash if flash in _FLASHES else None, "formats": FORMATS,
            "zotero": saved.zotero_link(hub, user_id),
            "error": None, "here": "/saved" + (f"?show={show}" if show != "all" else ""),
        })

    @app.post("/saved", include_in_schema=False)
    def save_form(request: Request, paper: Annotated[int, Form(ge=0, le=MAX_ROW_ID)],
                  next: Annotated[str, Form(max_length=2000)] = ""):  # noqa: A002 - the form field's name
        refuse_cross_site(request)
        try:
            saved.save_paper(hub, viewer_user_id(request), paper)
        except AcademicHubError as exc:
            raise HTTPException(404, str(exc)) from exc
        return RedirectResponse(_with(_local(next, "/saved"), noted="saved") + f"#paper-{paper}", status_code=303)

    @app.post("/saved/{paper}/remove", include_in_schema=False)
    def unsave_form(request: Request, paper: int, next: Annotated[str, Form(max_length=2000)] = ""):  # noqa: A002
        refuse_cross_site(request)
        saved.unsave_paper(hub, viewer_user_id(request), paper)
        return RedirectResponse(_with(_local(next, "/saved"), done="removed"), status_code=303)

    @app.post("/saved/{paper}/read", include_in_schema=False)
    def read_form(request: Request, paper: int, read: Annotated[str, Form(max_length=5)] = "1",
                  next: Annotated[str, Form(max_length=2000)] = ""):  # noqa: A002
        refuse_cross_site(request)
        is_read = read not in ("0", "false", "")
        saved.mark_read(hub, viewer_user_id(request), paper, is_read)
        return RedirectResponse(_with(_local(next, "/saved"), done="read" if is_read else "unread") + f"#saved-{paper}",
                                status_code=303)

    @app.post("/saved/{paper}/note", include_in_schema=False)
    def note_form(request: Request, paper: int, note: Annotated[str, Form(max_length=MAX_NOTE)] = "",
                  next: Annotated[str, Form(max_length=2000)] = ""):  # noqa: A002
        refuse_cross_site(request)
        saved.set_note(hub, viewer_user_id(request), paper, note)
        return RedirectResponse(_with(_local(next, "/saved"), done="noted") + f"#saved-{paper}", status_code=303)

    def export_download(request: Request, what: str, format: str, radar: str | None):  # noqa: A002
        try:
            return _download(saved.export(hub, viewer(request).user_id, what, format, radar=radar))
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except AcademicHubError as exc:  # the one other refusal: an unknown format (the published 422 shape)
            raise invalid("format", exc, format) from exc

    @app.get("/saved/export", include_in_schema=False)
    def saved_download(request: Request, format: Annotated[str, Query(max_length=10)] = "bibtex",  # noqa: A002
                       what: Annotated[Literal["saved", "liked"], Query()] = "saved",
                       radar: Annotated[str | None, Query(max_length=200)] = None):
        return export_download(request, what, format, radar)

    @app.get("/radars/{name}/export", include_in_schema=False)
    def radar_download(request: Request, name: str, format: Annotated[str, Query(max_length=10)] = "bibtex",  # noqa: A002
                       what: Annotated[Literal["batch", "liked"], Query()] = "batch"):
        user_id = viewer(request).user_id
        try:
            if user_id is None:
                raise NotFound.translatable("no radar {name!r}", name=name)
            if what == "liked":
                return _download(saved.export(hub, user_id, "liked", format, radar=name))
            return _download(saved.export(hub, user_id, saved.RADAR_PREFIX + name, format))
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except AcademicHubError as exc:  # an unknown format
            raise invalid("format", exc, format) from exc

    # -- Zotero --

    def zotero_page(request: Request, *, error=None, status_code: int = 200):
        user_id = viewer(request).user_id
        flash = request.query_params.get("done")
        return render(request, "zotero_settings.html", {
            "zotero": saved.zotero_link(hub, user_id), "error": error,
            "flash": flash if flash in _FLASHES else None,
        }, status_code=status_code)

    @app.get("/settings/zotero", include_in_schema=False)
    def zotero_settings(request: Request):
        return zotero_page(request)

    @app.post("/settings/zotero", include_in_schema=False)
    def zotero_link_form(request: Request, library_type: Annotated[str, Form(max_length=8)] = "user",
                         library_id: Annotated[str, Form(max_length=40)] = "",
                         api_key: Annotated[str, Form(max_length=100)] = ""):
        refuse_cross_site(request)
        try:
            saved.link_zotero(hub, viewer_user_id(request), library_type=library_type, library_id=library_id,
                              api_key=api_key)
        except AcademicHubError as exc:
            return zotero_page(request, error=exc, status_code=400)
        return RedirectResponse("/settings/zotero?done=zotero", status_code=303)

    @app.post("/settings/zotero/remove", include_in_schema=False)
    def zotero_unlink_form(request: Request):
        refuse_cross_site(request)
        saved.unlink_zotero(hub, viewer_user_id(request))
        return RedirectResponse("/settings/zotero?done=unlinked", status_code=303)

    @app.post("/saved/zotero", include_in_schema=False)
    def zotero_push_form(request: Request):
        refuse_cross_site(request)
        user_id = viewer_user_id(request)
        try:
            report = saved.push_to_zotero(hub, user_id)
        except AcademicHubError as exc:
            log.warning("Zotero push of user %s failed: %s", user_id, exc)
            return render(request, "saved.html", {
                "entries": saved.list_saved(hub, user_id), "show": "all", "counts": saved.saved_counts(hub, user_id),
                "flash": None, "formats": FORMATS, "zotero": saved.zotero_link(hub, user_id), "error": exc,
                "here": "/saved",
            }, status_code=502)
        return RedirectResponse(_with("/saved", done="pushed", pushed=report.pushed + report.unchanged + report.already,
                                      failed=len(report.failed)), status_code=303)

    # -- JSON API --

    @app.get("/api/saved", response_model=list[SavedOut], tags=["saved"], summary="The reading list")
    def api_saved(request: Request, read: Annotated[bool | None, Query(description="Only read (true) or unread (false) papers.")] = None):
        return [_saved_out(e) for e in saved.list_saved(hub, viewer(request).user_id, read=read)]

    @app.post("/api/saved", response_model=SavedOut, tags=["saved"], summary="Save a paper (from a radar: it learns too)",
              responses={404: {"description": "No such paper or radar"}})
    def api_save(request: Request, body: SaveIn):
        refuse_cross_site(request)
        paper_id = find(body.paper)
        user_id = viewer_user_id(request)
        radar_id = None
        try:
            if body.radar:
                from ..store.radars import radar_id_of

                with hub.reading() as conn:
                    radar_id = radar_id_of(conn, body.radar, user_id)
                if radar_id is None:
                    raise NotFound.translatable("no radar {name!r}", name=body.radar)
            saved.save_paper(hub, user_id, paper_id, radar_id=radar_id)
        except AcademicHubError as exc:
            raise HTTPException(404, str(exc)) from exc
        entry = next(e for e in saved.list_saved(hub, user_id) if e.saved.paper_id == paper_id)
        return _saved_out(entry)

    @app.patch("/api/saved/{paper}", response_model=SavedOut, tags=["saved"], summary="Mark read/unread, set the note",
               responses={404: {"description": "Not on the reading list"}})
    def api_saved_patch(request: Request, paper: PaperId, body: SavedPatch):
        refuse_cross_site(request)
        user_id = viewer_user_id(request)
        found = body.read is None or saved.mark_read(hub, user_id, paper, body.read)
        if body.note is not None:
            found = saved.set_note(hub, user_id, paper, body.note) and found
        entry = next((e for e in saved.list_saved(hub, user_id) if e.saved.paper_id == paper), None)
        if not found or entry is None:
            raise HTTPException(404, "not on the reading list")
        return _saved_out(entry)

    @app.delete("/api/saved/{paper}", status_code=204, tags=["saved"], summary="Unsave (the radars' save feedback too)",
                responses={404: {"description": "Not on the reading list"}})
    def api_unsave(request: Request, paper: PaperId):
        refuse_cross_site(request)
        if not saved.unsave_paper(hub, viewer_user_id(request), paper):
            raise HTTPException(404, "not on the reading list")
        return Response(status_code=204)

    @app.get("/api/export/{what}", tags=["saved"], summary="Saved or liked papers, or a radar's batch, as a library file",
             responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}, 404: {"description": "No such radar"}})
    def api_export(request: Request, what: str,
                   format: Annotated[Literal["bibtex", "ris", "csljson"], Query(description="The file format.")] = "bibtex",  # noqa: A002
                   radar: Annotated[str | None, Query(max_length=200, description="With liked: one radar's likes.")] = None):
        """`saved`, `liked`, or `radar:NAME` (a radar's current batch; a bare name works unless it is saved or liked)."""
        return export_download(request, what, format, radar)

    @app.get("/api/citation/{paper}", response_model=CitationOut, tags=["papers"],
             summary="A paper's citation: BibTeX, RIS, CSL-JSON and one plain line",
             responses={404: {"description": "No such paper"}})
    def api_citation(paper: str):
        found = saved.citations(hub, find(paper))
        if found is None:
            raise HTTPException(404, "paper not found")
        return found


__all__ = ["register"]
