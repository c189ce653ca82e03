"""What the ranker takes and gives: papers, a radar's profile, reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np


@dataclass(slots=True)
class Doc:
    """A paper as the ranker sees it."""

    id: int
    title: str
    abstract: str = ""
    author_keys: tuple[str, ...] = ()
    author_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # primary first
    venue: str | None = None
    day: date | None = None
    embedding: np.ndarray | None = None

    @property
    def text(self) -> str:
        return f"{self.title}. {self.abstract}"


@dataclass(slots=True)
class RadarProfile:
    """Everything a radar says about interest. Keys are already normalised (names.name_key for
    authors, folded phrases for keywords, category codes, folded venue names)."""

    authors: dict[str, str] = field(default_factory=dict)  # key -> as written
    muted_authors: set[str] = field(default_factory=set)
    keywords: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    venues: list[str] = field(default_factory=list)
    interest: str | None = None  # already in English (see rank/crosslingual.py)
    interest_embedding: np.ndarray | None = None
    seeds: list[Doc] = field(default_factory=list)
    liked: list[Doc] = field(default_factory=list)  # like and save
    dismissed: list[Doc] = field(default_factory=list)
    less_authors: set[str] = field(default_factory=set)
    less_topics: list[str] = field(default_factory=list)

    @property
    def positives(self) -> list[Doc]:
        return [*self.seeds, *self.liked]


@dataclass(slots=True)
class Reason:
    kind: str  # author | keyword | seed | liked | category | venue | statement | learned
    text: str  # what it names: the author, keyword, seed title, category, venue
    weight: float = 0.0
