"""Shared helpers of the briefing tests: 40 real papers of the recorded arXiv day, picked
deterministically (the first 8 new submissions, by arXiv id, of five primary categories), as
BriefPapers or stored in a test store, and the checks every briefing must pass."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from academichub.brief.inputs import BriefPaper, field_of
from academichub.model import PaperData
from academichub.sources.arxiv_rss import parse_rss

RSS_DAY = Path("arxiv") / "rss" / "2024-11-28-all-archives.xml"
CATEGORIES = ("cs.CL", "astro-ph.GA", "quant-ph", "eess.SP", "hep-ph")
PER_CATEGORY = 8


@lru_cache(maxsize=2)
def day_records(shared_data: Path) -> tuple[PaperData, ...]:
    return tuple(parse_rss((shared_data / RSS_DAY).read_bytes(), str(shared_data / RSS_DAY)).papers)


def selection(shared_data: Path, categories=CATEGORIES, per_category: int = PER_CATEGORY) -> list[PaperData]:
    """The first `per_category` new submissions (by arXiv id) of each category, in that order."""
    records = [r for r in day_records(shared_data) if r.announce_type == "new"]
    chosen: list[PaperData] = []
    for category in categories:
        chosen += sorted((r for r in records if r.primary_category == category), key=lambda r: r.arxiv_id)[:per_category]
    return chosen


def brief_papers(records: list[PaperData]) -> list[BriefPaper]:
    return [
        BriefPaper(n=i, paper_id=1000 + i, title=r.title, abstract=r.abstract, authors=[a.name for a in r.authors],
                   label=f"arXiv ({r.primary_category.upper()})", field=field_of(r.categories, [], None, None),
                   categories=list(r.categories), url=f"https://arxiv.org/abs/{r.arxiv_id}")
        for i, r in enumerate(records, start=1)
    ]


def number_of(papers: list[BriefPaper], title_start: str) -> int:
    found = [p.n for p in papers if p.title.startswith(title_start)]
    assert len(found) == 1, (title_start, found)
    return found[0]


def assert_citations_resolve(doc, n_papers: int) -> None:
    """100% of the citations of a briefing are input papers, and every claim cites one."""
    cited = doc.citations()
    assert cited, "a briefing with papers cites some"
    assert all(1 <= n <= n_papers for n in cited), cited
    for theme in doc.themes:
        assert theme.sentences
        for sentence in theme.sentences:
            assert sentence.cite and all(1 <= n <= n_papers for n in sentence.cite), sentence
    for link in doc.links:
        assert {link.a, link.b} <= set(link.why.cite)
    for pick in doc.picks:
        assert 1 <= pick.n <= n_papers
