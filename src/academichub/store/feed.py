"""The read side of the feed page: filters (author, category, date, full text) that combine with
AND, a seeded shuffle that is the same on SQLite and PostgreSQL, and batches that never repeat a
paper until every matching paper has been shown.

Every function takes an open Connection and only reads."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import quote, urlsplit

import numpy as np

from sqlalchemy import BigInteger, Connection, Select, and_, bindparam, cast, column, false, func, literal, or_, select, table, text, union
from sqlalchemy.sql.elements import ColumnElement

from ..names import name_norm
from ..sources.kinds import label_of
from .papers import load_authors, load_categories
from .schema import announcements, paper_authors, paper_identifiers, paper_subjects, papers
from .state import row_id

# The shuffle: key(id) = ((id * m1 + c1) mod P)^5 * m2 + c2 mod P, with P prime. Each step is a
# bijection on 0..P-1 (0 < m < P; x -> x^5 is one because gcd(5, P - 1) = 1), so ORDER BY key is a
# permutation of the ids. The fifth power breaks the arithmetic progressions an affine map alone
# leaves in consecutive ids; m1, c1, m2, c2 all come from the seed. 64-bit integer arithmetic only
# (every product is below 2**62), so SQLite and PostgreSQL give the same order.
MODULUS = 2147483647  # 2**31 - 1, prime
_ROOT = 48271  # a primitive root mod P (MINSTD): its powers are every m in 1..P-1
SEED_MAX = MODULUS - 1  # seeds are 0..SEED_MAX

MAX_FILTER_VALUES = 20  # per kind; more is a malformed link, not a search
_papers_fts = table("papers_fts", column("rowid"), column("papers_fts"))  # SQLite only, not in the metadata
_WORD = re.compile(r"\w+", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CHUNK = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(slots=True)
class FeedFilters:
    """What the chips and the search box ask for. Every value must hold (AND): two authors mean
    papers by both, two categories papers in both; a paper has one announcement day, so two
    different dates match nothing."""

    authors: list[str] = field(default_factory=list)  # display names, matched by names.name_norm
    categories: list[str] = field(default_factory=list)  # arXiv codes, e.g. "cs.LG" (case-insensitive)
    dates: list[date] = field(default_factory=list)  # papers.announced_on
    q: str | None = None  # full text over title, abstract and authors

    def normalized(self) -> FeedFilters:
        """Blank values dropped, duplicates removed (first wins), order kept."""
        authors = _dedupe(a for a in (_clean(x) for x in self.authors) if a)
        categories = _dedupe(c for c in (_clean(x) for x in self.categories) if c)
        q = _clean(self.q or "") or None
        return FeedFilters(authors=authors, categories=categories, dates=_dedupe(self.dates), q=q)

    @property
    def is_empty(self) -> bool:
        return not (self.authors or self.categories or self.dates or self.q)


@dataclass(slots=True)
class FeedPage:
    items: list[dict]
    total: int
    batch: int
    seed: int
    size: int

    @property
    def batches(self) -> int:
        """How many batches the matching papers fill."""
        return -(-self.total // self.size) if self.size else 0

    @property
    def offset(self) -> int:
        return self.batch * self.size

    @property
    def next_batch(self) -> int | None:
        """The batch after this one, or None when this one shows the last papers (start over)."""
        nxt = self.batch + 1
        return nxt if nxt * self.size < self.total else None


def new_seed() -> int:
    return random.SystemRandom().randint(1, SEED_MAX)


def _shuffle_params(seed: int) -> tuple[int, int, int, int]:
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be in 0..{SEED_MAX}")
    m1 = pow(_ROOT, seed % (MODULUS - 1) + 1, MODULUS)
    m2 = pow(_ROOT, (seed * 7919 + 12345) % (MODULUS - 1) + 1, MODULUS)
    return m1, (seed * 69621 + 1) % MODULUS, m2, (seed * 16807 + 7) % MODULUS


def shuffle_key(seed: int) -> ColumnElement:
    """The seeded order as an SQL expression, portable to SQLite and PostgreSQL."""
    m1, c1, m2, c2 = (bindparam(f"shuffle_{i}", v, type_=BigInteger) for i, v in enumerate(_shuffle_params(seed)))
    p = literal(MODULUS, BigInteger)
    x = (cast(papers.c.id, BigInteger) * m1 + c1) % p
    x2 = (x * x) % p
    x4 = (x2 * x2) % p
    return ((x4 * x) % p * m2 + c2) % p


def shuffle_key_py(paper_id: int, seed: int) -> int:
    """The same key computed in Python (tests check the SQL against it)."""
    m1, c1, m2, c2 = _shuffle_params(seed)
    return (pow((paper_id * m1 + c1) % MODULUS, 5, MODULUS) * m2 + c2) % MODULUS


@dataclass(frozen=True, slots=True)
class FeedRows:
    """The papers matching some filters (ids, and each one's day as a rank: ascending is newest
    first, the papers without a day last): what a batch is cut from. Read once per store state
    and filters (web/app.py keeps it), so a batch costs a shuffle of the days it reaches in
    numpy, not an ORDER BY over every matching row."""

    ids: np.ndarray  # int64
    day_rank: np.ndarray  # int64


def feed_rows(conn: Connection, filters: FeedFilters) -> FeedRows:
    filters = filters.normalized()
    rows = conn.execute(_where(select(papers.c.id, papers.c.announced_on), conn, filters)).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    ordinals = np.fromiter(((d.toordinal() if (d := _as_date(r[1])) is not None else 0) for r in rows),
                           dtype=np.int64, count=len(rows))
    rank = np.where(ordinals > 0, -ordinals, np.iinfo(np.int64).max)  # DESC NULLS LAST
    return FeedRows(ids, rank)


def shuffle_keys(ids: np.ndarray, seed: int) -> np.ndarray:
    """shuffle_key_py over many ids at once (int64: every product stays below 2**62)."""
    m1, c1, m2, c2 = _shuffle_params(seed)
    x = (ids * m1 + c1) % MODULUS
    x2 = (x * x) % MODULUS
    x4 = (x2 * x2) % MODULUS
    return ((x4 * x) % MODULUS * m2 + c2) % MODULUS


def feed_page(conn: Connection, filters: FeedFilters, *, seed: int, batch: int, size: int,
              rows: FeedRows | None = None) -> FeedPage:
    """Batch `batch` (0-based) of `size` papers matching `filters`: newest announcement first, then
    the seeded shuffle (the order of shuffle_key, id). Batches of one seed partition the matching
    papers: none repeats. `rows`: feed_rows of these filters, when the caller kept them."""
    if batch < 0:
        raise ValueError("batch must be >= 0")
    if size < 1:
        raise ValueError("size must be >= 1")
    filters = filters.normalized()
    if rows is None:
        rows = feed_rows(conn, filters)
    total = len(rows.ids)
    items: list[dict] = []
    start = batch * size
    if total and start < total:
        # sorted by day, then only the days the batch reaches are shuffled
        by_day = np.argsort(rows.day_rank, kind="stable")
        ranks = rows.day_rank[by_day]
        end = min(start + size, total)
        lo = int(np.searchsorted(ranks, ranks[start], "left"))
        hi = int(np.searchsorted(ranks, ranks[end - 1], "right"))
        ids = rows.ids[by_day[lo:hi]]
        order = np.lexsort((ids, shuffle_keys(ids, seed), ranks[lo:hi]))
        wanted = ids[order][start - lo:end - lo].tolist()
        found = get_papers(conn, wanted)
        items = [found[pid] for pid in wanted if pid in found]
    return FeedPage(items=items, total=total, batch=batch, seed=seed, size=size)


def count_matching(conn: Connection, filters: FeedFilters) -> int:
    return conn.execute(_where(select(func.count()).select_from(papers), conn, filters.normalized())).scalar_one()


def get_paper(conn: Connection, id_or_arxiv_id: int | str) -> dict | None:
    """One paper by store id (an int or digits) or arXiv id (with or without a version suffix)."""
    key = str(id_or_arxiv_id).strip()
    if (number := row_id(key)) is not None:
        cond = papers.c.id == number
    else:
        key = re.sub(r"^(?:arxiv:)", "", key, flags=re.IGNORECASE)
        key = re.sub(r"v\d+$", "", key)
        if not key or len(key) > 40:
            return None
        cond = papers.c.arxiv_id == key
    row = conn.execute(select(papers).where(cond)).mappings().first()
    if row is None:
        return None
    return _with_people_and_subjects(conn, [dict(row)])[0]


def get_papers(conn: Connection, paper_ids: list[int]) -> dict[int, dict]:
    """Cards of many papers by store id in a constant few queries (the rows, then their authors,
    categories, subjects and identifiers for all at once): a batch's cards, not five per card."""
    wanted = list(dict.fromkeys(int(p) for p in paper_ids))
    rows: list[dict] = []
    for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
        rows += [dict(r) for r in conn.execute(select(papers).where(papers.c.id.in_(wanted[start:start + 900]))).mappings()]
    return {item["id"]: item for item in _with_people_and_subjects(conn, rows)} if rows else {}


