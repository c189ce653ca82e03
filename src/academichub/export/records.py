"""What an export writes about one paper, read from the store in bulk (or built from a card's
dict for a citation box). One shape for every format, so BibTeX, RIS, CSL-JSON and Zotero say the
same things."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable

import re

from sqlalchemy import Connection, select

from ..sources.jats import markup_to_text

from ..store.schema import paper_authors, paper_subjects, papers


@dataclass(slots=True)
class ExportRecord:
    id: int
    title: str
    authors: list[str] = field(default_factory=list)  # display names, in order
    abstract: str = ""
    arxiv_id: str | None = None
    doi: str | None = None
    pmid: str | None = None
    pmcid: str | None = None
    venue: str | None = None
    url: str | None = None
    published: date | None = None  # the publication day, else the announcement or submission day
    work_type: str | None = None
    publisher: str | None = None
    issn: str | None = None
    keywords: list[str] = field(default_factory=list)
    primary_category: str | None = None
    journal_ref: str | None = None

    @property
    def is_preprint(self) -> bool:
        """Cited as a preprint: arXiv without a venue, or a preprint server's record."""
        return self.work_type in ("preprint", "posted-content") or (bool(self.arxiv_id) and not self.venue)


def _day(value) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _url(row) -> str | None:
    """The stored landing page, else arXiv's, PubMed's or the DOI's."""
    url = (row.get("url_abs") or "").strip()
    if url.lower().startswith(("http://", "https://")):
        return url
    if row.get("arxiv_id"):
        return f"https://arxiv.org/abs/{row['arxiv_id']}"
    if row.get("pmid"):
        return f"https://pubmed.ncbi.nlm.nih.gov/{row['pmid']}/"
    return None


_MARKUP = re.compile(r"</?(?:p|i|b|em|strong|sup|sub|br|span|title|italic|bold|jats:[a-z]+|sc|u|div|h\d)\b[^<>]*>", re.I)


_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z]+\d*);", re.I)


def _text(value: str | None) -> str:
    """Stored text with publisher markup (<i>, <jats:p>) as the plain text a library holds."""
    value = value or ""
    return markup_to_text(value) if _MARKUP.search(value) or _ENTITY.search(value) else value


def load_records(conn: Connection, paper_ids: Iterable[int]) -> list[ExportRecord]:
    """Records of these papers, in the order given (unknown ids are left out)."""
    wanted = list(dict.fromkeys(int(p) for p in paper_ids))
    rows: dict[int, dict] = {}
    authors: dict[int, list[str]] = {}
    keywords: dict[int, list[str]] = {}
    for start in range(0, len(wanted), 900):
        chunk = wanted[start:start + 900]
        for row in conn.execute(select(papers).where(papers.c.id.in_(chunk))).mappings():
            rows[row["id"]] = dict(row)
        for pid, name in conn.execute(
            select(paper_authors.c.paper_id, paper_authors.c.name)
            .where(paper_authors.c.paper_id.in_(chunk)).order_by(paper_authors.c.paper_id, paper_authors.c.position)
        ):
            authors.setdefault(pid, []).append(name)
        for pid, code in conn.execute(
            select(paper_subjects.c.paper_id, paper_subjects.c.code)
            .where(paper_subjects.c.paper_id.in_(chunk), paper_subjects.c.scheme == "keyword")
            .order_by(paper_subjects.c.paper_id, paper_subjects.c.code)
        ):
            keywords.setdefault(pid, []).append(code)
    out = []
    for pid in wanted:
        row = rows.get(pid)
        if row is None:
            continue
        out.append(ExportRecord(
            id=pid, title=_text(row["title"]), authors=authors.get(pid, []), abstract=_text(row["abstract"]),
            arxiv_id=row["arxiv_id"], doi=row["doi"], pmid=row["pmid"], pmcid=row["pmcid"], venue=row["venue"],
            url=_url(row),
            published=_day(row["published_on"]) or _day(row["announced_on"]) or _day(row["submitted_at"]),
            work_type=row["work_type"], publisher=row["publisher"], issn=row["issn"], keywords=keywords.get(pid, []),
            primary_category=row["primary_category"], journal_ref=row["journal_ref"],
        ))
    return out


def record_from_item(item: dict) -> ExportRecord:
    """A record from a card's or paper page's dict (store/feed.py): what a citation box needs."""
    return ExportRecord(
        id=item.get("id") or 0, title=item.get("title") or "", authors=[a["name"] for a in item.get("authors") or []],
        abstract=item.get("abstract") or "", arxiv_id=item.get("arxiv_id"), doi=item.get("doi"),
        venue=item.get("venue") if item.get("venue") and not (item.get("source") == "arXiv" and not item.get("doi")) else None,
        url=(item.get("links") or {}).get("abs"),
        published=_day(item.get("published_on")) or _day(item.get("announced_on")) or _day(item.get("submitted_at")),
        primary_category=item.get("primary_category"), journal_ref=item.get("journal_ref"),
    )


__all__ = ["ExportRecord", "load_records", "record_from_item"]
