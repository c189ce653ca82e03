"""arXiv's query API (export.arxiv.org/api/query): Atom feeds of papers by id list or search.

Two layouts are in the wild. The current one declares every namespace on <feed> and serves https
links; the pre-2025 one declared the arxiv and opensearch namespaces on each element, gave
`arxiv:primary_category` a scheme, linked the DOI with <link title="doi"> (used when arxiv:doi is
missing), and padded summaries with whitespace. Both parse into the same PaperData.

A refused query is not an HTTP error alone: arXiv answers 400 with a feed whose single entry has
an id under /api/errors# and the reason in its summary; that becomes a FeedError with the reason.

The recorded responses carry UTF-8 that was decoded as Latin-1 once too often ("WÃ¼bben" for
"Wübben") in names, titles, abstracts and comments. It is repaired: real text practically never
has "Ã" or "Â" followed by a C1 control or Latin-1 symbol, and a repair that fails changes nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterator

from lxml import etree

from ..cleantext import clean_text
from ..errors import FeedError, ParseError
from ..model import AuthorData, FeedInfo, ParsedBatch, PaperData, VersionData
from ..names import tex_to_unicode
from .arxiv_ids import abs_url, parse_arxiv_id, pdf_url
from .arxiv_oai import naive_utc
from .arxiv_rss import ARXIV_FAMILY, ARXIV_NAMESPACE
from .http import HTTPStatusError, PoliteClient
from .kinds import FileFormat, SourceKind, xml_root
from .xmlsafe import parse_xml

SOURCE = "arxiv-api"
MAX_PAGE_SIZE = 2000  # arXiv refuses larger slices
SORT_BY = ("relevance", "lastUpdatedDate", "submittedDate")
SORT_ORDER = ("ascending", "descending")

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"
_OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
_ERROR_ID = "/api/errors#"
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)", re.I)
_CATEGORY_OK = re.compile(r"^[a-z][a-z\-]*(\.[A-Za-z\-]+)?$")
# A lead byte of a two-to-four byte UTF-8 sequence followed by a continuation byte, both read as
# Latin-1 characters: the fingerprint of doubly decoded UTF-8.
_DOUBLE_DECODED = re.compile("[\u00c2-\u00f4][\u0080-\u00bf]")


def undo_double_decoding(text: str) -> str:
    """'Dirk WÃ¼bben' -> 'Dirk Wübben'; text that is not doubly decoded UTF-8 comes back as is."""
    if not _DOUBLE_DECODED.search(text):
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:  # a genuine non-Latin-1 character, or bytes that are not UTF-8
        return text


def _text(element: etree._Element | None) -> str:
    # Repair before cleaning: the stray Latin-1 reading turns some UTF-8 bytes into U+0085 and
    # U+00A0, which clean_text would fold into spaces.
    return clean_text(undo_double_decoding(element.text or "")) if element is not None else ""


def _optional_text(element: etree._Element | None) -> str | None:
    return _text(element) or None


def _atom_datetime(text: str | None, location: str, line: int | None) -> datetime | None:
    """Atom dates as naive UTC (the store keeps UTC without a zone)."""
    if not text or not text.strip():
        return None
    try:
        return naive_utc(datetime.fromisoformat(text.strip()))
    except (ValueError, OverflowError) as exc:  # OverflowError: shifted to UTC past year 9999
        raise ParseError(f"bad Atom date {text.strip()!r}", location=location, line=line) from exc


def _opensearch_int(root: etree._Element, name: str, location: str) -> int | None:
    element = root.find(_OPENSEARCH + name)
    if element is None or not (element.text or "").strip():
        return None
    try:
        return int(element.text.strip())
    except ValueError as exc:
        raise ParseError(f"opensearch:{name} is not a number: {element.text!r}", location=location,
                         line=element.sourceline) from exc


def api_error_message(root: etree._Element) -> str | None:
    """arXiv's reason when the feed is an error feed (one entry with an /api/errors# id), else None."""
    entries = root.findall(_ATOM + "entry")
    if len(entries) != 1 or _ERROR_ID not in (entries[0].findtext(_ATOM + "id") or ""):
        return None
    entry = entries[0]
    return clean_text(entry.findtext(_ATOM + "summary")) or clean_text(entry.findtext(_ATOM + "id"))


