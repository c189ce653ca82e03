"""The one shape every source parses into. Sources know nothing of the database; the store knows
nothing of upstream formats; PaperData is the contract between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(slots=True)
class AuthorData:
    name: str
    affiliation: str | None = None
    orcid: str | None = None


@dataclass(slots=True)
class VersionData:
    version: int
    submitted: datetime | None = None
    size: str | None = None


@dataclass(slots=True)
class RelationData:
    """A link to another version of the same work, as a source states it."""

    relation: str  # this record <relation> the other: "preprint-of" | "has-preprint" | "identical-to"
    scheme: str  # "doi" | "arxiv" | "pmid"
    value: str


@dataclass(slots=True)
class PaperData:
    """What one source said about one work, already cleaned (Unicode names, clean abstract)."""

    source: str  # "arxiv-rss", "arxiv-api", "arxiv-oai", "arxiv-snapshot", ...
    source_id: str  # the source's own id for this record, e.g. "2411.17700v1"
    title: str
    abstract: str = ""
    authors: list[AuthorData] = field(default_factory=list)
    arxiv_id: str | None = None  # versionless
    arxiv_version: int | None = None
    doi: str | None = None
    pmid: str | None = None
    pmcid: str | None = None
    openalex_id: str | None = None
    s2_id: str | None = None
    categories: list[str] = field(default_factory=list)  # primary first
    venue: str | None = None
    journal_ref: str | None = None
    license: str | None = None
    comments: str | None = None
    url_abs: str | None = None
    url_pdf: str | None = None
    submitted: datetime | None = None
    announced: date | None = None
    updated: datetime | None = None
    published: date | None = None
    versions: list[VersionData] = field(default_factory=list)
    announce_type: str | None = None  # arXiv RSS: new | cross | replace | replace-cross
    work_type: str | None = None  # journal-article | preprint | proceedings-article | review | ...
    publisher: str | None = None
    issns: list[str] = field(default_factory=list)
    subjects: list[tuple[str, str]] = field(default_factory=list)  # other taxonomies: ("mesh", "Humans")
    keywords: list[str] = field(default_factory=list)
    relations: list[RelationData] = field(default_factory=list)
    server: str | None = None  # the preprint server for non-arXiv preprints: "biorxiv" | "medrxiv"
    tldr: str | None = None
    citation_count: int | None = None
    raw: dict = field(default_factory=dict)  # what is needed to re-derive this record

    @property
    def primary_category(self) -> str | None:
        return self.categories[0] if self.categories else None


@dataclass(slots=True)
class FeedInfo:
    """What a daily announcement feed says about itself, apart from its papers."""

    title: str
    link: str | None = None
    announced: date | None = None
    skip_days: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ParsedBatch:
    """One parsed document: its papers, plus what it says about itself (feed metadata, paging)."""

    papers: list[PaperData]
    feed: FeedInfo | None = None
    total_results: int | None = None
    start_index: int | None = None
    resumption_token: str | None = None
    complete_list_size: int | None = None
