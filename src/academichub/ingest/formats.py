"""Format detection: look at the first bytes, pick the one adapter that parses them (miniflux's
way). The formats and their sniffers are declared by the source modules (sources/kinds.py); this
module prepares the head they look at (encoding, byte order mark, XML prolog) and refuses what no
format claims. Nothing is guessed from file names; a wrong file type is named as such, and so is
JSON that is none of ours (it used to pass for snapshot lines). XML in UTF-16 or UTF-32, with a byte order
mark or without, is read as XML: the parsers behind (lxml, feedparser) decode it themselves."""

from __future__ import annotations

import re

from ..errors import ParseError
from ..sources import kinds
from ..sources.kinds import FileFormat, Head


class _FormatNames(type):
    def __getattr__(cls, constant: str) -> FileFormat:
        if constant.startswith("_"):
            raise AttributeError(constant)
        found = kinds.format_by_constant(constant)
        if found is None:
            raise AttributeError(f"no file format {constant} is registered")
        return found


class Format(metaclass=_FormatNames):
    """The registered file formats by their constant, for code that names one (`Format.ARXIV_RSS`
    is the `FileFormat` the arXiv RSS kind declares): detect_format answers these same objects."""


_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s>/]")
_SIGNATURES = {
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
    b"\x1f\x8b": "a gzip archive (decompress it first)",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
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


def _json_format(text: bytes, location: str) -> FileFormat:
    head = Head("json", text)
    for fmt in kinds.file_formats():
        if fmt.syntax == "json" and fmt.sniff(head):
            return fmt
    what = "a JSON list" if text.startswith(b"[") else "a JSON object"
    raise ParseError(f"unknown JSON format: {what} that is none of the formats read here; expected {_expected('json')}",
                     location=location, line=1)


def _expected(syntax: str) -> str:
    described = [fmt.description for fmt in kinds.file_formats() if fmt.syntax == syntax]
    return ", ".join(described[:-1]) + " or " + described[-1] if len(described) > 1 else "".join(described)


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


def detect_format(head: bytes, location: str) -> FileFormat:
    """The one registered format these first bytes are in (each kind's `sniff` decides, in
    sniff order); ParseError naming what the bytes are when none is."""
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
        root = match.group(1) if match else None
        xml_head = Head("xml", body, root)
        for fmt in kinds.file_formats():
            if fmt.syntax == "xml" and fmt.sniff(xml_head):
                return fmt
        shown = root.decode(errors="replace") if root else "?"
        raise ParseError(
            f"unsupported XML document (root <{shown}>): expected {_expected('xml')}", location=location, line=1,
        )
    if b"\x00" in text[:512]:
        raise ParseError("unsupported file type: binary data", location=location, line=1)
    raise ParseError(f"unsupported format: expected XML ({_expected('xml')}) or JSON ({_expected('json')})",
                     location=location, line=1)
