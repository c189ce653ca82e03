"""The benchmark's data: documents, tasks, and the three datasets built from the shared recordings.

- Libraries: the ten real BibTeX libraries (entries with an abstract). Protocols `cold` (10 seed
  papers, the rest of the library relevant) and `half` (half the library seeds, the other half
  relevant). Candidates: the relevant papers + every other library's papers + the arXiv day.
- Categories: the arXiv announcement of 2024-11-28. For each category that is the primary
  (first listed) category of >= 30 papers: 5 seed papers of that primary category; relevant:
  every other paper that lists the category, primary or cross-list; candidates: every paper
  but the seeds. Methods see these papers without their categories (the answer).
- Statements: the same categories, a radar holding only a statement: the category's name and
  description from the arXiv taxonomy (protocol `en`), or a Chinese paraphrase written for the
  benchmark (`zh`, in statements_zh.toml, never a copy of the Chinese the product ships).
  Candidates: the whole day, again without categories.

Every random choice is drawn from a generator seeded by (the run's seed, the task's name), so a
task's seeds do not change when other tasks are added or removed.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
import zlib
from dataclasses import dataclass, field, replace
import datetime as dt
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MIN_PRIMARY = 30
CATEGORY_SEEDS = 5
COLD_SEEDS = 10
RSS_DAY = Path("arxiv/rss/2024-11-28-all-archives.xml")


@dataclass(slots=True)
class Doc:
    """One paper as a method sees it. `embedding` is filled by the runner (L2-normalised)."""

    id: str
    title: str
    abstract: str
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # arXiv, primary first
    date: dt.date | None = None
    venue: str | None = None  # the journal or proceedings a library entry names
    embedding: np.ndarray | None = None
    origin: str = ""  # "arxiv" or the library's file name

    @property
    def text(self) -> str:
        return f"{self.title}. {self.abstract}" if self.abstract else self.title


@dataclass(slots=True)
class Task:
    dataset: str  # libraries | categories | statements
    protocol: str  # cold | half | seeds5 | en | zh
    name: str  # the library or category
    seeds: list[Doc]
    statement: str | None
    candidates: list[Doc]
    relevant: set[str]


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    key = ":".join(str(p) for p in (seed, *parts))
    return np.random.default_rng(zlib.crc32(key.encode()))


def shuffled(docs: list[Doc], rng: np.random.Generator) -> list[Doc]:
    """Candidates in a random order, so that no method profits from how a list was built (ties)."""
    return [docs[i] for i in rng.permutation(len(docs))]


def default_shared_data() -> Path:
    from academichub.bench import default_shared_data as product_default

    return product_default()


# ----------------------------------------------------------------------------- arXiv day


def load_arxiv_day(shared: Path) -> list[Doc]:
    from academichub.sources.arxiv_rss import parse_rss

    batch = parse_rss((shared / RSS_DAY).read_bytes(), str(shared / RSS_DAY))
    docs = []
    for p in batch.papers:
        docs.append(
            Doc(
                id=f"arxiv:{p.arxiv_id}",
                title=p.title,
                abstract=p.abstract,
                authors=[a.name for a in p.authors],
                categories=list(p.categories),
                date=p.announced,
                origin="arxiv",
            )
        )
    return docs


def frequent_categories(docs: list[Doc], minimum: int = MIN_PRIMARY) -> list[str]:
    counts: dict[str, int] = {}
    for d in docs:
        if d.categories:
            counts[d.categories[0]] = counts.get(d.categories[0], 0) + 1
    return sorted((c for c, n in counts.items() if n >= minimum), key=lambda c: (-counts[c], c))


def blinded(docs: list[Doc]) -> list[Doc]:
    """Copies without their arXiv categories: where relevance is defined by the categories, a
    method must not see them (a ranker that lifts the seeds' categories would read the answer)."""
    return [replace(d, categories=[]) for d in docs]


def category_tasks(docs: list[Doc], seed: int = 0, draws: int = 1) -> list[Task]:
    tasks = []
    blind = dict(zip((d.id for d in docs), blinded(docs)))
    for category in frequent_categories(docs):
        primary = [d for d in docs if d.categories and d.categories[0] == category]
        for draw in range(draws):
            rng = rng_for(seed, "categories", category, draw)
            picked = {primary[i].id for i in rng.choice(len(primary), CATEGORY_SEEDS, replace=False)}
            seeds = [blind[d.id] for d in primary if d.id in picked]
            relevant = {d.id for d in docs if d.id not in picked and category in d.categories}
            candidates = shuffled([blind[d.id] for d in docs if d.id not in picked], rng)
            tasks.append(Task("categories", "seeds5", category, seeds, None, candidates, relevant))
    return tasks


# ----------------------------------------------------------------------------- statements


def load_taxonomy() -> dict[str, dict]:
    path = REPO / "src" / "academichub" / "data" / "arxiv_taxonomy.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))["category"]


def load_zh_statements() -> dict[str, str]:
    return tomllib.loads((HERE / "statements_zh.toml").read_text(encoding="utf-8"))["statement"]


def english_statement(entry: dict) -> str:
    return f"{entry['name']}. {entry['description']}".strip()


def statement_tasks(docs: list[Doc], languages: tuple[str, ...] = ("en", "zh")) -> list[Task]:
    taxonomy = load_taxonomy()
    zh = load_zh_statements()
    for code, text in zh.items():  # an honest test: no statement is the product's own Chinese
        shipped = taxonomy[code]["description_zh"]
        if text in shipped or shipped in text or text == taxonomy[code]["name_zh"]:
            raise ValueError(f"statements_zh.toml: the statement of {code} copies the shipped Chinese text")
    tasks = []
    blind = blinded(docs)
    for category in frequent_categories(docs):
        relevant = {d.id for d in docs if category in d.categories}
        for lang in languages:
            statement = english_statement(taxonomy[category]) if lang == "en" else zh[category]
            candidates = shuffled(blind, rng_for(0, "statements", category))
            tasks.append(Task("statements", lang, category, [], statement, candidates, relevant))
    return tasks


# ----------------------------------------------------------------------------- libraries


def _title_key(title: str) -> str:
    folded = unicodedata.normalize("NFKD", title).casefold()
    return re.sub(r"[^0-9a-z]+", "", folded)


def load_libraries(shared: Path) -> dict[str, list[Doc]]:
    """Library name -> its papers with an abstract, duplicates inside the library merged."""
    try:
        from academichub.ingest.library_import import read_library
    except ImportError:  # the product's reader is not there yet: the benchmark's own
        from .bibload import read_library  # type: ignore[no-redef]
    libraries = {}
    for path in sorted((shared / "libraries").glob("*.bib")):
        name = path.stem
        docs, seen = [], set()
        for i, p in enumerate(read_library(path).papers):
            if not (p.abstract or "").strip() or not p.title.strip():
                continue
            key = _title_key(p.title)
            if key in seen:
                continue
            seen.add(key)
            docs.append(
                Doc(
                    id=f"{name}:{i}",
                    title=p.title,
                    abstract=p.abstract,
                    authors=[a.name for a in p.authors],
                    categories=list(p.categories),
                    date=p.published,
                    venue=p.venue,
                    origin=name,
                )
            )
        libraries[name] = docs
    return libraries


def library_tasks(libraries: dict[str, list[Doc]], arxiv_day: list[Doc], seed: int = 0,
                  protocols: tuple[str, ...] = ("cold", "half")) -> list[Task]:
    tasks = []
    for name, own in libraries.items():
        own_keys = {_title_key(d.title) for d in own}
        # the same paper in another library is not a distractor for this one
        others = [d for other, docs in libraries.items() if other != name for d in docs if _title_key(d.title) not in own_keys]
        distractors = others + [d for d in arxiv_day if _title_key(d.title) not in own_keys]
        for protocol in protocols:
            rng = rng_for(seed, "libraries", name, protocol)
            count = COLD_SEEDS if protocol == "cold" else len(own) // 2
            if len(own) <= count:
                continue
            picked = set(rng.choice(len(own), count, replace=False).tolist())
            seeds = [d for i, d in enumerate(own) if i in picked]
            relevant_docs = [d for i, d in enumerate(own) if i not in picked]
            candidates = shuffled(relevant_docs + distractors, rng)
            tasks.append(Task("libraries", protocol, name, seeds, None, candidates, {d.id for d in relevant_docs}))
    return tasks