def parse_api(content: bytes, location: str) -> ParsedBatch:
    root = parse_xml(content, location)
    if root.tag != _ATOM + "feed":
        raise ParseError(f"not an Atom feed (root <{root.tag}>)", location=location, line=root.sourceline)
    message = api_error_message(root)
    if message is not None:
        raise FeedError(f"arXiv API refused the query: {message}", url=location)

    # the current layout gives the query link no rel; the old one said rel="self"
    self_link = next(
        (link.get("href") for link in root.iterfind(_ATOM + "link") if link.get("rel", "self") == "self"), None
    )
    return ParsedBatch(
        papers=[_parse_entry(entry, location) for entry in root.iterfind(_ATOM + "entry")],
        feed=FeedInfo(title=clean_text(root.findtext(_ATOM + "title")), link=self_link),
        total_results=_opensearch_int(root, "totalResults", location),
        start_index=_opensearch_int(root, "startIndex", location),
    )


def _parse_entry(entry: etree._Element, location: str) -> PaperData:
    line = entry.sourceline
    entry_id = clean_text(entry.findtext(_ATOM + "id"))
    try:
        arxiv_id, version = parse_arxiv_id(entry_id)
    except ParseError as exc:
        raise ParseError(f"entry id is not an arXiv id: {entry_id!r}", location=location, line=line) from exc

    links = [dict(link.attrib) for link in entry.iterfind(_ATOM + "link")]
    doi_link = next((link["href"] for link in links if link.get("title") == "doi" and link.get("href")), None)
    doi = _optional_text(entry.find(_ARXIV + "doi")) or (_DOI_PREFIX.sub("", doi_link.strip()) if doi_link else None)

    primary = entry.find(_ARXIV + "primary_category")
    primary_term = (primary.get("term") or "").strip() if primary is not None else ""
    terms = [(c.get("term") or "").strip() for c in entry.iterfind(_ATOM + "category")]
    categories = list(dict.fromkeys(t for t in [primary_term, *terms] if t))

    authors: list[AuthorData] = []
    raw_authors: list[dict] = []
    for author in entry.iterfind(_ATOM + "author"):
        name = _text(author.find(_ATOM + "name"))
        affiliations = [_text(a) for a in author.iterfind(_ARXIV + "affiliation")]
        affiliation = "; ".join(a for a in affiliations if a) or None
        raw_authors.append({"name": author.findtext(_ATOM + "name"), "affiliations": affiliations})
        if name:
            authors.append(
                AuthorData(name=tex_to_unicode(name), affiliation=tex_to_unicode(affiliation) if affiliation else None)
            )

    published = _atom_datetime(entry.findtext(_ATOM + "published"), location, line)
    updated = _atom_datetime(entry.findtext(_ATOM + "updated"), location, line)
    raw = {
        "id": entry_id,
        "title": entry.findtext(_ATOM + "title"),
        "summary": entry.findtext(_ATOM + "summary"),
        "published": entry.findtext(_ATOM + "published"),
        "updated": entry.findtext(_ATOM + "updated"),
        "authors": raw_authors,
        "primary_category": primary_term or None,
        "categories": terms,
        "doi": entry.findtext(_ARXIV + "doi"),
        "journal_ref": entry.findtext(_ARXIV + "journal_ref"),
        "comment": entry.findtext(_ARXIV + "comment"),
        "links": links,
    }
    return PaperData(
        source=SOURCE,
        source_id=f"{arxiv_id}v{version}" if version else arxiv_id,
        title=_text(entry.find(_ATOM + "title")),
        abstract=_text(entry.find(_ATOM + "summary")),
        authors=authors,
        arxiv_id=arxiv_id,
        arxiv_version=version,
        doi=doi,
        categories=categories,
        journal_ref=_optional_text(entry.find(_ARXIV + "journal_ref")),
        comments=_optional_text(entry.find(_ARXIV + "comment")),
        url_abs=abs_url(arxiv_id),
        url_pdf=pdf_url(arxiv_id, version),
        submitted=published,
        updated=updated,
        # <updated> is when the version returned was submitted (arXiv API manual).
        versions=[VersionData(version=version, submitted=updated)] if version else [],
        raw=raw,
    )


def search_category(category: str, submitted_from: date | None, submitted_to: date | None) -> str:
    """`cat:X AND submittedDate:[YYYYMMDD0000 TO YYYYMMDD2359]`, whole days in GMT as arXiv counts them.

    An open end is filled with a date beyond the archive's range on that side."""
    if not _CATEGORY_OK.match(category):
        raise FeedError(f"bad arXiv category name {category!r}")
    if submitted_from is None and submitted_to is None:
        return f"cat:{category}"
    first = (submitted_from or date(1991, 1, 1)).strftime("%Y%m%d")
    last = (submitted_to or date(9999, 12, 31)).strftime("%Y%m%d")
    if first > last:
        raise FeedError(f"submitted_from {submitted_from} is after submitted_to {submitted_to}")
    return f"cat:{category} AND submittedDate:[{first}0000 TO {last}2359]"


