"""A paper's citation on its page: BibTeX (written by bibtexparser) and one line of plain text,
so a reader can copy it into a manuscript without leaving for arXiv or the publisher. Built from
the stored record only: a preprint is cited as arXiv (eprint, archivePrefix, primaryClass), a
published work as an article of its venue with its DOI."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

import bibtexparser
from bibtexparser.model import Entry, Field


@dataclass(frozen=True)
class Citation:
    bibtex: str
    plain: str


def _balanced(text: str) -> str:
    """BibTeX values sit in braces: drop the braces of the text that do not pair up."""
    out, depth = [], 0
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                continue
            depth -= 1
        out.append(ch)
    text = "".join(out)
    while depth:  # unclosed openings: drop them from the right
        i = text.rfind("{")
        text = text[:i] + text[i + 1:]
        depth -= 1
    return text


def _year(paper: dict) -> int | None:
    for key in ("published_on", "announced_on"):
        value = paper.get(key)
        if isinstance(value, date):
            return value.year
    submitted = paper.get("submitted_at")
    return submitted.year if submitted is not None else None


def _family(name: str) -> str:
    parts = name.replace(",", " ").split()
    return parts[-1] if parts else "anon"


def cite_key(paper: dict) -> str:
    """firstauthorYEARfirstword, ASCII only (e.g. burkard2024spin)."""
    authors = paper.get("authors") or []
    family = _family(authors[0]["name"]) if authors else "anon"
    words = [w for w in re.findall(r"[A-Za-z]+", paper.get("title") or "") if len(w) > 3]
    ascii_only = unicodedata.normalize("NFKD", f"{family}{_year(paper) or ''}{words[0] if words else ''}")
    key = re.sub(r"[^A-Za-z0-9]", "", ascii_only.encode("ascii", "ignore").decode()).lower()
    return key or f"paper{paper.get('id', '')}"


def citation(paper: dict) -> Citation:
    authors = [a["name"] for a in paper.get("authors") or []]
    title = " ".join((paper.get("title") or "").split())
    year = _year(paper)
    arxiv_id = paper.get("arxiv_id")
    doi = paper.get("doi")
    venue = paper.get("venue") if paper.get("venue") and not (paper.get("source") == "arXiv" and not doi) else None

    fields = [Field("title", "{" + _balanced(title) + "}"), Field("author", _balanced(" and ".join(authors)))]
    if venue:
        fields.append(Field("journal", _balanced(venue)))
    if year:
        fields.append(Field("year", str(year)))
    if doi:
        fields.append(Field("doi", _balanced(doi)))
    if arxiv_id:
        fields += [Field("eprint", arxiv_id), Field("archivePrefix", "arXiv")]
        if paper.get("primary_category"):
            fields.append(Field("primaryClass", paper["primary_category"]))
    url = (paper.get("links") or {}).get("abs")
    if url:
        fields.append(Field("url", url))
    entry = Entry("article" if venue else "misc", cite_key(paper), fields)
    bibtex = bibtexparser.write_string(bibtexparser.Library([entry])).strip()

    shown = ", ".join(authors[:3]) + (" et al." if len(authors) > 3 else "")
    where = venue or (f"arXiv:{arxiv_id}" if arxiv_id else "")
    bits = [f"{shown}{' ' if shown else ''}({year})." if year else (f"{shown}." if shown else ""), f"{title}."]
    if where:
        bits.append(f"{where}.")
    if doi:
        bits.append(f"https://doi.org/{doi}")
    elif url:
        bits.append(url)
    return Citation(bibtex=bibtex, plain=" ".join(b for b in bits if b))
