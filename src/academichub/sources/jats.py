"""Abstracts and titles that arrive as markup, to clean plain text. Crossref serves JATS
(`<jats:p>`, `<jats:title>Abstract</jats:title>`, `<jats:italic>`, `<jats:sub>`, namespaced or as
bare prefixes with no declaration), publishers' HTML (`<p>`, `<i>`, `&amp;`, `&nbsp;`) and plain
text with entities; other sources (PubMed, Europe PMC, OpenAlex) serve the same mix.

The result is ONE line: paragraphs are joined by a single space, as every other source's abstract
is (clean_text folds arXiv's line breaks the same way). A leading "Abstract", as a heading or as a
paragraph of its own, is dropped; other headings ("Background", a structured abstract's sections)
are kept and joined to their paragraph with ": ". Inline markup leaves its text and nothing else
("CO<sub>2</sub>" -> "CO2"), except that italics glued to a word on both sides get their lost
space back: many deposits read "dynamics of<i>Burkholderia</i>BS001" (the price is "<i>lac</i>Z"
-> "lac Z"). A formula given both as TeX and MathML keeps the TeX; LaTeX is kept exactly as written.

Markup goes through lxml's HTML parser, which tolerates unclosed tags and undeclared prefixes,
decodes HTML's named entities, and never reads a DTD or resolves an external entity. Nothing here
raises: if parsing fails, tags are stripped with a regular expression instead."""

from __future__ import annotations

import html
import re

from lxml import etree
from lxml import html as lxml_html

from ..cleantext import clean_text

# Elements that end a run of text: their content is a paragraph of its own.
_BLOCKS = frozenset({
    "p", "sec", "title", "list", "list-item", "def-list", "def-item", "term", "def", "disp-quote",
    "boxed-text", "caption", "table-wrap", "table", "tr", "td", "th", "disp-formula", "statement",
    "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6",
    "abstract", "trans-abstract", "section", "article", "body",
})
_HEADINGS = frozenset({"title", "h1", "h2", "h3", "h4", "h5", "h6"})
# Emphasis that some deposits glue to the neighbouring words ("dynamics of<i>Burkholderia</i>BS001").
_EMPHASIS = frozenset({"i", "b", "em", "strong", "italic", "bold", "sc", "u", "underline", "monospace"})
_SKIPPED = frozenset({"script", "style", "head", "object-id", "xref-group"})

_ABSTRACT_HEADING = re.compile(r"^abstract\s*[.:]?$", re.I)
_ENDS_SENTENCE = re.compile(r"[.:;?!]$")
# An XML declaration makes lxml refuse a str; a DOCTYPE is never content (and is never read).
_PROLOG = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^\[>]*(?:\[[^\]]*\])?\s*>", re.I)
# C0 controls other than whitespace: lxml would pass them through (or turn NUL into U+FFFD).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A "<" that does not open a tag is text ("$a<b$"); escape it before the parser eats what follows.
_STRAY_LT = re.compile(r"<(?!/?[A-Za-z][\w.:-]*(?:\s[^<>]*)?/?>|!--)")
_ANY_TAG = re.compile(r"<[^>]*>")
_BLOCK_TAG = re.compile(r"</?(?:[\w.-]+:)?(?:p|title|sec|div|br|li|h[1-6])\b[^>]*>", re.I)


def markup_to_text(text: str, *, drop_abstract_heading: bool = True) -> str:
    """JATS/HTML/entity-laden text -> one clean line; plain text passes through clean_text.

    `drop_abstract_heading=False` for titles: a work may be titled "Abstract"."""
    if not text:
        return ""
    text = _CONTROLS.sub("", text)
    if "<" not in text and "&" not in text:
        blocks = [(False, clean_text(text))]
    else:
        try:
            blocks = _blocks(text)
        except Exception:  # lxml is lenient, but an abstract must never abort an ingest
            blocks = _stripped_blocks(text)
    # "Abstract" alone, as a heading or as the first paragraph, announces the text: it is not part of it
    if drop_abstract_heading and blocks and _ABSTRACT_HEADING.match(blocks[0][1]):
        blocks = blocks[1:]
    return _joined(blocks)


def _blocks(text: str) -> list[tuple[bool, str]]:
    """(is_heading, clean text) per paragraph, in document order."""
    markup = _STRAY_LT.sub("&lt;", _PROLOG.sub("", text))
    root = lxml_html.fragment_fromstring(markup, create_parent="div")
    collector = _Collector()
    collector.walk(root)
    collector.close()
    return [(heading, cleaned) for heading, pieces in collector.blocks if (cleaned := clean_text("".join(pieces)))]


def _joined(blocks: list[tuple[bool, str]]) -> str:
    out: list[str] = []
    for i, (heading, text) in enumerate(blocks):
        followed = i + 1 < len(blocks) and not blocks[i + 1][0]
        if heading and followed and not _ENDS_SENTENCE.search(text):
            text += ":"
        out.append(text)
    return " ".join(out)


def _stripped_blocks(text: str) -> list[tuple[bool, str]]:
    """The fallback: block tags cut paragraphs, other tags vanish, entities are decoded."""
    pieces = (clean_text(html.unescape(_ANY_TAG.sub("", piece))) for piece in _BLOCK_TAG.split(_PROLOG.sub("", text)))
    return [(False, piece) for piece in pieces if piece]


def _local_name(element: etree._Element) -> str:
    """`jats:p`, `{http://…/JATS1}p` and `P` are all `p`."""
    tag = element.tag
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()


class _Collector:
    """Walks the tree once, cutting text into blocks at block elements."""

    def __init__(self) -> None:
        self.blocks: list[tuple[bool, list[str]]] = []
        self.pieces: list[str] = []
        self.heading = False

    def add(self, text: str | None) -> None:
        if text:
            self.pieces.append(text)

    def close(self) -> None:
        if self.pieces:
            self.blocks.append((self.heading, self.pieces))
        self.pieces = []
        self.heading = False

    def walk(self, element: etree._Element) -> None:
        name = _local_name(element)
        if not name or name in _SKIPPED:
            self.add(element.tail)
            return
        if name == "alternatives":  # the same formula as TeX and MathML: keep one, TeX if given
            children = [c for c in element if _local_name(c)]
            chosen = next((c for c in children if _local_name(c) == "tex-math"), children[0] if children else None)
            if chosen is not None:
                self.walk(chosen)
            self.add(element.tail)
            return
        if name == "math" and element.get("alttext"):
            self.add(element.get("alttext"))
            self.add(element.tail)
            return

        block = name in _BLOCKS
        if block:
            self.close()
            self.heading = name in _HEADINGS
        if name in _EMPHASIS:
            self._emphasis(element)
        else:
            self._content(element)
        if block:
            self.close()
        self.add(element.tail)

    def _content(self, element: etree._Element) -> None:
        self.add(element.text)
        for child in element:
            self.walk(child)

    def _emphasis(self, element: etree._Element) -> None:
        """Italic glued to a word on either side gets the space the deposit lost."""
        inner = "".join(element.itertext())
        if not inner.strip():
            self._content(element)
            return
        if inner[0].isalnum() and self._ends_alnum():
            self.add(" ")
        self._content(element)
        tail = element.tail or ""
        if tail[:1].isalnum() and inner[-1].isalnum():
            self.add(" ")

    def _ends_alnum(self) -> bool:
        return bool(self.pieces) and self.pieces[-1][-1:].isalnum()
