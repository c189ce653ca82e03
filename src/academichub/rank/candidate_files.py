"""The candidate columns of every stored paper (hashed TF-IDF, the author/category/venue indexes,
dates, folded texts, the raw vectors of a model) kept in files under data_dir/index/candidates, so
a process that starts ranks at once instead of reading and hashing every paper again.

Files, per store (`<key>`: a hash of the store's URL and the hashed vocabulary's width):
  <key>.json                the manifest: store, width, count, highest id, latest modification,
                            generation, and per model the vectors' count and dim
  <key>-<g>.<part>.npy      ids, days, the term counts and the weighted matrix (CSR parts), idf,
                            each term's rows (the matrix's CSC pattern), the indexes (keys as JSON, starts, rows), the blobs' offsets
  <key>-<g>.<part>.bin      the papers as JSON rows, folded titles, folded texts (NUL-separated)
  <key>-<g>.vec-<model>.npy the model's vectors as stored (float16) and which rows hold one, and
                            the float32 unit rows the ranker uses (`unit_rows`, mapped at start)
  <key>.lock                one writer at a time (flock); readers never wait

A writer makes the next generation (unchanged files hard-linked) and then replaces the manifest
atomically, as rank/neighbours.py does. Papers stored since the files were written (ids above the
highest, nothing older changed) are read and appended alone; anything else (a deleted or
rewritten paper, an unreadable or foreign file) rebuilds them, saying so in the log. Papers are
read, hashed and appended `papers_per_chunk` at a time, so a first write holds one chunk of Docs
rather than every paper (the bytes are the same as one chunk's). The weighted
matrix is made again from the counts on each write (its idf spans every paper), so a loaded set
is the set `CandidateSet(load_docs(...))` would build, column for column."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from .neighbours import folder_writer, model_slug, read_manifest, store_key
from .ranker_types import Doc

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

FORMAT = 1
_NO_DAY = -1
_SEPARATOR = b"\x00"  # between folded rows: fold() leaves only letters, digits and spaces
_CHUNK = 900
PAPERS_PER_CHUNK = 5000  # read, hashed and appended at a time when the files are written
INDEXES = ("author", "category", "primary", "venue")


class RowIndex(Mapping):
    """key -> sorted candidate rows (int64), read off three arrays; the key table is made on first use."""

    def __init__(self, keys: list[str], starts: np.ndarray, rows: np.ndarray) -> None:
        self._keys, self._starts, self._rows = keys, starts, rows
        self._slots: dict[str, int] | None = None

    def _slot(self, key) -> int | None:
        if self._slots is None:
            self._slots = {k: i for i, k in enumerate(self._keys)}
        return self._slots.get(key)

    def __getitem__(self, key) -> np.ndarray:
        slot = self._slot(key)
        if slot is None:
            raise KeyError(key)
        return np.asarray(self._rows[self._starts[slot] : self._starts[slot + 1]])

    def get(self, key, default=None):
        slot = self._slot(key)
        return default if slot is None else np.asarray(self._rows[self._starts[slot] : self._starts[slot + 1]])

    def __contains__(self, key) -> bool:
        return self._slot(key) is not None

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _row_index(keys: list[str], kids: np.ndarray, rows: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(keys, starts, rows) from key ids and rows: sorted by key, then row, each pair once."""
    order = np.lexsort((rows, kids))
    kids, rows = kids[order], rows[order]
    if len(rows):
        keep = np.r_[True, (np.diff(kids) != 0) | (np.diff(rows) != 0)]
        kids, rows = kids[keep], rows[keep]
    starts = np.searchsorted(kids, np.arange(len(keys) + 1)).astype(np.int64)
    return keys, starts, rows


