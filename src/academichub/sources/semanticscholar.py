"""Semantic Scholar (api.semanticscholar.org): optional enrichment, off by default. It adds what the
other sources lack (a TLDR, citation counts, fields of study) to works found elsewhere, looked up in
batches by DOI, arXiv id or PMID; relevance search and recommendations come along.

The API returns only the fields asked for, so every field may be missing (the recorded responses
asked for the title alone). The batch and recommendation endpoints are POSTs (PoliteClient.post_json).
The API key travels in the x-api-key header, never in a URL, so it cannot end up in an error
message; a search with a key needs an `http` whose get() can send headers."""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Iterator, Protocol, Sequence

import httpx

from ..cleantext import clean_text
from ..errors import ConfigError, FeedError, ParseError
from ..model import AuthorData, ParsedBatch, PaperData
from .arxiv_ids import parse_arxiv_id
from .http import Fetched, HTTPStatusError
from .jsonsafe import as_dict, as_int, as_list, as_str, json_or_none, load_json
from .kinds import FileFormat, Fetch, MergeFamily, Page, Param, SourceKind, json_key

SOURCE = "semanticscholar"
DEFAULT_BASE_URL = "https://api.semanticscholar.org"
MAX_SEARCH_LIMIT = 100
MAX_BATCH_IDS = 500
# The search endpoint cannot return tldr; the batch endpoint can.
SEARCH_FIELDS = (
    "paperId", "externalIds", "title", "abstract", "venue", "year", "publicationDate", "authors",
    "citationCount", "fieldsOfStudy", "s2FieldsOfStudy", "publicationTypes", "journal", "url", "openAccessPdf",
)
BATCH_FIELDS = (*SEARCH_FIELDS, "tldr")

# publicationTypes -> the work_type vocabulary the other sources use (Crossref's where it has one).
_WORK_TYPES = {
    "JournalArticle": "journal-article", "Conference": "proceedings-article", "Review": "review",
    "Book": "book", "BookSection": "book-chapter", "Dataset": "dataset", "Editorial": "editorial",
    "LettersAndComments": "letter",
}
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)", re.I)
_PMCID = re.compile(r"^(?:PMC)?(?P<id>\d+)$", re.I)
_ORCID = re.compile(r"(?P<id>\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")


class JsonHttp(Protocol):
    """What the client needs from its HTTP object: PoliteClient's get() and post_json()."""

    def get(self, url: str, params: dict | None = None, *, conditional: bool = True) -> Fetched: ...

    def post_json(self, url: str, json: dict, headers: dict | None = None) -> Fetched: ...


def api_error_message(document) -> str | None:
    """S2's reason when the document is an error object ({"error": …} or {"message": …}), else None."""
    if not isinstance(document, dict) or "paperId" in document or "data" in document:
        return None
    for key in ("error", "message"):
        if isinstance(document.get(key), str):
            return clean_text(document[key]) or key
    return None


def _date(value: str | None, location: str) -> date | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise ParseError(f"bad publicationDate {value!r}", location=location)
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ParseError(f"bad publicationDate {value!r}", location=location) from exc


def _arxiv_id(value: str | None) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_arxiv_id(value)[0]
    except ParseError:
        return None


def _authors(authors: list[dict] | None) -> list[AuthorData]:
    result = []
    for author in map(as_dict, as_list(authors)):
        name = clean_text(as_str(author.get("name")))
        if not name:
            continue
        affiliations = [clean_text(a) for a in as_list(author.get("affiliations")) if isinstance(a, str) and a.strip()]
        orcid = _ORCID.search(as_str(as_dict(author.get("externalIds")).get("ORCID")) or "")
        result.append(AuthorData(name, "; ".join(affiliations) or None, orcid.group("id") if orcid else None))
    return result


