"""Format detection: look at the first bytes, pick the one adapter that parses them (miniflux's
way). Nothing is guessed from file names; a wrong file type is named as such, and so is JSON that
is none of ours (it used to pass for snapshot lines). XML in UTF-16 or UTF-32, with a byte order
mark or without, is read as XML: the parsers behind (lxml, feedparser) decode it themselves."""

from __future__ import annotations

import re
from enum import StrEnum

from ..errors import ParseError


class Format(StrEnum):
    ARXIV_RSS = "arxiv-rss"
    ARXIV_API = "arxiv-api"
    ARXIV_OAI = "arxiv-oai"
    ARXIV_SNAPSHOT = "arxiv-snapshot"
    PUBMED = "pubmed"
    PMC = "pmc"
    CROSSREF = "crossref"
    OPENALEX = "openalex"
    BIORXIV = "biorxiv"
    SEMANTICSCHOLAR = "semanticscholar"
    PUBLISHER_FEED = "feed"


_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s>/]")
_SIGNATURES = {
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
    b"\x1f\x8b": "a gzip archive (decompress it first)",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
}
_ROOTS = {
    b"PubmedArticleSet": Format.PUBMED,
    b"pmc-articleset": Format.PMC,
    b"RDF": Format.PUBLISHER_FEED,
    b"rss": Format.ARXIV_RSS,
    b"feed": Format.ARXIV_API,
    b"OAI-PMH": Format.ARXIV_OAI,
    b"ListRecords": Format.ARXIV_OAI,
    b"GetRecord": Format.ARXIV_OAI,
    b"record": Format.ARXIV_OAI,
}


def _skip_prolog(head: bytes) -> bytes:
    """Drop the XML declaration, comments and DOCTYPE so the root tag comes first."""
    rest = head.lstrip()
    while rest.startswith(b"<?") or rest.startswith(b"<!"):
        if rest.startswith(b"<!--"):
            end = rest.find(b"-->")
            end = end + 3 if end >= 0 else len(rest)
        else:
            end = rest.find(b">")
            bracket = rest.find(b"[")
            if rest.startswith(b"<!DOCTYPE") and 0 <= bracket < end:  # internal subset
                end = rest.find(b"]", bracket)
                end = rest.find(b">", end) if end >= 0 else -1
            end = end + 1 if end >= 0 else len(rest)
        rest = rest[end:].lstrip()
    return rest


# Keys that only one upstream's JSON carries, looked for in the head (as keys: the same words
# inside a string value have their quotes escaped and do not match).
_JSON_KEYS = (
    (re.compile(rb'"message-type"\s*:'), Format.CROSSREF),
    (re.compile(rb'"messages"\s*:'), Format.BIORXIV),
    (re.compile(rb'"paperId"\s*:'), Format.SEMANTICSCHOLAR),
)
# A snapshot line is one object per line, and its first line names arXiv's snapshot fields.
_SNAPSHOT_ID = re.compile(rb'"id"\s*:')
_SNAPSHOT_FIELDS = re.compile(rb'"(?:submitter|authors_parsed|update_date)"\s*:')
_OPENALEX_ID = re.compile(rb'"https://openalex\.org/')  # a value, so checked last
_KNOWN_JSON = "expected a Crossref, OpenAlex, bioRxiv or Semantic Scholar response, or arXiv snapshot JSON lines"


def _json_format(text: bytes, location: str) -> Format:
    if text.startswith(b"{"):
        for key, fmt in _JSON_KEYS:
            if key.search(text):
                return fmt
        first_line = text.split(b"\n", 1)[0]
        if _SNAPSHOT_ID.search(first_line) and _SNAPSHOT_FIELDS.search(first_line):
            return Format.ARXIV_SNAPSHOT
        if _OPENALEX_ID.search(text):
            return Format.OPENALEX
    what = "a JSON list" if text.startswith(b"[") else "a JSON object"
    raise ParseError(f"unknown JSON format: {what} that is none of the formats read here; {_KNOWN_JSON}",
                     location=location, line=1)


# Byte order marks, the longest first (UTF-32 LE's starts with UTF-16 LE's), and how an XML document
# without one opens in each width. lxml and feedparser read all of them; detection reads UTF-8.
_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"), (b"\xef\xbb\xbf", "utf-8"),
)
_BOMLESS_XML = (
    (b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"), (b"\x00<", "utf-16-be"), (b"<\x00", "utf-16-le"),
)


def _utf8_head(head: bytes) -> tuple[bytes, str]:
    """(the head as UTF-8 without its BOM, the encoding it was in)."""
    for prefix, encoding in _BOMS:
        if head.startswith(prefix):
            body = head[len(prefix) :]
            break
    else:
        encoding = next((enc for prefix, enc in _BOMLESS_XML if head.startswith(prefix)), "utf-8")
        body = head
    if encoding == "utf-8":
        return body, encoding
    # the head is cut at a fixed size, maybe inside a character: what cannot be decoded is dropped
    return body.decode(encoding, errors="ignore").encode("utf-8"), encoding


def detect_format(head: bytes, location: str) -> Format:
    for signature, what in _SIGNATURES.items():
        if head.startswith(signature):
            raise ParseError(f"unsupported file type: this is {what}", location=location, line=1)
    text, encoding = _utf8_head(head)
    text = text.lstrip()
    if not text:
        raise ParseError("empty input", location=location, line=1)
    if text.startswith((b"{", b"[")):
        if encoding != "utf-8":
            raise ParseError(f"JSON in {encoding.upper()}: JSON must be UTF-8 (RFC 8259); convert it first",
                             location=location, line=1)
        return _json_format(text, location)
    if text.startswith(b"<"):
        body = _skip_prolog(text)
        match = _ROOT.match(body)
        if match and match.group(1) in _ROOTS:
            found = _ROOTS[match.group(1)]
            # RSS and Atom are arXiv's only when they carry arXiv's namespace; any other is a publisher's feed
            if found in (Format.ARXIV_RSS, Format.ARXIV_API) and b"arxiv.org/schemas/atom" not in body[:2048]:
                return Format.PUBLISHER_FEED
            return found
        root = match.group(1).decode(errors="replace") if match else "?"
        raise ParseError(
            f"unsupported XML document (root <{root}>): expected arXiv RSS/Atom/OAI-PMH, PubMed/PMC XML or an RSS/Atom/RDF feed",
            location=location,
            line=1,
        )
    if b"\x00" in text[:512]:
        raise ParseError("unsupported file type: binary data", location=location, line=1)
    raise ParseError(
        "unsupported format: expected XML (arXiv, PubMed, a journal feed) or JSON (Crossref, OpenAlex, bioRxiv, "
        "Semantic Scholar, arXiv snapshot lines)",
        location=location,
        line=1,
    )
