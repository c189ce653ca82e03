"""Publisher table-of-contents feeds (Nature, Science, Cell, PNAS, NEJM, The Lancet …): RSS 1.0/RDF,
RSS 2.0 and Atom, in whatever dialect each publisher speaks. This is the one place feedparser is used:
publisher feeds are too often malformed for a strict parser, and feedparser's lenient one still
gets the entries out.

Safety. feedparser only ever sees bytes wrapped in a BytesIO: given a str it fetches URLs, and given
bytes it first tries them as a *file name* (`feedparser.parse(b"/etc/passwd")` reads that file).
It removes the DOCTYPE itself, keeps only internal entities whose value is plain text, and turns
off external entities in the SAX parser, so no DTD or entity is ever fetched or read (the tests
prove it against a local server and a local file).

Text. Titles and abstracts are made plain text last of all (publisher HTML, MathML, doubly escaped
tags), through `jats.markup_to_text`, with lxml.html's text as the fallback; the citation line that
Nature and Atypon publishers put in front of the abstract is dropped.

Malformed feeds. With no usable entry, a broken feed is a ParseError naming the location (and line).
When some entries survive, they are kept; an entry that the document cut off part-way (more entries
parsed than closing tags seen) is dropped, because its abstract may be cut short too. The problem
is logged as a warning and written into every kept paper's `raw["feed_problem"]`, since
ParsedBatch has no place for warnings."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from functools import partial
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator
from urllib.parse import unquote

import feedparser

from ..cleantext import clean_text
from ..errors import ParseError
from ..model import AuthorData, FeedInfo, ParsedBatch, PaperData
from ..names import split_author_list
from .kinds import FileFormat, Fetch, MergeFamily, Page, Param, SourceKind, xml_root

SOURCE = "feed"
DEFAULT_WORK_TYPE = "journal-article"

log = logging.getLogger(__name__)

# Citation lines some publishers put before the abstract; they are metadata, not abstract.
# Nature: "Nature, Published online: 27 November 2024; doi:10.1038/s41586-024-…"
# Atypon (Science, PNAS, NEJM …): "Science, Volume 386, Issue 6725, Page 962-967, November 2024."
NATURE_CITATION_LINE = r"^[^;]{0,200}?Published online:[^;]{0,60};\s*doi:\s*10\.\S+\s*"
ATYPON_CITATION_LINE = r"^[^.]{0,200}?,\s*Volume\s+\w+,\s*Issue\s+[^,]+,(?:\s*Page[^,]*,)?\s*[A-Z][a-z]+\s+\d{4}\.\s*"

# The XML names publishers use, as feedparser files them (dc:description and description are both
# "summary"; content:encoded is "content"; dc:date is "updated"; dc:creator is "authors").
_FIELD_ALIASES = {
    "description": "summary",
    "dc_description": "summary",
    "content_encoded": "content",
    "dc_title": "title",
    "dc_creator": "authors",
    "author": "authors",
    "dc_date": "updated",
    "pubdate": "published",
    "dcterms_issued": "published",
    "dcterms_modified": "updated",
    "dc_subject": "tags",
}

_DOI = re.compile(r"10\.\d{4,9}/[^\s\"<>]+")
_DOI_URL = re.compile(r"^https?://(?:dx\.)?doi\.org/(10\.\d{4,9}/\S+)$", re.I)
_DOI_PATH = re.compile(r"^https?://[^/]+/doi/(?:abs/|full/|pdf/|epdf/)?(10\.\d{4,9}/[^?#]+)", re.I)
_ISSN = re.compile(r"^(\d{4})-?(\d{3}[\dX])$")
_ISO_DAY = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})")
_ISO_MONTH = re.compile(r"^\s*(\d{4})-(\d{2})\s*$")
_CLOSING_ENTRY = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>", re.I)
# Markup that survived one conversion because it was escaped twice ("&lt;i&gt;"). Only known tag
# names count, so that "p<q and r>s" in real text is left alone.
_LEFTOVER_TAG = re.compile(
    r"</?(?:[a-z]+:)?(?:a|abbr|b|big|blockquote|bold|br|cite|code|div|em|font|h[1-6]|hr|i|img|inline-formula|"
    r"italic|li|math|mfrac|mi|mn|mo|mrow|msub|msubsup|msup|ol|p|q|sc|small|span|strong|sub|sup|table|td|"
    r"tex-math|th|tr|tt|u|ul)\b[^<>]*>",
    re.I,
)
_BLOCK_TAGS = {"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_WORK_TYPES = {
    "article": "journal-article",
    "research-article": "journal-article",
    "research article": "journal-article",
    "original article": "journal-article",
    "journal article": "journal-article",
    "journal-article": "journal-article",
    "review": "review",
    "review-article": "review",
    "review article": "review",
    "editorial": "editorial",
    "letter": "letter",
    "correction": "erratum",
    "erratum": "erratum",
    "corrigendum": "erratum",
    "retraction": "retraction",
    "preprint": "preprint",
    "news": "news",
}


@dataclass(frozen=True, slots=True)
class FeedMapping:
    """Where a venue's feed keeps what the defaults look for elsewhere. Fields name feedparser's
    entry keys ("prism_doi", "dc_identifier", "summary", "content", "authors", "updated" …) or the XML
    names feedparser folds into them ("dc_description" -> "summary", "content_encoded" -> "content")."""

    title_field: str | None = None
    abstract_field: str | None = None
    authors_field: str | None = None
    doi_field: str | None = None
    date_field: str | None = None
    work_type: str = DEFAULT_WORK_TYPE
    # regular expressions removed from the start of the plain-text abstract
    abstract_drop: tuple[str, ...] = (NATURE_CITATION_LINE, ATYPON_CITATION_LINE)


def parse_feed(
    content: bytes, location: str, *, venue: str | None = None, mapping: FeedMapping | None = None
) -> ParsedBatch:
    """Parse one publisher feed document (never a URL: fetching is PoliteClient's job)."""
    mapping = mapping or FeedMapping()
    if not content.strip():
        raise ParseError("empty document", location=location, line=1)
    # Content-Location lets relative links resolve against the feed's URL; application/xml (no
    # charset) leaves the encoding to the XML declaration, as RFC 7303 says.
    headers = {"content-type": "application/xml"}
    if location.startswith(("http://", "https://")):
        headers["content-location"] = location
    try:
        parsed = feedparser.parse(io.BytesIO(content), response_headers=headers)
    except Exception as exc:  # feedparser is lenient by design; anything it still throws is a bad document
        raise ParseError(f"feed could not be parsed: {type(exc).__name__}: {exc}", location=location) from exc

    entries = list(parsed.entries)
    problem = _problem(parsed, content, entries)
    if problem is not None:
        message, line, entries = problem
        if not entries:
            raise ParseError(f"malformed feed, no entry could be read: {message}", location=location, line=line)
        where = f"{location}:{line}" if line else location
        log.warning("%s: malformed feed, kept %d entries: %s", where, len(entries), message)
    elif not entries and not parsed.get("version"):
        raise ParseError("not an RSS, RDF or Atom feed", location=location, line=1)

    to_text, title_text = _markup_converters()
    channel = parsed.feed
    feed_title = _plain_text(channel.get("title"), _content_type(channel, "title"), title_text)
    feed = FeedInfo(title=feed_title, link=channel.get("link"))
    context = _Context(
        location=location,
        version=parsed.get("version") or "",
        venue=_first_text(channel.get("prism_publicationname")) or venue or feed_title or None,
        issns=_issns(channel),
        publisher=_first_text(channel.get("publisher")),
        feed_title=feed_title,
        problem=_problem_note(problem),
        mapping=mapping,
        to_text=to_text,
        title_text=title_text,
    )
    papers = [paper for entry in entries if (paper := _paper(entry, context)) is not None]
    return ParsedBatch(papers=papers, feed=feed)


@dataclass(slots=True)
class _Context:
    """What every entry of one feed shares."""

    location: str
    version: str
    venue: str | None
    issns: list[str]
    publisher: str | None
    feed_title: str
    problem: str | None
    mapping: FeedMapping
    to_text: Callable[[str], str]
    title_text: Callable[[str], str]


def _problem(parsed, content: bytes, entries: list) -> tuple[str, int | None, list] | None:
    """(what is wrong, line, the entries worth keeping) for a malformed feed; None for a sound one."""
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    if isinstance(exc, feedparser.CharacterEncodingOverride) and entries:
        return None  # declared one encoding, was another: the text is right, nothing to report
    message = getattr(exc, "getMessage", lambda: str(exc))() if exc is not None else "malformed feed"
    line = exc.getLineNumber() if hasattr(exc, "getLineNumber") else None
    closed = len(_CLOSING_ENTRY.findall(content))
    if len(entries) > closed:
        message += f"; dropped {len(entries) - closed} entry cut off by the error"
        entries = entries[:closed]
    return message, line or None, entries


def _problem_note(problem: tuple[str, int | None, list] | None) -> str | None:
    if problem is None:
        return None
    message, line, _entries = problem
    return f"line {line}: {message}" if line else message


def _paper(entry, context: _Context) -> PaperData | None:
    mapping = context.mapping
    to_text = context.to_text
    title_field = _field(mapping.title_field) or "title"
    title = _plain_text(_value_text(entry.get(title_field)), _content_type(entry, title_field), context.title_text)
    link = (entry.get("link") or entry.get("prism_url") or "").strip() or None
    entry_id = (entry.get("id") or "").strip() or None
    doi = _entry_doi(entry, mapping, link, entry_id)
    source_id = doi or entry_id or link
    if not title or not source_id:
        log.warning("%s: feed entry without %s skipped", context.location, "title" if not title else "id or link")
        return None

    abstract = _abstract(entry, mapping, to_text)
    entry_venue = _first_text(entry.get("prism_publicationname"))
    issns = _issns(entry) or context.issns
    raw = _jsonable({k: v for k, v in entry.items() if not k.endswith("_parsed")})
    raw["feed_title"] = context.feed_title
    raw["feed_version"] = context.version
    if context.problem:
        raw["feed_problem"] = context.problem
    is_atom = context.version.startswith("atom")
    rights = _first_text(entry.get("rights"))
    venue = entry_venue or context.venue
    return PaperData(
        source=SOURCE,
        source_id=source_id,
        title=title,
        abstract=abstract,
        authors=_authors(entry, mapping, context.title_text),
        doi=doi,
        venue=venue,
        journal_ref=_journal_ref(entry, venue),
        license=rights if rights and rights.startswith(("http://", "https://")) else None,
        url_abs=link,
        updated=_datetime(entry, "updated") if is_atom else None,
        published=_published(entry, mapping, is_atom),
        work_type=_work_type(entry, mapping),
        publisher=_first_text(entry.get("publisher")) or context.publisher,
        issns=issns,
        keywords=_keywords(entry, context.title_text),
        raw=raw,
    )


# ----------------------------------------------------------------------------- fields


def _field(name: str | None) -> str | None:
    if not name:
        return None
    key = name.lower().replace(":", "_")
    return _FIELD_ALIASES.get(key, key)


def _value_text(value: Any) -> str | None:
    """One field's text, whatever shape feedparser gave it (str, content list, detail dict)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return value.get("value") or value.get("name") or value.get("term")
    if isinstance(value, (list, tuple)):
        parts = [text for item in value if (text := _value_text(item))]
        return max(parts, key=len) if parts else None
    return str(value)


def _first_text(value: Any) -> str | None:
    text = _value_text(value)
    return clean_text(text) or None


def _content_type(holder, field: str) -> str | None:
    detail = holder.get(f"{field}_detail")
    return detail.get("type") if isinstance(detail, dict) else None


def _entry_doi(entry, mapping: FeedMapping, link: str | None, entry_id: str | None) -> str | None:
    candidates: list[str | None] = []
    if mapping.doi_field:
        candidates.append(_value_text(entry.get(_field(mapping.doi_field))))
    candidates += [_value_text(entry.get("prism_doi")), _value_text(entry.get("dc_identifier"))]
    for candidate in candidates:
        if doi := _doi_from_identifier(candidate):
            return doi
    for url in (link, entry_id):
        if url and (match := _DOI_URL.match(url.strip()) or _DOI_PATH.match(url.strip())):
            return _tidy_doi(match.group(1))
    return None


def _doi_from_identifier(text: str | None) -> str | None:
    """"10.1038/x", "doi:10.1038/x", "https://doi.org/10.1038/x"; not a DOI found in free text."""
    if not text:
        return None
    text = text.strip()
    lowered = text.lower()
    for prefix in ("doi:", "info:doi/", "https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/"):
        if lowered.startswith(prefix):
            text = text[len(prefix) :].strip()
            break
    match = _DOI.fullmatch(text)
    return _tidy_doi(match.group(0)) if match else None


def _tidy_doi(doi: str) -> str:
    return unquote(doi).rstrip(".,;").lower()


def _issns(holder) -> list[str]:
    found: list[str] = []
    for key in ("prism_issn", "prism_eissn"):
        text = _value_text(holder.get(key))
        match = _ISSN.match((text or "").strip().upper())
        if match:
            issn = f"{match.group(1)}-{match.group(2)}"
            if issn not in found:
                found.append(issn)
    return found


def _abstract(entry, mapping: FeedMapping, to_text: Callable[[str], str]) -> str:
    if mapping.abstract_field:
        field = _field(mapping.abstract_field)
        markup, kind = _value_text(entry.get(field)), _content_type(entry, field)
    else:
        markup, kind = None, None
        for item in entry.get("content") or []:
            if item.get("value"):
                markup, kind = item["value"], item.get("type")
                break
        if markup is None:
            markup, kind = entry.get("summary"), _content_type(entry, "summary")
    text = _plain_text(markup, kind, to_text)
    for pattern in mapping.abstract_drop:
        text = re.sub(pattern, "", text, count=1)
    return clean_text(text)


def _authors(entry, mapping: FeedMapping, to_text: Callable[[str], str]) -> list[AuthorData]:
    field = _field(mapping.authors_field) or "authors"
    value = entry.get(field)
    if field == "authors" and not value and entry.get("author"):
        value = [entry["author_detail"] if entry.get("author_detail") else {"name": entry["author"]}]
    names: list[str] = []
    items = value if isinstance(value, list) else [value]
    for item in items:
        name = _value_text(item)
        if name:
            names += _split_names(_plain_text(name, None, to_text))
    return [AuthorData(name=name) for name in dict.fromkeys(names)]


def _split_names(text: str) -> list[str]:
    """One creator element may hold one name, "Family, Given", or a whole list (";" or "," and "and")."""
    text = clean_text(text)
    if not text:
        return []
    if ";" in text:
        pieces = [clean_text(p) for p in text.split(";")]
    elif "," in text:
        first, _, rest = text.partition(",")
        if " " not in first.strip() and "," not in rest and " and " not in rest:
            pieces = [text]  # "Lovelace, Ada": one name, family first
        else:
            pieces = [author.name for author in split_author_list(text.replace(" & ", " and "))]
    elif " and " in text or " & " in text:
        pieces = [author.name for author in split_author_list(text.replace(" & ", " and "))]
    else:
        pieces = [text]
    return [p for p in pieces if p and p.lower().rstrip(".") not in ("et al", "and others")]


def _keywords(entry, to_text: Callable[[str], str]) -> list[str]:
    terms = [_plain_text(tag.get("term"), None, to_text) for tag in entry.get("tags") or []]
    return list(dict.fromkeys(term for term in terms if term))


def _work_type(entry, mapping: FeedMapping) -> str:
    for key in ("dc_type", "prism_contenttype", "prism_section"):
        said = (_first_text(entry.get(key)) or "").lower()
        if said in _WORK_TYPES:
            return _WORK_TYPES[said]
    return mapping.work_type


def _journal_ref(entry, venue: str | None) -> str | None:
    """"Nature 635(8040), 123-130 (2024)" from PRISM's volume, number and pages, when the feed has them."""
    volume = _first_text(entry.get("prism_volume"))
    if not volume:
        return None
    ref = f"{venue} {volume}" if venue else volume
    if number := _first_text(entry.get("prism_number")):
        ref += f"({number})"
    start, end = _first_text(entry.get("prism_startingpage")), _first_text(entry.get("prism_endingpage"))
    if start:
        ref += f", {start}-{end}" if end and end != start else f", {start}"
    return ref


# ----------------------------------------------------------------------------- dates


def _published(entry, mapping: FeedMapping, is_atom: bool) -> date | None:
    """The publication day the publisher states. dc:date (which feedparser files as "updated") is the
    publication date in RSS; in Atom "updated" is a modification time and is not used here."""
    keys = [_field(mapping.date_field)] if mapping.date_field else []
    keys += ["prism_publicationdate", "published"]
    if not is_atom:
        keys.append("updated")
    keys.append("prism_coverdate")
    for key in keys:
        if day := _day(entry.get(key), entry.get(f"{key}_parsed")):
            return day
    return None


def _day(text: Any, parsed) -> date | None:
    """The day as written ("2024-11-27T22:00-05:00" is the 27th), not shifted to UTC."""
    text = _value_text(text)
    if text:
        if match := _ISO_DAY.match(text):
            try:
                return date.fromisoformat(match.group(1))
            except ValueError:
                pass
        try:
            if match := _ISO_MONTH.match(text):
                return date(int(match.group(1)), int(match.group(2)), 1)
            return parsedate_to_datetime(text.strip()).date()
        except (TypeError, ValueError, IndexError, OverflowError):  # month 13; a year past 9999
            pass
    if parsed:
        try:
            return date(*parsed[:3])
        except ValueError:  # feedparser's struct_time may hold year 0
            return None
    return None


def _datetime(entry, key: str) -> datetime | None:
    parsed = entry.get(f"{key}_parsed")  # feedparser's struct_time is UTC already
    try:
        return datetime(*parsed[:6]) if parsed else None
    except ValueError:  # year 0, or a leap second (second 60)
        return None


# ----------------------------------------------------------------------------- text


def _markup_converters() -> tuple[Callable[[str], str], Callable[[str], str]]:
    """(for abstracts, for titles): jats.markup_to_text when that module is there (a title may be
    "Abstract", so its heading rule is off for titles); lxml.html's text otherwise."""
    try:
        from .jats import markup_to_text
    except ImportError:
        return _html_text, _html_text
    return markup_to_text, partial(markup_to_text, drop_abstract_heading=False)


def _html_text(markup: str) -> str:
    import lxml.html
    from lxml import etree

    markup = _CONTROL.sub(" ", markup)
    if "<" not in markup and "&" not in markup:
        return markup
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return markup
    for element in list(root.iter("script", "style")):
        element.drop_tree()
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCK_TAGS:
            element.tail = " " + (element.tail or "")
            element.text = " " + (element.text or "")
    return root.text_content()


def _plain_text(markup: str | None, kind: str | None, to_text: Callable[[str], str]) -> str:
    """Plain text, whatever came in: markup is converted unless the feed declared plain text, and tags
    that were escaped twice are converted once more."""
    if not markup:
        return ""
    text = markup if kind == "text/plain" else to_text(markup)
    for _ in range(2):
        if not _LEFTOVER_TAG.search(text):
            break
        text = to_text(text)
    return clean_text(text)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if not str(k).endswith("_parsed")}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