def _subjects(paper: dict) -> list[tuple[str, str]]:
    """fieldsOfStudy, then s2FieldsOfStudy (the same names, some from S2's own classifier), once each."""
    names = list(as_list(paper.get("fieldsOfStudy")))
    names += [as_dict(f).get("category") for f in as_list(paper.get("s2FieldsOfStudy"))]
    return [("s2", name) for name in dict.fromkeys(clean_text(n) for n in names if isinstance(n, str)) if name]


def _identifier(value) -> str:
    """S2 gives PubMed ids as strings, and has given them as numbers."""
    return value.strip() if isinstance(value, str) else str(value) if as_int(value) is not None else ""


def parse_paper(p: dict, location: str) -> PaperData:
    """One paper object, whatever subset of fields was asked for; only paperId is required."""
    if not isinstance(p, dict):
        raise ParseError(f"expected a paper object, got {type(p).__name__}", location=location)
    paper_id = p.get("paperId")
    if not isinstance(paper_id, str) or not paper_id.strip():
        raise ParseError(f"paper without a paperId: {json.dumps(p)[:80]}", location=location)
    paper_id = paper_id.strip()
    external = as_dict(p.get("externalIds"))
    doi = _DOI_PREFIX.sub("", (as_str(external.get("DOI")) or "").strip()).lower() or None
    pmcid = _PMCID.match(_identifier(external.get("PubMedCentral")))
    journal = as_dict(p.get("journal"))
    open_access_pdf = as_dict(p.get("openAccessPdf"))
    tldr = clean_text(as_str(as_dict(p.get("tldr")).get("text"))) or None
    types = [_WORK_TYPES[t] for t in as_list(p.get("publicationTypes")) if isinstance(t, str) and t in _WORK_TYPES]
    return PaperData(
        source=SOURCE,
        source_id=paper_id,
        title=clean_text(as_str(p.get("title"))),
        abstract=clean_text(as_str(p.get("abstract"))),
        authors=_authors(p.get("authors")),
        arxiv_id=_arxiv_id(external.get("ArXiv")),
        doi=doi,
        pmid=_identifier(external.get("PubMed")) or None,
        pmcid=f"PMC{pmcid.group('id')}" if pmcid else None,
        s2_id=paper_id,
        venue=clean_text(as_str(p.get("venue"))) or clean_text(as_str(journal.get("name"))) or None,
        url_abs=as_str(p.get("url")) or f"https://www.semanticscholar.org/paper/{paper_id}",
        url_pdf=as_str(open_access_pdf.get("url")) or None,
        published=_date(p.get("publicationDate"), location),
        work_type=types[0] if types else None,
        subjects=_subjects(p),
        tldr=tldr,
        citation_count=as_int(p.get("citationCount")),
        raw=dict(p),
    )


def _papers(items, key: str, location: str) -> list[PaperData]:
    if not isinstance(items, list):
        raise ParseError(f"'{key}' is not a list", location=location)
    return [parse_paper(item, location) for item in items]


def parse_response(payload: bytes, location: str) -> ParsedBatch:
    """A search page (total, offset, next, data) or a recommendation list (recommendedPapers).

    The next page's offset, when there is one, is the batch's resumption_token."""
    document = load_json(payload, location)
    message = api_error_message(document)
    if message is not None:
        raise FeedError(f"Semantic Scholar refused the request: {message}", url=location)
    if isinstance(document, dict) and "recommendedPapers" in document:
        return ParsedBatch(papers=_papers(document["recommendedPapers"], "recommendedPapers", location))
    if not isinstance(document, dict) or "data" not in document:
        raise ParseError("neither a search page ('data') nor recommendations ('recommendedPapers')", location=location)
    total, offset, following = document.get("total"), document.get("offset"), document.get("next")
    return ParsedBatch(
        papers=_papers(document["data"], "data", location),
        total_results=as_int(total),
        start_index=as_int(offset),
        resumption_token=str(following) if as_int(following) is not None else None,
    )