def feed_notices(conn: Connection, day: date | None) -> list[dict]:
    """Why a day may look empty: arXiv did not announce (an empty feed was recorded, or it is a
    day the feed lists in skipDays — weekends), and which sources are failing, since when."""
    from .sources import failing_sources

    notices: list[dict] = []
    if day is not None:
        rows = conn.execute(
            select(announcements.c.status, announcements.c.skip_days).where(announcements.c.announced_on == day)
        ).all()
        skip_days = {d for _status, days in conn.execute(select(announcements.c.status, announcements.c.skip_days)).all() for d in (days or [])}
        if rows and all(status == "empty" for status, _ in rows):
            notices.append({"kind": "no_announcement", "day": day})
        elif not rows and day.strftime("%A") in (skip_days or {"Saturday", "Sunday"}):
            notices.append({"kind": "weekend", "day": day})
    for source in failing_sources(conn):
        notices.append(
            {
                "kind": "failing",
                "name": source["label"] or source["name"],
                "since": source["failing_since"],
                "failures": source["consecutive_failures"],
                "error": (source["last_error"] or "")[:300],
            }
        )
    return notices


def latest_announcement(conn: Connection) -> date | None:
    """The newest day an announcement brought papers; failing that, the newest paper's day."""
    day = conn.execute(
        select(func.max(announcements.c.announced_on)).where(announcements.c.status == "announced")
    ).scalar()
    if day is None:
        announced = papers.c.announced_on.is_not(None)  # implied by max(); said, so the partial index answers
        day = conn.execute(select(func.max(papers.c.announced_on)).where(announced)).scalar()
    return _as_date(day)


