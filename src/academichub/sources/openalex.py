"""OpenAlex (api.openalex.org): works selected by filter (a journal, an ISSN, a topic, a date range),
paged with cursors, and venues looked up by ISSN.

OpenAlex ships no abstract text, only an inverted index (word -> positions) for copyright reasons;
the abstract is rebuilt from it, so punctuation and case are whatever OpenAlex tokenised. Ids come
as URLs (https://openalex.org/W…, https://doi.org/…, https://pubmed.ncbi.nlm.nih.gov/…) and are
stored in their bare forms. An arXiv preprint is recognised by an arxiv.org location or by arXiv's
own DataCite DOI, so the work meets its arXiv record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Iterator

from ..cleantext import clean_text
from ..errors import ConfigError, FeedError, ParseError
from ..model import AuthorData, ParsedBatch, PaperData
from .arxiv_ids import parse_arxiv_id
from .http import HTTPStatusError, PoliteClient
from .jsonsafe import as_dict, as_int, as_list, as_str, json_or_none, load_json
from .kinds import FileFormat, Fetch, Head, MergeFamily, Page, Param, SourceKind

SOURCE = "openalex"
DEFAULT_BASE_URL = "https://api.openalex.org"
MAX_PER_PAGE = 200  # OpenAlex refuses larger pages

# The first letter of an OpenAlex id says what kind of entity it is.
ENTITY_KINDS = {
    "W": "work", "A": "author", "S": "source", "I": "institution", "P": "publisher",
    "F": "funder", "T": "topic", "C": "concept", "K": "keyword",
}
_ENTITY_ID = re.compile(r"^(?:https?://openalex\.org/)?(?P<id>(?P<kind>[A-Za-z])\d+)$")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)", re.I)
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(?P<id>.+)$", re.I)
_ARXIV_URL = re.compile(r"^https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/(?P<id>[^?#]+?)/?(?:[?#].*)?$", re.I)
_PMID_URL = re.compile(r"^(?:https?://pubmed\.ncbi\.nlm\.nih\.gov/)?(?P<id>\d+)/?$")
_PMCID_URL = re.compile(r"^(?:https?://www\.ncbi\.nlm\.nih\.gov/pmc/articles/)?(?:PMC)?(?P<id>\d+)/?$", re.I)
_ORCID_URL = re.compile(r"(?P<id>\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
_ISSN = re.compile(r"^(?P<a>\d{4})-?(?P<b>\d{3}[\dXx])$")
_FILTER_KEY = re.compile(r"^[a-z_][a-z0-9_.]*$")

# The top-level fields of a work that parse_work reads: kept in `raw` so the record can be re-derived.
_RAW_FIELDS = (
    "id", "doi", "title", "display_name", "publication_date", "publication_year", "ids", "language",
    "type", "type_crossref", "authorships", "primary_location", "best_oa_location", "locations",
    "primary_topic", "topics", "concepts", "keywords", "cited_by_count", "abstract_inverted_index",
    "biblio", "is_retracted", "updated_date", "created_date",
)


def short_id(value: str | None, location: str) -> tuple[str, str]:
    """https://openalex.org/W2741809807 -> ("W2741809807", "work")."""
    match = _ENTITY_ID.match((as_str(value) or "").strip())
    if not match:
        raise ParseError(f"not an OpenAlex id: {value!r}", location=location)
    kind = ENTITY_KINDS.get(match.group("kind").upper())
    if kind is None:
        raise ParseError(f"unknown OpenAlex entity kind in id {value!r}", location=location)
    return match.group("id").upper(), kind


def bare_doi(value: str | None) -> str | None:
    """https://doi.org/10.7717/PeerJ.4375 -> 10.7717/peerj.4375 (DOIs are case-insensitive)."""
    if not value or not value.strip():
        return None
    return _DOI_PREFIX.sub("", value.strip()).lower() or None


def bare_orcid(value: str | None) -> str | None:
    match = _ORCID_URL.search((value or "").strip())
    return match.group("id") if match else None


def rebuild_abstract(inverted_index: dict[str, list[int]] | None) -> str:
    """Put every word at its positions and read them in order (positions that are not integers are skipped)."""
    if not isinstance(inverted_index, dict):
        return ""
    placed = sorted(
        (position, word)
        for word, positions in inverted_index.items()
        for position in as_list(positions)
        if isinstance(position, int)
    )
    return clean_text(" ".join(word for _position, word in placed))


def _date(value: str | None, what: str, location: str) -> date | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise ParseError(f"bad {what} {value!r}", location=location)
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise ParseError(f"bad {what} {value!r}", location=location) from exc


