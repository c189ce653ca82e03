"""Search as a reader means it: the papers that answer a query, best first, with the words marked.

1. A query in Chinese is read in English through the same glossary as a Chinese interest statement
   (rank/crosslingual.py): "图神经网络" searches "graph neural network". Han characters no term
   covers are reported, so an empty result can say which words were not understood.
2. Lexical: the store's ranked full-text match (FTS5 bm25 / PostgreSQL ts_rank_cd, title above
   abstract above authors), capped at SEARCH_CAP so that no search reads every match.
3. Semantic, when the embeddings extra is installed and vectors are stored: the query is embedded
   with the hub's embedder and matched against the stored vectors; the two rankings are fused by
   reciprocal rank fusion (RRF) over the top FUSE_DEPTH of each. Without vectors: lexical only.
4. Papers whose title holds the query's words as a phrase come first: a reader who types "graph
   neural network" means those before an abstract that mentions all three words once.
5. Snippets: the title and a short stretch of the abstract with the query's words in <mark>,
   computed here over the stored text (so SQLite and PostgreSQL give the same output), escaped.
"""

from __future__ import annotations

import logging
import re
import threading
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from markupsafe import Markup, escape

from ..errors import AcademicHubError
from ..rank.crosslingual import has_han, translate
from ..store.feed import FeedFilters, FeedPage, sqlite_match_query
from ..store.search import (
    SEARCH_CAP,
    SORTS,
    category_facets_of,
    ids_matching_filters,
    papers_by_ids,
    ranked_matches,
    titles_of,
)

log = logging.getLogger(__name__)

FUSE_DEPTH = 300  # RRF reads the top this many of each ranking
RRF_K = 60  # the usual constant: rank 1 weighs 1/61, rank 60 half as much
SEMANTIC_FLOOR = 0.35  # cosine below which a paper no word matched is not shown at all
SNIPPET_WORDS = 36
_TOKEN = re.compile(r"\w+", re.UNICODE)
_CHUNK = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(slots=True)
class SearchQuery:
    """A query as searched: the text the store matches (English), the words to mark, and what a
    Chinese query was read as."""

    text: str  # as typed
    english: str  # what the full-text index matches (the typed text unless it was Chinese)
    semantic: str  # what is embedded (a Chinese query's every rendering)
    words: list[str]  # the wanted words, for marking and the title-phrase test
    translated: list[tuple[str, str]] = field(default_factory=list)  # (Chinese, English) — shown
    unknown: list[str] = field(default_factory=list)  # Han runs no glossary term covered


@dataclass(slots=True)
class SearchNotice:
    """Why a search looks as it does, for the page to say in its language: kind is "translated"
    (a Chinese query read as English terms), "not_understood" (these words were not read),
    "no_terms" (nothing searchable), "no_match" (nothing matched)."""

    kind: str
    words: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SearchResults:
    page: FeedPage  # items (each with "highlight"), total (capped), batch, seed, size
    sort: str
    capped: bool  # more matched than the ranked set holds: "1,000+"
    facets: list[tuple[str, int]]
    query: SearchQuery
    notices: list[SearchNotice]
    semantic: bool  # the embeddings took part

    @property
    def total_label(self) -> str:
        return f"{self.page.total:,}+" if self.capped else f"{self.page.total:,}"


def read_query(text: str) -> SearchQuery:
    """The typed text as the store will search it. Chinese: each glossary term's first rendering
    (the words a reader would type in English); Latin words are kept."""
    if not has_han(text):
        return SearchQuery(text=text, english=text, semantic=text, words=wanted_words(text))
    translation = translate(text)
    english = " ".join(translation.primary)
    pairs = []
    for zh, en in _term_pairs(text):
        pairs.append((zh, en))
    return SearchQuery(text=text, english=english, semantic=translation.english or english,
                       words=wanted_words(english), translated=pairs, unknown=translation.unknown)


def _term_pairs(text: str) -> list[tuple[str, str]]:
    """(Chinese term, its English) for each glossary term in the text, in order."""
    pairs = []
    for piece in re.split(r"\s+", text):
        if has_han(piece):
            t = translate(piece)
            if t.primary:
                pairs.append((piece, ", ".join(t.primary)))
    return pairs


def wanted_words(text: str) -> list[str]:
    """The words a query asks for (not the excluded ones, not OR)."""
    words: list[str] = []
    for m in _CHUNK.finditer(text):
        negated, quoted, bare = m.group(1), m.group(2), m.group(3)
        if bare is not None:
            if bare == "OR" or (bare.startswith("-") and len(bare) > 1):
                continue
            words += _TOKEN.findall(bare)
        elif not negated:
            words += _TOKEN.findall(quoted)
    return words


