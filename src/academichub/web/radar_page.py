"""Radars in the browser: the list (/radars), the editor with a live preview and what the radar
has learned (/radars/<name>), the feed ranked for a radar (/?radar=<name>), feedback buttons on
every card, and a small JSON API (/api/radars…).

Everything works without JavaScript: every change is a plain form POST answered by a redirect
(POST/redirect/GET) to a page that shows the new state; app.js only saves the reload. Forms are
refused unless they come from our own pages (sources_page.same_origin, and Sec-Fetch-Site).

"Another batch" with a radar never repeats a paper within a day (app/radar_feed.py, through the
hub): `?batch=N` shows batch N again (a reload, or the page a feedback button returns to) while a
link without `batch` asks for a new one. This module renders; the ranking and the SQL live below."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field, field_validator

from ..app.hub import Hub
from ..app.radar_feed import RadarBatch, topic_suggestions
from ..errors import AcademicHubError, NotFound
from ..rank.ranker import Reason
from ..rank.terms import learned_terms
from ..settings import Settings
from ..store.feed import FeedFilters, arxiv_categories_in_store, available_dates, category_facets, feed_notices, latest_announcement
from ..store.papers import paper_titles
from ..store.radars import (
    FEEDBACK_ACTIONS,
    RULE_KINDS,
    Radar,
    RadarError,
    add_feedback,
    add_rule,
    add_seeds,
    create_radar,
    delete_radar,
    find_paper,
    get_radar,
    list_radars,
    remove_rule,
    remove_seeds,
    reset_learning,
    set_interest,
)
from ..store.state import MAX_ROW_ID
from .app import DATE_PARAMETER, FeedLinks, FeedQuery, RadarFeedOut, ReasonOut, invalid, no_nul, parse_day
from . import briefing_page, i18n
from .identity import viewer, viewer_user_id
from .sources_page import same_origin

log = logging.getLogger(__name__)

MAX_UPLOAD = 20 * 1024 * 1024  # bytes; a large personal library is a few MB
MAX_REFS = 200  # pasted DOIs / arXiv ids per submit
MAX_SEEN = 100  # papers on show in one batch (MAX_SIZE)
MAX_TEXT = 2000  # an interest statement or a rule value
SEEDS_LISTED = 12  # seeds listed before the "and N more" fold
_RULE_SECTIONS = ("author", "mute_author", "keyword", "exclude", "category", "venue")
_LIBRARY_NAME = re.compile(r"[^\w.+-]+")


# ----------------------------------------------------------------------------- helpers


def from_our_pages(request: Request) -> bool:
    return same_origin(request)


def owned_radars(conn, request: Request) -> list:
    """The viewer's radars (none before the local user exists)."""
    user_id = viewer(request).user_id
    return [] if user_id is None else list_radars(conn, user_id)


def radar_path(radar: Radar | Any) -> str:
    """/radars/<name>, or /radars/<id> when the name cannot sit in a URL path segment (a "/")."""
    name = radar.name
    if "/" in name or "\\" in name or name in (".", ".."):
        return f"/radars/{radar.id}"
    return "/radars/" + quote(name, safe="")


def _local_url(url: str | None, default: str) -> str:
    """Where to go back to after a form: only a path on this site."""
    url = (url or "").strip()
    if (
        not url.startswith("/") or url.startswith(("//", "/\\")) or len(url) > 2000
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in url)
    ):
        return default
    return url


