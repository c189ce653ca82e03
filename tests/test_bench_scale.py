"""Scale tests' foundations (issue 17): the synthetic generator's output goes through the real
importer with exact counts and new identifiers, and the bulk paths (PostgreSQL's COPY, SQLite's
executemany with ids from rowid order) leave the same store as the row-by-row path. Nothing here
is timed: speed is measured by `academichub bench scale|web|ingest`."""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import delete, select

from academichub.bench_scale import (
    SYNTHETIC_DOI_PREFIX,
    generate,
    is_synthetic_id,
    parse_wrk,
    recorded_records,
    synthetic_id,
)
from academichub.ingest.pipeline import ingest_file, store_stream
from academichub.sources.arxiv_oai import iter_oai
from academichub.store import papers as paper_store
from academichub.store.schema import paper_authors, paper_identifiers, paper_subjects, papers, source_records
from cli_support import academichub_script, script_env


def test_synthetic_ids_never_take_a_real_arxiv_id():
    assert synthetic_id(0, 0) == "9000.00000" and synthetic_id(68, 1234) == "9068.01234"
    assert is_synthetic_id("9999.99999") and not is_synthetic_id("2411.17700") and not is_synthetic_id("0704.0001")
    with pytest.raises(ValueError):
        synthetic_id(1000, 0)
    with pytest.raises(ValueError):
        synthetic_id(0, 100_000)


def test_generated_papers_import_through_the_cli_with_exact_counts_and_new_ids(shared_data, tmp_path, database_url, engine):
    recorded = recorded_records(shared_data)
    assert len(recorded) == 14_957  # 13,453 OAI quant-ph records + the 1,504 items of the RSS day
    papers_wanted = len(recorded) + 1_043  # every record once, and the first 1,043 a second time
    made = generate(shared_data, papers_wanted, tmp_path / "gen", file_records=7_000)
    assert made.papers == 16_000 and [p.name for p in made.files] == ["synthetic-0000.xml", "synthetic-0001.xml",
                                                                       "synthetic-0002.xml"]

    # the files parse through the product's own OAI reader: the recorded text under new ids
    parsed = []
    for file in made.files:
        with open(file, "rb") as handle:
            parsed.extend(iter_oai(handle, str(file)))
    assert len(parsed) == 16_000
    assert [p.arxiv_id for p in parsed[:2]] == ["9000.00000", "9000.00001"]
    assert parsed[len(recorded)].arxiv_id == "9001.00000" and parsed[-1].arxiv_id == "9001.01042"
    first, again = parsed[0], parsed[len(recorded)]
    assert first.title == f"{recorded[0].title} (synthetic copy 0)" and again.title == f"{recorded[0].title} (synthetic copy 1)"
    assert first.abstract == recorded[0].abstract and first.categories == ["quant-ph"]
    assert first.doi == f"{SYNTHETIC_DOI_PREFIX}9000.00000"
    assert first.comments == f"SYNTHETIC benchmark record (AcademicHub bench generate), copy 0 of arXiv:{recorded[0].arxiv_id}; not a real paper."
    assert first.raw["setSpec"] == ["synthetic"]
    day = parsed[13_453]  # the first RSS item's copy keeps its authors and categories
    assert [a.name for a in day.authors] == [a.name for a in recorded[13_453].authors] and day.authors
    assert day.categories == recorded[13_453].categories

    # and the real command stores exactly that many papers, none under a real identifier
    run = subprocess.run([academichub_script(), "ingest", *map(str, made.files)], capture_output=True, text=True,
                         env=script_env(ACADEMICHUB_DATABASE_URL=database_url, ACADEMICHUB_DATA_DIR=str(tmp_path),
                                        ACADEMICHUB_LOAD_SAMPLE="false"), timeout=900)
    assert run.returncode == 0, run.stderr
    assert "total: 16000 records: 16000 added, 0 updated, 0 unchanged, 0 failed" in run.stdout
    real_ids = {r.arxiv_id for r in recorded}
    with engine.connect() as conn:
        ids = conn.execute(select(papers.c.arxiv_id, papers.c.doi)).all()
        assert len(ids) == 16_000 and len({a for a, _ in ids}) == 16_000
        assert all(is_synthetic_id(a) and a not in real_ids and d == SYNTHETIC_DOI_PREFIX + a for a, d in ids)
        schemes = dict(conn.execute(select(paper_identifiers.c.scheme, paper_identifiers.c.value)
                                    .where(paper_identifiers.c.value == f"{SYNTHETIC_DOI_PREFIX}9001.01042".lower())).all())
        assert schemes == {"doi": f"{SYNTHETIC_DOI_PREFIX}9001.01042".lower()}


