"""A radar's briefing for a day or a week: which papers (the radar's ranking through the hub's
ranker and candidate cache, restricted to the period), then brief.make_briefing, which stores it
and reuses a stored one whose papers have not changed. The web page, the CLI and the daily job
all come here, so they brief the same papers."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from ..brief.briefing import Briefing, make_briefing, periods
from ..brief.inputs import radar_paper_ids
from ..errors import NotFound
from ..store.feed import latest_announcement
from ..store.radars import radar_id_of

if TYPE_CHECKING:  # pragma: no cover
    from .hub import Hub


def resolve_radar(hub: "Hub", radar: str | int | None, *, missing_ok: bool = False) -> int | None:
    """A radar's id from its name or id; None for none or "all". An unknown radar is NotFound, or
    None (every paper) with `missing_ok`."""
    if radar is None or (isinstance(radar, str) and (not radar.strip() or radar.strip().lower() == "all")):
        return None
    with hub.engine.connect() as conn:
        found = radar_id_of(conn, radar.strip() if isinstance(radar, str) else radar)
    if found is None and not missing_ok:
        raise NotFound(f"no radar {str(radar).strip()!r}")
    return found


def latest_day(hub: "Hub") -> date | None:
    """The newest announced day in the store (the default day of a briefing)."""
    with hub.engine.connect() as conn:
        return latest_announcement(conn)


def paper_choice(hub: "Hub", radar_id: int | None, day: date, *, week: bool = False) -> tuple[list[int], list[int]]:
    """(the period's papers, the previous period's papers) a briefing is about, best first."""
    period, previous = periods(day, week)
    limit = max(1, hub.settings.briefing_papers)
    model = hub.settings.embedding_model
    with hub.engine.connect() as conn:
        ids = radar_paper_ids(conn, radar_id, period[0], period[1], limit, model, ranker=hub.ranker, cache=hub.candidates)
        previous_ids = radar_paper_ids(conn, radar_id, previous[0], previous[1], limit, model,
                                       ranker=hub.ranker, cache=hub.candidates)
    return ids, previous_ids


def brief(hub: "Hub", radar_id: int | None, day: date, *, week: bool = False, lang: str,
          regenerate: bool = False) -> Briefing:
    """The stored briefing of the radar (None: every paper) for the day or the week ending on it;
    written when missing (or with `regenerate`), reused when its papers have not changed."""
    period, _previous = periods(day, week)
    ids, previous_ids = paper_choice(hub, radar_id, day, week=week)
    return make_briefing(hub.engine, radar_id=radar_id, paper_ids=ids, period=period, lang=lang,
                         settings=hub.settings, regenerate=regenerate, previous_paper_ids=previous_ids or None)


__all__ = ["brief", "latest_day", "paper_choice", "resolve_radar"]
