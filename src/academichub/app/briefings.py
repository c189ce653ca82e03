"""A radar's briefing for a day or a week: which papers, then brief.make_briefing, which stores it
and reuses a stored one whose papers have not changed. A radar's briefing reads its top-ranked
papers of the period (the radar's ranking through the hub's ranker and candidate cache); the
all-papers briefing reads a sample that covers the period (brief/sample.py: every cluster of the
day or week, its most central papers), kept per hub until the period gains papers. The web
page, the CLI and the daily job all come here, so they brief the same papers."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from datetime import date
from typing import TYPE_CHECKING

from ..brief.briefing import Briefing, make_briefing, periods
from ..brief.inputs import period_fingerprint, period_sample, radar_paper_ids
from ..errors import NotFound
from ..store.feed import latest_announcement
from ..store.radars import radar_id_of

if TYPE_CHECKING:  # pragma: no cover
    from .hub import Hub

SAMPLES_KEPT = 8  # periods whose sample a hub keeps (the day and week, and the periods before them)
_samples: "weakref.WeakKeyDictionary[Hub, OrderedDict]" = weakref.WeakKeyDictionary()
_samples_lock = threading.Lock()


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


def covering_sample(hub: "Hub", conn, start: date, end: date, limit: int, model: str | None) -> list[int]:
    """The all-papers sample of a period (brief.inputs.period_sample), cached per hub and keyed on
    the period's paper count and highest id: clustering a week takes a second, a page view none."""
    key = (start, end, limit, model, period_fingerprint(conn, start, end))
    with _samples_lock:
        kept = _samples.setdefault(hub, OrderedDict())
        if key in kept:
            kept.move_to_end(key)
            return list(kept[key])
    ids = period_sample(conn, start, end, limit, model)
    with _samples_lock:
        kept[key] = list(ids)
        while len(kept) > SAMPLES_KEPT:
            kept.popitem(last=False)
    return ids


def paper_choice(hub: "Hub", radar_id: int | None, day: date, *, week: bool = False) -> tuple[list[int], list[int]]:
    """(the period's papers, the previous period's papers) a briefing is about: a radar's best
    first; every paper's (radar None) the covering sample, largest cluster first."""
    period, previous = periods(day, week)
    limit = max(1, hub.settings.briefing_papers)
    model = hub.settings.embedding_model
    with hub.engine.connect() as conn:
        if radar_id is None:
            return (covering_sample(hub, conn, period[0], period[1], limit, model),
                    covering_sample(hub, conn, previous[0], previous[1], limit, model))
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


__all__ = ["brief", "covering_sample", "latest_day", "paper_choice", "readable_briefing", "resolve_radar"]


def readable_briefing(hub: "Hub", radar_id: int | None, day: date | None, *, lang: str):
    """(briefing, day) for a reader that must not write or call an LLM (an assistant, a feed
    reader): the stored briefing of the radar and day, else an extractive one of the same papers
    a written briefing would have, made and not stored. (None, None) when the store has no day."""
    from ..brief.briefing import latest_briefing, unstored_extractive

    day = day or latest_day(hub)
    if day is None:
        return None, None
    stored = latest_briefing(hub.engine, radar_id=radar_id, period=(day, day), lang=lang)
    if stored is not None:
        return stored, day
    ids, _previous = paper_choice(hub, radar_id, day)
    return unstored_extractive(hub.engine, radar_id=radar_id, paper_ids=ids, period=(day, day), lang=lang,
                               model=hub.settings.embedding_model), day
