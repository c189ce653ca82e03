"""Running the configured sources. The decider (`is_due`, `next_run`, `fetch_window`) is pure;
`run_sources` does the I/O: each source fetches its pages, each page is merged in its own
transaction, and whatever one source raises is recorded on that source's row — it never stops
the others. What differs between upstreams (parameters, paging, politeness, schedule) is read
from the source's kind (sources/kinds.py); nothing here names an upstream."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.engine import Engine

from ..errors import AcademicHubError, SourceError
from ..settings import Settings
from ..sources.kinds import Fetch, LinkBatch, Page, find_kind, get_kind, interval_schedule
from ..store import sources as source_store
from ..store.state import StoreValidatorCache, utcnow
from .pipeline import IngestSummary, apply_version_links, feed_key_from_link, write_records

HttpFactory = Callable[..., object]


# ----------------------------------------------------------------------------- the decider


def _schedule(source: dict):
    kind = find_kind(source.get("kind"))
    return kind.next_run if kind is not None else interval_schedule  # an unknown kind runs, and fails on its row


def is_due(source: dict, now: datetime) -> bool:
    """Enabled, and its kind's schedule says its time has come (a source that never ran: at once)."""
    return bool(source["enabled"]) and _schedule(source)(source, now) <= now


def next_run(source: dict, now: datetime) -> datetime | None:
    """When the source is next due (now when it is due already); None when it is disabled."""
    if not source["enabled"]:
        return None
    return max(now, _schedule(source)(source, now))


def fetch_window(source: dict, today: date, lookback_days: int) -> tuple[date, date]:
    """From the day of the last success (a day's overlap: merging is idempotent), else a lookback."""
    last = source["last_success_at"]
    start = last.date() - timedelta(days=1) if last else today - timedelta(days=lookback_days)
    return start, today


def check_params(kind: str, params: dict, settings: Settings | None = None) -> dict:
    """Refuse a source that could never run, when it is added rather than at 3 a.m.: an unknown
    kind, a missing or mismatched parameter. With `settings`, the kind also makes its parameters
    safe to keep (a feed URL checked against private addresses); the params to store are returned."""
    source_kind = get_kind(kind)
    source_kind.check_params(params)
    if settings is not None and source_kind.prepare is not None:
        return source_kind.prepare(params, settings)
    return params


def sources_for_venue(venue) -> list[tuple[str, str, dict, str]]:
    """What "follow this journal" creates: (name, kind, params, label) — Crossref by ISSN for the
    complete record, plus the publisher's TOC feed when the catalog knows one."""
    created = []
    issn = next((i for i in (getattr(venue, "issn_electronic", None), getattr(venue, "issn_print", None)) if i), None)
    issns = getattr(venue, "issns", None)
    if issn is None and issns:
        issn = issns[0]
    if issn:
        created.append((f"crossref:{venue.key}", "crossref", {"issn": issn}, venue.name))
    for i, url in enumerate(getattr(venue, "rss", None) or getattr(venue, "rss_urls", None) or []):
        created.append((f"feed:{venue.key}" + (f"-{i + 1}" if i else ""), "feed", {"url": url, "venue": venue.name}, venue.name))
    return created


# ----------------------------------------------------------------------------- fetching


def _pages(source: dict, settings: Settings, http, start: date, end: date, engine: Engine | None = None) -> Iterator[Page]:
    """The kind's pages of one run; an enrichment kind gets the store's recent papers to look up."""
    fetch = Fetch(
        source=source, settings=settings, http=http, start=start, end=end,
        papers_to_enrich=lambda since, limit: _papers_to_enrich(engine, since, limit) if engine is not None else [],
    )
    return get_kind(source["kind"]).pages(fetch)


