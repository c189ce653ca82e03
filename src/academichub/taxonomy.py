"""The arXiv category taxonomy as product data (data/arxiv_taxonomy.toml): every code with its
group and its English and Chinese name and description. One reader for it, so the web's category
picker, the check of a followed code and the ranker's glossary agree on what a category is."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .errors import ConfigError


class UnknownCategoryError(ConfigError):
    """A code the taxonomy does not list (a typo, or a whole archive such as `cs`)."""


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    group: str
    name: str
    name_zh: str
    description: str
    description_zh: str
    alias_of: str | None = None

    def label(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name

    def matches(self, text: str) -> bool:
        """Does a search text name this category (code, group or name, in either language)?"""
        needle = " ".join(text.casefold().split())
        if not needle:
            return True
        haystack = " ".join((self.code, self.group, self.name, self.name_zh)).casefold()
        return all(word in haystack for word in needle.split())


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    name_zh: str
    categories: tuple[Category, ...]
    featured: tuple[str, ...]

    def label(self, lang: str) -> str:
        return self.name_zh if lang == "zh" else self.name


@lru_cache(maxsize=1)
def _raw() -> dict:
    text = resources.files("academichub").joinpath("data", "arxiv_taxonomy.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def raw_categories() -> dict[str, dict]:
    """code -> the file's table for it (group, name, description, name_zh, description_zh, [alias_of])."""
    return _raw()["category"]


@lru_cache(maxsize=1)
def categories() -> dict[str, Category]:
    return {
        code: Category(code=code, group=entry["group"], name=entry["name"], name_zh=entry["name_zh"],
                       description=entry.get("description", ""), description_zh=entry.get("description_zh", ""),
                       alias_of=entry.get("alias_of"))
        for code, entry in raw_categories().items()
    }


@lru_cache(maxsize=1)
def groups() -> tuple[Group, ...]:
    """The groups in the file's order, each with its categories (sorted by code) and featured codes."""
    meta = _raw().get("group", {})
    by_group: dict[str, list[Category]] = {}
    for category in categories().values():
        by_group.setdefault(category.group, []).append(category)
    return tuple(
        Group(name=name, name_zh=meta.get(name, {}).get("name_zh", name),
              categories=tuple(sorted(members, key=lambda c: c.code)),
              featured=tuple(meta.get(name, {}).get("featured", ())))
        for name, members in by_group.items()
    )


def find(code: str) -> Category | None:
    """A category by code, as arXiv spells it or in any case ("CS.lg" is cs.LG)."""
    code = code.strip()
    found = categories().get(code)
    if found is None:
        lowered = code.lower()
        found = next((c for c in categories().values() if c.code.lower() == lowered), None)
    return found


def check_codes(codes: list[str]) -> list[str]:
    """The codes as the taxonomy spells them, without repeats, in order; any unknown one refuses
    them all (nothing half-followed)."""
    known, unknown = [], []
    for code in codes:
        if not code.strip():
            continue
        category = find(code)
        if category is None:
            unknown.append(code.strip())
        elif category.code not in known:
            known.append(category.code)
    if unknown:
        shown = ", ".join(repr(c[:40]) for c in unknown[:5])
        raise UnknownCategoryError.translatable("not an arXiv category: {codes} (codes look like cs.LG, math.ST, quant-ph)", codes=shown)
    return known


def featured() -> list[Category]:
    """The short list a new user is offered, group by group."""
    table = categories()
    return [table[code] for group in groups() for code in group.featured if code in table]
