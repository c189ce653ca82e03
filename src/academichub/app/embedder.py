"""Which embedding model a ranking reads, and the statement embedder that goes with it: loaded once
per process and kept (loading a model takes seconds), so every radar page, briefing and CLI
command of a process shares one. Without the embeddings extra, or before any vector is stored,
there is none and the ranker works on text and rules alone."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from ..errors import AcademicHubError
from ..settings import Settings
from ..store.papers import any_vectors, count_vectors

Embed = Callable[[str], Any]

log = logging.getLogger(__name__)


def quiet_load(load, what):
    """Model libraries draw their own progress bars on stdout; a command's output must stay clean."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return load(what)


def load_configured_embedder(settings: Settings, engine=None):
    """The configured embedder (see rank.embeddings.configured_embedder), loaded quietly; raises
    AcademicHubError (EmbeddingsUnavailable) without the extra."""
    from ..rank.embeddings import configured_embedder

    return quiet_load(lambda s: configured_embedder(s, engine), settings)


def embedding_for(conn, settings: Settings, embedder=None) -> tuple[str | None, Embed | None]:
    """The model whose stored vectors to use, and a statement embedder, when the extra is installed
    and vectors exist; otherwise (None, None) and the ranker works on text and rules alone.
    `embedder`: one already loaded (else it is loaded here)."""
    if not any_vectors(conn):
        return None, None  # nothing embedded yet: no model to load
    if embedder is None:
        try:
            embedder = load_configured_embedder(settings, conn.engine)
        except AcademicHubError:
            return None, None
    if not count_vectors(conn, embedder.name):
        return None, None
    return embedder.name, StatementVectors(embedder)


STATEMENTS_KEPT = 256


class StatementVectors:
    """A statement embedder that remembers: vectors by (model, hash of the text), the least
    recently used dropped beyond STATEMENTS_KEPT. A radar's statement is embedded once per process
    and model, not on every ranking (it was 61% of a radar page's time under load)."""

    def __init__(self, embedder, size: int = STATEMENTS_KEPT):
        from collections import OrderedDict

        self.embedder, self.size = embedder, size
        self._vectors: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.embedded = 0  # texts actually embedded (a test reads it)

    def __call__(self, text: str):
        import hashlib

        key = (self.embedder.name, hashlib.sha256(text.encode("utf-8")).hexdigest())
        with self._lock:
            if key in self._vectors:
                self._vectors.move_to_end(key)
                return self._vectors[key]
        vector = self.embedder.encode([text])[0]
        if vector is None:  # a model that could not be loaded: nothing to keep
            return None
        with self._lock:
            self.embedded += 1
            self._vectors[key] = vector
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        return vector


class Embeddings:
    """embedding_for, remembered: a found embedder is kept for the life of the process, and "none"
    is asked again only when the number of stored vectors changes. Call it with a connection.

    The model is not loaded to name it: when the store holds vectors under the configured model's
    name and the extra is installed, the ranking reads those vectors at once and the model (torch,
    seconds of a start) is loaded on the first statement to embed, so ranking a radar without an
    interest statement never loads it. Otherwise (another name in the store) it is loaded to ask."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._found: tuple[str | None, Embed | None] | None = None
        self._embedder = None  # the loaded model, also used to embed new papers
        self._none_at: int | None = None  # how many vectors were stored when there was none to use
        self._lock = threading.RLock()

    def __call__(self, conn) -> tuple[str | None, Embed | None]:
        if self._found is not None:
            return self._found
        stored = count_vectors(conn)
        if stored == self._none_at:
            return None, None
        with self._lock:
            if self._found is not None:
                return self._found
            model, embed = None, None
            if self._embedder is None and stored:
                model = self._unloaded_model(conn)
                if model is not None:
                    embed = StatementVectors(_LoadedOnUse(self, conn.engine, model))
                else:
                    try:
                        self._embedder = load_configured_embedder(self.settings, conn.engine)
                    except AcademicHubError:
                        pass  # no extra: ranked on text and rules
            if model is None and self._embedder is not None:
                model, embed = embedding_for(conn, self.settings, self._embedder)
            if model is not None:
                self._found = (model, embed)
            else:
                self._none_at = stored
            return model, embed

    def _unloaded_model(self, conn) -> str | None:
        """The configured model's name when the store holds its vectors and the extra is installed."""
        from ..rank.embedding_jobs import embeddings_installed
        from ..rank.embeddings import model_name

        try:
            name = model_name(self.settings.embedding_model)
        except AcademicHubError:
            return None
        return name if embeddings_installed() and count_vectors(conn, name) else None

    def load_later(self, engine, *, after: threading.Thread | None = None) -> threading.Thread:
        """Load the model in a daemon thread once `after` (the server's warm-up) is done, when the
        store holds its vectors: a serving process's first search or statement then finds it
        loaded, as when naming the model loaded it. A command that only ranks never calls this."""

        def load() -> None:
            if after is not None:
                after.join()
            try:
                with engine.connect() as conn:
                    if self._unloaded_model(conn) is None:
                        return
                self.embedder(engine)
            except Exception as exc:  # noqa: BLE001 - the first statement to embed tries again
                log.info("the embedding model was not loaded ahead (%s)", exc)

        thread = threading.Thread(target=load, name="embedder load", daemon=True)
        thread.start()
        return thread

    def embedder(self, engine, *, fresh_window: bool = False):
        """The configured embedder, loaded once (AcademicHubError without the extra). With
        `fresh_window` (a refresh of every vector) the store's window is not read and the model
        is loaded anew."""
        if fresh_window:
            return load_configured_embedder(self.settings, None)
        with self._lock:
            if self._embedder is None:
                self._embedder = load_configured_embedder(self.settings, engine)
            return self._embedder

    def forget(self) -> None:
        """Ask again on the next call (after the stored vectors were replaced)."""
        with self._lock:
            self._found = None
            self._none_at = None


class _LoadedOnUse:
    """The configured embedder, loaded by its first `encode` (a statement to embed). A model that
    cannot be loaded then embeds nothing (logged once): the statement is read as text, as when
    the extra is missing."""

    def __init__(self, embeddings: Embeddings, engine, name: str):
        self.embeddings, self.engine, self.name = embeddings, engine, name
        self.failed = False

    def encode(self, texts: list[str], batch_size: int = 32):
        if self.failed:
            return [None] * len(texts)
        try:
            embedder = self.embeddings.embedder(self.engine)
        except AcademicHubError as exc:
            self.failed = True
            log.warning("the embedding model cannot be loaded (%s): interest statements are read as text", exc)
            return [None] * len(texts)
        return embedder.encode(texts, batch_size=batch_size)
