"""The radar ranker: a few interest signals fused in one score that explains itself, placed by
what the user said explicitly.

Peers each use one signal (arxiv-sanity-lite: a TF-IDF SVM; zotero-arxiv-daily: mean cosine to a
library; Scholar Inbox: a logistic regression on embeddings). Here each signal is computed for every
candidate, standardised (z-scores over the candidates, so no signal dominates by its scale), and
summed with weights chosen out of fold on the relevance benchmark's `store` protocol
(docs/design.md, Ranking weights); a signal at weight 0 is not computed:

- dense: cosine of the candidate's embedding to the positives (seeds, likes) and to the interest
  statement, and propagation from the positives over a nearest-neighbour graph of every candidate;
- lexical: arxiv-sanity-lite's SVM on hashed TF-IDF, and the statement's TF-IDF cosine;
- affinities: what the positives share besides text (venues; categories, authors, era);
- rules: categories, venues and keywords lift, in standard deviations;
- tiers (`_tiers`): a followed author's paper and a followed keyword in a title first; an excluded
  phrase, "less of this author/topic" last; muted authors, dismissed papers and title exclusions out.

Every ranker returns `(ids, scores)` (arxiv-sanity-lite's convention); `rank()` adds the reasons."""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from ..names import fold
from .ranker_types import Doc, RadarProfile, Reason

from .candidates import CandidateSet, HeadView
from .neighbours import SEARCH_BREADTH

_EMPTY = np.array([], dtype=np.int64)

__all__ = ["Doc", "RadarProfile", "Reason", "Ranker", "Ranking", "LexicalIndex", "mmr"]

