"""Nearest neighbours of the stored paper vectors without comparing every pair: a usearch HNSW
index per model, and beside it each paper's TABLE_K nearest papers (the table the propagation
graph is read from), both kept in files under data_dir/index and grown by the embedding job as
papers arrive, never rebuilt.

Files, per model (`<slug>` from the model's name, `<g>` a generation number):
  <slug>.json                  the manifest: model, dim, count, highest paper id, generation, the
                               base index's generation, the delta's vector count
  <slug>-<b>.usearch           the base HNSW index (cosine; keys are paper ids), of generation b <= g
  <slug>-<g>.delta.usearch     the papers added since the base was written, an HNSW index of their own
  <slug>-<g>.ids.npy / .nbr.npy / .sim.npy
                               the indexed ids (sorted), each one's TABLE_K nearest ids and cosines
  <slug>.lock                  one writer at a time (flock); readers never wait for it

A writer makes the next generation's files and then replaces the manifest (atomically), so a
reader sees the old files or the new ones, never half of either; a process reopens its
memory-mapped view when the manifest changes. A day's papers go into the small delta index; the
base (a million vectors: ~1 GB to load and to write again) is left as it is until the delta
outgrows a share of it, then the two are merged into a new base (after the day's generation is
written, so the day is searchable first). Searches ask both and keep the best. A store that holds
vectors the index lacks (another process embedded them, the files were copied from elsewhere) is
caught up by adding just those; a file that cannot be read is rebuilt from the store's vectors,
saying so in the log."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import threading
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from .embeddings import usable_cores

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

FORMAT = 1
TABLE_K = 16  # neighbours kept per paper (the propagation graph keeps the best 5 of them, centred)
CONNECTIVITY = 16  # HNSW links per node
EXPANSION_ADD = 64  # HNSW's search width while adding (usearch's default, 128, doubles the build time)
EXPANSION_SEARCH = 128  # and while searching: recall@100 vs exact 0.99 on the libraries' vectors
SEARCH_BREADTH = 3.0  # a search's width per row asked (at least EXPANSION_SEARCH, widened past WIDEN_FROM)
WIDEN_FROM = 50_000  # past this many papers a search widens with the square root of the count (recall, design.md)
DELTA_MIN, DELTA_SHARE = 20_000, 20  # the delta is merged into the base past max(DELTA_MIN, base / DELTA_SHARE)
DTYPE = "f16"  # the vectors as the store keeps them
ADD_PER_THREAD = 10_000  # an add runs one thread per this many papers in the graph (small graphs: one; design.md)
_CHUNK = 900  # ids per IN (...) query (SQLite's bound-parameter limit)


def model_slug(model: str) -> str:
    """A file name for a model's name ("BAAI/bge-small-en-v1.5" -> "BAAI-bge-small-en-v1.5")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.") or "model"


def read_manifest(path: Path, what: str, pronoun: str) -> object | None:
    """A manifest file's JSON (None when there is none yet, or it cannot be read: then the files
    it names are rebuilt, said in the log as "<what> <path>: ... <pronoun> will be rebuilt")."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s %s: unreadable manifest (%s); %s will be rebuilt", what, path, exc, pronoun)
        return None


@contextmanager
def folder_writer(folder: Path, lock_path: Path):
    """One writer at a time of a folder's files (an flock on `lock_path`); readers never wait."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class NeighbourTable:
    """Each indexed paper's TABLE_K nearest papers by cosine: `ids` sorted, `nbr` (-1 where none)
    and `sim` row-aligned with it. Memory-mapped when read from the files."""

    def __init__(self, ids: np.ndarray, nbr: np.ndarray, sim: np.ndarray) -> None:
        self.ids, self.nbr, self.sim = ids, nbr, sim

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, k: int = TABLE_K) -> "NeighbourTable":
        return cls(np.empty(0, np.int64), np.empty((0, k), np.int64), np.empty((0, k), np.float32))


