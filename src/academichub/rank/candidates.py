"""Candidates in columns, built once and reused across radars and requests: the embedding matrix,
a hashed TF-IDF matrix, and inverted indexes of authors, categories and venues. Scoring 50,000
papers is then a few matrix products and index look-ups instead of a loop over papers."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

import numpy as np

from ..names import fold
from .ranker_types import Doc

_NO_DAY = -1
PHRASES_KEPT = 512  # phrase look-ups kept per candidate set
VECTORS_KEPT = 32  # radars' TF-IDF query vectors kept per candidate set


def _kept(cache: dict, limit: int, key, make):
    """cache[key], made on first use; the oldest entry goes when `limit` is reached."""
    value = cache.get(key)
    if value is None:
        value = make()
        while cache and len(cache) >= limit:
            cache.pop(next(iter(cache)))
        cache[key] = value
    return value


def _read_only(rows: np.ndarray) -> np.ndarray:
    rows.flags.writeable = False
    return rows


class CandidateSet:
    def __init__(self, docs: list[Doc], lexical) -> None:
        self.docs = docs
        self.ids = np.array([d.id for d in docs], dtype=np.int64)
        self.position = {int(pid): i for i, pid in enumerate(self.ids)}
        self.emb = _unit_rows(docs)
        self.days = np.array([d.day.toordinal() if d.day else _NO_DAY for d in docs], dtype=np.int64)
        self.author_rows = _index((i, key) for i, d in enumerate(docs) for key in d.author_keys)
        self.category_rows = _index((i, code) for i, d in enumerate(docs) for code in d.categories)
        self.primary_rows = _index((i, d.categories[0]) for i, d in enumerate(docs) if d.categories)
        self.venue_rows = _index((i, fold(d.venue)) for i, d in enumerate(docs) if d.venue)
        self.lexical = lexical
        counts = lexical.counts([d.text for d in docs]) if docs else None
        self.idf = lexical.idf(counts) if docs else None
        self.matrix = lexical.weigh(counts, self.idf) if docs else None  # rows l2-normalised
        self._init_caches()

    @classmethod
    def from_columns(cls, columns, lexical) -> "CandidateSet":
        """The same set read from the candidate files (rank/candidate_files.py): memory-mapped
        columns, the papers made when asked for, folded texts scanned in one pass."""
        cs = cls.__new__(cls)
        cs.docs = columns.docs
        cs.ids = columns.ids
        cs.position = _Positions(cs.ids)
        cs.emb = columns.emb
        cs.days = columns.days
        cs.author_rows = columns.indexes["author"]
        cs.category_rows = columns.indexes["category"]
        cs.primary_rows = columns.indexes["primary"]
        cs.venue_rows = columns.indexes["venue"]
        cs.lexical = lexical
        cs.idf = columns.idf
        cs.matrix = columns.matrix
        cs._init_caches(titles=columns.titles, texts=columns.texts)
        cs._columns = columns.terms  # each term's rows, memory-mapped (`_rows_with_terms`)
        return cs

    def _init_caches(self, titles=None, texts=None) -> None:
        docs = self.docs
        self._columns = None
        self._vectors: dict[tuple[str, ...], object] = {}
        self._phrases: dict[tuple[str, str], object] = {}
        self._centre: np.ndarray | None = None
        self._graphs: dict[int, NeighbourGraph] = {}
        # () -> the store's persisted neighbour table (rank/neighbours.py), set by the candidate cache
        self.neighbour_source = None
        # (queries, count) -> (paper ids, cosines) of the store's nearest-neighbour index, set by
        # the candidate cache: the ranker's first stage over a large set (`Ranker._head_view`)
        self.nearest_source = None
        self._day_groups: tuple[np.ndarray, np.ndarray] | None = None
        self._heads: dict[str, dict] = {}  # kind -> key -> what the ranker's first stage kept (`kept_for_ranking`)
        # folded texts: from the candidate files (every row, scanned at once), else folded when read
        self._texts, self._titles = texts, titles
        self._folded: list[str | None] = [None] * len(docs) if texts is None else []
        self._folded_titles: list[str | None] = [None] * len(docs) if titles is None else []

    def __len__(self) -> int:
        return len(self.docs)

    # A radar's texts and phrases come back every time it is ranked against these candidates
    # (and every radar of every user shares them): what is derived from them is kept, bounded.

    @property
    def centre(self) -> np.ndarray:
        """The mean of the candidates' unit embeddings (`Ranker.signals` takes cosines about it)."""
        if self._centre is None:
            self._centre = self.emb.mean(axis=0, dtype=np.float64).astype(np.float32)
        return self._centre

    @property
    def whole(self) -> "CandidateSet":
        """The set this one's models, idf and vectors' centre come from: itself (a head: its parent)."""
        return self

    def kept_for_ranking(self, kind: str, limit: int, key, make):
        """What the ranker's first stage computed over this set (`kind`: its heads, walks, rows),
        made on first use and kept; past `limit` of a kind its oldest goes."""
        return _kept(self._heads.setdefault(kind, {}), limit, key, make)

    def head_views(self) -> list:
        """The heads kept for this set, oldest first (`Ranker._head_view`)."""
        return list(self._heads.get("view", {}).values())

    def neighbour_graph(self, k: int) -> "NeighbourGraph | None":
        """Every candidate linked to its k nearest candidates by centred cosine (symmetric), made
        once per candidate set like the other columns, then reused by every radar (`Ranker`
        propagates over it). Read off the store's persisted neighbour table when there is one
        (O(n k): each paper's TABLE_K nearest by cosine, re-scored about the centre); else, beyond
        EXACT_GRAPH_LIMIT candidates, from an HNSW index built for these rows (O(n log n)); a small
        set (a day's window) compares every pair."""
        if self.emb is None or len(self) < 2:
            return None
        graph = self._graphs.get(k)
        if graph is None:
            table = self.neighbour_source() if self.neighbour_source is not None else None
            if table is not None and _covers(table, self.ids):
                graph = _graph_from_table(self.emb, self.centre, self.ids, table, k)
            elif len(self) > EXACT_GRAPH_LIMIT:
                from .neighbours import transient_table

                rows = _centred_rows(self.emb, self.centre)
                graph = _graph_from_table(self.emb, self.centre, self.ids, transient_table(self.ids, rows), k, centred=rows)
            else:
                graph = _neighbour_graph(self.emb, self.centre, k)
            self._graphs[k] = graph
        return graph

    def vectors(self, texts: list[str]):
        """Texts (positives, a statement) in the candidates' TF-IDF space."""
        return _kept(self._vectors, VECTORS_KEPT, tuple(texts),
                     lambda: self.lexical.weigh(self.lexical.counts(texts), self.idf))

    def rows_with_terms(self, phrase: str) -> np.ndarray:
        """Rows whose text holds every term of the phrase (hashed columns: a fast first pass; the
        exact phrase is checked again on the papers that rank high enough to matter). Read-only."""
        return _kept(self._phrases, PHRASES_KEPT, ("terms", phrase), lambda: _read_only(self._rows_with_terms(phrase)))

    def row_set_with_terms(self, phrase: str) -> frozenset[int]:
        return _kept(self._phrases, PHRASES_KEPT, ("set", phrase), lambda: frozenset(self.rows_with_terms(phrase).tolist()))

    def rows_with_title_phrase(self, phrase: str, folded_phrase: str) -> np.ndarray:
        """Rows whose folded title contains the folded phrase. Read-only."""
        return _kept(self._phrases, PHRASES_KEPT, ("title", phrase), lambda: _read_only(np.array(
            [i for i in self.rows_with_terms(phrase).tolist() if folded_phrase and folded_phrase in self.folded_title(i)],
            dtype=np.int64,
        )))

    def rows_with_phrase(self, folded_phrase: str, *, title: bool = False) -> np.ndarray:
        """Rows whose folded text (or title) contains the folded phrase, "quantum dots" for
        "quantum dot" too (the hashed terms would miss it): one scan per phrase and candidate
        set, kept. Read-only."""
        def scan() -> np.ndarray:
            if not folded_phrase:
                return _read_only(np.array([], dtype=np.int64))
            stored = self._titles if title else self._texts
            if stored is not None:
                return _read_only(stored.rows_containing(folded_phrase))
            read = self.folded_title if title else self.folded_text
            return _read_only(np.array([i for i in range(len(self)) if folded_phrase in read(i)], dtype=np.int64))

        return _kept(self._phrases, PHRASES_KEPT, ("title" if title else "text", "exact", folded_phrase), scan)

    def _rows_with_terms(self, phrase: str) -> np.ndarray:
        if self._columns is None:
            self._columns = self.matrix.tocsc()
        query = self.lexical.counts([phrase])
        columns = query.indices
        if not len(columns):
            return np.array([], dtype=np.int64)
        rows = None
        for column in columns:
            start, end = self._columns.indptr[column], self._columns.indptr[column + 1]
            hit = self._columns.indices[start:end]
            rows = hit if rows is None else np.intersect1d(rows, hit, assume_unique=True)
            if not len(rows):
                break
        return np.asarray(rows, dtype=np.int64)

    def folded_title(self, i: int) -> str:
        if self._titles is not None:
            return self._titles[i]
        title = self._folded_titles[i]
        if title is None:
            title = self._folded_titles[i] = fold(self.docs[i].title)
        return title

    def folded_text(self, i: int) -> str:
        if self._texts is not None:
            return self._texts[i]
        text = self._folded[i]
        if text is None:
            text = self._folded[i] = fold(self.docs[i].text)
        return text

    def ages(self, today: date) -> np.ndarray:
        ages = today.toordinal() - self.days
        return np.where(self.days == _NO_DAY, 365, ages).astype(float)

    def era_affinity(self, days: list[date], scale_days: float) -> np.ndarray | None:
        """How close each candidate's date lies to the given dates: the mean of
        exp(-|difference| / scale_days) over them; a candidate without a date gets the mean. None
        when the candidates span fewer than two dates (a day's feed: nothing to tell apart)."""
        known = np.array([d.toordinal() for d in days], dtype=np.int64)
        if not len(known):
            return None
        if self._day_groups is None:
            self._day_groups = np.unique(self.days, return_inverse=True)
        unique, inverse = self._day_groups
        dated = unique != _NO_DAY
        if dated.sum() < 2:
            return None
        # per distinct date, not per candidate: a store has far fewer dates than papers
        points, counts = np.unique(known, return_counts=True)
        density = _laplace_density(unique.astype(float), points.astype(float), counts, scale_days) / len(known)
        values = density[inverse.ravel()]
        undated = self.days == _NO_DAY
        if undated.any():
            values[undated] = values[~undated].mean()
        return values


