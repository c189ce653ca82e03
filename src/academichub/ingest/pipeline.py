"""The I/O around the decider: read a file or URL, detect its format, parse, and write each batch
in one transaction. A failing input never leaves half a batch written and never stops the
other inputs; summaries count distinct papers (added / updated / unchanged) and failed records."""

from __future__ import annotations

import gc
import io
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, TypeVar
from urllib.parse import urlparse

import orjson
from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..errors import AcademicHubError, ParseError, StoreError
from ..model import PaperData, ParsedBatch
from ..sources.kinds import FileFormat
from ..store import papers as paper_store
from ..store.database import lock_for_writing
from ..store.state import utcnow
from . import merge
from .formats import detect_format

SAMPLE_FILE = Path(__file__).resolve().parent.parent / "data" / "sample" / "2024-11-28-all-archives.xml"
SAMPLE_FEED = "astro-ph+cond-mat+physics+quant-ph+math+cs+econ+eess+gr-qc+hep-ex+hep-lat+hep-ph+hep-th+math-ph+nlin+nucl-ex+nucl-th+q-bio+q-fin+stat"

Progress = Callable[[int], None]


# With a parsing worker, 1 000 beat 2 000 and 500 (benchmarks: the writer waits less for a batch)
BATCH_SIZE = 1000
# PostgreSQL: the look-up tables' statistics are refreshed after this many records of one import,
# then after twice as many each time (a handful of ANALYZEs for a million records)
STATISTICS_FIRST = 5_000
READ_AHEAD = 4  # prepared batches a parsing worker may have waiting for the writer


@dataclass(slots=True)
class IngestSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    records: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, other: IngestSummary) -> None:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.failed += other.failed
        self.records += other.records
        self.errors.extend(other.errors)
        self.notes.extend(other.notes)

    def line(self) -> str:
        return (
            f"{self.records} records: {self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.failed} failed"
        )


class _Groups:
    """Union-find over batch positions: records sharing any key (identifier or linked version) are one work."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _stored_row(stored: paper_store.StoredPaper) -> merge.PaperRow:
    return merge.PaperRow(
        values=stored.values, authors=stored.authors, categories=stored.categories, subjects=stored.subjects,
        identifiers=stored.identifiers, relations=stored.relations, id=stored.id,
    )


def _keys(row: merge.PaperRow) -> list[tuple[str, str]]:
    return list(row.identifiers) + [(scheme, value) for _rel, scheme, value in row.relations]


@dataclass(slots=True)
class PreparedBatch:
    """Records turned into rows, before any database work (so it can run while the last batch
    writes, in another thread or process). `sources` holds what each row's source record keeps:
    (source, source_id, announce_type, raw)."""

    rows: list[merge.PaperRow]
    sources: list[tuple[str, str, str | None, dict | None]]
    summary: IngestSummary
    now: datetime


def prepare_records(records: list[PaperData], now: datetime | None = None, dialect: str | None = None) -> PreparedBatch:
    """Rows for a batch. With `dialect` (the parsing worker), each row also carries its insert's
    driver values and each raw record its JSON, work taken off the writer."""
    now = now or utcnow()
    summary = IngestSummary(records=len(records))
    rows: list[merge.PaperRow] = []
    kept: list[tuple[str, str, str | None, dict | None]] = []
    for record in records:
        if not record.title:
            summary.failed += 1
            summary.errors.append(f"{record.source}:{record.source_id}: no title, skipped")
            continue
        row = merge.new_row(record, now)
        if not row.identifiers:
            summary.failed += 1
            summary.errors.append(f"{record.source}:{record.source_id}: no identifier, skipped")
            continue
        raw = record.raw
        if dialect is not None:
            row.driver = paper_store.driver_row(row.values, dialect)
            raw = None if raw is None else orjson.dumps(raw)
        rows.append(row)
        kept.append((record.source, record.source_id, record.announce_type, raw))
    return PreparedBatch(rows, kept, summary, now)


def write_records(conn: Connection, records: list[PaperData], now: datetime | None = None) -> IngestSummary:
    """Merge records into the store inside the caller's transaction: one paper per work."""
    return write_prepared(conn, prepare_records(records, now))