class VectorIndex:
    """One model's index and neighbour table in `folder`. Reading (`view`, `table`, `nearest`) uses
    memory-mapped files; writing (`update`, `catch_up`) holds the folder's lock for the model."""

    def __init__(self, folder: Path, model: str, *, store: str | None = None) -> None:
        self.folder = Path(folder)
        self.model = model
        self.store = store  # the store's URL (password hidden): a folder's index of another store is rebuilt
        self.slug = model_slug(model)
        self.manifest_path = self.folder / f"{self.slug}.json"
        self.lock_path = self.folder / f"{self.slug}.lock"
        self._stamp: tuple | None = None
        self._index = None
        self._delta = None
        self._table: NeighbourTable | None = None
        self.manifest: dict | None = None
        self._reading = threading.Lock()

    # -- files -----------------------------------------------------------

    def _file(self, generation: int, suffix: str) -> Path:
        return self.folder / f"{self.slug}-{generation}{suffix}"

    def _read_manifest(self) -> dict | None:
        manifest = read_manifest(self.manifest_path, "nearest-neighbour index", "it")
        if manifest is None:
            return None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("model") != self.model:
            log.warning("nearest-neighbour index %s: manifest of another format or model; it will be rebuilt", self.manifest_path)
            return None
        if self.store is not None and manifest.get("store") not in (None, self.store):
            log.warning("nearest-neighbour index %s: made for another store; it will be rebuilt", self.manifest_path)
            return None
        return manifest

    def _open(self, manifest: dict):
        """(base index, delta index or None, table) of the manifest's generation, memory-mapped;
        raises OSError/ValueError on a bad file."""
        generation = int(manifest["generation"])
        path = self._file(int(manifest.get("base", generation)), ".usearch")
        index = _restore(path, view=True)
        delta = _restore(self._file(generation, ".delta.usearch"), view=True) if manifest.get("delta") else None
        table = NeighbourTable(*(np.load(self._file(generation, f".{part}.npy"), mmap_mode="r", allow_pickle=False)
                                 for part in ("ids", "nbr", "sim")))
        held = len(index) + (len(delta) if delta is not None else 0)
        if (held != int(manifest["count"]) or len(table) != held or index.ndim != int(manifest["dim"])
                or (delta is not None and (len(delta) != int(manifest["delta"]) or delta.ndim != index.ndim))):
            raise ValueError(f"{path}: holds {held} vectors and {len(table)} rows, the manifest says {manifest['count']}")
        return index, delta, table

    def _current_stamp(self) -> tuple | None:
        try:
            stat = self.manifest_path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _refresh(self) -> None:
        """Reopen the memory-mapped view when the manifest changed (another process wrote)."""
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return
        with self._reading:
            manifest = self._read_manifest() if stamp is not None else None
            index = delta = table = None
            if manifest is not None:
                try:
                    index, delta, table = self._open(manifest)
                except (OSError, ValueError, KeyError) as exc:
                    log.warning("nearest-neighbour index %s: cannot be read (%s); it will be rebuilt", self.manifest_path, exc)
                    manifest = None
            self._stamp, self.manifest, self._index, self._delta, self._table = stamp, manifest, index, delta, table

    # -- reading ---------------------------------------------------------

    @property
    def count(self) -> int:
        self._refresh()
        return 0 if self.manifest is None else int(self.manifest["count"])

    def table(self) -> NeighbourTable | None:
        self._refresh()
        return self._table

    def nearest(self, queries: np.ndarray, count: int, *, width: int | None = None, breadth: float = SEARCH_BREADTH,
                threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The `count` nearest indexed papers of each query row: (ids, cosines), each (q, count),
        best first; -1 / -inf where the index holds fewer. `width`: the search's (the benchmark's);
        by default `breadth` x count, at least EXPANSION_SEARCH, widened with the index's size:
        HNSW's recall at a fixed width falls as the index grows (recall@100 at 300: 0.97 at 48,000,
        0.82 at 1,000,000 synthetic vectors)."""
        self._refresh()
        with self._reading:
            index, delta = self._index, self._delta
        size = (len(index) if index is not None else 0) + (len(delta) if delta is not None else 0)
        width = width or int(max(EXPANSION_SEARCH, breadth * count) * max(1.0, size / WIDEN_FROM) ** 0.5)
        return _search((index, delta), np.atleast_2d(np.asarray(queries, dtype=np.float32)), count, width, threads=threads)

    # -- writing ---------------------------------------------------------

    def _writer(self):
        return folder_writer(self.folder, self.lock_path)

    def _load_for_writing(self, dim: int | None) -> "_Written":
        """What the files hold, to extend: the base memory-mapped (left as it is unless merged
        with the delta), the delta and the table; or an empty index when there is none or it cannot
        be read (the caller then adds every stored vector: a rebuild)."""
        manifest = self._read_manifest()
        if manifest is not None:
            try:
                index, delta, table = self._open(manifest)
                if dim is None or index.ndim == dim:
                    return _Written(manifest, index, None if delta is None else delta.copy(), table, kept=True)
                log.warning("nearest-neighbour index %s: vectors of %d dimensions, the store's have %d; rebuilding",
                            self.manifest_path, index.ndim, dim)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("nearest-neighbour index %s: cannot be read (%s); rebuilding it from the stored vectors",
                            self.manifest_path, exc)
        if dim is None:
            raise ValueError("an index without vectors to add has no dimension")
        return _Written(None, _new_index(dim), None, NeighbourTable.empty(), kept=False)

    def update(self, ids: np.ndarray, vectors: np.ndarray, *, gone: Iterable[int] = (), merge: bool = False) -> int:
        """Add these papers' unit vectors (ids not yet indexed), drop `gone`, and update the
        neighbour table: the new papers' nearest, and each new paper entered into the rows of the
        papers it is nearer to than their TABLE_K-th. Written as the next generation; how many added.
        `merge`: the delta and these papers merged into the base, the whole index written again."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._writer():
            written = self._load_for_writing(vectors.shape[1] if vectors.ndim == 2 and len(vectors) else None)
            return self._apply(written, ids, vectors, np.asarray(list(gone), dtype=np.int64), merge=merge)

    def _apply(self, written: "_Written", ids, vectors, gone, *, merge: bool = False) -> int:
        table = written.table
        if len(gone):
            gone = np.intersect1d(gone, table.ids)
        if len(gone) or (merge and (len(ids) or written.delta is not None)):
            written.merge_delta()
        if len(gone):
            for key in gone.tolist():
                written.base.remove(int(key))
            keep = ~np.isin(table.ids, gone)
            table = NeighbourTable(table.ids[keep], np.array(table.nbr[keep]), np.array(table.sim[keep]))
            stale = np.isin(table.nbr, gone)
            table.nbr[stale], table.sim[stale] = -1, -np.inf
        fresh = ~np.isin(ids, table.ids)
        ids, vectors = ids[fresh], vectors[fresh]
        if len(ids):
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            written.add(ids, vectors)
            nbr, sim = _search((written.base, written.delta), vectors, TABLE_K + 1, EXPANSION_SEARCH)
            nbr, sim = _without_self(ids, nbr, sim)
            table = _merged(table, ids, nbr, sim)
        if not len(ids) and not len(gone) and written.kept and written.manifest is not None:
            return 0  # nothing changed
        written.manifest = self._write(written, table)
        if written.delta is not None and len(written.delta) > max(DELTA_MIN, len(written.base) // DELTA_SHARE):
            written.merge_delta()
            written.manifest = self._write(written, table)
        return len(ids)

    def _write(self, written: "_Written", table: NeighbourTable) -> dict:
        """The next generation's files, then the manifest naming them; the files no generation
        names any more removed. The base index is written only when it changed."""
        manifest = written.manifest
        generation = (int(manifest["generation"]) + 1) if manifest else 1
        if not written.kept:
            written.base.save(str(self._file(generation, ".usearch")))
            written.base_generation, written.kept = generation, True
        delta = written.delta if written.delta is not None and len(written.delta) else None
        if delta is not None:
            delta.save(str(self._file(generation, ".delta.usearch")))
        for part, values in (("ids", table.ids), ("nbr", table.nbr), ("sim", table.sim)):
            np.save(self._file(generation, f".{part}.npy"), values, allow_pickle=False)
        new = {"format": FORMAT, "model": self.model, "dim": int(written.base.ndim), "count": len(table),
               "highest_id": int(table.ids[-1]) if len(table) else None, "generation": generation,
               "base": written.base_generation, "delta": len(delta) if delta is not None else 0,
               "table_k": TABLE_K, "dtype": DTYPE, "store": self.store}
        temporary = self.manifest_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(new), encoding="utf-8")
        os.replace(temporary, self.manifest_path)
        named = {self._file(written.base_generation, ".usearch").name}
        for old in self.folder.glob(f"{self.slug}-*"):  # readers that mapped them keep them until they reopen
            if old.name not in named and not old.name.startswith(f"{self.slug}-{generation}."):
                old.unlink(missing_ok=True)
        return new

    def forget(self) -> None:
        """Remove the files (every vector of the model is about to be made again)."""
        with self._writer():
            self.manifest_path.unlink(missing_ok=True)
            for old in self.folder.glob(f"{self.slug}-*"):
                old.unlink(missing_ok=True)

    def catch_up(self, conn: "Connection") -> int:
        """Add the store's vectors of this model that the index lacks and drop those the store no
        longer holds (the store is the truth; the manifest's count and highest id say how far the
        index got). A missing or unreadable index is rebuilt. How many were added."""
        from sqlalchemy import func, select

        from ..store.schema import paper_embeddings

        where = paper_embeddings.c.model == self.model
        count, highest = conn.execute(select(func.count(), func.max(paper_embeddings.c.paper_id)).where(where)).one()
        manifest = self._read_manifest()
        if manifest is not None and manifest["count"] == count and manifest["highest_id"] == highest and self.table() is not None:
            return 0
        with self._writer():
            stored = np.array(conn.execute(select(paper_embeddings.c.paper_id).where(where).order_by(paper_embeddings.c.paper_id))
                              .scalars().all(), dtype=np.int64)
            dim = conn.execute(select(paper_embeddings.c.dim).where(where).limit(1)).scalar()
            if dim is None:
                if self._read_manifest() is not None:
                    log.info("nearest-neighbour index %s: the store holds no vectors of %s; removing it", self.manifest_path, self.model)
                    self.manifest_path.unlink(missing_ok=True)
                return 0
            written = self._load_for_writing(int(dim))
            if written.manifest is None and len(stored):
                log.info("nearest-neighbour index %s: building it from %d stored vectors", self.manifest_path, len(stored))
            new = np.setdiff1d(stored, written.table.ids, assume_unique=True)
            gone = np.setdiff1d(written.table.ids, stored, assume_unique=True)
            vectors = _read_vectors(conn, self.model, new, int(dim))
            return self._apply(written, new, vectors, gone)