def parse_batch(payload: bytes, location: str, expected: int | None = None) -> list[PaperData | None]:
    """The batch endpoint's answer: one entry per id asked for, in order, null where S2 has none."""
    document = load_json(payload, location)
    message = api_error_message(document)
    if message is not None:
        raise FeedError(f"Semantic Scholar refused the request: {message}", url=location)
    if not isinstance(document, list):
        raise ParseError(f"expected a JSON list, got {type(document).__name__}", location=location)
    if expected is not None and len(document) != expected:
        raise ParseError(f"asked for {expected} papers, got {len(document)} entries", location=location)
    return [None if item is None else parse_paper(item, location) for item in document]


def lookup_id(paper: PaperData) -> str | None:
    """The id S2's batch endpoint understands for a record: ARXIV:…, else DOI:…, else PMID:…."""
    if paper.arxiv_id:
        return f"ARXIV:{paper.arxiv_id}"
    if paper.doi:
        return f"DOI:{paper.doi}"
    if paper.pmid:
        return f"PMID:{paper.pmid}"
    return None


def _fields(fields: str | Sequence[str]) -> str:
    text = fields if isinstance(fields, str) else ",".join(fields)
    if not text.strip():
        raise FeedError("at least one field must be asked for")
    return text


@dataclass(slots=True)
class SemanticScholarClient:
    """Search (GET, through PoliteClient's retries) and batch lookups and recommendations (POST,
    through `http.post_json`)."""

    http: JsonHttp
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key} if self.api_key else {}

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def search(
        self, query: str, *, offset: int = 0, limit: int = MAX_SEARCH_LIMIT, fields: str | Sequence[str] = SEARCH_FIELDS
    ) -> ParsedBatch:
        """One page of relevance search (GET /graph/v1/paper/search)."""
        if not query.strip():
            raise FeedError("an empty search query")
        if offset < 0 or not 0 < limit <= MAX_SEARCH_LIMIT:
            raise FeedError(f"offset must be >= 0 and limit 1..{MAX_SEARCH_LIMIT} (got {offset}, {limit})")
        params = {"query": query, "fields": _fields(fields), "offset": offset, "limit": limit}
        url = self._url("/graph/v1/paper/search")
        if self.api_key and "headers" not in inspect.signature(self.http.get).parameters:
            raise ConfigError(
                "a Semantic Scholar search with an API key needs an HTTP client whose get() can send "
                "headers (PoliteClient.get cannot yet); batch lookups send the key already"
            )
        try:
            if self.api_key:
                fetched = self.http.get(url, params=params, conditional=False, headers=self._headers())
            else:
                fetched = self.http.get(url, params=params, conditional=False)
        except HTTPStatusError as exc:
            message = _refusal_message(exc)
            if message is None:
                raise
            raise FeedError(f"Semantic Scholar refused the request: {message}", url=exc.url, status=exc.status) from exc
        return parse_response(fetched.content, fetched.url)

    def iter_search(
        self,
        query: str,
        *,
        page_size: int = MAX_SEARCH_LIMIT,
        fields: str | Sequence[str] = SEARCH_FIELDS,
        limit: int | None = None,
    ) -> Iterator[ParsedBatch]:
        """Follow `next` until S2 gives none (it stops after the first 1,000 results), or `limit` papers."""
        offset, fetched = 0, 0
        while limit is None or fetched < limit:
            size = page_size if limit is None else min(page_size, limit - fetched)
            batch = self.search(query, offset=offset, limit=size, fields=fields)
            if not batch.papers:
                return
            yield batch
            fetched += len(batch.papers)
            if batch.resumption_token is None or int(batch.resumption_token) <= offset:
                return
            offset = int(batch.resumption_token)

    def papers_batch(self, ids: list[str], fields: str | Sequence[str] = BATCH_FIELDS) -> list[PaperData | None]:
        """Papers for ids like "DOI:10.…", "ARXIV:2411.17700", "PMID:…", in order, None where S2 has
        none; sent MAX_BATCH_IDS at a time (POST /graph/v1/paper/batch)."""
        for paper_id in ids:
            if not isinstance(paper_id, str) or not paper_id.strip():
                raise FeedError(f"not a Semantic Scholar paper id: {paper_id!r}")
        url = str(httpx.URL(self._url("/graph/v1/paper/batch"), params={"fields": _fields(fields)}))
        papers: list[PaperData | None] = []
        for start in range(0, len(ids), MAX_BATCH_IDS):
            chunk = [i.strip() for i in ids[start : start + MAX_BATCH_IDS]]
            fetched = self._post(url, {"ids": chunk})
            papers.extend(parse_batch(fetched.content, fetched.url, expected=len(chunk)))
        return papers

    def recommendations(
        self,
        positive_paper_ids: list[str],
        negative_paper_ids: list[str] | None = None,
        *,
        limit: int = 100,
        fields: str | Sequence[str] = ("paperId", "title"),
    ) -> ParsedBatch:
        """Papers like the positive ones and unlike the negative ones (POST /recommendations/v1/papers/)."""
        if not positive_paper_ids:
            raise FeedError("recommendations need at least one positive paper id")
        if not 0 < limit <= 500:
            raise FeedError(f"limit must be 1..500, not {limit}")
        params = {"fields": _fields(fields), "limit": limit}
        url = str(httpx.URL(self._url("/recommendations/v1/papers/"), params=params))
        body = {"positivePaperIds": list(positive_paper_ids), "negativePaperIds": list(negative_paper_ids or [])}
        fetched = self._post(url, body)
        return parse_response(fetched.content, fetched.url)

    def _post(self, url: str, body: dict) -> Fetched:
        try:
            return self.http.post_json(url, json=body, headers=self._headers())
        except HTTPStatusError as exc:
            message = _refusal_message(exc)
            if message is None:
                raise
            raise FeedError(f"Semantic Scholar refused the request: {message}", url=exc.url, status=exc.status) from exc


