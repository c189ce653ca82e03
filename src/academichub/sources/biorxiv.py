"""bioRxiv and medRxiv (api.biorxiv.org): preprints posted in a date range, one record per version,
and the preprint -> journal article links.

Every answer is `{"messages": [{status, cursor, count, total, …}], "collection": [...]}`, and a
refusal is not an HTTP error: it comes with status 200 and a status other than "ok". "no posts
found" (or "no articles found …" from /pubs) just means an empty range. Numbers in messages come as
numbers or as strings, depending on the endpoint and the day. The page size is the server's choice
(100 when documented, 30 lately), so paging advances by what a page held.

Authors come as one string, "Family, G.; Family2, H."; the corresponding author and institution
come apart, with the full name. Abstracts carry the markers of bioRxiv's JATS flattening (list items
as O_LI…C_LI, small capitals as O_SCPCAP…C_SCPCAP, graphical abstracts as O_FIG…C_FIG); they are
taken out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Iterator

from ..cleantext import clean_text
from ..errors import FeedError, ParseError
from ..model import AuthorData, ParsedBatch, PaperData, RelationData, VersionData
from ..names import name_key, split_name
from .http import PoliteClient
from .jsonsafe import as_int, as_str, load_json
from .kinds import FileFormat, Fetch, LinkBatch, MergeFamily, Page, Param, SourceKind, json_key

DEFAULT_BASE_URL = "https://api.biorxiv.org"
SERVERS = ("biorxiv", "medrxiv")
_EMPTY_STATUS = re.compile(r"^no \w+ found", re.I)
_FIGURE = re.compile(r"O_FIG.*?C_FIG", re.S)
_SMALL_CAPS = re.compile(r"[OC]_SCPCAP")
_LIST_ITEM = re.compile(r"[OC]_LI")
_LETTERS = re.compile(r"[A-Za-z]+")
# How the sites spell category names: small words stay lower case, acronyms upper case.
_LOWER_WORDS = frozenset({"and", "of", "or", "in", "the", "for", "to", "with", "except", "including"})
_ACRONYMS = frozenset({"hiv", "aids"})


@dataclass(slots=True, frozen=True)
class PreprintLink:
    """A preprint and the journal article it became, as /pubs states it."""

    preprint_doi: str
    published_doi: str
    journal: str | None
    published_date: date | None


def category_title(category: str) -> str:
    """"animal behavior and cognition" -> "Animal Behavior and Cognition", as on the sites; a name
    that already has capitals is left as it is."""
    text = clean_text(category)
    if text != text.lower():
        return text

    def spell(match: re.Match) -> str:
        word = match.group(0)
        if word in _ACRONYMS:
            return word.upper()
        if word in _LOWER_WORDS and match.start() > 0:
            return word
        return word[0].upper() + word[1:]

    return _LETTERS.sub(spell, text)


def clean_abstract(text: str | None) -> str:
    text = _FIGURE.sub(" ", text or "")
    text = _SMALL_CAPS.sub("", text)
    return clean_text(_LIST_ITEM.sub(" ", text))


def _check_server(server: str) -> str:
    if server not in SERVERS:
        raise FeedError(f"server must be one of {', '.join(SERVERS)}, not {server!r}")
    return server


def _load(payload: bytes, location: str) -> tuple[dict, list]:
    """(messages[0], collection); an empty range is an empty collection, a refusal a FeedError."""
    # The API has been seen to answer 200 with no body at all: a failure ("empty response"), not an empty range.
    document = load_json(payload, location)
    messages = document.get("messages") if isinstance(document, dict) else None
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        raise ParseError("no 'messages' in the response", location=location)
    message = messages[0]
    status = clean_text(as_str(message.get("status")))
    if status != "ok":
        if _EMPTY_STATUS.match(status):
            return message, []
        raise FeedError(f"bioRxiv API refused the request: {status or 'no status'}", url=location)
    collection = document.get("collection")
    if not isinstance(collection, list):
        raise ParseError("'collection' is not a list", location=location)
    return message, collection


def _number(message: dict, key: str, location: str) -> int | None:
    value = message.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ParseError(f"messages[0].{key} is not a number: {value!r}", location=location) from exc


def _date(value, what: str, location: str) -> date | None:
    if not value or value == "NA":
        return None
    try:
        return date.fromisoformat(value.strip())
    except (AttributeError, ValueError) as exc:  # AttributeError: not a string at all
        raise ParseError(f"bad {what} {value!r}", location=location) from exc


def _authors(text: str | None, corresponding: str | None, institution: str | None) -> list[AuthorData]:
    """"Family, G.; Family2, H." in order, each as "G. Family". The corresponding institution goes to
    the one author whose family name and initial match the corresponding author's."""
    authors = []
    for piece in (text or "").split(";"):
        piece = clean_text(piece)
        if not piece:
            continue
        if "," in piece:
            given, family = split_name(piece)
            piece = f"{given} {family}".strip()
        authors.append(AuthorData(name=piece))
    institution = clean_text(institution) or None
    if corresponding and institution and institution != "NA":
        key = name_key(corresponding)
        matches = [a for a in authors if name_key(a.name) == key]
        if len(matches) == 1:
            matches[0].affiliation = institution
    return authors


