"""XML that we parse ourselves goes through one parser configuration: no entity resolution,
no network, no DTD loading (XXE and billion-laughs stay harmless). Errors name file and line."""

from __future__ import annotations

from typing import IO, Iterator

from lxml import etree

from ..errors import ParseError


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=False
    )


def parse_xml(content: bytes, location: str) -> etree._Element:
    if not content.strip():
        raise ParseError("empty document", location=location, line=1)
    try:
        return etree.fromstring(content, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        line = max(exc.position[0], 1) if exc.position else None
        raise ParseError(f"malformed XML: {exc.msg}", location=location, line=line) from exc


def iterparse_safe(source: IO[bytes], tags: tuple[str, ...], location: str) -> Iterator[etree._Element]:
    """Stream elements with the given (namespaced) tags; memory stays flat on any file size."""
    context = etree.iterparse(
        source, events=("end",), tag=tags, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True
    )
    try:
        for _event, element in context:
            yield element
    except etree.XMLSyntaxError as exc:
        line = max(exc.position[0], 1) if exc.position else None  # lxml says 0 for an empty input
        raise ParseError(f"malformed XML: {exc.msg}", location=location, line=line) from exc
