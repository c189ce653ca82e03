"""The arXiv metadata snapshot (arXiv's OAI dump as JSON lines, ~2.5 million papers, ~4 GB).

Read one line at a time, so memory stays flat however large the file: one orjson parse (jsonsafe)
and a few dict lookups per record. authors_parsed ([last, first, suffix, affiliation...]) is
preferred to the one-line `authors`, since it needs no splitting; names still go through
tex_to_unicode because older dumps keep TeX accents in it. A field of the wrong type reads as absent. A line that is not JSON stops the import naming its line; a
record without id or title is passed on with neither, so the pipeline counts it as failed."""

from __future__ import annotations

import re
from typing import IO, Iterator

from ..cleantext import clean_text
from ..errors import ParseError
from ..model import AuthorData, PaperData, VersionData
from ..names import split_author_list, tex_to_unicode
from .arxiv_ids import abs_url, parse_arxiv_id, pdf_url, version_number
from .arxiv_oai import iso_day, rfc822_utc
from .arxiv_rss import ARXIV_FAMILY
from .jsonsafe import as_dict, as_list, as_str, load_json
from .kinds import FileFormat, Head, SourceKind

SOURCE = "arxiv-snapshot"


def iter_snapshot(handle: IO[bytes], location: str) -> Iterator[PaperData]:
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        record = load_json(line, location, malformed="not a JSON line", line=number)
        if not isinstance(record, dict):
            raise ParseError(f"expected a JSON object, got {type(record).__name__}", location=location, line=number)
        yield _paper(record, location, number)


def _paper(record: dict, location: str, number: int) -> PaperData:
    arxiv_id = None
    raw_id = record.get("id")
    if isinstance(raw_id, str):
        try:
            arxiv_id, _ = parse_arxiv_id(raw_id)
        except ParseError:
            arxiv_id = None

    versions: list[VersionData] = []
    for entry in map(as_dict, as_list(record.get("versions"))):
        label = version_number(entry.get("version"))
        if label is not None:
            versions.append(VersionData(version=label, submitted=rfc822_utc(as_str(entry.get("created")))))
    versions.sort(key=lambda v: v.version)
    version = versions[-1].version if versions else None

    if arxiv_id is None:
        # Named by place, so the pipeline's "no identifier, skipped" points at the line.
        source_id = f"{location}:{number}" if not raw_id else str(raw_id)
    else:
        source_id = f"{arxiv_id}v{version}" if version else arxiv_id

    parsed = as_list(record.get("authors_parsed"))
    authors = _authors(parsed) if parsed else split_author_list(clean_text(as_str(record.get("authors"))))
    categories = as_str(record.get("categories"))
    doi = as_str(record.get("doi"))
    return PaperData(
        source=SOURCE,
        source_id=source_id,
        title=clean_text(as_str(record.get("title"))),
        abstract=clean_text(as_str(record.get("abstract"))),
        authors=authors,
        arxiv_id=arxiv_id,
        arxiv_version=version,
        doi=doi.split()[0] if doi and doi.strip() else None,  # several DOIs, space-separated: the first is the paper's
        categories=categories.split() if categories else [],
        journal_ref=clean_text(as_str(record.get("journal-ref"))) or None,
        license=as_str(record.get("license")) or None,  # a URL from arXiv's fixed list: nothing to clean
        comments=clean_text(as_str(record.get("comments"))) or None,
        url_abs=abs_url(arxiv_id) if arxiv_id else None,
        url_pdf=pdf_url(arxiv_id, version) if arxiv_id else None,
        submitted=versions[0].submitted if versions else None,
        updated=iso_day(as_str(record.get("update_date"))),
        versions=versions,
        raw=record,
    )


def _authors(parsed: list) -> list[AuthorData]:
    """[last, first, suffix, affiliation...] -> "First Last Suffix", affiliations joined by "; "."""
    authors = []
    for entry in map(as_list, parsed):
        entry = [part if isinstance(part, str) else "" for part in entry]
        count = len(entry)
        last = entry[0] if count > 0 else ""
        first = entry[1] if count > 1 else ""
        suffix = entry[2] if count > 2 else ""
        # one split/join both drops empty parts and undoes hard wraps inside a name
        name = " ".join(f"{first or ''} {last or ''} {suffix or ''}".split())
        if not name:
            continue
        affiliation = None
        if count > 3:
            affiliation = "; ".join(clean_text(a) for a in entry[3:] if a) or None
        if affiliation:
            affiliation = tex_to_unicode(affiliation)
        authors.append(AuthorData(name=tex_to_unicode(name), affiliation=affiliation))
    return authors


# A snapshot line is one object per line, and its first line names arXiv's snapshot fields.
_SNAPSHOT_ID = re.compile(rb'"id"\s*:')
_SNAPSHOT_FIELDS = re.compile(rb'"(?:submitter|authors_parsed|update_date)"\s*:')


def _sniff(head: Head) -> bool:
    first_line = head.text.split(b"\n", 1)[0]
    return head.text.startswith(b"{") and bool(_SNAPSHOT_ID.search(first_line) and _SNAPSHOT_FIELDS.search(first_line))


# The snapshot (JSON lines, gigabytes): bulk, and committed batch by batch so a late error keeps the rest.
SOURCE_KINDS = (
    SourceKind(
        name=SOURCE, label="arXiv", family=ARXIV_FAMILY,
        file=FileFormat(name=SOURCE, syntax="json", sniff=_sniff, sniff_order=10, description="arXiv snapshot JSON lines",
                        stream=iter_snapshot, bulk=True, commit_each_batch=True),
    ),
)