def window_ids(conn: Connection, since: date | None) -> set[int]:
    """Ids of the papers announced or published since a day (every stored paper with None)."""
    if since is None:
        return set(conn.execute(select(papers.c.id)).scalars())
    # two index ranges, not an OR that scans every row (abstracts included) of the table
    stmt = union(select(papers.c.id).where(papers.c.announced_on >= since), select(papers.c.id).where(papers.c.published_on >= since))
    return set(conn.execute(stmt).scalars())


def matching_ids(conn: Connection, filters: FeedFilters, window: set[int]) -> set[int]:
    """The ids of `window` that match the feed's filters (the chips combine with AND, as on the feed)."""
    if filters.is_empty:
        return window
    return window & set(conn.execute(_where(select(papers.c.id), conn, filters.normalized())).scalars())


def arxiv_categories_in_store(conn: Connection) -> list[str]:
    """Every arXiv category some stored paper has, sorted (the radar editor's choices)."""
    return list(
        conn.execute(
            select(paper_subjects.c.code).where(paper_subjects.c.scheme == "arxiv").distinct().order_by(paper_subjects.c.code)
        ).scalars()
    )


def available_dates(conn: Connection, limit: int = 14) -> list[tuple[date, int]]:
    """The most recent announcement days that have papers, newest first, with their paper counts."""
    day = papers.c.announced_on
    rows = conn.execute(
        select(day, func.count()).where(day.is_not(None)).group_by(day).order_by(day.desc()).limit(limit)
    ).all()
    return [(_as_date(d), n) for d, n in rows]


