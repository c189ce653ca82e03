"""OPML: the file every feed reader exports and imports, so users can bring their journal feeds in
one go. Folders nest (<outline text="Physics"><outline xmlUrl=…/></outline>); any outline with an
xmlUrl is a feed, wherever it sits. Parsed through xmlsafe, so errors name the file and line.

An OPML file is as untrusted as a URL typed into `sources add feed`, so its feeds pass the same
add-time check (`check_feed_urls`): no file:, javascript: or addresses inside the network."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace

from ..cleantext import clean_text
from ..errors import ParseError, SourceError
from .safe_url import Resolver, check_public_url
from .xmlsafe import parse_xml


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    title: str
    xml_url: str
    html_url: str | None = None
    category: str | None = None  # the enclosing folders, "Physics/Condensed matter"; else OPML's category
    line: int | None = field(default=None, compare=False)  # of its <outline>, for error messages


def parse_opml(content: bytes, location: str) -> list[OpmlFeed]:
    """Every feed in the file, in document order; a feed listed twice is kept once (the first)."""
    root = parse_xml(content, location)
    if not isinstance(root.tag, str) or root.tag.lower() != "opml":
        raise ParseError(f"not an OPML file (root <{root.tag}>)", location=location, line=root.sourceline)
    body = next((child for child in root if isinstance(child.tag, str) and child.tag.lower() == "body"), None)
    if body is None:
        raise ParseError("OPML file without <body>", location=location, line=root.sourceline)
    feeds: dict[str, OpmlFeed] = {}
    _walk(body, [], feeds, location)
    return list(feeds.values())


def _walk(parent, folders: list[str], feeds: dict[str, OpmlFeed], location: str) -> None:
    for outline in parent:
        if not isinstance(outline.tag, str) or outline.tag.lower() != "outline":
            continue
        attributes = {name.lower(): value for name, value in outline.attrib.items()}
        label = clean_text(attributes.get("title") or attributes.get("text"))
        xml_url = (attributes.get("xmlurl") or "").strip()
        if "xmlurl" in attributes and not xml_url:
            raise ParseError(f"outline {label!r} has an empty xmlUrl", location=location, line=outline.sourceline)
        if xml_url and xml_url not in feeds:
            own_category = clean_text((attributes.get("category") or "").split(",")[0]).strip("/") or None
            feeds[xml_url] = OpmlFeed(
                title=label or xml_url,
                xml_url=xml_url,
                html_url=(attributes.get("htmlurl") or "").strip() or None,
                category="/".join(folders) or own_category,
                line=outline.sourceline,
            )
        _walk(outline, [*folders, label] if label and not xml_url else folders, feeds, location)


def check_feed_urls(
    feeds: list[OpmlFeed], location: str, *, allow_private: bool, resolver: Resolver = socket.getaddrinfo
) -> list[OpmlFeed]:
    """The feeds, their URLs as `sources add feed` would store them, when every one passes its check;
    else one SourceError naming each refused outline by file and line, so nothing is half-imported."""
    checked, refused = [], []
    for feed in feeds:
        try:
            checked.append(replace(feed, xml_url=check_public_url(feed.xml_url, resolver=resolver, allow_private=allow_private)))
        except SourceError as exc:
            refused.append(f"{location}:{feed.line}: {exc}")
    if refused:
        raise SourceError(f"{len(refused)} of {len(feeds)} feeds refused, nothing imported:\n  " + "\n  ".join(refused))
    return checked
