"""A bulk import adds its papers to SQLite's full-text index once, at the end of its transaction
(store/papers.py `search_index_deferred`). A paper inserted by an earlier batch of the same
transaction and then updated or absorbed by a later one must still be found by its new words
only, and the index must hold exactly the stored papers; on PostgreSQL the same import must
search the same."""

from __future__ import annotations

from sqlalchemy import select

from academichub.ingest.pipeline import store_stream
from academichub.model import PaperData
from academichub.store.feed import FeedFilters
from academichub.store.schema import papers
from academichub.store.search import ranked_matches


WORDS = ["", "alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]


def _record(n: int, title: str, **extra) -> PaperData:
    return PaperData(source="arxiv-oai", source_id=f"r{n}", title=title, abstract="A bulk import test.", **extra)


def _records() -> list[PaperData]:
    records = [_record(i, f"Paper {WORDS[i]}", arxiv_id=f"2401.{i:05d}", arxiv_version=1) for i in range(1, 7)]
    # batch 1 (records 1-3) holds a journal article known only by DOI
    records[2] = _record(3, "Quasicrystal phonons in tilings", doi="10.1000/quasi")
    # batch 3: paper 2 comes back as a new version with a new title (an update of a row this
    # transaction inserted), and a record naming paper 1's arXiv id and paper 3's DOI makes the
    # two one paper (the second is absorbed into the first)
    records.append(_record(7, "Zygomorphic lattice gauge theory", arxiv_id="2401.00002", arxiv_version=2))
    records.append(_record(8, "Paper alpha", arxiv_id="2401.00001", arxiv_version=2, doi="10.1000/quasi"))
    return records


def _found(conn, words: str) -> set[str]:
    ids = ranked_matches(conn, FeedFilters(q=words)).ids
    return set(conn.execute(select(papers.c.arxiv_id).where(papers.c.id.in_(ids))).scalars()) if ids else set()


def test_papers_changed_later_in_the_same_import_are_found_by_their_new_words(engine):
    summary = store_stream(engine, iter(_records()), batch_size=3)
    assert summary.records == 8 and summary.failed == 0
    with engine.connect() as conn:
        stored = dict(conn.execute(select(papers.c.arxiv_id, papers.c.title)).all())
        assert set(stored) == {"2401.00001", "2401.00002", "2401.00004", "2401.00005", "2401.00006"}
        assert stored["2401.00002"] == "Zygomorphic lattice gauge theory"
        assert _found(conn, "zygomorphic") == {"2401.00002"}
        assert _found(conn, "bravo") == set()
        for arxiv_id, title in stored.items():
            assert _found(conn, title) == {arxiv_id}
        assert _found(conn, "quasicrystal") <= {"2401.00001"}  # the absorbed row left nothing behind
        if engine.dialect.name == "sqlite":
            # one index row per stored paper, none left behind by the absorbed one
            indexed = conn.exec_driver_sql("SELECT id FROM papers_fts_docsize ORDER BY id").scalars().all()
            ids = conn.exec_driver_sql("SELECT id FROM papers ORDER BY id").scalars().all()
            assert indexed == ids
            conn.exec_driver_sql("INSERT INTO papers_fts(papers_fts) VALUES ('integrity-check')")


def test_a_failed_import_adds_nothing_to_the_index(engine):
    def failing():
        yield from _records()[:5]
        raise RuntimeError("the file broke")

    try:
        store_stream(engine, failing(), batch_size=2)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the import should have failed")
    with engine.connect() as conn:
        assert conn.execute(select(papers.c.id)).first() is None
        assert _found(conn, "paper") == set()
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("SELECT count(*) FROM papers_fts_docsize").scalar_one() == 0
