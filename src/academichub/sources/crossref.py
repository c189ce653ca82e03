"""Crossref's REST API (api.crossref.org): journal articles, proceedings, chapters and posted
preprints by DOI, by journal ISSN, by member or DOI prefix, with filters and cursor paging.

Every answer is JSON `{"status": "ok", "message-type": "work" | "work-list", "message": …}`. An
unknown DOI or ISSN is a 404 whose body is the plain text "Resource not found."; a bad filter is a
400 with `{"status": "failed", "message-type": "validation-failure", …}`. Both become FeedError,
named with the URL.

Cursor paging does NOT hand out a new cursor per page: the recorded walk got the same
`next-cursor` back on every page. So a walk ends on an empty page, a short page, when the
total is reached, or when a page repeats the previous one, never because the cursor repeats.

Field choices: the DOI (lower-cased) is the record's id; `published` is the first date given of
published-online, published-print, issued and created (so the online date wins over a later print
issue), with a missing month or day read as the first (the parts stay in raw). Titles, venues and
affiliations may carry markup and entities too ("Science &amp; Applications", "<i>Lyophyllum</i>")
and go through jats.markup_to_text. Some old deposits hold doubly decoded UTF-8 ("Gina MarrÃ£o");
it is repaired as in arXiv's API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterator
from urllib.parse import quote


from ..cleantext import clean_text
from ..errors import ConfigError, FeedError, ParseError, SourceError
from ..model import AuthorData, ParsedBatch, PaperData, RelationData
from ..names import tex_to_unicode
from .arxiv_api import undo_double_decoding
from .arxiv_ids import parse_arxiv_id
from .http import HTTPStatusError, PoliteClient
from .jats import markup_to_text
from .jsonsafe import as_int, json_or_none, load_json
from .kinds import FileFormat, Fetch, MergeFamily, Page, Param, SourceKind, json_key

SOURCE = "crossref"
BASE_URL = "https://api.crossref.org"
MAX_ROWS = 1000  # Crossref refuses larger pages
NOT_FOUND = b"Resource not found."

# Crossref relation type -> RelationData.relation, read as "this record <relation> the other".
# Only relations between versions of the same work; the rest (reviews, comments, data) stay in raw.
RELATIONS = {
    "is-preprint-of": "preprint-of",  # this record is the preprint; the other is the published work
    "has-preprint": "has-preprint",  # the other is this record's preprint
    "is-identical-to": "identical-to",  # the same work under a second DOI (co-published chapters)
}
_RELATION_SCHEMES = {"doi": "doi", "arxiv": "arxiv", "pmid": "pmid"}

# The upstream fields that re-derive a record (plus the bibliographic ones PaperData lacks).
_RAW_FIELDS = (
    "DOI", "type", "subtype", "title", "subtitle", "original-title", "short-title", "abstract", "author",
    "container-title", "short-container-title", "ISSN", "issn-type", "publisher", "member", "prefix",
    "volume", "issue", "page", "article-number", "published-online", "published-print", "published",
    "issued", "posted", "created", "license", "URL", "subject", "relation", "is-referenced-by-count",
    "institution", "group-title", "funder", "update-to",
)
_PUBLISHED_FROM = ("published-online", "published-print", "issued", "created")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)", re.I)
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(?P<id>.+)$", re.I)
_ORCID = re.compile(r"(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$", re.I)
_FILTER_NAME = re.compile(r"^[a-z][a-z0-9.-]*$")
_PARTIAL_DATE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")


def normalize_doi(text: str) -> str:
    """`https://doi.org/10.1038/NNANO.2014.279` -> `10.1038/nnano.2014.279` (DOIs are case-insensitive)."""
    return _DOI_PREFIX.sub("", text.strip()).lower()


# --- parsing -----------------------------------------------------------------------------------------


def parse_works(payload: bytes, location: str) -> ParsedBatch:
    """One API answer: a single work (`message-type: work`) or a page of them (`work-list`)."""
    if payload.strip() == NOT_FOUND:
        raise FeedError("Crossref has no such resource (answered 'Resource not found.')", url=location, status=404)
    document = load_json(payload, location, malformed="not JSON")
    if not isinstance(document, dict):
        raise ParseError(f"expected a JSON object, got {type(document).__name__}", location=location)
    if document.get("status") != "ok":
        raise FeedError(f"Crossref refused the request: {error_message(document)}", url=location)

    kind = document.get("message-type")
    message = document.get("message")
    if not isinstance(message, dict):
        raise ParseError(f"'message' is not an object in a {kind!r} answer", location=location)
    if kind == "work":
        return ParsedBatch(papers=[parse_work(message, location)])
    if kind != "work-list":
        raise ParseError(f"expected a work or a work-list, got message-type {kind!r}", location=location)
    items = message.get("items") or []
    if not isinstance(items, list):
        raise ParseError("'items' is not a list", location=location)
    query = message.get("query") if isinstance(message.get("query"), dict) else {}
    return ParsedBatch(
        papers=[parse_work(item, f"{location} (item {i})") for i, item in enumerate(items)],
        total_results=_optional_int(message.get("total-results"), "total-results", location),
        start_index=_optional_int(query.get("start-index"), "start-index", location),
        resumption_token=message.get("next-cursor") or None,
    )


def error_message(document: Any) -> str:
    """The reason in a `validation-failure` answer: its messages joined, or the raw message."""
    message = document.get("message") if isinstance(document, dict) else None
    if isinstance(message, list):
        reasons = [m.get("message") or m.get("type") for m in message if isinstance(m, dict)]
        if any(reasons):
            return "; ".join(str(r) for r in reasons if r)
    return clean_text(str(message if message is not None else document))[:300]


def parse_work(item: dict, location: str) -> PaperData:
    """One Crossref work object -> PaperData (`location` names the answer in errors)."""
    if not isinstance(item, dict):
        raise ParseError(f"a work is a JSON object, not {type(item).__name__}", location=location)
    doi_field = item.get("DOI")
    if not isinstance(doi_field, str) or not doi_field.strip():
        raise ParseError("work without a DOI", location=location)
    doi = normalize_doi(doi_field)
    arxiv = _ARXIV_DOI.match(_DOI_PREFIX.sub("", doi_field.strip()))

    return PaperData(
        source=SOURCE,
        source_id=doi,
        title=_markup(_first(item.get("title"))),
        abstract=_markup(item.get("abstract"), abstract=True),
        authors=[author for entry in _list(item.get("author")) if (author := _author(entry))],
        arxiv_id=_arxiv_id(arxiv.group("id")) if arxiv else None,
        doi=doi,
        venue=_markup(_first(item.get("container-title"))) or None,
        license=_license(item.get("license")),
        url_abs=item.get("URL") if isinstance(item.get("URL"), str) else None,
        published=next(
            (d for key in _PUBLISHED_FROM if (d := date_from_parts(item.get(key), key, location))), None
        ),
        work_type=item.get("type") if isinstance(item.get("type"), str) else None,
        publisher=_markup(item.get("publisher")) or None,
        issns=[clean_text(issn) for issn in _list(item.get("ISSN")) if isinstance(issn, str) and issn.strip()],
        subjects=[("crossref", label) for s in _list(item.get("subject")) if (label := _markup(s))],
        relations=_relations(item.get("relation")),
        server=_preprint_server(item),
        citation_count=as_int(item.get("is-referenced-by-count")),  # not True, which isinstance(…, int) lets by
        raw={key: item[key] for key in _RAW_FIELDS if key in item},
    )


def date_from_parts(value: Any, field: str, location: str) -> date | None:
    """`{"date-parts": [[2015, 1]]}` -> 2015-01-01; `[[null]]` (no date at all) -> None.

    A part outside the calendar (month 13, 31 February) drops that part and those after it."""
    if not isinstance(value, dict):
        return None
    parts_list = value.get("date-parts")
    if not isinstance(parts_list, list) or not parts_list or not isinstance(parts_list[0], list):
        return None
    try:
        parts = [int(p) for p in parts_list[0] if p is not None][:3]
    except (TypeError, ValueError) as exc:
        raise ParseError(f"{field}: date-parts are not numbers: {parts_list[0]!r}", location=location) from exc
    while parts:
        try:
            return date(*parts, *[1] * (3 - len(parts)))
        except (ValueError, OverflowError):  # OverflowError: a part too big for a C integer
            parts.pop()
    return None


def _author(entry: Any) -> AuthorData | None:
    if not isinstance(entry, dict):
        return None
    personal = " ".join(
        text for key in ("given", "family", "suffix") if (text := _markup(entry.get(key)))
    )
    name = personal or _markup(entry.get("name"))  # organisations ("The … Consortium") have only `name`
    if not name:
        return None
    affiliation = next(
        (text for a in _list(entry.get("affiliation")) if isinstance(a, dict) and (text := _markup(a.get("name")))),
        None,
    )
    orcid = _ORCID.search(entry["ORCID"].strip()) if isinstance(entry.get("ORCID"), str) else None
    return AuthorData(
        name=tex_to_unicode(name),
        affiliation=tex_to_unicode(affiliation) if affiliation else None,
        orcid=orcid.group(1).upper() if orcid else None,
    )


def _relations(value: Any) -> list[RelationData]:
    """`{"is-preprint-of": [{"id-type": "doi", "id": "10.1029/…"}]}` -> preprint-of doi 10.1029/…

    A DOI that is an arXiv DOI (10.48550/arXiv.<id>) is given as the arXiv id: arXiv's own records
    carry the id, not that DOI."""
    relations: list[RelationData] = []
    if not isinstance(value, dict):
        return relations
    for crossref_type, ours in RELATIONS.items():
        for target in _list(value.get(crossref_type)):
            if not isinstance(target, dict) or not isinstance(target.get("id"), str):
                continue
            scheme = _RELATION_SCHEMES.get(str(target.get("id-type", "")).lower())
            identifier = target["id"].strip()
            if scheme == "doi":
                arxiv = _ARXIV_DOI.match(_DOI_PREFIX.sub("", identifier))
                arxiv_id = _arxiv_id(arxiv.group("id")) if arxiv else None
                scheme, identifier = ("arxiv", arxiv_id) if arxiv_id else ("doi", normalize_doi(identifier))
            elif scheme == "arxiv":
                identifier = _arxiv_id(identifier)
            if scheme and identifier:
                relations.append(RelationData(relation=ours, scheme=scheme, value=identifier))
    return relations


def _license(value: Any) -> str | None:
    """The version of record's licence (`content-version: vor`), else the first one listed.

    Elsevier lists its text-mining licence first even on CC BY-NC-ND articles; the reader's
    licence is the one that covers the published version."""
    urls = [
        (entry.get("content-version"), entry["URL"].strip())
        for entry in _list(value)
        if isinstance(entry, dict) and isinstance(entry.get("URL"), str) and entry["URL"].strip()
    ]
    return next((url for version, url in urls if version == "vor"), urls[0][1] if urls else None)


def _preprint_server(item: dict) -> str | None:
    """For posted content, the server that posted it ("biorxiv", "essoar"): the `institution`."""
    if item.get("type") != "posted-content":
        return None
    institution = next((i for i in _list(item.get("institution")) if isinstance(i, dict)), None)
    if institution is None:
        return None
    name = _first(institution.get("acronym")) or _first(institution.get("name"))
    return clean_text(name).lower() or None


def _arxiv_id(text: str) -> str | None:
    try:
        return parse_arxiv_id(text)[0]
    except ParseError:
        return None


def _first(value: Any) -> str:
    """Crossref gives titles and container titles as lists; the first string, or ""."""
    if isinstance(value, str):
        return value
    return next((v for v in _list(value) if isinstance(v, str) and v.strip()), "")


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _markup(value: Any, *, abstract: bool = False) -> str:
    """Markup and entities decoded; doubly decoded UTF-8 ("MarrÃ£o", in old Wiley deposits) repaired."""
    if not isinstance(value, str):
        return ""
    return markup_to_text(undo_double_decoding(value), drop_abstract_heading=abstract)


def _optional_int(value: Any, name: str, location: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"{name} is not a number: {value!r}", location=location)
    return value


# --- the client --------------------------------------------------------------------------------------


@dataclass(slots=True)
class CrossrefClient:
    """Requests through the shared PoliteClient. `mailto` puts the requests in Crossref's polite
    pool (faster, and the address is who Crossref contacts before blocking a misbehaving client)."""

    http: PoliteClient
    base_url: str = BASE_URL
    mailto: str | None = None

    def work(self, doi: str) -> PaperData:
        doi = normalize_doi(doi)
        if not doi:
            raise SourceError("an empty DOI was asked of Crossref")
        path = f"/works/{quote(doi, safe='/()')}"
        batch = self._get(path, {}, f"Crossref has no work with DOI {doi}")
        if len(batch.papers) != 1 or batch.total_results is not None:
            raise ParseError(f"asked for one work, got a list of {len(batch.papers)}", location=self._url(path))
        return batch.papers[0]

    def journal_works(
        self,
        issn: str,
        *,
        from_index_date: date | str | None = None,
        from_pub_date: date | str | None = None,
        until_pub_date: date | str | None = None,
        filter: dict | None = None,  # noqa: A002 - Crossref's own name
        query: str | None = None,
        rows: int | None = 100,
        select: list[str] | str | None = None,
        cursor: str | None = "*",
    ) -> ParsedBatch:
        """One page of a journal's works (GET /journals/{issn}/works)."""
        return self._list(
            _checked_path("journals", issn), query, _filters(from_index_date, from_pub_date, until_pub_date, filter),
            rows, select, cursor, f"Crossref has no journal with ISSN {issn.strip()}",
        )

    def member_works(
        self,
        member_id: int | str,
        *,
        from_index_date: date | str | None = None,
        from_pub_date: date | str | None = None,
        until_pub_date: date | str | None = None,
        filter: dict | None = None,  # noqa: A002
        query: str | None = None,
        rows: int | None = 100,
        select: list[str] | str | None = None,
        cursor: str | None = "*",
    ) -> ParsedBatch:
        """One page of a Crossref member's (a publisher's) works (GET /members/{id}/works)."""
        return self._list(
            _checked_path("members", str(member_id)), query,
            _filters(from_index_date, from_pub_date, until_pub_date, filter),
            rows, select, cursor, f"Crossref has no member {member_id}",
        )

    def prefix_works(
        self,
        prefix: str,
        *,
        from_index_date: date | str | None = None,
        from_pub_date: date | str | None = None,
        until_pub_date: date | str | None = None,
        filter: dict | None = None,  # noqa: A002
        query: str | None = None,
        rows: int | None = 100,
        select: list[str] | str | None = None,
        cursor: str | None = "*",
    ) -> ParsedBatch:
        """One page of the works under a DOI prefix (GET /prefixes/{prefix}/works)."""
        return self._list(
            _checked_path("prefixes", prefix), query, _filters(from_index_date, from_pub_date, until_pub_date, filter),
            rows, select, cursor, f"Crossref has no DOI prefix {prefix.strip()}",
        )

    def works(
        self,
        filter: dict | None = None,  # noqa: A002
        query: str | None = None,
        *,
        from_index_date: date | str | None = None,
        from_pub_date: date | str | None = None,
        until_pub_date: date | str | None = None,
        rows: int | None = 100,
        select: list[str] | str | None = None,
        cursor: str | None = "*",
    ) -> ParsedBatch:
        """One page of all of Crossref's works matching `filter` and `query` (GET /works)."""
        return self._list(
            "/works", query, _filters(from_index_date, from_pub_date, until_pub_date, filter),
            rows, select, cursor, "Crossref found nothing to answer",
        )

    def iter_pages(
        self,
        *,
        issn: str | None = None,
        member_id: int | str | None = None,
        prefix: str | None = None,
        filter: dict | None = None,  # noqa: A002
        query: str | None = None,
        from_index_date: date | str | None = None,
        from_pub_date: date | str | None = None,
        until_pub_date: date | str | None = None,
        rows: int = 100,
        select: list[str] | str | None = None,
        max_pages: int | None = None,
    ) -> Iterator[ParsedBatch]:
        """Every page of a journal's (issn), member's, prefix's or all works, following the cursor.

        Ends after an empty page, a page shorter than `rows`, a page without a next cursor, the
        total reached, a page with the same works as the one before (a cursor gone round), or
        `max_pages`. Empty and repeated pages are not yielded."""
        if sum(x is not None for x in (issn, member_id, prefix)) > 1:
            raise SourceError("iter_pages takes at most one of issn, member_id and prefix")
        if rows < 1:
            raise SourceError(f"rows must be at least 1 to page, not {rows}")
        rows = min(rows, MAX_ROWS)
        dates = {"from_index_date": from_index_date, "from_pub_date": from_pub_date, "until_pub_date": until_pub_date}
        common = {"filter": filter, "query": query, "rows": rows, "select": select, **dates}
        cursor, seen, pages, previous = "*", 0, 0, None
        while max_pages is None or pages < max_pages:
            if issn is not None:
                batch = self.journal_works(issn, cursor=cursor, **common)
            elif member_id is not None:
                batch = self.member_works(member_id, cursor=cursor, **common)
            elif prefix is not None:
                batch = self.prefix_works(prefix, cursor=cursor, **common)
            else:
                batch = self.works(cursor=cursor, **common)
            dois = [paper.source_id for paper in batch.papers]
            if not dois or dois == previous:
                return
            yield batch
            pages += 1
            seen += len(dois)
            if len(dois) < rows or not batch.resumption_token:
                return
            if batch.total_results is not None and seen >= batch.total_results:
                return
            cursor, previous = batch.resumption_token, dois

    # -- plumbing --

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def _list(
        self,
        path: str,
        query: str | None,
        filters: str | None,
        rows: int | None,
        select: list[str] | str | None,
        cursor: str | None,
        not_found: str,
    ) -> ParsedBatch:
        """`rows=None` leaves the page size to Crossref (20); `cursor=None` asks for no cursor."""
        if rows is not None and rows < 0:
            raise SourceError(f"rows must not be negative, not {rows}")
        params: dict[str, str | int] = {}
        if query:
            params["query"] = query
        if filters:
            params["filter"] = filters
        if rows is not None:
            params["rows"] = min(rows, MAX_ROWS)
        if select:
            fields = [select] if isinstance(select, str) else list(select)
            fields = [f.strip() for part in fields for f in part.split(",") if f.strip()]
            if "DOI" not in fields:  # the record's id: without it no work can be parsed
                fields.insert(0, "DOI")
            params["select"] = ",".join(fields)
        if cursor:
            params["cursor"] = cursor
        return self._get(path, params, not_found)

    def _get(self, path: str, params: dict, not_found: str) -> ParsedBatch:
        if self.mailto:
            params = {**params, "mailto": self.mailto}
        try:
            # Crossref answers change by the minute and send no validators: never a conditional GET.
            fetched = self.http.get(self._url(path), params=params or None, conditional=False)
        except HTTPStatusError as exc:
            if exc.status == 404:
                raise FeedError(f"{not_found} (HTTP 404: Resource not found.)", url=exc.url, status=404) from exc
            reason = _refusal(exc.body) if exc.status == 400 else None
            if reason is None:
                raise
            raise FeedError(f"Crossref refused the request: {reason}", url=exc.url, status=400) from exc
        return parse_works(fetched.content, fetched.url)


