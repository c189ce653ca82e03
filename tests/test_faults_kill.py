"""A bulk import killed half-way (SIGKILL, as the OOM killer or `kill -9` does it): every file or
batch it committed stays whole, nothing half-written, the re-run stores exactly the rest, and
its parsing worker does not outlive it (it used to block in a pipe write for ever, holding the
database open)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest
from faults_support import (
    OAI_COUNTS,
    OAI_DIR,
    SNAPSHOT,
    NewStores,
    alive,
    children,
    expected_state,
    finish,
    paper_count,
    start_cli,
    store_state,
    wait_for,
)

pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc (Linux)"),
    pytest.mark.skipif(
        "fork" not in multiprocessing.get_all_start_methods() or (os.cpu_count() or 1) < 2,
        reason="the parsing worker is used only with fork and a second core",
    ),
]


@pytest.fixture
def new_stores(tmp_path):
    stores = NewStores(tmp_path)
    yield stores
    stores.drop_all()


def _kill_mid_import(
    database_url: str, args: list[str], *, committed, sig: signal.Signals = signal.SIGKILL
) -> tuple[int, list[int]]:
    """Start the import, kill it with `sig` once `committed(count)` holds for the stored papers
    while it still runs; returns the count it had then and its worker's pid."""
    process = start_cli(database_url, *args)
    workers: list[int] = []
    try:
        workers = wait_for(lambda: children(process.pid), 60, "the parsing worker")
        wait_for(lambda: committed(paper_count(database_url)) or process.poll() is not None, 60, "a first commit")
        assert process.poll() is None, f"the import ended before it could be killed: {finish(process)}"
        assert all(alive(pid) for pid in workers), "the worker ended before its parent was killed"
        process.send_signal(sig)
        process.wait(30)
        # The kernel kills the worker with its parent; give a slow machine a moment to reap it.
        wait_for(lambda: not any(alive(pid) for pid in workers), 10, f"the orphaned worker {workers} to end")
    finally:
        if process.poll() is None:
            process.kill()
        for pid in workers:  # never leave one behind, even when the test fails
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.communicate(timeout=30)  # (an orphan would hold its output pipe open)
    return paper_count(database_url), workers


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_during_oai_ingest_then_rerun(shared_data, new_stores, sig):
    url = new_stores.url()  # a new store: the ingest creates it
    counts = OAI_COUNTS
    files = [str(shared_data / OAI_DIR / name) for name in counts]
    args = ["ingest", *files, "--ingest-batch-size", "100"]
    # Each OAI file is one transaction: killed once the first file committed, with the worker
    # parsing a later one (or blocked sending it: more batches than the pipe holds). Three files:
    # with two the worker was done 0.1-0.2 s after the first commit, a window a loaded CI missed.
    kept, _workers = _kill_mid_import(url, args, committed=lambda n: n > 0, sig=sig)
    sizes = list(counts.values())
    assert kept in (sizes[0], sizes[0] + sizes[1])  # the first file whole, or the first two: never part of one
    assert store_state(url) == expected_state(kept)

    code, output = finish(start_cli(url, *args))
    total = sum(counts.values())
    assert code == 0, output
    assert f"total: {total} records: {total - kept} added, 0 updated, {kept} unchanged, 0 failed" in output
    assert store_state(url) == expected_state(total)


def test_sigkill_during_snapshot_import_then_rerun(shared_data, new_stores, tmp_path):
    url = new_stores.url()
    # The recorded head of the snapshot (200 papers), three times over: enough batches of ten that
    # the worker is still sending when the writer's first commits land (repeats are unchanged).
    lines = (shared_data / SNAPSHOT).read_bytes()
    snapshot = tmp_path / "snapshot.jsonl"
    snapshot.write_bytes(lines * 3)
    args = ["import-snapshot", str(snapshot), "--ingest-batch-size", "10"]
    kept, _workers = _kill_mid_import(url, args, committed=lambda n: n >= 20)
    assert kept < 200 and kept % 10 == 0  # committed batches, whole
    state = store_state(url)
    assert state["papers"] == state["source_records"] == state["distinct arxiv ids"] == state["indexed"] == kept

    code, output = finish(start_cli(url, *args))
    assert code == 0, output
    assert f"600 records: {200 - kept} added, 0 updated, {400 + kept} unchanged, 0 failed" in output
    assert store_state(url) == expected_state(200, authors=537, subjects=305, identifiers=317)