class _Written:
    """A writer's state: the manifest it read, the base index (`kept`: unchanged since it was
    written as the file of `base_generation`; mapped read-only then), the delta index and the table."""

    def __init__(self, manifest: dict | None, base, delta, table: NeighbourTable, *, kept: bool) -> None:
        self.manifest, self.base, self.delta, self.table, self.kept = manifest, base, delta, table, kept
        self.base_generation = int(manifest.get("base", manifest["generation"])) if manifest else 0

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Into the base while it is being written anyway (a build, a merge), else into the delta."""
        if not self.kept:
            _add(self.base, ids, vectors)
            return
        if self.delta is None:
            self.delta = _new_index(self.base.ndim)
        _add(self.delta, ids, vectors)

    def merge_delta(self) -> None:
        """The base read into memory (to be written again) with the delta's vectors added to it."""
        if self.kept:
            self.base, self.kept = self.base.copy(), False  # out of its memory-mapped file
            self.base.expansion_add = EXPANSION_ADD  # a file does not keep it (usearch's default, 128, costs twice as much)
        if self.delta is not None and len(self.delta):
            keys = np.asarray(self.delta.keys, dtype=np.int64)
            _add(self.base, keys, np.asarray(self.delta.get(keys), dtype=np.float32))
        self.delta = None


