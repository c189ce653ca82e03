"""arXiv over OAI-PMH (oaipmh.arxiv.org/oai): the bulk channel, paged by resumption tokens.

Three shapes arrive here: pages in the `arXiv` metadata format (structured authors), pages in
`arXivRaw` (every version with its date, authors as one line), and files of records with the
envelope stripped (root <ListRecords>, no namespaces, oai_dc's title/description/date).

One streaming reader serves a 4 GB file and a single page alike: lxml iterparse filtered to the
few tags that matter, each record read by one walk over its children and then cleared, so
memory stays flat and a record costs microseconds. Deleted records are skipped; an OAI `error`
is either noRecordsMatch (an empty list, not a failure) or a FeedError naming its code."""

from __future__ import annotations

import io
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from typing import IO, Iterator

from ..cleantext import clean_text
from ..errors import FeedError, ParseError
from ..model import AuthorData, PaperData, ParsedBatch, VersionData
from ..names import split_author_list, tex_to_unicode
from .arxiv_ids import abs_url, parse_arxiv_id, pdf_url, version_number
from .arxiv_rss import ARXIV_FAMILY
from .http import PoliteClient
from .kinds import FileFormat, SourceKind, xml_root
from .xmlsafe import iterparse_safe

SOURCE = "arxiv-oai"
OAI_NS = "http://www.openarchives.org/OAI/2.0/"
ARXIV_NS = "http://arxiv.org/OAI/arXiv/"
ARXIV_RAW_NS = "http://arxiv.org/OAI/arXivRaw/"

_O = f"{{{OAI_NS}}}"
_A = f"{{{ARXIV_NS}}}"
_R = f"{{{ARXIV_RAW_NS}}}"

# Tags are compared as strings; each envelope tag is known with and without the OAI namespace
# because the stripped files drop it.
_RECORDS = {_O + "record", "record"}
_TOKEN = _O + "resumptionToken"
_ERROR = _O + "error"
# Proof that a document with no records is still an OAI list and not, say, an HTML error page.
_ENVELOPES = {_O + "responseDate", "ListRecords"}
_TAGS = (_O + "record", "record", _TOKEN, _ERROR, _O + "responseDate", "ListRecords")

_HEADER = {_O + "header", "header"}
_METADATA = {_O + "metadata", "metadata"}
_HEADER_FIELDS = {
    _O + "identifier": "identifier", "identifier": "identifier",
    _O + "datestamp": "datestamp", "datestamp": "datestamp",
    _O + "setSpec": "setSpec", "setSpec": "setSpec",
}

_ARXIV = _A + "arXiv"
_ARXIV_AUTHORS = _A + "authors"
_ARXIV_FIELDS = {
    _A + name: name
    for name in (
        "id", "created", "updated", "title", "categories", "comments", "proxy", "report-no", "msc-class",
        "acm-class", "journal-ref", "doi", "license", "abstract",
    )
}
_AUTHOR_PARTS = {_A + "keyname": 0, _A + "forenames": 1, _A + "suffix": 2}
_AFFILIATION = _A + "affiliation"

_ARXIV_RAW = _R + "arXivRaw"
_RAW_VERSION = _R + "version"
_RAW_VERSION_DATE = _R + "date"
_RAW_VERSION_SIZE = _R + "size"
_RAW_FIELDS = {
    _R + name: name
    for name in (
        "id", "submitter", "title", "authors", "categories", "comments", "proxy", "report-no", "msc-class",
        "acm-class", "journal-ref", "doi", "license", "abstract",
    )
}

# The stripped files: oai_dc's elements without a namespace.
_DC_FIELDS = {"title": "title", "description": "description", "date": "date"}

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


def rfc822_utc(text: str | None) -> datetime | None:
    """arXiv's version dates ("Mon, 2 Apr 2007 19:18:42 GMT") as naive UTC, the store's convention.

    The common all-GMT spelling is split by hand: email.utils costs ~10 µs a date, too much for
    millions of versions. Anything else goes through email.utils; garbage gives None (a number too
    big for the calendar is OverflowError, not ValueError, in both)."""
    if not text:
        return None
    parts = text.split()
    if len(parts) == 6 and parts[5] == "GMT":
        try:
            hour, minute, second = parts[4].split(":")
            return datetime(int(parts[3]), _MONTHS[parts[2]], int(parts[1]), int(hour), int(minute), int(second))
        except (KeyError, ValueError, OverflowError):
            pass
    try:
        return naive_utc(parsedate_to_datetime(text))
    except (TypeError, ValueError, OverflowError):
        return None