def category_facets(conn: Connection, filters: FeedFilters, limit: int = 12) -> list[tuple[str, int]]:
    """The categories most common among the papers matching `filters`, with counts."""
    filters = filters.normalized()
    matching = _where(select(papers.c.id), conn, filters).scalar_subquery()
    n = func.count().label("n")
    rows = conn.execute(
        select(paper_subjects.c.code, n)
        .where(paper_subjects.c.scheme == "arxiv", paper_subjects.c.paper_id.in_(matching))
        .group_by(paper_subjects.c.code)
        .order_by(n.desc(), paper_subjects.c.code)
        .limit(limit)
    ).all()
    taken = {c.lower() for c in filters.categories}
    return [(code, count) for code, count in rows if code.lower() not in taken]


def store_stats(conn: Connection) -> dict:
    return {
        "papers": conn.execute(select(func.count()).select_from(papers)).scalar_one(),
        "authors": conn.execute(select(func.count(func.distinct(paper_authors.c.name_norm)))).scalar_one(),
        "categories": conn.execute(
            select(func.count(func.distinct(paper_subjects.c.code))).where(paper_subjects.c.scheme == "arxiv")
        ).scalar_one(),
        "days": conn.execute(  # NULL is not counted anyway; said, so the partial index answers
            select(func.count(func.distinct(papers.c.announced_on))).where(papers.c.announced_on.is_not(None))
        ).scalar_one(),
        "latest_announcement": latest_announcement(conn),
    }


# -- full text ------------------------------------------------------------------------------------


def sqlite_match_query(user_text: str) -> tuple[str | None, str | None]:
    """User input -> (FTS5 expression for the wanted terms, FTS5 expression for the excluded ones).

    Only quoted strings, `*`, `OR` and parentheses that we write ever reach MATCH, so no input can
    cause an FTS5 syntax error. Understood: words (AND), "exact phrases", prefix*, OR, -excluded."""
    groups: list[list[str]] = [[]]
    excluded: list[str] = []
    for m in _CHUNK.finditer(user_text):
        negated, quoted, bare = m.group(1), m.group(2), m.group(3)
        if bare is not None:
            if bare == "OR":
                groups.append([])
                continue
            negated = "-" if bare.startswith("-") and len(bare) > 1 else ""
            body = bare[1:] if negated else bare
            words = _WORD.findall(body)
            prefix = body.endswith("*") and bool(words)
        else:
            words = _WORD.findall(quoted)
            prefix = False
        if not words:
            continue
        phrase = '"' + " ".join(words) + '"' + ("*" if prefix else "")
        (excluded if negated else groups[-1]).append(phrase)
    wanted = [g for g in groups if g]
    positive = " OR ".join("(" + " ".join(g) + ")" for g in wanted) if wanted else None
    negative = " OR ".join(excluded) if excluded else None
    return positive, negative


def _search_condition(conn: Connection, q: str) -> ColumnElement:
    if conn.dialect.name == "postgresql":
        english = text("papers.search_vector @@ websearch_to_tsquery('english', :fts_q)").bindparams(fts_q=q)
        if re.search(r"(^|\s)-\S", q):
            return english
        # author names sit in the vector unstemmed ('simple'); a second probe finds them. Not with
        # an exclusion: an unstemmed "-networks" would not exclude the stemmed "network".
        simple = text("papers.search_vector @@ websearch_to_tsquery('simple', :fts_q)").bindparams(fts_q=q)
        return or_(english, simple)
    positive, negative = sqlite_match_query(q)
    conds = []
    if positive:
        conds.append(papers.c.id.in_(_fts_rowids(positive)))
    if negative:
        conds.append(papers.c.id.not_in(_fts_rowids(negative)))
    if not conds:  # nothing searchable in the input (only punctuation): nothing matches
        return false()
    return and_(*conds)


