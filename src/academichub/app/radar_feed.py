"""The feed ranked for a radar, batch by batch: the next batch, the same batch again, the editor's
preview, and how many papers are left. The web page and the JSON API render what this returns.

A page view reads, it does not rank: the radar's ranking of the day (every paper it may show,
best first, with tiers and the cards' reasons) is stored (store/rankings.py) by a `rank` job
after new papers, by the first view that finds none, or at once after an edit of the radar.
Feedback and new papers make it stale: the view still reads it (less what was dismissed) and
asks for a re-rank in the background (hub.rerank_later), keyed by the inputs' version.

"Another batch" never repeats a paper within a day: a batch leaves out what the radar showed
today (store.radars.shown_batches) and is then recorded (mark_shown) under its number, so batch N
can be shown again (a reload, the page a feedback button returns to) while asking for no number
gives a new one. How many are left is set arithmetic over the stored ranking (less the papers
outside the filters and the shown), not a second ranking."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from ..errors import NotFound
from ..rank.embedding_jobs import VectorGap, vector_gap
from ..rank.ranker import Reason, mmr
from ..names import fold, name_key
from ..rank.service import RankedPaper, candidate_set, corpus_signature, load_docs, profile_of, rank_all
from ..rank.terms import stop_words
from ..store.feed import FeedFilters, get_papers, latest_announcement, matching_ids, window_ids
from ..store.papers import count_papers, count_vectors, paper_titles
from ..store.radars import Radar, get_radar, shown_batches
from ..store.rankings import ALL, StoredRanking, load_ranking, period_key, ranking_versions, save_ranking, vectors_of
from ..store.state import as_utc

if TYPE_CHECKING:  # pragma: no cover
    from .hub import Hub

log = logging.getLogger(__name__)

PREVIEW_SIZE = 20
EXPLAINED_ALL = 500  # papers of an "all" ranking stored with their reasons (a day's: every one)
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
    """Cards of ranked papers (RankedPaper-like: id, score, reasons), loaded together."""
    found = get_papers(conn, [r.id for r in ranked])
    items = []
    for r in ranked:
        item = found.get(r.id)
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


# ----------------------------------------------------------------------------- stored rankings


def _digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:16]


def ranking_version(hub: "Hub", conn, radar: Radar, period: str) -> str:
    """The inputs a stored ranking was made from, as two hashes: what the radar asks for (its
    statement, rules, seeds, last edit) and what it learned and ranks over (feedback, the corpus
    and its vectors, the weights). A changed first half is an edit: the next view ranks again
    at once; a changed second half (feedback, new papers) re-ranks in the background meanwhile."""
    rules = sorted((kind, r.value_key) for kind, rs in radar.rules.items() for r in rs)
    setup = _digest(period, radar.interest, rules, sorted(radar.seeds), str(radar.updated_at))
    weights = hub.settings.rank_weights
    learned = _digest(sorted(f.id for f in radar.feedback), *_corpus_state(hub, conn),
                      str(weights), weights.stat().st_mtime_ns if weights and weights.exists() else None)
    return setup + learned


def _corpus_state(hub: "Hub", conn) -> tuple:
    """The corpus signature and the count of vectors (two scans of the papers), once per store state."""
    return hub.per_state.get(("corpus",), lambda: (corpus_signature(conn, None, None)[3:], count_vectors(conn)))


def compute_ranking(hub: "Hub", conn, radar: Radar, since: date | None, *, explain: int | None | bool = True,
                    store: bool = True) -> StoredRanking:
    """Rank the radar over the period's papers (every stored paper scored, so scores do not
    depend on the window), store it (unless not `store`: a period no page reads), and return it.
    Reasons (`explain` True) for every paper of a day, for the head of "all" (EXPLAINED_ALL);
    else for the best `explain` (None: every paper). What is returned is what a read of the
    stored row gives back (float32 scores, rounded reason weights), stored or not."""
    period = period_key(since)
    version = ranking_version(hub, conn, radar, period)  # read before ranking: a change meanwhile shows as stale
    model, embed = hub.embedding(conn)
    outside = (window_ids(conn, None) - window_ids(conn, since)) if since else set()
    if explain is True:
        explain = None if since else EXPLAINED_ALL
    ranking = rank_all(conn, radar, model=model, embed=embed, ranker=hub.ranker, cache=hub.candidates,
                       exclude=outside, explain=explain)
    hub.rankings_computed += 1
    reasons = {str(pid): [[r.kind, r.text, round(float(r.weight), 4)] for r in rs] for pid, rs in ranking.reasons.items()}
    tiers = ranking.tiers if ranking.tiers is not None else np.zeros(len(ranking.ids), dtype=np.int8)
    now = hub.now()
    if store:
        with hub.engine.begin() as write:
            if get_radar(write, radar.id) is not None:  # deleted meanwhile: nothing to store
                save_ranking(write, radar.id, period, version=version, model=model, ids=ranking.ids, scores=ranking.scores,
                             tiers=tiers, reasons=reasons, now=as_utc(now).replace(tzinfo=None))
    return StoredRanking(radar.id, period, version, model, np.asarray(ranking.ids, dtype=np.int64),
                         np.asarray(ranking.scores, dtype=np.float32), np.asarray(tiers, dtype=np.int8), reasons, now)


def stored_ranking(hub: "Hub", conn, radar: Radar, since: date | None, *, fresh: bool = False) -> tuple[StoredRanking, bool]:
    """The radar's ranking of the period, read from the store: (ranking, stale). Missing, or made
    before an edit of the radar (or any change with `fresh`): ranked here and stored, once per
    process at a time. Stale (feedback, new papers): returned as it is, and a re-rank is asked
    for in the background (hub.rerank_later)."""
    period = period_key(since)
    version = ranking_version(hub, conn, radar, period)
    found = hub.per_state.get(("ranking", radar.id, period), lambda: load_ranking(conn, radar.id, period))
    if found is not None and found.version == version:
        return found, False
    if found is not None and found.version[:16] == version[:16] and not fresh:
        hub.rerank_later(radar.id, since, version)
        return found, True
    with hub.ranking_lock(radar.id, period):
        found = load_ranking(conn, radar.id, period)  # another request may have ranked it meanwhile
        if found is not None and found.version == version:
            return found, False
        return compute_ranking(hub, conn, radar, since), False


def refresh_rankings(hub: "Hub", radar_id: int) -> list[str]:
    """The job's work: rank the radar's latest day again, and any other stored period that is
    stale; the periods ranked."""
    done = []
    with hub.engine.connect() as conn:
        radar = get_radar(conn, radar_id)
        if radar is None:
            return done
        day = latest_announcement(conn)
        periods = {period_key(day): day}
        for period, version in ranking_versions(conn, radar_id).items():
            since = None if period == ALL else date.fromisoformat(period)
            if version != ranking_version(hub, conn, radar, period):
                periods.setdefault(period, since)
        for period, since in periods.items():
            found = load_ranking(conn, radar_id, period)
            if found is None or found.version != ranking_version(hub, conn, radar, period):
                compute_ranking(hub, conn, radar, since)
                done.append(period)
    return done


def _ranked(stored: StoredRanking, ids) -> list[RankedPaper]:
    out = []
    for pid in ids:  # a batch: a few positions looked up, not a map of the whole ranking
        n = int(np.flatnonzero(stored.ids == int(pid))[0])
        reasons = [Reason(kind, text, float(weight)) for kind, text, weight in stored.reasons.get(str(int(pid)), [])]
        out.append(RankedPaper(int(pid), "", float(stored.scores[n]), reasons))
    return out


def _diversified(conn, stored: StoredRanking, rows: np.ndarray, limit: int) -> list[int]:
    """The best `limit` of these rows (indexes into the stored ranking, best first), each tier spread
    on its own (what the user asked for first, what they turned down last): MMR over a pool of
    five times the batch, with the pool's stored vectors."""
    pool = rows[: limit * 5]
    ids, scores, tiers = stored.ids[pool], stored.scores[pool], stored.tiers[pool]
    found = vectors_of(conn, ids.tolist(), stored.model)
    order: list[int] = []
    for tier in sorted(set(tiers.tolist()), reverse=True):
        if len(order) >= limit:
            break
        sel = np.flatnonzero(tiers == tier)
        vectors = None
        if found and all(int(i) in found for i in ids[sel]):
            vectors = np.stack([found[int(i)] for i in ids[sel]])
        order += mmr(ids[sel], scores[sel], vectors, k=limit - len(order))
    return order


