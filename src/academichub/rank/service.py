"""From a stored radar to a ranked, explained list: load the radar's profile and the candidates
(with their stored embeddings), run the ranker, and keep what the radar has shown today so that
"another batch" never repeats within a day."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, select

from ..store.radars import Radar
from ..store.schema import paper_authors, paper_embeddings, paper_subjects, papers
from .candidates import CandidateSet
from .ranker import Doc, RadarProfile, Ranker, Reason, mmr

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RankedPaper:
    id: int
    title: str
    score: float
    reasons: list[Reason]

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "score": round(self.score, 4),
            "reasons": [{"kind": r.kind, "text": r.text} for r in self.reasons],
        }


def load_docs(conn: Connection, paper_ids: list[int] | None = None, *, since: date | None = None,
              model: str | None = None, exclude: set[int] | None = None,
              id_range: tuple[int | None, int | None] | None = None) -> list[Doc]:
    """Papers as the ranker sees them; `paper_ids=None` means every stored paper (since a day).
    `id_range`: (above, up to) ids, either end open (None): the candidate files' appends."""
    stmt = select(papers.c.id, papers.c.title, papers.c.abstract, papers.c.venue, papers.c.announced_on,
                  papers.c.published_on)
    if paper_ids is not None:
        if not paper_ids:
            return []
        stmt = stmt.where(papers.c.id.in_(paper_ids))
    if since is not None:
        stmt = stmt.where((papers.c.announced_on >= since) | (papers.c.published_on >= since))
    if id_range is not None:
        above, upto = id_range
        if above is not None:
            stmt = stmt.where(papers.c.id > above)
        if upto is not None:
            stmt = stmt.where(papers.c.id <= upto)
    rows = [r for r in conn.execute(stmt.order_by(papers.c.id)) if not exclude or r[0] not in exclude]
    ids = [r[0] for r in rows]
    authors: dict[int, list[tuple[str, str]]] = defaultdict(list)
    categories: dict[int, list[str]] = defaultdict(list)
    vectors: dict[int, np.ndarray] = {}
    for chunk in _chunks(ids):
        for pid, key, name in conn.execute(
            select(paper_authors.c.paper_id, paper_authors.c.name_key, paper_authors.c.name)
            .where(paper_authors.c.paper_id.in_(chunk)).order_by(paper_authors.c.paper_id, paper_authors.c.position)
        ):
            authors[pid].append((key, name))
        for pid, code in conn.execute(
            select(paper_subjects.c.paper_id, paper_subjects.c.code)
            .where(paper_subjects.c.paper_id.in_(chunk), paper_subjects.c.scheme == "arxiv")
            .order_by(paper_subjects.c.paper_id, paper_subjects.c.is_primary.desc(), paper_subjects.c.code)
        ):
            categories[pid].append(code)
        if model:
            for pid, blob in conn.execute(
                select(paper_embeddings.c.paper_id, paper_embeddings.c.vector)
                .where(paper_embeddings.c.paper_id.in_(chunk), paper_embeddings.c.model == model)
            ):
                vectors[pid] = np.frombuffer(blob, dtype="<f2").astype(np.float32)
    if vectors and len(vectors) < len(ids):
        # A paper stored since the last `embed` (a seed file's new entry, an ingest without the
        # extra) has no vector yet: it stands at the others' mean, neither near nor far from
        # anything, so one such paper does not turn the embeddings off for every candidate.
        # (in id order: the candidate files make the same mean from their rows)
        mean = np.mean([vectors[i] for i in ids if i in vectors], axis=0)
        mean /= np.linalg.norm(mean) or 1.0
        vectors = {i: vectors.get(i, mean) for i in ids}
    return [
        Doc(
            id=r[0], title=r[1], abstract=r[2] or "",
            author_keys=tuple(k for k, _ in authors[r[0]]), author_names=tuple(n for _, n in authors[r[0]]),
            categories=tuple(categories[r[0]]), venue=r[3], day=r[4] or r[5],
            embedding=vectors.get(r[0]),
        )
        for r in rows
    ]


