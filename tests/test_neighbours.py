"""The nearest-neighbour index (rank/neighbours.py) on a real store (SQLite, and PostgreSQL in its
pass) with real recorded papers: built from the stored vectors and kept in the data folder, opened
again by another process without a rebuild, grown by the embedding job after an ingest, caught up
by a process that finds it behind the store, rebuilt (saying so) when its files are broken or
gone; its answers against exact search. Vectors are fixed random ones (seeded: the index's cost
and recall do not depend on the model), written the way the embedding job writes them."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import select

from academichub.ingest.pipeline import ingest_file
from academichub.rank import embeddings as E
from academichub.rank.candidates import _graph_from_table, _neighbour_graph
from academichub.rank.embedding_jobs import embed_new_papers
from academichub.rank.neighbours import TABLE_K, VectorIndex, store_key, transient_table, update_store_index
from academichub.rank.ranker import PROPAGATION_K, Ranker
from academichub.rank.service import CandidateCache
from academichub.settings import Settings
from academichub.store.schema import paper_embeddings, papers

OAI_1995 = "arxiv/oai-quant-ph/arXiv-meta-1995.xml"  # 436 real quant-ph records
OAI_2000 = "arxiv/oai-quant-ph/arXiv-meta-2000.xml"
MODEL = "test/seeded-384"
DIM = 384


def _shaped(rng, n: int) -> np.ndarray:
    """Unit vectors shaped like abstracts' embeddings (as `academichub bench rank` makes them)."""
    from academichub.bench import synthetic_vectors

    return synthetic_vectors(n, rng, DIM)