def _refusal(body: bytes) -> str | None:
    """The reason in a 400's JSON `status: failed` body; None when the body is something else."""
    document = json_or_none(body)
    if not isinstance(document, dict) or document.get("status") == "ok":
        return None
    return error_message(document)


def _checked_path(collection: str, key: str) -> str:
    key = key.strip()
    if not key or any(c in key for c in "/?#"):
        raise SourceError(f"not a usable {collection[:-1]} id for Crossref: {key!r}")
    return f"/{collection}/{quote(key, safe='')}/works"


def _filters(
    from_index_date: date | str | None,
    from_pub_date: date | str | None,
    until_pub_date: date | str | None,
    extra: dict | None,
) -> str | None:
    """Crossref's `filter` parameter: `name:value` pairs joined by commas, the dates first.

    Values: dates as ISO dates, booleans as true/false, a list repeats the name (Crossref ORs
    repeated filters: `type:journal-article,type:posted-content`)."""
    pairs: list[tuple[str, Any]] = [
        ("from-index-date", from_index_date),
        ("from-pub-date", from_pub_date),
        ("until-pub-date", until_pub_date),
        *(extra or {}).items(),
    ]
    rendered: list[str] = []
    for name, value in pairs:
        if value is None:
            continue
        if not isinstance(name, str) or not _FILTER_NAME.match(name):
            raise SourceError(f"not a Crossref filter name: {name!r}")
        for one in value if isinstance(value, (list, tuple, set, frozenset)) else [value]:
            text = _filter_value(name, one)
            if "," in text:
                raise SourceError(f"a Crossref filter value cannot contain a comma: {name}={text!r}")
            rendered.append(f"{name}:{text}")
    return ",".join(rendered) or None