def _less_last(conn, radar: Radar, stored: StoredRanking, rows: np.ndarray, wanted: int) -> tuple[StoredRanking, np.ndarray]:
    """The stored order with the papers of a "less of this" author or topic moved behind every
    other (tier -1, as the ranker puts them: Ranker._tiers) while the re-rank is pending. Only the
    head is read, chunk by chunk, until `wanted` rows (a batch's pool) are free of them: a page
    view reads a few hundred papers, not the period. Same folding and matching as the ranker."""
    authors = {name_key(f.value) for f in radar.feedback if f.action == "less_author" and f.value}
    topics = [fold(f.value) for f in radar.feedback if f.action == "less_topic" and f.value]
    topics = [t for t in topics if t]
    if not authors and not topics:
        return stored, rows
    clean: list[int] = []
    last: list[int] = []  # said less of now, or already last in the stored ranking
    said_now: list[int] = []
    start = 0
    while start < len(rows) and len(clean) < wanted:
        chunk = rows[start : start + max(wanted, 100)]
        start += len(chunk)
        docs = {d.id: d for d in load_docs(conn, [int(stored.ids[r]) for r in chunk if stored.tiers[r] >= 0])}
        for r in chunk.tolist():
            doc = docs.get(int(stored.ids[r]))
            if doc is None:
                last.append(r)
            elif any(k in authors for k in doc.author_keys) or any(t in fold(doc.text) for t in topics):
                last.append(r)
                said_now.append(r)
            else:
                clean.append(r)
    if not said_now:
        return stored, rows
    tiers = stored.tiers.copy()
    tiers[said_now] = -1
    rest = rows[start:]
    rest_last = stored.tiers[rest] < 0
    # row numbers are positions in the stored order, best first: sorting keeps the scores' order
    order = np.concatenate([np.array(clean, dtype=np.int64), rest[~rest_last],
                            np.sort(np.concatenate([np.array(last, dtype=np.int64), rest[rest_last]]))])
    return dataclasses.replace(stored, tiers=tiers), order


