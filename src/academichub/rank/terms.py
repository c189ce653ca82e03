"""What a radar has learned, in words: the terms that set its positives (seeds, likes, saves) apart.

A plain contrast with the store ("more frequent among the positives than elsewhere") lists the
genre's filler: "key", "effective", "address", "extensive experiments" are more frequent in five
vision papers than in a day of physics and mathematics. Two things keep them out:

- **Generic words, from the store itself.** Each term's document frequency is read per arXiv
  archive (cs, math, astro-ph, ...) over a sample of the store; a term used at an even rate across
  the archives (Juilland's dispersion D >= GENERIC_DISPERSION, the measure behind academic word
  lists) and not rare is a generic academic word, never a learned term. No hand-made list: a store
  of other fields finds its own.
- **The positives' own field as a second background.** A term is scored by how much more often the
  positives hold it than the store *and* than the papers of the positives' own primary categories
  (whichever is higher), so words common to a whole field ("extensive experiments" in cs.CV) count
  little, while its topics ("gaussian splatting") count much: p * log(p / q), p the share of
  positives holding the term, q the higher of the two background rates.

The store's sample is analysed once per corpus state and kept (like the ranker's candidates)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, func, select

from ..store.schema import paper_subjects, papers

TOP_TERMS = 12
STORE_SAMPLE = 2000  # store papers analysed for the backgrounds and the generic words
GENERIC_DISPERSION = 0.6  # Juilland's D at or above which a term is spread evenly over the archives
GENERIC_DISPERSION_WITHIN = 0.7  # ... over the categories of one archive (cs: "improvement" 0.75,
# "extensive experiments" 0.79; its topics stay: "large language" 0.61, "diffusion" 0.61, "agent" 0.69)
GENERIC_MIN_SHARE = 0.005  # ... and used by at least this share of the sample (rarer: never generic)
GENERIC_GROUP_MIN = 20  # archives with fewer papers in the sample do not count for the dispersion
GENERIC_GROUPS_MIN = 4  # with fewer archives than this, evenness cannot be told: no generic words
FIELD_MIN = 20  # a field (the positives' primary categories) smaller than this is not a background
RELATIVE_FLOOR = 0.2  # terms scoring below this share of the best term are not shown
_EXTRA_STOP = {"using", "based", "via", "new", "towards", "toward", "study", "approach"}
_TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W_]+\b"


def stop_words() -> frozenset[str]:
    """English stop words and the few words titles use as glue ("using", "via", "towards")."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | _EXTRA_STOP


def _analyzer():
    """Unigrams and bigrams of a title + abstract, stop words out, accents folded (one for all)."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(stop_words=sorted(stop_words()), ngram_range=(1, 2), strip_accents="unicode",
                           token_pattern=_TOKEN_PATTERN, binary=True).build_analyzer()


@dataclass(slots=True)
class StoreTerms:
    """A sample of the store as sets of terms: the backgrounds of every radar's learned terms."""

    ids: np.ndarray  # paper ids of the sample rows
    categories: list[str | None]  # each row's primary arXiv category
    vocabulary: dict[str, int]
    matrix: object  # rows x terms, binary CSR
    generic: frozenset[str]  # terms spread evenly over the archives (Juilland's D)
    generic_in: dict[str, frozenset[str]]  # archive -> terms spread evenly over its categories


_CACHE: dict[tuple, StoreTerms] = {}


# Not words: links ("code at https://github.com/...") and TeX ("$M_\odot$", "\mathrm{...}").
_NOT_WORDS = re.compile(r"(?:https?://|www\.)\S+|\\[A-Za-z]+|\$[^$]*\$")


