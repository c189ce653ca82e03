"""The `Method` interface and the baselines.

A method ranks candidates for a radar given by seed papers, by a free-text statement, or both:
`rank(seeds, statement, candidates) -> (ids, scores)`, ids best first (every candidate id once),
scores aligned with them, the way arxiv-sanity-lite's `svm_rank` returns `(pids, scores)`.
`handles` says which radars it can serve ({"seeds"}, {"statement"} or both); the runner gives
it only those tasks. The product's ranker plugs in through `ProductRanker` (see the README).

Baselines, each as its original does it where one exists:

- random; newest first (date, then arXiv id: a later id is a later submission).
- tfidf-svm: arXiv-sanity-lite (compute.py + serve.py/send_emails.py): TF-IDF on title + abstract
  + authors, word 1-2 grams, english stop words, sublinear tf, min_df=5, max_df=0.5, 10 000
  features, fitted on seeds + candidates; LinearSVC(class_weight="balanced", C=0.01, tol=1e-6,
  max_iter=10000), seeds positive, every candidate negative; score = decision function.
- tfidf-mean-cos: the same vectors, mean cosine to the seeds.
- emb-mean-cos: mean cosine of the embeddings to the seeds.
- emb-recency-cos: zotero-arxiv-daily's rerank: seeds newest first, weight 1/(1 + log10(rank+1)),
  normalised; score = weighted cosine (seeds of one date share their weight).
- emb-logreg: Scholar Inbox style: logistic regression on the embeddings, seeds positive, 1000
  random candidates as negatives (fixed seed), class_weight="balanced", C=1.
- tfidf-statement / emb-statement: cosine to the statement's TF-IDF vector / embedding. With
  `translate=True` a Chinese statement goes through the product's zh->en glossary first.
"""

from __future__ import annotations

import zlib
from datetime import date
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from .datasets import Doc

Ranking = tuple[list[str], np.ndarray]


@runtime_checkable
class Method(Protocol):
    name: str
    handles: frozenset[str]  # "seeds", "statement"

    def rank(self, seeds: list[Doc], statement: str | None, candidates: list[Doc]) -> Ranking: ...


