"""The papers a briefing is about, as the briefing sees them: numbered 1..N in the order given
(the radar's ranking), each with its field and a vector.

A paper's *field* is what "cross-domain" compares: the arXiv archive of its primary category
("cs", "astro-ph", "cond-mat", "quant-ph"), else the subject a preprint server or Crossref gives
it, else its venue. Vectors are the stored embeddings of one model when every paper has one;
otherwise TF-IDF + LSA vectors computed from the papers' own text (no optional dependency)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field as dc_field
from datetime import date
from urllib.parse import quote

import numpy as np
from sqlalchemy import Connection, func, select

from ..store.feed import source_label
from ..store.schema import paper_authors, paper_embeddings, paper_subjects, papers
from .text import paper_text, phrases

log = logging.getLogger(__name__)

LSA_MODEL = "tfidf-lsa"  # the vector_model of vectors computed here
LSA_DIM = 128
_CHUNK = 900


@dataclass(slots=True)
class BriefPaper:
    n: int  # the paper's number in the briefing: citations are [n]
    paper_id: int
    title: str
    abstract: str = ""
    authors: list[str] = dc_field(default_factory=list)
    label: str = ""  # venue / source as the card shows it: "arXiv (CS.LG)", "Nature", "bioRxiv (Neuroscience)"
    field: str = "other"  # arXiv archive ("cs", "astro-ph") or journal subject or venue
    categories: list[str] = dc_field(default_factory=list)  # arXiv categories, primary first
    url: str | None = None
    announced_on: date | None = None
    embedding: np.ndarray | None = None  # L2-normalised float32
    embedding_model: str | None = None  # the stored model's name, or LSA_MODEL

    def ref(self) -> dict:
        """What a stored briefing keeps of the paper (enough to render citations without the store)."""
        return {
            "n": self.n, "paper_id": self.paper_id, "title": self.title, "authors": self.authors[:8],
            "n_authors": len(self.authors), "label": self.label, "field": self.field,
            "categories": self.categories, "url": self.url,
            "announced_on": self.announced_on.isoformat() if self.announced_on else None,
        }


def field_of(categories: list[str], subjects: list[tuple[str, str]], venue: str | None, server: str | None) -> str:
    if categories:
        return categories[0].split(".", 1)[0].lower()
    if server:
        for scheme, code in subjects:
            if scheme == server:
                return code.strip().lower()
    for scheme, code in subjects:
        if scheme == "crossref":
            return code.strip().lower()
    if venue:
        return venue.strip()
    for scheme, code in subjects:  # MeSH headings last: they are fine-grained
        return code.strip().lower()
    return "other"


def _url(row: dict) -> str | None:
    for candidate in (row.get("url_abs"),):
        if candidate and candidate.lower().startswith(("http://", "https://")):
            return candidate
    if row.get("arxiv_id"):
        return f"https://arxiv.org/abs/{quote(row['arxiv_id'])}"
    if row.get("doi"):
        return f"https://doi.org/{quote(row['doi'], safe='/:;()._-')}"
    return None


def _chunks(items: list, size: int = _CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def papers_from_store(conn: Connection, paper_ids: list[int], model: str | None) -> list[BriefPaper]:
    """The papers in the order given (duplicates and unknown ids dropped), numbered from 1, with
    authors, categories and vectors: the stored embeddings of `model` when every paper has one
    (with `model` None, any stored model that covers them all), else TF-IDF/LSA vectors."""
    ids = list(dict.fromkeys(int(i) for i in paper_ids))
    if not ids:
        return []
    rows: dict[int, dict] = {}
    authors: dict[int, list[str]] = {}
    subjects: dict[int, list[tuple[str, str, bool]]] = {}
    for chunk in _chunks(ids):
        for row in conn.execute(select(papers).where(papers.c.id.in_(chunk))).mappings():
            rows[row["id"]] = dict(row)
        for pid, name in conn.execute(
            select(paper_authors.c.paper_id, paper_authors.c.name)
            .where(paper_authors.c.paper_id.in_(chunk))
            .order_by(paper_authors.c.paper_id, paper_authors.c.position)
        ):
            authors.setdefault(pid, []).append(name)
        for pid, scheme, code, primary in conn.execute(
            select(paper_subjects.c.paper_id, paper_subjects.c.scheme, paper_subjects.c.code, paper_subjects.c.is_primary)
            .where(paper_subjects.c.paper_id.in_(chunk))
            .order_by(paper_subjects.c.paper_id, paper_subjects.c.is_primary.desc(), paper_subjects.c.scheme,
                      paper_subjects.c.code)
        ):
            subjects.setdefault(pid, []).append((scheme, code, bool(primary)))
    found = [i for i in ids if i in rows]
    result: list[BriefPaper] = []
    for n, pid in enumerate(found, start=1):
        row = rows[pid]
        subs = subjects.get(pid, [])
        categories = [code for scheme, code, _ in subs if scheme == "arxiv"]
        primary = row.get("primary_category")
        if primary:
            categories = [primary, *(c for c in categories if c != primary)]
        other = [(scheme, code) for scheme, code, _ in subs if scheme != "arxiv"]
        announced = row.get("announced_on")
        if announced is not None and not isinstance(announced, date):
            announced = date.fromisoformat(str(announced)[:10])
        result.append(
            BriefPaper(
                n=n, paper_id=pid, title=row["title"] or "", abstract=row.get("abstract") or "",
                authors=authors.get(pid, []), label=source_label(row, other),
                field=field_of(categories, other, row.get("venue"), row.get("server")),
                categories=categories, url=_url(row), announced_on=announced,
            )
        )
    attach_vectors(conn, result, model)
    return result


def _stored_vectors(conn: Connection, ids: list[int], model: str) -> dict[int, np.ndarray]:
    vectors: dict[int, np.ndarray] = {}
    for chunk in _chunks(ids):
        for pid, dim, blob in conn.execute(
            select(paper_embeddings.c.paper_id, paper_embeddings.c.dim, paper_embeddings.c.vector)
            .where(paper_embeddings.c.paper_id.in_(chunk), paper_embeddings.c.model == model)
        ):
            vector = np.frombuffer(bytes(blob), dtype="<f2").astype(np.float32)
            if vector.shape[0] == dim:
                vectors[pid] = vector
    return vectors


def _covering_model(conn: Connection, ids: list[int]) -> str | None:
    counts: dict[str, int] = {}
    for chunk in _chunks(ids):
        for name, count in conn.execute(
            select(paper_embeddings.c.model, func.count())
            .where(paper_embeddings.c.paper_id.in_(chunk))
            .group_by(paper_embeddings.c.model)
        ):
            counts[name] = counts.get(name, 0) + count
    complete = sorted(name for name, count in counts.items() if count == len(ids))
    return complete[0] if complete else None


def attach_vectors(conn: Connection, items: list[BriefPaper], model: str | None) -> None:
    ids = [p.paper_id for p in items]
    if not ids:
        return
    name = model or _covering_model(conn, ids)
    vectors = _stored_vectors(conn, ids, name) if name else {}
    dims = {v.shape[0] for v in vectors.values()}
    if len(vectors) == len(ids) and len(dims) == 1:
        for p in items:
            p.embedding = _unit(vectors[p.paper_id][None, :])[0]
            p.embedding_model = name
        return
    if name and vectors:
        log.info("%d of %d papers have %s embeddings: using TF-IDF/LSA vectors", len(vectors), len(ids), name)
    set_lsa_vectors(items)


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def lsa_vectors(texts: list[str], dim: int = LSA_DIM) -> np.ndarray:
    """TF-IDF over key-phrase candidates (1-3-word phrases, sublinear tf), projected on its top
    `dim` singular vectors (LSA; an exact decomposition, no randomness), rows L2-normalised. With
    at most `dim` papers the projection is a rotation: cosines are exactly the TF-IDF cosines."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectorizer = TfidfVectorizer(analyzer=phrases, sublinear_tf=True, min_df=1, norm="l2", dtype=np.float64)
    try:
        tfidf = vectorizer.fit_transform(texts)
    except ValueError:  # no words at all
        return np.zeros((len(texts), 1), dtype=np.float32)
    if tfidf.shape[0] > 2000:
        from sklearn.decomposition import TruncatedSVD

        svd = TruncatedSVD(n_components=min(dim, tfidf.shape[1] - 1), algorithm="arpack", random_state=0)
        reduced = svd.fit_transform(tfidf)
    else:
        # The SVD through the Gram matrix (papers x papers): X = U S V', so X X' = U S^2 U' and the
        # LSA coordinates U S come from one small symmetric eigendecomposition.
        gram = (tfidf @ tfidf.T).toarray()
        values, vectors = np.linalg.eigh(gram)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        keep = max(1, min(dim, int((values > 1e-10).sum())))
        reduced = vectors[:, :keep] * np.sqrt(np.clip(values[:keep], 0.0, None))
    # The sign of each component is fixed by its largest coordinate, so vectors never flip.
    signs = np.sign(reduced[np.abs(reduced).argmax(axis=0), np.arange(reduced.shape[1])])
    signs[signs == 0] = 1.0
    return _unit(reduced * signs)