def _with_params(url: str, **params: Any) -> str:
    """The URL with these query parameters set (replacing any of the same name)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            kept += [(key, str(v)) for v in value]
        else:
            kept.append((key, str(value)))
    query = urlencode(kept)
    return parts.path + (f"?{query}" if query else "")


def _filter_params(filters: FeedFilters) -> list[tuple[str, str]]:
    params = [("author", a) for a in filters.authors]
    params += [("category", c) for c in filters.categories]
    params += [("date", d.isoformat()) for d in filters.dates]
    if filters.q:
        params.append(("q", filters.q))
    return params


def _reason_dicts(reasons: list[Reason]) -> list[dict]:
    return [{"kind": r.kind, "text": r.text} for r in reasons]


# ----------------------------------------------------------------------------- the learned panel


# ----------------------------------------------------------------------------- API models


class RadarSummaryOut(BaseModel):
    id: int
    name: str
    interest: str | None = None
    rules: int
    seeds: int
    feedback: int
    url: str


class RuleOut(BaseModel):
    value: str
    key: str
    orcid: str | None = None


class SeedOut(BaseModel):
    id: int
    title: str


class RadarOut(BaseModel):
    id: int
    name: str
    interest: str | None = None
    rules: dict[str, list[RuleOut]]
    seeds: list[SeedOut]
    feedback: dict[str, int] = Field(description="Feedback given, by action.")


class RankedOut(BaseModel):
    id: int
    title: str
    score: float
    reasons: list[ReasonOut]


class FeedbackIn(BaseModel):
    paper: str | int = Field(description="Store id, arXiv id or DOI.")
    action: str = Field(description="like | save | dismiss | less_author | less_topic")
    value: str | None = Field(default=None, max_length=MAX_TEXT, description="The author or topic for less_author / less_topic.")

    _no_nul = field_validator("paper", "action", "value")(no_nul)


class FeedbackOut(BaseModel):
    id: int
    radar: str
    paper: int
    action: str
    value: str | None = None


# ----------------------------------------------------------------------------- the views


class RadarViews:
    """What app.py's feed routes ask of this module (see register()): rendering over the hub's
    use cases (app/radar_feed.py). Built from a Hub, or from an engine and settings (a hub is then
    made for them)."""

    def __init__(self, hub: Hub | Any, settings: Settings | None = None, render: Callable | None = None):
        if not isinstance(hub, Hub):
            hub = Hub(settings or Settings(), engine=hub)
        self.hub = hub
        self.engine = hub.engine
        self.settings = hub.settings
        self.render = render

    @property
    def embedding(self) -> Callable:
        """The hub's (conn) -> (model, statement embedder); settable (a test puts its own)."""
        return self.hub.embedding

    @embedding.setter
    def embedding(self, value: Callable) -> None:
        self.hub.embedding = value

    # -- the switcher on the feed page --

    def switcher(self, conn, request: Request, filters: FeedFilters, current: Radar | None = None) -> dict:
        """Context for the feed page: the radar in use and links to each of the viewer's radars (filters kept)."""
        params = _filter_params(filters)
        entries = []
        for r in owned_radars(conn, request):
            query = urlencode([("radar", r.name), *params])
            entries.append({"name": r.name, "url": f"/?{query}", "current": current is not None and current.id == r.id})
        query = urlencode(params)
        return {
            "radar": current,
            "radar_switch": entries,
            "all_papers_url": f"/?{query}" if query else "/",
        }

    # -- one batch --

    def batch(self, radar_name: str, filters: FeedFilters, size: int, wanted: int | None, *,
              record: bool = False, seen: list[int] | None = None) -> RadarBatch:
        """The hub's batch (app/radar_feed.py), an unknown radar answered 404. A GET reads
        (`record` off: batch `wanted`, else the latest of today, else the next one unrecorded); a
        POST records a new batch, after the papers the reader `seen`."""
        try:
            if seen is not None:
                return self.hub.advance_batch(radar_name, filters, size, seen)
            return self.hub.next_batch(radar_name, filters, size, wanted, record=record)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc

    # -- the feed page with ?radar= --

    def feed_page(self, request: Request, params: FeedQuery, radar_name: str):
        wanted = params.batch if "batch" in request.query_params else None
        result = self.batch(radar_name, params.filters, params.size, wanted)
        links = RadarLinks(result.radar, params.filters, size=params.size if params.size_given else None)
        here = links.batch_url(result.batch) if result.batch is not None else links.next()
        links.shown_batch = result.batch
        kept = self.hub.per_state  # per store state (store/data_version.py StateMemo)
        day = params.filters.dates[0] if params.filters.dates else None
        with self.hub.reading() as conn:
            facets = kept.get(("facets", repr(params.filters)),
                              lambda: category_facets(conn, params.filters, 12)) if result.total else []
            days, latest, notices = kept.get(("sidebar", day), lambda: (available_dates(conn, 7), latest_announcement(conn),
                                                                        feed_notices(conn, day)))
            switch = self.switcher(conn, request, params.filters, result.radar)
        page = _RadarPage(result)
        return self.render(
            request,
            "feed.html",
            {
                "page": page,
                "filters": params.filters,
                "links": links,
                "store_empty": result.state == "empty_store",
                "past_end": False,
                "facets": facets,
                "days": days,
                "latest": latest,
                "notices": notices,
                "briefing_panel": briefing_page.panel_context(
                    request, self.hub.engine, self.settings,
                    day=params.filters.dates[0] if params.filters.dates else None, radar_id=result.radar.id,
                    radar_name=result.radar.name, shown_ids=[item["id"] for item in result.items],
                ),
                "radar_batch": result,
                "radar_url": radar_path(result.radar),
                "here": here,
                "noted": _noted(request),
                **switch,
            },
        )

    # -- /api/papers?radar= --

    def api_feed(self, request: Request, params: FeedQuery, radar_name: str, *, record: bool = False):
        wanted = params.batch if "batch" in request.query_params and not record else None
        result = self.batch(radar_name, params.filters, params.size, wanted, record=record)
        links = RadarLinks(result.radar, params.filters, size=params.size if params.size_given else None, path="/api/papers")
        f = params.filters
        items = [{**item, "score": round(item["score"], 4), "reasons": _reason_dicts(item["reasons"])}
                 for item in result.items]
        return RadarFeedOut.model_validate(
            {
                "items": items,
                "total": result.total,
                "batch": result.batch,
                "size": result.size,
                "next_batch": links.next() if result.remaining else None,  # POST it for a new batch
                "filters": {"authors": f.authors, "categories": f.categories, "dates": f.dates, "q": f.q},
                "radar": result.radar.name,
                "remaining": result.remaining,
                "all_shown": result.state == "all_shown",
                "window": result.window,
            }
        )