class TextRows(Sequence):
    """Row i's text, out of one NUL-separated UTF-8 blob (memory-mapped) and its offsets."""

    def __init__(self, blob, offsets: np.ndarray) -> None:
        self._blob, self._offsets = blob, offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i):
        start, end = int(self._offsets[i]), int(self._offsets[i + 1]) - 1
        return bytes(self._blob[start:end]).decode("utf-8")

    def rows_containing(self, phrase: str) -> np.ndarray:
        """Rows whose text contains `phrase`: one scan of the blob instead of a loop over rows."""
        needle = phrase.encode("utf-8")
        blob = self._blob
        found: list[int] = []
        at = blob.find(needle)
        while at >= 0:
            found.append(at)
            at = blob.find(needle, at + 1)
        if not found:
            return np.array([], dtype=np.int64)
        rows = np.searchsorted(self._offsets, np.array(found, dtype=np.int64), side="right") - 1
        return np.unique(rows).astype(np.int64)


class DocRows(Sequence):
    """The candidates as Docs, each made from its JSON row when asked for (a ranking reads the few
    it explains). `embedding` is the stored vector (float32) where there is one."""

    def __init__(self, rows: TextRows, ids: np.ndarray, days: np.ndarray, vectors: np.ndarray | None,
                 has: np.ndarray | None) -> None:
        self._rows, self._ids, self._days, self._vectors, self._has = rows, ids, days, vectors, has

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        title, abstract, keys, names, categories, venue = json.loads(self._rows[i])
        day = int(self._days[i])
        vector = None
        if self._vectors is not None and self._has[i]:
            vector = np.asarray(self._vectors[i], dtype=np.float32)
        return Doc(id=int(self._ids[i]), title=title, abstract=abstract, author_keys=tuple(keys), author_names=tuple(names),
                   categories=tuple(categories), venue=venue, day=None if day == _NO_DAY else date.fromordinal(day),
                   embedding=vector)


class Columns:
    """What a CandidateSet is made of, read from the files (`CandidateSet.from_columns`)."""

    def __init__(self, *, ids, days, docs, emb, indexes: dict[str, RowIndex], matrix, idf, titles: TextRows,
                 texts: TextRows, terms) -> None:
        self.ids, self.days, self.docs, self.emb = ids, days, docs, emb
        self.indexes, self.matrix, self.idf, self.titles, self.texts = indexes, matrix, idf, titles, texts
        self.terms = terms  # .indptr, .indices: the rows of each hashed term (the matrix's CSC pattern)


def unit_rows(vectors: np.ndarray, has: np.ndarray) -> np.ndarray | None:
    """The float32 unit rows the ranker uses, as `load_docs` + `CandidateSet` make them: a row
    without a vector stands at the others' mean (id order); None when no row has one."""
    if not len(vectors) or not has.any():
        return None
    matrix = np.asarray(vectors, dtype=np.float32)  # a copy: the file stays float16
    if not has.all():
        mean = np.mean(matrix[has], axis=0)
        mean /= np.linalg.norm(mean) or 1.0
        matrix[~has] = mean
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    matrix /= norms
    return matrix