def set_lsa_vectors(items: list[BriefPaper]) -> None:
    matrix = lsa_vectors([paper_text(p.title, p.abstract) for p in items])
    for p, vector in zip(items, matrix):
        p.embedding = vector
        p.embedding_model = LSA_MODEL


def period_papers(conn: Connection, start: date, end: date, limit: int = 40) -> list[int]:
    """Ids of the papers announced from start to end inclusive (journal papers that were never
    announced count on their publication day), newest day first, then by id; at most `limit`."""
    found: list[tuple[date, int]] = []
    announced = conn.execute(
        select(papers.c.announced_on, papers.c.id)
        .where(papers.c.announced_on >= start, papers.c.announced_on <= end)
        .order_by(papers.c.announced_on.desc(), papers.c.id)
        .limit(limit)
    ).all()
    found.extend((day, pid) for day, pid in announced)
    published = conn.execute(
        select(papers.c.published_on, papers.c.id)
        .where(papers.c.announced_on.is_(None), papers.c.published_on >= start, papers.c.published_on <= end)
        .order_by(papers.c.published_on.desc(), papers.c.id)
        .limit(limit)
    ).all()
    found.extend((day, pid) for day, pid in published)
    found.sort(key=lambda item: (-_ordinal(item[0]), item[1]))
    return [pid for _, pid in found[:limit]]


