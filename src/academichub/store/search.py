"""Ranked full-text search: the papers that match a query, best first, capped.

SQLite ranks with FTS5's bm25() and PostgreSQL with ts_rank_cd() over the weighted tsvector; both
weigh the title above the abstract above the authors. Only the top `limit` matches are ever read
(one indexed query, LIMIT limit + 1 to know whether there are more), so the count, the facets and
the page of a search cost the same at 15 000 and 150 000 papers: the page says "1,000+" instead
of counting every match. The other feed filters (authors, categories, days) narrow the same query.

Every function takes an open Connection and only reads."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import Connection, Float, Integer, bindparam, func, select, text

from .feed import FeedFilters, _where, sqlite_match_query
from .schema import paper_subjects, papers

SEARCH_CAP = 1000  # the ranked set: the best this many matches (the page says "1,000+" beyond)
# Scoring reads each match's column lengths: a word in a fifth of 150 000 papers cost 10× what it
# did at 15 000. A query is therefore scored over its most recently stored SCORE_WINDOW matches
# (the index walks them newest first and stops); below that, over every match, exactly.
SCORE_WINDOW = 10_000
# Column weights: title, abstract, authors (FTS5 bm25 takes one per column, in order).
SQLITE_WEIGHTS = (10.0, 3.0, 1.0)
# ts_rank_cd's weights array is {D, C, B, A}; the vector puts title in A, abstract in B, authors in C.
PG_WEIGHTS = "{0.05, 0.2, 0.4, 1.0}"
SORTS = ("relevance", "date")


@dataclass(slots=True)
class Ranked:
    """The capped ranked set: paper ids best first (or newest first), their lexical scores
    (higher is better, comparable within one query only), and whether more matched."""

    ids: list[int]
    scores: dict[int, float]
    capped: bool


def ranked_matches(conn: Connection, filters: FeedFilters, *, sort: str = "relevance", limit: int = SEARCH_CAP) -> Ranked:
    """The best `limit` papers for `filters.q`, narrowed by the other filters. `sort="date"`: the
    newest `limit` matches instead, ties by relevance."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}")
    filters = filters.normalized()
    if not filters.q:
        return Ranked([], {}, False)
    rest = FeedFilters(authors=filters.authors, categories=filters.categories, dates=filters.dates)
    if conn.dialect.name == "postgresql":
        rows = _pg_ranked(conn, filters.q, rest, sort, limit)
    else:
        rows = _sqlite_ranked(conn, filters.q, rest, sort, limit)
    capped = len(rows) > limit
    rows = rows[:limit]
    return Ranked(ids=[r[0] for r in rows], scores={r[0]: float(r[1]) for r in rows}, capped=capped)


def _sqlite_ranked(conn: Connection, q: str, rest: FeedFilters, sort: str, limit: int) -> list[tuple[int, float]]:
    positive, negative = sqlite_match_query(q)
    if not positive:
        return []
    weights = ", ".join(str(w) for w in SQLITE_WEIGHTS)
    # bm25() is lower-is-better; negated so that every dialect's score is higher-is-better.
    if sort == "relevance" and rest.is_empty:
        # The common case reads the index alone: joining every match to papers doubled the cost.
        sql = f"SELECT rowid, -bm25(papers_fts, {weights}) AS score FROM papers_fts WHERE papers_fts MATCH :expr"
        params = {"expr": positive, "limit": limit + 1, "window": max(SCORE_WINDOW, limit + 1)}
        if negative:
            sql += " AND rowid NOT IN (SELECT rowid FROM papers_fts WHERE papers_fts MATCH :neg)"
            params["neg"] = negative
        sql = f"SELECT rowid, score FROM ({sql} ORDER BY rowid DESC LIMIT :window) ORDER BY score DESC, rowid DESC LIMIT :limit"
        return [tuple(r) for r in conn.execute(text(sql), params).all()]
    fts = text(f"SELECT rowid AS id, -bm25(papers_fts, {weights}) AS score FROM papers_fts WHERE papers_fts MATCH :expr")
    fts = fts.bindparams(expr=positive).columns(id=Integer(), score=Float()).subquery("hits")
    stmt = select(fts.c.id, fts.c.score).select_from(fts.join(papers, papers.c.id == fts.c.id))
    stmt = _where(stmt, conn, rest)
    if negative:
        excluded = text("SELECT rowid FROM papers_fts WHERE papers_fts MATCH :neg").bindparams(neg=negative)
        stmt = stmt.where(papers.c.id.not_in(excluded.columns(rowid=Integer())))
    stmt = _order(stmt, fts.c.score, sort)
    return [tuple(r) for r in conn.execute(stmt.limit(limit + 1)).all()]