class CandidateFiles:
    """One store's candidate columns in `folder` (data_dir/index/candidates)."""

    def __init__(self, folder: Path, store: str, n_features: int) -> None:
        self.folder = Path(folder)
        self.store = store
        self.n_features = n_features
        digest = hashlib.sha1(f"{store}|{n_features}".encode()).hexdigest()[:16]
        self.key = f"candidates-{digest}"
        self.manifest_path = self.folder / f"{self.key}.json"
        self.lock_path = self.folder / f"{self.key}.lock"
        self.papers_per_chunk = PAPERS_PER_CHUNK
        self.writes = 0  # generations this object wrote (tests: appended, not rebuilt)
        self.rebuilds = 0  # of which were full rebuilds

    # -- files -----------------------------------------------------------

    def _file(self, generation: int, part: str) -> Path:
        return self.folder / f"{self.key}-{generation}.{part}"

    def _read_manifest(self) -> dict | None:
        manifest = read_manifest(self.manifest_path, "candidate columns", "they")
        if manifest is None:
            return None
        if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("store") != self.store
                or manifest.get("n_features") != self.n_features):
            log.warning("candidate columns %s: made for another store, width or format; they will be rebuilt", self.manifest_path)
            return None
        return manifest

    def _writer(self):
        return folder_writer(self.folder, self.lock_path)

    # -- the store's state -------------------------------------------------

    @staticmethod
    def _papers_state(conn: "Connection", upto: int | None = None) -> tuple[int, int | None, str | None]:
        from sqlalchemy import func, select

        from ..store.schema import papers

        stmt = select(func.count(), func.max(papers.c.id), func.max(papers.c.modified_at))
        if upto is not None:
            stmt = stmt.where(papers.c.id <= upto)
        count, highest, modified = conn.execute(stmt).one()
        return int(count), highest, None if modified is None else str(modified)

    @staticmethod
    def _vector_count(conn: "Connection", model: str) -> int:
        from sqlalchemy import func, select

        from ..store.schema import paper_embeddings

        return int(conn.execute(select(func.count()).select_from(paper_embeddings)
                                .where(paper_embeddings.c.model == model)).scalar_one())

    def _current(self, manifest: dict | None, state: tuple, model: str | None, vectors: int | None) -> bool:
        if manifest is None or (manifest["count"], manifest["highest_id"], manifest["modified"]) != state:
            return False
        return model is None or manifest["vectors"].get(model, {}).get("count") == vectors

    # -- reading -----------------------------------------------------------

    def update(self, conn: "Connection", model: str | None, lexical) -> dict:
        """The files brought up to date with the store (appended, or written where there are
        none) without reading them: what `ingest` leaves behind. The manifest."""
        state = self._papers_state(conn)
        vectors = self._vector_count(conn, model) if model else None
        manifest = self._read_manifest()
        if not self._current(manifest, state, model, vectors):
            with self._writer():
                manifest = self._read_manifest()
                state = self._papers_state(conn)
                vectors = self._vector_count(conn, model) if model else None
                if not self._current(manifest, state, model, vectors):
                    manifest = self._bring_up_to_date(conn, manifest, model, lexical)
        return manifest

    def columns(self, conn: "Connection", model: str | None, lexical) -> Columns:
        """The columns for the store as it is now, written first where the files lag behind."""
        manifest = self.update(conn, model, lexical)
        try:
            return self._open(manifest, model)
        except (OSError, ValueError, KeyError) as exc:  # a file gone or damaged under the manifest
            log.warning("candidate columns %s: cannot be read (%s); rebuilding them", self.manifest_path, exc)
            with self._writer():
                return self._open(self._bring_up_to_date(conn, None, model, lexical), model)

    def _open(self, manifest: dict, model: str | None) -> Columns:
        from scipy import sparse

        g = int(manifest["generation"])

        def array(part: str) -> np.ndarray:
            return np.load(self._file(g, f"{part}.npy"), mmap_mode="r", allow_pickle=False)

        def blob(part: str) -> TextRows:
            path = self._file(g, f"{part}.bin")
            if path.stat().st_size == 0:
                return TextRows(b"", array(f"{part}.off"))
            import mmap

            with open(path, "rb") as handle:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            return TextRows(mapped, array(f"{part}.off"))

        ids, days = np.array(array("ids")), np.array(array("days"))  # small: in memory, plain arrays
        n = int(manifest["count"])
        if len(ids) != n or len(days) != n:
            raise ValueError(f"{self._file(g, 'ids.npy')}: {len(ids)} rows, the manifest says {n}")
        indptr = array("weighted.indptr")
        matrix = sparse.csr_matrix((array("weighted.data"), array("weighted.indices"), indptr),
                                   shape=(n, self.n_features), copy=False) if n else None
        idf = np.array(array("idf")) if n else None
        indexes = {}
        for name in INDEXES:
            keys = json.loads(self._file(g, f"{name}.keys.json").read_text(encoding="utf-8"))
            indexes[name] = RowIndex(keys, array(f"{name}.starts"), array(f"{name}.rows"))
        emb = vectors = has = None
        if model and model in manifest["vectors"]:
            slug = model_slug(model)
            vectors, has = array(f"vec-{slug}"), np.array(array(f"has-{slug}"))
            if len(vectors) != n or len(has) != n:
                raise ValueError(f"{self._file(g, f'vec-{slug}.npy')}: {len(vectors)} rows, the manifest says {n}")
            unit = self._file(g, f"unit-{slug}.npy")
            # the float32 unit rows as written with the vectors (mapped: no conversion at start);
            # made here from the float16 rows where a writer left none
            emb = np.load(unit, mmap_mode="r", allow_pickle=False) if unit.exists() else unit_rows(vectors, has)
            if emb is not None and emb.shape != (n, vectors.shape[1]):
                raise ValueError(f"{unit}: {emb.shape[0]} rows, the manifest says {n}")
        titles, texts = blob("titles"), blob("texts")
        if len(titles) != n or len(texts) != n:
            raise ValueError(f"{self._file(g, 'titles.bin')}: {len(titles)} rows, the manifest says {n}")
        docs = DocRows(blob("docs"), ids, days, vectors, has)
        terms = SimpleNamespace(indptr=array("terms.indptr"), indices=array("terms.indices"))
        if len(terms.indptr) != self.n_features + 1:
            raise ValueError(f"{self._file(g, 'terms.indptr.npy')}: not {self.n_features} terms")
        return Columns(ids=ids, days=days, docs=docs, emb=emb, indexes=indexes, matrix=matrix, idf=idf,
                       titles=titles, texts=texts, terms=terms)

    # -- writing -----------------------------------------------------------

    def _bring_up_to_date(self, conn: "Connection", manifest: dict | None, model: str | None, lexical) -> dict:
        """Append the new papers, or rebuild; then the model's vectors. Holds the lock."""
        state = self._papers_state(conn)
        if manifest is not None:
            try:
                self._check(manifest)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("candidate columns %s: cannot be read (%s); rebuilding them", self.manifest_path, exc)
                manifest = None
        if manifest is not None and (manifest["count"], manifest["highest_id"], manifest["modified"]) != state:
            older = self._papers_state(conn, upto=manifest["highest_id"]) if manifest["highest_id"] is not None else (0, None, None)
            if older == (manifest["count"], manifest["highest_id"], manifest["modified"]):
                return self._write(conn, manifest, model, lexical, upto=state[1])
            log.info("candidate columns %s: papers were changed or removed; rebuilding them", self.manifest_path)
            manifest = None
        elif manifest is not None:  # the papers are current: only the vectors lag
            return self._write(conn, manifest, model, lexical, upto=state[1], papers=False)
        if manifest is None:
            log.info("candidate columns %s: building them from %d stored papers", self.manifest_path, state[0])
        return self._write(conn, None, model, lexical, upto=state[1])

    def _check(self, manifest: dict) -> None:
        g = int(manifest["generation"])
        for part in ("ids.npy", "days.npy", "counts.data.npy", "docs.bin"):
            if not self._file(g, part).exists():
                raise FileNotFoundError(self._file(g, part))
        if len(np.load(self._file(g, "ids.npy"), mmap_mode="r")) != manifest["count"]:
            raise ValueError(f"{self._file(g, 'ids.npy')}: not the manifest's row count")

    def _write(self, conn: "Connection", manifest: dict | None, model: str | None, lexical, *, upto: int | None,
               papers: bool = True) -> dict:
        from scipy import sparse

        old_g = int(manifest["generation"]) if manifest else 0
        g = old_g + 1
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(f"{self.key}-{g}.*"):  # a writer that died half-way
            stale.unlink(missing_ok=True)
        after = manifest["highest_id"] if manifest else None
        bounds = self._chunk_bounds(conn, after, upto) if papers and upto is not None else []
        old_n = manifest["count"] if manifest else 0

        def old(part: str, mmap: bool = True):
            return np.load(self._file(old_g, f"{part}.npy"), mmap_mode="r" if mmap else None, allow_pickle=False)

        def save(part: str, values) -> None:
            np.save(self._file(g, f"{part}.npy"), np.asarray(values), allow_pickle=False)

        def link(part: str) -> None:
            os.link(self._file(old_g, part), self._file(g, part))

        if manifest and not bounds:
            for part in ("ids.npy", "days.npy", "counts.data.npy", "counts.indices.npy", "counts.indptr.npy",
                         "weighted.data.npy", "weighted.indices.npy", "weighted.indptr.npy", "idf.npy",
                         "terms.indices.npy", "terms.indptr.npy",
                         *(f"{name}.{p}" for name in INDEXES for p in ("keys.json", "starts.npy", "rows.npy")),
                         *(f"{blob}.{p}" for blob in ("docs", "titles", "texts") for p in ("bin", "off.npy"))):
                link(part)
            ids = old("ids")
        else:
            ids, counts = self._write_rows(conn, g, old_g if manifest else None, old_n, bounds, lexical)
            save("ids", ids)
            if manifest:
                before = sparse.csr_matrix((old("counts.data"), old("counts.indices"), old("counts.indptr")),
                                           shape=(old_n, self.n_features))
                counts = sparse.vstack([before, counts], format="csr")
                del before
            save("counts.data", counts.data.astype(np.float32, copy=False))  # whole counts: exact in float32
            save("counts.indices", counts.indices.astype(np.int32, copy=False))
            save("counts.indptr", _index_dtype(counts.indptr))
            if len(ids):
                idf = lexical.idf(counts)
                weighted = self._weigh(counts, idf, lexical)
            else:
                idf, weighted = np.zeros(self.n_features), sparse.csr_matrix((0, self.n_features))
            del counts
            save("idf", idf)
            save("weighted.data", weighted.data)
            # which rows hold each term (the matrix by column): a keyword rule's first pass reads
            # it instead of converting the whole matrix at every start; converted as a pattern
            # (one byte a value) rather than with the float64 values the file does not keep
            pattern = sparse.csr_matrix((np.ones(len(weighted.indices), dtype=np.int8), weighted.indices, weighted.indptr),
                                        shape=weighted.shape)
            save("weighted.indices", weighted.indices.astype(np.int32))
            save("weighted.indptr", _index_dtype(weighted.indptr))
            del weighted
            by_term = pattern.tocsc()
            del pattern
            save("terms.indices", by_term.indices.astype(np.int32))
            save("terms.indptr", by_term.indptr.astype(np.int64))
            del by_term
        vectors = self._write_vectors(conn, g, manifest, ids, old_n, model)
        new = {"format": FORMAT, "store": self.store, "n_features": self.n_features, "count": int(len(ids)),
               "highest_id": int(ids[-1]) if len(ids) else None, "generation": g, "vectors": vectors}
        # the state the files hold: papers up to `upto`, as they were when read
        count, highest, modified = self._papers_state(conn, upto=upto) if upto is not None else (0, None, None)
        new["modified"] = modified
        if (count, highest) != (new["count"], new["highest_id"]):
            new["modified"] = None  # changed while being read: the next reader finds it stale and appends or rebuilds
        temporary = self.manifest_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(new), encoding="utf-8")
        os.replace(temporary, self.manifest_path)
        for stale in self.folder.glob(f"{self.key}-*"):  # readers that mapped them keep them until they reopen
            if not stale.name.startswith(f"{self.key}-{g}."):
                stale.unlink(missing_ok=True)
        self.writes += 1
        self.rebuilds += manifest is None
        return new

    def _weigh(self, counts, idf: np.ndarray, lexical):
        """`lexical.weigh(counts, idf)` a chunk of rows at a time (each row is weighed and
        normalised on its own), so the whole matrix's temporaries are never held at once."""
        from scipy import sparse

        n, size = counts.shape[0], max(1, int(self.papers_per_chunk))
        data = np.empty(counts.nnz, dtype=np.float64)
        for start in range(0, n, size):
            part = counts[start : start + size]
            part.data = part.data.astype(np.float64)  # as the vectorizer gives them
            weighed = lexical.weigh(part, idf).tocsr()
            if not (np.array_equal(weighed.indptr, part.indptr) and np.array_equal(weighed.indices, part.indices)):
                counts = counts.astype(np.float64)  # the weighing dropped or moved an entry: the whole matrix at once
                return lexical.weigh(counts, idf).tocsr()
            data[counts.indptr[start] : counts.indptr[min(start + size, n)]] = weighed.data
        return sparse.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)

    def _chunk_bounds(self, conn: "Connection", after: int | None, upto: int) -> list[tuple[int | None, int]]:
        """(above, up to) id ranges of at most `papers_per_chunk` papers each, covering the papers
        in (after, upto]."""
        from sqlalchemy import select

        from ..store.schema import papers

        stmt = select(papers.c.id).where(papers.c.id <= upto)
        if after is not None:
            stmt = stmt.where(papers.c.id > after)
        ids = np.array(conn.execute(stmt.order_by(papers.c.id)).scalars().all(), dtype=np.int64)
        size = max(1, int(self.papers_per_chunk))
        bounds, above = [], after
        for start in range(0, len(ids), size):
            last = int(ids[min(start + size, len(ids)) - 1])
            bounds.append((above, last))
            above = last
        return bounds

    def _write_rows(self, conn: "Connection", g: int, old_g: int | None, old_n: int, bounds, lexical):
        """The new papers read, hashed and appended chunk by chunk (`bounds`: id ranges), so a
        whole store is never held as Docs at once: the days, the indexes and the blobs written,
        the ids and the new rows' term counts (CSR) returned."""
        from scipy import sparse

        from ..names import fold
        from .service import load_docs

        ids = [np.load(self._file(old_g, "ids.npy"))] if old_g is not None else []
        days = [np.load(self._file(old_g, "days.npy"))] if old_g is not None else []
        indexes = {name: _IndexBuilder(self, old_g, name) for name in INDEXES}
        blobs = {part: _BlobWriter(self, g, old_g, part) for part in ("docs", "titles", "texts")}
        data, indices, lengths = [], [], []
        row = old_n
        try:
            for bound in bounds:
                docs = load_docs(conn, id_range=bound)
                ids.append(np.array([d.id for d in docs], dtype=np.int64))
                days.append(np.array([d.day.toordinal() if d.day else _NO_DAY for d in docs], dtype=np.int64))
                for i, d in enumerate(docs, start=row):
                    indexes["author"].add((i, key) for key in d.author_keys)
                    indexes["category"].add((i, code) for code in d.categories)
                    if d.categories:
                        indexes["primary"].add(((i, d.categories[0]),))
                    if d.venue:
                        indexes["venue"].add(((i, fold(d.venue)),))
                blobs["docs"].write(json.dumps(
                    [d.title, d.abstract, list(d.author_keys), list(d.author_names), list(d.categories), d.venue],
                    ensure_ascii=False) for d in docs)
                blobs["titles"].write(fold(d.title) for d in docs)
                blobs["texts"].write(fold(d.text) for d in docs)
                for builder in indexes.values():
                    builder.flush()
                chunk_data, chunk_indices, chunk_lengths = _counts(lexical, [d.text for d in docs])
                data.append(chunk_data)
                indices.append(chunk_indices)
                lengths.append(chunk_lengths)
                row += len(docs)
                del docs
            for blob in blobs.values():
                blob.save()
        finally:
            for blob in blobs.values():
                blob.close()
        for builder in indexes.values():
            builder.save(g)
        np.save(self._file(g, "days.npy"), np.concatenate(days) if days else np.zeros(0, dtype=np.int64), allow_pickle=False)
        indptr = np.zeros(row - old_n + 1, dtype=np.int64)
        if lengths:
            np.cumsum(np.concatenate(lengths), out=indptr[1:])
        counts = sparse.csr_matrix((np.concatenate(data) if data else np.zeros(0, dtype=np.float32),
                                    np.concatenate(indices) if indices else np.zeros(0, dtype=np.int32), indptr),
                                   shape=(row - old_n, self.n_features))
        return (np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)), counts

    def _write_vectors(self, conn: "Connection", g: int, manifest: dict | None, ids: np.ndarray, old_n: int,
                       model: str | None) -> dict:
        """The model's vectors for every row: the old rows' kept, only the rows that lacked one
        (or are new) read from the store. Other models' files are carried over only while no
        paper was added."""
        kept = {}
        if manifest:
            for other, info in manifest["vectors"].items():
                if other != model and old_n == len(ids):
                    slug = model_slug(other)
                    os.link(self._file(g - 1, f"vec-{slug}.npy"), self._file(g, f"vec-{slug}.npy"))
                    os.link(self._file(g - 1, f"has-{slug}.npy"), self._file(g, f"has-{slug}.npy"))
                    if self._file(g - 1, f"unit-{slug}.npy").exists():
                        os.link(self._file(g - 1, f"unit-{slug}.npy"), self._file(g, f"unit-{slug}.npy"))
                    kept[other] = info
        if not model:
            return kept
        from sqlalchemy import select

        from ..store.schema import paper_embeddings

        slug = model_slug(model)
        where = paper_embeddings.c.model == model
        count = self._vector_count(conn, model)
        stored = np.array(conn.execute(select(paper_embeddings.c.paper_id).where(where)
                                       .order_by(paper_embeddings.c.paper_id)).scalars().all(), dtype=np.int64)
        dim = conn.execute(select(paper_embeddings.c.dim).where(where).limit(1)).scalar()
        if manifest and model in manifest["vectors"] and manifest["vectors"][model].get("dim") == dim:
            previous = np.load(self._file(g - 1, f"vec-{slug}.npy"), mmap_mode="r")
            had = np.load(self._file(g - 1, f"has-{slug}.npy"))
        else:
            previous, had = np.zeros((0, dim or 0), dtype="<f2"), np.zeros(0, dtype=bool)
        n = len(ids)
        has = np.isin(ids, stored)
        vectors = np.lib.format.open_memmap(self._file(g, f"vec-{slug}.npy"), mode="w+", dtype="<f2",
                                            shape=(n, dim or 0))
        carried = np.zeros(n, dtype=bool)
        carried[: len(had)] = had & has[: len(had)]
        if len(had):
            vectors[: len(had)] = previous[: len(had)]
        vectors[~has] = 0
        wanted = np.flatnonzero(has & ~carried)
        position = {int(ids[r]): int(r) for r in wanted}
        wanted_ids = ids[wanted].tolist()
        for start in range(0, len(wanted_ids), _CHUNK):
            for pid, blob in conn.execute(select(paper_embeddings.c.paper_id, paper_embeddings.c.vector)
                                          .where(where, paper_embeddings.c.paper_id.in_(wanted_ids[start : start + _CHUNK]))):
                vectors[position[pid]] = np.frombuffer(blob, dtype="<f2")
        vectors.flush()
        del vectors
        np.save(self._file(g, f"has-{slug}.npy"), has, allow_pickle=False)
        emb = unit_rows(np.load(self._file(g, f"vec-{slug}.npy"), mmap_mode="r"), has)
        if emb is not None:
            np.save(self._file(g, f"unit-{slug}.npy"), emb, allow_pickle=False)
        kept[model] = {"count": count, "dim": dim}
        return kept


