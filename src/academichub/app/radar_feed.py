"""The feed ranked for a radar, batch by batch: the next batch, the same batch again, the editor's
preview, and how many papers are left. The web page and the JSON API render what this returns.

"Another batch" never repeats a paper within a day: a batch leaves out what the radar showed
today (store.radars.shown_batches) and is then recorded (mark_shown) under its number, so batch N
can be shown again (a reload, the page a feedback button returns to) while asking for no number
gives a new one. How many are left is set arithmetic over the cached candidate set (the papers
matching the filters, less the shown, the seeds and what the ranker never returns), not a
second ranking."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from ..errors import NotFound
from ..rank.embedding_jobs import VectorGap, vector_gap
from ..rank.ranker import Reason
from ..rank.service import candidate_set, profile_of, rank_radar
from ..rank.terms import stop_words
from ..store.feed import FeedFilters, get_paper, latest_announcement, matching_ids, window_ids
from ..store.papers import count_papers
from ..store.radars import Radar, get_radar, shown_batches

if TYPE_CHECKING:  # pragma: no cover
    from .hub import Hub

log = logging.getLogger(__name__)

PREVIEW_SIZE = 20
MIN_SIMILARITY = 0.05  # a "similar to seed/liked paper" reason below this cosine is not shown
_TOPIC_WORD = re.compile(r"[^\W_][\w'-]*", re.UNICODE)


@dataclass
class RadarBatch:
    """One batch of the feed ranked for a radar."""

    radar: Radar
    filters: FeedFilters
    size: int
    batch: int | None  # the batch number shown; None when nothing was left to show
    items: list[dict]  # cards (store.feed dicts) with "reasons", "score" and "topics"
    remaining: int  # ranked papers not shown today besides these
    total: int  # papers the radar ranks under these filters (the day's, the seeds left out)
    window: date | None
    state: str  # ok | all_shown | no_match | empty_store
    vectors: VectorGap | None = None  # papers without a vector: the ranking then reads text only


def topic_suggestions(title: str, limit: int = 3) -> list[str]:
    """Phrases of a title a reader may want less of: runs of words between stop words, at most
    three words each (the last three: the head of an English noun phrase), longest first."""
    stop = stop_words()
    runs: list[list[str]] = [[]]
    for word in _TOPIC_WORD.findall(title or ""):
        if word.casefold() in stop or word.isdigit():
            runs.append([])
        else:
            runs[-1].append(word)
    phrases: list[str] = []
    for run in runs:
        if not run:
            continue
        phrase = " ".join(run[-3:])
        if len(phrase) >= 4 and phrase.casefold() not in {p.casefold() for p in phrases}:
            phrases.append(phrase)
    phrases.sort(key=lambda p: (-len(p.split()), -len(p)))
    return phrases[:limit]


def shown_reasons(reasons: list[Reason]) -> list[Reason]:
    """The reasons worth saying. The ranker names the nearest seed of every paper however far it
    is; "similar to seed X" at a cosine of 0.02 would not be true, so such a reason is left out."""
    return [r for r in reasons if r.kind not in ("seed", "liked") or r.weight >= MIN_SIMILARITY]


def day_window(conn, filters: FeedFilters) -> date | None:
    """The radar feed ranks the day's papers: those of the latest announcement (and anything
    published since), unless a date chip names the day."""
    if filters.dates:
        return None
    return latest_announcement(conn)


def _cards(conn, ranked) -> list[dict]:
    items = []
    for r in ranked:
        item = get_paper(conn, r.id)
        if item is None:
            continue
        item["reasons"] = shown_reasons(r.reasons)
        item["score"] = r.score
        item["topics"] = topic_suggestions(item["title"])
        items.append(item)
    return items


def left_to_show(hub: "Hub", conn, radar: Radar, exclude: set[int], model: str | None, embed) -> int:
    """How many papers the radar would still rank with these left out: the stored candidates the
    ranker may return for this profile (Ranker.eligible: no scoring), less the seeds and `exclude`."""
    cs = candidate_set(conn, since=None, model=model, ranker=hub.ranker, cache=hub.candidates)
    profile = profile_of(conn, radar, model=model, embed=embed)
    keep = hub.ranker.eligible(profile, cs)
    eligible = set(cs.ids[keep].tolist()) if len(cs) else set()
    return len(eligible - set(radar.seeds) - exclude)


def next_batch(hub: "Hub", radar_name: str, filters: FeedFilters, size: int, wanted: int | None,
               *, today: date | None = None, record: bool = True) -> RadarBatch:
    """Batch `wanted` again when it was shown today, else a new batch of papers not shown today,
    recorded as shown. Without `record` (a GET: reading changes nothing) and no `wanted`: the
    latest batch shown today again, else the batch a recording call would make, not recorded.

    Every stored paper is ranked (one cached candidate set, so scores do not depend on the
    filters); papers outside the day or the filters are left out of the result."""
    today = today or hub.today()
    filters = filters.normalized()
    engine = hub.engine
    with engine.connect() as conn:
        radar = get_radar(conn, radar_name)
        if radar is None:
            raise NotFound(f"no radar {radar_name!r}")
        since = day_window(conn, filters)
        stored = window_ids(conn, None)
        matching = matching_ids(conn, filters, window_ids(conn, since) if since else stored)
        outside = stored - matching
        pool = matching - set(radar.seeds)
        shown = shown_batches(conn, radar.id, today)
        model, embed = hub.embedding(conn)
        recorded = set(shown.values())
        if not record and wanted is None and recorded:
            wanted = max(recorded)
        rank = dict(model=model, embed=embed, ranker=hub.ranker, cache=hub.candidates)
        if wanted is not None and wanted in recorded:
            members = {p for p, b in shown.items() if b == wanted}
            ranked = rank_radar(conn, radar, exclude=stored - (members & matching), **rank)
            number, new = wanted, False
        else:
            ranked = rank_radar(conn, radar, limit=size, diversify=True, exclude=outside | set(shown), **rank)
            # not recorded (a read): no number yet, "Another batch" then records what was on show
            number, new = (max(recorded, default=-1) + 1 if ranked and record else None), True
        picked = [r.id for r in ranked]
        remaining = left_to_show(hub, conn, radar, outside | set(shown) | set(picked), model, embed)
        items = _cards(conn, ranked)
        empty_store = not pool and count_papers(conn) == 0
        gap = vector_gap(conn, hub.settings)  # every stored paper is ranked (see rank_radar)
    if new and picked and record:
        if not hub.record_shown(radar.id, today, picked, number):
            log.info("radar %s: batch %s raced another request", radar.id, number)
    if items or (not new and remaining):
        state = "ok"
    elif empty_store:
        state = "empty_store"
    elif pool:
        state = "all_shown"
    else:
        state = "no_match"
    return RadarBatch(radar, filters, size, number, items, remaining, len(pool), since, state, gap)


def advance(hub: "Hub", radar_name: str, filters: FeedFilters, size: int, seen: list[int],
            *, today: date | None = None) -> RadarBatch:
    """"Another batch" (a POST): the papers the reader saw (`seen`, when the page showed a batch
    not yet recorded) are recorded as shown, then a new batch is made and recorded."""
    today = today or hub.today()
    with hub.engine.connect() as conn:
        radar = get_radar(conn, radar_name)
        if radar is None:
            raise NotFound(f"no radar {radar_name!r}")
        shown = shown_batches(conn, radar.id, today)
    fresh = [int(p) for p in dict.fromkeys(seen) if int(p) not in shown]
    if fresh:
        hub.record_shown(radar.id, today, fresh, max(shown.values(), default=-1) + 1)
    return next_batch(hub, str(radar.id), filters, size, None, today=today, record=True)


def preview(hub: "Hub", conn, radar: Radar, size: int = PREVIEW_SIZE) -> dict:
    """The editor's live preview: the radar's best papers of the day, diversified, each with why."""
    since = day_window(conn, FeedFilters())
    model, embed = hub.embedding(conn)
    outside = window_ids(conn, None) - window_ids(conn, since) if since else set()
    ranked = rank_radar(conn, radar, limit=size, model=model, embed=embed, diversify=True, exclude=outside,
                        ranker=hub.ranker, cache=hub.candidates)
    return {"preview": _cards(conn, ranked), "preview_window": since, "vector_gap": vector_gap(conn, hub.settings)}


def ranked_for_api(hub: "Hub", radar_name: str, *, since: date | None, limit: int | None,
                   worth_saying: bool = True) -> list:
    """Stored papers ranked for a radar (those since a day), best first (reasons filtered by
    shown_reasons with `worth_saying`)."""
    with hub.engine.connect() as conn:
        radar = get_radar(conn, radar_name)
        if radar is None:
            raise NotFound(f"no radar {radar_name!r}")
        model, embed = hub.embedding(conn)
        ranked = rank_radar(conn, radar, since=since, limit=limit, model=model, embed=embed,
                            ranker=hub.ranker, cache=hub.candidates)
    if worth_saying:
        for r in ranked:
            r.reasons = shown_reasons(r.reasons)
    return ranked


__all__ = ["PREVIEW_SIZE", "RadarBatch", "advance", "day_window", "left_to_show", "next_batch", "preview", "ranked_for_api",
           "shown_reasons", "topic_suggestions"]
