"""TeX math in titles, abstracts and briefing sentences, rendered as MathML on the server.

arXiv titles and abstracts carry inline TeX (`$\\ell_0$`, `$\\Lambda_b \\to \\Sigma^0 K^+ K^-$`). Browsers
render MathML natively, so the server converts each math run with latex2mathml and the page needs no
script (the CSP forbids inline script, and a client-side TeX engine would be a large download). The
TeX source stays in the markup (`alttext` and an `application/x-tex` annotation) for copying and
screen readers, and a run that does not convert is shown as its source text.

latex2mathml passes `\\text{...}` through unescaped and copies `\\href`/`\\style` arguments into
attributes, so its element tree is re-serialized here through a whitelist of MathML elements and
attributes: upstream text never reaches the page as markup.
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import lru_cache
from xml.etree.ElementTree import Element

from latex2mathml.converter import convert_to_element
from markupsafe import Markup, escape

from .text_links import linkify

MATHML_NS = "http://www.w3.org/1998/Math/MathML"

# MathML Core's presentation elements; anything else (an unknown tag) makes the run fall back to text.
_ELEMENTS = frozenset(
    "math mrow mi mn mo ms mtext mspace msub msup msubsup munder mover munderover mfrac msqrt mroot "
    "mstyle mpadded mphantom menclose merror mtable mtr mtd mmultiscripts mprescripts none semantics".split()
)
# Attributes kept (their values are checked below); href, style, class, id and the like are dropped.
_ATTRIBUTES = frozenset(
    "mathvariant display displaystyle scriptlevel stretchy fence separator lspace rspace minsize maxsize "
    "movablelimits largeop symmetric accent accentunder linethickness width height depth columnalign "
    "rowalign columnspan rowspan columnlines rowlines columnspacing rowspacing frame notation".split()
)
_ATTRIBUTE_VALUE = re.compile(r"^[A-Za-z0-9 .%+\-#]{0,64}$")

# A math run: $$...$$ and \[...\] (display), \(...\), and $...$ when it is math: pandoc's rule
# (no space just inside the dollars, the closing one not followed by a digit) keeps "$5 and $10"
# text, but arXiv writes "$ \pi_1(S_{2,0}) $", "$\sim$97%" and "$>$8", so a run that holds a
# backslash, ^ or _, or is one or two characters, is math as well. An escaped dollar (\$) is never
# a delimiter.
_MATH = re.compile(
    r"(?<!\\)\$\$(?P<dd>[^$]+?)(?<!\\)\$\$"
    r"|\\\[(?P<bd>.+?)\\\]"
    r"|(?<![\\$])\$(?P<d>[^$]+?)(?<!\\)\$"
    r"|\\\((?P<bp>.+?)\\\)",
    re.DOTALL,
)
_TEX_SYNTAX = re.compile(r"[\\^_]")


def _is_math(match: re.Match) -> bool:
    """Whether a $...$ match is math (the other delimiters always are)."""
    content = match.group("d")
    if content is None:
        return True
    if _TEX_SYNTAX.search(content) or len(content.strip()) <= 2:
        return True
    after = match.string[match.end():match.end() + 1]
    return not content[0].isspace() and not content[-1].isspace() and not after.isdigit()


def _serialize(element: Element, out: list[str]) -> None:
    tag = element.tag
    if tag not in _ELEMENTS:
        raise ValueError(f"unexpected element {tag!r}")
    attributes = []
    for name, value in element.attrib.items():
        if name in _ATTRIBUTES and _ATTRIBUTE_VALUE.match(value):
            attributes.append(f' {name}="{value}"')
    out.append(f"<{tag}{''.join(attributes)}>")
    if element.text:
        text = html.unescape(element.text)
        if tag == "mi" and text.startswith("\\"):
            raise ValueError(f"unknown command {text!r}")  # latex2mathml shows it as a variable
        out.append(str(escape(text)))
    for child in element:
        _serialize(child, out)
        if child.tail:
            out.append(str(escape(html.unescape(child.tail))))
    out.append(f"</{tag}>")


@lru_cache(maxsize=8192)
def tex_to_mathml(tex: str, display: bool = False) -> str | None:
    """The MathML of one math run (without its delimiters), or None when it does not convert.
    Cached: the same titles are shown on the feed, the paper page and the briefing."""
    source = tex.strip()
    if not source:
        return None
    try:
        root = convert_to_element(source, display="block" if display else "inline")
        out: list[str] = []
        for child in root:  # latex2mathml's one <mrow>
            _serialize(child, out)
    except Exception:  # latex2mathml raises many kinds on malformed TeX: the source is the fallback
        return None
    if len(out) <= 2:  # an empty <mrow></mrow>
        return None
    alt = escape(source)
    mode = "block" if display else "inline"
    return (
        f'<math xmlns="{MATHML_NS}" display="{mode}" alttext="{alt}"><semantics>{"".join(out)}'
        f'<annotation encoding="application/x-tex">{alt}</annotation></semantics></math>'
    )


def split_math(text: str) -> list[tuple[str, str, bool, str]]:
    """The text as runs, in order: ("text", plain, False, plain) and ("math", tex, display, the run
    as written with its delimiters)."""
    runs: list[tuple[str, str, bool, str]] = []
    position = search_from = 0
    while (match := _MATH.search(text, search_from)) is not None:
        if not _is_math(match):  # its closing dollar may open the next run
            search_from = match.start() + 1
            continue
        if match.start() > position:
            runs.append(("text", text[position:match.start()], False, text[position:match.start()]))
        for group, display in (("dd", True), ("bd", True), ("d", False), ("bp", False)):
            if match.group(group) is not None:
                runs.append(("math", match.group(group), display, match.group(0)))
                break
        position = search_from = match.end()
    if position < len(text):
        runs.append(("text", text[position:], False, text[position:]))
    return runs


# Text-mode TeX outside math runs: escaped specials (96.20\% reduction) and accents (Schr\"odinger,
# Erd\H{o}s, kagom\'e), written as the characters they stand for.
_TEXT_SPECIAL = re.compile(r"\\([%&#_$])")
_ACCENT = re.compile(r"\\([\"'`^~=.Hcuvk])(?:\{([A-Za-z])\}|([A-Za-z])(?![A-Za-z]))|\\([\"'`^~=.])([A-Za-z])")
_COMBINING = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304",
              ".": "\u0307", "H": "\u030b", "c": "\u0327", "u": "\u0306", "v": "\u030c", "k": "\u0328"}


def _accented(match: re.Match) -> str:
    accent = match.group(1) or match.group(4)
    letter = match.group(2) or match.group(3) or match.group(5)
    return unicodedata.normalize("NFC", letter + _COMBINING[accent])


def plain_text(text: str) -> str:
    """A text run's TeX escapes and accents as characters; anything else unchanged."""
    if "\\" not in text:
        return text
    return _TEXT_SPECIAL.sub(r"\1", _ACCENT.sub(_accented, text))


