"""A day's papers added to the nearest-neighbour index (rank/neighbours.py) go into a small delta
index beside the base, which is not written again (at a million papers it is ~1 GB to load and
write); the delta is merged into the base once it outgrows its share. Readers stay correct
throughout: a process that opened a generation keeps searching it, a reader after an update sees
the new papers, a writer that fails half-way leaves the previous generation as it was."""

from __future__ import annotations

import numpy as np
import pytest

from academichub.bench import synthetic_vectors
from academichub.rank import neighbours as N
from academichub.rank.neighbours import TABLE_K, VectorIndex

MODEL = "test/delta-384"


def _vectors(n: int, seed: int = 5) -> np.ndarray:
    return synthetic_vectors(n, np.random.default_rng(seed), 384)


def _base_file(folder) -> tuple[str, int, int]:
    [path] = [p for p in folder.glob("*-*.usearch") if not p.name.endswith(".delta.usearch")]
    stat = path.stat()
    return path.name, stat.st_ino, stat.st_mtime_ns


def _manifest(folder) -> dict:
    """The manifest as a new reader reads it."""
    reader = VectorIndex(folder, MODEL)
    assert reader.count
    return reader.manifest


def _base_and_delta(folder, n: int, seed: int) -> tuple[VectorIndex, np.ndarray]:
    """An index of n papers: the first 1,000 written as its base, the rest a day in its delta."""
    vectors = _vectors(n, seed=seed)
    ids = np.arange(n, dtype=np.int64)
    index = VectorIndex(folder, MODEL)
    index.update(ids[:1_000], vectors[:1_000])
    index.update(ids[1_000:], vectors[1_000:])
    return index, vectors


