"""The radar ranker: every interest signal fused in one score that explains itself.

Peers each use one signal (arxiv-sanity-lite: a TF-IDF SVM; zotero-arxiv-daily: mean cosine to a
library; Scholar Inbox: a logistic regression on embeddings). Here each signal is computed for every
candidate, standardised (z-scores over the candidates, so no signal dominates by its scale), and
summed with weights chosen on the relevance benchmark (docs/design.md):

- dense: cosine of the candidate's embedding to the seeds/likes centroid and to the nearest few,
  and to the interest statement;
- lexical: hashed TF-IDF cosine to the same, so exact terms count even where embeddings blur;
- learned: a per-radar logistic regression on embeddings, positives (seeds, likes, saves) against
  dismissals and a random sample of candidates (Scholar Inbox's recipe);
- rules: followed authors, categories, venues and keywords lift; excluded keywords, muted authors,
  dismissed papers and "less of this" push down or out;
- recency: a small preference for newer papers.

Every ranker returns `(ids, scores)` (arxiv-sanity-lite's convention); `rank()` adds the reasons."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from ..names import fold

# Weights of the standardised signals; chosen on benchmarks/relevance (see docs/design.md).
DEFAULT_WEIGHTS = {
    "dense_centroid": 1.0,
    "dense_nearest": 0.6,
    "dense_statement": 1.0,
    "lexical_centroid": 0.35,
    "lexical_statement": 0.6,
    "learned": 1.0,
    "recency": 0.05,
    "category_affinity": 0.8,
    "venue_affinity": 0.3,
    "author_affinity": 0.3,
    # rule bonuses, in standard deviations
    "author": 2.5,
    "category_primary": 0.6,
    "category_cross": 0.3,
    "venue": 1.0,
    "keyword": 0.8,
    "exclude_abstract": -3.0,
    "muted_author": -4.0,
    "less_author": -2.0,
    "less_topic": -1.5,
}
NEAREST = 3  # the nearest-k positives whose mean similarity is the "nearest" signal
NEGATIVES = 400  # random candidates sampled as negatives for the learned model
RECENCY_DAYS = 30.0


@dataclass(slots=True)
class Doc:
    """A paper as the ranker sees it."""

    id: int
    title: str
    abstract: str = ""
    author_keys: tuple[str, ...] = ()
    author_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # primary first
    venue: str | None = None
    day: date | None = None
    embedding: np.ndarray | None = None

    @property
    def text(self) -> str:
        return f"{self.title}. {self.abstract}"


@dataclass(slots=True)
class RadarProfile:
    """Everything a radar says about interest. Keys are already normalised (names.name_key for
    authors, folded phrases for keywords, category codes, folded venue names)."""

    authors: dict[str, str] = field(default_factory=dict)  # key -> as written
    muted_authors: set[str] = field(default_factory=set)
    keywords: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    venues: list[str] = field(default_factory=list)
    interest: str | None = None  # already in English (see rank/crosslingual.py)
    interest_embedding: np.ndarray | None = None
    seeds: list[Doc] = field(default_factory=list)
    liked: list[Doc] = field(default_factory=list)  # like and save
    dismissed: list[Doc] = field(default_factory=list)
    less_authors: set[str] = field(default_factory=set)
    less_topics: list[str] = field(default_factory=list)

    @property
    def positives(self) -> list[Doc]:
        return [*self.seeds, *self.liked]


@dataclass(slots=True)
class Reason:
    kind: str  # author | keyword | seed | liked | category | venue | statement | learned
    text: str  # what it names: the author, keyword, seed title, category, venue
    weight: float = 0.0


@dataclass(slots=True)
class Ranking:
    ids: np.ndarray
    scores: np.ndarray
    reasons: dict[int, list[Reason]]
    signals: dict[str, np.ndarray]  # per candidate, in candidate order (for "what the radar learned")


# ----------------------------------------------------------------------------- text features

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _folded(text: str) -> str:
    return fold(text or "")


class LexicalIndex:
    """Hashed TF-IDF vectors: no vocabulary to fit, so vectors can be computed once per paper and
    reused across radars; idf comes from the candidates being ranked."""

    def __init__(self, n_features: int = 2**18):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.vectorizer = HashingVectorizer(
            n_features=n_features, alternate_sign=False, norm=None, ngram_range=(1, 2),
            stop_words="english", lowercase=True, strip_accents="unicode",
        )

    def counts(self, texts: list[str]):
        return self.vectorizer.transform(texts)

    @staticmethod
    def idf(counts) -> np.ndarray:
        df = np.asarray((counts > 0).sum(axis=0)).ravel()
        n = counts.shape[0]
        return np.log((1 + n) / (1 + df)) + 1.0

    @staticmethod
    def weigh(counts, idf: np.ndarray):
        from sklearn.preprocessing import normalize

        weighted = counts.multiply(idf).tocsr()
        weighted.data = np.log1p(weighted.data)  # sublinear tf, as arxiv-sanity-lite
        return normalize(weighted)


def _zscore(values: np.ndarray) -> np.ndarray:
    std = values.std()
    if not np.isfinite(std) or std < 1e-12:
        return np.zeros_like(values)
    return (values - values.mean()) / std


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


# ----------------------------------------------------------------------------- the ranker


class Ranker:
    def __init__(self, weights: dict[str, float] | None = None, *, seed: int = 0, lexical: LexicalIndex | None = None):
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        self.seed = seed
        self.lexical = lexical or LexicalIndex()

    # -- the score ---------------------------------------------------------

    def signals(self, profile: RadarProfile, candidates: list[Doc], *, today: date | None = None) -> dict[str, np.ndarray]:
        n = len(candidates)
        out: dict[str, np.ndarray] = {}
        positives = profile.positives
        emb = _embedding_matrix(candidates)
        pos_emb = _embedding_matrix(positives) if positives else None
        if emb is not None:
            if pos_emb is not None and len(pos_emb):
                sims = emb @ pos_emb.T
                out["dense_centroid"] = emb @ _unit(pos_emb.mean(axis=0))
                k = min(NEAREST, sims.shape[1])
                out["dense_nearest"] = np.sort(sims, axis=1)[:, -k:].mean(axis=1)
                out["_pos_sims"] = sims
                out["learned"] = self._learned(emb, pos_emb, _embedding_matrix(profile.dismissed))
            if profile.interest_embedding is not None:
                out["dense_statement"] = emb @ _unit(profile.interest_embedding)

        statement_text = " ".join(filter(None, [profile.interest or "", *profile.keywords]))
        if positives or statement_text:
            counts = self.lexical.counts([d.text for d in candidates])
            extra = [d.text for d in positives] + ([statement_text] if statement_text else [])
            extra_counts = self.lexical.counts(extra)
            from scipy.sparse import vstack

            idf = self.lexical.idf(vstack([counts, extra_counts]))
            cand = self.lexical.weigh(counts, idf)
            ext = self.lexical.weigh(extra_counts, idf)
            if positives:
                centroid = np.asarray(ext[: len(positives)].mean(axis=0)).ravel()
                norm = np.linalg.norm(centroid)
                if norm:
                    out["lexical_centroid"] = cand @ (centroid / norm)
                if emb is None:
                    out["_pos_sims"] = (cand @ ext[: len(positives)].T).toarray()
            if statement_text:
                out["lexical_statement"] = (cand @ ext[len(positives)].T).toarray().ravel()

        if positives:
            out.update(self._affinities(positives, candidates))

        if today is not None:
            ages = np.array([(today - d.day).days if d.day else 365 for d in candidates], dtype=float)
            out["recency"] = np.exp(-np.clip(ages, 0, None) / RECENCY_DAYS)
        out["_rules"] = self._rules(profile, candidates)
        for key in list(out):
            if not key.startswith("_") and out[key].shape != (n,):
                out[key] = np.asarray(out[key]).reshape(n)
        return out

    @staticmethod
    def _affinities(positives: list[Doc], candidates: list[Doc]) -> dict[str, np.ndarray]:
        """What the positives share besides their text: their arXiv categories (primary counts
        double), venues and authors. A radar seeded with cs.CL papers leans to cs.CL."""
        n_pos = len(positives)
        cat_weight: dict[str, float] = {}
        venue_weight: dict[str, float] = {}
        author_weight: dict[str, float] = {}
        for d in positives:
            for j, code in enumerate(d.categories):
                cat_weight[code] = cat_weight.get(code, 0.0) + (1.0 if j == 0 else 0.5) / n_pos
            if d.venue:
                key = _folded(d.venue)
                venue_weight[key] = venue_weight.get(key, 0.0) + 1.0 / n_pos
            for key in d.author_keys:
                author_weight[key] = author_weight.get(key, 0.0) + 1.0 / n_pos
        out = {}
        if cat_weight:
            out["category_affinity"] = np.array([
                sum(cat_weight.get(code, 0.0) * (1.0 if j == 0 else 0.5) for j, code in enumerate(d.categories))
                for d in candidates
            ])
        if venue_weight:
            out["venue_affinity"] = np.array([venue_weight.get(_folded(d.venue), 0.0) if d.venue else 0.0 for d in candidates])
        if author_weight:
            out["author_affinity"] = np.array([sum(author_weight.get(k, 0.0) for k in d.author_keys) for d in candidates])
        return out

    def _learned(self, emb: np.ndarray, pos: np.ndarray, dismissed: np.ndarray | None) -> np.ndarray:
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(self.seed)
        sample = emb[rng.choice(len(emb), size=min(NEGATIVES, len(emb)), replace=False)]
        negatives = sample if dismissed is None or not len(dismissed) else np.vstack([sample, dismissed, dismissed])
        x = np.vstack([pos, negatives])
        y = np.concatenate([np.ones(len(pos)), np.zeros(len(negatives))])
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=500)
        model.fit(x, y)
        return model.decision_function(emb)

    def _rules(self, profile: RadarProfile, candidates: list[Doc]) -> np.ndarray:
        w = self.weights
        bonus = np.zeros(len(candidates))
        keywords = [_folded(k) for k in profile.keywords]
        excludes = [_folded(k) for k in profile.excludes]
        less_topics = [_folded(k) for k in profile.less_topics]
        categories = set(profile.categories)
        venues = {_folded(v) for v in profile.venues}
        for i, d in enumerate(candidates):
            keys = set(d.author_keys)
            if keys & profile.authors.keys():
                bonus[i] += w["author"]
            if keys & profile.muted_authors:
                bonus[i] += w["muted_author"]
            if keys & profile.less_authors:
                bonus[i] += w["less_author"]
            if categories and d.categories:
                if d.categories[0] in categories:
                    bonus[i] += w["category_primary"]
                elif categories.intersection(d.categories):
                    bonus[i] += w["category_cross"]
            if venues and d.venue and _folded(d.venue) in venues:
                bonus[i] += w["venue"]
            if keywords or excludes or less_topics:
                text = _folded(d.text)
                bonus[i] += w["keyword"] * sum(1 for k in keywords if k and k in text)
                if any(k and k in text for k in excludes):
                    bonus[i] += w["exclude_abstract"]
                if any(k and k in text for k in less_topics):
                    bonus[i] += w["less_topic"]
        return bonus

    def score(self, signals: dict[str, np.ndarray]) -> np.ndarray:
        n = len(signals["_rules"])
        total = np.zeros(n)
        for name, values in signals.items():
            if name.startswith("_"):
                continue
            total += self.weights.get(name, 0.0) * _zscore(values.astype(float))
        return total + signals["_rules"]

    # -- the public face ---------------------------------------------------

    def rank_ids(self, profile: RadarProfile, candidates: list[Doc], *, today: date | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), best first; excluded and dismissed papers left out."""
        ranking = self.rank(profile, candidates, today=today, explain=0)
        return ranking.ids, ranking.scores

    def rank(self, profile: RadarProfile, candidates: list[Doc], *, today: date | None = None, explain: int = 50) -> Ranking:
        if not candidates:
            return Ranking(np.array([], dtype=int), np.array([]), {}, {})
        signals = self.signals(profile, candidates, today=today)
        scores = self.score(signals)
        keep = np.ones(len(candidates), dtype=bool)
        seen = {d.id for d in profile.positives} | {d.id for d in profile.dismissed}
        excludes = [_folded(k) for k in profile.excludes if k]
        for i, d in enumerate(candidates):
            if d.id in seen or (excludes and any(k in _folded(d.title) for k in excludes)):
                keep[i] = False
        idx = np.flatnonzero(keep)
        order = idx[np.argsort(-scores[idx], kind="stable")]
        ids = np.array([candidates[i].id for i in order], dtype=np.int64)
        reasons = {int(candidates[i].id): self._reasons(profile, candidates, i, signals) for i in order[:explain]}
        return Ranking(ids, scores[order], reasons, {k: v for k, v in signals.items() if not k.startswith("_")})

    def _reasons(self, profile: RadarProfile, candidates: list[Doc], i: int, signals: dict) -> list[Reason]:
        d = candidates[i]
        reasons: list[Reason] = []
        for key in d.author_keys:
            if key in profile.authors:
                reasons.append(Reason("author", profile.authors[key], self.weights["author"]))
        text = _folded(d.text)
        for keyword in profile.keywords:
            if keyword and _folded(keyword) in text:
                reasons.append(Reason("keyword", keyword, self.weights["keyword"]))
        sims = signals.get("_pos_sims")
        positives = profile.positives
        if sims is not None and len(positives):
            j = int(np.argmax(sims[i]))
            best = positives[j]
            kind = "seed" if j < len(profile.seeds) else "liked"
            if sims[i, j] > 0.3 or kind == "seed":
                reasons.append(Reason(kind, best.title, float(sims[i, j])))
        if d.categories and set(d.categories) & set(profile.categories):
            shared = [c for c in d.categories if c in profile.categories]
            reasons.append(Reason("category", shared[0], self.weights["category_primary"]))
        if d.venue and profile.venues and _folded(d.venue) in {_folded(v) for v in profile.venues}:
            reasons.append(Reason("venue", d.venue, self.weights["venue"]))
        if "dense_statement" in signals or "lexical_statement" in signals:
            values = signals.get("dense_statement", signals.get("lexical_statement"))
            if values is not None and values[i] >= np.quantile(values, 0.9):
                reasons.append(Reason("statement", profile.interest or "", float(values[i])))
        return reasons


