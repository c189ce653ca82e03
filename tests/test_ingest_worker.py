"""Bulk files parsed in a forked worker process: the same rows as parsing in-process, errors
raised in order with the file and line, nothing written when the file breaks, progress in bytes."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from academichub.errors import AcademicHubError, ParseError
from academichub.ingest import pipeline
from academichub.ingest.pipeline import ParsingWorker, ingest_file, worker_available
from academichub.store.papers import table_counts

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="the worker needs fork (Linux, macOS)"
)

OAI = "arxiv/oai-quant-ph/arXiv-meta-1995.xml"
SNAPSHOT = "arxiv/snapshot/arxiv-metadata-oai-snapshot-head.jsonl"


def _dump(engine):
    with engine.connect() as conn:
        paper_rows = sorted(
            tuple(r) for r in conn.exec_driver_sql(
                "SELECT arxiv_id, title, abstract, submitted_at, content_hash FROM papers"
            )
        )
        sources = sorted(tuple(r) for r in conn.exec_driver_sql("SELECT source, source_id FROM source_records"))
        return table_counts(conn), paper_rows, sources


def test_worker_choice():
    assert worker_available(False) is False
    assert worker_available(True) is True
    if (os.cpu_count() or 1) < 2:
        assert worker_available(None) is False


def _everything(engine):
    """Every stored column but ids and clocks, in a comparable form."""
    from sqlalchemy import select

    from academichub.store.schema import paper_identifiers, papers, source_records

    skip = {"id", "paper_id", "created_at", "modified_at", "fetched_at"}
    out = {}
    with engine.connect() as conn:
        for table in (papers, source_records, paper_identifiers):
            columns = [c for c in table.c if c.name not in skip]
            out[table.name] = sorted(repr(tuple(r)) for r in conn.execute(select(*columns)))
    return out


def _forget_everything(engine):
    with engine.begin() as conn:
        for table in ("source_records", "paper_identifiers", "papers"):
            conn.exec_driver_sql(f"DELETE FROM {table}")


def test_worker_stores_what_the_in_process_path_stores(engine, shared_data):
    path = shared_data / OAI
    seen = []
    forked = ingest_file(engine, path, batch_size=100, worker=True, on_bytes=seen.append)
    assert (forked.records, forked.added, forked.failed) == (436, 436, 0)
    assert sum(seen) == path.stat().st_size and len(seen) > 1  # progress advanced batch by batch
    in_worker = _dump(engine)
    titles = {r[0]: r[1] for r in in_worker[1]}
    assert titles["quant-ph/9501001"].startswith("Critique of proposed limit to space--time measurement")
    # the same file again: unchanged, whichever path reads it
    again = ingest_file(engine, path, batch_size=100, worker=False)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 436)
    assert _dump(engine) == in_worker
    # column for column what the in-process path stores (the worker converts values ahead)
    stored = _everything(engine)
    _forget_everything(engine)
    assert ingest_file(engine, path, worker=False).added == 436
    assert _everything(engine) == stored
    assert len(stored["papers"]) == 436 and len(stored["source_records"]) == 436


def test_worker_parse_error_names_file_and_line_and_writes_nothing(engine, shared_data, tmp_path):
    recorded = (shared_data / OAI).read_bytes()
    path = tmp_path / "cut.xml"
    path.write_bytes(recorded[: len(recorded) // 2])
    with pytest.raises(ParseError) as caught:
        ingest_file(engine, path, batch_size=50, worker=True)  # several batches arrive before the break
    assert caught.value.location == str(path)
    assert caught.value.line is not None and caught.value.line > 1000
    assert str(caught.value).startswith(f"{path}:{caught.value.line}: malformed XML")
    with engine.connect() as conn:
        assert table_counts(conn)["papers"] == 0


def test_a_worker_that_dies_is_a_clear_error(engine, shared_data, monkeypatch):
    def dies(handle, location):
        yield from ()
        os._exit(3)

    monkeypatch.setattr(pipeline, "_bulk_parser", lambda fmt: dies)
    with pytest.raises(AcademicHubError, match=r"arXiv-meta-1995\.xml: the parsing worker stopped without an answer \(exit code 3\)"):
        ingest_file(engine, shared_data / OAI, worker=True)
    with engine.connect() as conn:
        assert table_counts(conn)["papers"] == 0


def test_worker_snapshot_commits_per_batch(engine, shared_data):
    path = shared_data / SNAPSHOT
    forked = ingest_file(engine, path, worker=True)
    counts = _dump(engine)
    plain = ingest_file(engine, path, worker=False)
    assert forked.records == plain.records == plain.unchanged > 0
    assert forked.added == forked.records - forked.failed - forked.updated
    assert _dump(engine) == counts


def test_one_worker_for_several_files_a_broken_one_does_not_stop_the_next(engine, shared_data, tmp_path):
    first = shared_data / OAI
    recorded = (shared_data / "arxiv/oai-quant-ph/arXiv-meta-2000.xml").read_bytes()
    broken = tmp_path / "cut.xml"
    broken.write_bytes(recorded[: len(recorded) // 2])
    last = shared_data / SNAPSHOT
    files = [first, broken, last]
    results = {}
    with ParsingWorker(files, 100) as parsing:
        assert parsing.paths == [str(p) for p in files]
        for path in files:
            try:
                results[path.name] = ingest_file(engine, path, worker=False, parsing=parsing).added
            except ParseError as exc:
                results[path.name] = str(exc)
    assert results[first.name] == 436
    assert results[broken.name].startswith(f"{broken}:")
    assert results[last.name] > 0
    with engine.connect() as conn:
        assert table_counts(conn)["papers"] == 436 + results[last.name]  # nothing of the broken file


def test_a_file_given_up_midway_is_skipped_for_the_next(engine, shared_data):
    first, second = shared_data / "arxiv/oai-quant-ph/arXiv-meta-2000.xml", shared_data / OAI
    with ParsingWorker([first, second, "/no/such/file.xml"], 100) as parsing:
        assert parsing.paths == [str(first), str(second)]  # only readable bulk files are queued
        batches = parsing.batches(first)
        assert len(next(batches).rows) == 100
        batches.close()  # the writer failed after one batch
        summary = ingest_file(engine, second, worker=False, parsing=parsing)
        assert parsing.batches(first) is None  # already passed
    assert (summary.records, summary.added) == (436, 436)
