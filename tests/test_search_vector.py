"""PostgreSQL's search vector, written rather than generated (migration 0016): a bulk import has a
second connection compute the vectors of the next batch's new papers and copies them in; the row
trigger fills every other insert and any change of a searched text; one SQL function defines the
vector for both. The store upgraded from 0015 keeps its vectors; the downgrade makes the generated
column again. SQLite keeps FTS5 and has none of this."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

import pytest
from alembic import command
from sqlalchemy import create_engine, select, update

from academichub.ingest import pipeline
from academichub.ingest.pipeline import ingest_file, prepare_records, write_records
from academichub.sources.arxiv_rss import parse_rss
from academichub.store import papers as paper_store
from academichub.store.database import _alembic_config, current_revision, head_revision, open_store, schema_differences
from academichub.store.feed import FeedFilters
from academichub.store.schema import papers
from academichub.store.search import ranked_matches

NOW = datetime(2024, 11, 28, 9, 0)
OAI = "arxiv/oai-quant-ph/arXiv-meta-1995.xml"


@pytest.fixture
def pg(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's search vector (SQLite searches through FTS5)")
    return engine


def _day(shared_data):
    path = shared_data / "arxiv/rss/2024-11-28-all-archives.xml"
    return parse_rss(path.read_bytes(), str(path)).papers


def _vectors(conn) -> dict[int, str]:
    return dict(conn.exec_driver_sql("SELECT id, search_vector::text FROM papers").all())


def _stale(conn) -> int:
    """Papers whose vector is not the store's definition of it."""
    return conn.exec_driver_sql(
        "SELECT count(*) FROM papers WHERE search_vector IS DISTINCT FROM papers_search_vector(title, abstract, authors_text)"
    ).scalar_one()


def test_vectors_by_the_one_definition_in_order(pg):
    texts = [("Quantum networks", None, "Neil Shah"), ("Graphs", "", None),
             ("a\x1fb", "Entangled photons", "")]  # the array separator inside a title
    with pg.connect() as conn:
        assert paper_store.search_vectors(conn, texts) == [
            "'neil':3C 'network':2A 'quantum':1A 'shah':4C",
            "'graph':1A",
            "'b':2A 'entangl':3B 'photon':4B",  # 'a' is an English stop word
        ]
        assert paper_store.search_vectors(conn, []) == []


def test_a_given_vector_is_copied_and_a_missing_one_is_the_triggers(pg, shared_data):
    day = _day(shared_data)[:100]  # one COPY group (>= COPY_MIN_ROWS)
    prepared = prepare_records(day, NOW, dialect="postgresql")
    rows = prepared.rows
    rows[0].driver = (*rows[0].driver, "'given':1")  # not what the text says: proof it was not recomputed
    with pg.begin() as conn:
        ids = paper_store.insert_papers(conn, [r.values for r in rows], [r.driver for r in rows])
    with pg.connect() as conn:
        assert _vectors(conn)[ids[0]] == "'given':1"
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM papers WHERE id <> %s AND search_vector = papers_search_vector(title, abstract, authors_text)",
            (ids[0],),
        ).scalar_one() == 99


def test_the_trigger_follows_the_searched_texts(pg, shared_data):
    day = _day(shared_data)[:3]
    with pg.begin() as conn:
        write_records(conn, day, NOW)  # row by row: every vector is the trigger's
    with pg.connect() as conn:
        assert _stale(conn) == 0
        first = conn.execute(select(papers.c.id).where(papers.c.arxiv_id == day[0].arxiv_id)).scalar_one()
    with pg.begin() as conn:  # a column that is not searched: the vector stays what it was
        conn.exec_driver_sql("UPDATE papers SET search_vector = 'kept:1' WHERE id = %s", (first,))
        conn.execute(update(papers).where(papers.c.id == first).values(comments="new comment"))
        assert _vectors(conn)[first] == "'kept':1"
    # a new version through the merge changes the title: computed again
    renamed = replace(day[0], source_id=day[0].source_id + "-again", title="Teleportation of entangled qutrits")
    with pg.begin() as conn:
        assert write_records(conn, [renamed], NOW).updated == 1
    with pg.connect() as conn:
        assert _stale(conn) == 0
        assert "'qutrit':4A" in _vectors(conn)[first]
        assert first in ranked_matches(conn, FeedFilters(q="qutrits")).ids


def test_vectors_are_computed_ahead_for_new_papers_only(pg, shared_data):
    day = _day(shared_data)[:80]
    with pg.begin() as conn:
        write_records(conn, day[:30], NOW)
    prepared = prepare_records(day, NOW, dialect="postgresql")
    [ahead] = list(pipeline._search_vectors_ahead(pg, iter([prepared])))
    given = [len(row.driver) == 4 for row in ahead.rows]
    assert given == [False] * 30 + [True] * 50
    with pg.connect() as conn:
        expected = paper_store.search_vectors(
            conn, [(r.values["title"], r.values["abstract"], r.values["authors_text"]) for r in ahead.rows[30:]]
        )
    assert [row.driver[3] for row in ahead.rows[30:]] == expected


def test_a_bulk_import_stores_the_defined_vectors(pg, shared_data):
    summary = ingest_file(pg, shared_data / OAI, batch_size=100, worker=True)  # 4 copied batches and a short one
    assert (summary.added, summary.failed) == (436, 0)
    with pg.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(search_vector) FROM papers").scalar_one() == 436
        assert _stale(conn) == 0
        assert len(ranked_matches(conn, FeedFilters(q="entanglement")).ids) == 7  # 1995's quant-ph


def test_migration_0016_keeps_the_vectors_and_its_downgrade_makes_the_generated_column(pg, shared_data):
    ingest_file(pg, shared_data / OAI, batch_size=100, worker=True)
    with pg.connect() as conn:
        found = ranked_matches(conn, FeedFilters(q="entanglement")).ids
        vectors = _vectors(conn)
    generated = "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'papers'::regclass AND attname = 'search_vector'"
    with pg.begin() as connection:
        command.downgrade(_alembic_config(connection), "0015")
    with pg.connect() as conn:
        assert conn.exec_driver_sql(generated).scalar_one() == "s"
        assert _vectors(conn) == vectors
        assert ranked_matches(conn, FeedFilters(q="entanglement")).ids == found

    upgraded = open_store(pg.url.render_as_string(hide_password=False))
    try:
        assert current_revision(upgraded) == head_revision() == "0016"
        assert schema_differences(upgraded) == []
        with upgraded.connect() as conn:
            assert conn.exec_driver_sql(generated).scalar_one() == ""
            assert _vectors(conn) == vectors
            assert ranked_matches(conn, FeedFilters(q="entanglement")).ids == found
    finally:
        upgraded.dispose()


def test_without_a_second_connection_the_import_goes_on_and_the_trigger_computes(pg, shared_data, caplog):
    # a pool of one, already taken by the import's own transaction: the second connection times out
    single = create_engine(pg.url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="academichub.ingest.pipeline"):
            summary = ingest_file(single, shared_data / OAI, batch_size=100, worker=True)
    finally:
        single.dispose()
    assert (summary.added, summary.failed) == (436, 0)
    assert "search vectors left to the row trigger" in caplog.text
    with pg.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(search_vector) FROM papers").scalar_one() == 436
        assert _stale(conn) == 0
