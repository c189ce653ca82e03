"""One long-lived object per process, built from Settings: it owns the engine, the clock, the
embedder (loaded once, kept), one Ranker (its per-radar models are reused) and a candidate cache
of several windows (a briefing's does not evict the radar page's), and offers the use cases. The
front ends (web/, cli, workers) call it and hold no SQL and no orchestration; it never imports them.

Bigger use cases live in their own modules (radar_feed, briefings, ingest_inputs, embedder); the
hub passes itself to them, so they share its engine, ranker and caches."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import date, datetime

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..settings import Settings
from ..store.state import as_utc, utcnow
from .embedder import Embeddings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class Hub:
    def __init__(self, settings: Settings, *, engine: Engine | None = None, clock: Clock | None = None):
        from ..rank.service import CandidateCache

        self.settings = settings
        self.owns_engine = engine is None
        if engine is None:
            from ..store.database import open_store

            engine = open_store(settings.effective_database_url)
        self.engine = engine
        self.clock: Clock = clock or utcnow
        self._ranker = None  # `ranker`, made on first use
        self.candidates = CandidateCache(index_folder=settings.data_dir / "index")
        self.embeddings = Embeddings(settings)  # the embedder, loaded once
        # (conn) -> (model name, statement embedder) or (None, None); a test may put its own here
        self.embedding: Callable = self.embeddings
        self._refresh_lock = threading.Lock()
        self._search = None  # app/search.py's Search, made on the first query
        self.enqueue: Callable[[list[str]], None] | None = None  # the job queue, once one is attached
        self.rankings_computed = 0  # stored rankings this process computed (a page view that reads computes none)
        self._ranking_locks: dict[tuple, threading.Lock] = {}
        self._locks_lock = threading.Lock()  # guards the two above (not _refresh_lock: a warm-up holds that for long)
        self.vector_gaps: dict = {}  # app/radar_feed.py: the missing-vectors notice, per corpus state
        self._reranking: set[int] = set()  # radars with a background re-rank thread running (no queue attached)
        from ..store.data_version import DataVersion, StateMemo

        self.data_version = DataVersion(engine)  # what kept pages are keyed by (web/page_cache.py)
        self.per_state = StateMemo(self.data_version)  # values kept while the store is unchanged

    @property
    def ranker(self):
        """One ranker per weights file, kept: its models are reused. Made on first use: building it
        imports scikit-learn, seconds of start-up that `academichub ingest` (which never ranks)
        should not pay."""
        if self._ranker is None:
            from ..rank.service import ranker_for

            self._ranker = ranker_for(self.settings.rank_weights)
        return self._ranker

    @ranker.setter
    def ranker(self, ranker) -> None:
        self._ranker = ranker

    def attach_queue(self, enqueue: Callable[[list[str]], None]) -> None:
        """The job system's queue (workers/ attaches it where jobs are consumed or sent): from then
        on "run now" is a job in the ledger, so a request returns at once."""
        self.enqueue = enqueue

    # ------------------------------------------------------------------ the store and the clock

    def now(self) -> datetime:
        """UTC now, from the injected clock (tests move time; nothing sleeps)."""
        return self.clock()

    def today(self) -> date:
        """The local calendar day of now: the day a radar's batches are counted in."""
        return as_utc(self.now()).astimezone().date()

    @contextmanager
    def reading(self):
        """A connection for reads (front ends pass it to store functions; they run no SQL)."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def writing(self):
        """A transaction: committed when the block ends, rolled back on an error."""
        with self.engine.begin() as conn:
            yield conn

    def healthy(self) -> bool:
        """Whether the database answers."""
        from ..store.database import reachable

        return reachable(self.engine)

    def close(self) -> None:
        """Release the engine when the hub opened it."""
        self.data_version.close_watcher()
        if self.owns_engine:
            self.engine.dispose()

    # ------------------------------------------------------------------ sources and papers

    def run_sources(self, names: list[str] | None = None, *, due_only: bool = False, on_start=None, progress=None):
        """Run these sources (all enabled by default); one SourceRun each, failures on their rows."""
        from ..ingest.runner import run_sources

        return run_sources(self.engine, self.settings, names=list(names or []), due_only=due_only, now=self.now(),
                           on_start=on_start, progress=progress)

    def request_source_run(self, name: str) -> str:
        """"Run now" from a front end: queued on the job system when one is attached (the job's key is
        returned), else run here at once."""
        if self.enqueue is None:
            self.run_sources([name])
            return f"source:{name}"
        from .jobs import Jobs

        return Jobs(self, enqueue=self.enqueue).request("sources", sources=[name])

    def ingest(self, targets: list[str], *, arxiv_ids: list[str] | None = None):
        """Files and URLs (and arXiv ids through the API) into the store, each on its own: an
        InputIngest to enter (it forks the parsing worker) and then iterate (app/ingest_inputs.py)."""
        from .ingest_inputs import InputIngest

        return InputIngest(self, targets, arxiv_ids=arxiv_ids)

    def embed_new_papers(self, *, batch_size: int | None = None, refresh: bool = False, required: bool = False,
                         progress=None) -> int:
        """Embed the papers that have no vector yet (every paper again with `refresh`); how many.
        Without the embeddings extra: 0, or EmbeddingsUnavailable when `required`. WindowMismatch
        when the store's vectors were made at another length."""
        from ..errors import AcademicHubError
        from ..rank.embeddings import embed_missing, forget_vectors

        try:
            embedder = self.embeddings.embedder(self.engine, fresh_window=refresh)
        except AcademicHubError:  # EmbeddingsUnavailable, or a model that cannot be loaded
            if required:
                raise
            return 0
        if refresh:
            with self.engine.begin() as conn:
                forget_vectors(conn, embedder.name)
            self.embeddings.forget()
            self.neighbours(embedder.name).forget()
        done = embed_missing(self.engine, embedder, batch_size=batch_size, progress=progress)
        self.update_neighbours(embedder.name)
        return done

    def neighbours(self, model: str):
        """The persisted nearest-neighbour index of `model`'s vectors (rank/neighbours.py)."""
        from ..rank.neighbours import store_key, vector_index

        return vector_index(self.candidates.index_folder, model, store=store_key(self.engine))

    def update_neighbours(self, model: str) -> int:
        """Add the vectors stored since the index was last written (the embedding job's last step):
        how many. A failure is logged, never raised: the ranking builds its graph without it."""
        from ..rank.neighbours import update_store_index

        return update_store_index(self.engine, self.candidates.index_folder, model)

    def backfill(self, **what):
        """Harvest a date range from arXiv (app/ingest_inputs.py: backfill): OAI-PMH by set, or
        the query API by category; the summary."""
        from .ingest_inputs import backfill

        return backfill(self, **what)

    def import_library(self, path):
        """A reference library file (BibTeX, RIS, CSL-JSON, JSON lines) into the store: (summary,
        the parsed library) (ingest/library_import.py)."""
        from ..ingest.library_import import import_library

        return import_library(self.engine, path)

    def seed_radar(self, radar: int | str, library, *, origin: str | None) -> tuple[list[int], int]:
        """Every stored paper of an imported library becomes a seed of the radar: (their ids, how
        many seeds are new). RadarError when the radar is gone."""
        from ..ingest.library_import import imported_paper_ids
        from ..store.radars import add_seeds, require_radar

        with self.engine.begin() as conn:
            radar_id = require_radar(conn, radar)
            ids = imported_paper_ids(conn, library.papers)
            added = add_seeds(conn, radar_id, ids, origin=origin) if ids else 0
        return ids, added

    def load_sample_if_empty(self):
        """The bundled sample day into an empty store (the first run shows something): its summary,
        or None when the store has papers."""
        from ..ingest.pipeline import load_sample_if_empty

        return load_sample_if_empty(self.engine)

    def embed_in_background(self) -> None:
        """Embed papers without a vector in a background thread (the server's start)."""
        from ..rank.embedding_jobs import embed_in_background

        embed_in_background(self.engine, self.settings)

    def warm_up_in_background(self) -> "WarmUp":
        """Every radar's stored ranking brought up to date once the start-up embedding (if any) is
        done, then the candidate sets and neighbour graph, in a thread: the first radar page after a
        start then only reads. (Jobs refresh them after
        each fetch in the process that serves pages; dedicated workers warm only their own.)
        `stop()` it before the store closes: it reads the store."""
        from ..rank.embedding_jobs import embedding_in_background
        from ..store.papers import count_papers

        stop = threading.Event()

        def warm() -> None:
            try:
                while embedding_in_background(self.engine):
                    if stop.wait(0.5):
                        return
                with self.engine.connect() as conn:
                    if stop.is_set() or not count_papers(conn):
                        return
                from ..store.radars import all_radar_ids

                with self.engine.connect() as conn:
                    radar_ids = all_radar_ids(conn)
                for radar_id in radar_ids:  # the stored rankings current first: the first radar page reads
                    if stop.is_set():
                        return
                    self.store_rankings(radar_id)
                self.refresh_candidates()  # then the briefings' windows and the neighbour graph
            except Exception:  # noqa: BLE001 - a page view builds what the warm-up could not
                log.exception("warming the candidate sets up failed")

        thread = threading.Thread(target=warm, name="candidates warm-up", daemon=True)
        thread.start()
        return WarmUp(thread, stop)

    def embed_later(self) -> None:
        """Vectors for papers just stored, in a background thread (when `embed_on_ingest` and some
        paper lacks one): the page that waits is not held up."""
        from ..rank.embedding_jobs import embed_in_background, vector_gap

        if not self.settings.embed_on_ingest:
            return
        with self.engine.connect() as conn:
            if vector_gap(conn, self.settings) is None:
                return
        embed_in_background(self.engine, self.settings)

    def vector_gap(self, *, since: date | None = None):
        """Papers without a vector of the configured model (None when none, or no extra)."""
        from ..rank.embedding_jobs import vector_gap

        with self.engine.connect() as conn:
            return vector_gap(conn, self.settings, since=since)

    def search(self, filters, *, sort: str = "relevance", batch: int = 0, size: int = 20, seed: int = 0):
        """Ranked, highlighted search for filters.q (app/search.py): lexical, fused with the stored
        embeddings when there are any; a Chinese query read through the glossary."""
        with self._refresh_lock:
            if self._search is None:
                from .search import Search

                self._search = Search(self)
        return self._search(filters, sort=sort, batch=batch, size=size, seed=seed)

    # ------------------------------------------------------------------ ranking

    def refresh_candidates(self) -> int:
        """Build (or find current) the candidate set of every stored paper and its neighbour graph,
        and the windows (and all-papers samples) of the latest day's and week's briefings, off the
        request path: the job system calls this after new papers, so the next radar page only
        scores. How many candidates."""
        from ..brief.briefing import periods
        from ..rank.ranker import PROPAGATION_K
        from ..rank.service import candidate_set
        from ..store.feed import latest_announcement
        from .briefings import covering_sample

        with self._refresh_lock, self.engine.connect() as conn:
            model, _embed = self.embedding(conn)
            cs = candidate_set(conn, since=None, model=model, ranker=self.ranker, cache=self.candidates)
            cs.neighbour_graph(PROPAGATION_K)
            day = latest_announcement(conn)
            if day is not None:  # the windows of the daily and weekly briefings (and the periods before)
                for week in (False, True):
                    for period in periods(day, week):
                        candidate_set(conn, since=period[0], model=self.settings.embedding_model, ranker=self.ranker,
                                      cache=self.candidates)
                        covering_sample(self, conn, period[0], period[1], max(1, self.settings.briefing_papers),
                                        self.settings.embedding_model)  # the all-papers briefing's papers
            return len(cs)

    def update_candidate_files(self) -> int:
        """The candidate files (rank/candidate_files.py) appended with the papers stored since they
        were written (or written, the first time), with the configured model's vectors where it
        has any: `ingest` leaves them current, so the first `rank` or radar page after it maps
        them instead of reading and hashing every paper. How many papers they hold."""
        from ..rank.candidate_files import candidate_files
        from ..rank.embeddings import model_name
        from ..store.papers import count_vectors

        model = model_name(self.settings.embedding_model)
        with self.engine.connect() as conn:
            files = candidate_files(self.candidates.index_folder / "candidates", conn,
                                    self.ranker.lexical.vectorizer.n_features)
            return files.update(conn, model if count_vectors(conn, model) else None, self.ranker.lexical)["count"]

    def next_batch(self, radar_name: str, filters, size: int, wanted: int | None = None, *, record: bool = True):
        """Batch `wanted` of today again, or a new batch of papers the radar has not shown today
        (app/radar_feed.py): a RadarBatch with the cards, what is left and the state. Without
        `record` nothing is written (GET requests)."""
        from .radar_feed import next_batch

        return next_batch(self, radar_name, filters, size, wanted, record=record)

    def advance_batch(self, radar_name: str, filters, size: int, seen: list[int]):
        """"Another batch": record what the reader saw, then make and record a new batch."""
        from .radar_feed import advance

        return advance(self, radar_name, filters, size, seen)

    def ranking_lock(self, radar_id: int, period: str) -> threading.Lock:
        """One lock per (radar, period): two requests that find no ranking compute it once."""
        with self._locks_lock:
            return self._ranking_locks.setdefault((radar_id, period), threading.Lock())

    def store_rankings(self, radar_id: int) -> list[str]:
        """Rank a radar again where its stored rankings are stale or missing (the latest day, and
        any other period stored); the periods ranked (app/radar_feed.py: refresh_rankings)."""
        from .radar_feed import refresh_rankings

        return refresh_rankings(self, radar_id)

    def rerank_later(self, radar_id: int, since: date | None = None, version: str | None = None) -> None:
        """Ask for a radar's rankings to be made again off the request path: a `rank` job when a
        queue is attached (its key names the inputs' version, so many views ask once), else a
        background thread of this process."""
        if self.enqueue is not None:
            from .jobs import Jobs

            try:
                Jobs(self, enqueue=self.enqueue).request("rank", radar=str(radar_id), day=since, version=version)
            except Exception:  # noqa: BLE001 - the stale ranking is still shown; the next view asks again
                log.exception("asking for a re-rank of radar %s failed", radar_id)
            return
        with self._locks_lock:
            if radar_id in self._reranking:
                return
            self._reranking.add(radar_id)

        def work() -> None:
            try:
                self.store_rankings(radar_id)
            except Exception:  # noqa: BLE001 - the next view asks again
                log.exception("re-ranking radar %s failed", radar_id)
            finally:
                with self._locks_lock:
                    self._reranking.discard(radar_id)

        threading.Thread(target=work, name=f"re-rank radar {radar_id}", daemon=True).start()

    def preview(self, conn: Connection, radar) -> dict:
        """The radar editor's preview of the day (app/radar_feed.py)."""
        from .radar_feed import preview

        return preview(self, conn, radar)

    def rank(self, radar_name: str, *, since: date | None = None, limit: int | None = None, worth_saying: bool = True):
        """Stored papers ranked for a radar (since a day), best first, each with why (with
        `worth_saying`, only the reasons a page shows); NotFound for an unknown radar. Read from
        the radar's stored ranking while it is current, else ranked (and stored) here
        (app/radar_feed.py: ranked_for_api): the API, MCP and the CLI answer the same."""
        from .radar_feed import ranked_for_api

        return ranked_for_api(self, radar_name, since=since, limit=limit, worth_saying=worth_saying)

    def record_shown(self, radar_id: int, day: date, paper_ids: list[int], batch: int) -> bool:
        """Record a batch as shown today; False when another request recorded it at the same moment."""
        from ..store.radars import mark_shown

        try:
            with self.engine.begin() as conn:
                mark_shown(conn, radar_id, day, paper_ids, batch)
        except IntegrityError:
            return False
        return True

    def forget_shown(self, radar_id: int, day: date | None = None) -> None:
        """Start a radar's batches of the day (today by default) over."""
        from ..store.radars import clear_shown

        with self.engine.begin() as conn:
            clear_shown(conn, radar_id, day or self.today())

    # ------------------------------------------------------------------ briefings and delivery

    def briefing(self, radar: str | int | None, day: date | None, *, week: bool = False, lang: str | None = None,
                 regenerate: bool = False, missing_radar_ok: bool = False, write: bool = True):
        """(briefing, radar id, day) for a front end: `radar` a name or id (None or "all": every paper;
        unknown: NotFound, or every paper with `missing_radar_ok`); `day` None: the latest announced
        day; the briefing is None when the store has no day yet. Without `write` (a GET) only a
        stored briefing is returned (None when none was written yet): reading never calls the LLM."""
        from ..brief.briefing import latest_briefing, normalise_lang, periods
        from .briefings import brief, latest_day, resolve_radar

        language = normalise_lang(lang or self.settings.default_language)
        radar_id = resolve_radar(self, radar, missing_ok=missing_radar_ok)
        day = day or latest_day(self)
        if day is None:
            return None, radar_id, None
        if not write:
            return latest_briefing(self.engine, radar_id=radar_id, period=periods(day, week)[0], lang=language), radar_id, day
        return brief(self, radar_id, day, week=week, lang=language, regenerate=regenerate), radar_id, day

    def write_briefing(self, radar_name: str | None, day: date, *, week: bool = False, lang: str | None = None,
                       regenerate: bool = False):
        """The stored briefing of a radar (None: the whole store) for the period ending `day`;
        written when missing, reused when its papers have not changed."""
        from ..brief.briefing import normalise_lang
        from .briefings import brief, resolve_radar

        language = normalise_lang(lang or self.settings.default_language)
        radar_id = resolve_radar(self, radar_name) if radar_name else None
        return brief(self, radar_id, day, week=week, lang=language, regenerate=regenerate)

    def deliver(self, radar: str | int, day: date) -> list:
        """The digest jobs (app/schedule.JobIntent) due now for the channels that carry this radar,
        chained after its briefing of `day` so they go out once it is written; each channel's
        period is sent once, by its own `digest:CHANNEL:PERIOD` job (app/delivery.py)."""
        from .delivery import due_for_radar

        return due_for_radar(self, int(radar))

    def deliver_digest(self, channel_id: int, period: str, *, late: bool = False, held_by_job: bool = False):
        """Send one channel's digest of a period, exactly once (app/delivery.py): a SendResult."""
        from .delivery import deliver_channel

        return deliver_channel(self, channel_id, period, late=late, held_by_job=held_by_job)


class WarmUp:
    """The server's start-up warm-up thread: `stop` asks it to give up waiting and joins it."""

    def __init__(self, thread: threading.Thread, stop: threading.Event):
        self.thread, self._stop = thread, stop

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()