def _snapshot(engine, arxiv_ids: list[str]) -> dict:
    """Row counts, and a few papers exactly as stored (without ids and timestamps)."""
    with engine.connect() as conn:
        counts = paper_store.table_counts(conn)
        shown = {}
        for arxiv_id in arxiv_ids:
            row = conn.execute(select(papers).where(papers.c.arxiv_id == arxiv_id)).mappings().one()
            pid = row["id"]
            values = {k: v for k, v in row.items() if k not in ("id", "created_at", "modified_at", "search_vector")}
            authors = conn.execute(select(paper_authors.c.position, paper_authors.c.name, paper_authors.c.name_key,
                                          paper_authors.c.affiliation).where(paper_authors.c.paper_id == pid)
                                   .order_by(paper_authors.c.position)).all()
            subjects = sorted(conn.execute(select(paper_subjects.c.scheme, paper_subjects.c.code, paper_subjects.c.is_primary)
                                           .where(paper_subjects.c.paper_id == pid)).all())
            identifiers = sorted(conn.execute(select(paper_identifiers.c.scheme, paper_identifiers.c.value,
                                                     paper_identifiers.c.source).where(paper_identifiers.c.paper_id == pid)).all())
            sources = sorted(conn.execute(select(source_records.c.source, source_records.c.source_id,
                                                 source_records.c.announce_type, source_records.c.raw)
                                          .where(source_records.c.paper_id == pid)).all(), key=lambda r: (r[0], r[1]))
            shown[arxiv_id] = (values, authors, subjects, identifiers, sources)
        return {"counts": counts, "papers": shown}


def _empty(engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(source_records))
        conn.execute(delete(papers))


def test_bulk_import_leaves_the_store_the_row_by_row_path_leaves(shared_data, engine, monkeypatch):
    """The recorded OAI year and RSS day (twice: the second pass updates nothing, the upserts
    run), once through the bulk path as `academichub ingest` takes it (on PostgreSQL: COPY) and
    once record by record (executemany of single rows): the same rows, exactly."""
    oai = shared_data / "arxiv/oai-quant-ph/arXiv-meta-1995.xml"
    rss = shared_data / "arxiv/rss/2024-11-28-all-archives.xml"
    with open(oai, "rb") as handle:
        oai_ids = [p.arxiv_id for p in iter_oai(handle, str(oai))]
    from academichub.sources.arxiv_rss import parse_rss

    day = parse_rss(rss.read_bytes(), str(rss)).papers
    chosen = [oai_ids[0], oai_ids[-1], day[0].arxiv_id, day[700].arxiv_id, day[-1].arxiv_id]

    for _ in range(2):
        assert ingest_file(engine, oai).records == len(oai_ids)
        ingest_file(engine, rss)
    bulk = _snapshot(engine, chosen)
    _empty(engine)

    monkeypatch.setattr(paper_store, "COPY_MIN_ROWS", 10**9)  # PostgreSQL: one statement per row again
    for _ in range(2):
        with open(oai, "rb") as handle:
            store_stream(engine, iter_oai(handle, str(oai)), batch_size=1)
        store_stream(engine, day, batch_size=1)
    slow = _snapshot(engine, chosen)

    assert bulk["counts"] == slow["counts"]
    assert bulk["counts"]["papers"] == len(set(oai_ids)) + len({p.arxiv_id for p in day} - set(oai_ids))
    assert bulk["counts"]["source_records"] == len(oai_ids) + len(day)
    for arxiv_id in chosen:
        assert bulk["papers"][arxiv_id] == slow["papers"][arxiv_id], arxiv_id
    assert bulk["papers"][day[0].arxiv_id][1]  # a paper of the day with its authors


def test_wrk_output_is_read_exactly():
    out = """Running 15s test @ http://127.0.0.1:8000/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    26.91ms   10.27ms 104.22ms   72.35%
  Latency Distribution
     50%   24.37ms
     75%   31.21ms
     90%   41.13ms
     99%    1.04s
  17734 requests in 15.02s, 66.72MB read
  Socket errors: connect 0, read 3, write 0, timeout 7
  Non-2xx or 3xx responses: 2
Requests/sec:   1180.73
Transfer/sec:      4.44MB
"""
    load = parse_wrk(out)
    assert (load.requests, load.rps, load.p50_ms, load.p99_ms, load.errors) == (17734, 1180.73, 24.37, 1040.0, 12)


def test_the_bare_loaders_store_every_recorded_oai_record(shared_data, tmp_path, engine):
    """The floors `bench ingest` and `bench scale` compare the import with: the SQLite loader and
    (on PostgreSQL) its twin with the papers table's tsvector, over the recorded quant-ph files."""
    import sqlite3

    from academichub.bench import bare_loader, bare_pg_loader

    files = sorted((shared_data / "arxiv/oai-quant-ph").glob("*.xml"))
    assert bare_loader(files, tmp_path / "bare.db") == 13_453
    with sqlite3.connect(tmp_path / "bare.db") as conn:
        idents = {row[0] for row in conn.execute("SELECT ident FROM p")}
        assert len(idents) == 13_453 and "oai:arXiv.org:quant-ph/9501002" in idents
        assert conn.execute("SELECT count(*) FROM f WHERE f MATCH 'entanglement'").fetchone()[0] > 0
    if engine.dialect.name != "postgresql":
        return
    from sqlalchemy.engine import make_url

    schema = "bare_loader_test"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        conninfo = make_url(engine.url).set(drivername="postgresql").render_as_string(hide_password=False)
        assert bare_pg_loader(files, f"{conninfo}?options=-csearch_path%3D{schema}") == 13_453
        with engine.connect() as conn:
            stored = {row[0] for row in conn.exec_driver_sql(f"SELECT ident FROM {schema}.p WHERE search_vector IS NOT NULL")}
        assert stored == idents
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