def _fts_rowids(expression: str) -> Select:
    return select(_papers_fts.c.rowid).where(_papers_fts.c.papers_fts.op("MATCH")(bindparam(None, expression)))


# -- helpers --------------------------------------------------------------------------------------


def _where(stmt: Select, conn: Connection, filters: FeedFilters) -> Select:
    for author in filters.authors[:MAX_FILTER_VALUES]:
        norm = name_norm(author)[:255]
        stmt = stmt.where(
            papers.c.id.in_(select(paper_authors.c.paper_id).where(paper_authors.c.name_norm == norm))
        )
    for code in filters.categories[:MAX_FILTER_VALUES]:
        stmt = stmt.where(
            papers.c.id.in_(
                select(paper_subjects.c.paper_id).where(
                    paper_subjects.c.scheme == "arxiv", paper_subjects.c.code.in_(category_variants(code))
                )
            )
        )
    for day in filters.dates[:MAX_FILTER_VALUES]:
        stmt = stmt.where(papers.c.announced_on == day)
    if filters.q:
        stmt = stmt.where(_search_condition(conn, filters.q))
    return stmt


def category_variants(code: str) -> list[str]:
    """The spellings an arXiv code may be stored in: archives are lower case, subject classes upper
    case (cs.LG) or lower case (cond-mat.mes-hall)."""
    code = code.strip()[:64]
    variants = [code, code.lower()]
    archive, dot, subject = code.partition(".")
    if dot:
        variants += [f"{archive.lower()}.{subject.upper()}", f"{archive.lower()}.{subject.lower()}"]
    return _dedupe(variants)


def _with_people_and_subjects(conn: Connection, rows: list[dict]) -> list[dict]:
    ids = [r["id"] for r in rows]
    authors = load_authors(conn, ids)
    categories = load_categories(conn, ids)
    subjects = load_subjects(conn, ids)
    identifiers = load_identifiers(conn, ids)
    items = []
    for r in rows:
        item = _item(r, authors.get(r["id"], []), categories.get(r["id"], []))
        item["subjects"] = subjects.get(r["id"], [])
        item["source_label"] = source_label(r, item["subjects"])
        item["versions_of_work"] = versions_of_work(r, identifiers.get(r["id"], []))
        items.append(item)
    return items


def source_label(row: dict, subjects: list[tuple[str, str]]) -> str:
    """The card's source, as on the reference screen: "arXiv (CS.LG)", "bioRxiv (Neuroscience)",
    "Nature", "PubMed (Cell)". A work with a journal version is labelled by its journal; the
    journal name alone when a publisher or index says so, "PubMed (…)" when only PubMed does.
    Servers and origins are called by their kind's label (sources/kinds.py)."""
    provenance = row.get("provenance") or {}
    venue = row.get("venue")
    published = venue and (row.get("work_type") or "") not in ("preprint", "posted-content")
    if published:
        if str(provenance.get("venue", "")).startswith(("pubmed", "pmc")):
            return f"PubMed ({row.get('venue_abbrev') or venue})"
        return venue
    if row.get("arxiv_id"):
        primary = row.get("primary_category")
        return f"arXiv ({primary.upper()})" if primary else "arXiv"
    server = row.get("server")
    if server:
        category = next((code for scheme, code in subjects if scheme == server), None)
        name = label_of(server) or server
        return f"{name} ({category})" if category else name
    if venue:
        return venue
    origin = row.get("origin") or ""
    return label_of(origin) or origin


def versions_of_work(row: dict, identifiers: list[tuple[str, str]]) -> dict:
    """"Preprint of / published as": the preprint identifiers and the journal DOI of one merged work."""
    preprints = [f"arXiv:{value}" for scheme, value in identifiers if scheme == "arxiv"]
    preprints += [f"doi:{value}" for scheme, value in identifiers if scheme == "doi" and value.startswith("10.1101/")]
    journal = [value for scheme, value in identifiers if scheme == "doi" and not value.startswith(("10.1101/", "10.48550/"))]
    if not preprints or not journal:
        return {}
    return {"preprints": preprints, "published": journal, "venue": row.get("venue")}


