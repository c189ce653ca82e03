"""Author names: TeX escapes to Unicode, splitting arXiv's one-line author lists, and the keys that
let "C. Balázs", "Csaba Balazs" and "Bal\\'azs, C." meet."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text

from .model import AuthorData

_latex = LatexNodes2Text(math_mode="verbatim", strict_latex_spaces=True)
_SPACE = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^a-z0-9\s-]")
_SUFFIXES = {"jr", "sr", "ii", "iii", "iv"}


# The accents that make up nearly all TeX in author names, done with a table so bulk imports stay
# fast; anything else falls through to pylatexenc.
_COMBINING = {
    "'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
    ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
    "r": "\u030a", "d": "\u0323", "b": "\u0331",
}
_LETTERS = {
    "l": "ł", "L": "Ł", "o": "ø", "O": "Ø", "ss": "ß", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ",
    "aa": "å", "AA": "Å", "i": "ı", "j": "ȷ",
}
_BASE = r"(?:\{\s*(?P<b1>\\[ij]|[A-Za-z])\s*\}|(?P<b2>\\[ij](?![A-Za-z])|[A-Za-z]))"
_SYMBOL_ACCENT = re.compile(r"\\(?P<acc>['`^\"~=.])\s*" + _BASE)
_LETTER_ACCENT = re.compile(r"\\(?P<acc>[uvHckrdb])(?:\s*\{\s*(?P<b1>\\[ij]|[A-Za-z])\s*\}|\s+(?P<b2>[A-Za-z]))")
_SPECIAL = re.compile(r"\\(ss|ae|AE|oe|OE|aa|AA|[lLoOij])(?![A-Za-z])(?:\s*\{\})?\s?")


def _accented(match: re.Match) -> str:
    base = match.group("b1") or match.group("b2")
    if base in ("\\i", "\\j"):
        base = base[1]
    return base + _COMBINING[match.group("acc")]


MAX_TEX_NAME = 2000  # longer is no name: pylatexenc takes ~60 µs a macro, minutes for a hostile megabyte


@lru_cache(maxsize=65536)
def tex_to_unicode(text: str) -> str:
    """`Pe\\~na-Mo\\~nino` -> `Peña-Moñino`; text without TeX passes through untouched."""
    if "\\" not in text and "{" not in text:
        return text
    converted = _SYMBOL_ACCENT.sub(_accented, text)
    converted = _LETTER_ACCENT.sub(_accented, converted)
    converted = _SPECIAL.sub(lambda m: _LETTERS[m.group(1)], converted)
    if "\\" in converted and len(converted) <= MAX_TEX_NAME:
        try:
            converted = _latex.latex_to_text(text)
        except Exception:  # pylatexenc is lenient, but a name must never abort an ingest
            return text
    converted = converted.replace("{", "").replace("}", "")
    return unicodedata.normalize("NFC", _SPACE.sub(" ", converted).strip())


def fold(text: str) -> str:
    """Lowercase ASCII folding: accents dropped, punctuation gone, spaces collapsed."""
    if text.isascii():  # most text: nothing to decompose
        ascii_only = text
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        ascii_only = ascii_only.replace("ł", "l").replace("Ł", "L").replace("ø", "o").replace("ß", "ss")
    return _SPACE.sub(" ", _NON_WORD.sub(" ", ascii_only.lower().replace(".", ". "))).strip()


def split_name(name: str) -> tuple[str, str]:
    """(given names, family name) from "Given Family" or "Family, Given"."""
    name = _SPACE.sub(" ", name).strip()
    if "," in name:
        family, _, given = name.partition(",")
        return given.strip(), family.strip()
    parts = name.split(" ")
    while len(parts) > 1 and parts[-1].strip(".").lower() in _SUFFIXES:
        parts.pop()
    if len(parts) == 1:
        return "", parts[0]
    return " ".join(parts[:-1]), parts[-1]


def name_norm(name: str) -> str:
    """The full name, folded and in "given family" order: what an author chip matches exactly."""
    given, family = split_name(tex_to_unicode(name))
    return fold(f"{given} {family}")


def name_key(name: str) -> str:
    """Family name plus first initial, folded: "balazs c". Survives initials, accents and TeX."""
    given, family = split_name(tex_to_unicode(name))
    family_folded = fold(family).replace(" ", "")
    initial = fold(given)[:1]
    return f"{family_folded} {initial}".strip()


def split_author_list(text: str) -> list[AuthorData]:
    """arXiv's one-line list: "A (Inst, City), B, and C" -> authors with affiliations.

    Commas inside parentheses belong to affiliations, not to the list."""
    authors: list[AuthorData] = []
    depth = 0
    start = 0
    pieces: list[str] = []
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    for piece in pieces:
        piece = _SPACE.sub(" ", piece).strip()
        if piece.startswith("and "):
            piece = piece[4:]
        if not piece:
            continue
        # "A and B" inside one piece (old-style lists end with ", and" or just " and ")
        for sub in _split_and(piece):
            authors.append(_author_from_piece(sub))
    return authors


def _split_and(piece: str) -> list[str]:
    if " and " not in piece or "(" in piece:
        return [piece]
    return [p.strip() for p in piece.split(" and ") if p.strip()]


def _author_from_piece(piece: str) -> AuthorData:
    affiliation = None
    if piece.endswith(")") and "(" in piece:
        open_at = _matching_open(piece)
        if open_at > 0:
            affiliation = piece[open_at + 1 : -1].strip() or None
            piece = piece[:open_at].strip()
    return AuthorData(name=tex_to_unicode(piece), affiliation=tex_to_unicode(affiliation) if affiliation else None)


def _matching_open(piece: str) -> int:
    depth = 0
    for i in range(len(piece) - 1, -1, -1):
        if piece[i] == ")":
            depth += 1
        elif piece[i] == "(":
            depth -= 1
            if depth == 0:
                return i
    return -1