def _parse_item(item: dict, server: str, location: str) -> PaperData:
    if not isinstance(item, dict):
        raise ParseError(f"expected a collection item object, got {type(item).__name__}", location=location)
    # Every field is read as a string or as absent: a number or list in its place is no text.
    text = {key: as_str(value) for key, value in item.items()}
    doi = clean_text(text.get("doi")).lower()
    if not doi:
        raise ParseError(f"collection item without a doi: {json.dumps(item)[:80]}", location=location)
    version = as_int(item.get("version"))  # "2" or 2; a float, a bool or 10**20 is no version number
    if version is None or not 0 < version < 10_000:
        raise ParseError(f"{doi}: version is not a number: {item.get('version')!r}", location=location)
    item_server = clean_text(text.get("server")).lower()
    server = item_server if item_server in SERVERS else server
    versioned = f"{doi}v{version}"
    published_doi = clean_text(text.get("published"))
    relations = [RelationData("preprint-of", "doi", published_doi.lower())] if published_doi not in ("", "NA") else []
    category = clean_text(text.get("category"))
    corresponding = (text.get("author_corresponding"), text.get("author_corresponding_institution"))
    authors = _authors(text.get("authors"), *corresponding)
    url_abs = f"https://www.{server}.org/content/{versioned}"
    return PaperData(
        source=server,
        source_id=versioned,
        title=clean_text(text.get("title")),
        abstract=clean_abstract(text.get("abstract")),
        authors=authors,
        doi=doi,
        license=clean_text(text.get("license")) or None,
        url_abs=url_abs,
        url_pdf=f"{url_abs}.full.pdf",
        published=_date(item.get("date"), f"{doi}: date", location),
        versions=[VersionData(version)],
        work_type="preprint",
        subjects=[(server, category_title(category))] if category else [],
        relations=relations,
        server=server,
        raw=dict(item),
    )


def parse_details(payload: bytes, location: str, server: str) -> ParsedBatch:
    """A /details page. total_results is the range's total, start_index the page's cursor."""
    _check_server(server)
    message, collection = _load(payload, location)
    total = _number(message, "total", location)
    return ParsedBatch(
        papers=[_parse_item(item, server, location) for item in collection],
        total_results=0 if total is None and not collection else total,
        start_index=_number(message, "cursor", location),
    )


def _parse_link(item: dict, location: str) -> PreprintLink:
    if not isinstance(item, dict):
        raise ParseError(f"expected a collection item object, got {type(item).__name__}", location=location)
    # "preprint_doi" today; the API's documentation still names it "biorxiv_doi".
    text = {key: as_str(value) for key, value in item.items()}
    preprint = clean_text(text.get("preprint_doi") or text.get("biorxiv_doi")).lower()
    published = clean_text(text.get("published_doi")).lower()
    if not preprint or not published:
        raise ParseError(f"/pubs item without both DOIs: {json.dumps(item)[:80]}", location=location)
    return PreprintLink(
        preprint_doi=preprint,
        published_doi=published,
        journal=clean_text(text.get("published_journal")) or None,
        published_date=_date(item.get("published_date"), f"{preprint}: published_date", location),
    )


def parse_pubs(payload: bytes, location: str) -> tuple[list[PreprintLink], int | None]:
    """A /pubs page: (links, the range's total)."""
    message, collection = _load(payload, location)
    total = _number(message, "total", location)
    return [_parse_link(item, location) for item in collection], 0 if total is None and not collection else total


def _day(value: date | str) -> str:
    try:
        return (value if isinstance(value, date) else date.fromisoformat(str(value))).isoformat()
    except ValueError as exc:
        raise FeedError(f"not a date (YYYY-MM-DD): {value!r}") from exc