def _to_english(text: str) -> str:
    try:
        from .crosslingual import to_english
    except ImportError:  # the glossary module is optional: a statement is then used as written
        return text
    return to_english(text)


def _chunks(items: list, size: int = 900):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def profile_of(conn: Connection, radar: Radar, *, model: str | None = None, embed=None) -> RadarProfile:
    """The radar's rules, seeds and feedback as the ranker's profile. `embed(text) -> vector` embeds
    the interest statement when an embedder is available; a Chinese statement is first carried into
    English terms (rank/crosslingual.py) so it can find English papers."""
    rules = radar.rules
    liked_ids = [f.paper_id for f in radar.feedback if f.action in ("like", "save") and f.paper_id]
    dismissed_ids = [f.paper_id for f in radar.feedback if f.action == "dismiss" and f.paper_id]
    docs = {d.id: d for d in load_docs(conn, list({*radar.seeds, *liked_ids, *dismissed_ids}), model=model)}
    interest = radar.interest
    if interest:
        interest = _to_english(interest)
    less_authors = set()
    for f in radar.feedback:
        if f.action == "less_author" and f.value:
            from ..names import name_key

            less_authors.add(name_key(f.value))
    return RadarProfile(
        authors={r.value_key: r.value for r in rules.get("author", [])},
        muted_authors={r.value_key for r in rules.get("mute_author", [])},
        keywords=[r.value for r in rules.get("keyword", [])],
        excludes=[r.value for r in rules.get("exclude", [])],
        categories=[r.value_key for r in rules.get("category", [])],
        venues=[r.value for r in rules.get("venue", [])],
        interest=interest,
        interest_embedding=embed(interest) if (embed and interest) else None,
        seeds=[docs[i] for i in radar.seeds if i in docs],
        liked=[docs[i] for i in liked_ids if i in docs],
        dismissed=[docs[i] for i in dismissed_ids if i in docs],
        less_authors=less_authors,
        less_topics=[f.value for f in radar.feedback if f.action == "less_topic" and f.value],
    )


_RANKERS: dict[tuple, Ranker] = {}


def ranker_for(weights_file: Path | None) -> Ranker:
    """The ranker with the shipped weights, or with those of a TOML file (`name = value`; the
    `rank_weights` setting: how the relevance benchmark hands a fold's weights to the CLI). Kept
    per file and modification time, so its learned models are reused between calls."""
    key = (str(weights_file), weights_file.stat().st_mtime_ns if weights_file and weights_file.exists() else None)
    ranker = _RANKERS.get(key)
    if ranker is None:
        ranker = Ranker(read_weights(weights_file) if weights_file else None)
        if len(_RANKERS) >= 4:  # bounded; the shipped-weights ranker is not evicted by a weights file
            _RANKERS.pop(next(k for k in _RANKERS if k[0] != "None"), None)
        _RANKERS[key] = ranker
    return ranker


def read_weights(path: Path) -> dict[str, float]:
    """Weights from a TOML file of `name = number`; an unknown name or a non-number is refused."""
    import tomllib

    from ..errors import ConfigError
    from .ranker import DEFAULT_WEIGHTS

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the ranking weights: {exc}") from exc
    unknown = sorted(set(data) - set(DEFAULT_WEIGHTS))
    if unknown:
        raise ConfigError(f"{path}: unknown ranking weights: {', '.join(unknown)} (known: {', '.join(DEFAULT_WEIGHTS)})")
    bad = sorted(k for k, v in data.items() if isinstance(v, bool) or not isinstance(v, (int, float)))
    if bad:
        raise ConfigError(f"{path}: ranking weights must be numbers: {', '.join(bad)}")
    return {k: float(v) for k, v in data.items()}


CANDIDATE_SETS_KEPT = 6  # windows kept: the radar page's, a briefing's day and week and the periods before, a spare