def ranked(candidates: Sequence[Doc], scores: np.ndarray) -> Ranking:
    """Ids best first; ties keep the candidates' (shuffled) order."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    return [candidates[i].id for i in order], scores[order]


def _matrix(docs: Sequence[Doc]) -> np.ndarray:
    return np.vstack([d.embedding for d in docs]).astype(np.float32)


# ----------------------------------------------------------------------------- trivial


class RandomOrder:
    name = "random"
    handles = frozenset({"seeds", "statement"})

    def __init__(self, seed: int = 0):
        self.seed = seed

    def rank(self, seeds, statement, candidates):
        key = zlib.crc32("|".join(d.id for d in candidates[:50]).encode())
        rng = np.random.default_rng([self.seed, key])
        return ranked(candidates, rng.random(len(candidates)))


def _arxiv_number(doc_id: str) -> float:
    tail = doc_id.rsplit(":", 1)[-1]
    try:
        return float(tail)
    except ValueError:
        return 0.0


class NewestFirst:
    name = "newest"
    handles = frozenset({"seeds", "statement"})

    def rank(self, seeds, statement, candidates):
        scores = np.array([
            (d.date or date.min).toordinal() + _arxiv_number(d.id) / 1e5 for d in candidates
        ])
        return ranked(candidates, scores)


# ----------------------------------------------------------------------------- TF-IDF


def sanity_vectorizer(min_df: int = 5):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        input="content", encoding="utf-8", decode_error="replace", strip_accents="unicode",
        lowercase=True, analyzer="word", stop_words="english",
        token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", ngram_range=(1, 2), max_features=10000,
        norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True, max_df=0.5, min_df=min_df,
    )


def sanity_text(doc: Doc) -> str:
    return " ".join([doc.title, doc.abstract, " ".join(doc.authors)])


_TFIDF_MEMO: dict[tuple, object] = {}


def sanity_matrix(docs: Sequence[Doc]):
    """TF-IDF rows of `docs` (fitted on them); the last two results are kept, so the SVM and the
    mean-cosine baselines of one task vectorise once."""
    key = tuple(d.id for d in docs)
    if key not in _TFIDF_MEMO:
        if len(_TFIDF_MEMO) >= 2:
            _TFIDF_MEMO.pop(next(iter(_TFIDF_MEMO)))
        _TFIDF_MEMO[key] = sanity_vectorizer().fit_transform([sanity_text(d) for d in docs]).astype(np.float32)
    return _TFIDF_MEMO[key]


class TfidfSvm:
    name = "tfidf-svm"
    handles = frozenset({"seeds"})

    def __init__(self, C: float = 0.01):
        self.C = C

    def rank(self, seeds, statement, candidates):
        from sklearn.svm import LinearSVC

        x = sanity_matrix([*seeds, *candidates])
        y = np.zeros(x.shape[0], dtype=np.float32)
        y[: len(seeds)] = 1.0
        clf = LinearSVC(class_weight="balanced", verbose=False, max_iter=10000, tol=1e-6, C=self.C)
        clf.fit(x, y)
        return ranked(candidates, clf.decision_function(x[len(seeds):]))


class TfidfMeanCosine:
    name = "tfidf-mean-cos"
    handles = frozenset({"seeds"})

    def rank(self, seeds, statement, candidates):
        x = sanity_matrix([*seeds, *candidates])
        s, c = x[: len(seeds)], x[len(seeds):]
        return ranked(candidates, np.asarray((c @ s.T).mean(axis=1)).ravel())


# ----------------------------------------------------------------------------- embeddings


class EmbeddingMeanCosine:
    name = "emb-mean-cos"
    handles = frozenset({"seeds"})

    def rank(self, seeds, statement, candidates):
        return ranked(candidates, _matrix(candidates) @ _matrix(seeds).mean(axis=0))


def recency_weights(seeds: Sequence[Doc]) -> np.ndarray:
    """zotero-arxiv-daily's time decay over the seeds sorted newest first; seeds of one date share
    the mean of their ranks' weights (a library gives dates, not the order papers were added)."""
    n = len(seeds)
    decay = 1.0 / (1.0 + np.log10(np.arange(n) + 1.0))
    order = sorted(range(n), key=lambda i: seeds[i].date or date.min, reverse=True)
    weights = np.zeros(n)
    start = 0
    while start < n:
        end = start
        day = seeds[order[start]].date
        while end < n and seeds[order[end]].date == day:
            end += 1
        weights[[order[k] for k in range(start, end)]] = decay[start:end].mean()
        start = end
    return weights / weights.sum()


class EmbeddingRecencyCosine:
    name = "emb-recency-cos"
    handles = frozenset({"seeds"})

    def rank(self, seeds, statement, candidates):
        return ranked(candidates, (_matrix(candidates) @ _matrix(seeds).T) @ recency_weights(seeds))


class EmbeddingLogReg:
    name = "emb-logreg"
    handles = frozenset({"seeds"})

    def __init__(self, negatives: int = 1000, C: float = 1.0, seed: int = 0):
        self.negatives = negatives
        self.C = C
        self.seed = seed

    def rank(self, seeds, statement, candidates):
        from sklearn.linear_model import LogisticRegression

        c = _matrix(candidates)
        key = zlib.crc32("|".join(d.id for d in seeds).encode())
        rng = np.random.default_rng([self.seed, key])
        neg = rng.choice(len(candidates), min(self.negatives, len(candidates)), replace=False)
        x = np.vstack([_matrix(seeds), c[neg]])
        y = np.r_[np.ones(len(seeds)), np.zeros(len(neg))]
        clf = LogisticRegression(C=self.C, class_weight="balanced", max_iter=1000)
        clf.fit(x, y)
        return ranked(candidates, clf.decision_function(c))


# ----------------------------------------------------------------------------- statements


