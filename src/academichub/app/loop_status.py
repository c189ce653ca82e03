"""Where the daily loop stands, for a front end's header: when the store last took in papers,
when the next fetch is due, whether the day on show is the bundled sample, and whether this is a
first run (no source configured). A use case, so the feed route only renders it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.engine import Engine

from ..ingest.pipeline import SAMPLE_FEED
from ..ingest.runner import next_run
from ..store import loop as loop_store
from ..store.feed import latest_announcement
from ..store.sources import list_sources
from ..sources.arxiv_oai import naive_utc
from ..store.state import as_utc

SAMPLE_SOURCE = "arxiv-rss"  # load_sample_if_empty records the sample's announcement under this source and SAMPLE_FEED


@dataclass(frozen=True, slots=True)
class LoopStatus:
    now: datetime  # aware UTC
    sources: int  # configured sources
    enabled: int  # of which enabled
    last_fetch_at: datetime | None  # newest successful source run
    newest_paper_at: datetime | None  # newest paper stored (a sample load counts)
    next_fetch_at: datetime | None  # earliest next run of the enabled sources
    next_source: str | None  # the source due then
    latest_day: date | None  # the newest announced day: what the feed shows by default
    sample_day: date | None  # the day of the bundled sample, when it is loaded
    shown_day: date | None  # the day on show (the filter's, else latest_day)

    @property
    def last_updated_at(self) -> datetime | None:
        """When the store last took in papers: a source run or any stored paper, the newer."""
        known = [t for t in (self.last_fetch_at, self.newest_paper_at) if t is not None]
        return max(known) if known else None

    @property
    def fetch_due_now(self) -> bool:
        return self.next_fetch_at is not None and self.next_fetch_at <= self.now

    @property
    def showing_sample(self) -> bool:
        """The day on show is the bundled sample day (the sample's own announcement is stored)."""
        return self.sample_day is not None and self.shown_day == self.sample_day

    @property
    def first_run(self) -> bool:
        """No source is configured: nothing will ever be fetched until the user picks some."""
        return self.sources == 0


def loop_status(hub_or_engine, now: datetime, *, day: date | None = None) -> LoopStatus:
    """The loop's state at `now` (a Hub or an Engine); `day` is the day the page shows, if filtered."""
    engine: Engine = getattr(hub_or_engine, "engine", hub_or_engine)
    naive_now = naive_utc(now)
    with engine.connect() as conn:
        rows = list_sources(conn)
        last_fetch = loop_store.newest_success_at(conn)
        newest_paper = loop_store.newest_paper_stored_at(conn)
        latest = latest_announcement(conn)
        sample = loop_store.announcement_day(conn, source=SAMPLE_SOURCE, feed=SAMPLE_FEED)
    upcoming = sorted(
        ((when, row["name"]) for row in rows if (when := next_run(row, naive_now)) is not None), key=lambda pair: pair
    )
    next_at, next_name = upcoming[0] if upcoming else (None, None)
    return LoopStatus(
        now=as_utc(naive_now),
        sources=len(rows),
        enabled=sum(1 for row in rows if row["enabled"]),
        last_fetch_at=last_fetch,
        newest_paper_at=newest_paper,
        next_fetch_at=as_utc(next_at) if next_at else None,
        next_source=next_name,
        latest_day=latest,
        sample_day=sample,
        shown_day=day or latest,
    )