def _embedding_matrix(docs: list[Doc]) -> np.ndarray | None:
    if not docs or any(d.embedding is None for d in docs):
        return None
    return _unit(np.vstack([d.embedding for d in docs]).astype(np.float32))


def mmr(ids: np.ndarray, scores: np.ndarray, vectors: np.ndarray | None, *, k: int, lam: float = 0.5) -> list[int]:
    """Maximal marginal relevance over the top of a ranking: each next paper trades its score
    against its similarity to those already chosen, so one batch is not ten papers on one thing."""
    if vectors is None or len(ids) <= 1:
        return [int(i) for i in ids[:k]]
    pool = min(len(ids), max(k * 5, 50))
    top = scores[:pool].astype(float)
    spread = top.max() - top.min()
    rel = (top - top.min()) / spread if spread > 0 else np.ones(pool)  # relevance and similarity both in [0, 1]
    vec = _unit(vectors[:pool].astype(np.float32))
    chosen: list[int] = []
    best_sim = np.full(pool, -math.inf)
    available = np.ones(pool, dtype=bool)
    for _ in range(min(k, pool)):
        penalty = np.where(np.isfinite(best_sim), np.clip(best_sim, 0.0, 1.0), 0.0)
        value = lam * rel - (1 - lam) * penalty
        value[~available] = -math.inf
        j = int(np.argmax(value))
        chosen.append(j)
        available[j] = False
        best_sim = np.maximum(best_sim, vec @ vec[j])
    return [int(ids[j]) for j in chosen]