# Weights of the standardised signals, chosen out of fold (docs/design.md, Ranking weights).
DEFAULT_WEIGHTS = {
    "dense_centroid": 0.1,
    "dense_nearest": 1.0,
    "dense_statement": 1.0,
    "dense_feedback": 0.0,
    "dense_graph": 0.0,
    "dense_propagation": 4.0,
    "lexical_centroid": 0.0,
    "lexical_nearest": 0.0,
    "lexical_learned": 0.1,
    "lexical_statement": 0.6,
    "lexical_feedback": 0.0,
    "learned": 0.0,
    "recency": 0.0,
    "category_affinity": 0.0,
    "venue_affinity": 0.25,
    "author_affinity": 0.0,
    "era_affinity": 0.0,
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
# A radar that holds only a statement (no seeds, likes or keywords) has one query and nothing to
# learn from: its first ranking's head becomes the feedback query and the graph's source, and the
# statement itself (noisy when short, or Chinese carried into English terms) counts less.
STATEMENT_ONLY_WEIGHTS = {"dense_feedback": 2.0, "dense_graph": 2.0, "lexical_statement": 0.2}
# Without embeddings (the extra not installed, nothing embedded yet) the text carries the positives:
# arxiv-sanity-lite's SVM on the hashed TF-IDF, and what the positives share besides their text.
TEXT_ONLY_WEIGHTS = {"lexical_centroid": 0.1, "lexical_learned": 4.0, "venue_affinity": 0.5, "author_affinity": 0.25,
                     "era_affinity": 0.25}
# the signals learned from the positives (seeds, likes): on a statement-led radar they are weighed
# by how many likes it has (`Ranker.weights_for`)
POSITIVE_SIGNALS = ("dense_centroid", "dense_nearest", "dense_propagation", "lexical_centroid", "lexical_nearest",
                    "lexical_learned", "learned", "category_affinity", "venue_affinity", "author_affinity",
                    "era_affinity")
LIKES_TO_LEARN = 16  # likes at which a statement-led radar weighs them half as much as seeds
LEXICAL_HEAD = 2000  # with embeddings, the positives' lexical signals are computed for this many leading candidates (the statement's: for every one)
DENSE_KEPT_BYTES = 256 * 2**20  # per candidate set: the dense query blocks kept (50,000 candidates: ~20 radars of 10 seeds)
EXACT_HEAD = 300  # rows whose keyword matches are checked against the exact phrase
NEAREST = 3  # the nearest-k positives whose mean similarity is the "nearest" signal
NEGATIVES = 400  # random candidates sampled as negatives for the learned model
LEXICAL_C = 0.1  # the lexical learned model: arxiv-sanity-lite's SVM (C, balanced classes)
LEXICAL_NEGATIVES = 1000  # random candidates it is fitted against
RECENCY_DAYS = 30.0
ERA_DAYS = 365.0  # the scale of era_affinity: a paper a year away from a positive counts e^-1
FEEDBACK_K = 10  # the top papers of the first score whose centroid is the feedback query
GRAPH_HEAD = 500  # the leading candidates of the first score that form the similarity graph
GRAPH_K = 4  # each node's nearest neighbours in that graph (sparse: 3-5 beat 10-20 on every dataset)
GRAPH_ALPHA = 0.85  # the share of a node's score that comes from its neighbours (1 - restart)
GRAPH_ITERATIONS = 10
PROPAGATION_K = 5  # each candidate's nearest candidates in the graph of every candidate
PROPAGATION_ALPHA = 0.95  # the share of a node's score that comes from its neighbours
PROPAGATION_STEPS = 20
TIER_GAP = 1e6  # between tiers: larger than any fused score
KTH_TOLERANCE = 1e-5  # float32 cosines of one pair computed two ways (the graph, the positives' product) differ by ~1e-7
PROPAGATION_CAP = 0.95  # the signal is capped at this quantile: it sorts the depth, not the top
# candidates above which a first stage picks the head: off (None) until a like's head holds 95% of
# the full ranking's top 100 (0.92-0.96 at 1,000,000 with the likes' walk over the whole graph:
# docs/design.md, A like at a million); the relevance libraries hold < 20,000 candidates, so any
# threshold above that leaves the relevance benchmark as it is
TWO_STAGE_MIN: int | None = None
HEAD_SIZE = 5_000  # the head's rows led by the statement and the rules (plus each positive's nearest, the rule matches, the reference)
POSITIVE_HEAD = 1_000  # each positive's nearest candidates in the head
ENTRY_NEAREST = 16  # of them, from the nearest-neighbour index; the rest, their neighbours in the graph, hop by hop
LIKE_LINK_ROWS = 256  # a like's nearest candidates in the head: where it joins the graph (a candidate links to it up to its ~250th nearest at 200,000)
LIKE_LINK_BREADTH = 1.0  # their index search's width per row asked (the default 3 cost a like 20% more and moved no top 100 paper at 1,000,000)
HEAD_VIEWS_KEPT = 4  # heads kept per candidate set (a radar ranked again reads its own back)
NEAREST_KEPT = 4096  # positives whose nearest candidates are kept per candidate set
LIKE_WALK_ROWS = 50_000  # the region around the likes over which their walk is computed (`local_walk`)
REFERENCE_ROWS = 10_000  # a fixed random sample of the candidates, always in the head: the z-scores' means and deviations


@dataclass(slots=True)
class Ranking:
    ids: np.ndarray
    scores: np.ndarray
    reasons: dict[int, list[Reason]]
    signals: dict[str, np.ndarray]  # per candidate, in candidate order (for "what the radar learned")
    tiers: np.ndarray | None = None  # per ranked paper: 1 what the user asked for, 0, -1 what they turned down


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


def _zscore(values: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Standardised values; `reference`: the rows whose mean and deviation stand for every
    candidate's (a head's random sample of the whole set, `HeadView.reference`)."""
    sample = values if reference is None else values[reference]
    std = sample.std()
    if not np.isfinite(std) or std < 1e-12:
        return np.zeros_like(values)
    return (values - sample.mean()) / std


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


# ----------------------------------------------------------------------------- the ranker


class Ranker:
    def __init__(self, weights: dict[str, float] | None = None, *, seed: int = 0, lexical: LexicalIndex | None = None,
                 two_stage_min: int | None = None, head_size: int | None = None, positive_head: int | None = None,
                 reference_rows: int | None = None, like_walk_rows: int | None = None):
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        # above this many candidates a first stage picks the head that is scored (`_head_view`); None: never
        self.two_stage_min = TWO_STAGE_MIN if two_stage_min is None else two_stage_min
        self.head_size = HEAD_SIZE if head_size is None else head_size
        self.positive_head = POSITIVE_HEAD if positive_head is None else positive_head
        self.reference_rows = REFERENCE_ROWS if reference_rows is None else reference_rows
        self.like_walk_rows = LIKE_WALK_ROWS if like_walk_rows is None else like_walk_rows
        self._overrides = set(weights or {})  # explicit weights win over the statement-only mix
        self.seed = seed
        self.lexical = lexical or LexicalIndex()
        self._models: dict = {}  # per-radar learned models, keyed by what they were learned from
        # per candidate set (dropped with it): the dense query blocks' results (`_dense_blocks`)
        self._per_candidates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def candidates(self, docs: list[Doc]) -> CandidateSet:
        return CandidateSet(docs, self.lexical)

    # -- the score ---------------------------------------------------------

    def signals(self, profile: RadarProfile, candidates: CandidateSet | list[Doc], *, today: date | None = None) -> dict[str, np.ndarray]:
        cs = candidates if isinstance(candidates, CandidateSet) else self.candidates(candidates)
        n = len(cs)
        out: dict[str, np.ndarray] = {}
        positives = profile.positives
        weights = self.weights_for(profile, embeddings=cs.emb is not None)
        reference = cs.reference if isinstance(cs, HeadView) else None
        out["_reference"] = reference
        pos_emb = _embedding_matrix(positives) if positives else None
        # the lexical model first: new positives fit it on another thread meanwhile
        lexical_learned = self._lexical_scores(cs, positives) if positives and n and weights.get("lexical_learned") else None
        centre = None
        if cs.emb is not None:
            # Cosines are taken about the candidates' mean (the direction every abstract shares),
            # so that what a paper has in common with all the others does not count as a match.
            centre = cs.centre
            if pos_emb is not None:
                pos_emb = _centred(pos_emb, centre)
            out["_centre"] = centre
            out["_pos_centred"] = pos_emb
            # One pass over the embedding matrix for every dense signal: the positives, the learned
            # direction, the statement and the centre are columns of one product (memory
            # bandwidth is the cost); the centred cosines follow from it row by row. What a query
            # block yields is kept per candidate set (`_dense_blocks`): a radar ranked again with
            # the same positives and statement (a dismissal, a rule, the next page) reads it back.
            blocks: list[tuple[str, np.ndarray, float]] = []
            if pos_emb is not None and len(pos_emb):
                blocks.append(("positives", pos_emb, 0.0))
                if weights.get("learned"):
                    coef, intercept = self._learned_direction(cs.whole.emb, pos_emb,
                                                              _embedding_matrix(profile.dismissed), centre)
                    blocks.append(("learned", coef[None, :], intercept))
            if profile.interest_embedding is not None:
                statement_q = _centred(_unit(profile.interest_embedding.astype(np.float32))[None, :], centre)[0]
                blocks.append(("statement", statement_q[None, :], 0.0))
            if blocks:
                found = self._dense_blocks(cs, centre, blocks)
                out["_inverse_norm"] = found["_inverse_norm"]
                for name, _, _ in blocks:
                    values = found[name]
                    if name == "positives":
                        out.update(dense_centroid=values["dense_centroid"], dense_nearest=values["dense_nearest"],
                                   _pos_sims=values["sims"], _positives_block=values)
                    else:
                        out["learned" if name == "learned" else "dense_statement"] = values

        if positives:
            out.update({k: v for k, v in self._affinities(positives, cs, weights).items() if weights.get(k)})
        if today is not None:
            out["recency"] = np.exp(-np.clip(cs.ages(today), 0, None) / RECENCY_DAYS)
        out["_rules"] = self._rules(profile, cs)

        statement_text = " ".join(filter(None, [profile.interest or "", *profile.keywords]))
        out["_weights"] = weights
        if "_pos_sims" in out and weights.get("dense_propagation"):
            graph = cs.whole.neighbour_graph(PROPAGATION_K)  # (a head's propagation walks its parent's graph)
            block = out.get("_positives_block")
            kept = block.get("propagation") if block is not None else None
            if kept is not None and kept[0] is graph:  # the same positives over the same graph
                propagation = kept[1]
            elif isinstance(cs, HeadView):
                propagation = self._head_propagation(profile, cs, graph, out["_pos_sims"],
                                                     None if block is None else block["nearest_rows"])
            else:
                propagation = propagate(graph, out["_pos_sims"], None if block is None else block["nearest_rows"])
                if propagation is not None:
                    propagation = _read_only_array(propagation)
            if propagation is not None and block is not None:
                block["propagation"] = (graph, propagation)
            if propagation is not None:
                out["dense_propagation"] = propagation
        out["_z"] = {}
        out["_kept"] = self._per_candidates.get(cs)  # (kept signals' z-scores are kept there too)
        if lexical_learned is not None:
            # arxiv-sanity-lite's SVM over every candidate: one sparse product, cheap at any size
            out["lexical_learned"] = lexical_learned.result() if isinstance(lexical_learned, Future) else lexical_learned
        rows = None
        lexical = cs.emb is None or any(weights.get(k) for k in ("lexical_centroid", "lexical_nearest", "lexical_statement"))
        if (positives or statement_text) and n and lexical:
            # With embeddings, the lexical pass runs on the head of a first ranking only: a sparse
            # product over every candidate would cost more than everything else together.
            if cs.emb is not None and n > LEXICAL_HEAD:
                provisional = self.score(out)
                rows = np.argpartition(-provisional, LEXICAL_HEAD)[:LEXICAL_HEAD]
            # The positives' lexical signals on a head, at weight 0 (with embeddings, by default),
            # are not computed: their queries and head rows cost a like more than its SVM.
            positive_lexical = bool(positives) and (rows is None or any(
                weights.get(k) for k in ("lexical_centroid", "lexical_nearest")))
            if positive_lexical or rows is None:
                queries, centroid_norm = self._lexical_queries(cs, [d.text for d in positives], statement_text)
                # One sparse product for every lexical query: the positives one by one (their mean is
                # the centroid's cosine up to its norm, their top few the nearest) and the statement.
                sims = self._lexical_sims(cs, queries, rows)
                if positives:
                    pos_sims = sims[:, : len(positives)]
                    norm = centroid_norm
                    if norm:
                        out["lexical_centroid"] = _spread(pos_sims.mean(axis=1) / norm, rows, n)
                    if cs.emb is None:
                        out["_pos_sims"] = pos_sims
                    k = min(NEAREST, pos_sims.shape[1])
                    nearest = pos_sims if k == pos_sims.shape[1] else np.partition(pos_sims, pos_sims.shape[1] - k, axis=1)[:, -k:]
                    out["lexical_nearest"] = _spread(nearest.mean(axis=1), rows, n)
            if statement_text:
                # over every candidate, not the head: a head's z-scores are not the full ranking's
                # (it moved 3 of the top 20 on a real library, tests/test_rank_reuse.py)
                out["lexical_statement"] = sims[:, len(positives)] if rows is None else self._lexical_column(cs, statement_text)
        if n and (positives or statement_text):
            # a statement-led radar's likes reach the graph through the first score only (weighed
            # as above), not as sources of their own
            graph_sources = None if _statement_led(profile) else out.get("_pos_centred")
            matrix = cs.matrix if weights.get("lexical_feedback") else None  # (a head's is sliced on first use)
            out.update(head_signals(weights, self.score(out), cs.emb, matrix, rows, centre, graph_sources,
                                    out.get("_inverse_norm")))
        for key in list(out):
            if not key.startswith("_") and np.shape(out[key]) != (n,):
                out[key] = np.asarray(out[key]).reshape(n)
        return out

    def weights_for(self, profile: RadarProfile, embeddings: bool = True) -> dict[str, float]:
        """The weights for what the radar holds. Without embeddings, the text's own mix. A radar
        led by its statement (no seeds, no keywords) gets the statement's mix; its likes count for
        n / (n + LIKES_TO_LEARN) of what seeds would, so one like nudges the ranking and many
        take it over gradually."""
        weights = self.weights
        if not embeddings:
            weights = {**weights, **{k: v for k, v in TEXT_ONLY_WEIGHTS.items() if k not in self._overrides}}
        if not _statement_led(profile):
            return weights
        weights = {**weights, **{k: v for k, v in STATEMENT_ONLY_WEIGHTS.items() if k not in self._overrides}}
        if profile.liked:
            share = len(profile.liked) / (len(profile.liked) + LIKES_TO_LEARN)
            weights.update({k: weights.get(k, 0.0) * share for k in POSITIVE_SIGNALS})
        return weights

    def _dense_blocks(self, cs: CandidateSet, centre: np.ndarray, blocks: list[tuple[str, np.ndarray, float]]) -> dict:
        """Per query block (name, centred unit rows, intercept), what it yields over every
        candidate: the positives' centred cosines with their centroid and nearest signals, the
        learned score, the statement's cosine; and the candidates' inverse centred norms. Blocks
        already computed for this candidate set are read back. A positives block is assembled from
        one column per positive, each kept on its own: a like or a new seed costs the product with
        its own row only (a matrix-vector product: the same rounding however the block was made).
        Kept per candidate set, bounded by bytes."""
        kept = self._per_candidates.get(cs)
        if kept is None:
            kept = self._per_candidates[cs] = {}
        out: dict = {}
        missing = []
        for name, rows, intercept in blocks:
            key = (name, rows.shape, _digest(rows, intercept))
            if key in kept:
                kept[key] = kept.pop(key)  # most recently used last
                out[name] = kept[key]
            else:
                missing.append((name, rows, intercept, key))
        inverse_norm = kept.get("_inverse_norm")
        if inverse_norm is None:
            # x' = (x - c) / |x - c| for unit rows x: x'.q = (x.q - c.q) / sqrt(1 - 2 x.c + c.c)
            inverse_norm = kept["_inverse_norm"] = _read_only_array(
                1.0 / np.sqrt(np.maximum(1.0 - 2.0 * (cs.emb @ centre) + float(centre @ centre), 1e-12)))
        for name, rows, intercept, key in missing:
            if name == "positives":
                if isinstance(cs, HeadView):  # a head is made for one ranking's positives: one product for all
                    block = (cs.emb @ rows.T - (centre @ rows.T)[None, :]) * inverse_norm[:, None]
                    k = min(PROPAGATION_K, len(cs))
                    columns = [(block[:, j], np.argpartition(-block[:, j], k - 1)[:k]) for j in range(len(rows))]
                else:
                    columns = [self._positive_column(cs, kept, row, centre, inverse_norm) for row in rows]
                sims = np.column_stack([c[0] for c in columns])
                centroid_norm = np.linalg.norm(rows.mean(axis=0)) or 1.0
                k = min(NEAREST, sims.shape[1])
                nearest = sims if k == sims.shape[1] else np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
                # row means as matrix-vector products (numpy's mean along a short row costs 10x)
                value = {"sims": _read_only_array(sims), "nearest_rows": np.stack([c[1] for c in columns]),
                         "dense_centroid": _read_only_array(sims @ np.full(len(rows), 1.0 / len(rows), dtype=np.float32)
                                                            / np.float32(centroid_norm)),
                         "dense_nearest": _read_only_array(nearest @ np.full(k, 1.0 / k, dtype=np.float32))}
            else:
                value = _read_only_array((cs.emb @ rows[0] - float(rows[0] @ centre)) * inverse_norm + intercept)
            out[name] = kept[key] = value
        if missing:
            _bound_kept(kept, DENSE_KEPT_BYTES)
        out["_inverse_norm"] = inverse_norm
        return out

    @staticmethod
    def _positive_column(cs: CandidateSet, kept: dict, row: np.ndarray, centre: np.ndarray,
                         inverse_norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One positive's centred cosine to every candidate and its PROPAGATION_K nearest rows
        (where it joins the neighbour graph), kept per candidate set under its row's digest."""
        key = ("positive", _digest(row[None, :], 0.0))
        found = kept.get(key)
        if found is None:
            column = _read_only_array((cs.emb @ row - float(row @ centre)) * inverse_norm)
            k = min(PROPAGATION_K, len(column))
            found = kept[key] = (column, np.argpartition(-column, k - 1)[:k])
        else:
            kept[key] = kept.pop(key)
        return found

    def _lexical_sims(self, cs: CandidateSet, queries, rows: np.ndarray | None) -> np.ndarray:
        """The lexical queries' cosines for `rows` (None: every candidate). A head's rows are
        remembered per candidate set and queries, so ranking the radar again computes only the
        rows new to its head."""
        if rows is None:
            return (cs.matrix @ queries).toarray()
        kept = self._per_candidates.get(cs)
        if kept is None:
            kept = self._per_candidates[cs] = {}
        key = ("lexical", id(queries))
        entry = kept.get(key)
        if entry is None or entry[0] is not queries:
            entry = kept[key] = (queries, np.full((len(cs), queries.shape[1]), np.nan))
            _bound_kept(kept, DENSE_KEPT_BYTES)
        memo = entry[1]
        todo = rows[np.isnan(memo[rows, 0])]
        if len(todo):
            memo[todo] = (cs.matrix[todo] @ queries).toarray()
        return memo[rows]

    def _lexical_column(self, cs: CandidateSet, text: str) -> np.ndarray:
        """The TF-IDF cosine of every candidate to one text (one sparse product), kept per
        candidate set like the dense blocks."""
        kept = self._per_candidates.get(cs)
        if kept is None:
            kept = self._per_candidates[cs] = {}
        key = ("lexical-column", text)
        column = kept.get(key)
        if column is None:
            if isinstance(cs, HeadView):  # the whole set's column (kept there), read at the head's rows
                column = kept[key] = _read_only_array(self._lexical_column(cs.parent, text)[cs.rows])
            else:
                query = np.asarray(cs.vectors([text]).toarray(), dtype=np.float64).ravel()
                column = kept[key] = _read_only_array(np.asarray(cs.matrix @ query).ravel())
            _bound_kept(kept, DENSE_KEPT_BYTES)
        return column

    def _lexical_queries(self, cs: CandidateSet, positive_texts: list[str], statement_text: str):
        """The radar's lexical queries (positives, then the statement) as the columns of a CSR
        matrix, and the norm of the positives' centroid: kept with the candidates' query vectors,
        since transposing 2^18 hashed columns costs more than the product itself."""
        extra = cs.vectors(positive_texts + ([statement_text] if statement_text else []))
        key = ("lexical-queries", id(extra))
        cached = self._models.get(key)
        if cached is None or cached[0] is not extra:
            pos_vectors = extra[: len(positive_texts)]
            norm = float(np.linalg.norm(np.asarray(pos_vectors.mean(axis=0)).ravel())) if positive_texts else 0.0
            cached = self._remember_model(key, (extra, extra.T.tocsr(), norm))
        return cached[1], cached[2]

    def _lexical_scores(self, cs: CandidateSet, positives: list[Doc]) -> np.ndarray | Future:
        """The SVM's score of every candidate, kept with the model: the next batch of the same
        radar over the same candidates costs nothing here. New positives (a like): a future of
        the scores, fitted on another thread (liblinear and the sparse product release the GIL)
        while this one computes the dense signals and the propagation: the second core's share."""
        pos_vectors = self._tfidf_rows(cs, [d.text for d in positives])
        # (a head by its rows, not its matrix: the head's matrix is sliced on the fitting thread)
        key = ("lexical-scores", getattr(cs, "digest", id(cs)), len(cs), pos_vectors.shape, float(pos_vectors.sum()))
        cached = self._models.get(key)
        if cached is not None:
            return cached
        return _lexical_fits().submit(self._fit_lexical_scores, cs, pos_vectors, {d.id for d in positives}, key)

    def _fit_lexical_scores(self, cs: CandidateSet, pos_vectors, positive_ids: set[int], key: tuple) -> np.ndarray:
        coef = self._lexical_direction(cs, pos_vectors, positive_ids)
        return self._remember_model(key, _read_only_array(np.asarray(cs.matrix @ coef).ravel()))

    def _tfidf_rows(self, cs: CandidateSet, texts: list[str]):
        """The texts' TF-IDF rows (`CandidateSet.vectors`, row by row: each row is weighed and
        normalised on its own), each kept per candidate set: a like vectorises its own text only."""
        from scipy import sparse

        cs = cs.whole  # (a head's are the whole set's: the same idf)
        kept = self._per_candidates.get(cs)
        if kept is None:
            kept = self._per_candidates[cs] = {}
        rows = []
        for text in texts:
            key = ("tfidf", text)
            row = kept.get(key)
            if row is None:
                row = kept[key] = cs.lexical.weigh(cs.lexical.counts([text]), cs.idf)
            rows.append(row)
        return sparse.vstack(rows, format="csr") if rows else cs.vectors(texts)

    def _lexical_direction(self, cs: CandidateSet, pos_vectors, positive_ids: set[int]) -> np.ndarray:
        """arxiv-sanity-lite's recipe on the hashed TF-IDF vectors: a linear SVM, the positives
        against a random sample of the candidates, balanced classes; cached like the dense model."""
        from scipy import sparse
        from sklearn.svm import LinearSVC

        cs = cs.whole  # a head's model is the whole set's (its negatives drawn from every candidate)
        key = ("lexical", pos_vectors.shape, float(pos_vectors.sum()), cs.matrix.shape, float(cs.matrix[:50].sum()))
        cached = self._models.get(key)
        if cached is None:
            rng = np.random.default_rng(self.seed)
            pool = np.flatnonzero(~np.isin(cs.ids, list(positive_ids)))
            if len(pool) == 0:  # every candidate is a positive: nothing to tell them from, no signal
                return np.zeros(cs.matrix.shape[1], dtype=np.float32)
            sample = rng.choice(pool, size=min(LEXICAL_NEGATIVES, len(pool)), replace=False)
            x = sparse.vstack([pos_vectors, cs.matrix[np.sort(sample)]]).tocsr()
            y = np.r_[np.ones(pos_vectors.shape[0]), np.zeros(len(sample))]
            model = LinearSVC(C=LEXICAL_C, class_weight="balanced", tol=1e-4, max_iter=1000, random_state=self.seed)
            model.fit(x, y)
            cached = self._remember_model(key, model.coef_[0].astype(np.float32))
        return cached

    @staticmethod
    def _affinities(positives: list[Doc], cs: CandidateSet, weights: dict[str, float]) -> dict[str, np.ndarray]:
        """What the positives share besides their text: their arXiv categories (primary counts
        double), venues, authors and era. A radar seeded with cs.CL papers leans to cs.CL; one
        seeded with a library read in 2012-2016 leans to papers of those years when it ranks a
        store that spans decades (a day's feed has one date: the signal is then absent)."""
        n_pos = len(positives)
        out = {}
        if weights.get("category_affinity"):  # (the index of an arXiv archive's category holds most of a store)
            category = np.zeros(len(cs))
            for d in positives:
                for j, code in enumerate(d.categories):
                    weight = (1.0 if j == 0 else 0.5) / n_pos
                    category[cs.category_rows.get(code, _EMPTY)] += weight * 0.5
                    category[cs.primary_rows.get(code, _EMPTY)] += weight * 0.5
            if category.any():
                out["category_affinity"] = category
        if weights.get("venue_affinity"):
            venue = np.zeros(len(cs))
            for d in positives:
                if d.venue:
                    venue[cs.venue_rows.get(_folded(d.venue), _EMPTY)] += 1.0 / n_pos
            if venue.any():
                out["venue_affinity"] = venue
        if weights.get("author_affinity"):
            author = np.zeros(len(cs), dtype=bool)
            for d in positives:
                for key in d.author_keys:
                    author[cs.author_rows.get(key, _EMPTY)] = True
            if author.any():
                out["author_affinity"] = author.astype(float)  # shares an author with a positive
        era = cs.era_affinity([d.day for d in positives if d.day], ERA_DAYS) if weights.get("era_affinity") else None
        if era is not None:
            out["era_affinity"] = era
        return out

    def _learned_direction(self, emb: np.ndarray, pos: np.ndarray, dismissed: np.ndarray | None,
                           centre: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """Scholar Inbox's recipe (positives against dismissals and random candidates), on the
        centred embeddings when `centre` is given (`pos` is then already centred)."""
        from sklearn.linear_model import LogisticRegression

        key = (pos.shape, float(pos.sum()), None if dismissed is None else float(dismissed.sum()), len(emb),
               None if centre is None else float(centre.sum()))
        cached = self._models.get(key)
        if cached is None:  # what follows runs only when the seeds, feedback or candidates change
            rng = np.random.default_rng(self.seed)
            sample = emb[rng.choice(len(emb), size=min(NEGATIVES, len(emb)), replace=False)]
            if centre is not None:
                sample = _centred(sample, centre)
                dismissed = None if dismissed is None else _centred(dismissed, centre)
            negatives = sample if dismissed is None or not len(dismissed) else np.vstack([sample, dismissed, dismissed])
            x = np.vstack([pos, negatives])
            y = np.concatenate([np.ones(len(pos)), np.zeros(len(negatives))])
            # A loose tolerance: the ranking, not the probabilities, is what is used (measured on the
            # Categories benchmark: no loss against a tight fit, a third of the time).
            model = LogisticRegression(C=1.0, class_weight="balanced", tol=1e-2, max_iter=100, random_state=self.seed)
            model.fit(x, y)
            cached = self._remember_model(key, (model.coef_[0].astype(np.float32), float(model.intercept_[0])))
        return cached

    def _remember_model(self, key: tuple, model):
        """Per-radar models are kept until what they were learned from changes (bounded)."""
        if len(self._models) > 64:
            self._models.clear()
        self._models[key] = model
        return model

    def _rules(self, profile: RadarProfile, cs: CandidateSet) -> np.ndarray:
        """Rule bonuses by index look-up; keyword rules use the hashed terms here and are checked
        against the exact phrase for the papers that end up near the top (see `rank`)."""
        if isinstance(cs, HeadView):
            return self._kept_rules(profile, cs.parent)[cs.rows]
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
            (_folded(phrase), weight, cs.row_set_with_terms(phrase))
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
        weights = signals.get("_weights", self.weights)
        memo = signals.get("_z")  # z-scores already computed in this ranking (the first score, the head)
        total = np.zeros(n)
        for name, values in signals.items():
            if name.startswith("_"):
                continue
            weight = weights.get(name, 0.0)
            if weight:
                cached = memo.get(name) if memo is not None else None
                if cached is None or cached[0] is not values:
                    cached = (values, self._z_of(values, signals.get("_kept"), signals.get("_reference")))
                    if memo is not None:
                        memo[name] = cached
                total += weight * cached[1]
        return total + signals["_rules"]

    @staticmethod
    def _z_of(values: np.ndarray, kept: dict | None, reference: np.ndarray | None = None) -> np.ndarray:
        """A signal's z-scores; a read-only signal's (a kept one: the radar ranked again reads the
        same array back) are kept beside it per candidate set, so a ranking of the same radar does
        not standardise a million rows again (bounded with the blocks, when the next one is made)."""
        if kept is None or values.flags.writeable:
            return _zscore(values.astype(float), reference)
        key = ("z", id(values))
        cached = kept.get(key)
        if cached is not None and cached[0] is values:
            kept[key] = kept.pop(key)
            return cached[1]
        z = kept[key] = (values, _read_only_array(_zscore(values.astype(float), reference)))
        return z[1]

    # -- the first stage over a large candidate set ------------------------

    def _head_view(self, profile: RadarProfile, cs: CandidateSet) -> HeadView:
        """The rows of a large candidate set that the second stage scores: the union of the
        `head_size` candidates the statement and the rules lead, tiers first (their full columns,
        kept per statement and rules: a like does not change them), each positive's
        `positive_head` nearest candidates (its nearest in the store's index, then theirs in the
        graph: where its propagation flows), every paper of a followed author or venue, and a
        fixed random sample of every candidate (`reference_rows`: the z-scores' means and
        deviations, the propagation's cap). A paper outside it would need high positive-led
        signals while being in no positive's neighbourhood: docs/design.md (Ranking at scale)
        measures what that loses. The same rows give the same view back, so a radar ranked again
        reads everything kept."""
        parts = [self._reference(cs), self._led_rows(profile, cs)]  # (a keyword in a title: through the tiers there)
        parts.extend(self._nearest_rows(cs, d) for d in profile.seeds if d.embedding is not None)
        for d in profile.liked:
            if d.embedding is not None:  # a like's one index search gives both its links and its entry rows
                links = self._link_rows(cs, d)
                parts.extend((links, self._nearest_rows(cs, d, links)))
        parts.extend(cs.author_rows.get(key, _EMPTY) for key in profile.authors)
        parts.extend(cs.venue_rows.get(_folded(venue), _EMPTY) for venue in profile.venues)
        rows = np.unique(np.concatenate(parts))
        return cs.kept_for_ranking("view", HEAD_VIEWS_KEPT, hashlib.blake2b(rows.tobytes(), digest_size=16).digest(),
                                   lambda: HeadView(cs, rows, self._reference(cs)))

    def _reference(self, cs: CandidateSet) -> np.ndarray:
        def sample() -> np.ndarray:
            rng = np.random.default_rng(self.seed)
            return _read_only_array(np.sort(rng.choice(len(cs), min(len(cs), self.reference_rows), replace=False)))

        return cs.kept_for_ranking("reference", 4, (self.reference_rows, self.seed), sample)

    def _head_propagation(self, profile: RadarProfile, view: HeadView, graph, pos_sims: np.ndarray,
                          nearest: np.ndarray | None) -> np.ndarray | None:
        """The propagation signal at a head's rows: the seeds' walk over every candidate (one per
        seed set, kept: `_seed_walk`), and the likes' walk over the parent's graph around them
        (`local_walk`), added as the walk's linearity in its restart allows (a like is one more
        source among the positives); the log, and the cap at the reference sample's quantile.
        With seeds only it is the full ranking's signal; with likes it differs from it by the few
        links a like adds to the degrees the seeds' mass flows through (measured: no change to
        the top 100) and by the likes' walk beyond their region, held at its stationary shape.
        A like's walk reaches most of a million candidates within seven hops: confined to the
        head, it lost 5-12 of the full top 100 (docs/design.md, A like at a million)."""
        if graph is None:
            return None
        n_seeds, n_likes = len(profile.seeds), len(profile.liked)
        total = np.zeros(len(view))
        if n_seeds:
            total += n_seeds * self._seed_walk(view.parent, profile.seeds)[view.rows]
        if n_likes:
            likes = np.arange(n_seeds, n_seeds + n_likes)
            # where the likes join the graph: read at the head's rows (it holds each like's
            # neighbourhood, `_nearest_rows`), as the parent's rows
            rows, cols, weights = _positive_links(graph.kth[view.rows], np.ascontiguousarray(pos_sims[:, likes]),
                                                   None if nearest is None else nearest[likes])
            total += n_likes * local_walk(graph, view.rows[rows], cols, weights, n_likes, self.like_walk_rows, view.rows)
        total /= max(1, n_seeds + n_likes)
        values = np.log(total + 1e-7)
        sample = values if view.reference is None else values[view.reference]
        return _read_only_array(np.minimum(values, np.quantile(sample, PROPAGATION_CAP)))

    def _seed_walk(self, cs: CandidateSet, seeds: list[Doc]) -> np.ndarray:
        rows = _centred(_embedding_matrix(seeds), cs.centre)
        graph = cs.neighbour_graph(PROPAGATION_K)
        def seeds_walk() -> np.ndarray:
            block = self._dense_blocks(cs, cs.centre, [("positives", rows, 0.0)])["positives"]
            return _read_only_array(walk(graph, block["sims"], block["nearest_rows"]))

        return cs.kept_for_ranking("seed-walk", 8, (rows.shape, _digest(rows, 0.0), id(graph)), seeds_walk)

    def _kept_rules(self, profile: RadarProfile, cs: CandidateSet) -> np.ndarray:
        """The rules' bonus of every candidate of a whole set, kept per rule set (a head reads its rows)."""
        key = (tuple(sorted(profile.authors)), tuple(profile.muted_authors), tuple(profile.less_authors),
               tuple(profile.categories), tuple(profile.venues), tuple(profile.keywords), tuple(profile.excludes),
               tuple(profile.less_topics))
        return cs.kept_for_ranking("rules", 16, key, lambda: _read_only_array(self._rules(profile, cs)))

    def _led_rows(self, profile: RadarProfile, cs: CandidateSet) -> np.ndarray:
        """The `head_size` candidates that the statement's signals (dense and lexical, over every
        candidate: one product each, kept per statement) and the rules rank first, within the
        tiers: a paper with a followed keyword in its title before the others (there may be tens
        of thousands in a million: those the statement leads to, and those near a positive)."""
        weights = self.weights_for(profile)
        statement_text = " ".join(filter(None, [profile.interest or "", *profile.keywords]))
        embedding = profile.interest_embedding
        rules = self._kept_rules(profile, cs)

        def led() -> np.ndarray:
            kept = self._per_candidates.get(cs)
            if kept is None:
                kept = self._per_candidates[cs] = {}
            score = np.array(rules, dtype=float)
            if embedding is not None and weights.get("dense_statement"):
                centre = cs.centre
                q = _centred(_unit(embedding.astype(np.float32))[None, :], centre)
                column = self._dense_blocks(cs, centre, [("statement", q, 0.0)])["statement"]
                score += weights["dense_statement"] * self._z_of(column, kept)
            if statement_text and weights.get("lexical_statement"):
                score += weights["lexical_statement"] * self._z_of(self._lexical_column(cs, statement_text), kept)
            score += self._tiers(profile, cs) * TIER_GAP
            size = min(self.head_size, len(cs))
            rows = np.argpartition(-score, size - 1)[:size] if size < len(cs) else np.arange(len(cs))
            return _read_only_array(np.sort(rows))

        key = (self.head_size, statement_text, None if embedding is None else _digest(embedding[None, :], 0.0),
               weights.get("dense_statement"), weights.get("lexical_statement"), id(rules))
        return cs.kept_for_ranking("led", 16, key, led)

    def _nearest_rows(self, cs: CandidateSet, doc: Doc, entry: np.ndarray | None = None) -> np.ndarray:
        """A positive's `positive_head` nearest candidates: its ENTRY_NEAREST nearest by cosine
        (the first of `entry`, its nearest best first, when the caller has them; else from the
        store's index when the set has one, `CandidateSet.nearest_source`, or one product over
        every candidate), then the rows around them in the graph; kept per positive."""
        vector = _unit(np.asarray(doc.embedding, dtype=np.float32)[None, :])

        def nearest() -> np.ndarray:
            count = min(self.positive_head, len(cs))
            first = min(ENTRY_NEAREST, count)
            rows = _index_rows(cs, vector, first) if entry is None else entry[:first]
            # then the papers around them in the neighbour graph, hop by hop: where the propagation
            # from this positive flows
            graph = cs.neighbour_graph(PROPAGATION_K)
            if graph is not None and len(rows):
                rows = np.concatenate(hops(graph.links, rows, count))
            return _read_only_array(rows)

        return cs.kept_for_ranking("nearest", NEAREST_KEPT, (self.positive_head, _digest(vector, 0.0), entry is None), nearest)

    @staticmethod
    def _link_rows(cs: CandidateSet, doc: Doc) -> np.ndarray:
        """Where a like joins the graph: its LIKE_LINK_ROWS nearest candidates (a candidate links
        to a positive nearer than its own k-th neighbour, `_positive_links`, which a sparse
        corner of the graph reaches from far down the like's list), kept per like."""
        vector = _unit(np.asarray(doc.embedding, dtype=np.float32)[None, :])
        return cs.kept_for_ranking("links", NEAREST_KEPT, _digest(vector, 0.0), lambda: _read_only_array(
            _index_rows(cs, vector, min(LIKE_LINK_ROWS, len(cs)), breadth=LIKE_LINK_BREADTH)))

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
        if (self.two_stage_min is not None and len(cs) > self.two_stage_min and cs.emb is not None
                and not isinstance(cs, HeadView)):
            # two stages: the head a first stage picks is ranked as a candidate set of its own
            # (`signals` of a head: one entry per head row)
            return self.rank(profile, self._head_view(profile, cs), today=today, explain=explain, exclude=exclude, top=top)
        kept_before = len(self._per_candidates.get(cs) or ())
        signals = self.signals(profile, cs, today=today)
        scores = self.score(signals)
        idx = np.flatnonzero(self.eligible(profile, cs, exclude=exclude))
        if profile.keywords or profile.excludes or profile.less_topics:
            limit = min(len(idx), max(EXACT_HEAD, (top or 0) * 3))
            head = idx[np.argpartition(-scores[idx], limit - 1)[:limit]] if limit < len(idx) else idx
            self._exact_phrase_fix(profile, cs, head, scores)
        tiers = self._tiers(profile, cs)
        # what the user said places a paper in its tier; the score orders each tier
        placed = scores + tiers * TIER_GAP
        if top is not None and top < len(idx):
            part = idx[np.argpartition(-placed[idx], top)[:top]]
            order = part[np.argsort(-placed[part], kind="stable")]
        else:
            order = idx[np.argsort(-placed[idx], kind="stable")]
        ids = cs.ids[order]
        statement = signals.get("dense_statement", signals.get("lexical_statement"))
        if profile.interest and statement is not None and explain:
            sample = statement if signals.get("_reference") is None else statement[signals["_reference"]]
            signals["_statement_cut"] = float(np.partition(sample, int(len(sample) * 0.9))[int(len(sample) * 0.9)])
        reasons = {int(cs.ids[i]): self._reasons(profile, cs, int(i), signals) for i in order[:explain]}
        kept = self._per_candidates.get(cs)
        if kept is not None and len(kept) != kept_before:  # (z-scores kept since the last block)
            _bound_kept(kept, DENSE_KEPT_BYTES)
        return Ranking(ids, scores[order], reasons, {k: v for k, v in signals.items() if not k.startswith("_")},
                       tiers[order])

    def eligible(self, profile: RadarProfile, cs: CandidateSet, *, exclude: set[int] | None = None) -> np.ndarray:
        """Which candidates `rank` may return (a boolean row mask), without scoring any: not a
        positive, not dismissed, not in `exclude`, no excluded phrase in the title, no muted author.
        "How many are left" is then set arithmetic, not a second ranking."""
        drop = {d.id for d in profile.positives} | {d.id for d in profile.dismissed} | (exclude or set())
        keep = np.ones(len(cs), dtype=bool)
        for pid in drop:
            i = cs.position.get(pid)
            if i is not None:
                keep[i] = False
        if profile.excludes:
            for phrase in profile.excludes:  # an excluded phrase in a title removes the paper
                keep[cs.rows_with_title_phrase(phrase, _folded(phrase))] = False
        for key in profile.muted_authors:  # "never show this author"
            keep[cs.author_rows.get(key, _EMPTY)] = False
        return keep

    def _tiers(self, profile: RadarProfile, cs: CandidateSet) -> np.ndarray:
        """What the user said explicitly, over what the model guesses: a followed author's paper
        and a paper with a followed keyword in its title come first (tier 1); an excluded phrase
        in the abstract, "less of this author" and "less of this topic" put a paper after every
        other (tier -1), and a negative wins over a positive. Exact phrases, folded."""
        n = len(cs)
        first = np.zeros(n, dtype=bool)
        last = np.zeros(n, dtype=bool)
        for key in profile.authors:
            first[cs.author_rows.get(key, _EMPTY)] = True
        for keyword in profile.keywords:
            first[cs.rows_with_phrase(_folded(keyword), title=True)] = True
        for key in profile.less_authors:
            last[cs.author_rows.get(key, _EMPTY)] = True
        for phrase in (*profile.excludes, *profile.less_topics):
            last[cs.rows_with_phrase(_folded(phrase))] = True
        return np.where(last, -1, np.where(first, 1, 0)).astype(np.int8)

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
            # what a reader can check: the statement's own words found in the paper ("" when it
            # matched in meaning only, through the embeddings)
            terms = statement_terms(profile.interest, text)
            reasons.append(Reason("statement", ", ".join(terms), float(values[i])))
        return reasons


STATEMENT_TERMS = 4  # at most this many matched statement terms are named in a reason
_STATEMENT_FILLER = frozenset({  # words of a statement that say "I am looking for", not what
    "paper", "papers", "article", "articles", "work", "works", "research", "study", "studies", "interested",
    "interest", "interests", "looking", "want", "like", "especially", "related", "topic", "topics", "etc", "new",
})
_STATEMENT_WORD = re.compile(r"\w+|[,;:.!?()\[\]/]")  # words, and the punctuation that ends a run


def _statement_stop_words() -> frozenset[str]:
    from .terms import stop_words

    return stop_words() | _STATEMENT_FILLER


def _word_pattern(word: str) -> str:
    """A folded word, singular or plural ("qubit" finds "qubits" and the other way round)."""
    stem = word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
    return re.escape(stem) + "(?:s|es)?"


@functools.lru_cache(maxsize=256)
def _statement_runs(statement: str) -> tuple[tuple[tuple[tuple[str, re.Pattern], ...], ...], ...]:
    """The statement's runs of content words; per word of a run, the term of the 1, 2 or 3 words
    starting there (as written) with its compiled pattern: made once per statement, not per paper."""
    stop = _statement_stop_words()
    runs: list[list[tuple[str, str]]] = [[]]
    for raw in _STATEMENT_WORD.findall(statement):
        word = fold(raw) if raw[0].isalnum() or raw[0] == "_" else ""
        if not word or len(word) < 2 or word.isdigit() or word in stop or " " in word:
            runs.append([])
        else:
            runs[-1].append((raw, word))
    return tuple(
        tuple(
            tuple((" ".join(raw for raw, _ in run[start : start + size]),
                   re.compile(r"(?<!\w)" + "[ -]".join(_word_pattern(w) for _, w in run[start : start + size]) + r"(?!\w)"))
                  for size in range(1, min(3, len(run) - start) + 1))
            for start in range(len(run))
        )
        for run in runs if run
    )


def statement_terms(statement: str, folded_text: str, limit: int = STATEMENT_TERMS) -> list[str]:
    """The terms of an interest statement that a paper's folded text holds, as the statement
    writes them, in its order: runs of content words (stop words end a run), the longest stretch
    of each run that the text holds first, so "spin qubits in quantum dots" names "spin qubits"
    and "quantum dots", not four single words. A reason that names them can be checked."""
    found: list[str] = []
    for run in _statement_runs(statement or ""):
        start = 0
        while start < len(run) and len(found) < limit:
            for size in range(min(3, len(run) - start), 0, -1):
                term, pattern = run[start][size - 1]
                if pattern.search(folded_text):
                    if term.casefold() not in {f.casefold() for f in found}:
                        found.append(term)
                    start += size
                    break
            else:
                start += 1
    return found[:limit]


def propagate(graph, pos_sims: np.ndarray, nearest: np.ndarray | None = None) -> np.ndarray | None:
    """Personalised PageRank from the positives over the graph of every candidate: a paper among
    papers near the positives rises even when it is near none of them, which is what a library
    of many topics seeded with ten papers needs (libraries cold R-precision, docs/design.md). The
    positives join the graph as nodes: each links to its k nearest candidates, and a candidate to
    each positive nearer than its own k-th neighbour. The log of the score, capped at a high
    quantile, is the signal: the other signals order the top. `nearest`: each positive's k nearest
    rows, when known (kept with its column, `Ranker._positive_column`)."""
    if graph is None:
        return None
    values = np.log(walk(graph, pos_sims, nearest).astype(np.float64) + 1e-7)
    return np.minimum(values, np.quantile(values, PROPAGATION_CAP))


def _positive_links(kth: np.ndarray, pos_sims: np.ndarray,
                    nearest: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the positives join the graph (`propagate`): (candidate rows, positive columns,
    weights) of each link, a positive to its k nearest candidates and a candidate to each positive
    nearer than its own k-th neighbour (`kth`)."""
    n, n_pos = pos_sims.shape
    k = min(PROPAGATION_K, n)
    link = pos_sims >= kth[:, None] - KTH_TOLERANCE  # (a positive that is a candidate's k-th neighbour ties)
    if nearest is None or nearest.shape != (n_pos, k):
        nearest = np.argpartition(-np.ascontiguousarray(pos_sims.T), k - 1, axis=1)[:, :k]  # each positive's k nearest
    link[nearest, np.arange(n_pos)[:, None]] = True
    rows, cols = np.nonzero(link)
    return rows, cols, np.maximum(pos_sims[rows, cols], 0).astype(np.float32)


def walk(graph, pos_sims: np.ndarray, nearest: np.ndarray | None = None) -> np.ndarray:
    """The mass of the personalised PageRank from the positives at every candidate (`propagate`)."""
    n, n_pos = pos_sims.shape
    rows, cols, weights = _positive_links(graph.kth, pos_sims, nearest)
    scale_c = (1.0 / np.sqrt(np.maximum(graph.degree + np.bincount(rows, weights, minlength=n), 1e-12))).astype(np.float32)
    scale_p = 1.0 / np.sqrt(np.maximum(np.bincount(cols, weights, minlength=n_pos), 1e-12))
    # D^-1/2 W D^-1/2 applied as scalings around the stored links (W is never copied or rebuilt:
    # one sparse product a step); the few links to the positives by index
    links = graph.links
    link_weights = (weights * scale_c[rows] * scale_p[cols]).astype(np.float32)
    linked, at = np.unique(rows, return_inverse=True)
    restart = np.full(n_pos, (1 - PROPAGATION_ALPHA) / n_pos, dtype=np.float32)
    alpha = np.float32(PROPAGATION_ALPHA)
    f_c = np.zeros(n, dtype=np.float32)
    f_p = restart / (1 - PROPAGATION_ALPHA)
    for _ in range(PROPAGATION_STEPS):
        to_pos = np.bincount(cols, link_weights * f_c[rows], minlength=n_pos)
        spread = links @ (scale_c * f_c)
        spread *= scale_c
        spread[linked] += np.bincount(at, link_weights * f_p[cols], minlength=len(linked)).astype(np.float32)
        spread *= alpha
        f_c, f_p = spread, (PROPAGATION_ALPHA * to_pos + restart).astype(np.float32)
    return f_c


def hops(links, start: np.ndarray, budget: int) -> list[np.ndarray]:
    """The rows around `start` (distinct rows) in the graph `links` (CSR), hop by hop, up to
    `budget` rows in all: `start`, then each hop's rows not reached before, each once (the last
    hop cut at the budget). Where a positive's propagation flows (`Ranker._nearest_rows`) and the
    region a like's walk covers (`local_walk`)."""
    n = links.shape[0]
    seen = np.zeros(n, dtype=bool)
    last = np.empty(n, dtype=np.int32)  # a scratch: the position of each row's last entry in a hop
    seen[start] = True
    layers, total, frontier = [start], len(start), start
    while total < budget and len(frontier):
        step = links[frontier].indices
        step = step[~seen[step]]
        order = np.arange(len(step), dtype=np.int32)
        last[step] = order
        step = step[last[step] == order][: budget - total]
        seen[step] = True
        layers.append(step)
        total += len(step)
        frontier = step
    return layers


def local_walk(graph, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n_pos: int, budget: int,
               targets: np.ndarray) -> np.ndarray:
    """`walk` from `n_pos` positives linked to the candidates `rows` (columns `cols`, `weights`:
    `_positive_links`), over the candidates around those links only: their graph neighbours hop
    by hop up to `budget` rows (the region), read at the candidates `targets`. The rest of the
    graph is one node held at the walk's stationary shape (every outside candidate's mass
    kappa * sqrt(degree): the principal eigenvector of D^-1/2 W D^-1/2): mass leaves the region
    through its boundary's outside links and comes back through them, and the walk's share
    along that vector is kept exactly. On a connected set within the budget this is `walk`."""
    from scipy import sparse

    n = len(graph.degree)
    region = np.concatenate(hops(graph.links, np.unique(rows), budget))
    m = len(region)
    # the links of the region's rows, every outside column made one (the last): the outside node,
    # whose entry in the product is its mass per sqrt(degree) (each outside candidate's mass
    # kappa * sqrt(d_j) times its scaling 1 / sqrt(d_j))
    inverse = np.full(n, m, dtype=np.int32)
    inverse[region] = np.arange(m)
    block = graph.links[region]
    links = sparse.csr_matrix((block.data, inverse[block.indices], block.indptr), shape=(m, m + 1))
    degree = graph.degree[region]
    to_outside = np.zeros(m + 1, dtype=np.float32)
    to_outside[m] = 1.0
    outward = links @ to_outside  # each region row's link weight to the outside
    outside = max(float(graph.degree.sum(dtype=np.float64)) - float(degree.sum(dtype=np.float64)), 1e-12)
    within_outside = max(outside - float(outward.sum(dtype=np.float64)), 0.0)  # the outside's links among itself
    at = inverse[rows]
    scale_c = (1.0 / np.sqrt(np.maximum(degree + np.bincount(at, weights, minlength=m), 1e-12))).astype(np.float32)
    scale_p = 1.0 / np.sqrt(np.maximum(np.bincount(cols, weights, minlength=n_pos), 1e-12))
    link_weights = (weights * scale_c[at] * scale_p[cols]).astype(np.float32)
    linked, linked_at = np.unique(at, return_inverse=True)
    leak = scale_c * outward  # a region row's exchange with the outside, per unit of mass
    restart = np.full(n_pos, (1 - PROPAGATION_ALPHA) / n_pos, dtype=np.float32)
    alpha = np.float32(PROPAGATION_ALPHA)
    f_c = np.zeros(m, dtype=np.float32)
    f_p = restart / (1 - PROPAGATION_ALPHA)
    scaled = np.zeros(m + 1, dtype=np.float32)  # the product's input: scale_c * f_c, then the outside's kappa
    kappa = 0.0
    for _ in range(PROPAGATION_STEPS):
        to_pos = np.bincount(cols, link_weights * f_c[at], minlength=n_pos)
        np.multiply(scale_c, f_c, out=scaled[:m])
        scaled[m] = kappa
        spread = links @ scaled
        spread *= scale_c
        spread[linked] += np.bincount(linked_at, link_weights * f_p[cols], minlength=len(linked)).astype(np.float32)
        spread *= alpha
        kappa = PROPAGATION_ALPHA * (float(outward @ scaled[:m]) + kappa * within_outside) / outside
        f_c, f_p = spread, (PROPAGATION_ALPHA * to_pos + restart).astype(np.float32)
    inverse.fill(-1)
    inverse[region] = np.arange(m)
    at = inverse[targets]
    mass = kappa * np.sqrt(graph.degree[targets].astype(np.float64))
    mass[at >= 0] = f_c[at[at >= 0]]
    return mass


def _index_rows(cs: CandidateSet, vector: np.ndarray, count: int, *, breadth: float = SEARCH_BREADTH) -> np.ndarray:
    """A unit vector's `count` nearest candidates by cosine, best first: from the store's index
    when the set has one (`CandidateSet.nearest_source`; `breadth`: its search's width per row
    asked), else one product over every candidate."""
    if cs.nearest_source is not None:
        ids, _ = cs.nearest_source(vector, count, breadth=breadth)
        found = [cs.position.get(int(pid)) for pid in ids[0].tolist() if pid >= 0]
        return np.array([r for r in found if r is not None], dtype=np.int64)
    column = cs.emb @ vector[0]
    rows = np.argpartition(-column, count - 1)[:count] if count < len(cs) else np.arange(len(cs))
    return rows[np.argsort(-column[rows], kind="stable")]


def _kept_bytes(value) -> int:
    if isinstance(value, dict):
        return sum(_kept_bytes(v) for v in value.values())
    if isinstance(value, tuple):
        return sum(_kept_bytes(v) for v in value)
    if hasattr(value, "indices") and hasattr(value, "data"):  # a sparse row
        return value.data.nbytes + value.indices.nbytes
    return value.nbytes if isinstance(value, np.ndarray) else 0


def _bound_kept(kept: dict, limit: int) -> None:
    """The least recently used blocks go first until the kept arrays fit in `limit` bytes (the
    newest block stays whatever its size)."""
    total = sum(_kept_bytes(v) for v in kept.values())
    for key in [k for k in kept if k != "_inverse_norm"][:-1]:
        if total <= limit:
            break
        total -= _kept_bytes(kept.pop(key))


_LEXICAL_FITS: dict[int, ThreadPoolExecutor] = {}


def _lexical_fits() -> ThreadPoolExecutor:
    """This process's threads for the lexical model (per process id: a forked worker inherits a
    pool whose threads it does not have, and would wait on it forever)."""
    pool = _LEXICAL_FITS.get(os.getpid())
    if pool is None:
        _LEXICAL_FITS.clear()
        pool = _LEXICAL_FITS[os.getpid()] = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lexical-model")
    return pool


def _digest(rows: np.ndarray, intercept: float) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(rows, dtype=np.float32).tobytes() + np.float64(intercept).tobytes(),
                           digest_size=16).digest()


def _read_only_array(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


def _statement_led(profile: RadarProfile) -> bool:
    """A radar that says what it wants in words only (likes may follow; no seeds, no keywords)."""
    return bool(profile.interest) and not profile.seeds and not profile.keywords


def _spread(values: np.ndarray, rows: np.ndarray | None, n: int) -> np.ndarray:
    """Values computed for the head rows, as a full column (the rest: the head's minimum)."""
    if rows is None:
        return values
    full = np.full(n, values.min() if len(values) else 0.0)
    full[rows] = values
    return full


def _centred(rows: np.ndarray, centre: np.ndarray | None) -> np.ndarray:
    """Unit rows moved to the centre's frame and normalised again."""
    return rows if centre is None else _unit(rows - centre)


def head_signals(weights: dict[str, float], first: np.ndarray, emb: np.ndarray | None, matrix,
                 rows: np.ndarray | None, centre: np.ndarray | None = None,
                 pos_emb: np.ndarray | None = None, inverse_norm: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The signals read off a first ranking (`first`: the score of every other signal):
    pseudo-relevance feedback from its top (`feedback_signals`), then the graph score of the head
    of the ranking that includes the feedback (`graph_signal`). `centre`: the embeddings' centre (see
    `Ranker.signals`); `pos_emb`: the positives' embeddings, centred and unit."""
    out: dict[str, np.ndarray] = {}
    if weights.get("dense_feedback") or weights.get("lexical_feedback"):
        out.update(feedback_signals(weights, first, emb, matrix, rows, centre=centre, inverse_norm=inverse_norm))
    if emb is not None and weights.get("dense_graph", 0.0):
        for name, values in out.items():
            first = first + weights.get(name, 0.0) * _zscore(values.astype(float))
        graph = graph_signal(first, emb, centre, pos_emb)
        if graph is not None:
            out["dense_graph"] = graph
    return out


def graph_signal(first: np.ndarray, emb: np.ndarray, centre: np.ndarray | None = None,
                 pos_emb: np.ndarray | None = None, head: int | None = None) -> np.ndarray | None:
    """Manifold ranking on the head of the first ranking: the GRAPH_HEAD leading candidates and
    the positives are the nodes of a k-nearest-neighbour graph (cosine, symmetric); a score
    seeded half by the positives, half by the head's first scores (clipped at 0), spreads over
    the graph (Zhou et al. 2004: f <- a S f + (1 - a) f0). Papers that sit among papers the
    ranking already likes rise; a match standing alone falls. The rest: the head's minimum."""
    n = len(first)
    head = min(head or GRAPH_HEAD, n)
    if head <= GRAPH_K + 1:
        return None
    rows = np.argpartition(-first, head - 1)[:head] if head < n else np.arange(n)
    nodes = _centred(emb[rows], centre)
    n_pos = 0 if pos_emb is None else len(pos_emb)
    if n_pos:
        nodes = np.vstack([pos_emb.astype(np.float32), nodes])
    m = len(nodes)
    sims = nodes @ nodes.T
    np.fill_diagonal(sims, -np.inf)
    kth = np.partition(sims, m - GRAPH_K, axis=1)[:, m - GRAPH_K]  # each row's k-th largest
    weights = np.where(sims >= kth[:, None], np.maximum(sims, np.float32(0.0)), np.float32(0.0))
    weights = np.maximum(weights, weights.T)
    degree = weights.sum(axis=1)
    degree[degree == 0] = 1.0
    scale = 1.0 / np.sqrt(degree)
    spread_matrix = weights * scale[:, None] * scale[None, :]
    z = np.clip(_zscore(first[rows].astype(float)), 0.0, None)
    f0 = np.zeros(m)
    f0[n_pos:] = 0.5 * z / (z.sum() or 1.0)
    if n_pos:
        f0[:n_pos] = 0.5 / n_pos
    f = f0.copy()
    for _ in range(GRAPH_ITERATIONS):
        f = GRAPH_ALPHA * (spread_matrix @ f) + (1.0 - GRAPH_ALPHA) * f0
    return _spread(f[n_pos:], None if head == n else rows, n)


def feedback_signals(weights: dict[str, float], first: np.ndarray, emb: np.ndarray | None, matrix,
                     rows: np.ndarray | None, k: int | None = None, centre: np.ndarray | None = None,
                     inverse_norm: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Pseudo-relevance feedback: the centroid of the top `k` papers of the first score, as a
    query of its own (dense, on the embeddings centred at `centre`, and lexical), computed for
    `rows` (the head; None: every row)."""
    k = k or FEEDBACK_K
    out: dict[str, np.ndarray] = {}
    n = len(first)
    if n <= k:
        return out
    top = np.argpartition(-first, k)[:k]

    def spread(values):
        return _spread(values, rows, n)

    if emb is not None and weights.get("dense_feedback", 0.0):
        q = _centred(emb[top], centre).mean(axis=0)
        q /= np.linalg.norm(q) or 1.0
        view = emb if rows is None else emb[rows]
        if centre is not None and inverse_norm is not None:
            # the centred cosine without centring every row: (x.q - c.q) / |x - c| (see signals)
            scale = inverse_norm if rows is None else inverse_norm[rows]
            out["dense_feedback"] = spread((view @ q - float(centre @ q)) * scale)
        else:
            out["dense_feedback"] = spread(_centred(view, centre) @ q)
    if matrix is not None and weights.get("lexical_feedback", 0.0):
        q = np.asarray(matrix[top].mean(axis=0)).ravel()
        q /= np.linalg.norm(q) or 1.0
        out["lexical_feedback"] = spread((matrix if rows is None else matrix[rows]) @ q)
    return out


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