def _counts(lexical, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One chunk's term counts as CSR parts (float32 counts, int32 columns, row lengths)."""
    if not texts:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    counts = lexical.counts(texts).tocsr()
    return counts.data.astype(np.float32), counts.indices.astype(np.int32), np.diff(counts.indptr).astype(np.int64)


class _IndexBuilder:
    """One index (author, category, primary, venue) grown chunk by chunk: the old generation's
    keys and rows, then the new (row, key) pairs, sorted once at the end (`_row_index`)."""

    def __init__(self, files: CandidateFiles, old_g: int | None, name: str) -> None:
        self._files, self._name = files, name
        self._slots: dict[str, int] = {}
        self._kids: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        if old_g is not None:
            keys = json.loads(files._file(old_g, f"{name}.keys.json").read_text(encoding="utf-8"))
            starts = np.load(files._file(old_g, f"{name}.starts.npy"))
            self._slots = {k: i for i, k in enumerate(keys)}
            self._kids.append(np.repeat(np.arange(len(starts) - 1), np.diff(starts)))
            self._rows.append(np.load(files._file(old_g, f"{name}.rows.npy")))
        self._new_kids: list[int] = []
        self._new_rows: list[int] = []

    def add(self, pairs) -> None:
        slots = self._slots
        for row, key in pairs:
            self._new_rows.append(row)
            self._new_kids.append(slots.setdefault(key, len(slots)))

    def flush(self) -> None:
        """The chunk's pairs as arrays (a Python int is 28 bytes, an int64 8)."""
        self._kids.append(np.array(self._new_kids, dtype=np.int64))
        self._rows.append(np.array(self._new_rows, dtype=np.int64))
        self._new_kids, self._new_rows = [], []

    def save(self, g: int) -> None:
        self.flush()
        keys, starts, rows = _row_index(keys=list(self._slots), kids=np.concatenate(self._kids),
                                        rows=np.concatenate(self._rows))
        files, name = self._files, self._name
        files._file(g, f"{name}.keys.json").write_text(json.dumps(keys, ensure_ascii=False), encoding="utf-8")
        np.save(files._file(g, f"{name}.starts.npy"), starts, allow_pickle=False)
        np.save(files._file(g, f"{name}.rows.npy"), rows, allow_pickle=False)


class _BlobWriter:
    """One NUL-separated blob (docs, titles, texts) written chunk by chunk after the old
    generation's bytes, and its offsets saved at the end."""

    def __init__(self, files: CandidateFiles, g: int, old_g: int | None, part: str) -> None:
        self._offsets_path = files._file(g, f"{part}.off.npy")
        self._out = open(files._file(g, f"{part}.bin"), "wb")
        self._offsets = [np.zeros(1, dtype=np.int64)]
        if old_g is not None:
            self._offsets = [np.load(files._file(old_g, f"{part}.off.npy")).astype(np.int64)]
            with open(files._file(old_g, f"{part}.bin"), "rb") as source:
                while chunk := source.read(1 << 24):
                    self._out.write(chunk)
        self._at = int(self._offsets[0][-1])

    def write(self, texts) -> None:
        ends = []
        for text in texts:
            data = text.replace("\x00", " ").encode("utf-8") + _SEPARATOR
            self._out.write(data)
            self._at += len(data)
            ends.append(self._at)
        self._offsets.append(np.array(ends, dtype=np.int64))

    def close(self) -> None:
        self._out.close()

    def save(self) -> None:
        self.close()
        np.save(self._offsets_path, np.concatenate(self._offsets), allow_pickle=False)


def _index_dtype(indptr: np.ndarray) -> np.ndarray:
    """int32 where it fits, as scipy keeps it (a memory-mapped int64 indptr would be copied)."""
    return indptr.astype(np.int32) if indptr[-1] < 2**31 - 1 else indptr.astype(np.int64)


_FILES: dict[tuple, CandidateFiles] = {}
_FILES_LOCK = threading.Lock()


def candidate_files(folder: Path, conn: "Connection", n_features: int) -> CandidateFiles:
    """The process's one CandidateFiles per (folder, store, width)."""
    store = store_key(conn)
    key = (str(Path(folder).resolve()), store, n_features)
    with _FILES_LOCK:
        found = _FILES.get(key)
        if found is None:
            found = _FILES[key] = CandidateFiles(Path(folder), store, n_features)
        return found