class CandidateCache:
    """Candidate sets by (store, window, model), each kept while its corpus signature holds, the
    least recently used dropped beyond `size`. Several entries, so a briefing's window (since its
    period's first day) does not evict the radar page's (every stored paper) and its neighbour graph."""

    def __init__(self, size: int = CANDIDATE_SETS_KEPT, *, index_folder: Path | None = None):
        self.size = max(1, size)
        # where the persisted nearest-neighbour indexes live (data_dir/index; rank/neighbours.py);
        # None: each large candidate set builds a transient one for its graph
        self.index_folder = index_folder
        self._sets: OrderedDict[tuple, tuple[tuple, CandidateSet]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple, threading.Lock] = {}  # one lock per key (a handful of windows)
        self.builds = 0  # how many sets were built (a test and the benchmark read it)

    def get(self, conn: Connection, *, since: date | None, model: str | None, ranker: Ranker) -> CandidateSet:
        signature = corpus_signature(conn, since, model)
        # the set depends on the ranker only through its hashed vocabulary's width
        key = (str(conn.engine.url), since, model, ranker.lexical.vectorizer.n_features)
        with self._lock:
            found = self._current(key, signature)
            if found is not None:
                return found
            building = self._building.setdefault(key, threading.Lock())
        with building:  # two requests that miss at once build the set once; the second waits for it
            with self._lock:
                found = self._current(key, signature)
            if found is not None:
                return found
            built = self._from_files(conn, model, ranker) if since is None else None
            if built is None:
                built = ranker.candidates(load_docs(conn, since=since, model=model))
            if model and self.index_folder is not None and built.emb is not None:
                index = self._neighbour_index(conn, model)
                if index is not None:
                    built.neighbour_source, built.nearest_source = index.table, index.nearest
            with self._lock:
                self.builds += 1
                self._sets[key] = (signature, built)
                self._sets.move_to_end(key)
                while len(self._sets) > self.size:
                    self._sets.popitem(last=False)
            return built

    def _from_files(self, conn: Connection, model: str | None, ranker: Ranker) -> CandidateSet | None:
        """Every stored paper's candidate set read from the store's candidate files (written or
        extended first where they lag: rank/candidate_files.py); None without a data folder or
        papers, or when the files cannot be written (logged: the set is then built in memory)."""
        if self.index_folder is None or signature_count(conn) == 0:
            return None
        from .candidate_files import candidate_files

        files = candidate_files(self.index_folder / "candidates", conn, ranker.lexical.vectorizer.n_features)
        try:
            columns = files.columns(conn, model, ranker.lexical)
        except OSError as exc:
            log.warning("candidate columns in %s: cannot be written (%s); building them in memory", files.folder, exc)
            return None
        return CandidateSet.from_columns(columns, ranker.lexical)

    def _neighbour_index(self, conn: Connection, model: str):
        """The store's nearest-neighbour index for `model` (its table: the propagation graph; its
        search: the first stage of a large set's ranking), caught up first with vectors the index
        lacks (another process embedded them); None when the index cannot be made (logged: the
        graph is then built for the candidates alone)."""
        from .neighbours import store_key, vector_index

        index = vector_index(self.index_folder, model, store=store_key(conn))
        try:
            index.catch_up(conn)
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("nearest-neighbour index in %s: cannot be brought up to date (%s)", self.index_folder, exc)
            return None
        return index

    def _current(self, key: tuple, signature: tuple) -> CandidateSet | None:
        cached = self._sets.get(key)
        if cached is None or cached[0] != signature:
            return None
        self._sets.move_to_end(key)
        return cached[1]

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()


_SHARED_CACHE = CandidateCache()  # for callers without a long-lived owner (app.Hub brings its own)


def signature_count(conn: Connection) -> int:
    """How many papers are stored."""
    from sqlalchemy import func

    return int(conn.execute(select(func.count()).select_from(papers)).scalar_one())