def _ordinal(day) -> int:
    if not isinstance(day, date):
        day = date.fromisoformat(str(day)[:10])
    return day.toordinal()


def _in_period(start: date, end: date):
    announced = (papers.c.announced_on >= start) & (papers.c.announced_on <= end)
    journal = papers.c.announced_on.is_(None) & (papers.c.published_on >= start) & (papers.c.published_on <= end)
    return announced | journal


def period_fingerprint(conn: Connection, start: date, end: date) -> tuple[int, int]:
    """(papers, highest id) of the period: what a cached sample of it is keyed on (one cheap query)."""
    count, highest = conn.execute(select(func.count(), func.max(papers.c.id)).where(_in_period(start, end))).one()
    return int(count or 0), int(highest or 0)


def period_texts(conn: Connection, start: date, end: date) -> tuple[list[int], list[str]]:
    """(ids, "title. abstract") of every paper of the period (as period_papers counts them), by id."""
    rows = conn.execute(
        select(papers.c.id, papers.c.title, papers.c.abstract).where(_in_period(start, end)).order_by(papers.c.id)
    ).all()
    return [int(r[0]) for r in rows], [f"{r[1] or ''}. {r[2] or ''}" for r in rows]


def period_sample(conn: Connection, start: date, end: date, limit: int = 40, model: str | None = None) -> list[int]:
    """The papers an all-papers briefing of the period reads: a sample covering every cluster of
    the period, its most central papers first (brief/sample.py). Vectors: the stored embeddings
    of `model` when every paper of the period has one, else TF-IDF/LSA of their text."""
    from .sample import covering_sample, text_vectors

    ids, texts = period_texts(conn, start, end)
    if len(ids) <= limit:
        return period_papers(conn, start, end, limit)
    vectors = _stored_vectors(conn, ids, model) if model else {}
    dims = {v.shape[0] for v in vectors.values()}
    if len(vectors) == len(ids) and len(dims) == 1:
        matrix = np.vstack([vectors[i] for i in ids])
    else:
        matrix = text_vectors(texts)
    return [ids[row] for row in covering_sample(matrix, limit)]


def radar_paper_ids(conn: Connection, radar_id: int | None, start: date, end: date, limit: int = 40,
                    model: str | None = None, *, ranker=None, cache=None) -> list[int]:
    """The period's papers a briefing is about: the radar's ranking (academichub.rank) restricted
    to the period, best first; without a radar, a sample covering the period (period_sample);
    when the ranker is unavailable or fails, the period's papers in store order (period_papers).
    `ranker` and `cache`: the long-lived ones of the caller (app.Hub), so the radar's learned
    model and the period's candidates are reused."""
    if radar_id is None:
        return period_sample(conn, start, end, limit, model)
    try:
        from ..rank.service import rank_radar
        from ..store.radars import get_radar
    except ImportError:
        return period_papers(conn, start, end, limit)
    from ..errors import AcademicHubError

    radar = get_radar(conn, radar_id)
    if radar is None:
        return period_papers(conn, start, end, limit)
    in_period = set(period_papers(conn, start, end, limit=1_000_000))
    if not in_period:
        return []
    try:
        ranked = rank_radar(conn, radar, since=start, model=model, today=end, ranker=ranker, cache=cache, explain=0)
    except (AcademicHubError, TypeError, AttributeError, ValueError) as exc:
        log.warning("ranking radar %s failed (%s): briefing the period's papers in store order", radar_id, exc)
        return period_papers(conn, start, end, limit)
    ids = [int(r.id) for r in ranked if int(r.id) in in_period]
    return ids[:limit]