def _statement_text(statement: str, translate: bool) -> str:
    if not translate:
        return statement
    from academichub.rank.crosslingual import to_english

    return to_english(statement)


class TfidfStatement:
    handles = frozenset({"statement"})

    def __init__(self, translate: bool = False):
        self.translate = translate
        self.name = "tfidf-statement" + ("+zh2en" if translate else "")

    def rank(self, seeds, statement, candidates):
        vectorizer = sanity_vectorizer(min_df=2)
        x = vectorizer.fit_transform([sanity_text(d) for d in candidates])
        q = vectorizer.transform([_statement_text(statement or "", self.translate)])
        return ranked(candidates, np.asarray((x @ q.T).todense()).ravel())


class EmbeddingStatement:
    handles = frozenset({"statement"})

    def __init__(self, encode: Callable[[list[str]], np.ndarray], translate: bool = False):
        self.encode = encode
        self.translate = translate
        self.name = "emb-statement" + ("+zh2en" if translate else "")

    def rank(self, seeds, statement, candidates):
        q = self.encode([_statement_text(statement or "", self.translate)])[0]
        return ranked(candidates, _matrix(candidates) @ q)


# ----------------------------------------------------------------------------- the product


class ProductRanker:
    """The product's ranker (academichub.rank.ranker.Ranker) through the same harness: seeds
    become the radar's seed papers, the statement its interest (carried into English by
    rank/crosslingual.py and embedded with the benchmark's embedder, as the service does)."""

    name = "academichub"
    handles = frozenset({"seeds", "statement"})

    def __init__(self, encode: Callable[[list[str]], np.ndarray] | None = None, seed: int = 0):
        from academichub.rank.ranker import Ranker  # ImportError: not there (yet)

        self._ranker = Ranker(seed=seed)
        self.encode = encode

    def rank(self, seeds, statement, candidates):
        from academichub.rank.crosslingual import to_english
        from academichub.rank.ranker import RadarProfile

        convert = ranker_doc
        docs = [convert(d, i) for i, d in enumerate(candidates)]
        seed_docs = [convert(d, len(candidates) + j) for j, d in enumerate(seeds)]
        interest = to_english(statement) if statement else None
        profile = RadarProfile(
            seeds=seed_docs, interest=interest,
            interest_embedding=self.encode([interest])[0] if (interest and self.encode) else None,
        )
        days = [d.date for d in candidates if d.date]
        ids, scores = self._ranker.rank_ids(profile, docs, today=max(days) if days else None)
        order = [int(i) for i in ids]
        scores = np.asarray(scores, dtype=np.float64)
        left = sorted(set(range(len(candidates))) - set(order))  # left out by the ranker: last
        if left:
            order += left
            scores = np.r_[scores, np.full(len(left), -np.inf)]
        return [candidates[i].id for i in order], scores


def ranker_doc(doc: Doc, i: int):
    """A benchmark document as the product's ranker takes it, under id `i`."""
    from academichub.names import name_key
    from academichub.rank.ranker import Doc as RankerDoc

    return RankerDoc(
        id=i, title=doc.title, abstract=doc.abstract,
        author_keys=tuple(k for k in (name_key(a) for a in doc.authors) if k),
        author_names=tuple(doc.authors), categories=tuple(doc.categories), venue=doc.venue, day=doc.date,
        embedding=doc.embedding,
    )


def seed_baselines(seed: int = 0) -> list[Method]:
    return [RandomOrder(seed), NewestFirst(), TfidfMeanCosine(), TfidfSvm(), EmbeddingMeanCosine(),
            EmbeddingRecencyCosine(), EmbeddingLogReg(seed=seed)]


def statement_baselines(encode: Callable[[list[str]], np.ndarray], seed: int = 0) -> list[Method]:
    return [RandomOrder(seed), TfidfStatement(), TfidfStatement(translate=True),
            EmbeddingStatement(encode), EmbeddingStatement(encode, translate=True)]


__all__ = ["Method", "Ranking", "ranked", "seed_baselines", "statement_baselines", "ProductRanker"]