def _papers_to_enrich(engine: Engine, since: date, limit: int) -> list[str]:
    """Recent papers Semantic Scholar has not described yet, as its lookup ids (ARXIV:, DOI:, PMID:)."""
    from sqlalchemy import or_, select

    from ..store.schema import papers

    stmt = (
        select(papers.c.arxiv_id, papers.c.doi, papers.c.pmid)
        .where(papers.c.s2_id.is_(None), or_(papers.c.announced_on >= since, papers.c.published_on >= since))
        .order_by(papers.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    lookups = []
    for arxiv_id, doi, pmid in rows:
        if arxiv_id:
            lookups.append(f"ARXIV:{arxiv_id}")
        elif doi:
            lookups.append(f"DOI:{doi}")
        elif pmid:
            lookups.append(f"PMID:{pmid}")
    return lookups


def make_http(settings: Settings, source: dict, engine: Engine, **client_options):
    """One polite client per source, with the interval (and options) its kind asks for. It lives for one run,
    so its `deadline` is the run's (source_run_deadline). `client_options` go to PoliteClient
    (tests give it their sleep and clock)."""
    from ..sources.http import PoliteClient

    kind = get_kind(source["kind"])
    extra: dict = {"max_bytes": settings.max_response_bytes}
    if kind.client_options is not None:
        extra.update(kind.client_options(settings))
    return PoliteClient(
        user_agent=settings.full_user_agent,
        min_interval=kind.interval(settings),
        timeout=settings.http_timeout,
        retries=settings.http_retries,
        max_backoff=settings.http_max_backoff,
        request_deadline=settings.http_request_deadline,
        deadline=settings.source_run_deadline,
        cache=StoreValidatorCache(engine) if kind.conditional else None,
        **{**extra, **client_options},
    )


# ----------------------------------------------------------------------------- running


@dataclass(slots=True)
class SourceRun:
    name: str
    ok: bool
    summary: IngestSummary = field(default_factory=IngestSummary)
    error: str | None = None


def run_source(engine: Engine, settings: Settings, source: dict, *, now: datetime | None = None,
               http_factory: HttpFactory = make_http, progress=None) -> SourceRun:
    now = now or utcnow()
    start, end = fetch_window(source, now.date(), settings.source_lookback_days)
    summary = IngestSummary()
    http = None
    try:
        http = http_factory(settings, source, engine)
        kind = get_kind(source["kind"])
        for page in _pages(source, settings, http, start, end, engine):
            if isinstance(page, LinkBatch):
                with engine.begin() as conn:
                    summary.updated += apply_version_links(conn, page.links, source=source["kind"], now=now)
                continue
            with engine.begin() as conn:
                summary.add(write_records(conn, page.papers, now))
                if kind.file is not None and kind.file.announces and page.feed and page.feed.announced:
                    from ..store.papers import record_announcement

                    record_announcement(
                        conn, source=kind.file.name, feed=feed_key_from_link(page.feed.link, source["name"]),
                        day=page.feed.announced, items=len(page.papers), skip_days=page.feed.skip_days, now=now,
                    )
            if progress:
                progress(len(page.papers))
    except Exception as exc:  # noqa: BLE001 - whatever one source raises is its own failure, recorded on its row
        message = str(exc) if isinstance(exc, AcademicHubError) else f"{type(exc).__name__}: {exc}"
        with engine.begin() as conn:
            source_store.record_failure(conn, source["id"], error=message, now=now)
        return SourceRun(source["name"], False, summary, message)
    finally:
        if http is not None and hasattr(http, "close"):
            http.close()
    with engine.begin() as conn:
        source_store.record_success(conn, source["id"], added=summary.added, updated=summary.updated, now=now)
    return SourceRun(source["name"], True, summary)


def run_sources(engine: Engine, settings: Settings, *, names: list[str] | None = None, due_only: bool = False,
                now: datetime | None = None, http_factory: HttpFactory = make_http,
                on_start: Callable[[dict], object] | None = None, progress=None) -> list[SourceRun]:
    now = now or utcnow()
    with engine.connect() as conn:
        rows = source_store.list_sources(conn)
    if names:
        unknown = sorted(set(names) - {r["name"] for r in rows})
        if unknown:
            raise SourceError(f"no such source: {', '.join(unknown)}")
        rows = [r for r in rows if r["name"] in names]
    else:
        rows = [r for r in rows if r["enabled"]]
    if due_only:
        rows = [r for r in rows if is_due(r, now)]
    results = []
    for row in rows:
        if on_start:
            on_start(row)
        results.append(run_source(engine, settings, row, now=now, http_factory=http_factory, progress=progress))
    return results
