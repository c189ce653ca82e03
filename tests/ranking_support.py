"""Real records for the ranker's tests: a real library's entries with an abstract (the radar's
seeds) and the recorded 2024-11-28 arXiv day with the quant-ph records of 2000 (the candidates),
each with a vector seeded by its text and shaped like abstracts' embeddings (a few topics, a
low-rank spread, noise), as a model would give the same text the same vector."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from academichub.ingest.library_import import read_library
from academichub.names import name_key
from academichub.rank.ranker import Doc
from academichub.sources.arxiv_oai import iter_oai
from academichub.sources.arxiv_rss import parse_rss

DIM = 384


class TextVectors:
    """text -> unit vector; `seed` picks the topics, so two test modules can differ."""

    def __init__(self, seed: int) -> None:
        shared = np.random.default_rng(seed)
        self.topics = shared.standard_normal((40, DIM)).astype(np.float32)
        self.factors = (0.5 * shared.standard_normal((32, DIM))).astype(np.float32)

    def __call__(self, text: str) -> np.ndarray:
        rng = np.random.default_rng(int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little"))
        row = self.topics[rng.integers(0, len(self.topics))] + rng.standard_normal(32).astype(np.float32) @ self.factors
        row += 0.5 * rng.standard_normal(DIM).astype(np.float32)
        return row / np.linalg.norm(row)


def library_and_day(shared_data: Path, vectors: TextVectors) -> tuple[list[Doc], list[Doc]]:
    """(the library's docs, the day's and quant-ph's docs): fewer than 5,000 in all, so the
    exact neighbour graph is what a ranking walks."""
    library = read_library(shared_data / "libraries/corinalogan--grackles.bib")
    rss = shared_data / "arxiv/rss/2024-11-28-all-archives.xml"
    day = parse_rss(rss.read_bytes(), str(rss)).papers
    oai = shared_data / "arxiv/oai-quant-ph/arXiv-meta-2000.xml"
    with open(oai, "rb") as handle:
        day += list(iter_oai(handle, str(oai)))
    docs = []
    for p in [*(p for p in library.papers if len(p.abstract or "") > 80), *day]:
        docs.append(Doc(len(docs), p.title, p.abstract or "", tuple(name_key(a.name) for a in p.authors),
                        tuple(a.name for a in p.authors), tuple(p.categories), p.venue, p.published,
                        vectors(f"{p.title}. {p.abstract}")))
    n_library = sum(1 for p in library.papers if len(p.abstract or "") > 80)
    assert n_library > 300 and 3000 < len(docs) < 5000
    return docs[:n_library], docs[n_library:]
