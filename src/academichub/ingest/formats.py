"""Format detection: look at the first bytes, pick the one adapter that parses them (miniflux's
way). Nothing is guessed from file names; a wrong file type is named as such."""

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


_JSON_MARKERS = (
    (b'"message-type"', Format.CROSSREF),
    (b'"messages"', Format.BIORXIV),
    (b'"https://openalex.org/', Format.OPENALEX),
    (b'"paperId"', Format.SEMANTICSCHOLAR),
    (b'"submitter"', Format.ARXIV_SNAPSHOT),
    (b'"authors_parsed"', Format.ARXIV_SNAPSHOT),
)


def _json_format(text: bytes, location: str) -> Format:
    first_line = text.split(b"\n", 1)[0]
    for marker, fmt in _JSON_MARKERS:
        if marker in (first_line if fmt is Format.ARXIV_SNAPSHOT else text):
            return fmt
    if first_line.rstrip().endswith(b"}") and b'"id"' in first_line:
        return Format.ARXIV_SNAPSHOT  # one object per line
    raise ParseError(
        "unsupported JSON: expected a Crossref, OpenAlex, bioRxiv or Semantic Scholar response, or snapshot JSON lines",
        location=location,
        line=1,
    )


def detect_format(head: bytes, location: str) -> Format:
    for signature, what in _SIGNATURES.items():
        if head.startswith(signature):
            raise ParseError(f"unsupported file type: this is {what}", location=location, line=1)
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text:
        raise ParseError("empty input", location=location, line=1)
    if text.startswith(b"{"):
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
