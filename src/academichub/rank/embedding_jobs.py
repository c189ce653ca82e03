"""Vectors for what was stored, wherever it was stored, and saying so when they are missing.

Every path that stores papers (`ingest`, `sources run`, `papers import`, `radar seed`, a library
uploaded on the web, the sample day loaded at start-up) ends with `embed_new_papers`: a ranking
over papers of which some have no vector falls back to text and rules for all of them, and a user
would not know to run `academichub embed`. Where a page is waiting, `embed_in_background` runs the
same job in a thread (one per store at a time; a request made while it runs makes it go round once
more), so the job queue to come can call `embed_new_papers` as it is. `vector_gap` is what `rank`
and the radar pages read to say that vectors are missing instead of ranking worse in silence."""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.engine import Connection, Engine

    from ..settings import Settings

log = logging.getLogger(__name__)

# What the embeddings extra brings (pyproject's [embeddings]); looked up, never imported here.
_EXTRA_MODULES = ("torch", "sentence_transformers", "onnxruntime")


def embed_new_papers(engine: "Engine", settings: "Settings", *,
                     progress: Callable[[int, int], None] | None = None) -> int:
    """Embed every stored paper that has no vector of the configured model; how many were embedded.
    Without the embeddings extra nothing happens (0). The job the future queue calls."""
    from .embeddings import EmbeddingsUnavailable, configured_embedder, embed_missing

    from .neighbours import update_store_index

    try:
        embedder = configured_embedder(settings, engine)
    except EmbeddingsUnavailable:
        return 0
    done = embed_missing(engine, embedder, progress=progress)
    update_store_index(engine, settings.data_dir / "index", embedder.name)  # the new vectors into the neighbour index
    return done


class _Background:
    """One store's background run: its thread, and whether another round was asked for."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.again = False


_RUNS: dict[str, _Background] = {}
_RUNS_LOCK = threading.Lock()


def _store_key(engine: "Engine") -> str:
    return engine.url.render_as_string(hide_password=False)


def embed_in_background(engine: "Engine", settings: "Settings") -> threading.Thread:
    """Run `embed_new_papers` in a daemon thread and return at once (the thread, to join if one
    must). While a run is going on for this store, no second one starts: the running one goes
    round once more, so papers stored meanwhile are embedded too."""
    key = _store_key(engine)
    with _RUNS_LOCK:
        run = _RUNS.setdefault(key, _Background())
        run.again = True
        if run.thread is None:
            run.thread = threading.Thread(target=_rounds, args=(engine, settings, run), daemon=True,
                                          name="academichub-embed")
            run.thread.start()
        return run.thread


def _rounds(engine: "Engine", settings: "Settings", run: _Background) -> None:
    while True:
        with _RUNS_LOCK:
            if not run.again:
                run.thread = None
                return
            run.again = False
        try:
            done = embed_new_papers(engine, settings)
            if done:
                log.info("embedded %d papers", done)
        except Exception:  # noqa: BLE001 - a background job logs; the papers are stored either way
            log.exception("embedding stored papers failed")


def embedding_in_background(engine: "Engine") -> bool:
    """Whether a background run is embedding this store's papers now."""
    with _RUNS_LOCK:
        run = _RUNS.get(_store_key(engine))
        return run is not None and run.thread is not None


def wait_for_background_embedding(engine: "Engine") -> None:
    """Until this store's background run (if any) has finished every round."""
    while True:
        with _RUNS_LOCK:
            run = _RUNS.get(_store_key(engine))
            thread = run.thread if run is not None else None
        if thread is None:
            return
        thread.join()


def embeddings_installed() -> bool:
    """Whether the embeddings extra is installed (looked up without importing torch)."""
    return all(importlib.util.find_spec(name) is not None for name in _EXTRA_MODULES)


@dataclass(frozen=True, slots=True)
class VectorGap:
    """Papers a ranking would read that have no vector: with any missing, it ranks on text."""

    missing: int
    total: int
    embedding: bool  # a background run is embedding them now


def vector_gap(conn: "Connection", settings: "Settings", *, since: date | None = None) -> VectorGap | None:
    """Papers (announced or published since `since`, else all) without a vector of the
    configured model, when the embeddings extra is installed; None when none is missing or the
    extra is not installed (then ranking on text and rules is all there is, and not news)."""
    from sqlalchemy import text

    from .embeddings import EmbeddingsUnavailable, _resolve

    if not embeddings_installed():
        return None
    try:
        model = _resolve(settings.embedding_model)[0]
    except EmbeddingsUnavailable:
        return None
    window = ""
    params: dict = {"model": model}
    if since is not None:
        window = " WHERE (p.announced_on >= :since OR p.published_on >= :since)"
        params["since"] = since
    total, missing = conn.execute(text(
        "SELECT count(*), count(*) - count(e.paper_id) FROM papers p LEFT JOIN paper_embeddings e "
        f"ON e.paper_id = p.id AND e.model = :model{window}"
    ), params).one()
    if not missing:
        return None
    return VectorGap(int(missing), int(total), embedding_in_background(conn.engine))


__all__ = [
    "VectorGap",
    "embed_in_background",
    "embed_new_papers",
    "embedding_in_background",
    "embeddings_installed",
    "vector_gap",
    "wait_for_background_embedding",
]