def _pmid(ids: dict) -> str | None:
    match = _PMID_URL.match((as_str(ids.get("pmid")) or "").strip())
    return match.group("id") if match else None


def _pmcid(ids: dict) -> str | None:
    """OpenAlex gives …/pmc/articles/5815332; the usual spelling is PMC5815332."""
    match = _PMCID_URL.match((as_str(ids.get("pmcid")) or "").strip())
    return f"PMC{match.group('id')}" if match else None


def _arxiv_id(doi: str | None, locations: list[dict]) -> str | None:
    """The versionless arXiv id, from arXiv's DataCite DOI or from an arxiv.org landing page or PDF."""
    candidates = []
    if doi and (match := _ARXIV_DOI.match(doi)):
        candidates.append(match.group("id"))
    for loc in locations:
        for url in (as_str(loc.get("landing_page_url")), as_str(loc.get("pdf_url"))):
            if url and (match := _ARXIV_URL.match(url.strip())):
                candidates.append(match.group("id"))
    for candidate in candidates:
        try:
            return parse_arxiv_id(candidate)[0]
        except ParseError:
            continue
    return None


def _authors(authorships: list[dict]) -> list[AuthorData]:
    """In OpenAlex's order; the first matched institution, else the first affiliation as printed."""
    authors = []
    for authorship in map(as_dict, authorships):
        author = as_dict(authorship.get("author"))
        name = clean_text(as_str(author.get("display_name")) or as_str(authorship.get("raw_author_name")))
        if not name:
            continue
        institutions = [n for i in as_list(authorship.get("institutions")) if (n := as_str(as_dict(i).get("display_name")))]
        if institutions:
            affiliation = clean_text(institutions[0])
        else:
            printed = [s for s in as_list(authorship.get("raw_affiliation_strings")) if isinstance(s, str) and s.strip()]
            affiliation = clean_text(printed[0]) if printed else None
        authors.append(AuthorData(name=name, affiliation=affiliation or None, orcid=bare_orcid(as_str(author.get("orcid")))))
    return authors


def _subjects(work: dict) -> list[tuple[str, str]]:
    """Topics, primary first; the older concepts only where a work has no topics (a concept scored 0
    is an ancestor OpenAlex added, not something the work is about)."""
    primary = as_dict(work.get("primary_topic"))
    names = [primary.get("display_name")] + [as_dict(t).get("display_name") for t in as_list(work.get("topics"))]
    if not any(isinstance(n, str) and n for n in names):
        concepts = map(as_dict, as_list(work.get("concepts")))
        names = [c.get("display_name") for c in concepts if isinstance(c.get("score"), (int, float)) and c["score"] > 0]
    return [("openalex", name) for name in dict.fromkeys(clean_text(n) for n in names if isinstance(n, str)) if name]


def _publisher(source: dict) -> str | None:
    """The host organisation when it is a publisher (P…): a repository's host is an institution."""
    match = _ENTITY_ID.match(as_str(source.get("host_organization")) or "")
    if match and match.group("kind").upper() == "P":
        return clean_text(as_str(source.get("host_organization_name"))) or None
    return None


def parse_work(work: dict, location: str) -> PaperData:
    """One OpenAlex work; any other entity (author, institution, source…) is refused."""
    if not isinstance(work, dict):
        raise ParseError(f"expected an OpenAlex work object, got {type(work).__name__}", location=location)
    work_id, kind = short_id(work.get("id"), location)
    if kind != "work":
        raise ParseError(f"not an OpenAlex work: {work_id} is an OpenAlex {kind}", location=location)

    ids = as_dict(work.get("ids"))
    doi = bare_doi(as_str(work.get("doi")) or as_str(ids.get("doi")))
    primary = as_dict(work.get("primary_location"))
    best_oa = as_dict(work.get("best_oa_location"))
    source = as_dict(primary.get("source"))
    locations = [loc for loc in [primary, *map(as_dict, as_list(work.get("locations"))), best_oa] if loc]
    cited_by = as_int(work.get("cited_by_count"))
    return PaperData(
        source=SOURCE,
        source_id=work_id,
        title=clean_text(as_str(work.get("title")) or as_str(work.get("display_name"))),
        abstract=rebuild_abstract(work.get("abstract_inverted_index")),
        authors=_authors(as_list(work.get("authorships"))),
        arxiv_id=_arxiv_id(doi, locations),
        doi=doi,
        pmid=_pmid(ids),
        pmcid=_pmcid(ids),
        openalex_id=work_id,
        venue=clean_text(as_str(source.get("display_name"))) or None,
        license=as_str(best_oa.get("license")) or as_str(primary.get("license")) or None,
        url_abs=as_str(primary.get("landing_page_url")) or None,
        url_pdf=as_str(best_oa.get("pdf_url")) or as_str(primary.get("pdf_url")) or None,
        published=_date(work.get("publication_date"), "publication_date", location),
        work_type=as_str(work.get("type")) or None,
        publisher=_publisher(source),
        issns=list(dict.fromkeys(i for i in as_list(source.get("issn")) if isinstance(i, str))),
        subjects=_subjects(work),
        keywords=[clean_text(k) for w in as_list(work.get("keywords")) if (k := as_str(as_dict(w).get("display_name")))],
        citation_count=cited_by,
        raw={field: work[field] for field in _RAW_FIELDS if field in work},
    )