def next_batch(hub: "Hub", radar_name: str, filters: FeedFilters, size: int, wanted: int | None,
               *, today: date | None = None, record: bool = True) -> RadarBatch:
    """Batch `wanted` again when it was shown today, else a new batch of papers not shown today,
    recorded as shown. Without `record` (a GET: reading changes nothing) and no `wanted`: the
    latest batch shown today again, else the batch a recording call would make, not recorded.

    Read from the radar's stored ranking of the day (or of every paper, with a date chip):
    the papers outside the filters, shown today or (while a re-rank is pending) dismissed since
    are left out. No ranking here unless none is stored yet or the radar was edited since."""
    today = today or hub.today()
    filters = filters.normalized()
    with hub.engine.connect() as conn:
        radar = get_radar(conn, radar_name)
        if radar is None:
            raise NotFound(f"no radar {radar_name!r}")
        kept = hub.per_state  # read once per store state: the same for every view until something is written
        since = None if filters.dates else kept.get(("latest",), lambda: day_window(conn, filters))
        window = kept.get(("window", since), lambda: window_ids(conn, since))
        matching = kept.get(("matching", since, repr(filters)), lambda: matching_ids(conn, filters, window))
        pool = matching - set(radar.seeds)
        shown = shown_batches(conn, radar.id, today)
        recorded = set(shown.values())
        stored, stale = stored_ranking(hub, conn, radar, since)
        ids = stored.ids
        keep = kept.get(("eligible", radar.id, since, repr(filters), tuple(sorted(radar.seeds)), stored.period, stored.version),
                        lambda: np.isin(ids, np.fromiter(pool, dtype=np.int64, count=len(pool)))
                        if len(ids) else np.zeros(0, dtype=bool)).copy()
        if stale:  # what the reader just said, at once: a liked, saved or dismissed paper leaves the
            # feed before the re-rank (the ranker never returns them: Ranker.eligible)
            said = [f.paper_id for f in radar.feedback if f.action in ("like", "save", "dismiss") and f.paper_id]
            if said:
                keep &= ~np.isin(ids, np.array(said, dtype=np.int64))
        if not record and wanted is None and recorded:  # a read: the latest batch shown today
            wanted = max(recorded)
        if wanted is not None and wanted in recorded:
            members = np.array([p for p, b in shown.items() if b == wanted], dtype=np.int64)
            picked = ids[keep & np.isin(ids, members)].tolist()
            number, new = wanted, False
            not_shown = keep & ~np.isin(ids, np.array(list(shown), dtype=np.int64))
            remaining = int(not_shown.sum())
        else:
            if shown:
                keep &= ~np.isin(ids, np.array(list(shown), dtype=np.int64))
            rows = np.flatnonzero(keep)
            if stale and size:  # "less of this author / topic" said since: its papers go last at once
                stored, rows = _less_last(conn, radar, stored, rows, size * 5)
            picked = _diversified(conn, stored, rows, size) if size else []
            # not recorded (a read): no number yet, "Another batch" then records what was on show
            number, new = (max(recorded, default=-1) + 1 if picked and record else None), True
            remaining = len(rows) - len(picked)
        items = _cards(conn, _ranked(stored, picked))
        empty_store = not pool and count_papers(conn) == 0
        gap = _vector_gap(hub, conn)  # every stored paper is ranked (see rank_radar)
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
    """The editor's live preview: the radar's best papers of the day, diversified, each with why
    (the stored ranking; ranked again here when anything changed, since the editor shows the
    effect of an edit or feedback at once)."""
    since = day_window(conn, FeedFilters())
    stored, _stale = stored_ranking(hub, conn, radar, since, fresh=True)
    picked = _diversified(conn, stored, np.arange(len(stored.ids)), size)
    return {"preview": _cards(conn, _ranked(stored, picked)), "preview_window": since,
            "vector_gap": _vector_gap(hub, conn)}