class _RowOfId:
    """paper id -> row, read as a mapping; a subclass says how (`get`)."""

    def get(self, pid, default=None):  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def __getitem__(self, pid) -> int:
        at = self.get(pid)
        if at is None:
            raise KeyError(pid)
        return at

    def __contains__(self, pid) -> bool:
        return self.get(pid) is not None


class _Positions(_RowOfId):
    """paper id -> row over sorted ids, by binary search: no dict of every id at start-up."""

    def __init__(self, ids: np.ndarray) -> None:
        self._ids = ids

    def get(self, pid, default=None):
        at = int(np.searchsorted(self._ids, pid))
        return at if at < len(self._ids) and int(self._ids[at]) == int(pid) else default

    def __len__(self) -> int:
        return len(self._ids)


@dataclass(frozen=True, slots=True)
class NeighbourGraph:
    links: object  # scipy CSR, float32, symmetric: max of the two directions' cosines (>= 0)
    degree: np.ndarray  # row sums of links
    kth: np.ndarray  # each candidate's k-th nearest cosine: a positive nearer than it is a neighbour
    entry_rows: np.ndarray  # the row of each stored link (to rescale the links without a rebuild)


NEIGHBOUR_BLOCK = 512  # rows per dot-product block (512 x 50,000 float32: 100 MB)
EXACT_GRAPH_LIMIT = 5000  # candidates up to which every pair is compared (0.3 s at 5,000): a day's window
TABLE_BLOCK = 4096  # rows whose table neighbours are re-scored at once (4,096 x 16 x 384 float32: 100 MB)
TABLE_COVERAGE = 0.9  # the share of the candidates the persisted table must hold to be used