def _filter_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    if name.endswith("-date") and not _PARTIAL_DATE.match(text):
        raise SourceError(f"{name} must be YYYY, YYYY-MM or YYYY-MM-DD, not {text!r}")
    return text


# ----------------------------------------------------------------------------- the crossref kind

# The publishers' own deposit: the record of reference for titles, authors, venues and dates.
CROSSREF_FAMILY = MergeFamily("crossref", default_rank=6, ranks={
    "title": 7, "abstract": 5, "authors": 7, "venue": 7, "published_on": 7, "work_type": 7, "url_abs": 5,
})
_SCOPES = ("issn", "member", "prefix")


def _check(params: dict) -> None:
    if sum(bool(params.get(name)) for name in _SCOPES) != 1:
        raise ConfigError("a crossref source needs exactly one of issn=…, member=… or prefix=…")


def _pages(fetch: Fetch) -> Iterator[Page]:
    params, settings = fetch.params, fetch.settings
    client = CrossrefClient(fetch.http, settings.crossref_url, settings.contact_email)
    yield from client.iter_pages(
        issn=params.get("issn"), member_id=params.get("member"), prefix=params.get("prefix"),
        from_index_date=fetch.start, rows=int(params.get("rows", 200)),
    )


SOURCE_KINDS = (
    SourceKind(
        name=SOURCE,
        label="Crossref",
        family=CROSSREF_FAMILY,
        file=FileFormat(name=SOURCE, syntax="json", sniff=json_key("message-type"), description="a Crossref response",
                        parse=parse_works),
        pages=_pages,
        params=(
            Param("issn", "a journal's ISSN, e.g. 0028-0836"),
            Param("member", "a Crossref member id (a publisher)"),
            Param("prefix", "a DOI prefix, e.g. 10.1111"),
            Param("rows", "works per page (default 200, at most 1000)"),
        ),
        check=_check,
        min_interval=0.1,
    ),
)
