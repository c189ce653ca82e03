"""Ranked full-text search: the papers that match a query, best first, capped.

SQLite ranks with FTS5's bm25() and PostgreSQL with ts_rank_cd() over the weighted tsvector; both
weigh the title above the abstract above the authors. Only the top `limit` matches are ever read
(one indexed query, LIMIT limit + 1 to know whether there are more), so the count, the facets and
the page of a search cost the same at 15 000 and 150 000 papers: the page says "1,000+" instead
of counting every match. The other feed filters (authors, categories, days) narrow the same query.

Every function takes an open Connection and only reads."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, Float, Integer, bindparam, func, select, text

from .feed import FeedFilters, _where, sqlite_match_query
from .schema import paper_subjects, papers

SEARCH_CAP = 1000  # the ranked set: the best this many matches (the page says "1,000+" beyond)
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
    stmt = _where(select(papers.c.id, score), conn, rest).where(cond.bindparams(search_q=q))
    stmt = _order(stmt, score, sort)
    return [tuple(r) for r in conn.execute(stmt.limit(limit + 1)).all()]


def _order(stmt, score, sort: str):
    if sort == "date":
        return stmt.order_by(papers.c.announced_on.desc().nulls_last(), score.desc(), papers.c.id.desc())
    return stmt.order_by(score.desc(), papers.c.id.desc())


def title_phrase_ids(conn: Connection, phrase_words: list[str], ids: list[int]) -> set[int]:
    """Which of `ids` have these words, in this order, in the title (stemmed as the index stems):
    the papers a reader means first when the query names a phrase."""
    words = [w for w in phrase_words if w]
    if len(words) < 2 or not ids:
        return set()
    if conn.dialect.name == "postgresql":
        stmt = text(
            "SELECT id FROM papers WHERE id IN :ids AND "
            "to_tsvector('english', coalesce(title, '')) @@ phraseto_tsquery('english', :phrase)"
        ).bindparams(bindparam("ids", expanding=True))
        return set(conn.execute(stmt, {"ids": ids, "phrase": " ".join(words)}).scalars())
    expr = "title : \"" + " ".join(words).replace('"', "") + "\""
    stmt = text("SELECT rowid FROM papers_fts WHERE papers_fts MATCH :expr AND rowid IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    return set(conn.execute(stmt, {"expr": expr, "ids": ids}).scalars())


def category_facets_of(conn: Connection, ids: list[int], taken: list[str], limit: int = 12) -> list[tuple[str, int]]:
    """The categories most common among these papers (the ranked set), with counts."""
    if not ids:
        return []
    n = func.count().label("n")
    rows = conn.execute(
        select(paper_subjects.c.code, n)
        .where(paper_subjects.c.scheme == "arxiv", paper_subjects.c.paper_id.in_(ids))
        .group_by(paper_subjects.c.code)
        .order_by(n.desc(), paper_subjects.c.code)
        .limit(limit + len(taken))
    ).all()
    skip = {c.lower() for c in taken}
    return [(code, count) for code, count in rows if code.lower() not in skip][:limit]


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


__all__ = ["Ranked", "SEARCH_CAP", "SORTS", "category_facets_of", "ids_matching_filters", "papers_by_ids",
           "ranked_matches", "title_phrase_ids"]
