"""Embeddings of the benchmark's documents, computed once and kept in an npz file per embedder
configuration (keyed by the SHA-1 of each text), so reruns only embed what is new."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .datasets import Doc


def default_cache_dir() -> Path:
    import platformdirs

    return Path(os.environ.get("ACADEMICHUB_BENCH_CACHE") or platformdirs.user_cache_dir("academichub")) / "relevance"


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def cached_vectors(texts: Sequence[str], embedder, label: str, cache_dir: Path,
                   batch_size: int = 32, log=print) -> tuple[np.ndarray, float]:
    """Vectors for `texts` (rows L2-normalised), and the seconds spent encoding new ones."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    path = cache_dir / f"{slug}.npz"
    known: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as data:
            known = dict(zip(data["keys"].tolist(), data["vectors"]))
    keys = [_key(t) for t in texts]
    todo = sorted({k: t for k, t in zip(keys, texts) if k not in known}.items())
    spent = 0.0
    if todo:
        log(f"embedding {len(todo)} texts with {label} (cache: {path})")
        start = time.perf_counter()
        vectors = embedder.encode([t for _, t in todo], batch_size=batch_size)
        spent = time.perf_counter() - start
        log(f"  {len(todo) / spent:.1f} texts/s")
        known.update({k: v for (k, _), v in zip(todo, vectors)})
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".npz")
        os.close(fd)
        np.savez(tmp, keys=np.array(list(known)), vectors=np.vstack(list(known.values())).astype(np.float32))
        os.replace(tmp, path)
    return np.vstack([known[k] for k in keys]).astype(np.float32), spent


def embed_docs(docs: Sequence[Doc], embedder, label: str, cache_dir: Path, log=print) -> float:
    """Fill each doc's `embedding`; returns the seconds spent encoding."""
    unique = {id(d): d for d in docs}.values()
    unique = list(unique)
    matrix, spent = cached_vectors([d.text for d in unique], embedder, label, cache_dir, log=log)
    for d, v in zip(unique, matrix):
        d.embedding = v
    return spent