class SeededEmbedder:
    """Vectors drawn from a generator seeded by each text's SHA-1: the same text always gets the
    same vector, as with a model; shaped like the packaged model's (one of 200 topics, 32 shared
    factors, a little noise: as `academichub bench rank` makes them)."""

    name, dim, max_seq_length = MODEL, DIM, 128
    _shared = np.random.default_rng(7)
    topics = _shared.standard_normal((200, DIM)).astype(np.float32)
    factors = (0.5 * _shared.standard_normal((32, DIM))).astype(np.float32)

    def encode(self, texts, batch_size=32):
        rows = []
        for text in texts:
            rng = np.random.default_rng(int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little"))
            rows.append(self.topics[rng.integers(0, 200)] + rng.standard_normal(32).astype(np.float32) @ self.factors
                        + 0.5 * rng.standard_normal(DIM).astype(np.float32))
        rows = np.asarray(rows, dtype=np.float32).reshape(len(texts), DIM)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _embed(engine, tmp_path, monkeypatch) -> int:
    """The embedding job as ingest runs it (embed_new_papers), with the seeded embedder."""
    monkeypatch.setattr(E, "configured_embedder", lambda settings, engine=None: SeededEmbedder())
    return embed_new_papers(engine, Settings(data_dir=tmp_path / "data", load_sample=False))


def _stored(engine) -> np.ndarray:
    with engine.connect() as conn:
        return np.array(sorted(conn.execute(select(paper_embeddings.c.paper_id)).scalars()), dtype=np.int64)


def _index(engine, tmp_path) -> VectorIndex:
    """A fresh reader, as another process opens the folder."""
    return VectorIndex(tmp_path / "data" / "index", MODEL, store=store_key(engine))


def _files(tmp_path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (tmp_path / "data" / "index").iterdir() if not p.name.endswith(".lock")}


def test_the_embedding_job_builds_the_index_and_a_restart_reopens_it(engine, shared_data, tmp_path, monkeypatch):
    ingest_file(engine, shared_data / OAI_1995)
    assert _embed(engine, tmp_path, monkeypatch) == 436
    index = _index(engine, tmp_path)
    assert index.count == 436
    assert index.manifest["generation"] == 1 and index.manifest["dim"] == DIM and index.manifest["model"] == MODEL
    assert index.manifest["highest_id"] == int(_stored(engine)[-1])
    table = index.table()
    assert np.array_equal(np.asarray(table.ids), _stored(engine)) and table.nbr.shape == (436, TABLE_K)
    before = _files(tmp_path)
    # a restart: a new reader maps the files; catching up finds nothing to do and writes nothing
    again = _index(engine, tmp_path)
    with engine.connect() as conn:
        assert again.catch_up(conn) == 0
    assert _files(tmp_path) == before and again.manifest["generation"] == 1
    stored, vectors = _vectors(engine)
    first = stored[:5]
    ids, sims = again.nearest(vectors[:5], 3)
    assert ids[:, 0].tolist() == first.tolist()  # each paper's nearest is itself
    assert np.allclose(sims[:, 0], 1.0, atol=2e-3)


def test_papers_ingested_later_are_added_not_rebuilt(engine, shared_data, tmp_path, monkeypatch):
    ingest_file(engine, shared_data / OAI_1995)
    _embed(engine, tmp_path, monkeypatch)
    old = _stored(engine)
    ingest_file(engine, shared_data / OAI_2000)
    new = np.setdiff1d(_paper_ids(engine), old)
    assert len(new) > 1000
    assert _embed(engine, tmp_path, monkeypatch) == len(new)
    index = _index(engine, tmp_path)
    assert index.count == len(old) + len(new) and index.manifest["generation"] == 2
    table = index.table()
    assert np.array_equal(np.asarray(table.ids), _stored(engine))
    # the old papers' rows took in new papers they are near (the table is not the first day's only)
    old_rows = np.isin(np.asarray(table.ids), old)
    assert np.isin(np.asarray(table.nbr)[old_rows], new).any()
    # and the table agrees with exact search over every stored vector
    _assert_table_recall(engine, table)


def _paper_ids(engine) -> np.ndarray:
    with engine.connect() as conn:
        return np.array(sorted(conn.execute(select(papers.c.id)).scalars()), dtype=np.int64)


def _vectors(engine) -> tuple[np.ndarray, np.ndarray]:
    with engine.connect() as conn:
        rows = conn.execute(select(paper_embeddings.c.paper_id, paper_embeddings.c.vector)
                            .order_by(paper_embeddings.c.paper_id)).all()
    return (np.array([r[0] for r in rows], dtype=np.int64),
            np.vstack([np.frombuffer(r[1], dtype="<f2") for r in rows]).astype(np.float32))


def _assert_table_recall(engine, table) -> None:
    ids, vectors = _vectors(engine)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    exact = np.argsort(-sims, axis=1)[:, :TABLE_K]
    recall = np.mean([len(set(ids[e].tolist()) & set(np.asarray(f).tolist())) / TABLE_K
                      for e, f in zip(exact, table.nbr)])
    print(f"neighbour table recall@{TABLE_K} vs exact over {len(ids)} stored vectors: {recall:.4f}")
    assert recall >= 0.95


def test_a_process_whose_index_is_behind_the_store_catches_up(engine, shared_data, tmp_path, monkeypatch):
    ingest_file(engine, shared_data / OAI_1995)
    _embed(engine, tmp_path, monkeypatch)
    ingest_file(engine, shared_data / OAI_2000)
    # another process embedded the new papers without touching this data folder's index
    monkeypatch.setattr(E, "configured_embedder", lambda settings, engine=None: SeededEmbedder())
    E.embed_missing(engine, SeededEmbedder())
    stale = _index(engine, tmp_path)
    assert stale.count == 436 < len(_stored(engine))
    cache = CandidateCache(index_folder=tmp_path / "data" / "index")
    with engine.connect() as conn:
        cs = cache.get(conn, since=None, model=MODEL, ranker=Ranker())
    assert stale.count == len(_stored(engine)) and stale.manifest["generation"] == 2  # the reader saw the new files
    graph = cs.neighbour_graph(PROPAGATION_K)
    assert graph.links.shape == (len(cs), len(cs)) and (np.diff(graph.links.indptr) >= PROPAGATION_K).all()
    exact = _neighbour_graph(cs.emb, cs.centre, PROPAGATION_K)
    assert _shared_links(exact, graph) >= 0.95


def _shared_links(exact, graph) -> float:
    a, b = exact.links.tocoo(), graph.links.tocoo()
    want = set(zip(a.row.tolist(), a.col.tolist()))
    shared = len(want & set(zip(b.row.tolist(), b.col.tolist()))) / len(want)
    print(f"propagation graph links shared with the exact graph: {shared:.4f}")
    return shared


@pytest.mark.parametrize("damage", ["corrupt", "missing", "manifest"])
def test_a_broken_or_missing_index_file_is_rebuilt_with_a_log_line(engine, shared_data, tmp_path, monkeypatch, caplog, damage):
    ingest_file(engine, shared_data / OAI_1995)
    _embed(engine, tmp_path, monkeypatch)
    folder = tmp_path / "data" / "index"
    file = next(folder.glob("*.usearch"))
    if damage == "corrupt":
        file.write_bytes(b"not an index" * 10)
    elif damage == "missing":
        file.unlink()
    else:
        next(folder.glob("*.json")).write_text("{", encoding="utf-8")
    caplog.set_level(logging.INFO, logger="academichub.rank.neighbours")
    index = _index(engine, tmp_path)
    assert index.table() is None  # a reader does not crash: no table, the ranking builds its own graph
    assert update_store_index(engine, folder, MODEL) == 436
    assert index.count == 436 and np.array_equal(np.asarray(index.table().ids), _stored(engine))
    messages = [r.getMessage() for r in caplog.records]
    manifest = folder / "test-seeded-384.json"
    if damage == "manifest":
        assert any(m.startswith(f"nearest-neighbour index {manifest}: unreadable manifest") for m in messages)
    else:
        assert any(m.startswith(f"nearest-neighbour index {manifest}: cannot be read (") and
                   m.endswith("rebuilding it from the stored vectors") for m in messages), messages
    assert f"nearest-neighbour index {manifest}: building it from 436 stored vectors" in messages


def test_an_index_of_another_store_in_the_folder_is_rebuilt(engine, shared_data, tmp_path, monkeypatch):
    ingest_file(engine, shared_data / OAI_1995)
    _embed(engine, tmp_path, monkeypatch)
    manifest = next((tmp_path / "data" / "index").glob("*.json"))
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "store": "sqlite:////elsewhere.db"}))
    assert update_store_index(engine, tmp_path / "data" / "index", MODEL) == 436