class Search:
    """One per hub: the stored vectors are read once per (model, count) and kept, since reading
    every vector for each query would cost more than the search."""

    def __init__(self, hub):
        self.hub = hub
        self._vectors: tuple[tuple, np.ndarray, np.ndarray] | None = None  # key, ids, matrix
        self._lock = threading.Lock()

    def __call__(self, filters: FeedFilters, *, sort: str = "relevance", batch: int = 0, size: int = 20,
                 seed: int = 0, semantic: bool = True) -> SearchResults:
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {SORTS}")
        filters = filters.normalized()
        query = read_query(filters.q or "")
        notices: list[SearchNotice] = []
        if query.translated:
            notices.append(SearchNotice("translated", [f"{zh} → {en}" for zh, en in query.translated]))
        used_semantic = False
        with self.hub.reading() as conn:
            lexical_filters = FeedFilters(authors=filters.authors, categories=filters.categories, dates=filters.dates,
                                          q=query.english or None)
            ranked = ranked_matches(conn, lexical_filters, sort=sort, limit=SEARCH_CAP)
            ids = list(ranked.ids)
            if sort == "relevance":
                sims = self._semantic(conn, query, filters) if semantic and query.words else None
                if sims is not None:
                    used_semantic = True
                    # an excluded word ("-spin") is a promise the embedding cannot keep: it only reorders
                    excludes = sqlite_match_query(query.english)[1] is not None
                    ids = fuse(ids, sims, floor=float("inf") if excludes else SEMANTIC_FLOOR)
                first = title_phrase_ids(titles_of(conn, ids[:FUSE_DEPTH]), query.words)
                if first:
                    ids = [i for i in ids if i in first] + [i for i in ids if i not in first]
            capped = ranked.capped or len(ids) > SEARCH_CAP
            ids = ids[:SEARCH_CAP]
            total = len(ids)
            start = batch * size
            items = papers_by_ids(conn, ids[start:start + size]) if start < total else []
            facets = category_facets_of(conn, ids, filters.categories, 12)
        for item in items:
            item["highlight"] = highlight(item, query.words)
        if query.unknown and not total:
            notices.append(SearchNotice("not_understood", list(query.unknown)))
        if not query.words and not query.unknown:
            notices.append(SearchNotice("no_terms"))
        elif not total and query.words:
            notices.append(SearchNotice("no_match", [query.english] if query.translated else []))
        page = FeedPage(items=items, total=total, batch=batch, seed=seed, size=size)
        return SearchResults(page=page, sort=sort, capped=capped, facets=facets, query=query,
                             notices=notices, semantic=used_semantic)

    def _semantic(self, conn, query: SearchQuery, filters: FeedFilters) -> list[tuple[int, float]] | None:
        """The stored papers nearest the query's embedding, best first (top FUSE_DEPTH), or None
        without an embedder or vectors."""
        try:
            model, embed = self.hub.embedding(conn)
            if model is None or embed is None:
                return None
            ids, matrix = self._matrix(conn, model)
            if not len(ids):
                return None
            vector = embed(query.semantic)
            if vector is None:  # the model could not be loaded (app/embedder.py): the words alone rank
                return None
            vector = np.asarray(vector, dtype=np.float32)
        except AcademicHubError as exc:  # a model that cannot be loaded: the words alone still rank
            log.warning("search without embeddings: %s", exc)
            return None
        allowed = ids_matching_filters(conn, filters)
        norm = float(np.linalg.norm(vector)) or 1.0
        sims = matrix @ (vector / norm)
        if allowed is not None:
            sims = np.where(np.isin(ids, np.fromiter(allowed, dtype=np.int64, count=len(allowed))), sims, -np.inf)
        depth = min(FUSE_DEPTH, len(ids))
        top = np.argpartition(-sims, depth - 1)[:depth]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(int(ids[i]), float(sims[i])) for i in top if np.isfinite(sims[i])]

    def _matrix(self, conn, model: str):
        from ..rank.embeddings import load_vectors
        from ..store.papers import count_vectors

        key = (model, count_vectors(conn, model))
        with self._lock:
            if self._vectors is None or self._vectors[0] != key:
                ids, matrix = load_vectors(conn, model)
                self._vectors = (key, ids, matrix)
            return self._vectors[1], self._vectors[2]


def title_phrase_ids(titles: dict[int, str], words: list[str]) -> set[int]:
    """The ids whose title holds the query's words in order, one after the other (each word
    matched as the snippets match it: "networks" for "network"). One word is no phrase."""
    stems = [_stem(w) for w in words if w]
    if len(stems) < 2:
        return set()
    found = set()
    for pid, title in titles.items():
        folded = (title or "").casefold()
        if not all(stem[:3] in folded for stem in stems):
            continue
        tokens = _TOKEN.findall(title or "")
        for start in range(len(tokens) - len(stems) + 1):
            if all(_matches(tokens[start + k], frozenset((stem,))) for k, stem in enumerate(stems)):
                found.add(pid)
                break
    return found