def paper_feedback_context(conn, request: Request, paper_id: int, back: str | None) -> dict:
    """What paper.html needs for its back link and feedback: `back_url` (the feed, radar or
    briefing page it was reached from, a local path; else the feed), `here` (this page, keeping
    `from`), and either `radar` (the radar of that feed: its buttons) or `radar_choices` (the
    reader's radars, for the picker)."""
    back_url = _local_url(back, "/")
    here = f"/papers/{paper_id}" + (f"?{urlencode([('from', back_url)])}" if back_url != "/" else "")
    parts = urlsplit(back_url)
    named = dict(parse_qsl(parts.query)).get("radar") if parts.path == "/" else None
    radar = get_radar(conn, named) if named else None  # the viewer's (the request acts as its viewer)
    choices = [] if radar else [r.name for r in owned_radars(conn, request)]
    return {
        "back_url": back_url,
        "here": here,
        "radar": radar,
        "radar_url": radar_path(radar) if radar else None,
        "radar_choices": choices,
        "noted": _noted(request),
    }


def _noted(request: Request) -> str | None:
    action = request.query_params.get("noted")
    return action if action in FEEDBACK_ACTIONS or action == "saved" else None


@dataclass
class _RadarPage:
    """What feed.html reads from a page, for a radar batch."""

    result: RadarBatch
    items: list[dict] = field(init=False)

    def __post_init__(self):
        self.items = self.result.items

    @property
    def total(self) -> int:
        return self.result.total

    @property
    def batch(self) -> int:
        return self.result.batch or 0

    @property
    def batches(self) -> int:
        return 0

    @property
    def next_batch(self) -> int | None:
        return None


