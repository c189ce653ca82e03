"""Sentence embeddings: the packaged model offline, and vectors in and out of the store.
Skipped when the optional `embeddings` extra is not installed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("onnxruntime")

from academichub.errors import AcademicHubError  # noqa: E402
from academichub.ingest.pipeline import store_records  # noqa: E402
from academichub.model import PaperData  # noqa: E402
from academichub.rank import embeddings as E  # noqa: E402
from embedder_support import offline_embedder  # noqa: E402

TRANSFORMER = (
    "We propose a transformer architecture for image classification that splits an image into "
    "patches and processes them with self-attention, reaching state-of-the-art accuracy on ImageNet."
)
TRANSFORMER_AGAIN = (
    "A transformer architecture for image classification is proposed: the image is split into "
    "patches processed by self-attention, with state-of-the-art accuracy on ImageNet."
)
GALAXIES = (
    "We measure the stellar mass function of galaxies at redshift two with deep near-infrared "
    "imaging and find that massive galaxies assembled early."
)
GRAPHS = "We prove a lower bound on the chromatic number of random regular graphs of high degree."


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    """The default CPU embedder (the fast path), built offline from the packaged weights."""
    with offline_embedder(tmp_path_factory) as loaded:
        yield loaded


def test_core_imports_without_torch():
    code = "import sys, academichub.rank.embeddings; print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_packaged_model_loads_offline_with_unit_vectors(embedder):
    assert embedder.name == "all-MiniLM-L6-v2"
    assert embedder.dim == 384
    vectors = embedder.encode([TRANSFORMER, GALAXIES, ""])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_near_identical_abstracts_score_higher_than_unrelated(embedder):
    a, b, c, d = embedder.encode([TRANSFORMER, TRANSFORMER_AGAIN, GALAXIES, GRAPHS])
    assert a @ b > 0.8
    assert a @ b > a @ c + 0.4
    assert a @ b > a @ d + 0.4


def test_fast_path_agrees_with_sentence_transformers(embedder):
    reference = E.load_embedder(device="cpu", backend="torch")
    texts = [TRANSFORMER, GALAXIES, GRAPHS]
    cosines = np.sum(embedder.encode(texts) * reference.encode(texts), axis=1)
    assert cosines.min() > 0.95


def test_rows_follow_the_texts_whatever_the_batching(embedder):
    texts = [GRAPHS, TRANSFORMER, GALAXIES, TRANSFORMER_AGAIN] * 10  # several batches, sorted inside
    forward = embedder.encode(texts, batch_size=4)
    backward = embedder.encode(texts[::-1], batch_size=4)[::-1]
    alone = embedder.encode([GALAXIES])[0]
    # int8 activations are scaled per batch, so batch-mates move a vector a little, never far
    assert np.sum(forward * backward, axis=1).min() > 0.99
    assert forward[2] @ alone > 0.995 and forward[1] @ alone < 0.5


def _papers(n: int) -> list[PaperData]:
    abstracts = [TRANSFORMER, GALAXIES, GRAPHS, TRANSFORMER_AGAIN, ""]
    return [
        PaperData(source="arxiv-rss", source_id=f"2411.{17700 + i}v1", title=f"Paper {i}",
                  abstract=abstracts[i % len(abstracts)], arxiv_id=f"2411.{17700 + i}", arxiv_version=1)
        for i in range(n)
    ]


def test_embed_missing_stores_one_vector_per_paper_once(engine, embedder):
    store_records(engine, _papers(7))
    progress = []
    assert E.embed_missing(engine, embedder, batch_size=3, progress=lambda done, total: progress.append((done, total))) == 7
    assert progress == [(3, 7), (6, 7), (7, 7)]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT paper_id, model, dim, length(vector) FROM paper_embeddings").all()
    assert len(rows) == 7
    assert {r[1] for r in rows} == {"all-MiniLM-L6-v2"}
    assert {(r[2], r[3]) for r in rows} == {(384, 384 * 2)}  # float16
    assert E.embed_missing(engine, embedder) == 0
    store_records(engine, _papers(9))  # two new papers
    assert E.embed_missing(engine, embedder) == 2


def test_load_vectors_round_trips(engine, embedder):
    store_records(engine, _papers(5))
    E.embed_missing(engine, embedder)
    with engine.connect() as conn:
        texts = {pid: E.paper_text(t, a) for pid, t, a in conn.exec_driver_sql("SELECT id, title, abstract FROM papers")}
        ids, matrix = E.load_vectors(conn, embedder.name)
        assert ids.dtype == np.int64 and matrix.dtype == np.float32
        assert ids.tolist() == sorted(texts)
        expected = embedder.encode([texts[i] for i in ids.tolist()])
        np.testing.assert_allclose(matrix, expected, atol=2e-3)  # float16 in the store
        np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
        some, part = E.load_vectors(conn, embedder.name, [ids[3], ids[1], 10**9])
        assert some.tolist() == [ids[1], ids[3]]
        np.testing.assert_array_equal(part, matrix[[1, 3]])
        none, empty = E.load_vectors(conn, "another-model")
        assert none.shape == (0,) and empty.shape[0] == 0


def test_load_vectors_many_ids_filters_one_scan(engine):
    store_records(engine, _papers(3))
    with engine.begin() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM papers ORDER BY id")]
        E.store_vectors(conn, "toy", ids, np.eye(3, 4, dtype=np.float32))
    with engine.connect() as conn:
        wanted = [ids[0], ids[2], *range(10**6, 10**6 + 2000)]  # more than one IN list
        got, matrix = E.load_vectors(conn, "toy", wanted)
    assert got.tolist() == [ids[0], ids[2]]
    np.testing.assert_array_equal(matrix, np.eye(3, 4, dtype=np.float32)[[0, 2]])


def test_missing_dependency_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    with pytest.raises(E.EmbeddingsUnavailable, match=r"academichub\[embeddings\]"):
        E.load_embedder(device="cpu", backend="torch")
    assert issubclass(E.EmbeddingsUnavailable, AcademicHubError)


def test_unknown_backend_is_refused():
    with pytest.raises(E.EmbeddingsUnavailable, match="unknown embedding backend"):
        E.load_embedder(device="cpu", backend="tpu")


# ----------------------------------------------------------------------------- the GPU backend
# `torch-fp16` runs float32 on a CPU: the same pipeline (chunked tokenizing ahead in threads,
# length-sorted token-budget batches, pooling on the device), checked here without a GPU.


@pytest.fixture(scope="module")
def pipelined():
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        yield E.load_embedder(device="cpu", backend="torch-fp16")
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def day_texts():
    """The 1,504 abstracts of the packaged arXiv day (real text, the sample the product ships)."""
    from importlib.resources import files

    from academichub.sources.arxiv_rss import parse_rss

    sample = files("academichub") / "data" / "sample" / "2024-11-28-all-archives.xml"
    return [E.paper_text(p.title, p.abstract) for p in parse_rss(sample.read_bytes(), str(sample)).papers]


def test_pipelined_backend_equals_sentence_transformers(pipelined, day_texts):
    assert isinstance(pipelined, E.PipelinedTorchEmbedder)
    assert pipelined.config == "torch-float32-pipelined@128"
    reference = E.load_embedder(device="cpu", backend="torch")  # sentence-transformers at 128 tokens
    texts = [TRANSFORMER, GALAXIES, GRAPHS, *day_texts[:13]]
    cosines = np.sum(pipelined.encode(texts) * reference.encode(texts), axis=1)
    assert cosines.min() > 0.9999


def test_pipelined_rows_follow_the_texts_across_chunks_and_batches(pipelined, day_texts, monkeypatch):
    texts = day_texts[:40] + [""]
    whole = pipelined.encode(texts)
    monkeypatch.setattr(pipelined, "CHUNK", 7)  # six chunks, two tokenizing ahead
    monkeypatch.setattr(pipelined, "TOKENS_PER_BATCH", 300)  # two or three texts a batch
    pieces = pipelined.encode(texts[::-1])[::-1]
    np.testing.assert_allclose(pieces, whole, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)
    assert pipelined.encode([]).shape == (0, 384)


def test_cut_texts_tokenize_as_the_whole_texts(pipelined, day_texts):
    """Cutting abstracts shortly beyond the window must not change one token id; a text of long
    words (fewer tokens per character than the cut assumes) and one with no space are
    tokenized again whole."""
    from tokenizers import Tokenizer

    assert pipelined._cut_chars == 800
    long_words = "Hamiltonians " * 120  # 1 token per 13 characters: 800 characters give 63 tokens
    texts = [*day_texts, long_words, "x" * 5000, "short"]
    flat, lengths, order = pipelined._tokenize(texts)
    whole = Tokenizer.from_str(pipelined.tokenizer.to_str())
    whole.no_truncation()
    expected = [e.ids[:127] + [e.ids[-1]] if len(e.ids) > 128 else e.ids for e in whole.encode_batch(texts)]
    assert lengths.tolist() == [len(ids) for ids in expected]
    assert flat.tolist() == [i for ids in expected for i in ids]
    assert sum(1 for t in day_texts if len(t) > 800) > 700  # the cut is exercised, not skipped
    assert lengths[-3] == 128  # the long-word text got its full window back
    assert lengths[order].tolist() == sorted(lengths.tolist(), reverse=True)


def test_embed_missing_commits_the_backends_own_batch(engine, pipelined, monkeypatch):
    monkeypatch.setattr(pipelined, "PAPERS_PER_TRANSACTION", 4)
    store_records(engine, _papers(7))
    progress = []
    assert E.embed_missing(engine, pipelined, progress=lambda done, total: progress.append((done, total))) == 7
    assert progress == [(4, 7), (7, 7)]


def test_embed_missing_keeps_the_batches_written_before_a_failure(engine, embedder):
    """Reading and writing run beside the encoder: a failure keeps every batch encoded before it,
    and the next run embeds only the rest."""

    class FailsOnThirdBatch:
        name, dim = embedder.name, embedder.dim

        def __init__(self):
            self.calls = 0

        def encode(self, texts, batch_size=32):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("out of memory")
            return embedder.encode(texts)

    store_records(engine, _papers(7))
    with pytest.raises(RuntimeError, match="out of memory"):
        E.embed_missing(engine, FailsOnThirdBatch(), batch_size=2)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM paper_embeddings").scalar() == 4
    assert E.embed_missing(engine, embedder, batch_size=2) == 3


def test_pipelined_backend_halves_its_batches_when_memory_runs_out(pipelined, day_texts, monkeypatch):
    import torch

    texts = day_texts[:24]
    expected = pipelined.encode(texts)
    model = pipelined.model
    real_forward = model.forward
    sizes = []

    def small_card(*args, **kwargs):  # a card that holds 5 texts at a time
        rows = kwargs["input_ids"].shape[0]
        sizes.append(rows)
        if rows > 5:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", small_card)
    monkeypatch.setattr(pipelined, "TOKENS_PER_BATCH", 128 * 24)
    got = pipelined.encode(texts, batch_size=1)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert pipelined.TOKENS_PER_BATCH < 128 * 24  # later batches start smaller
    assert sizes[0] == 24 and max(sizes[1:]) <= 12
    monkeypatch.setattr(model, "forward", lambda *a, **k: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("none fits")))
    with pytest.raises(E.EmbeddingsUnavailable, match="out of memory embedding a single text"):
        pipelined.encode(texts[:2], batch_size=1)


def test_embed_refresh_embeds_every_paper_again_at_the_configured_length(engine, embedder, database_url, monkeypatch):
    from typer.testing import CliRunner

    from academichub.cli import app
    from academichub.settings import load_settings

    asked = []

    def configured(settings, engine=None):
        asked.append((settings.embedding_model, settings.embedding_max_tokens))
        return embedder

    monkeypatch.setattr(E, "configured_embedder", configured)
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    store_records(engine, _papers(5))
    runner = CliRunner()
    first = runner.invoke(app, ["embed"])
    assert first.exit_code == 0 and "embedded 5 papers" in first.output, first.output
    assert runner.invoke(app, ["embed"]).output.strip().endswith("embedded 0 papers")
    again = runner.invoke(app, ["embed", "--embedding-max-tokens", "256", "--refresh"])
    assert again.exit_code == 0 and "embedded 5 papers" in again.output, again.output
    assert asked[-1] == ("all-MiniLM-L6-v2", 256) and asked[0] == ("all-MiniLM-L6-v2", None)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM paper_embeddings").scalar() == 5
    monkeypatch.setenv("ACADEMICHUB_EMBEDDING_MAX_TOKENS", "64")
    assert load_settings().embedding_max_tokens == 64


def test_the_cpu_window_is_measured_once_per_machine_192_where_fast_enough(monkeypatch, tmp_path):
    """The default model's window: 128 on a GPU and for a named backend; under "fast" on a CPU,
    192 where this machine embeds >= WIDE_WINDOW_RATE abstracts/s at 192 tokens, else 128,
    measured once and remembered in the models folder."""
    import json

    loaded = []

    class Loaded:
        def __init__(self, window):
            self.max_seq_length = window

    def fake_torch(name, source, device, *, precision, max_seq_length):
        loaded.append(("torch-" + precision, max_seq_length))
        return Loaded(max_seq_length)

    def fake_onnx(name, source, local, *, quantized, max_seq_length, cache_dir):
        loaded.append(("onnx-int8" if quantized else "onnx", max_seq_length))
        return Loaded(max_seq_length)

    measured = []
    rates = iter([E.WIDE_WINDOW_RATE + 20, E.WIDE_WINDOW_RATE - 30])  # an AMX machine, then a slower one
    monkeypatch.setattr(E, "_load_torch", fake_torch)
    monkeypatch.setattr(E, "_load_onnx", fake_onnx)
    monkeypatch.setattr(E, "measure_rate", lambda embedder: measured.append(embedder.max_seq_length) or next(rates))
    for amx in (True, False):
        models = tmp_path / f"models-{amx}"
        monkeypatch.setattr(E, "cpu_has", lambda flag, amx=amx: amx and flag == "amx_bf16")
        assert E.load_embedder(device="cpu", cache_dir=models).max_seq_length == (192 if amx else 128)
        assert E.load_embedder(device="cpu", cache_dir=models).max_seq_length == (192 if amx else 128)  # remembered
        E.load_embedder(device="cpu", backend="torch", cache_dir=models)  # named: the window every backend shares
        E.load_embedder(device="cpu", max_seq_length=256, cache_dir=models)
        record = json.loads((models / "cpu-window.json").read_text())
        assert [r["window"] for r in record.values()] == [192 if amx else 128]
    E.load_embedder(device="cuda")
    E.load_embedder("some/other-model", device="cpu")  # another model: its own limit
    assert measured == [192, 192]  # once per machine, at the wide window
    assert loaded == [
        ("torch-bf16", 192), ("torch-bf16", 192), ("torch-fp32", 128), ("torch-bf16", 256),
        ("onnx-int8", 192), ("onnx-int8", 128), ("onnx-int8", 128), ("torch-fp32", 128), ("onnx-int8", 256),
        ("torch-fp16", 128), ("onnx-int8", None),
    ]


def test_the_calibration_reads_real_abstracts(embedder):
    """The speed is taken on the packaged day's abstracts (their lengths are what the length
    bucketing sees), so it is a rate a real day gets."""
    seen = []

    class Counting:
        def encode(self, texts, batch_size=32):
            seen.append(len(texts))
            return embedder.encode(texts[:1])

    assert E.measure_rate(Counting(), count=40) > 0
    assert seen == [16, 40, 40]


def test_a_store_keeps_the_window_its_vectors_were_made_with(engine, embedder, monkeypatch):
    """Vectors record their window; with embedding_max_tokens unset an embedder follows the store
    (a store filled on a GPU at 128 tokens stays at 128 on an AMX CPU that would read 192), and an
    embedder set to another window is refused before it writes a single vector."""
    from academichub.settings import Settings

    store_records(engine, _papers(4))
    assert E.embed_missing(engine, embedder) == 4
    window = embedder.max_seq_length
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT DISTINCT tokens FROM paper_embeddings").scalars().all() == [window]
        assert E.store_window(conn, embedder.name) == window
        assert E.store_window(conn, "another-model") is None

    asked = []
    monkeypatch.setattr(E, "load_embedder", lambda model, max_seq_length=None: asked.append(max_seq_length))
    E.configured_embedder(Settings(), engine)
    with engine.connect() as conn:  # as `academichub rank` asks, a connection already open
        E.configured_embedder(Settings(), conn.engine)
    E.configured_embedder(Settings(embedding_max_tokens=64), engine)  # set: the setting wins
    E.configured_embedder(Settings())  # no store: the machine's default
    assert asked == [window, window, 64, None]

    class OtherWindow:
        name, dim, max_seq_length = embedder.name, embedder.dim, window + 64

        def encode(self, texts, batch_size=32):
            raise AssertionError("nothing may be encoded")

    store_records(engine, _papers(6))  # two papers without a vector
    with pytest.raises(E.WindowMismatch, match=f"read {window} tokens.*--embedding-max-tokens {window + 64}"):
        E.embed_missing(engine, OtherWindow())
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM paper_embeddings").scalar() == 4


def test_an_ingest_warns_and_keeps_its_papers_when_the_window_differs(engine, monkeypatch, capsys):
    """After an ingest the embedding step is a courtesy: a window conflict is a warning there (the
    papers are stored), and an error from `academichub embed`, which was asked to embed."""
    from academichub import cli
    from academichub.settings import Settings

    store_records(engine, _papers(2))
    with engine.begin() as conn:
        first = conn.exec_driver_sql("SELECT min(id) FROM papers").scalar()
        E.store_vectors(conn, "toy", [first], np.eye(1, 4, dtype=np.float32), tokens=128)

    class Toy:
        name, dim, max_seq_length = "toy", 4, 256

        def encode(self, texts, batch_size=32):
            raise AssertionError("nothing may be encoded")

    monkeypatch.setattr(E, "configured_embedder", lambda settings, engine=None: Toy())
    assert cli._embed_missing(engine, Settings(), required=False) == 0
    assert "not embedded: the stored vectors of toy read 128 tokens" in capsys.readouterr().err
    with pytest.raises(E.WindowMismatch):
        cli._embed_missing(engine, Settings(), required=True)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM papers").scalar() == 2
        assert conn.exec_driver_sql("SELECT count(*) FROM paper_embeddings").scalar() == 1


def test_vectors_stored_before_the_window_was_recorded_read_as_128_tokens(engine):
    """Migration 0004 leaves the window of older vectors empty: for the default model they were
    all made at 128 tokens (the only default then); for another model the window is unknown."""
    store_records(engine, _papers(2))
    with engine.begin() as conn:
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM papers ORDER BY id")]
        E.store_vectors(conn, E.DEFAULT_MODEL, ids, np.eye(2, 4, dtype=np.float32))
        E.store_vectors(conn, "toy", ids, np.eye(2, 4, dtype=np.float32))
    with engine.connect() as conn:
        assert E.store_window(conn, E.DEFAULT_MODEL) == 128
        assert E.store_window(conn, "toy") is None


def test_auto_on_a_gpu_falls_back_to_plain_torch_for_models_it_cannot_pool(monkeypatch):
    """A model that is not Transformer + mean/CLS pooling runs through sentence-transformers
    itself when the backend was chosen automatically; asked for by name, the refusal stands."""
    real_load = E._load_sentence_transformer
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(E, "_load_sentence_transformer", lambda source, device: real_load(source, "cpu"))

    def cannot_pool(name, source, device, *, max_seq_length):
        raise E._NotPipelinable(f"{source}: only Transformer + mean/CLS Pooling models run on the pipelined backend")

    monkeypatch.setattr(E, "_load_pipelined", cannot_pool)
    chosen = E.load_embedder(device="cuda")
    assert isinstance(chosen, E.SentenceTransformerEmbedder) and chosen.precision == "fp32"
    with pytest.raises(E.EmbeddingsUnavailable, match="pipelined backend"):
        E.load_embedder(device="cuda", backend="torch-fp16")
