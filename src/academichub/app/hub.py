"""One long-lived object per process, built from Settings: it owns the engine, the clock and (lazily)
the embedder and the ranker, and offers the use cases. The front ends (web/, cli, workers) call it;
it never imports them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy.engine import Engine

from ..settings import Settings
from ..store.state import utcnow

Clock = Callable[[], datetime]


class Hub:
    def __init__(self, settings: Settings, *, engine: Engine | None = None, clock: Clock | None = None):
        self.settings = settings
        if engine is None:
            from ..store.database import open_store

            engine = open_store(settings.effective_database_url)
        self.engine = engine
        self.clock: Clock = clock or utcnow

    def now(self) -> datetime:
        """Aware UTC now, from the injected clock (tests move time; nothing sleeps)."""
        return self.clock()

    # ------------------------------------------------------------------ sources and papers

    def run_sources(self, names: list[str] | None = None, *, due_only: bool = False, on_start=None, progress=None):
        """Run these sources (all enabled by default); one SourceRun each, failures on their rows."""
        from ..ingest.runner import run_sources

        return run_sources(self.engine, self.settings, names=list(names or []), due_only=due_only, now=self.now(),
                           on_start=on_start, progress=progress)

    def request_source_run(self, name: str) -> str:
        """"Run now" from a front end: queued on the job system when one is attached (the job's key is
        returned), else run here at once."""
        self.run_sources([name])
        return f"source:{name}"

    def embed_new_papers(self) -> int:
        """Embed the papers that have no vector yet; how many (0 without the embeddings extra)."""
        from ..rank.embedding_jobs import embed_new_papers

        return embed_new_papers(self.engine, self.settings)

    def refresh_candidates(self) -> None:
        """Rebuild the candidate sets and neighbour graph off the request path (after new papers)."""

    # ------------------------------------------------------------------ briefings and delivery

    def write_briefing(self, radar_name: str | None, day: date, *, week: bool = False, lang: str | None = None):
        """The stored briefing of a radar (None: the whole store) for the period ending `day`;
        written when missing, reused when its papers have not changed."""
        from ..brief.briefing import make_briefing, normalise_lang, periods
        from ..brief.inputs import radar_paper_ids
        from ..store.radars import radar_id_of

        language = normalise_lang(lang or self.settings.default_language)
        period, previous = periods(day, week)
        limit = max(1, self.settings.briefing_papers)
        model = self.settings.embedding_model
        with self.engine.connect() as conn:
            radar_id = radar_id_of(conn, radar_name) if radar_name else None
            ids = radar_paper_ids(conn, radar_id, period[0], period[1], limit, model)
            previous_ids = radar_paper_ids(conn, radar_id, previous[0], previous[1], limit, model)
        return make_briefing(self.engine, radar_id=radar_id, paper_ids=ids, period=period, lang=language,
                             settings=self.settings, previous_paper_ids=previous_ids or None)

    def deliver(self, radar_name: str, day: date) -> list:
        """Send a radar's briefing of `day` through its delivery channels (the delivery issue adds them)."""
        return []