@dataclass(slots=True)
class ArxivApiClient:
    """Queries through the shared PoliteClient (arXiv asks for one request every 3 seconds)."""

    http: PoliteClient
    base_url: str

    search_category = staticmethod(search_category)

    def query(
        self,
        *,
        id_list: list[str] | None = None,
        search_query: str | None = None,
        start: int = 0,
        max_results: int = 100,
        sort_by: str | None = None,
        sort_order: str | None = None,
    ) -> ParsedBatch:
        params = _query_params(id_list, search_query, start, max_results, sort_by, sort_order)
        try:
            # Query results change from one minute to the next: never a conditional GET.
            fetched = self.http.get(self.base_url, params=params, conditional=False)
        except HTTPStatusError as exc:
            message = _error_feed_message(exc.body, exc.url) if exc.status == 400 else None
            if message is None:
                raise
            raise FeedError(f"arXiv API refused the query: {message}", url=exc.url, status=exc.status) from exc
        return parse_api(fetched.content, fetched.url)

    def iter_pages(
        self,
        *,
        id_list: list[str] | None = None,
        search_query: str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        start: int = 0,
        page_size: int = 100,
        limit: int | None = None,
    ) -> Iterator[ParsedBatch]:
        """Page through a query until arXiv's total, `limit` papers, or an empty page."""
        if page_size < 1:
            raise FeedError(f"page_size must be at least 1, not {page_size}")
        fetched = 0
        while limit is None or fetched < limit:
            size = page_size if limit is None else min(page_size, limit - fetched)
            batch = self.query(
                id_list=id_list, search_query=search_query, start=start, max_results=size,
                sort_by=sort_by, sort_order=sort_order,
            )
            if not batch.papers:
                return
            yield batch
            fetched += len(batch.papers)
            start += len(batch.papers)
            if batch.total_results is not None and start >= batch.total_results:
                return


def _query_params(
    id_list: list[str] | None,
    search_query: str | None,
    start: int,
    max_results: int,
    sort_by: str | None,
    sort_order: str | None,
) -> dict[str, str | int]:
    """The parameters in the order arXiv's own clients send them; ids are checked before any request."""
    if not id_list and not search_query:
        raise FeedError("an arXiv API query needs id_list or search_query")
    if start < 0 or not 0 < max_results <= MAX_PAGE_SIZE:
        raise FeedError(f"start must be >= 0 and max_results 1..{MAX_PAGE_SIZE} (got {start}, {max_results})")
    if sort_by is not None and sort_by not in SORT_BY:
        raise FeedError(f"sort_by must be one of {', '.join(SORT_BY)}, not {sort_by!r}")
    if sort_order is not None and sort_order not in SORT_ORDER:
        raise FeedError(f"sort_order must be one of {', '.join(SORT_ORDER)}, not {sort_order!r}")
    params: dict[str, str | int] = {
        "search_query": search_query or "",
        "id_list": ",".join(_checked_id(i) for i in id_list or []),
    }
    if sort_by is not None:
        params["sortBy"] = sort_by
    if sort_order is not None:
        params["sortOrder"] = sort_order
    params["start"] = start
    params["max_results"] = max_results
    return params


def _checked_id(text: str) -> str:
    try:
        arxiv_id, version = parse_arxiv_id(text)
    except ParseError as exc:
        raise FeedError(f"not an arXiv identifier: {text!r}") from exc
    return f"{arxiv_id}v{version}" if version else arxiv_id


def _error_feed_message(body: bytes, location: str | None) -> str | None:
    try:
        root = parse_xml(body, location or "<response>")
    except ParseError:
        return None
    return api_error_message(root) if root.tag == _ATOM + "feed" else None


# arXiv API answers (Atom with arXiv's namespace) are read from files and URLs; the daily source is RSS.
SOURCE_KINDS = (
    SourceKind(
        name=SOURCE, label="arXiv", family=ARXIV_FAMILY,
        file=FileFormat(name=SOURCE, syntax="xml", sniff=xml_root("feed", containing=ARXIV_NAMESPACE),
                        description="arXiv Atom (API)", parse=parse_api),
    ),
)