def load_subjects(conn: Connection, paper_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    result: dict[int, list[tuple[str, str]]] = {}
    if not paper_ids:
        return result
    rows = conn.execute(
        select(paper_subjects.c.paper_id, paper_subjects.c.scheme, paper_subjects.c.code)
        .where(paper_subjects.c.paper_id.in_(paper_ids), paper_subjects.c.scheme != "arxiv")
        .order_by(paper_subjects.c.paper_id, paper_subjects.c.scheme, paper_subjects.c.code)
    )
    for paper_id, scheme, code in rows:
        result.setdefault(paper_id, []).append((scheme, code))
    return result


def load_identifiers(conn: Connection, paper_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    result: dict[int, list[tuple[str, str]]] = {}
    if not paper_ids:
        return result
    rows = conn.execute(
        select(paper_identifiers.c.paper_id, paper_identifiers.c.scheme, paper_identifiers.c.value)
        .where(paper_identifiers.c.paper_id.in_(paper_ids))
        .order_by(paper_identifiers.c.paper_id, paper_identifiers.c.scheme, paper_identifiers.c.value)
    )
    for paper_id, scheme, value in rows:
        result.setdefault(paper_id, []).append((scheme, value))
    return result


def _item(row: dict, authors: list[dict], categories: list[str]) -> dict:
    primary = row["primary_category"] or (categories[0] if categories else None)
    if primary and primary not in categories:
        categories = [primary, *categories]
    elif primary:
        categories = [primary, *(c for c in categories if c != primary)]
    return {
        "id": row["id"],
        "arxiv_id": row["arxiv_id"],
        "arxiv_version": row["arxiv_version"],
        "source": "arXiv" if row["arxiv_id"] else (row["venue"] or None),
        "title": row["title"],
        "abstract": row["abstract"] or "",
        "authors": [
            {"name": a["name"], "name_norm": a["name_norm"], "affiliation": a["affiliation"], "orcid": a["orcid"]}
            for a in authors
        ],
        "categories": categories,
        "primary_category": primary,
        "announced_on": _as_date(row["announced_on"]),
        "submitted_at": row["submitted_at"],
        "updated_at": row["updated_at"],
        "published_on": _as_date(row["published_on"]),
        "doi": row["doi"],
        "journal_ref": row["journal_ref"],
        "venue": row["venue"],
        "comments": row["comments"],
        "license": row["license"],
        "versions": row["versions"] or [],
        "links": _links(row),
    }


def _links(row: dict) -> dict:
    """Only http(s) URLs: upstream text must never become a javascript: link."""
    arxiv_id = row["arxiv_id"]
    abs_url = _safe_url(row["url_abs"]) or (f"https://arxiv.org/abs/{quote(arxiv_id)}" if arxiv_id else None)
    pdf_url = _safe_url(row["url_pdf"]) or (f"https://arxiv.org/pdf/{quote(arxiv_id)}" if arxiv_id else None)
    doi = row["doi"]
    return {
        "abs": abs_url,
        "pdf": pdf_url,
        "doi": f"https://doi.org/{quote(doi, safe='/:;()._-')}" if doi else None,
    }


def _safe_url(url: str | None) -> str | None:
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def _as_date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _clean(value: str) -> str:
    """Control characters (NUL included, which PostgreSQL refuses in text) become spaces; runs of
    white space collapse."""
    return " ".join(_CONTROL.sub(" ", value).split())


def _dedupe(items) -> list:
    return list(dict.fromkeys(items))


__all__ = [
    "FeedFilters",
    "FeedPage",
    "FeedRows",
    "SEED_MAX",
    "available_dates",
    "category_facets",
    "category_variants",
    "count_matching",
    "feed_page",
    "feed_rows",
    "get_paper",
    "get_papers",
    "latest_announcement",
    "new_seed",
    "shuffle_key",
    "shuffle_key_py",
    "sqlite_match_query",
    "store_stats",
]