def render_math(text: str | None, *, links: bool = False) -> Markup:
    """Escaped text with every math run as MathML (a run that does not convert stays as written,
    delimiters included). The Jinja filter `tex`; with `links` (the filter `tex_links`, for
    abstracts) the URLs of the text runs become links too, never inside a formula."""
    if not text:
        return Markup("")
    if "\\" not in text and "$" not in text:
        return linkify(text) if links else escape(text)
    return Markup(_render(text, links))


@lru_cache(maxsize=4096)
def _render(text: str, links: bool = False) -> str:
    parts: list[str] = []
    for kind, value, display, written in split_math(text):
        mathml = tex_to_mathml(value, display) if kind == "math" else None
        if mathml is None and kind == "text":
            mathml = str(linkify(plain_text(value)) if links else escape(plain_text(value)))
        elif mathml is None:
            mathml = str(escape(written))  # a failed run as written
        parts.append(mathml)
    return "".join(parts)


def has_cjk(text: str | None) -> bool:
    """Whether the text holds Chinese, Japanese or Korean script (a title or abstract with none is
    English for `lang` purposes: the stored upstreams write in English or Chinese)."""
    if not text:
        return False
    for char in text:
        if ord(char) >= 0x2E80 and unicodedata.name(char, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")):
            return True
    return False
