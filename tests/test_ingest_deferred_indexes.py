"""A bulk import into a SQLite store smaller than itself builds the indexes only readers use once,
at the end of its transaction (store/papers.py `secondary_indexes_deferred`). The store left
behind has every index, exactly as defined before; an import that fails half-way leaves the store
it found, indexes included (SQLite's DDL is part of the transaction, which must have begun before
the first DROP); a search finds the imported papers on either store."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from academichub.errors import AcademicHubError
from academichub.ingest.pipeline import ingest_file, write_records
from academichub.model import PaperData
from academichub.store import papers as paper_store
from academichub.store.feed import FeedFilters
from academichub.store.schema import papers
from academichub.store.search import ranked_matches

DEFERRED = {
    "ix_papers_primary_category", "ix_papers_announced_on", "ix_papers_modified_at", "ix_papers_published_on",
    "ix_paper_subjects_scheme_code", "ix_paper_authors_name_norm", "ix_paper_authors_name_key",
}
OAI_1995 = "arxiv/oai-quant-ph/arXiv-meta-1995.xml"  # 436 records, 383,952 bytes


def _indexes(conn) -> dict[str, str | None]:
    return dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index'").all())


def _records(first: int, count: int) -> list[PaperData]:
    return [
        PaperData(source="arxiv-oai", source_id=f"r{n}", title=f"Deferred index paper {n}", abstract="Bulk words.",
                  arxiv_id=f"2401.{n:05d}", arxiv_version=1, categories=["quant-ph"])
        for n in range(first, first + count)
    ]


@pytest.fixture
def sqlite_only(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's own indexes (PostgreSQL keeps its indexes through an import)")


def test_an_import_into_a_smaller_store_drops_the_reader_indexes_and_builds_them_at_its_end(engine, sqlite_only):
    with engine.connect() as conn:
        before = _indexes(conn)
    assert DEFERRED <= set(before)
    with engine.begin() as conn:
        with paper_store.secondary_indexes_deferred(conn, expected_papers=5):
            assert not DEFERRED & set(_indexes(conn))
            write_records(conn, _records(1, 5))
        assert _indexes(conn) == before
    with engine.connect() as conn:
        assert _indexes(conn) == before
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
        plan = " ".join(row[-1] for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM papers WHERE primary_category = 'quant-ph'"))
        assert "ix_papers_primary_category" in plan


def test_a_store_as_large_as_the_import_keeps_its_indexes(engine, sqlite_only):
    with engine.begin() as conn:
        write_records(conn, _records(1, 5))
    with engine.begin() as conn:
        before = _indexes(conn)
        with paper_store.secondary_indexes_deferred(conn, expected_papers=5):
            assert _indexes(conn) == before
            write_records(conn, _records(6, 5))


def test_a_failure_inside_the_import_rolls_the_dropped_indexes_back(engine, sqlite_only):
    with engine.connect() as conn:
        before = _indexes(conn)
    with pytest.raises(RuntimeError):
        with engine.begin() as conn, paper_store.secondary_indexes_deferred(conn, expected_papers=100):
            write_records(conn, _records(1, 5))
            raise RuntimeError("the file broke")
    with engine.connect() as conn:
        assert _indexes(conn) == before
        assert conn.execute(select(papers.c.id)).first() is None


def test_a_truncated_bulk_file_leaves_the_store_it_found(engine, shared_data, tmp_path):
    whole = (shared_data / OAI_1995).read_bytes()
    truncated = tmp_path / "arXiv-meta-1995-truncated.xml"
    truncated.write_bytes(whole[: len(whole) * 3 // 4])  # several batches of 50, then broken XML
    with engine.connect() as conn:
        before = _indexes(conn) if engine.dialect.name == "sqlite" else None
    with pytest.raises(AcademicHubError):
        ingest_file(engine, truncated, batch_size=50, worker=False)
    with engine.connect() as conn:
        assert conn.execute(select(papers.c.id)).first() is None
        if before is not None:
            assert _indexes(conn) == before


def test_a_bulk_file_into_an_empty_store_is_searchable_with_every_index(engine, shared_data):
    with engine.connect() as conn:
        before = _indexes(conn) if engine.dialect.name == "sqlite" else None
    summary = ingest_file(engine, shared_data / OAI_1995, batch_size=100, worker=False)
    assert summary.added == 436 and summary.failed == 0
    with engine.connect() as conn:
        assert paper_store.count_papers(conn) == 436
        found = ranked_matches(conn, FeedFilters(q="entanglement")).ids
        assert found and len(found) == conn.exec_driver_sql(
            "SELECT count(*) FROM papers WHERE lower(title || ' ' || abstract) LIKE '%entangl%'").scalar_one()
        if before is not None:
            assert _indexes(conn) == before
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