def _exact_table(ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return ids[np.argsort(-sims, axis=1)[:, :TABLE_K]]


def test_a_day_goes_into_a_delta_and_the_base_file_is_not_written_again(tmp_path):
    vectors = _vectors(3_000)
    ids = np.arange(10, 10 + len(vectors), dtype=np.int64)
    index = VectorIndex(tmp_path, MODEL)
    index.update(ids[:2_500], vectors[:2_500])
    base = _base_file(tmp_path)
    reader = VectorIndex(tmp_path, MODEL)  # a process that opened the first generation
    before_ids, before_sims = reader.nearest(vectors[:50], 10)
    before_table = np.array(reader.table().nbr)

    assert index.update(ids[2_500:], vectors[2_500:]) == 500
    assert _base_file(tmp_path) == base  # the same file, not written again
    after = VectorIndex(tmp_path, MODEL)  # a reader after the update
    assert after.count == 3_000 and after.manifest["generation"] == 2
    assert after.manifest["base"] == 1 and after.manifest["delta"] == 500
    found, sims = after.nearest(vectors, 1)
    assert (found[:, 0] == ids).mean() > 0.99  # each paper, base or delta, finds itself first
    assert np.allclose(sims[found[:, 0] == ids, 0], 1.0, atol=2e-3)
    # the table over both: the new papers' rows and the old rows they entered, against exact search
    table = after.table()
    assert np.array_equal(np.asarray(table.ids), ids)
    exact = _exact_table(ids, vectors)
    recall = np.mean([len(set(e.tolist()) & set(np.asarray(f).tolist())) / TABLE_K for e, f in zip(exact, table.nbr)])
    assert recall >= 0.95
    assert np.isin(np.asarray(table.nbr)[:2_500], ids[2_500:]).any()

    # the reader that opened generation 1 (its files since removed) still answers as it did, until
    # it looks at the manifest again: the next call maps generation 2
    assert reader._table is not None and np.array_equal(np.array(reader._table.nbr), before_table)
    held_ids, held_sims = N._search((reader._index, reader._delta), vectors[:50], 10, N.EXPANSION_SEARCH)
    assert np.array_equal(held_ids, before_ids) and np.allclose(held_sims, before_sims)
    # (an HNSW graph is built by several threads, so which few papers miss themselves varies from one
    # build to the next: the reader is held to the same answers as a fresh reader of the same files)
    assert reader.count == 3_000
    found_new, sims_new = reader.nearest(vectors[2_500:], 1)
    fresh_ids, fresh_sims = VectorIndex(tmp_path, MODEL).nearest(vectors[2_500:], 1)
    assert np.array_equal(found_new, fresh_ids) and np.allclose(sims_new, fresh_sims)
    assert np.isin(ids[2_500:], found_new).mean() > 0.97


def test_the_delta_is_merged_into_the_base_past_its_share(tmp_path, monkeypatch):
    monkeypatch.setattr(N, "DELTA_MIN", 300)
    vectors = _vectors(2_400, seed=6)
    ids = np.arange(len(vectors), dtype=np.int64)
    index = VectorIndex(tmp_path, MODEL)
    index.update(ids[:2_000], vectors[:2_000])
    index.update(ids[2_000:2_200], vectors[2_000:2_200])
    assert _manifest(tmp_path)["delta"] == 200 and _manifest(tmp_path)["base"] == 1
    reader = VectorIndex(tmp_path, MODEL)
    assert reader.count == 2_200
    index.update(ids[2_200:], vectors[2_200:])  # 400 in the delta > 300: merged
    manifest = _manifest(tmp_path)
    assert manifest["delta"] == 0 and manifest["base"] == manifest["generation"] == 4 and manifest["count"] == 2_400
    assert sorted(p.name for p in tmp_path.glob("test-delta-384-*")) == sorted(f"test-delta-384-4.{s}" for s in ("usearch", "ids.npy", "nbr.npy", "sim.npy"))
    found, _ = VectorIndex(tmp_path, MODEL).nearest(vectors, 1)
    assert (found[:, 0] == ids).mean() > 0.99
    assert reader.count == 2_400  # a reader of the delta generation moves to the merged one


def test_a_writer_that_fails_half_way_leaves_the_previous_generation(tmp_path, monkeypatch):
    vectors = _vectors(2_000, seed=7)
    ids = np.arange(len(vectors), dtype=np.int64)
    index = VectorIndex(tmp_path, MODEL)
    index.update(ids[:1_500], vectors[:1_500])
    index.update(ids[1_500:1_700], vectors[1_500:1_700])
    before = VectorIndex(tmp_path, MODEL).nearest(vectors[:1_700], 5)
    saved = np.save

    def disk_full(path, values, **kwargs):
        if str(path).endswith(".nbr.npy"):
            raise OSError(28, "No space left on device")
        saved(path, values, **kwargs)

    monkeypatch.setattr(N.np, "save", disk_full)
    with pytest.raises(OSError):
        index.update(ids[1_700:], vectors[1_700:])
    monkeypatch.setattr(N.np, "save", saved)
    reader = VectorIndex(tmp_path, MODEL)
    assert reader.count == 1_700 and reader.manifest["generation"] == 2 and reader.manifest["delta"] == 200
    found, sims = reader.nearest(vectors[:1_700], 5)
    assert np.array_equal(found, before[0]) and np.array_equal(sims, before[1])  # the same files, the same answers
    assert (found[:, 0] == ids[:1_700]).mean() > 0.99
    assert np.array_equal(np.asarray(reader.table().ids), ids[:1_700])
    # the next writer takes the same day again and leaves only its generation's files
    assert index.update(ids[1_700:], vectors[1_700:]) == 300
    assert VectorIndex(tmp_path, MODEL).count == 2_000
    names = {p.name for p in tmp_path.glob("test-delta-384-*")}
    assert names == {"test-delta-384-1.usearch", *(f"test-delta-384-3.{s}" for s in ("delta.usearch", "ids.npy", "nbr.npy", "sim.npy"))}


def test_papers_gone_from_the_base_and_the_delta_are_dropped(tmp_path):
    index, vectors = _base_and_delta(tmp_path, 1_200, seed=8)
    gone = np.array([3, 500, 1_001, 1_150])
    index.update(np.empty(0, np.int64), np.empty((0, 384), np.float32), gone=gone)
    reader = VectorIndex(tmp_path, MODEL)
    assert reader.count == 1_196 and reader.manifest["delta"] == 0
    found, _ = reader.nearest(vectors, 20)
    assert not np.isin(found, gone).any()
    table = reader.table()
    assert not np.isin(np.asarray(table.ids), gone).any() and not np.isin(np.asarray(table.nbr), gone).any()


def test_a_merge_asked_for_writes_the_whole_index_once(tmp_path):
    index, vectors = _base_and_delta(tmp_path, 1_100, seed=9)
    assert _manifest(tmp_path)["delta"] == 100
    index.update(np.empty(0, np.int64), np.empty((0, 384), np.float32), merge=True)
    manifest = _manifest(tmp_path)
    assert manifest["delta"] == 0 and manifest["base"] == manifest["generation"] == 3 and manifest["count"] == 1_100
    assert index.update(np.empty(0, np.int64), np.empty((0, 384), np.float32), merge=True) == 0
    assert _manifest(tmp_path)["generation"] == 3  # nothing to merge: nothing written
    found, _ = VectorIndex(tmp_path, MODEL).nearest(vectors, 1)
    assert (found[:, 0] == np.arange(1_100)).mean() > 0.99


def test_a_day_whose_ids_fall_between_the_tables_keeps_its_rows_aligned(tmp_path):
    vectors = _vectors(1_000, seed=10)
    ids = np.arange(len(vectors), dtype=np.int64) * 2
    index = VectorIndex(tmp_path, MODEL)
    index.update(ids[::2], vectors[::2])  # 0, 4, 8, ...
    index.update(ids[1::2], vectors[1::2])  # 2, 6, 10, ...: each between two of the table's
    table = VectorIndex(tmp_path, MODEL).table()
    assert np.array_equal(np.asarray(table.ids), ids)
    # each row's first neighbour and cosine are its own paper's (the rows moved with their ids)
    row_of = {int(i): r for r, i in enumerate(ids)}
    first = np.array([row_of[int(j)] for j in np.asarray(table.nbr)[:, 0]])
    cosines = np.einsum("ij,ij->i", vectors, vectors[first])
    assert np.allclose(cosines, np.asarray(table.sim)[:, 0], atol=2e-3)
    exact = _exact_table(ids, vectors)
    assert (np.asarray(table.nbr)[:, 0] == exact[:, 0]).mean() > 0.95


def test_bench_rank_adds_its_days_to_copies_and_leaves_the_kept_index_as_it_was(tmp_path):
    from academichub.bench import _day_into_copies

    vectors = _vectors(1_100, seed=11)
    ids = np.arange(len(vectors), dtype=np.int64)
    VectorIndex(tmp_path, "bench").update(ids[:1_000], vectors[:1_000])
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    times = _day_into_copies(tmp_path, ids[1_000:], vectors[1_000:], 3)
    assert {way: len(t) for way, t in times.items()} == {"delta": 3, "whole": 3}
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before  # the copies are gone, the index untouched
    assert VectorIndex(tmp_path, "bench").count == 1_000


def test_a_small_graph_is_built_by_one_thread_and_every_paper_finds_itself(tmp_path, monkeypatch):
    """Threads inserting into a small HNSW graph at once leave papers no search reaches (1,500
    papers by two threads: up to 1.7 % did not find themselves); an add runs one thread per
    ADD_PER_THREAD papers of the graph, so a day's delta or a laptop's library is built by one."""
    threads = []
    Index = N._usearch_index()
    real_index_add = Index.add

    def seen(self, keys, vectors, **kwargs):
        threads.append(kwargs.get("threads", 0))
        return real_index_add(self, keys, vectors, **kwargs)

    monkeypatch.setattr(Index, "add", seen)
    vectors = _vectors(1_500, seed=7)
    ids = np.arange(len(vectors), dtype=np.int64)
    VectorIndex(tmp_path, MODEL).update(ids, vectors)
    assert threads == [1]
    found, _ = VectorIndex(tmp_path, MODEL).nearest(vectors, 1)
    assert np.array_equal(found[:, 0], ids)