def write_prepared(conn: Connection, prepared: PreparedBatch) -> IngestSummary:
    """Merge one prepared batch inside the caller's transaction. The transaction becomes the
    store's only writer first (`lock_for_writing`): the look-ups below and the writes they decide
    must see one state, or a second process inserting the same works fails on a unique key."""
    lock_for_writing(conn)
    rows, kept, summary, now = prepared.rows, prepared.sources, prepared.summary, prepared.now

    # 1. Same work within the batch: shared identifiers, or one names the other as its version.
    groups = _Groups(len(rows))
    owner: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        for key in _keys(row):
            if key in owner:
                groups.union(owner[key], i)
            else:
                owner[key] = i
    by_title: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        key = row.values["title_key"]
        if len(key) >= merge.FUZZY_MIN_TITLE:
            for j in by_title.setdefault(key, []):
                if groups.find(i) != groups.find(j) and merge.fuzzy_compatible(rows[j], row):
                    groups.union(i, j)
            by_title[key].append(i)
    members: dict[int, list[int]] = {}
    for i in range(len(rows)):
        members.setdefault(groups.find(i), []).append(i)

    # 2. Same work already stored: by identifier, then by the conservative fuzzy rule.
    known = paper_store.find_by_identifiers(conn, owner)
    linked = (
        paper_store.find_by_relation_targets(conn, [key for row in rows for key in row.identifiers if key[0] != "url"])
        if paper_store.any_relations(conn) else {}
    )
    matched: dict[int, set[int]] = {}
    unmatched: list[int] = []
    for root, positions in members.items():
        ids = {known[key] for i in positions for key in _keys(rows[i]) if key in known}
        ids |= {pid for i in positions for key in rows[i].identifiers for pid in linked.get(key, ())}
        if ids:
            matched[root] = ids
        else:
            unmatched.append(root)
    # A stored arXiv paper can only be the fuzzy match of a record without an arXiv id (two arXiv
    # ids always differ), so a store of arXiv papers alone needs no look-up for arXiv records.
    fuzzy_for_arxiv = paper_store.any_paper_without_arxiv_id(conn)
    title_hits = paper_store.find_by_title_keys(
        conn,
        [
            rows[r].values["title_key"] for r in unmatched
            if len(rows[r].values["title_key"]) >= merge.FUZZY_MIN_TITLE
            and (fuzzy_for_arxiv or not rows[r].values.get("arxiv_id"))
        ],
    )
    candidates = {pid for root in unmatched for pid in title_hits.get(rows[root].values["title_key"], [])}
    stored = paper_store.load_papers(conn, {pid for ids in matched.values() for pid in ids} | candidates)

    inserts: list[merge.PaperRow] = []
    updates: list[merge.PaperRow] = []
    absorbed: list[tuple[int, list[int]]] = []
    source_rows: list[tuple[merge.PaperRow, tuple]] = []
    for root, positions in members.items():
        incoming = rows[positions[0]]
        for i in positions[1:]:
            incoming = merge.merge_rows(incoming, rows[i], now)
        ids = matched.get(root)
        if ids is None:
            fuzzy = [
                pid
                for pid in title_hits.get(incoming.values["title_key"], [])
                if pid in stored and merge.fuzzy_compatible(_stored_row(stored[pid]), incoming)
            ]
            ids = {min(fuzzy)} if fuzzy else None
        if not ids:
            inserts.append(incoming)
            merged = incoming
        else:
            target, *others = sorted(ids)
            merged = _stored_row(stored[target])
            before = merged.values["content_hash"]
            for other in others:
                merged = merge.merge_rows(merged, _stored_row(stored[other]), now)
            merged = merge.merge_rows(merged, incoming, now)
            if others:
                absorbed.append((target, others))
            if others or merged.values["content_hash"] != before:
                updates.append(merged)
            else:
                summary.unchanged += 1
        source_rows.extend((merged, kept[i]) for i in positions)

    for target, others in absorbed:
        paper_store.absorb_papers(conn, target, others)
    new_ids = paper_store.insert_papers(conn, [r.values for r in inserts], [r.driver for r in inserts])
    for row, new_id in zip(inserts, new_ids):
        row.id = new_id
    paper_store.update_papers(conn, [(r.id, r.values) for r in updates])
    paper_store.replace_authors(conn, [(r.id, r.authors) for r in inserts], fresh=True)
    paper_store.replace_authors(conn, [(r.id, r.authors) for r in updates], fresh=False)
    paper_store.replace_subjects(conn, [(r.id, r.categories, r.subjects) for r in inserts], fresh=True)
    paper_store.replace_subjects(conn, [(r.id, r.categories, r.subjects) for r in updates], fresh=False)
    changed = [*inserts, *updates]
    paper_store.upsert_identifiers(conn, [(r.id, r.identifiers) for r in changed])
    paper_store.add_relations(conn, [(r.id, r.relations) for r in changed if r.relations])
    paper_store.upsert_source_records(
        conn,
        [  # in paper_store._SOURCE_COLUMNS order
            (row.id, source, source_id, announce_type, raw, now)
            for row, (source, source_id, announce_type, raw) in _dedupe_sources(source_rows)
        ],
    )
    summary.added = len(inserts)
    summary.updated = len(updates)
    return summary