def naive_utc(moment: datetime) -> datetime:
    """The store keeps naive UTC: an aware moment is converted (OverflowError past year 9999)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def iso_day(text: str | None) -> datetime | None:
    """"2007-04-02" as midnight of that day (a full ISO moment as naive UTC); a malformed date is
    dropped, not fatal."""
    if not text:
        return None
    try:
        return naive_utc(datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError):
        return None


def _first_doi(text: str | None) -> str | None:
    """arXiv's doi field may list several DOIs separated by spaces; the first is the paper's."""
    if not text:
        return None
    parts = text.split()
    return parts[0] if parts else None


def _or_none(text: str | None) -> str | None:
    return clean_text(text) or None


class _Reader:
    """Walks one OAI-PMH document. Papers stream out; what the page says about paging stays here."""

    __slots__ = ("location", "resumption_token", "complete_list_size", "cursor")

    def __init__(self, location: str):
        self.location = location
        self.resumption_token: str | None = None
        self.complete_list_size: int | None = None
        self.cursor: int | None = None

    def papers(self, handle: IO[bytes]) -> Iterator[PaperData]:
        recognised = False
        for element in iterparse_safe(handle, _TAGS, self.location):
            tag = element.tag
            if tag in _RECORDS:
                recognised = True
                paper = _record(element, self.location)
                # Free the record and everything before it: the tree never grows past one record.
                element.clear()
                parent = element.getparent()
                if parent is not None:
                    while element.getprevious() is not None:
                        del parent[0]
                if paper is not None:
                    yield paper
            elif tag == _TOKEN:
                self._token(element)
            elif tag == _ERROR:
                recognised = True
                self._error(element)
            elif tag in _ENVELOPES:
                recognised = True
        if not recognised:
            raise ParseError("not an OAI-PMH document: no envelope and no records", location=self.location, line=1)

    def _token(self, element) -> None:
        self.resumption_token = (element.text or "").strip() or None
        size = element.get("completeListSize")
        cursor = element.get("cursor")
        try:
            self.complete_list_size = int(size) if size else None
            self.cursor = int(cursor) if cursor else None
        except ValueError as exc:
            raise ParseError(
                f"resumptionToken has a non-numeric cursor or completeListSize ({cursor!r}, {size!r})",
                location=self.location,
                line=element.sourceline,
            ) from exc

    def _error(self, element) -> None:
        code = element.get("code") or "unknown"
        if code == "noRecordsMatch":  # the protocol's way of saying "an empty list"
            return
        message = clean_text(element.text)
        raise FeedError(f"OAI-PMH error {code}: {message}" if message else f"OAI-PMH error {code}", url=self.location)


def iter_oai(handle: IO[bytes], location: str) -> Iterator[PaperData]:
    """Every live record of an OAI-PMH file or page, streamed; a truncated file raises ParseError."""
    return _Reader(location).papers(handle)


def parse_oai_page(content: bytes, location: str) -> ParsedBatch:
    """One ListRecords response: its papers and where the list goes on (no token = last page)."""
    if not content.strip():
        raise ParseError("empty document", location=location, line=1)
    reader = _Reader(location)
    papers = list(reader.papers(io.BytesIO(content)))
    return ParsedBatch(
        papers=papers,
        resumption_token=reader.resumption_token,
        complete_list_size=reader.complete_list_size,
        start_index=reader.cursor,
    )


def _record(element, location: str) -> PaperData | None:
    header = metadata = None
    for child in element:
        tag = child.tag  # lxml builds the tag string on every access: read it once
        if tag in _HEADER:
            header = child
        elif tag in _METADATA:
            metadata = child
    if header is None:
        raise ParseError("record without header", location=location, line=element.sourceline)
    if header.get("status") == "deleted":
        return None
    head: dict = {"identifier": None, "datestamp": None, "setSpec": []}
    for child in header:
        name = _HEADER_FIELDS.get(child.tag)
        if name == "setSpec":
            head["setSpec"].append(child.text)
        elif name is not None:
            head[name] = child.text
    if metadata is None or not len(metadata):
        raise ParseError(
            f"record {head['identifier']!r} is neither deleted nor has metadata",
            location=location,
            line=element.sourceline,
        )
    container = metadata[0]
    tag = container.tag
    if tag == _ARXIV:
        return _from_arxiv(container, head, location)
    if tag == _ARXIV_RAW:
        return _from_arxiv_raw(container, head, location)
    if tag in _DC_FIELDS:
        return _from_stripped(metadata, head, location)
    raise ParseError(
        f"unsupported metadata format <{tag}>: harvest with metadataPrefix arXiv or arXivRaw",
        location=location,
        line=container.sourceline,
    )


def _identify(head: dict, fallback: str | None, element, location: str) -> tuple[str, str | None, int | None]:
    """(source_id, arxiv_id, version) from the OAI identifier, else the metadata's own id.

    A record whose identifier is not an arXiv id comes out with arxiv_id None, so the pipeline
    counts it as failed and names it instead of one odd record aborting a whole harvest."""
    for text in (head["identifier"], fallback):
        if text:
            try:
                arxiv_id, version = parse_arxiv_id(text)
            except ParseError:
                continue
            return (f"{arxiv_id}v{version}" if version else arxiv_id), arxiv_id, version
    return (head["identifier"] or fallback or f"{location}:{element.sourceline}").strip(), None, None


def _urls(arxiv_id: str | None, version: int | None) -> tuple[str | None, str | None]:
    if arxiv_id is None:
        return None, None
    return abs_url(arxiv_id), pdf_url(arxiv_id, version)


def _from_stripped(metadata, head: dict, location: str) -> PaperData:
    fields: dict = {}
    for child in metadata:
        name = _DC_FIELDS.get(child.tag)
        if name is not None:
            fields[name] = child.text
    source_id, arxiv_id, version = _identify(head, None, metadata, location)
    url_abs, url_pdf = _urls(arxiv_id, version)
    return PaperData(
        source=SOURCE,
        source_id=source_id,
        title=clean_text(fields.get("title")),
        abstract=clean_text(fields.get("description")),
        arxiv_id=arxiv_id,
        arxiv_version=version,
        url_abs=url_abs,
        url_pdf=url_pdf,
        submitted=iso_day(fields.get("date")),
        raw={"format": "oai_dc", **head, **fields},
    )


def _from_arxiv(container, head: dict, location: str) -> PaperData:
    fields: dict = {}
    authors: list[AuthorData] = []
    raw_authors: list[list] = []
    for child in container:
        tag = child.tag
        name = _ARXIV_FIELDS.get(tag)
        if name is not None:
            fields[name] = child.text
        elif tag == _ARXIV_AUTHORS:
            for author in child:
                parts: list = [None, None, None, []]  # keyname, forenames, suffix, affiliations
                for part in author:
                    part_tag = part.tag
                    index = _AUTHOR_PARTS.get(part_tag)
                    if index is not None:
                        parts[index] = part.text
                    elif part_tag == _AFFILIATION and part.text:
                        parts[3].append(part.text)
                raw_authors.append(parts)
                full = " ".join(p.strip() for p in (parts[1], parts[0], parts[2]) if p and p.strip())
                if full:
                    affiliation = "; ".join(clean_text(a) for a in parts[3]) or None
                    authors.append(AuthorData(name=tex_to_unicode(full), affiliation=affiliation))
    source_id, arxiv_id, version = _identify(head, fields.get("id"), container, location)
    url_abs, url_pdf = _urls(arxiv_id, version)
    categories = fields.get("categories")
    return PaperData(
        source=SOURCE,
        source_id=source_id,
        title=clean_text(fields.get("title")),
        abstract=clean_text(fields.get("abstract")),
        authors=authors,
        arxiv_id=arxiv_id,
        arxiv_version=version,
        doi=_first_doi(fields.get("doi")),
        categories=categories.split() if categories else [],
        journal_ref=_or_none(fields.get("journal-ref")),
        license=_or_none(fields.get("license")),
        comments=_or_none(fields.get("comments")),
        url_abs=url_abs,
        url_pdf=url_pdf,
        submitted=iso_day(fields.get("created")),
        updated=iso_day(fields.get("updated")),
        raw={"format": "arXiv", **head, **fields, "authors": raw_authors},
    )


def _from_arxiv_raw(container, head: dict, location: str) -> PaperData:
    fields: dict = {}
    versions: list[VersionData] = []
    raw_versions: list[dict] = []
    for child in container:
        tag = child.tag
        name = _RAW_FIELDS.get(tag)
        if name is not None:
            fields[name] = child.text
        elif tag == _RAW_VERSION:
            label = child.get("version") or ""
            when = size = None
            for part in child:
                part_tag = part.tag
                if part_tag == _RAW_VERSION_DATE:
                    when = part.text
                elif part_tag == _RAW_VERSION_SIZE:
                    size = part.text
            raw_versions.append({"version": label, "date": when, "size": size})
            number = version_number(label)
            if number is not None:
                versions.append(VersionData(version=number, submitted=rfc822_utc(when), size=size))
    source_id, arxiv_id, version = _identify(head, fields.get("id"), container, location)
    versions.sort(key=lambda v: v.version)
    if arxiv_id is not None and versions:
        version = versions[-1].version
        source_id = f"{arxiv_id}v{version}"
    url_abs, url_pdf = _urls(arxiv_id, version)
    categories = fields.get("categories")
    return PaperData(
        source=SOURCE,
        source_id=source_id,
        title=clean_text(fields.get("title")),
        abstract=clean_text(fields.get("abstract")),
        authors=split_author_list(clean_text(fields.get("authors"))),
        arxiv_id=arxiv_id,
        arxiv_version=version,
        doi=_first_doi(fields.get("doi")),
        categories=categories.split() if categories else [],
        journal_ref=_or_none(fields.get("journal-ref")),
        license=_or_none(fields.get("license")),
        comments=_or_none(fields.get("comments")),
        url_abs=url_abs,
        url_pdf=url_pdf,
        submitted=versions[0].submitted if versions else None,
        updated=versions[-1].submitted if len(versions) > 1 else None,
        versions=versions,
        raw={"format": "arXivRaw", **head, **fields, "versions": raw_versions},
    )


def oai_day(value: date | str | None) -> str | None:
    """OAI-PMH's from/until at arXiv's granularity (YYYY-MM-DD)."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()[:10]
    return value


