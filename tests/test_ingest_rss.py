"""The shared arXiv day, end to end into a real store: one paper per work, idempotent re-runs."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from academichub.ingest.pipeline import SAMPLE_FILE, ingest_file
from academichub.store.papers import table_counts
from academichub.store.schema import announcements, paper_authors, paper_subjects, papers


def test_sample_is_the_shared_day(shared_data):
    assert SAMPLE_FILE.read_bytes() == (shared_data / "arxiv/rss/2024-11-28-all-archives.xml").read_bytes()


def test_rss_day_stores_each_paper_once_and_rerun_changes_nothing(engine, shared_data):
    path = shared_data / "arxiv/rss/2024-11-28-all-archives.xml"
    first = ingest_file(engine, path)
    assert (first.records, first.added, first.updated, first.unchanged, first.failed) == (1504, 1504, 0, 0, 0)
    with engine.connect() as conn:
        counts = table_counts(conn)
    assert counts == {
        "papers": 1504,
        "paper_authors": 7028,
        "paper_subjects": 2882,
        "source_records": 1504,
        "announcements": 1,
        "paper_identifiers": 1504 + 111,  # every arXiv id, and the 111 DOIs the day lists
    }
    second = ingest_file(engine, path)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 1504)
    with engine.connect() as conn:
        assert table_counts(conn) == counts


def test_rss_fields_of_named_papers(engine, shared_data):
    ingest_file(engine, shared_data / "arxiv/rss/2024-11-28-all-archives.xml")
    with engine.connect() as conn:
        row = conn.execute(select(papers).where(papers.c.arxiv_id == "1401.3665")).mappings().one()
        assert row["arxiv_version"] == 4
        assert row["title"] == "The existence of designs"
        assert row["abstract"].startswith("We prove the existence conjecture for combinatorial designs")
        assert row["primary_category"] == "math.CO"
        assert row["announced_on"] == date(2024, 11, 28)
        assert row["license"] == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
        first = conn.execute(select(papers).where(papers.c.arxiv_id == "2411.17700")).mappings().one()
        assert first["authors_text"] == "Jun Cui"
        day = conn.execute(select(announcements)).mappings().one()
        assert (day["status"], day["items"], day["announced_on"]) == ("announced", 1504, date(2024, 11, 28))
        assert day["skip_days"] == ["Saturday", "Sunday"]
        # TeX accents become Unicode in stored author names
        names = set(conn.execute(select(paper_authors.c.name)).scalars())
        assert "Przemysław Olbratowski" in names
        assert "Jarosław Żygierewicz" in names
        cats = conn.execute(
            select(paper_subjects.c.code).where(paper_subjects.c.paper_id == first["id"])
        ).scalars().all()
        assert cats == ["cs.CY"]