def api_error_message(document) -> str | None:
    """OpenAlex's reason when the document is an error object ({"error": …, "message": …}), else None."""
    if not isinstance(document, dict) or "error" not in document or "results" in document:
        return None
    parts = [clean_text(str(document.get(key) or "")) for key in ("error", "message")]
    return ": ".join(p for p in parts if p) or "error"


def parse_works(payload: bytes, location: str) -> ParsedBatch:
    """A single work, or a list page: results, meta.count (total) and meta.next_cursor."""
    document = load_json(payload, location)
    message = api_error_message(document)
    if message is not None:
        raise FeedError(f"OpenAlex refused the query: {message}", url=location)
    if not isinstance(document, dict):
        raise ParseError(f"expected a JSON object, got {type(document).__name__}", location=location)
    if "results" not in document:
        return ParsedBatch(papers=[parse_work(document, location)])
    results = document["results"]
    if not isinstance(results, list):
        raise ParseError("'results' is not a list", location=location)
    meta = as_dict(document.get("meta"))
    page, per_page = as_int(meta.get("page")), as_int(meta.get("per_page"))
    return ParsedBatch(
        papers=[parse_work(work, location) for work in results],
        total_results=as_int(meta.get("count")),
        start_index=(page - 1) * per_page if page is not None and per_page is not None else None,
        resumption_token=as_str(meta.get("next_cursor")) or None,
    )


def parse_source(entity: dict, location: str = "<openalex source>") -> dict:
    """A venue (source entity) as the few fields a feed needs to name and find it."""
    if not isinstance(entity, dict):
        raise ParseError(f"expected an OpenAlex source object, got {type(entity).__name__}", location=location)
    source_id, kind = short_id(entity.get("id"), location)
    if kind != "source":
        raise ParseError(f"not an OpenAlex source: {source_id} is an OpenAlex {kind}", location=location)
    host = entity.get("host_organization")
    return {
        "openalex_id": source_id,
        "display_name": clean_text(as_str(entity.get("display_name"))),
        "issn_l": as_str(entity.get("issn_l")) or None,
        "issn": [i for i in as_list(entity.get("issn")) if isinstance(i, str)],
        "type": as_str(entity.get("type")) or None,
        "host_organization": short_id(host, location)[0] if host else None,
        "host_organization_name": clean_text(as_str(entity.get("host_organization_name"))) or None,
        "homepage_url": as_str(entity.get("homepage_url")) or None,
    }


def filter_param(filters: dict[str, str]) -> str:
    """{"a": "x", "b": "y"} -> "a:x,b:y". A comma would start a new filter, so values may not hold one
    (OpenAlex's OR is "|" inside a value)."""
    if not filters:
        raise FeedError("an OpenAlex works query needs at least one filter")
    parts = []
    for key, value in filters.items():
        value = str(value).strip()
        if not _FILTER_KEY.match(key) or not value or "," in value:
            raise FeedError(f"bad OpenAlex filter {key!r}: {value!r}")
        parts.append(f"{key}:{value}")
    return ",".join(parts)


def normal_issn(issn: str) -> str:
    match = _ISSN.match(issn.strip())
    if not match:
        raise FeedError(f"not an ISSN: {issn!r}")
    return f"{match.group('a')}-{match.group('b').upper()}"