def apply_version_links(
    conn: Connection, links: Iterable[tuple[str, str]], *, source: str, now: datetime | None = None
) -> int:
    """Preprint -> journal links stated apart from any record (bioRxiv's /pubs): remember the link on
    the stored preprint, and when the journal article is stored too, make the two one paper.
    Returns how many stored papers changed."""
    now = now or utcnow()
    lock_for_writing(conn)
    changed = 0
    for preprint_doi, published_doi in links:
        preprint_key = merge.norm_identifier("doi", preprint_doi)
        published_key = merge.norm_identifier("doi", published_doi)
        if preprint_key is None or published_key is None:
            continue
        found = paper_store.find_by_identifiers(conn, [preprint_key, published_key])
        preprint_id = found.get(preprint_key)
        if preprint_id is None:
            continue  # nothing stored to link yet; the journal record will bring its own relation
        stored = paper_store.load_papers(conn, {preprint_id, found.get(published_key, preprint_id)})
        merged = _stored_row(stored[preprint_id])
        before = merged.values["content_hash"]
        link = merge.PaperRow(values={"provenance": {}}, authors=[], categories=[],
                              relations={("preprint-of", *published_key): source})
        merged = merge.merge_rows(merged, link, now)
        published_id = found.get(published_key)
        if published_id is not None and published_id != preprint_id:
            target, other = sorted((preprint_id, published_id))
            merged = merge.merge_rows(_stored_row(stored[target]), _stored_row(stored[other]), now)
            merged = merge.merge_rows(merged, link, now)
            paper_store.absorb_papers(conn, target, [other])
        elif merged.values["content_hash"] == before:
            continue
        paper_store.update_papers(conn, [(merged.id, merged.values)])
        paper_store.replace_authors(conn, [(merged.id, merged.authors)], fresh=False)
        paper_store.replace_subjects(conn, [(merged.id, merged.categories, merged.subjects)], fresh=False)
        paper_store.upsert_identifiers(conn, [(merged.id, merged.identifiers)])
        paper_store.add_relations(conn, [(merged.id, merged.relations)])
        changed += 1
    return changed


def _dedupe_sources(pairs: list[tuple[merge.PaperRow, tuple]]) -> list[tuple[merge.PaperRow, tuple]]:
    """The same (source, source_id) twice in one batch keeps the last (ON CONFLICT can't touch a row twice)."""
    unique: dict[tuple[str, str], tuple[merge.PaperRow, tuple]] = {}
    for row, record in pairs:
        unique[record[:2]] = (row, record)
    return list(unique.values())


def store_records(engine: Engine, records: list[PaperData]) -> IngestSummary:
    """One transaction for the whole list."""
    try:
        with engine.begin() as conn:
            return write_records(conn, records)
    except SQLAlchemyError as exc:
        raise StoreError(f"writing {len(records)} records failed: {_db_reason(exc)}") from exc


def _chunked(items: Iterable[PaperData], size: int) -> Iterator[list[PaperData]]:
    chunk: list[PaperData] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_END = object()
T = TypeVar("T")
U = TypeVar("U")


