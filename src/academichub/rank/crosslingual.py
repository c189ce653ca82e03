"""A Chinese interest statement, read in English.

The embedding model available offline (all-MiniLM-L6-v2) is English-only, and the papers are
in English, so a statement written in Chinese is first turned into the English terms it names:
forward maximum matching over a zh->en glossary of scientific terms (data/zh_en_terms.toml,
~1 600 terms over the fields of the arXiv taxonomy, plus the taxonomy's Chinese category
names). Latin-script words in the statement ("Transformer", "LLM", "SLAM") are kept as they
are; Han characters no term covers are dropped (function words, mostly). The English text is
then embedded and matched like any English statement.

Measured on the benchmark (benchmarks/relevance, Statements dataset: Chinese paraphrases of the
arXiv category descriptions, written apart from the shipped Chinese text): see the README there.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*[A-Za-z0-9+]|[A-Za-z]")


def has_han(text: str | None) -> bool:
    """True when the text holds Chinese (Han) characters."""
    return bool(text) and _HAN.search(text) is not None


@lru_cache(maxsize=1)
def load_taxonomy() -> dict[str, dict]:
    """arXiv category code -> {group, name, description, name_zh, description_zh, [alias_of]}."""
    from ..taxonomy import raw_categories

    return raw_categories()


@lru_cache(maxsize=1)
def load_glossary() -> dict[str, tuple[str, ...]]:
    """Chinese term -> its English renderings (the glossary, plus the taxonomy's category names)."""
    text = resources.files("academichub").joinpath("data", "zh_en_terms.toml").read_text(encoding="utf-8")
    glossary: dict[str, tuple[str, ...]] = {}
    for table in tomllib.loads(text).values():
        for zh, en in table.items():
            glossary[zh] = tuple(e.strip() for e in en.split("|") if e.strip())
    for entry in load_taxonomy().values():
        glossary.setdefault(entry["name_zh"], (entry["name"],))
    return {k: v for k, v in glossary.items() if v}


@dataclass(slots=True)
class Translation:
    english: str  # the terms joined: what is embedded and matched
    terms: list[str]
    coverage: float  # share of the statement's Han characters that a term covered
    primary: list[str] = field(default_factory=list)  # each term's first rendering (a search's words)
    unknown: list[str] = field(default_factory=list)  # runs of Han characters no term covered


def translate(text: str) -> Translation:
    """The English terms a (partly) Chinese statement names, in order, without repeats."""
    glossary = load_glossary()
    longest = max(map(len, glossary), default=1)
    terms: list[str] = []
    primary: list[str] = []
    unknown: list[str] = []
    seen: set[str] = set()
    gap = ""
    han = covered = 0
    i = 0

    def add(term: str) -> None:
        key = term.casefold()
        if key not in seen:
            seen.add(key)
            terms.append(term)

    while i < len(text):
        for size in range(min(longest, len(text) - i), 0, -1):  # a term first ("X射线" too)
            piece = text[i : i + size]
            if piece in glossary and (size > 1 or _HAN.match(piece)):
                if gap:
                    unknown.append(gap)
                    gap = ""
                if glossary[piece][0].casefold() not in seen:
                    primary.append(glossary[piece][0])
                for english in glossary[piece]:
                    add(english)
                count = len(_HAN.findall(piece))
                han += count
                covered += count
                i += size
                break
        else:
            if _HAN.match(text[i]):
                han += 1
                gap += text[i]
                i += 1
                continue
            if gap:
                unknown.append(gap)
                gap = ""
            if match := _LATIN_WORD.match(text, i):
                if match.group(0).casefold() not in seen:
                    primary.append(match.group(0))
                add(match.group(0))
                i = match.end()
            else:
                i += 1
    if gap:
        unknown.append(gap)
    return Translation(english=", ".join(terms), terms=terms, coverage=covered / han if han else 1.0,
                       primary=primary, unknown=unknown)


def to_english(text: str) -> str:
    """The statement as English text: unchanged when it holds no Chinese, else its terms."""
    if not has_han(text):
        return text
    return translate(text).english
