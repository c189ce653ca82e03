"""A paper's citation on its page and on every card: BibTeX, RIS and one line of plain text, so a
reader can copy it into a manuscript without leaving for arXiv or the publisher. Written by the
exporters (export/formats.py: the same BibTeX and RIS the Saved page downloads) from the card's
dict: a preprint is cited as arXiv (eprint, archivePrefix, primaryClass), a published work as an
article of its venue with its DOI."""

from __future__ import annotations

from dataclasses import dataclass

from ..export import formats
from ..export.records import record_from_item


@dataclass(frozen=True)
class Citation:
    bibtex: str
    plain: str
    ris: str = ""


def cite_key(paper: dict) -> str:
    """firstauthorYEARfirstword, ASCII only (e.g. burkard2024spin)."""
    return formats.cite_key(record_from_item(paper))


def citation(paper: dict) -> Citation:
    record = record_from_item(paper)
    return Citation(
        bibtex=formats.to_bibtex([record], full=False).strip(),
        plain=formats.plain_citation(record),
        ris=formats.to_ris([record]).strip(),
    )