def _centred_rows(emb: np.ndarray, centre: np.ndarray) -> np.ndarray:
    rows = emb - centre
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return rows


def _covers(table, ids: np.ndarray) -> bool:
    if not len(table) or not len(ids):
        return False
    at = np.minimum(np.searchsorted(table.ids, ids), len(table.ids) - 1)
    return float((table.ids[at] == ids).mean()) >= TABLE_COVERAGE


def _graph_from_table(emb: np.ndarray, centre: np.ndarray, ids: np.ndarray, table, k: int,
                      centred: np.ndarray | None = None) -> NeighbourGraph:
    """The k-nearest graph of the candidates (`ids`, sorted) from a neighbour table: each row's
    table neighbours that are candidates too, re-scored by centred cosine (the table ranks by plain
    cosine; it keeps TABLE_K > k so the centred k nearest are among them), the best k kept."""
    from scipy import sparse

    n = len(ids)
    rows = centred if centred is not None else _centred_rows(emb, centre)
    at = np.minimum(np.searchsorted(table.ids, ids), len(table.ids) - 1)
    held = table.ids[at] == ids
    nbr = np.where(held[:, None], np.asarray(table.nbr[at]), -1)
    where = np.minimum(np.searchsorted(ids, nbr), n - 1)
    valid = (nbr >= 0) & (ids[where] == nbr) & (where != np.arange(n)[:, None])
    cosines = np.full(nbr.shape, -np.inf, dtype=np.float32)
    for start in range(0, n, TABLE_BLOCK):
        end = min(start + TABLE_BLOCK, n)
        block = np.einsum("id,ikd->ik", rows[start:end], rows[where[start:end]])
        cosines[start:end] = np.where(valid[start:end], block, -np.inf)
    k = min(k, nbr.shape[1])
    best = np.argsort(-cosines, axis=1, kind="stable")[:, :k]
    cosines = np.take_along_axis(cosines, best, axis=1)
    nearest = np.take_along_axis(where, best, axis=1)
    keep = np.isfinite(cosines)
    links = sparse.csr_matrix((np.maximum(cosines[keep], 0), (np.repeat(np.arange(n), k)[keep.ravel()], nearest[keep])),
                              shape=(n, n), dtype=np.float32)
    links = links.maximum(links.T).tocsr()
    degree = np.asarray(links.sum(axis=1), dtype=np.float32).ravel()
    kth = np.where(keep.any(axis=1), np.where(keep, cosines, np.inf).min(axis=1), np.inf).astype(np.float32)
    return NeighbourGraph(links, degree, kth, np.repeat(np.arange(n), np.diff(links.indptr)))