def _read_vectors(conn: "Connection", model: str, ids: np.ndarray, dim: int) -> np.ndarray:
    from sqlalchemy import select

    from ..store.schema import paper_embeddings

    out = np.empty((len(ids), dim), dtype=np.float32)
    position = {int(pid): i for i, pid in enumerate(ids)}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK].tolist()
        for pid, blob in conn.execute(select(paper_embeddings.c.paper_id, paper_embeddings.c.vector)
                                      .where(paper_embeddings.c.model == model, paper_embeddings.c.paper_id.in_(chunk))):
            out[position[pid]] = np.frombuffer(blob, dtype="<f2")
    return out


def _usearch_index():
    """usearch's `Index` class, with onnxruntime (the CPU embedder) loaded first where installed:
    usearch's wheel links its own libstdc++ and makes its locale facet ids the process's (GNU
    unique symbols), so onnxruntime loaded after it crashes the process on import."""
    with suppress(ImportError):
        import onnxruntime  # noqa: F401
    from usearch.index import Index

    return Index


def _new_index(dim: int):
    return _usearch_index()(ndim=dim, metric="cos", dtype=DTYPE, connectivity=CONNECTIVITY,
                            expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)


def _add(index, ids: np.ndarray, vectors: np.ndarray) -> None:
    """Into an HNSW graph with one thread per ADD_PER_THREAD papers it will hold, at most one per
    core: threads inserting into a small graph at once leave some papers unreachable (1,500 papers
    added by two threads: up to 1.7 % of them do not find themselves; by one: none)."""
    threads = max(1, min(usable_cores(), (len(index) + len(ids)) // ADD_PER_THREAD))
    index.add(ids, vectors, threads=threads)


def _restore(path: Path, *, view: bool):
    index = _usearch_index().restore(str(path), view=view)
    if index is None:
        raise ValueError(f"{path}: not a usearch index")
    return index


def _search(indexes, queries: np.ndarray, count: int, expansion: int, *, threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The `count` nearest of each query row over these indexes (None or empty ones skipped):
    (ids, cosines), each (q, count), best first; -1 / -inf where they hold fewer."""
    found = []
    for index in indexes:
        if index is not None and len(index):
            index.expansion_search = expansion
            found.append(_matches(index.search(queries, count, threads=threads), len(queries), count))
    if len(found) == 1:
        return found[0]
    if not found:
        return _no_matches(len(queries), count)
    ids, sims = np.hstack([f[0] for f in found]), np.hstack([f[1] for f in found])
    best = np.argsort(-sims, axis=1, kind="stable")[:, :count]
    return np.take_along_axis(ids, best, axis=1), np.take_along_axis(sims, best, axis=1)


def _no_matches(queries: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((queries, count), -1, np.int64), np.full((queries, count), -np.inf, np.float32)


def _matches(found, queries: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """usearch's BatchMatches of `queries` rows as (ids, cosines) arrays, -1 / -inf past each row's matches."""
    ids, sims = _no_matches(queries, count)
    keys = np.asarray(found.keys).reshape(queries, -1)[:, :count]
    distances = np.asarray(found.distances, dtype=np.float32).reshape(queries, -1)[:, :count]
    counts = np.asarray(getattr(found, "counts", [keys.shape[1]])).reshape(queries)
    valid = np.arange(keys.shape[1])[None, :] < counts[:, None]
    ids[:, : keys.shape[1]] = np.where(valid, keys.astype(np.int64), -1)
    cosines = np.full(distances.shape, -np.inf, dtype=np.float32)
    np.subtract(1.0, distances, out=cosines, where=valid)  # past a row's matches usearch leaves garbage (NaN)
    sims[:, : keys.shape[1]] = cosines
    return ids, sims


def _without_self(ids: np.ndarray, nbr: np.ndarray, sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's matches less the paper itself, TABLE_K of them."""
    mine = nbr == ids[:, None]
    order = np.argsort(mine, axis=1, kind="stable")  # the paper itself (if found) to the end
    nbr, sim = np.take_along_axis(nbr, order, axis=1)[:, :TABLE_K], np.take_along_axis(sim, order, axis=1)[:, :TABLE_K]
    return nbr, sim


def _merged(table: NeighbourTable, ids: np.ndarray, nbr: np.ndarray, sim: np.ndarray) -> NeighbourTable:
    """The table with the new rows, and each new paper entered in the rows of the papers already
    there that it is nearer to than their TABLE_K-th (the graph stays symmetric enough: a new
    day's papers become neighbours of the old ones they resemble)."""
    old = len(table)
    all_ids = np.concatenate([table.ids, ids])
    all_nbr = np.concatenate([table.nbr, nbr])
    all_sim = np.concatenate([table.sim, sim])
    if not (np.diff(all_ids) > 0).all():  # a day's ids usually follow the table's: no reordering then
        order = np.argsort(all_ids, kind="stable")
        all_ids, all_nbr, all_sim = all_ids[order], all_nbr[order], all_sim[order]
    if old:
        # (row of an old paper, new paper, cosine) for every new paper's old neighbours
        rows_new = np.repeat(ids, nbr.shape[1])
        targets, values = nbr.ravel(), sim.ravel()
        ok = (targets >= 0) & np.isin(targets, table.ids)
        rows = np.searchsorted(all_ids, targets[ok])
        candidates, values = rows_new[ok], values[ok]
        if len(rows):
            touched, inverse = np.unique(rows, return_inverse=True)
            extra = np.bincount(inverse).max()
            add_nbr = np.full((len(touched), extra), -1, np.int64)
            add_sim = np.full((len(touched), extra), -np.inf, np.float32)
            by_row = np.argsort(inverse, kind="stable")
            inverse_sorted = inverse[by_row]
            starts = np.searchsorted(inverse_sorted, np.arange(len(touched)))
            columns = np.arange(len(by_row)) - starts[inverse_sorted]
            add_nbr[inverse_sorted, columns] = candidates[by_row]
            add_sim[inverse_sorted, columns] = values[by_row]
            merged_nbr = np.hstack([all_nbr[touched], add_nbr])
            merged_sim = np.hstack([all_sim[touched], add_sim])
            best = np.argsort(-merged_sim, axis=1, kind="stable")[:, :TABLE_K]
            all_nbr[touched] = np.take_along_axis(merged_nbr, best, axis=1)
            all_sim[touched] = np.take_along_axis(merged_sim, best, axis=1)
    return NeighbourTable(all_ids, all_nbr, all_sim)


def transient_table(ids: np.ndarray, rows: np.ndarray) -> NeighbourTable:
    """A neighbour table of these rows through an HNSW index made for them and not kept (a
    candidate set without a store's table: the benchmark's, a store without a data folder)."""
    index = _new_index(rows.shape[1])
    _add(index, np.asarray(ids, dtype=np.int64), rows)
    nbr, sim = _search((index,), rows, TABLE_K + 1, EXPANSION_SEARCH)
    return NeighbourTable(np.asarray(ids, dtype=np.int64), *_without_self(np.asarray(ids, dtype=np.int64), nbr, sim))


def store_key(bind) -> str:
    """Which store a data folder's index belongs to: its URL, password hidden (a connection or an engine)."""
    return bind.engine.url.render_as_string(hide_password=True)


def update_store_index(engine, folder: Path, model: str) -> int:
    """The embedding job's last step: the vectors stored since the index was last written added
    to it (how many). A failure is logged, never raised: a ranking then builds its graph without."""
    index = vector_index(folder, model, store=store_key(engine))
    try:
        with engine.connect() as conn:
            return index.catch_up(conn)
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning("nearest-neighbour index in %s: cannot be updated (%s)", folder, exc)
        return 0


_INDEXES: dict[tuple, VectorIndex] = {}
_INDEXES_LOCK = threading.Lock()


def vector_index(folder: Path, model: str, *, store: str | None = None) -> VectorIndex:
    """The process's one VectorIndex per (folder, model, store): its memory-mapped view is shared."""
    key = (str(Path(folder).resolve()), model, store)
    with _INDEXES_LOCK:
        found = _INDEXES.get(key)
        if found is None:
            found = _INDEXES[key] = VectorIndex(Path(folder), model, store=store)
        return found