@dataclass(slots=True)
class OpenAlexClient:
    """Works by filter, cursor-paged, through the shared PoliteClient. `mailto` puts the requests in
    OpenAlex's polite pool."""

    http: PoliteClient
    base_url: str = DEFAULT_BASE_URL
    mailto: str | None = None

    def _get_json(self, path: str, params: dict[str, str | int], not_found_ok: bool = False):
        url = self.base_url.rstrip("/") + path
        if self.mailto:
            params = {**params, "mailto": self.mailto}
        try:
            # Lists change as OpenAlex indexes; a cursor is single-use: never a conditional GET.
            fetched = self.http.get(url, params=params, conditional=False)
        except HTTPStatusError as exc:
            if not_found_ok and exc.status == 404:
                return None, exc.url
            message = _refusal_message(exc)
            if message is None:
                raise
            raise FeedError(f"OpenAlex refused the query: {message}", url=exc.url, status=exc.status) from exc
        return fetched.content, fetched.url

    def works(
        self,
        filters: dict[str, str],
        *,
        per_page: int = MAX_PER_PAGE,
        cursor: str = "*",
        select: list[str] | None = None,
    ) -> ParsedBatch:
        """One page of works; the batch's resumption_token is the cursor of the next page."""
        if not 0 < per_page <= MAX_PER_PAGE:
            raise FeedError(f"per_page must be 1..{MAX_PER_PAGE}, not {per_page}")
        if not cursor:
            raise FeedError("cursor must be '*' for the first page or a next_cursor from OpenAlex")
        params: dict[str, str | int] = {"filter": filter_param(filters), "per-page": per_page, "cursor": cursor}
        if select:
            params["select"] = ",".join(dict.fromkeys(["id", *select]))  # parse_work needs the id
        content, url = self._get_json("/works", params)
        return parse_works(content, url)

    def iter_pages(
        self,
        filters: dict[str, str],
        *,
        per_page: int = MAX_PER_PAGE,
        select: list[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[ParsedBatch]:
        """Follow meta.next_cursor until OpenAlex gives none, a page comes back empty, or `limit` works."""
        cursor, fetched = "*", 0
        while limit is None or fetched < limit:
            size = per_page if limit is None else min(per_page, limit - fetched)
            batch = self.works(filters, per_page=size, cursor=cursor, select=select)
            if not batch.papers:
                return
            yield batch
            fetched += len(batch.papers)
            if not batch.resumption_token or batch.resumption_token == cursor:
                return
            cursor = batch.resumption_token

    def source_by_issn(self, issn: str) -> dict | None:
        """The venue with this ISSN (print or electronic), or None when OpenAlex knows none."""
        content, url = self._get_json(f"/sources/issn:{normal_issn(issn)}", {}, not_found_ok=True)
        if content is None:
            return None
        document = load_json(content, url)
        message = api_error_message(document)
        if message is not None:
            raise FeedError(f"OpenAlex refused the query: {message}", url=url)
        return parse_source(document, url)


def _refusal_message(exc: HTTPStatusError) -> str | None:
    """The upstream's reason for refusing a request (4xx with an error object). Rate limiting and
    server errors stay HTTP errors: the query itself was fine."""
    if exc.status is None or not 400 <= exc.status < 500 or exc.status == 429:
        return None
    try:
        return api_error_message(json_or_none(exc.body))
    except (ValueError, UnicodeDecodeError):
        return None


# ----------------------------------------------------------------------------- the openalex kind

# An index built from the others: below the publishers' own records, above feeds and Semantic Scholar.
OPENALEX_FAMILY = MergeFamily("openalex", default_rank=4, ranks={
    "title": 5, "abstract": 3, "authors": 5, "venue": 5, "published_on": 5, "work_type": 5, "url_abs": 3,
})
_OPENALEX_ID_VALUE = b'"https://openalex.org/'


def _sniff(head: Head) -> bool:
    # a value, not a key: other JSON may quote an OpenAlex id, so this sniffer runs last (sniff_order)
    return head.text.startswith(b"{") and _OPENALEX_ID_VALUE in head.text


def _check(params: dict) -> None:
    if not (params.get("source_id") or params.get("issn")):
        raise ConfigError("an openalex source needs source_id=S… or issn=…")


def _pages(fetch: Fetch) -> Iterator[Page]:
    params, settings = fetch.params, fetch.settings
    client = OpenAlexClient(fetch.http, settings.openalex_url, settings.contact_email)
    filters = {"from_created_date": fetch.start.isoformat()}
    if params.get("source_id"):
        filters["primary_location.source.id"] = params["source_id"]
    if params.get("issn"):
        filters["primary_location.source.issn"] = params["issn"]
    yield from client.iter_pages(filters)


SOURCE_KINDS = (
    SourceKind(
        name=SOURCE,
        label="OpenAlex",
        family=OPENALEX_FAMILY,
        file=FileFormat(name=SOURCE, syntax="json", sniff=_sniff, sniff_order=20, description="an OpenAlex response",
                        parse=parse_works),
        pages=_pages,
        params=(
            Param("source_id", "an OpenAlex source (journal) id, e.g. S1983995261"),
            Param("issn", "a journal's ISSN"),
        ),
        check=_check,
        min_interval=0.1,
    ),
)