def _topic_vectors(n: int, seed: int) -> np.ndarray:
    return _shaped(np.random.default_rng(seed), n)


def test_recall_at_100_against_exact_search(tmp_path):
    vectors = _topic_vectors(10_200, seed=11)
    vectors, queries = vectors[:10_000], vectors[10_000:]  # queries of the same kind, not indexed
    ids = np.arange(1, len(vectors) + 1, dtype=np.int64)
    index = VectorIndex(tmp_path, MODEL)
    index.update(ids[:8_000], vectors[:8_000])
    index.update(ids[8_000:], vectors[8_000:])  # a second day, added
    found, sims = VectorIndex(tmp_path, MODEL).nearest(queries, 100)
    exact = ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :100]]
    recall = np.mean([len(set(e.tolist()) & set(f.tolist())) / 100 for e, f in zip(exact, found)])
    print(f"recall@100 vs exact search, 10,000 seeded vectors, 200 queries: {recall:.4f}")
    assert recall >= 0.95
    assert (np.diff(sims, axis=1) <= 1e-6).all()  # best first


def test_the_graph_of_a_large_candidate_set_without_a_store_index_matches_the_exact_one():
    vectors = _topic_vectors(6_000, seed=13)
    ids = np.arange(len(vectors), dtype=np.int64)
    centre = vectors.mean(axis=0).astype(np.float32)
    rows = vectors - centre
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    graph = _graph_from_table(vectors, centre, ids, transient_table(ids, rows), PROPAGATION_K, centred=rows)
    exact = _neighbour_graph(vectors, centre, PROPAGATION_K)
    assert _shared_links(exact, graph) >= 0.95
    same = np.abs(graph.kth - exact.kth) < 1e-4  # each row's k-th nearest cosine, where the propagation links positives
    print(f"rows whose k-th nearest cosine is the exact one: {same.mean():.4f}")
    assert same.mean() >= 0.95


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="the embeddings extra's onnxruntime")
def test_a_process_that_opened_the_index_can_load_the_onnx_embedder_after_it(tmp_path):
    """A worker may build or read the index (an ingest's neighbours, a ranking) before its next job
    loads the ONNX embedder: usearch's wheel, loaded first, made that import kill the process."""
    code = ("import pathlib, sys; import numpy as np; from academichub.rank.neighbours import VectorIndex\n"
            "vectors = np.random.default_rng(1).standard_normal((50, 16)).astype(np.float32)\n"
            "VectorIndex(pathlib.Path(sys.argv[1]), 'm').update(np.arange(50), vectors)\n"
            "import onnxruntime\n"
            "print(len(VectorIndex(pathlib.Path(sys.argv[1]), 'm').nearest(vectors[:1], 1)[0][0]), onnxruntime.get_device())")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.split()) == (0, ["1", "CPU"]), done.stderr[-2000:]