def _neighbour_graph(emb: np.ndarray, centre: np.ndarray, k: int) -> NeighbourGraph:
    from scipy import sparse

    n = len(emb)
    k = min(k, n - 1)
    rows = emb - centre
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    nearest = np.empty((n, k), dtype=np.int64)
    cosines = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, NEIGHBOUR_BLOCK):
        block = rows[start : start + NEIGHBOUR_BLOCK] @ rows.T
        block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf  # not itself
        top = np.argpartition(block, -k, axis=1)[:, -k:]
        nearest[start : start + len(block)] = top
        cosines[start : start + len(block)] = np.take_along_axis(block, top, axis=1)
    links = sparse.csr_matrix((np.maximum(cosines, 0).ravel(), (np.repeat(np.arange(n), k), nearest.ravel())),
                              shape=(n, n), dtype=np.float32)
    links = links.maximum(links.T).tocsr()
    degree = np.asarray(links.sum(axis=1), dtype=np.float32).ravel()
    return NeighbourGraph(links, degree, cosines.min(axis=1), np.repeat(np.arange(n), np.diff(links.indptr)))


def _laplace_density(x: np.ndarray, points: np.ndarray, counts: np.ndarray, scale: float) -> np.ndarray:
    """sum_j counts_j * exp(-|x - points_j| / scale) for every x, in O((len(x) + len(points)) log):
    with the points sorted, exp(-|x - p|) = exp(-x) exp(p) below x and exp(x) exp(-p) above it, so
    two running sums serve every x (500 seed dates over 3,650 store dates: 9 ms pairwise, 0.3 ms
    here). Spans beyond 600 scales would overflow: those go pairwise."""
    p = (points - points[0]) / scale
    if p[-1] > 600:
        return np.exp(-np.abs(x[:, None] - points[None, :]) / scale) @ counts
    t = np.clip((x - points[0]) / scale, -60.0, p[-1] + 60.0)  # beyond 60 scales: e^-60, nothing
    below_sums = np.cumsum(counts * np.exp(p))  # sum over points <= p_k of counts e^p
    above_sums = np.cumsum((counts * np.exp(-p))[::-1])[::-1]  # sum over points >= p_k of counts e^-p
    k = np.searchsorted(p, t, side="right")  # how many points lie at or below t
    below = np.where(k > 0, below_sums[np.maximum(k - 1, 0)], 0.0) * np.exp(-t)
    above = np.where(k < len(p), above_sums[np.minimum(k, len(p) - 1)], 0.0) * np.exp(t)
    return below + above


def _index(pairs) -> dict[str, np.ndarray]:
    rows: dict[str, list[int]] = defaultdict(list)
    for i, key in pairs:
        rows[key].append(i)
    return {key: np.array(sorted(set(values)), dtype=np.int64) for key, values in rows.items()}


def _unit_rows(docs: list[Doc]) -> np.ndarray | None:
    if not docs or any(d.embedding is None for d in docs):
        return None
    matrix = np.vstack([d.embedding for d in docs]).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


class _RowsOf:
    """parent[rows[i]] for i, as a read-only sequence (a head's papers, not copied)."""

    def __init__(self, items, rows: np.ndarray) -> None:
        self._items, self._rows = items, rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int):
        return self._items[int(self._rows[i])]

    def __iter__(self):
        return (self._items[int(r)] for r in self._rows)