def fuse(lexical: list[int], semantic: list[tuple[int, float]], *, floor: float = SEMANTIC_FLOOR) -> list[int]:
    """Reciprocal rank fusion of the lexical ranking and the semantic one (top FUSE_DEPTH of each).
    A paper no word matched joins only when it is close (SEMANTIC_FLOOR); lexical matches beyond
    the fused depth follow in their own order."""
    scores: dict[int, float] = {}
    for rank, pid in enumerate(lexical[:FUSE_DEPTH]):
        scores[pid] = scores.get(pid, 0.0) + 1.0 / (RRF_K + rank + 1)
    matched = set(lexical)
    for rank, (pid, sim) in enumerate(semantic[:FUSE_DEPTH]):
        if pid in matched or sim >= floor:
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (RRF_K + rank + 1)
    fused = sorted(scores, key=lambda pid: (-scores[pid], pid))
    seen = set(fused)
    return fused + [pid for pid in lexical[FUSE_DEPTH:] if pid not in seen]


# -- snippets ---------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    w = word.casefold()
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("es", ""), ("ing", ""), ("ed", ""), ("s", "")):
        if w.endswith(suffix) and not w.endswith("ss") and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)] + repl
    return w


@lru_cache(maxsize=65536)
def _matches(token: str, stems: frozenset[str]) -> bool:
    s = _stem(token)
    if s in stems:
        return True
    for t in stems:
        short, long_ = (s, t) if len(s) <= len(t) else (t, s)
        if len(short) >= 3 and long_.startswith(short) and len(long_) - len(short) <= 2:
            return True
    return False


@lru_cache(maxsize=256)
def _word_pattern(stems: frozenset[str]) -> re.Pattern | None:
    """The marked words as one regular expression: a stem and at most four more letters
    ("network" marks "networks", "graph" not "graphene")."""
    if not stems:
        return None
    alternatives = "|".join(re.escape(s) for s in sorted(stems, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\w{{0,4}}\b", re.IGNORECASE)


def _marked(text: str, pattern: re.Pattern | None) -> Markup:
    if pattern is None:
        return Markup(escape(text))
    out: list[str] = []
    at = 0
    for m in pattern.finditer(text):
        out.append(str(escape(text[at:m.start()])))
        out.append(f"<mark>{escape(m.group(0))}</mark>")
        at = m.end()
    out.append(str(escape(text[at:])))
    return Markup("".join(out))


def highlight(item: dict, words: list[str]) -> dict:
    """{"title": Markup, "abstract": Markup}: the query's words in <mark>, everything else
    escaped; the abstract cut to the SNIPPET_WORDS-word stretch with the most of them."""
    pattern = _word_pattern(frozenset(_stem(w) for w in words if len(w) >= 2))
    return {"title": _marked(item.get("title") or "", pattern),
            "abstract": abstract_snippet(item.get("abstract") or "", pattern)}


def abstract_snippet(abstract: str, pattern: re.Pattern | None, width: int = SNIPPET_WORDS) -> Markup:
    starts = [m.start() for m in re.finditer(r"\S+", abstract)]
    if not starts:
        return Markup("")
    ends = [m.end() for m in re.finditer(r"\S+", abstract)]
    hits = [0] * len(starts)
    if pattern is not None:
        for m in pattern.finditer(abstract):
            hits[bisect_right(starts, m.start()) - 1] = 1
    prefix = [0]
    for h in hits:
        prefix.append(prefix[-1] + h)
    last = max(0, len(starts) - width)
    best = max(range(last + 1), key=lambda b: (prefix[min(len(starts), b + width)] - prefix[b], -b))
    end = min(len(starts), best + width)
    text = _marked(abstract[starts[best]:ends[end - 1]], pattern)
    return Markup(("… " if best else "") + text + (" …" if end < len(starts) else ""))


def describe_notice(notice: SearchNotice) -> str:
    """A notice in English, for the command line (the web page says it in its own language)."""
    words = ", ".join(notice.words)
    if notice.kind == "translated":
        return f"read as: {words}"
    if notice.kind == "not_understood":
        return f"not understood (not in the Chinese glossary): {words}"
    if notice.kind == "no_terms":
        return "nothing to search for: the query holds no words"
    return f"no paper matches {words}" if words else "no paper matches"


__all__ = ["FUSE_DEPTH", "Search", "describe_notice", "SearchNotice", "SearchQuery", "SearchResults", "abstract_snippet", "fuse",
           "highlight", "read_query", "wanted_words"]