class RadarLinks(FeedLinks):
    """FeedLinks that keep the radar: chips, cards and "another batch" stay in the radar's feed.
    A link without `batch` asks for a new batch; batch_url(n) shows batch n again."""

    def __init__(self, radar: Radar, filters: FeedFilters, *, size: int | None, path: str = "/", here: str | None = None):
        super().__init__(path, filters, seed=0, size=size, here=here)
        self.radar = radar
        self.shown_batch: int | None = None  # the batch on show, set by the feed page

    def _url(self, filters: FeedFilters, *, batch: int | None = None, seed: int | None = None, path: str | None = None) -> str:
        params = [("radar", self.radar.name), *_filter_params(filters)]
        if batch is not None:
            params.append(("batch", str(batch)))
        if self.size is not None:
            params.append(("size", str(self.size)))
        return f"{path or self.path}?{urlencode(params)}"

    def add(self, kind: str, value: Any) -> str:
        return self._url(self._changed(kind, value, add=True))

    def remove(self, kind: str, value: Any = None) -> str:
        return self._url(self._changed(kind, value, add=False))

    def clear(self) -> str:
        return self._url(FeedFilters())

    def restart(self) -> str:
        return self._url(self.filters)

    def next(self) -> str:
        return self._url(self.filters)

    def batch_url(self, batch: int) -> str:
        return self._url(self.filters, batch=batch)

    def advance_url(self) -> str:
        """Where "Another batch" posts (filters and size kept in its query)."""
        return self._url(self.filters, path=radar_path(self.radar) + "/batches")

    def current(self) -> str:
        """The batch on show (`shown_batch`, set by the page), so a paper page leads back to it."""
        if self.here is not None:
            return self.here
        return self.batch_url(self.shown_batch) if self.shown_batch is not None else self._url(self.filters)

    def api(self) -> str:
        return self._url(self.filters, path="/api/papers")


# ----------------------------------------------------------------------------- registration


