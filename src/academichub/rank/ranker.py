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
from .ranker_types import Doc, RadarProfile, Reason

from .candidates import CandidateSet

_EMPTY = np.array([], dtype=np.int64)

__all__ = ["Doc", "RadarProfile", "Reason", "Ranker", "Ranking", "LexicalIndex", "mmr"]

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
LEXICAL_HEAD = 4000  # with embeddings, the lexical signals are computed for this many leading candidates
EXACT_HEAD = 300  # rows whose keyword matches are checked against the exact phrase
NEAREST = 3  # the nearest-k positives whose mean similarity is the "nearest" signal
NEGATIVES = 400  # random candidates sampled as negatives for the learned model
RECENCY_DAYS = 30.0


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
        self._models: dict = {}  # per-radar learned models, keyed by what they were learned from

    def candidates(self, docs: list[Doc]) -> CandidateSet:
        return CandidateSet(docs, self.lexical)

    # -- the score ---------------------------------------------------------

    def signals(self, profile: RadarProfile, candidates: CandidateSet | list[Doc], *, today: date | None = None) -> dict[str, np.ndarray]:
        cs = candidates if isinstance(candidates, CandidateSet) else self.candidates(candidates)
        n = len(cs)
        out: dict[str, np.ndarray] = {}
        positives = profile.positives
        pos_emb = _embedding_matrix(positives) if positives else None
        if cs.emb is not None:
            # One pass over the embedding matrix for every dense signal: the positives, the learned
            # direction and the statement are columns of one product (memory bandwidth is the cost).
            columns, names = [], []
            if pos_emb is not None and len(pos_emb):
                coef, intercept = self._learned_direction(cs.emb, pos_emb, _embedding_matrix(profile.dismissed))
                columns += [pos_emb.T, coef[:, None]]
                names += ["positives", "learned"]
            if profile.interest_embedding is not None:
                columns.append(_unit(profile.interest_embedding.astype(np.float32))[:, None])
                names.append("statement")
            if columns:
                product = cs.emb @ np.hstack(columns).astype(np.float32)
                at = 0
                for name in names:
                    if name == "positives":
                        sims = product[:, at : at + len(pos_emb)]
                        at += len(pos_emb)
                        centroid_norm = np.linalg.norm(pos_emb.mean(axis=0)) or 1.0
                        out["dense_centroid"] = sims.mean(axis=1) / centroid_norm
                        k = min(NEAREST, sims.shape[1])
                        nearest = sims if k == sims.shape[1] else np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
                        out["dense_nearest"] = nearest.mean(axis=1)
                        out["_pos_sims"] = sims
                    elif name == "learned":
                        out["learned"] = product[:, at] + intercept
                        at += 1
                    else:
                        out["dense_statement"] = product[:, at]
                        at += 1

        if positives:
            out.update(self._affinities(positives, cs))
        if today is not None:
            out["recency"] = np.exp(-np.clip(cs.ages(today), 0, None) / RECENCY_DAYS)
        out["_rules"] = self._rules(profile, cs)

        statement_text = " ".join(filter(None, [profile.interest or "", *profile.keywords]))
        if (positives or statement_text) and n:
            # With embeddings, the lexical pass runs on the head of a first ranking only: a sparse
            # product over every candidate would cost more than everything else together.
            rows = None
            if cs.emb is not None and n > LEXICAL_HEAD:
                provisional = self.score(out)
                rows = np.argpartition(-provisional, LEXICAL_HEAD)[:LEXICAL_HEAD]
            matrix = cs.matrix if rows is None else cs.matrix[rows]
            extra = cs.vectors([d.text for d in positives] + ([statement_text] if statement_text else []))
            queries = []
            if positives:
                centroid = np.asarray(extra[: len(positives)].mean(axis=0)).ravel()
                norm = np.linalg.norm(centroid)
                if norm:
                    queries.append(("lexical_centroid", centroid / norm))
                if cs.emb is None:
                    out["_pos_sims"] = (cs.matrix @ extra[: len(positives)].T).toarray()
            if statement_text:
                queries.append(("lexical_statement", extra[len(positives)].toarray().ravel()))
            if queries:
                values = matrix @ np.column_stack([q for _, q in queries])
                for j, (name, _) in enumerate(queries):
                    if rows is None:
                        out[name] = values[:, j]
                    else:
                        full = np.full(n, values[:, j].min() if len(values) else 0.0)
                        full[rows] = values[:, j]
                        out[name] = full
        for key in list(out):
            if not key.startswith("_") and np.shape(out[key]) != (n,):
                out[key] = np.asarray(out[key]).reshape(n)
        return out

    @staticmethod
    def _affinities(positives: list[Doc], cs: CandidateSet) -> dict[str, np.ndarray]:
        """What the positives share besides their text: their arXiv categories (primary counts
        double), venues and authors. A radar seeded with cs.CL papers leans to cs.CL."""
        n_pos = len(positives)
        out = {}
        category = np.zeros(len(cs))
        for d in positives:
            for j, code in enumerate(d.categories):
                weight = (1.0 if j == 0 else 0.5) / n_pos
                category[cs.category_rows.get(code, _EMPTY)] += weight * 0.5
                category[cs.primary_rows.get(code, _EMPTY)] += weight * 0.5
        if category.any():
            out["category_affinity"] = category
        venue = np.zeros(len(cs))
        author = np.zeros(len(cs))
        for d in positives:
            if d.venue:
                venue[cs.venue_rows.get(_folded(d.venue), _EMPTY)] += 1.0 / n_pos
            for key in d.author_keys:
                author[cs.author_rows.get(key, _EMPTY)] += 1.0 / n_pos
        if venue.any():
            out["venue_affinity"] = venue
        if author.any():
            out["author_affinity"] = author
        return out

    def _learned_direction(self, emb: np.ndarray, pos: np.ndarray, dismissed: np.ndarray | None) -> tuple[np.ndarray, float]:
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(self.seed)
        sample = emb[rng.choice(len(emb), size=min(NEGATIVES, len(emb)), replace=False)]
        negatives = sample if dismissed is None or not len(dismissed) else np.vstack([sample, dismissed, dismissed])
        x = np.vstack([pos, negatives])
        y = np.concatenate([np.ones(len(pos)), np.zeros(len(negatives))])
        key = (pos.shape, float(pos.sum()), None if dismissed is None else float(dismissed.sum()), len(emb))
        cached = self._models.get(key)
        if cached is None:
            # A loose tolerance: the ranking, not the probabilities, is what is used (measured on the
            # Categories benchmark: no loss against a tight fit, a third of the time).
            model = LogisticRegression(C=1.0, class_weight="balanced", tol=1e-2, max_iter=100)
            model.fit(x, y)
            cached = (model.coef_[0].astype(np.float32), float(model.intercept_[0]))
            if len(self._models) > 64:
                self._models.clear()
            self._models[key] = cached
        return cached

    def _rules(self, profile: RadarProfile, cs: CandidateSet) -> np.ndarray:
        """Rule bonuses by index look-up; keyword rules use the hashed terms here and are checked
        against the exact phrase for the papers that end up near the top (see `rank`)."""
        w = self.weights
        bonus = np.zeros(len(cs))
        for key in profile.authors:
            bonus[cs.author_rows.get(key, _EMPTY)] += w["author"]
        for key in profile.muted_authors:
            bonus[cs.author_rows.get(key, _EMPTY)] += w["muted_author"]
        for key in profile.less_authors:
            bonus[cs.author_rows.get(key, _EMPTY)] += w["less_author"]
        if profile.categories:
            primary = np.zeros(len(cs), dtype=bool)
            listed = np.zeros(len(cs), dtype=bool)
            for code in profile.categories:
                primary[cs.primary_rows.get(code, _EMPTY)] = True
                listed[cs.category_rows.get(code, _EMPTY)] = True
            bonus += np.where(primary, w["category_primary"], np.where(listed, w["category_cross"], 0.0))
        for venue in profile.venues:
            bonus[cs.venue_rows.get(_folded(venue), _EMPTY)] += w["venue"]
        for keyword in profile.keywords:
            bonus[cs.rows_with_terms(keyword)] += w["keyword"]
        for phrase in profile.excludes:
            bonus[cs.rows_with_terms(phrase)] += w["exclude_abstract"]
        for phrase in profile.less_topics:
            bonus[cs.rows_with_terms(phrase)] += w["less_topic"]
        return bonus

    def _exact_phrase_fix(self, profile: RadarProfile, cs: CandidateSet, rows: np.ndarray, scores: np.ndarray) -> None:
        """Hashed terms are a first pass; for the rows that matter, the exact phrase decides."""
        w = self.weights
        checks = [
            (_folded(phrase), weight, set(cs.rows_with_terms(phrase).tolist()))
            for phrases, weight in ((profile.keywords, w["keyword"]), (profile.excludes, w["exclude_abstract"]),
                                    (profile.less_topics, w["less_topic"]))
            for phrase in phrases
        ]
        for i in rows:
            text = cs.folded_text(int(i))
            for phrase, weight, hashed_rows in checks:
                exact = bool(phrase) and phrase in text
                hashed = int(i) in hashed_rows
                if exact != hashed:
                    scores[i] += weight if exact else -weight

    def score(self, signals: dict[str, np.ndarray]) -> np.ndarray:
        n = len(signals["_rules"])
        total = np.zeros(n)
        for name, values in signals.items():
            if name.startswith("_"):
                continue
            total += self.weights.get(name, 0.0) * _zscore(values.astype(float))
        return total + signals["_rules"]

    # -- the public face ---------------------------------------------------

    def rank_ids(self, profile: RadarProfile, candidates: CandidateSet | list[Doc], *, today: date | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), best first; excluded and dismissed papers left out."""
        ranking = self.rank(profile, candidates, today=today, explain=0)
        return ranking.ids, ranking.scores

    def rank(self, profile: RadarProfile, candidates: CandidateSet | list[Doc], *, today: date | None = None,
             explain: int = 50, exclude: set[int] | None = None, top: int | None = None) -> Ranking:
        cs = candidates if isinstance(candidates, CandidateSet) else self.candidates(candidates)
        if not len(cs):
            return Ranking(np.array([], dtype=np.int64), np.array([]), {}, {})
        signals = self.signals(profile, cs, today=today)
        scores = self.score(signals)
        drop = {d.id for d in profile.positives} | {d.id for d in profile.dismissed} | (exclude or set())
        keep = np.ones(len(cs), dtype=bool)
        for pid in drop:
            i = cs.position.get(pid)
            if i is not None:
                keep[i] = False
        if profile.excludes:
            for phrase in profile.excludes:  # an excluded phrase in a title removes the paper
                folded = _folded(phrase)
                for i in cs.rows_with_terms(phrase):
                    if folded and folded in cs.folded_title(int(i)):
                        keep[i] = False
        idx = np.flatnonzero(keep)
        if profile.keywords or profile.excludes or profile.less_topics:
            limit = min(len(idx), max(EXACT_HEAD, (top or 0) * 3))
            head = idx[np.argpartition(-scores[idx], limit - 1)[:limit]] if limit < len(idx) else idx
            self._exact_phrase_fix(profile, cs, head, scores)
        if top is not None and top < len(idx):
            part = idx[np.argpartition(-scores[idx], top)[:top]]
            order = part[np.argsort(-scores[part], kind="stable")]
        else:
            order = idx[np.argsort(-scores[idx], kind="stable")]
        ids = cs.ids[order]
        statement = signals.get("dense_statement", signals.get("lexical_statement"))
        if profile.interest and statement is not None and explain:
            signals["_statement_cut"] = float(np.partition(statement, int(len(statement) * 0.9))[int(len(statement) * 0.9)])
        reasons = {int(cs.ids[i]): self._reasons(profile, cs, int(i), signals) for i in order[:explain]}
        return Ranking(ids, scores[order], reasons, {k: v for k, v in signals.items() if not k.startswith("_")})

    def _reasons(self, profile: RadarProfile, cs: CandidateSet, i: int, signals: dict) -> list[Reason]:
        d = cs.docs[i]
        reasons: list[Reason] = []
        for key in d.author_keys:
            if key in profile.authors:
                reasons.append(Reason("author", profile.authors[key], self.weights["author"]))
        text = cs.folded_text(i)
        for keyword in profile.keywords:
            if keyword and _folded(keyword) in text:
                reasons.append(Reason("keyword", keyword, self.weights["keyword"]))
        sims = signals.get("_pos_sims")
        positives = profile.positives
        if sims is not None and len(positives):
            j = int(np.argmax(sims[i]))
            kind = "seed" if j < len(profile.seeds) else "liked"
            if sims[i, j] > 0.3 or kind == "seed":
                reasons.append(Reason(kind, positives[j].title, float(sims[i, j])))
        if d.categories and set(d.categories) & set(profile.categories):
            shared = [c for c in d.categories if c in profile.categories]
            reasons.append(Reason("category", shared[0], self.weights["category_primary"]))
        if d.venue and profile.venues and _folded(d.venue) in {_folded(v) for v in profile.venues}:
            reasons.append(Reason("venue", d.venue, self.weights["venue"]))
        values = signals.get("dense_statement", signals.get("lexical_statement"))
        if profile.interest and values is not None and values[i] >= signals.get("_statement_cut", np.inf):
            reasons.append(Reason("statement", profile.interest, float(values[i])))
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