def _prepared_chunks(records: Iterable[PaperData], batch_size: int) -> Iterator[PreparedBatch]:
    """Parse and prepare in a second thread while the caller writes: parsing, row building and
    SQLite's own work (which releases the GIL) overlap."""
    return _ahead(_chunked(records, batch_size), prepare_records, name="academichub-prepare")


def _ahead(items: Iterable[T], work: Callable[[T], U], *, name: str) -> Iterator[U]:
    """`work` done on each item in a second thread, a batch or two ahead of the caller. Errors
    arrive in order, in the caller's thread."""
    handoff: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                handoff.put(work(item))
            handoff.put(_END)
        except BaseException as exc:  # handed to the consuming thread
            handoff.put(exc)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                handoff.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def store_stream(
    engine: Engine,
    records: Iterable[PaperData],
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    commit_each_batch: bool = False,
) -> IngestSummary:
    """Stream records into the store in batches. By default the whole stream is one transaction
    (a truncated file stores nothing); `commit_each_batch` commits per batch for huge imports."""
    return _store_prepared(
        engine, _prepared_chunks(records, batch_size), progress=progress, commit_each_batch=commit_each_batch
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """A bulk import allocates millions of short-lived containers; the cyclic collector's passes
    over them cost more than the rest of the Python work (measured: 3x on unpickling rows)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _search_vectors_ahead(engine: Engine, batches: Iterator[PreparedBatch]) -> Iterator[PreparedBatch]:
    """PostgreSQL: a second connection has its backend compute the search vectors of a batch's new
    papers while the import's own backend writes the batch before (the vector is most of a
    paper's insert: docs/design.md, "PostgreSQL: the search vector from a second backend"). Only
    rows the worker prepared for a fresh insert, none of whose identifiers is stored, get one; a
    row without (merged, found stored after all, a short batch) is left to the trigger, so no
    vector is ever wrong, at worst computed twice. A shortcut only: if the second connection
    fails, the import goes on without it."""
    if engine.dialect.name != "postgresql":
        yield from batches
        return
    broken: list[str] = []

    def attach(conn: Connection, prepared: PreparedBatch) -> PreparedBatch:
        fresh = [row for row in prepared.rows if row.driver is not None and row.driver[0] == "postgresql"]
        if broken or len(fresh) < paper_store.COPY_MIN_ROWS:
            return prepared
        try:
            stored = paper_store.find_by_identifiers(conn, [key for row in fresh for key in row.identifiers])
            fresh = [row for row in fresh if not any(key in stored for key in row.identifiers)]
            texts = [(row.values["title"], row.values.get("abstract"), row.values.get("authors_text")) for row in fresh]
            vectors = paper_store.search_vectors(conn, texts)
        except SQLAlchemyError as exc:
            broken.append(_db_reason(exc))
            return prepared
        for row, vector in zip(fresh, vectors):
            row.driver = (*row.driver[:3], vector)
        return prepared

    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        broken.append(_db_reason(exc))
        yield from batches
    else:
        with conn:
            yield from _ahead(batches, partial(attach, conn), name="academichub-search-vectors")
    if broken:
        logging.getLogger(__name__).warning("search vectors left to the row trigger: %s", broken[0])


def _store_prepared(
    engine: Engine, batches: Iterator[PreparedBatch], *, progress: Progress | None, commit_each_batch: bool
) -> IngestSummary:
    summary = IngestSummary()
    batches = _search_vectors_ahead(engine, batches)
    next_statistics = STATISTICS_FIRST

    def statistics(conn: Connection) -> None:
        # PostgreSQL plans the merge's look-ups from table statistics; a store filled by this very
        # import has none (autovacuum cannot see an open transaction's rows), and the planner then
        # filters every row of a scheme against each IN list: an import quadratic in its own size.
        nonlocal next_statistics
        if summary.records >= next_statistics:
            paper_store.refresh_statistics(conn)
            next_statistics *= 2

    try:
        with _gc_paused():
            if commit_each_batch:
                for prepared in batches:
                    with engine.begin() as conn, paper_store.search_index_deferred(conn):
                        summary.add(write_prepared(conn, prepared))
                        statistics(conn)
                    if progress:
                        progress(prepared.summary.records)
            else:
                with engine.begin() as conn, paper_store.search_index_deferred(conn):
                    for prepared in batches:
                        summary.add(write_prepared(conn, prepared))
                        statistics(conn)
                        if progress:
                            progress(prepared.summary.records)
    except SQLAlchemyError as exc:
        raise StoreError(f"writing records failed: {_db_reason(exc)}") from exc
    return summary


def _db_reason(exc: SQLAlchemyError) -> str:
    """The driver's own message: SQLAlchemy's adds every bound parameter of a bulk insert (pages)."""
    return str(getattr(exc, "orig", None) or exc).strip()


# ----------------------------------------------------------------------------- the worker process


def worker_available(force: bool | None = None) -> bool:
    """May a bulk file be parsed in a forked worker? Only where fork exists, there is a second
    core to use, and (unless the caller vouches for it) no other thread could hold a lock that
    the child would inherit locked. Not the load of the moment: an import behaves the same on a
    busy machine (where `--no-ingest-worker` is faster, docs/design.md "Bulk import")."""
    if force is False or "fork" not in multiprocessing.get_all_start_methods():
        return False
    if force:
        return True
    return (os.cpu_count() or 1) > 1 and threading.active_count() == 1


def _bulk_parser(fmt: FileFormat) -> Callable[[IO[bytes], str], Iterator[PaperData]]:
    return fmt.stream


def _prepare_in_worker(sender, receiver, jobs: list[tuple[FileFormat, str]], batch_size: int, dialect: str | None,
                       parent: int, parent_thread_is_main: bool) -> None:
    """The child: parse and prepare each file in turn, sending its batches (with how far into the
    file it got), then its end or its error; a broken file does not stop the next one. It dies
    with its parent (see `_die_with_parent`)."""
    receiver.close()  # our copy of the read end: with it open, a write to a pipe nobody reads blocks for ever
    _die_with_parent(parent, parent_thread_is_main)
    gc.disable()  # the child lives for one import; its garbage goes with it
    try:
        for index, (fmt, path) in enumerate(jobs):
            try:
                with open(path, "rb") as handle:
                    for chunk in _chunked(_bulk_parser(fmt)(handle, path), batch_size):
                        _send(sender, ("batch", index, prepare_records(chunk, dialect=dialect), handle.tell()), parent)
                    _send(sender, ("end", index, None, handle.tell()), parent)
            except Exception as exc:  # handed to the parent, which raises it for this file
                try:
                    _send(sender, ("error", index, exc, 0), parent)
                except Exception:  # an exception that cannot be pickled still becomes a clear error
                    _send(sender, ("error", index, AcademicHubError(f"{path}: {type(exc).__name__}: {exc}"), 0), parent)
    finally:
        sender.close()


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent: int, parent_thread_is_main: bool) -> None:
    """A worker outliving its parent (killed, or ended by SIGTERM without clean-up) would block in
    a pipe write for ever, holding the database's files open. On Linux the kernel kills it when
    the parent goes (prctl PR_SET_PDEATHSIG). The signal follows the thread that forked, so it
    is asked for only when that was the main thread (which lives as long as the process).
    Elsewhere, and if the parent died before the prctl, `_send` notices: a new parent pid, or a
    pipe nobody reads (EPIPE)."""
    if parent_thread_is_main and sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no usable libc: the checks in `_send` remain
            pass
    if os.getppid() != parent:
        os._exit(0)


def _send(sender, message: tuple, parent: int) -> None:
    """One message to the parent; the worker ends quietly when the parent is gone."""
    if os.getppid() != parent:
        os._exit(0)
    try:
        sender.send(message)
    except (BrokenPipeError, ConnectionResetError):  # the parent closed the pipe or died: nobody to tell
        os._exit(0)


class ParsingWorker:
    """A forked process that parses and prepares bulk files (OAI-PMH XML, snapshot JSON lines) ahead
    of the writer: the GIL no longer serialises parsing and writing, so a bulk import uses two
    cores, and the next file is already being parsed while this one is written. The files must be
    taken (`batches`) in the order given; the pipe holds at most a batch or two, so memory stays flat."""

    def __init__(self, paths: Iterable[Path | str], batch_size: int, dialect: str | None = None) -> None:
        self.dialect = dialect  # the store's, so the worker can make driver values
        self.jobs = [(fmt, str(p)) for p in paths if (fmt := _sniff(str(p))) is not None and fmt.bulk]
        self.paths = [path for _, path in self.jobs]
        self.batch_size = batch_size
        self._next = 0
        self._process = None
        self._receiver = None
        self._inbox: queue.Queue | None = None
        self._reader: threading.Thread | None = None
        self._closing = threading.Event()

    def __enter__(self) -> ParsingWorker:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def batches(self, path: Path | str, on_bytes: Callable[[int], None] | None = None) -> Iterator[PreparedBatch] | None:
        """This file's prepared batches, or None if it is not in the rest of the queue (only
        bulk files are queued; files passed over are skipped)."""
        try:
            index = self.paths.index(str(path), self._next)
        except ValueError:
            return None
        self.start()
        self._next = index + 1
        return self._receive(index, str(path), on_bytes)

    def start(self) -> None:
        """Fork now (before the caller starts threads of its own: a child forked while another
        thread holds a lock would inherit it locked)."""
        if self._process is not None or not self.jobs:
            return
        context = multiprocessing.get_context("fork")
        self._receiver, sender = context.Pipe(duplex=False)
        _widen_pipe(sender.fileno())
        self._process = context.Process(
            target=_prepare_in_worker,
            args=(sender, self._receiver, self.jobs, self.batch_size, self.dialect, os.getpid(),
                  threading.current_thread() is threading.main_thread()),
            name="academichub-prepare", daemon=True,
        )
        self._process.start()
        sender.close()
        # A thread reads the pipe into a small queue (the read releases the GIL): the worker need
        # not wait for the writer to come back for each batch, so the two overlap better.
        self._inbox = queue.Queue(maxsize=READ_AHEAD)
        self._reader = threading.Thread(target=self._read, name="academichub-prepare-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        receiver, inbox = self._receiver, self._inbox
        while True:
            try:
                message = receiver.recv_bytes()
            except (EOFError, OSError):
                message = None
            while not self._closing.is_set():
                try:
                    inbox.put(message, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if message is None or self._closing.is_set():
                return

    def _receive(self, index: int, location: str, on_bytes) -> Iterator[PreparedBatch]:
        """Batches of file `index`; what is left of a file the writer gave up on is skipped here."""
        reported = 0
        while True:
            message = self._inbox.get()
            if message is None:
                self._inbox.put(None)  # every later take sees the end too
                self._process.join(5)
                raise AcademicHubError(
                    f"{location}: the parsing worker stopped without an answer (exit code {self._process.exitcode})"
                )
            kind, got, payload, offset = pickle.loads(message)
            if got < index:
                continue
            if on_bytes is not None and offset > reported:
                on_bytes(offset - reported)
                reported = offset
            if kind == "end":
                return
            if kind == "error":
                raise payload
            yield payload

    def close(self) -> None:
        self._closing.set()
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()
        if self._reader is not None:
            self._reader.join(5)  # the pipe's end (the worker is gone) or the closing flag stops it
        if self._receiver is not None:
            self._receiver.close()
        self._process = self._receiver = self._reader = self._inbox = None
        self._next = len(self.paths)


def _widen_pipe(fd: int) -> None:
    """A batch is megabytes: a 1 MiB pipe (Linux; 64 KiB by default) moves it in fewer, larger
    reads and lets the worker run further ahead."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass


def _sniff(path: str) -> FileFormat | None:
    try:
        with open(path, "rb") as handle:
            return detect_format(handle.read(4096), path)
    except (OSError, AcademicHubError):
        return None


def ingest_parsed_feed(engine: Engine, batch: ParsedBatch, *, feed_key: str, source: str = "arxiv-rss") -> IngestSummary:
    """A daily announcement: its papers and the announcement record (an empty day is normal) together."""
    now = utcnow()
    with engine.begin() as conn:
        summary = write_records(conn, batch.papers, now)
        if batch.feed and batch.feed.announced:
            paper_store.record_announcement(
                conn,
                source=source,
                feed=feed_key,
                day=batch.feed.announced,
                items=len(batch.papers),
                skip_days=batch.feed.skip_days,
                now=now,
            )
            if not batch.papers:
                summary.notes.append(f"no announcement on {batch.feed.announced.isoformat()} (empty feed)")
    return summary


def feed_key_from_link(link: str | None, fallback: str) -> str:
    if link:
        path = urlparse(link).path.rstrip("/")
        if "/rss/" in path:
            return path.rsplit("/rss/", 1)[1]
    return fallback


def ingest_bytes(
    engine: Engine,
    content: bytes,
    location: str,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> IngestSummary:
    fmt = detect_format(content[:4096], location)
    return _ingest(engine, fmt, io.BytesIO(content), location, batch_size=batch_size, progress=progress, content=content)


class _CountingReader(io.RawIOBase):
    """A file wrapper that reports bytes read, so a progress bar can follow any parser."""

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None]):
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        if n:
            self._on_bytes(n)
        return n


