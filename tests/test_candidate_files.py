"""The candidate columns kept in files (rank/candidate_files.py) on a real store (SQLite, and
PostgreSQL in its pass) with a real recorded day: a set read from the files ranks exactly as one
built from the papers; papers ingested later are appended (only they are read), vectors embedded
later are added; a damaged or foreign file is rebuilt with a log line; two processes that start at
once share one set of files. Vectors come from the seeded embedder of test_neighbours (the same
text always gets the same vector), some papers left without one."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select

from academichub.ingest.pipeline import ingest_file
from academichub.rank import service
from academichub.rank.embeddings import store_vectors
from academichub.rank.candidate_files import candidate_files
from academichub.rank.ranker import Ranker
from academichub.rank.ranker_types import RadarProfile
from academichub.rank.service import CandidateCache, load_docs
from academichub.store.schema import paper_embeddings, papers

from test_neighbours import MODEL, SeededEmbedder

RSS_DAY = "arxiv/rss/2024-11-28-all-archives.xml"  # a real day of arXiv, 1504 items
OAI_1995 = "arxiv/oai-quant-ph/arXiv-meta-1995.xml"


def _embed(engine, *, leave_out: int = 0) -> None:
    """Vectors for every paper but the last `leave_out`, written as the embedding job writes them."""
    embedder = SeededEmbedder()
    with engine.begin() as conn:
        done = set(conn.execute(select(paper_embeddings.c.paper_id).where(paper_embeddings.c.model == MODEL)).scalars())
        rows = conn.execute(select(papers.c.id, papers.c.title, papers.c.abstract).order_by(papers.c.id)).all()
        rows = [r for r in rows[: len(rows) - leave_out] if r[0] not in done]
        if rows:
            store_vectors(conn, MODEL, [r[0] for r in rows], embedder.encode([f"{r[1]}. {r[2] or ''}" for r in rows]))


def _manifest(folder: Path) -> Path:
    return next((folder / "candidates").glob("candidates-" + "?" * 16 + ".json"))


def _fresh(conn, model=MODEL):
    ranker = Ranker()
    return ranker, ranker.candidates(load_docs(conn, model=model))


def _from_files(conn, folder: Path, model=MODEL):
    ranker = Ranker()
    cache = CandidateCache(index_folder=folder)
    return ranker, cache.get(conn, since=None, model=model, ranker=ranker)


def _profile(conn, docs_by_id: dict) -> RadarProfile:
    ids = sorted(docs_by_id)
    seeds = [docs_by_id[i] for i in ids[10:400:40]]
    first = seeds[0]
    return RadarProfile(
        authors={first.author_keys[0]: first.author_names[0]} if first.author_keys else {},
        keywords=["quantum", "neural network"], excludes=["survey"], categories=["quant-ph"],
        interest="entanglement of qubits", seeds=seeds, liked=[docs_by_id[ids[-3]]], dismissed=[docs_by_id[ids[-5]]],
        less_topics=["black hole"],
    )


def _assert_same_columns(a, b) -> None:
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.days, b.days)
    assert (a.emb is None) == (b.emb is None)
    if a.emb is not None:
        assert a.emb.dtype == b.emb.dtype and np.array_equal(a.emb, b.emb)
    assert np.array_equal(a.idf, b.idf)
    assert (a.matrix != b.matrix).nnz == 0 and np.array_equal(np.asarray(a.matrix.data), np.asarray(b.matrix.data))
    for name in ("author_rows", "category_rows", "primary_rows", "venue_rows"):
        left, right = getattr(a, name), getattr(b, name)
        assert set(left) == set(right)
        assert all(np.array_equal(left[k], right.get(k)) for k in left)
    for i in (0, len(a) // 2, len(a) - 1):
        x, y = a.docs[i], b.docs[i]
        assert (x.id, x.title, x.abstract, x.author_keys, x.author_names, x.categories, x.venue, x.day) == \
               (y.id, y.title, y.abstract, y.author_keys, y.author_names, y.categories, y.venue, y.day)
        assert a.folded_text(i) == b.folded_text(i) and a.folded_title(i) == b.folded_title(i)


def _assert_same_ranking(conn, fresh, stored) -> None:
    (r1, cs1), (r2, cs2) = fresh, stored
    cs1.neighbour_source = cs2.neighbour_source  # the same neighbour table (rank/neighbours.py) for both
    profile = _profile(conn, {d.id: d for d in load_docs(conn, model=MODEL)})
    one = r1.rank(profile, cs1, explain=50)  # the per-radar models are fitted with the ranker's seed
    two = r2.rank(profile, cs2, explain=50)
    assert len(one.ids) > 1000
    assert np.array_equal(one.ids, two.ids) and np.array_equal(one.scores, two.scores)
    assert one.reasons == two.reasons and any(one.reasons.values())
    assert np.array_equal(one.tiers, two.tiers) and set(one.tiers.tolist()) >= {1, 0}


def test_the_files_rank_exactly_as_a_set_built_from_the_papers(engine, shared_data, tmp_path):
    ingest_file(engine, shared_data / RSS_DAY)
    _embed(engine, leave_out=7)  # a few papers without a vector: they stand at the others' mean
    folder = tmp_path / "index"
    with engine.connect() as conn:
        fresh, stored = _fresh(conn), _from_files(conn, folder)
        assert stored[1].matrix.data.base is not None  # memory-mapped, not read into memory
        _assert_same_columns(fresh[1], stored[1])
        _assert_same_ranking(conn, fresh, stored)
        # a restart: another process reads the files and writes nothing
        files = candidate_files(folder / "candidates", conn, Ranker().lexical.vectorizer.n_features)
        before = sorted(p.name for p in (folder / "candidates").iterdir())
        writes = files.writes
        _assert_same_ranking(conn, fresh, _from_files(conn, folder))
        assert files.writes == writes and sorted(p.name for p in (folder / "candidates").iterdir()) == before
        # and without embeddings: the text's columns alone
        _assert_same_columns(_fresh(conn, None)[1], _from_files(conn, folder, None)[1])


def test_papers_ingested_later_are_appended_and_vectors_added(engine, shared_data, tmp_path, monkeypatch):
    ingest_file(engine, shared_data / OAI_1995)
    _embed(engine)
    folder = tmp_path / "index"
    with engine.connect() as conn:
        _from_files(conn, folder)
    real = service.load_docs
    read = _counting_load_docs(monkeypatch)
    ingest_file(engine, shared_data / RSS_DAY)
    with engine.connect() as conn:
        total = conn.execute(select(papers.c.id)).all()
        _, cs = _from_files(conn, folder)
        assert read == [len(total) - 436]  # only the new papers were read
        manifest = json.loads(_manifest(folder).read_text())
        assert manifest["generation"] == 2 and manifest["count"] == len(total)
        assert cs.emb is not None  # the new papers stand at the mean until they are embedded
        _embed(engine)  # now they are: only their vectors are read
        stored = _from_files(conn, folder)
        assert json.loads(_manifest(folder).read_text())["generation"] == 3
        assert read == [len(total) - 436]
        monkeypatch.setattr(service, "load_docs", real)
        fresh = _fresh(conn)
        _assert_same_columns(fresh[1], stored[1])
        _assert_same_ranking(conn, fresh, stored)


def _counting_load_docs(monkeypatch) -> list[int]:
    """How many papers each load_docs call of the candidate files read."""
    read: list[int] = []
    real = service.load_docs

    def counting(*args, **kwargs):
        docs = real(*args, **kwargs)
        read.append(len(docs))
        return docs

    monkeypatch.setattr(service, "load_docs", counting)
    return read


def _sizes(n: int, size: int) -> list[int]:
    return [min(size, n - start) for start in range(0, n, size)]


def _file_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "candidates").iterdir()) if not p.name.endswith(".lock")}


def test_the_files_are_written_in_chunks_byte_for_byte_as_in_one(engine, shared_data, tmp_path, monkeypatch):
    """A store written 97 papers at a time (read, hashed, appended): the same files, byte for
    byte, as one written in a single chunk, and the same columns as a set built from the papers."""
    ingest_file(engine, shared_data / OAI_1995)
    ingest_file(engine, shared_data / RSS_DAY)
    _embed(engine, leave_out=3)
    n_features = Ranker().lexical.vectorizer.n_features
    chunked, whole = tmp_path / "chunked", tmp_path / "whole"
    read = _counting_load_docs(monkeypatch)
    with engine.connect() as conn:
        total = len(conn.execute(select(papers.c.id)).all())
        files = candidate_files(chunked / "candidates", conn, n_features)
        files.papers_per_chunk = 97
        stored = _from_files(conn, chunked)
        assert read == _sizes(total, 97) and len(read) > 10  # every chunk read alone
        read.clear()
        files = candidate_files(whole / "candidates", conn, n_features)
        files.papers_per_chunk = total
        _from_files(conn, whole)
        assert read == [total]
        monkeypatch.setattr(service, "load_docs", load_docs)
        _assert_same_columns(_fresh(conn)[1], stored[1])
    assert _file_bytes(chunked) == _file_bytes(whole) and len(_file_bytes(chunked)) == 33


def test_an_append_in_chunks_gives_the_files_of_a_fresh_build(engine, shared_data, tmp_path, monkeypatch):
    ingest_file(engine, shared_data / OAI_1995)
    n_features = Ranker().lexical.vectorizer.n_features
    appended, fresh = tmp_path / "appended", tmp_path / "fresh"
    with engine.connect() as conn:
        candidate_files(appended / "candidates", conn, n_features).papers_per_chunk = 50
        _from_files(conn, appended, None)
    ingest_file(engine, shared_data / RSS_DAY)
    read = _counting_load_docs(monkeypatch)
    with engine.connect() as conn:
        new = len(conn.execute(select(papers.c.id)).all()) - 436
        stored = _from_files(conn, appended, None)
        assert read == _sizes(new, 50) and len(read) > 10  # only the new papers, a chunk at a time
        assert json.loads(_manifest(appended).read_text())["generation"] == 2
        _from_files(conn, fresh, None)
        monkeypatch.setattr(service, "load_docs", load_docs)
        _assert_same_columns(_fresh(conn, None)[1], stored[1])
    # generation 2 appended, generation 1 written at once: the same columns, byte for byte
    rename = {name.replace("-2.", "-1."): data for name, data in _file_bytes(appended).items()}
    assert rename.keys() == _file_bytes(fresh).keys()
    assert {k for k in rename if rename[k] != _file_bytes(fresh)[k] and not k.endswith(".json")} == set()


@pytest.mark.parametrize("damage", ["corrupt", "missing", "manifest", "foreign"])
def test_a_damaged_or_foreign_file_is_rebuilt_with_a_log_line(engine, shared_data, tmp_path, caplog, damage):
    ingest_file(engine, shared_data / OAI_1995)
    _embed(engine)
    folder = tmp_path / "index"
    with engine.connect() as conn:
        _from_files(conn, folder)
    files = folder / "candidates"
    manifest = _manifest(folder)
    if damage == "corrupt":
        next(files.glob("*.weighted.data.npy")).write_bytes(b"not numpy" * 10)
    elif damage == "missing":
        next(files.glob("*.ids.npy")).unlink()
    elif damage == "manifest":
        manifest.write_text("{", encoding="utf-8")
    else:
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "store": "sqlite:////elsewhere.db"}))
    caplog.set_level(logging.INFO, logger="academichub.rank.candidate_files")
    with engine.connect() as conn:
        stored = _from_files(conn, folder)
        _assert_same_columns(_fresh(conn)[1], stored[1])
    messages = [r.getMessage() for r in caplog.records]
    said = {"corrupt": "cannot be read (", "missing": "cannot be read (", "manifest": "unreadable manifest",
            "foreign": "made for another store"}[damage]
    assert any(m.startswith(f"candidate columns {manifest}: {said}") for m in messages), messages
    assert f"candidate columns {manifest}: building them from 436 stored papers" in messages


def test_a_deleted_paper_rebuilds_the_files(engine, shared_data, tmp_path, caplog):
    ingest_file(engine, shared_data / OAI_1995)
    folder = tmp_path / "index"
    with engine.connect() as conn:
        _from_files(conn, folder, None)
    with engine.begin() as conn:
        first = conn.execute(select(papers.c.id).order_by(papers.c.id).limit(1)).scalar_one()
        conn.execute(delete(papers).where(papers.c.id == first))
    caplog.set_level(logging.INFO, logger="academichub.rank.candidate_files")
    with engine.connect() as conn:
        _assert_same_columns(_fresh(conn, None)[1], _from_files(conn, folder, None)[1])
    assert any("papers were changed or removed; rebuilding them" in r.getMessage() for r in caplog.records)


_PROCESS = """
import sys
from pathlib import Path
from academichub.rank.ranker import Ranker
from academichub.rank.service import CandidateCache
from academichub.store.database import open_store
engine = open_store(sys.argv[1])
ranker = Ranker()
with engine.connect() as conn:
    cs = CandidateCache(index_folder=Path(sys.argv[2])).get(conn, since=None, model=sys.argv[3], ranker=ranker)
    print(len(cs), int(cs.ids.sum()), float(cs.matrix.sum()), float(cs.emb.sum()))
"""


def test_two_processes_that_start_at_once_share_the_files(engine, database_url, shared_data, tmp_path):
    ingest_file(engine, shared_data / RSS_DAY)
    _embed(engine)
    folder = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    runs = [subprocess.Popen([sys.executable, "-c", _PROCESS, database_url, str(folder), MODEL], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err for _, err in outputs]
    assert outputs[0][0] == outputs[1][0] and outputs[0][0].strip()
    manifest = json.loads(_manifest(folder).read_text())
    assert manifest["generation"] == 1  # written once: the second process waited, then read
    with engine.connect() as conn:
        _, fresh = _fresh(conn)
        _, stored = _from_files(conn, folder)
    assert outputs[0][0].split()[:2] == [str(len(fresh)), str(int(fresh.ids.sum()))]
    _assert_same_columns(fresh, stored)
