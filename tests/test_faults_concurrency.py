"""Processes sharing one store: two `academichub ingest` runs with overlapping records (one used
to fail on a unique key, its batch lost), two processes opening a new store (one used to fail
creating tables the other had just created), and the web server answering while an ingest
writes. Real processes, real stores (SQLite, or PostgreSQL in the suite's second pass)."""

from __future__ import annotations

import signal
import sqlite3
import socket
import time
from pathlib import Path

import httpx
import pytest
from academichub.ingest.pipeline import SAMPLE_FILE
from academichub.store.database import current_revision, head_revision, make_engine, open_store, schema_differences
from faults_support import (
    OAI_COUNTS,
    OAI_DIR,
    NewStores,
    expected_state,
    finish,
    oai_records,
    start_cli,
    store_state,
    write_oai,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="real processes on Linux")

ROUNDS = 3
OAI_FILES = ("arXiv-meta-1995.xml", "arXiv-meta-2000.xml")
SAMPLE_PAPERS = 1504  # the bundled arXiv day (src/academichub/data/sample)


@pytest.fixture
def new_stores(tmp_path):
    stores = NewStores(tmp_path)
    yield stores
    stores.drop_all()


def test_two_writers_with_overlapping_records_store_each_once(shared_data, new_stores, tmp_path):
    n = 1000
    records = oai_records(shared_data, n + n // 2)
    # Records 0..n and n/2..1.5n; each file starts with the shared half, so both processes write
    # it first and their transactions overlap whenever they run at the same time.
    first = write_oai(tmp_path / "first.xml", records[n // 2 : n] + records[: n // 2])
    second = write_oai(tmp_path / "second.xml", records[n // 2 :])
    for attempt in range(ROUNDS):  # the race needs the two to overlap: a few rounds make it sure
        url = new_stores.url()
        open_store(url).dispose()  # migrated here: this test is about the writers
        processes = [start_cli(url, "ingest", str(path)) for path in (first, second)]
        results = [finish(process) for process in processes]
        assert [code for code, _ in results] == [0, 0], f"round {attempt}: {results}"
        added = [int(out.split("total: 1000 records: ")[1].split(" added")[0]) for _, out in results]
        assert sum(added) == n + n // 2, results  # each paper added once, by one of the two
        assert store_state(url) == expected_state(n + n // 2)


def test_two_processes_opening_a_new_store_migrate_it_once(new_stores):
    for attempt in range(ROUNDS):
        url = new_stores.url()
        processes = [start_cli(url, "db", "upgrade") for _ in range(2)]
        results = [finish(process) for process in processes]
        assert [code for code, _ in results] == [0, 0], f"round {attempt}: {results}"
        assert sum("migrated from none to" in out for _, out in results) == 1, results
        engine = make_engine(url)
        try:
            assert current_revision(engine) == head_revision()
            assert schema_differences(engine) == []
        finally:
            engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_answers_while_an_ingest_writes(shared_data, new_stores):
    """`serve` and an `ingest` of the bundled sample day started together on a new store: both
    open (migrate) it, the server loads the sample into the empty store while the ingest writes
    the same papers, and the two store each once. Then every request made while a second ingest
    writes succeeds, and the server sees the result."""
    url = new_stores.url()
    second = str(shared_data / OAI_DIR / OAI_FILES[1])
    port = _free_port()
    server = start_cli(url, "serve", "--port", str(port))
    ingest = start_cli(url, "ingest", str(SAMPLE_FILE))
    failures: list[str] = []
    answered = 0
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:  # the server is up when it answers
                assert server.poll() is None, f"the server stopped: {finish(server)}"
                assert time.monotonic() < deadline, "the server did not start"
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            code, output = finish(ingest)
            assert code == 0, output
            ingest = start_cli(url, "ingest", second)
            paths = ["/healthz", "/api/stats", "/api/papers?size=20", "/api/papers?q=entanglement", "/?q=quantum"]
            while ingest.poll() is None:
                for path in paths:
                    try:
                        response = client.get(path)
                    except httpx.TransportError as exc:
                        failures.append(f"{path}: {exc!r}")
                        continue
                    answered += 1
                    if response.status_code != 200:
                        failures.append(f"{path}: {response.status_code} {response.text[:200]}")
            code, output = finish(ingest)
            assert code == 0, output
            stats = client.get("/api/stats")
            assert stats.status_code == 200
    finally:
        if ingest.poll() is None:
            ingest.kill()
        server.send_signal(signal.SIGTERM)
        server_code, server_output = finish(server, timeout=30)
    total = SAMPLE_PAPERS + OAI_COUNTS[OAI_FILES[1]]
    assert failures == [], failures
    assert answered > 0
    assert stats.json()["papers"] == total
    assert "Traceback" not in server_output, server_output
    # the sample day's authors, subjects and DOIs besides their arXiv ids (the OAI file has none)
    assert store_state(url) == expected_state(total, authors=7028, subjects=2882, identifiers=total + 111)


def test_a_writer_kept_out_too_long_is_a_clear_error_and_writes_nothing(engine, shared_data, monkeypatch):
    """SQLite: a writer waits for another one (longer than the busy timeout), then gives up with
    one line naming the store; PostgreSQL's advisory lock waits in the server's queue instead."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock; PostgreSQL waits on its advisory lock")
    from academichub.errors import StoreError
    from academichub.ingest.pipeline import ingest_file
    from academichub.store import database

    monkeypatch.setattr(database, "WRITER_WAIT_MS", 300)
    other = sqlite3.connect(engine.url.database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's write transaction, still open
        with pytest.raises(StoreError) as caught:
            ingest_file(engine, shared_data / OAI_DIR / OAI_FILES[0], worker=False)
        assert str(caught.value).startswith(f"sqlite:///{engine.url.database}: cannot start writing")
        assert str(caught.value).endswith("database is locked")
        other.execute("ROLLBACK")
    finally:
        other.close()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM papers").scalar_one() == 0
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == database.BUSY_TIMEOUT_MS
    assert ingest_file(engine, shared_data / OAI_DIR / OAI_FILES[0], worker=False).added == 436