def ingest_file(
    engine: Engine,
    path: Path,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    on_bytes: Callable[[int], None] | None = None,
    worker: bool | None = None,
    parsing: ParsingWorker | None = None,
) -> IngestSummary:
    """Ingest one file. OAI-PMH and snapshot files are parsed in a forked worker process when
    `worker_available(worker)` (None: decide; False: never; True: whenever fork exists); a caller
    with several files passes one `ParsingWorker` for all of them, taken in order."""
    location = str(path)
    if Path(path).is_dir():
        raise ParseError("is a directory, not a file", location=location)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ParseError(f"cannot read: {exc.strerror}", location=location) from exc
    with handle:
        fmt = detect_format(handle.read(4096), location)
        handle.seek(0)
        if fmt.bulk:
            batches = parsing.batches(location, on_bytes) if parsing is not None else None
            with ExitStack() as stack:
                if batches is None and worker_available(worker):
                    own = stack.enter_context(ParsingWorker([location], batch_size, engine.dialect.name))
                    batches = own.batches(location, on_bytes)
                if batches is not None:
                    return _store_prepared(
                        engine, batches, progress=progress, commit_each_batch=fmt.commit_each_batch
                    )
        source: IO[bytes] = handle
        if on_bytes is not None:
            source = io.BufferedReader(_CountingReader(handle, on_bytes), buffer_size=1 << 16)
        return _ingest(engine, fmt, source, location, batch_size=batch_size, progress=progress)