class OaiClient:
    """ListRecords against an OAI-PMH endpoint. Flow control (503 + Retry-After) is PoliteClient's."""

    def __init__(self, http: PoliteClient, base_url: str):
        self.http = http
        self.base_url = base_url

    def list_records(
        self,
        *,
        metadata_prefix: str = "arXiv",
        set_spec: str | None = None,
        from_date: date | str | None = None,
        until_date: date | str | None = None,
        resumption_token: str | None = None,
    ) -> ParsedBatch:
        if resumption_token:
            # The protocol makes resumptionToken an exclusive argument: anything else is badArgument.
            params = {"verb": "ListRecords", "resumptionToken": resumption_token}
        else:
            params = {"verb": "ListRecords", "metadataPrefix": metadata_prefix}
            if set_spec:
                params["set"] = set_spec
            if from_date:
                params["from"] = oai_day(from_date)
            if until_date:
                params["until"] = oai_day(until_date)
        fetched = self.http.get(self.base_url, params=params, conditional=False)
        return parse_oai_page(fetched.content, fetched.url)


# OAI-PMH dumps (bulk: parsed in a worker process while the writer stores the last batch).
SOURCE_KINDS = (
    SourceKind(
        name=SOURCE, label="arXiv", family=ARXIV_FAMILY,
        file=FileFormat(name=SOURCE, syntax="xml", sniff=xml_root("OAI-PMH", "ListRecords", "GetRecord", "record"),
                        description="arXiv OAI-PMH", stream=iter_oai, bulk=True),
    ),
)