def _refusal_message(exc: HTTPStatusError) -> str | None:
    """The upstream's reason for refusing a request (4xx with an error object). Rate limiting and
    server errors stay HTTP errors: the query itself was fine."""
    if exc.status is None or not 400 <= exc.status < 500 or exc.status == 429:
        return None
    try:
        return api_error_message(json_or_none(exc.body))
    except (ValueError, UnicodeDecodeError):
        return None


# ----------------------------------------------------------------------------- the semanticscholar kind

# Enrichment (TL;DRs, citation counts): it fills gaps and never overrides the others, except its TL;DR.
S2_FAMILY = MergeFamily("s2", default_rank=2, ranks={
    "title": 1, "abstract": 1, "authors": 1, "venue": 2, "published_on": 1, "work_type": 1, "url_abs": 1, "tldr": 7,
})


def _pages(fetch: Fetch) -> Iterator[Page]:
    """Not a feed: the recent stored papers it has not described yet, looked up 500 at a time."""
    settings = fetch.settings
    key = settings.semanticscholar_api_key.get_secret_value() if settings.semanticscholar_api_key else None
    client = SemanticScholarClient(fetch.http, settings.semanticscholar_url, api_key=key)
    lookups = fetch.papers_to_enrich(fetch.start, int(fetch.params.get("limit", 500)))
    for chunk_start in range(0, len(lookups), MAX_BATCH_IDS):
        found = client.papers_batch(lookups[chunk_start : chunk_start + MAX_BATCH_IDS])
        yield ParsedBatch(papers=[paper for paper in found if paper is not None])


SOURCE_KINDS = (
    SourceKind(
        name=SOURCE,
        label="Semantic Scholar",
        family=S2_FAMILY,
        file=FileFormat(name=SOURCE, syntax="json", sniff=json_key("paperId"), description="a Semantic Scholar response",
                        parse=parse_response),
        pages=_pages,
        params=(Param("limit", "at most this many recent papers to look up per run (default 500)"),),
        min_interval=1.0,
    ),
)