def ingest_url(
    engine: Engine,
    client,
    url: str,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> IngestSummary:
    """Fetch (politely, conditionally) and ingest whatever format comes back."""
    fetched = client.get(url)
    if fetched.not_modified:
        return IngestSummary(notes=[f"{url}: not modified since the last fetch"])
    try:
        return ingest_bytes(engine, fetched.content, url, batch_size=batch_size, progress=progress)
    except Exception:
        # Validators were saved on receipt; without this a failed ingest would be skipped as 304 forever.
        if getattr(client, "cache", None) is not None:
            client.cache.forget(fetched.url)
        raise


def _ingest(
    engine: Engine,
    fmt: FileFormat,
    handle: IO[bytes],
    location: str,
    *,
    batch_size: int,
    progress: Progress | None,
    content: bytes | None = None,
) -> IngestSummary:
    """Parse by the format's own adapter: a stream is stored batch by batch, a whole document in
    one transaction (an arXiv announcement together with its day's record)."""
    if fmt.stream is not None:
        return store_stream(engine, fmt.stream(handle, location), batch_size=batch_size, progress=progress,
                            commit_each_batch=fmt.commit_each_batch)
    batch = fmt.parse(content if content is not None else handle.read(), location)
    if fmt.announces:
        feed_key = feed_key_from_link(batch.feed.link if batch.feed else None, location)
        summary = ingest_parsed_feed(engine, batch, feed_key=feed_key, source=fmt.name)
    else:
        summary = store_records(engine, batch.papers)
    if progress:
        progress(len(batch.papers))
    return summary


def load_sample_if_empty(engine: Engine) -> IngestSummary | None:
    """Give a newcomer something to read: the bundled real arXiv day, once, into an empty store."""
    with engine.connect() as conn:
        if paper_store.count_papers(conn):
            return None
    return ingest_file(engine, SAMPLE_FILE)


__all__ = [
    "AcademicHubError",
    "IngestSummary",
    "ingest_bytes",
    "ingest_file",
    "load_sample_if_empty",
    "store_records",
    "store_stream",
    "write_records",
]