def _texts(conn: Connection, ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for start in range(0, len(ids), 900):
        for pid, title, abstract in conn.execute(
            select(papers.c.id, papers.c.title, papers.c.abstract).where(papers.c.id.in_(ids[start : start + 900]))
        ):
            out[pid] = _NOT_WORDS.sub(" ", f"{title}. {abstract or ''}")
    return out


def _primary_categories(conn: Connection, ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for start in range(0, len(ids), 900):
        out.update(conn.execute(
            select(paper_subjects.c.paper_id, paper_subjects.c.code).where(
                paper_subjects.c.paper_id.in_(ids[start : start + 900]), paper_subjects.c.scheme == "arxiv",
                paper_subjects.c.is_primary.is_(True))
        ).all())
    return out


def store_terms(conn: Connection) -> StoreTerms:
    """The store's sample, analysed (cached until a paper is added or changed)."""
    from scipy import sparse

    signature = (str(conn.engine.url), *conn.execute(
        select(func.count(), func.max(papers.c.id), func.max(papers.c.modified_at))).one())
    cached = _CACHE.get(signature)
    if cached is not None:
        return cached
    every = list(conn.execute(select(papers.c.id).order_by(papers.c.id)).scalars())
    step = max(1, math.ceil(len(every) / STORE_SAMPLE))
    sample = every[::step]
    texts = _texts(conn, sample)
    primary = _primary_categories(conn, sample)
    analyse = _analyzer()
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for row, pid in enumerate(sample):
        for term in set(analyse(texts.get(pid, ""))):
            rows.append(row)
            cols.append(vocabulary.setdefault(term, len(vocabulary)))
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                               shape=(len(sample), len(vocabulary)))
    categories = [primary.get(pid) for pid in sample]
    terms = np.empty(len(vocabulary), dtype=object)
    for term, column in vocabulary.items():
        terms[column] = term
    within = {}
    for name in sorted({archive(c) for c in categories if c}):
        rows = [r for r, c in enumerate(categories) if archive(c) == name]
        within[name] = generic_terms(matrix[rows], terms, [categories[r] for r in rows], group=lambda c: c,
                                     threshold=GENERIC_DISPERSION_WITHIN)
    built = StoreTerms(np.array(sample, dtype=np.int64), categories, vocabulary, matrix,
                       generic_terms(matrix, terms, categories), within)
    _CACHE.clear()  # one store at a time: memory stays bounded
    _CACHE[signature] = built
    return built


def archive(category: str | None) -> str | None:
    """cs.CV -> cs, astro-ph.GA -> astro-ph, hep-th -> hep-th."""
    return category.split(".", 1)[0] if category else None


def dispersion(rates: np.ndarray) -> np.ndarray:
    """Juilland's D of each column of per-group rates (groups x terms): 1 - CV / sqrt(groups - 1);
    1 when a term is used at the same rate in every group, 0 when in one group only."""
    n = rates.shape[0]
    mean = rates.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.where(mean > 0, rates.std(axis=0) / mean, np.inf)
    return 1.0 - cv / math.sqrt(n - 1)


def generic_terms(matrix, terms: np.ndarray, categories: list[str | None], group=None,
                  threshold: float = GENERIC_DISPERSION) -> frozenset[str]:
    """Terms of the sample spread evenly over its arXiv archives (or other groups of the rows'
    categories: `group`), and not rare: generic academic words for this store ("results",
    "propose", "effective", ...; within cs: "improvement", "address challenge"), from the data."""
    group = group or archive
    groups: dict[str, list[int]] = {}
    for row, category in enumerate(categories):
        if category and group(category):
            groups.setdefault(group(category), []).append(row)
    kept = [rows for rows in groups.values() if len(rows) >= GENERIC_GROUP_MIN]
    if len(kept) < GENERIC_GROUPS_MIN or not len(terms):
        return frozenset()
    rates = np.vstack([np.asarray(matrix[rows].sum(axis=0)).ravel() / len(rows) for rows in kept])
    share = np.asarray(matrix.sum(axis=0)).ravel() / matrix.shape[0]
    generic = (dispersion(rates) >= threshold) & (share >= GENERIC_MIN_SHARE)
    return frozenset(terms[generic].tolist())


def learned_terms(conn: Connection, positive_ids: list[int], limit: int = TOP_TERMS) -> list[tuple[str, float]]:
    """The terms that set the positives apart from the store and from their own field, shared by
    at least two positives when there are three or more; generic academic words never (see the
    module's docstring). Best first, with their scores; a bigram replaces the words it holds."""
    if not positive_ids:
        return []
    positive_ids = list(dict.fromkeys(positive_ids))
    texts = _texts(conn, positive_ids[:900])
    pos_texts = [texts[p] for p in positive_ids if p in texts]
    if not pos_texts:
        return []
    store = store_terms(conn)
    analyse = _analyzer()
    held: dict[str, int] = {}
    for text in pos_texts:
        for term in set(analyse(text)):
            held[term] = held.get(term, 0) + 1
    n = len(pos_texts)
    need = 2 if n >= 3 else 1
    fields = {c for c in _primary_categories(conn, positive_ids[:900]).values()}
    generic = store.generic.union(*(store.generic_in.get(archive(c), frozenset()) for c in fields))
    candidates = sorted(t for t, k in held.items() if k >= need and t not in generic)  # ties: alphabetical
    if not candidates:
        return []
    # the backgrounds: the store's sample without the positives, and the positives' own field in it
    background = ~np.isin(store.ids, positive_ids)
    field = background & np.array([c in fields for c in store.categories], dtype=bool)
    columns = np.array([store.vocabulary.get(t, -1) for t in candidates])
    known = columns >= 0

    def rate(rows: np.ndarray) -> np.ndarray:
        counts = np.zeros(len(candidates))
        if rows.any() and known.any():
            counts[known] = np.asarray(store.matrix[np.flatnonzero(rows)][:, columns[known]].sum(axis=0)).ravel()
        return (counts + 0.5) / (int(rows.sum()) + 1.0)

    q = rate(background)
    if field.sum() >= FIELD_MIN:  # the geometric mean: a field's own topic is still its topic
        q = np.sqrt(q * rate(field))
    p = np.array([held[t] / n for t in candidates])
    score = np.where(p > q, p * np.log(p / q), 0.0)
    chosen: list[tuple[str, float]] = []
    best = float(score.max()) if len(score) else 0.0
    for j in np.argsort(-score, kind="stable"):
        if score[j] <= 0 or score[j] < RELATIVE_FLOOR * best or len(chosen) >= limit:
            break
        term = candidates[j]
        words = term.split()
        if any(term in c.split() for c, _ in chosen):  # a word of a bigram already shown
            continue
        held_words = [(c, s) for c, s in chosen if c in words]
        if held_words:
            # a bigram replaces the words it holds when it is nearly as telling ("gaussian
            # splatting" for "splatting"), else it adds nothing
            if score[j] < 0.5 * max(s for _, s in held_words):
                continue
            chosen = [(c, s) for c, s in chosen if c not in words]
        if any(c in words for c, _ in chosen) or any(set(words) & set(c.split()) for c, _ in chosen if " " in c):
            continue  # two bigrams sharing a word: the first says it
        chosen.append((term, float(score[j])))
    return chosen


__all__ = ["StoreTerms", "dispersion", "generic_terms", "learned_terms", "stop_words", "store_terms"]