class _PostingsOf:
    """A parent's postings (key -> sorted rows) as the head's rows: looked up when asked, kept."""

    def __init__(self, postings, inverse: np.ndarray) -> None:
        self._postings, self._inverse = postings, inverse
        self._kept: dict = {}

    def get(self, key, default=None):
        found = self._kept.get(key)
        if found is None:
            rows = self._postings.get(key)
            if rows is None:
                return default
            found = self._kept[key] = _read_only(_head_rows_of(rows, self._inverse))
        return found

    def __contains__(self, key) -> bool:
        return self.get(key) is not None


class _PositionsOf(_RowOfId):
    """A parent's paper id -> row, as the head's row (absent when the paper is not in the head)."""

    def __init__(self, position, inverse: np.ndarray) -> None:
        self._position, self._inverse = position, inverse

    def get(self, pid, default=None):
        row = self._position.get(pid)
        at = -1 if row is None else int(self._inverse[row])
        return default if at < 0 else at


def _head_rows_of(rows: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """The parent's rows that are in the head, as the head's rows (in order: the head is sorted)."""
    at = inverse[np.asarray(rows, dtype=np.int64)]
    return at[at >= 0].astype(np.int64)


class HeadView(CandidateSet):
    """The head of a large candidate set that the ranker's second stage scores (`Ranker._head_view`):
    the parent's rows `rows` (sorted) as a candidate set of their own. Everything a score reads
    is the parent's, restricted: the embeddings' centre and the idf are the parent's (so a
    paper's cosines and TF-IDF are the full ranking's), postings and phrase scans are the
    parent's kept ones mapped to the head, and the propagation walks the parent's graph
    (`Ranker._head_propagation`). `reference`: the head's rows that are a fixed
    random sample of the parent, whose values stand for every candidate's in the z-scores."""

    def __init__(self, parent: CandidateSet, rows: np.ndarray, reference: np.ndarray) -> None:
        self.parent = parent
        self.rows = rows = _read_only(np.asarray(rows, dtype=np.int64))
        self.digest = hashlib.blake2b(rows.tobytes(), digest_size=16).digest()
        inverse = np.full(len(parent), -1, dtype=np.int32)
        inverse[rows] = np.arange(len(rows), dtype=np.int32)
        self._inverse = inverse
        self.reference = _read_only(_head_rows_of(reference, inverse))
        self.docs = _RowsOf(parent.docs, rows)
        self.ids = parent.ids[rows]
        self.position = _PositionsOf(parent.position, inverse)
        self.emb = None if parent.emb is None else parent.emb[rows]
        self.days = parent.days[rows]
        self.author_rows = _PostingsOf(parent.author_rows, inverse)
        self.category_rows = _PostingsOf(parent.category_rows, inverse)
        self.primary_rows = _PostingsOf(parent.primary_rows, inverse)
        self.venue_rows = _PostingsOf(parent.venue_rows, inverse)
        self.lexical = parent.lexical
        self.idf = parent.idf
        self._matrix = None
        self._phrases: dict = {}
        self._centre = parent.centre if parent.emb is not None else None
        self._day_groups = None
        self._heads = {}
        self.neighbour_source = self.nearest_source = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def whole(self) -> CandidateSet:
        return self.parent

    @property
    def matrix(self):
        if self._matrix is None:
            self._matrix = self.parent.matrix[self.rows]
        return self._matrix

    def vectors(self, texts: list[str]):
        return self.parent.vectors(texts)

    def rows_with_terms(self, phrase: str) -> np.ndarray:
        return _kept(self._phrases, PHRASES_KEPT, ("terms", phrase),
                     lambda: _read_only(_head_rows_of(self.parent.rows_with_terms(phrase), self._inverse)))

    def rows_with_title_phrase(self, phrase: str, folded_phrase: str) -> np.ndarray:
        return _kept(self._phrases, PHRASES_KEPT, ("title", phrase), lambda: _read_only(
            _head_rows_of(self.parent.rows_with_title_phrase(phrase, folded_phrase), self._inverse)))

    def rows_with_phrase(self, folded_phrase: str, *, title: bool = False) -> np.ndarray:
        return _kept(self._phrases, PHRASES_KEPT, ("title" if title else "text", "exact", folded_phrase), lambda: _read_only(
            _head_rows_of(self.parent.rows_with_phrase(folded_phrase, title=title), self._inverse)))

    def folded_title(self, i: int) -> str:
        return self.parent.folded_title(int(self.rows[i]))

    def folded_text(self, i: int) -> str:
        return self.parent.folded_text(int(self.rows[i]))