def _vector_gap(hub: "Hub", conn) -> VectorGap | None:
    """vector_gap (a count over every paper), kept while the corpus and its vectors are unchanged;
    asked again while vectors are being made in the background (its progress is the news)."""
    key = _corpus_state(hub, conn)
    cached = hub.vector_gaps.get(key, False)
    if cached is False or (cached is not None and cached.embedding):
        cached = vector_gap(conn, hub.settings)
        hub.vector_gaps.clear()
        hub.vector_gaps[key] = cached
    return cached


def ranked_for_api(hub: "Hub", radar_name: str, *, since: date | None, limit: int | None,
                   worth_saying: bool = True) -> list[RankedPaper]:
    """Stored papers ranked for a radar (those since a day), best first (reasons filtered by
    shown_reasons with `worth_saying`): the JSON API, MCP and `academichub rank` all answer this.

    Read from the radar's stored ranking when it is current for exactly these inputs (the period
    of every stored paper, or of the latest day: the periods the pages store and the jobs keep
    current); anything changed since (an edit, feedback, a new paper or vector) is ranked again
    here, stored, and answered: never a stale order. Another period is ranked and not stored
    (no job would keep it current). A ranking read or made answers the same: both are the
    stored row's values. Beyond the stored ranking's explained head (a limit over
    EXPLAINED_ALL of every paper) it is ranked again with the reasons asked for, not stored."""
    with hub.engine.connect() as conn:
        radar = get_radar(conn, radar_name)
        if radar is None:
            raise NotFound(f"no radar {radar_name!r}")
        kept_period = since is None or since == hub.per_state.get(("latest",), lambda: day_window(conn, FeedFilters()))
        ranking = stored_ranking(hub, conn, radar, since, fresh=True)[0] if kept_period else None
        if ranking is None or not _explained(ranking, limit):
            ranking = compute_ranking(hub, conn, radar, since, explain=limit, store=False)
        head = ranking.ids if limit is None else ranking.ids[:limit]
        ids = head.tolist()
        titles = paper_titles(conn, ids)
    ranked = []
    for n, pid in enumerate(ids):
        reasons = [Reason(kind, text, float(weight)) for kind, text, weight in ranking.reasons.get(str(pid), [])]
        ranked.append(RankedPaper(pid, titles.get(pid, ""), float(ranking.scores[n]),
                                  shown_reasons(reasons) if worth_saying else reasons))
    return ranked


def _explained(ranking: StoredRanking, limit: int | None) -> bool:
    """Whether every paper of the asked head has its reasons stored (a day's: all of them)."""
    head = ranking.ids if limit is None else ranking.ids[:limit]
    return len(ranking.reasons) >= len(ranking.ids) or all(str(pid) in ranking.reasons for pid in head.tolist())


__all__ = ["PREVIEW_SIZE", "RadarBatch", "advance", "compute_ranking", "day_window", "left_to_show", "next_batch", "preview",
           "ranked_for_api", "ranking_version", "refresh_rankings", "stored_ranking",
           "shown_reasons", "topic_suggestions"]
