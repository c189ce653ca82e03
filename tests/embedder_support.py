"""The packaged embedding model as the tests load it: offline (tests never reach the network), on
the CPU, with its files under a per-session temporary folder."""

from __future__ import annotations

from contextlib import contextmanager

import pytest


@contextmanager
def offline_embedder(tmp_path_factory, **options):
    from academichub.rank.embeddings import load_embedder

    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    try:
        yield load_embedder(device="cpu", cache_dir=tmp_path_factory.mktemp("models"), **options)
    finally:
        mp.undo()