def corpus_signature(conn: Connection, since: date | None, model: str | None) -> tuple:
    """Changes whenever a paper is added or rewritten, or an embedding stored: the cache key."""
    from sqlalchemy import func

    row = conn.execute(select(func.count(), func.max(papers.c.id), func.max(papers.c.modified_at))).one()
    vectors = 0
    if model:
        vectors = conn.execute(
            select(func.count()).select_from(paper_embeddings).where(paper_embeddings.c.model == model)
        ).scalar_one()
    return (str(conn.engine.url), since, model, tuple(row), vectors)


def candidate_set(conn: Connection, *, since: date | None = None, model: str | None = None, ranker: Ranker | None = None,
                  cache: CandidateCache | None = None) -> CandidateSet:
    """The store's papers as a CandidateSet, built once per corpus state and kept in memory, so
    ranking for another radar (or the next batch) costs only the scoring."""
    return (cache or _SHARED_CACHE).get(conn, since=since, model=model, ranker=ranker or ranker_for(None))


def rank_radar(conn: Connection, radar: Radar, *, since: date | None = None, limit: int | None = None,
               model: str | None = None, embed=None, ranker: Ranker | None = None, today: date | None = None,
               exclude: set[int] | None = None, diversify: bool = False,
               cache: CandidateCache | None = None, explain: int | None = None) -> list[RankedPaper]:
    """Every stored paper that is not a seed of this radar (or those since a day), best first.
    Pass the long-lived `ranker` and `cache` (app.Hub's): its per-radar models and the candidate
    sets are then reused; without them the process-wide shipped-weights ranker and cache are.
    `explain`: how many of the best get their reasons (default: all returned); a caller that needs
    only the order (a briefing's paper choice) passes 0."""
    ranker = ranker or ranker_for(None)
    profile = profile_of(conn, radar, model=model, embed=embed)
    cs = candidate_set(conn, since=since, model=model, ranker=ranker, cache=cache)
    pool = None if limit is None else (limit * 5 if diversify else limit)
    ranking = ranker.rank(
        profile, cs, today=today, explain=(pool or len(cs)) if explain is None else explain, exclude=set(radar.seeds) | (exclude or set()), top=pool,
    )
    ids, scores = ranking.ids, ranking.scores
    if diversify and limit:
        # spread each tier on its own (what the user asked for first, what they turned down last)
        tiers = ranking.tiers if ranking.tiers is not None else np.zeros(len(ids), dtype=np.int8)
        order: list[int] = []
        for tier in sorted(set(tiers.tolist()), reverse=True):
            if len(order) >= limit:
                break
            rows = np.flatnonzero(tiers == tier)
            vectors = cs.emb[[cs.position[int(i)] for i in ids[rows]]] if cs.emb is not None and len(rows) else None
            order += mmr(ids[rows], scores[rows], vectors, k=limit - len(order))
        position = {int(i): n for n, i in enumerate(ids)}
        ids = np.array(order, dtype=np.int64)
        scores = np.array([ranking.scores[position[i]] for i in order])
    if limit is not None:
        ids, scores = ids[:limit], scores[:limit]
    return [
        RankedPaper(int(pid), cs.docs[cs.position[int(pid)]].title, float(score), ranking.reasons.get(int(pid), []))
        for pid, score in zip(ids, scores)
    ]


def rank_all(conn: Connection, radar: Radar, *, model: str | None = None, embed=None, ranker: Ranker | None = None,
             cache: CandidateCache | None = None, exclude: set[int] | None = None, explain: int | None = None,
             today: date | None = None):
    """Every paper the radar may be shown (not a seed, not in `exclude`), best first, with tiers:
    the Ranking a stored ranking is made of (app/radar_feed.py). `explain`: how many of the best
    get their reasons (None: all)."""
    ranker = ranker or ranker_for(None)
    profile = profile_of(conn, radar, model=model, embed=embed)
    cs = candidate_set(conn, since=None, model=model, ranker=ranker, cache=cache)
    return ranker.rank(profile, cs, today=today, explain=len(cs) if explain is None else explain,
                       exclude=set(radar.seeds) | (exclude or set()))