@dataclass(slots=True)
class BiorxivClient:
    """Date-range queries through the shared PoliteClient."""

    http: PoliteClient
    base_url: str = DEFAULT_BASE_URL

    def _get(self, endpoint: str, server: str, from_date: date | str, to_date: date | str, cursor: int,
             params: dict | None = None) -> tuple[bytes, str]:
        _check_server(server)
        first, last = _day(from_date), _day(to_date)
        if first > last:
            raise FeedError(f"from_date {first} is after to_date {last}")
        if cursor < 0:
            raise FeedError(f"cursor must be >= 0, not {cursor}")
        url = f"{self.base_url.rstrip('/')}/{endpoint}/{server}/{first}/{last}/{cursor}"
        # A range's answer grows until the day is over: never a conditional GET.
        fetched = self.http.get(url, params=params or None, conditional=False)
        return fetched.content, fetched.url

    def details(
        self, server: str, from_date: date | str, to_date: date | str, cursor: int = 0, *, category: str | None = None
    ) -> ParsedBatch:
        """One page of the preprints posted in [from_date, to_date], optionally of one category."""
        params = {"category": clean_text(category).lower().replace(" ", "_")} if category else None
        content, url = self._get("details", server, from_date, to_date, cursor, params)
        return parse_details(content, url, server)

    def iter_details(
        self, server: str, from_date: date | str, to_date: date | str, *, category: str | None = None
    ) -> Iterator[ParsedBatch]:
        """Every page of the range: the cursor advances by what each page held, until the total."""
        cursor = 0
        while True:
            batch = self.details(server, from_date, to_date, cursor, category=category)
            if not batch.papers:
                return
            yield batch
            cursor += len(batch.papers)
            if batch.total_results is None or cursor >= batch.total_results:
                return

    def pubs(self, server: str, from_date: date | str, to_date: date | str, cursor: int = 0) -> list[PreprintLink]:
        """One page of the preprints of the range that have been published in a journal."""
        content, url = self._get("pubs", server, from_date, to_date, cursor)
        return parse_pubs(content, url)[0]

    def iter_pubs(self, server: str, from_date: date | str, to_date: date | str) -> Iterator[PreprintLink]:
        """Every link of the range, page after page, until the total."""
        cursor = 0
        while True:
            content, url = self._get("pubs", server, from_date, to_date, cursor)
            links, total = parse_pubs(content, url)
            yield from links
            cursor += len(links)
            if not links or total is None or cursor >= total:
                return


# ----------------------------------------------------------------------------- the biorxiv and medrxiv kinds

# Preprints like arXiv's: their links and abstracts count, not their titles or venues.
BIORXIV_FAMILY = MergeFamily("biorxiv", default_rank=5, ranks={
    "title": 3, "abstract": 6, "authors": 4, "venue": 1, "published_on": 2, "work_type": 2, "url_abs": 6,
})


def parse_details_file(payload: bytes, location: str) -> ParsedBatch:
    """A /details answer read from a file: its records name their server (bioRxiv unless medRxiv)."""
    server = "medrxiv" if b'"server":"medrxiv"' in payload.replace(b" ", b"").lower() else "biorxiv"
    return parse_details(payload, location, server)


def _pages(fetch: Fetch) -> Iterator[Page]:
    server, params = fetch.source["kind"], fetch.params
    client = BiorxivClient(fetch.http, fetch.settings.biorxiv_url)
    yield from client.iter_details(server, fetch.start, fetch.end, category=params.get("category"))
    if params.get("pubs", "true") != "false":
        links = [(link.preprint_doi, link.published_doi) for link in client.iter_pubs(server, fetch.start, fetch.end)]
        if links:
            yield LinkBatch(links)


_PARAMS = (
    Param("category", "one subject collection, e.g. neuroscience"),
    Param("pubs", "false to skip the preprint -> journal links (default true)"),
)
SOURCE_KINDS = (
    SourceKind(
        name="biorxiv", label="bioRxiv", family=BIORXIV_FAMILY,
        file=FileFormat(name="biorxiv", syntax="json", sniff=json_key("messages"), description="a bioRxiv response",
                        parse=parse_details_file),
        pages=_pages, params=_PARAMS, min_interval=1.0,
    ),
    SourceKind(name="medrxiv", label="medRxiv", family=BIORXIV_FAMILY, pages=_pages, params=_PARAMS, min_interval=1.0),
)
