"""The PostgreSQL bulk import's own shortcuts (issue 17), on whichever store the suite runs: paper
ids taken from the sequence before the COPY, look-ups by one array parameter, statistics of the
looked-up columns only. The same store as the row-by-row path is `test_bench_scale`'s check."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select, text

from academichub.ingest.pipeline import ingest_file, write_records
from academichub.sources.arxiv_rss import parse_rss
from academichub.store import papers as paper_store
from academichub.store.schema import paper_identifiers, papers, source_records


def _rss_day(shared_data):
    path = shared_data / "arxiv/rss/2024-11-28-all-archives.xml"
    return path, parse_rss(path.read_bytes(), str(path)).papers


def test_bulk_inserted_papers_get_their_own_ids_and_the_sequence_goes_on(shared_data, engine):
    path, day = _rss_day(shared_data)
    ingest_file(engine, path)
    wanted = {p.arxiv_id for p in day}
    with engine.connect() as conn:
        by_paper = dict(conn.execute(select(papers.c.arxiv_id, papers.c.id)).all())
        by_identifier = dict(conn.execute(
            select(paper_identifiers.c.value, paper_identifiers.c.paper_id).where(paper_identifiers.c.scheme == "arxiv")
        ).all())
        by_source = dict(conn.execute(select(source_records.c.source_id, source_records.c.paper_id)).all())
    assert set(by_paper) == wanted and len(set(by_paper.values())) == len(wanted) == 1_504
    assert by_identifier == by_paper  # every identifier row points at its own paper
    assert {by_paper[p.arxiv_id] for p in day} == set(by_source.values())
    assert min(by_paper.values()) == 1 and max(by_paper.values()) == len(wanted)  # the sequence, no gaps, from 1

    # one more paper, row by row: the next id after the COPY's
    one = replace(day[0], arxiv_id="9999.00001", source_id="9999.00001v1", doi=None, title="One more paper")
    with engine.begin() as conn:
        assert write_records(conn, [one]).added == 1
    with engine.connect() as conn:
        assert conn.execute(select(papers.c.id).where(papers.c.arxiv_id == "9999.00001")).scalar_one() == len(wanted) + 1


def test_look_ups_by_identifier_and_title_over_more_than_one_chunk(shared_data, engine):
    path, day = _rss_day(shared_data)
    ingest_file(engine, path)
    stored = [("arxiv", p.arxiv_id) for p in day]
    absent = [("arxiv", f"9999.{i:05d}") for i in range(1_000)]
    with engine.connect() as conn:
        ids = dict(conn.execute(select(papers.c.arxiv_id, papers.c.id)).all())
        titles = dict(conn.execute(select(papers.c.id, papers.c.title_key)).all())
        assert paper_store.find_by_identifiers(conn, stored + absent) == {key: ids[key[1]] for key in stored}
        assert paper_store.find_by_identifiers(conn, []) == {}
        first = ("arxiv", day[0].arxiv_id)
        assert paper_store.find_by_identifiers(conn, [first]) == {first: ids[first[1]]}
        # values the joined-string array must not split wrongly: a separator inside, an empty one
        odd = [first, ("arxiv", f"{day[1].arxiv_id}\x1f{day[2].arxiv_id}"), ("arxiv", "")]
        assert paper_store.find_by_identifiers(conn, odd) == {first: ids[first[1]]}
        assert paper_store.find_by_identifiers(conn, [("arxiv", ""), ("arxiv", "")]) == {}
        assert paper_store.ids_by_identifier(conn, "arxiv_id", [p.arxiv_id for p in day] + ["9999.00000"]) == ids
        found = paper_store.find_by_title_keys(conn, list(titles.values()) + ["no such title key"])
        assert {pid for pids in found.values() for pid in pids} == set(titles)
        assert sorted(found) == sorted(set(titles.values()))


def test_statistics_cover_the_looked_up_columns_only(shared_data, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    path, _ = _rss_day(shared_data)
    # Statistics an earlier test's ANALYZE or autovacuum left (TRUNCATE keeps them) would hide what
    # this ANALYZE covers: autovacuum is held off these tables and their statistics removed first.
    tables = ("papers", "source_records")
    with engine.begin() as conn:
        for table in tables:
            conn.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    try:
        ingest_file(engine, path)
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM pg_statistic WHERE starelid IN ('papers'::regclass, 'source_records'::regclass)")
            paper_store.refresh_statistics(conn)
            analysed = {
                (table, column) for table, column in conn.execute(text(
                    "SELECT tablename, attname FROM pg_stats WHERE schemaname = current_schema() "
                    "AND tablename IN ('papers', 'source_records')"
                ))
            }
            # a small sample (statistics target 10): at most 11 histogram bounds, not 101
            bounds = conn.exec_driver_sql(
                "SELECT cardinality(histogram_bounds::text::text[]) FROM pg_stats WHERE schemaname = current_schema() "
                "AND tablename = 'papers' AND attname = 'title_key'"
            ).scalar_one()
    finally:
        with engine.begin() as conn:
            for table in tables:
                conn.exec_driver_sql(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
    assert analysed == {
        *(("papers", c) for c in ("arxiv_id", "doi", "pmid", "pmcid", "openalex_id", "s2_id", "title_key")),
        ("source_records", "source"), ("source_records", "source_id"), ("source_records", "paper_id"),
    }
    assert 2 < bounds <= 11