def register(app: FastAPI, hub: Hub, render: Callable, feed_query: Callable) -> RadarViews:
    views = RadarViews(hub, render=render)
    views_feed_query = feed_query
    settings = hub.settings

    def refuse_cross_site(request: Request) -> None:
        if not from_our_pages(request):
            raise HTTPException(403, "cross-site form")

    def load(conn, name: str) -> Radar:
        radar = get_radar(conn, name)
        if radar is None:
            raise HTTPException(404, f"no radar {name!r}")
        return radar

    def venue_names() -> list[str]:
        from ..venues import load_venues

        try:
            return sorted({v.name for v in load_venues(settings.data_dir).values()})
        except AcademicHubError as exc:  # a broken user catalog must not take the editor down
            log.warning("venue catalog: %s", exc)
            return []

    # -- the list --

    def radars_page(request: Request, *, error: Any = None, form: dict | None = None, status_code: int = 200):
        with hub.reading() as conn:
            rows = owned_radars(conn, request)
        entries = [{"summary": r, "url": radar_path(r), "feed_url": "/?" + urlencode({"radar": r.name})} for r in rows]
        return render(
            request, "radars.html", {"radars": entries, "error": error, "form": form or {}}, status_code=status_code
        )

    @app.get("/radars", include_in_schema=False)
    def radars_list(request: Request):
        return radars_page(request)

    @app.post("/radars", include_in_schema=False)
    def radars_create(
        request: Request,
        name: Annotated[str, Form(max_length=500)] = "",
        interest: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    ):
        refuse_cross_site(request)
        owner = viewer_user_id(request)
        try:
            with hub.writing() as conn:
                radar_id = create_radar(conn, user_id=owner, name=name, interest=interest)
                radar = get_radar(conn, radar_id)
        except RadarError as exc:
            return radars_page(request, error=exc, form={"name": name, "interest": interest}, status_code=400)
        return RedirectResponse(_with_params(radar_path(radar), done="created"), status_code=303)

    # -- the editor --

    def flash_of(request: Request) -> dict | None:
        q = request.query_params
        done = q.get("done")
        if done not in ("created", "saved", "rule", "removed", "seeded", "unseeded", "reset", "feedback", "cleared"):
            return None

        def number(key: str) -> int:
            value = q.get(key, "0")
            return int(value) if value.isascii() and value.isdigit() and len(value) < 9 else 0  # not '²'

        return {
            "kind": done,
            "added": number("added"),
            "papers": number("papers"),
            "skipped": number("skipped"),
            "unstored": number("unstored"),
            "missing": q.getlist("missing")[:10],
            "file": (q.get("file") or "")[:120],
            "action": _noted(request),
        }

    def preview_context(conn, radar: Radar) -> dict:
        return hub.preview(conn, radar)

    def editor_context(conn, radar: Radar, preview: list[dict]) -> dict:
        liked = [f.paper_id for f in radar.feedback if f.action in ("like", "save") and f.paper_id]
        dismissed = [f.paper_id for f in radar.feedback if f.action == "dismiss" and f.paper_id]
        titles = paper_titles(conn, [*radar.seeds, *liked, *dismissed])
        seeds = [{"id": pid, "title": titles.get(pid, f"#{pid}")} for pid in radar.seeds]
        counts = Counter(f.action for f in radar.feedback)
        # which seeds and liked papers explain the preview: the "similar to" reasons of its cards
        by_title = {titles.get(pid): ("seed", pid) for pid in radar.seeds}
        by_title.update({titles.get(pid): ("liked", pid) for pid in liked if titles.get(pid) not in by_title})
        explained: Counter = Counter()
        for item in preview:
            for reason in item["reasons"]:
                if reason.kind in ("seed", "liked") and reason.text in by_title:
                    explained[by_title[reason.text]] += 1
        influential = [
            {"kind": kind, "id": pid, "title": titles.get(pid, f"#{pid}"), "cards": n}
            for (kind, pid), n in explained.most_common(5)
        ]
        return {
            "seeds": seeds,
            "seeds_listed": SEEDS_LISTED,
            "feedback_counts": {a: counts.get(a, 0) for a in FEEDBACK_ACTIONS},
            "liked_papers": [{"id": pid, "title": titles.get(pid, f"#{pid}"), "action": a}
                             for a in ("save", "like") for pid in dict.fromkeys(
                                 f.paper_id for f in radar.feedback if f.action == a and f.paper_id)][:10],
            "less_authors": sorted({f.value for f in radar.feedback if f.action == "less_author" and f.value}),
            "less_topics": sorted({f.value for f in radar.feedback if f.action == "less_topic" and f.value}),
            "terms": learned_terms(conn, [*radar.seeds, *liked]),
            "influential": influential,
            "categories": arxiv_categories_in_store(conn),
            "venues": venue_names(),
            "rule_sections": _RULE_SECTIONS,
        }

    def radar_page(request: Request, name: str, *, error: Any = None, form: dict | None = None,
                   status_code: int = 200, confirm: str | None = None, fragment: bool = False):
        with hub.reading() as conn:
            radar = load(conn, name)
            context: dict[str, Any] = {
                "radar": radar,
                "radar_url": radar_path(radar),
                "feed_url": "/?" + urlencode({"radar": radar.name}),
                "here": radar_path(radar),
                "error": error,
                "form": form or {},
                "flash": flash_of(request),
                "confirm": confirm,
                "fragment": fragment,
                "noted": _noted(request),
                "links": RadarLinks(radar, FeedFilters(), size=None, here=radar_path(radar)),
            }
            if confirm is None:
                context.update(preview_context(conn, radar))
                if not fragment:
                    context.update(editor_context(conn, radar, context["preview"]))
        return render(request, "radar.html", context, status_code=status_code)

    @app.get("/radars/{name}", include_in_schema=False)
    def radar_editor(request: Request, name: str):
        return radar_page(request, name)

    @app.get("/radars/{name}/preview", include_in_schema=False)
    def radar_preview(request: Request, name: str):
        """Just the preview panel (for app.js to refresh it in place)."""
        return radar_page(request, name, fragment=True)

    def change(request: Request, name: str, work: Callable[[Any, Radar], dict], *, form: dict | None = None):
        """Run one change in a transaction; 303 back to the editor, or the editor with the error."""
        refuse_cross_site(request)
        try:
            with hub.writing() as conn:
                radar = load(conn, name)
                flash = work(conn, radar)
        except AcademicHubError as exc:
            return radar_page(request, name, error=exc, form=form, status_code=400)
        return RedirectResponse(_with_params(radar_path(radar), **flash) + "#editor", status_code=303)

    @app.post("/radars/{name}/interest", include_in_schema=False)
    def radar_interest(request: Request, name: str, interest: Annotated[str, Form(max_length=MAX_TEXT)] = ""):
        def work(conn, radar):
            set_interest(conn, radar.id, interest)
            return {"done": "saved"}

        return change(request, name, work, form={"interest": interest})

    @app.post("/radars/{name}/rules", include_in_schema=False)
    def radar_rule_add(
        request: Request,
        name: str,
        kind: Annotated[str, Form(max_length=32)],
        value: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    ):
        def work(conn, radar):
            if kind not in RULE_KINDS:
                raise RadarError.translatable("unknown rule kind {kind!r}: use one of {kinds}", kind=kind, kinds=", ".join(RULE_KINDS))
            add_rule(conn, radar.id, kind, value)
            return {"done": "rule"}

        return change(request, name, work, form={"kind": kind, "value": value})

    @app.post("/radars/{name}/rules/remove", include_in_schema=False)
    def radar_rule_remove(
        request: Request,
        name: str,
        kind: Annotated[str, Form(max_length=32)],
        value: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    ):
        def work(conn, radar):
            if kind not in RULE_KINDS:
                raise RadarError.translatable("unknown rule kind {kind!r}: use one of {kinds}", kind=kind, kinds=", ".join(RULE_KINDS))
            remove_rule(conn, radar.id, kind, value)
            return {"done": "removed"}

        return change(request, name, work)

    @app.post("/radars/{name}/seeds", include_in_schema=False)
    def radar_seeds_paste(request: Request, name: str, refs: Annotated[str, Form(max_length=100_000)] = ""):
        """DOIs and arXiv ids (or store ids), one per line, of papers already in the store."""

        def work(conn, radar):
            wanted = [r.strip().rstrip(".,;") for r in re.split(r"[\s,;]+", refs) if r.strip().rstrip(".,;")]
            if not wanted:
                raise RadarError.translatable("paste DOIs or arXiv ids, one per line")
            if len(wanted) > MAX_REFS:
                raise RadarError.translatable("at most {limit} identifiers at a time", limit=MAX_REFS)
            found, missing = [], []
            for ref in dict.fromkeys(wanted):
                pid = find_paper(conn, ref) if len(ref) <= 300 else None
                (found.append(pid) if pid is not None else missing.append(ref[:100]))
            added = add_seeds(conn, radar.id, found, origin="pasted") if found else 0
            return {"done": "seeded", "added": added, "papers": len(found), "missing": missing[:10]}

        return change(request, name, work, form={"refs": refs})

    @app.post("/radars/{name}/seeds/upload", include_in_schema=False)
    def radar_seeds_upload(request: Request, name: str, library: Annotated[UploadFile | None, File()] = None):
        """A BibTeX, RIS or CSL-JSON file: its papers are imported and every one becomes a seed."""
        refuse_cross_site(request)
        with hub.reading() as conn:
            radar = load(conn, name)  # before the import: a wrong radar must not import the file
        if library is None or not library.filename:
            return radar_page(request, name, error=i18n.said("choose a library file (BibTeX, RIS or CSL-JSON)"), status_code=400)
        file_name = _LIBRARY_NAME.sub("_", Path(library.filename.replace("\\", "/")).name).strip("._")[:100] or "library.bib"
        folder = Path(tempfile.mkdtemp(prefix="academichub-upload-"))
        try:
            path = folder / file_name
            with open(path, "wb") as out:
                copied = 0
                while chunk := library.file.read(1024 * 1024):
                    copied += len(chunk)
                    if copied > MAX_UPLOAD:
                        raise RadarError.translatable("{file}: larger than {mb} MB", file=file_name, mb=MAX_UPLOAD // (1024 * 1024))
                    out.write(chunk)
            _summary, imported = hub.import_library(path)
            ids, added = hub.seed_radar(radar.id, imported, origin=file_name)
        except AcademicHubError as exc:
            message = str(exc).replace(f"{folder}/", "").replace(str(folder), "")
            return radar_page(request, name, error=exc if exc.template else message, status_code=400)
        except Exception:  # noqa: BLE001 - a strange file must never be a 500
            log.exception("importing an uploaded library failed")
            return radar_page(request, name, error=i18n.said("{file}: could not be read as a reference library", file=file_name), status_code=400)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if not imported.papers:
            return radar_page(request, name, error=i18n.said("{file}: no usable entries ({skipped} skipped)", file=file_name, skipped=len(imported.skipped)),
                              status_code=400)
        hub.embed_later()  # the editor answers now; the seeds' vectors follow
        flash = {
            "done": "seeded", "added": added, "papers": len(ids), "skipped": len(imported.skipped),
            "unstored": len(imported.papers) - len(ids), "file": file_name,
        }
        return RedirectResponse(_with_params(radar_path(radar), **flash) + "#editor", status_code=303)

    @app.post("/radars/{name}/seeds/remove", include_in_schema=False)
    def radar_seed_remove(request: Request, name: str, paper: Annotated[int, Form(ge=0, le=MAX_ROW_ID)]):
        def work(conn, radar):
            remove_seeds(conn, radar.id, [paper])
            return {"done": "unseeded"}

        return change(request, name, work)

    @app.post("/radars/{name}/feedback", include_in_schema=False)
    def radar_feedback_form(
        request: Request,
        name: str,
        paper: Annotated[int, Form(ge=0, le=MAX_ROW_ID)],
        action: Annotated[str, Form(max_length=32)],
        value: Annotated[str, Form(max_length=MAX_TEXT)] = "",
        topic: Annotated[str, Form(max_length=MAX_TEXT)] = "",
        next: Annotated[str, Form(max_length=2000)] = "",  # noqa: A002 - the form field's name
    ):
        refuse_cross_site(request)
        with hub.reading() as conn:
            radar = load(conn, name)
        back = _local_url(next, radar_path(radar))
        try:
            with hub.writing() as conn:
                add_feedback(conn, radar.id, paper, action, (value or topic).strip() or None)
        except AcademicHubError as exc:
            return radar_page(request, name, error=exc, status_code=400)
        # back to the card (focused there by app.js; a dismissed card is gone, the feed shows the rest)
        return RedirectResponse(_with_params(back, noted=action.replace("-", "_")) + f"#paper-{paper}", status_code=303)

    @app.post("/feedback", include_in_schema=False)
    def feedback_for_picked_radar(
        request: Request,
        radar: Annotated[str, Form(max_length=200)],
        paper: Annotated[int, Form(ge=0, le=MAX_ROW_ID)],
        action: Annotated[str, Form(max_length=32)],
        next: Annotated[str, Form(max_length=2000)] = "",  # noqa: A002 - the form field's name
    ):
        """The paper page's picker: like/save/dismiss for the radar chosen in its menu."""
        return radar_feedback_form(request, radar, paper, action, next=next)

    @app.post("/radars/{name}/batches", include_in_schema=False)
    def radar_another_batch(request: Request, name: str, params: FeedQuery = Depends(views_feed_query),  # noqa: B008
                            seen: Annotated[list[int], Form()] = []):  # noqa: B006 - FastAPI copies defaults
        """"Another batch": the papers on show are recorded as shown (a page showing a batch not
        yet recorded says which), a new batch is recorded, and the browser is sent to it."""
        refuse_cross_site(request)
        with hub.reading() as conn:
            radar = load(conn, name)
        seen = [p for p in seen if 0 < p <= MAX_ROW_ID][:MAX_SEEN]
        result = views.batch(str(radar.id), params.filters, params.size, None, seen=seen)
        links = RadarLinks(radar, params.filters, size=params.size if params.size_given else None)
        target = links.batch_url(result.batch) if result.batch is not None else links.next()
        return RedirectResponse(target, status_code=303)

    @app.post("/radars/{name}/shown/clear", include_in_schema=False)
    def radar_shown_clear(request: Request, name: str, next: Annotated[str, Form(max_length=2000)] = ""):  # noqa: A002
        """Start today's batches over: forget what the radar showed today."""
        refuse_cross_site(request)
        with hub.reading() as conn:
            radar = load(conn, name)
        hub.forget_shown(radar.id)
        return RedirectResponse(_local_url(next, "/?" + urlencode({"radar": radar.name})), status_code=303)

    # -- reset and delete, each with a confirmation page --

    @app.get("/radars/{name}/reset", include_in_schema=False)
    def radar_reset_confirm(request: Request, name: str):
        return radar_page(request, name, confirm="reset")

    @app.post("/radars/{name}/reset", include_in_schema=False)
    def radar_reset(request: Request, name: str):
        def work(conn, radar):
            removed = reset_learning(conn, radar.id)
            return {"done": "reset", "added": removed}

        return change(request, name, work)

    @app.get("/radars/{name}/delete", include_in_schema=False)
    def radar_delete_confirm(request: Request, name: str):
        return radar_page(request, name, confirm="delete")

    @app.post("/radars/{name}/delete", include_in_schema=False)
    def radar_delete(request: Request, name: str):
        refuse_cross_site(request)
        with hub.writing() as conn:
            radar = load(conn, name)
            delete_radar(conn, radar.id)
        return RedirectResponse("/radars", status_code=303)

    # -- JSON API --

    @app.get("/api/radars", response_model=list[RadarSummaryOut], tags=["radars"], summary="Every radar")
    def api_radars(request: Request):
        with hub.reading() as conn:
            rows = owned_radars(conn, request)
        return [
            {"id": r.id, "name": r.name, "interest": r.interest, "rules": r.rules, "seeds": r.seeds,
             "feedback": r.feedback, "url": radar_path(r)}
            for r in rows
        ]

    @app.get("/api/radars/{name}", response_model=RadarOut, tags=["radars"], summary="One radar: rules, seeds, feedback",
             responses={404: {"description": "No such radar"}})
    def api_radar(name: str):
        with hub.reading() as conn:
            radar = load(conn, name)
            titles = paper_titles(conn, radar.seeds)
        counts = Counter(f.action for f in radar.feedback)
        return {
            "id": radar.id,
            "name": radar.name,
            "interest": radar.interest,
            "rules": {kind: [{"value": r.value, "key": r.value_key, "orcid": r.orcid} for r in rules]
                      for kind, rules in radar.rules.items()},
            "seeds": [{"id": pid, "title": titles.get(pid, "")} for pid in radar.seeds],
            "feedback": {a: counts.get(a, 0) for a in FEEDBACK_ACTIONS},
        }

    @app.get("/api/radars/{name}/rank", response_model=list[RankedOut], tags=["radars"],
             summary="Stored papers ranked for a radar, each with why",
             responses={404: {"description": "No such radar"}})
    def api_radar_rank(
        name: str,
        limit: Annotated[int, Query(ge=1, le=500, description="How many papers.")] = 20,
        since: Annotated[str | None, Query(max_length=10, description="Only papers announced or published since this day (YYYY-MM-DD); default every stored paper.",
                                           json_schema_extra=DATE_PARAMETER)] = None,
    ):
        day = parse_day(since, "since") if since and since.strip() else None
        try:
            ranked = hub.rank(name, since=day, limit=limit)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        return [{**r.to_dict(), "reasons": _reason_dicts(r.reasons)} for r in ranked]

    @app.post("/api/radars/{name}/feedback", response_model=FeedbackOut, tags=["radars"],
              summary="Tell a radar what you think of a paper",
              responses={400: {"description": "The body is not JSON"}, 404: {"description": "No such radar or paper"},
                         422: {"description": "Unknown action"}})
    def api_radar_feedback(request: Request, name: str, body: FeedbackIn):
        refuse_cross_site(request)
        with hub.writing() as conn:
            radar = load(conn, name)
            paper_id = find_paper(conn, str(body.paper)) if len(str(body.paper)) <= 300 else None
            if paper_id is None:
                raise HTTPException(404, f"no paper {str(body.paper)[:100]!r} in the store")
            action = body.action.replace("-", "_")
            if action not in FEEDBACK_ACTIONS:
                raise invalid("action", i18n.said("unknown action {action!r}: use one of {actions}", action=body.action[:40],
                                                 actions=", ".join(FEEDBACK_ACTIONS)),
                              body.action[:40], location="body")
            try:
                feedback_id = add_feedback(conn, radar.id, paper_id, action, body.value)
            except RadarError as exc:
                raise invalid("value", exc, body.value, location="body") from exc
        return {"id": feedback_id, "radar": radar.name, "paper": paper_id, "action": action, "value": body.value}

    return views


__all__ = ["RadarBatch", "RadarLinks", "RadarViews", "learned_terms", "radar_path", "register", "topic_suggestions"]