# ----------------------------------------------------------------------------- the feed kind

# A journal's table of contents: first word on new papers, thin records, below every index.
FEED_FAMILY = MergeFamily("feed", default_rank=3, ranks={
    "title": 4, "abstract": 4, "authors": 3, "venue": 4, "published_on": 4, "work_type": 4, "url_abs": 4,
})


def _prepare(params: dict, settings) -> dict:
    """Refuse file:, javascript: and (unless allowed) loopback/private targets when added, not at 3 a.m."""
    from .safe_url import check_public_url

    return {**params, "url": check_public_url(params["url"], allow_private=settings.allow_private_urls)}


def _client_options(settings) -> dict:
    """A feed is a URL a user typed: a smaller size cap, and every request (redirects too) checked
    and pinned to the address it was checked at, unless private addresses are allowed."""
    options: dict = {"max_bytes": min(settings.feed_max_bytes, settings.max_response_bytes)}
    if not settings.allow_private_urls:
        from .safe_url import GuardedTransport

        options["transport"] = GuardedTransport()
    return options


def _pages(fetch: Fetch) -> Iterator[Page]:
    url = fetch.params["url"]  # checked (and pinned) per request by the guarded transport
    fetched = fetch.http.get(url)
    if fetched.not_modified:
        return
    yield parse_feed(fetched.content, url, venue=fetch.params.get("venue"))


SOURCE_KINDS = (
    SourceKind(
        name=SOURCE,
        label="Journal feed",
        family=FEED_FAMILY,
        # any RSS, Atom or RDF feed that is not arXiv's (arXiv's sniffers run first and want its namespace)
        file=FileFormat(name=SOURCE, syntax="xml", sniff=xml_root("rss", "feed", "RDF"), sniff_order=10,
                        description="an RSS/Atom/RDF feed", parse=parse_feed, constant="PUBLISHER_FEED"),
        pages=_pages,
        params=(
            Param("url", "the feed's URL (RSS, Atom or RDF)", required=True),
            Param("venue", "the journal's name, when the feed does not say it"),
        ),
        prepare=_prepare,
        conditional=True,
        client_options=_client_options,
    ),
)
