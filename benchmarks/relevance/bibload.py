"""A minimal BibTeX reader, used only when the product's `academichub.ingest.library_import`
cannot be imported: entries split by brace counting (an entry with unbalanced braces ends at the
next line starting with "@"), fields read by hand, TeX markup stripped roughly, duplicates (same
key or same title) dropped. Enough for titles, abstracts, authors and years."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

_ENTRY = re.compile(r"^@(\w+)\s*[{(]\s*([^,\s]*)\s*,", re.M)
_FIELD = re.compile(r"(\w[\w-]*)\s*=\s*", re.A)


@dataclass
class _Author:
    name: str


@dataclass
class _Paper:
    title: str
    abstract: str
    authors: list[_Author] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published: date | None = None


@dataclass
class _Library:
    papers: list[_Paper]


def _value(text: str, i: int) -> tuple[str, int]:
    """The field value starting at text[i] ({...}, "..." or a bare word) and where it ends."""
    if i < len(text) and text[i] == "{":
        depth, j = 0, i
        while j < len(text):
            if text[j] == "{" and text[j - 1] != "\\":
                depth += 1
            elif text[j] == "}" and text[j - 1] != "\\":
                depth -= 1
                if depth == 0:
                    return text[i + 1 : j], j + 1
            j += 1
        return text[i + 1 :], len(text)
    if i < len(text) and text[i] == '"':
        j = text.find('"', i + 1)
        j = len(text) if j < 0 else j
        return text[i + 1 : j], j + 1
    m = re.match(r"[^,}\s]*", text[i:])
    return m.group(0), i + m.end()


def _clean(value: str) -> str:
    value = re.sub(r"\\[a-zA-Z]+\s*", " ", value)
    value = value.replace("{", "").replace("}", "").replace("\\", "")
    return re.sub(r"\s+", " ", value).strip()


def read_library(path: Path) -> _Library:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    starts = [m.start() for m in _ENTRY.finditer(text)] + [len(text)]
    papers, keys, titles = [], set(), set()
    for a, b in zip(starts, starts[1:]):
        chunk = text[a:b]
        head = _ENTRY.match(chunk)
        if not head or head.group(1).lower() in ("comment", "string", "preamble"):
            continue
        fields: dict[str, str] = {}
        i = head.end()
        while (m := _FIELD.search(chunk, i)) is not None:
            value, i = _value(chunk, m.end())
            fields.setdefault(m.group(1).lower(), value)
        title = _clean(fields.get("title", ""))
        key = head.group(2)
        folded = re.sub(r"[^0-9a-z]+", "", title.casefold())
        if not title or key in keys or folded in titles:
            continue
        keys.add(key)
        titles.add(folded)
        year = re.search(r"\d{4}", fields.get("year", ""))
        authors = [_Author(_clean(n)) for n in re.split(r"\s+and\s+", fields.get("author", "")) if n.strip()]
        papers.append(_Paper(title=title, abstract=_clean(fields.get("abstract", "")), authors=authors,
                             published=date(int(year.group(0)), 1, 1) if year else None))
    return _Library(papers)
