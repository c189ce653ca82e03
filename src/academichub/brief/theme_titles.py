"""Theme titles in the briefing's language.

An extractive theme's title is its key phrases, which the papers wrote in English. In a Chinese
briefing each phrase is put in Chinese when AcademicHub's own data names it: an arXiv category
name (the taxonomy's name_zh: "Machine Learning" -> 机器学习) or a term of the zh->en glossary read
backwards (data/zh_en_terms.toml: "graph neural networks" -> 图神经网络). A phrase neither names
stays English; a page marks such a part lang="en" (`title_parts`), so a screen reader and the
browser's hyphenation read it as English. Nothing is machine-translated: a wrong Chinese title is
worse than an English one."""

from __future__ import annotations

import re
from functools import lru_cache

SEPARATOR = " · "
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _key(phrase: str) -> str:
    """A phrase's lookup key: lower case, one space, its last word singular."""
    words = " ".join(phrase.casefold().replace("-", " ").split()).split(" ")
    return " ".join([*words[:-1], _singular(words[-1])]) if words and words[0] else ""


@lru_cache(maxsize=1)
def english_to_chinese() -> dict[str, str]:
    """English term key -> Chinese: the taxonomy's category names first, then the glossary's
    terms by their first English rendering, then by the others (first written wins)."""
    from ..rank.crosslingual import load_glossary, load_taxonomy

    result: dict[str, str] = {}
    for entry in load_taxonomy().values():
        if entry.get("name") and entry.get("name_zh"):
            result.setdefault(_key(entry["name"]), entry["name_zh"])
    glossary = load_glossary()
    for zh, renderings in glossary.items():
        if renderings:
            result.setdefault(_key(renderings[0]), zh)
    for zh, renderings in glossary.items():
        for english in renderings[1:]:
            result.setdefault(_key(english), zh)
    result.pop("", None)
    return result


def localise_phrase(phrase: str, lang: str) -> str:
    """The phrase in `lang`: in Chinese when the taxonomy or the glossary names it, else as written."""
    if lang != "zh" or _HAN.search(phrase):
        return phrase
    return english_to_chinese().get(_key(phrase), phrase)


def theme_title(phrases: list[str], lang: str, fallback: str = "") -> str:
    """A theme's title: its first three key phrases in `lang` (see localise_phrase)."""
    if not phrases:
        return fallback
    return SEPARATOR.join(dict.fromkeys(localise_phrase(p, lang) for p in phrases[:3]))


def title_parts(title: str, lang: str) -> list[tuple[str, str | None]]:
    """(text, its language or None: the page's) of each " · " part of a title; on a Chinese page
    a part in Latin script with no Chinese is "en"."""
    parts = title.split(SEPARATOR)
    if lang != "zh":
        return [(part, None) for part in parts]
    return [(part, "en" if _LATIN.search(part) and not _HAN.search(part) else None) for part in parts]


__all__ = ["SEPARATOR", "english_to_chinese", "localise_phrase", "theme_title", "title_parts"]
