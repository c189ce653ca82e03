"""The briefing page (`GET /briefing`), its JSON (`GET /api/briefing`) and the panel the feed page
shows on top (`panel_context` + `_briefing_panel.html`).

The page names its radar (or "all papers") and period, shows the briefing and, under it, the
cards of its papers numbered as the briefing numbers them, so every citation [n] jumps to its
card (`#paper-<id>`) on the same page. The panel on the feed only reads a stored briefing (it
never writes one, so the feed stays fast) of the feed's radar; its citations lead to a card
shown on the same page, else to the paper's page, and its buttons to that radar's briefing.
Theme titles mark their English parts lang="en" on a Chinese page. Parameters: `date`
(YYYY-MM-DD, default the latest announced day), `week` (the 7 days ending on `date`), `radar`
(name or id; default every paper of the period), `lang` (zh/en, default as the UI),
`regenerate` is not offered over GET."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Callable
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Query, Request

from ..app.hub import Hub
from ..brief.briefing import Briefing, latest_briefing, to_json
from ..brief.theme_titles import title_parts
from ..errors import NotFound
from ..settings import Settings
from . import i18n
from .app import invalid, parse_day


def _day(value: str | None) -> date | None:
    return parse_day(value) if value is not None and value.strip() else None


def language_of(request: Request, settings: Settings) -> str:
    return i18n.negotiate(
        query=request.query_params.get("lang"),
        cookie=request.cookies.get(i18n.COOKIE),
        accept_language=request.headers.get("accept-language"),
        default=settings.default_language,
    )


def briefing_url(day: date | None, *, week: bool = False, radar: str | None = None, fragment: str = "") -> str:
    params = []
    if day is not None:
        params.append(("date", day.isoformat()))
    if week:
        params.append(("week", "1"))
    if radar:
        params.append(("radar", radar))
    query = urlencode(params)
    return f"/briefing{'?' + query if query else ''}{'#' + fragment if fragment else ''}"


def panel_context(request: Request, engine, settings: Settings, *, day: date | None = None,
                  radar_id: int | None = None, radar_name: str | None = None, shown_ids=()) -> dict:
    """What `_briefing_panel.html` needs (pass it as `briefing_panel`): the stored briefing of the
    day (of the radar `radar_id`, named `radar_name`; None: every paper) in the UI language, if
    one exists, and where its links go: the radar's own briefing page, and for a citation the
    card on this page (`shown_ids`: the papers whose cards the page shows) or else the paper's
    page. Never generates one."""
    from ..store.feed import latest_announcement

    lang = language_of(request, settings)
    with engine.connect() as conn:
        day = day or latest_announcement(conn)
    if day is None:
        return {"briefing": None, "url": None, "day": None, "cite_url": None, "radar": radar_name,
                "title_parts": title_parts}
    briefing = latest_briefing(engine, radar_id=radar_id, period=(day, day), lang=lang)
    shown = {int(i) for i in shown_ids}

    def cite_url(n: int) -> str | None:
        paper = briefing.paper(n) if briefing else None
        if paper is None:
            return None
        return f"#paper-{paper['paper_id']}" if int(paper["paper_id"]) in shown else f"/papers/{paper['paper_id']}"

    return {"briefing": briefing, "url": briefing_url(day, radar=radar_name), "day": day, "cite_url": cite_url,
            "radar": radar_name, "title_parts": title_parts}


# The period a briefing route reads or writes (GET and POST /api/briefing take the same).
DayParam = Annotated[str | None, Query(alias="date", max_length=10, description="Day YYYY-MM-DD; default the latest announced day.",
                                       json_schema_extra={"format": "date"})]
WeekParam = Annotated[bool, Query(description="The 7 days ending on `date`.")]
RadarParam = Annotated[str | None, Query(max_length=128, description="Radar name or id; default every paper of the period.")]
LangParam = Annotated[str | None, Query(max_length=8, description="zh or en (zh-CN, en_US…); default as the UI.",
                                        json_schema_extra={"pattern": i18n.LANGUAGE_PATTERN})]


def register(app: FastAPI, hub: Hub, render: Callable) -> None:
    settings = hub.settings

    def build(request: Request, date_: str | None, week: bool, radar: str | None, lang: str | None, *,
              write: bool = False) -> tuple[Briefing | None, dict]:
        if lang is not None and i18n.normalize_language(lang) is None:
            raise invalid("lang", i18n.said("lang must be zh or en"), lang)
        language = i18n.normalize_language(lang) or language_of(request, settings)
        try:
            briefing, radar_id, day = hub.briefing(radar, _day(date_), week=week, lang=language, write=write)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        period = briefing.period if briefing is not None else None
        return briefing, {"day": day, "period": period, "radar_id": radar_id, "lang": language}

    @app.post("/briefing", include_in_schema=False)
    def briefing_write(
        request: Request,
        date_: Annotated[str | None, Query(alias="date", max_length=10)] = None,
        week: Annotated[bool, Query()] = False,
        radar: Annotated[str | None, Query(max_length=128)] = None,
        lang: Annotated[str | None, Query(max_length=8)] = None,
    ):
        """"Write the briefing" (a form on the page when none is stored): written, then shown."""
        from fastapi.responses import RedirectResponse

        _briefing, info = build(request, date_, week, radar, lang, write=True)
        query = [(k, v) for k, v in (("date", date_), ("week", "1" if week else None), ("radar", radar), ("lang", lang)) if v]
        return RedirectResponse("/briefing" + ("?" + urlencode(query) if query else ""), status_code=303)

    @app.get("/briefing", include_in_schema=False)
    def briefing_page(
        request: Request,
        date_: Annotated[str | None, Query(alias="date", max_length=10)] = None,
        week: Annotated[bool, Query()] = False,
        radar: Annotated[str | None, Query(max_length=128)] = None,
        lang: Annotated[str | None, Query(max_length=8)] = None,
    ):
        """The stored briefing (reading writes nothing: a missing one offers "Write the briefing")."""
        from ..store.feed import FeedFilters, get_paper, new_seed
        from ..store.radars import get_radar
        from .app import FeedLinks

        briefing, info = build(request, date_, week, radar, lang)
        items = []
        radar_name = None
        with hub.reading() as conn:
            if info["radar_id"] is not None:
                found = get_radar(conn, info["radar_id"])
                radar_name = found.name if found is not None else None
            if briefing is not None:
                for paper in briefing.papers:
                    item = get_paper(conn, paper["paper_id"])
                    if item is not None:
                        items.append((paper["n"], item))

        shown = {item["id"] for _, item in items}

        def cite_url(n: int) -> str | None:
            paper = briefing.paper(n) if briefing else None
            if paper is None:
                return None
            return f"#paper-{paper['paper_id']}" if paper["paper_id"] in shown else f"/papers/{paper['paper_id']}"

        day = info["day"]
        radar = radar_name  # the links below name the radar as it is named (the query may give its id)
        here = briefing_url(day, week=week, radar=radar) if day else "/briefing"
        links = FeedLinks("/", FeedFilters(), seed=new_seed(), size=None, here=here)
        return render(request, "briefing.html", {
            "briefing": briefing,
            "radar_name": radar_name,
            "feed_url": f"/?{urlencode([('radar', radar_name)])}" if radar_name else "/",
            "title_parts": title_parts,
            "items": items,
            "links": links,
            "cite_url": cite_url,
            "period": info["period"],
            "week": week,
            "day_url": briefing_url(day, radar=radar) if day else None,
            "week_url": briefing_url(day, week=True, radar=radar) if day else None,
            "api_url": (briefing_url(day, week=week, radar=radar).replace("/briefing", "/api/briefing", 1)
                        if day else "/api/briefing"),
            "write_url": str(request.url.path) + ("?" + request.url.query if request.url.query else ""),
            "has_day": day is not None,
        })

    @app.get("/api/briefing", tags=["briefing"], summary="The briefing of a day or week",
             responses={404: {"description": "No such radar, or the store has no papers yet"}})
    def api_briefing(
        request: Request,
        date_: DayParam = None,
        week: WeekParam = False,
        radar: RadarParam = None,
        lang: LangParam = None,
    ):
        """The stored briefing of the period: themes, cross-domain links, picks and changes of its
        top papers; every sentence's `cite` lists paper numbers `n` of `papers`. Reading writes
        nothing: 404 until one is written (POST, or the daily job)."""
        briefing, info = build(request, date_, week, radar, lang)
        if briefing is None:
            raise HTTPException(404, "no briefing written for this period yet (POST /api/briefing writes it)"
                                if info["day"] is not None else "the store has no papers yet")
        return to_json(briefing)

    @app.post("/api/briefing", tags=["briefing"], summary="Write (or reuse) the briefing of a day or week",
              responses={404: {"description": "No such radar, or the store has no papers yet"}})
    def api_briefing_write(
        request: Request,
        date_: DayParam = None,
        week: WeekParam = False,
        radar: RadarParam = None,
        lang: LangParam = None,
    ):
        """The briefing of the period, written when missing (this may call the LLM), reused when
        its papers have not changed."""
        briefing, info = build(request, date_, week, radar, lang, write=True)
        if briefing is None:
            raise HTTPException(404, "the store has no papers yet")
        return to_json(briefing)