def _pg_ranked(conn: Connection, q: str, rest: FeedFilters, sort: str, limit: int) -> list[tuple[int, float]]:
    if not sqlite_match_query(q)[0]:  # only punctuation or exclusions: nothing to rank
        return []
    query = func.websearch_to_tsquery("english", bindparam("search_q", q))
    vector = text("papers.search_vector")
    cond = text("papers.search_vector @@ websearch_to_tsquery('english', :search_q)")
    if not re.search(r"(^|\s)-\S", q):
        # author names sit in the vector unstemmed ('simple'); a second probe finds them
        cond = text(
            "(papers.search_vector @@ websearch_to_tsquery('english', :search_q) "
            "OR papers.search_vector @@ websearch_to_tsquery('simple', :search_q))"
        )
    score = func.ts_rank_cd(text(f"'{PG_WEIGHTS}'::float4[]"), vector, query, 1).label("score")
    if sort == "relevance" and rest.is_empty:  # as on SQLite: the newest SCORE_WINDOW matches are scored
        window = select(papers.c.id).where(cond.bindparams(search_q=q)).order_by(papers.c.id.desc())
        window = window.limit(max(SCORE_WINDOW, limit + 1)).scalar_subquery()
        stmt = select(papers.c.id, score).where(papers.c.id.in_(window))
    else:
        stmt = _where(select(papers.c.id, score), conn, rest).where(cond.bindparams(search_q=q))
    stmt = _order(stmt, score, sort)
    return [tuple(r) for r in conn.execute(stmt.limit(limit + 1)).all()]


def _order(stmt, score, sort: str):
    if sort == "date":
        return stmt.order_by(papers.c.announced_on.desc().nulls_last(), score.desc(), papers.c.id.desc())
    return stmt.order_by(score.desc(), papers.c.id.desc())


def titles_of(conn: Connection, ids: list[int]) -> dict[int, str]:
    """id -> title, for these ids (primary-key look-ups only)."""
    if not ids:
        return {}
    return dict(conn.execute(select(papers.c.id, papers.c.title).where(papers.c.id.in_(ids))).all())


def category_facets_of(conn: Connection, ids: list[int], taken: list[str], limit: int = 12) -> list[tuple[str, int]]:
    """The categories most common among these papers (the ranked set), with counts. Read by
    paper id (the primary key's prefix) and counted here: filtering on the scheme in SQL made
    SQLite walk every arXiv subject of the store through the (scheme, code) index."""
    if not ids:
        return []
    rows = conn.execute(
        select(paper_subjects.c.scheme, paper_subjects.c.code).where(paper_subjects.c.paper_id.in_(ids))
    ).all()
    counts = Counter(code for scheme, code in rows if scheme == "arxiv")
    skip = {c.lower() for c in taken}
    ranked = sorted(((code, n) for code, n in counts.items() if code.lower() not in skip), key=lambda cn: (-cn[1], cn[0]))
    return ranked[:limit]


def ids_matching_filters(conn: Connection, filters: FeedFilters) -> set[int] | None:
    """The ids the non-text filters allow (None: every paper), for the semantic side of a search."""
    rest = FeedFilters(authors=filters.authors, categories=filters.categories, dates=filters.dates)
    if rest.is_empty:
        return None
    return set(conn.execute(_where(select(papers.c.id), conn, rest)).scalars())


def papers_by_ids(conn: Connection, ids: list[int]) -> list[dict]:
    """Feed items (authors, categories, links) for these ids, in this order."""
    from .feed import _with_people_and_subjects

    if not ids:
        return []
    rows = {r["id"]: dict(r) for r in conn.execute(select(papers).where(papers.c.id.in_(ids))).mappings()}
    return _with_people_and_subjects(conn, [rows[i] for i in ids if i in rows])


__all__ = ["Ranked", "SCORE_WINDOW", "SEARCH_CAP", "SORTS", "category_facets_of", "ids_matching_filters", "papers_by_ids",
           "ranked_matches", "titles_of"]
