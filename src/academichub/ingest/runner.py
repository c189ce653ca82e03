"""Running the configured sources. The decider (`is_due`, `fetch_window`, `new_source_params`) is
pure; `run_sources` does the I/O: each source fetches its pages, each page is merged in its own
transaction, and whatever one source raises is recorded on that source's row — it never stops
the others."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.engine import Engine

from ..errors import AcademicHubError, ConfigError, SourceError
from ..model import ParsedBatch
from ..settings import Settings
from ..store import sources as source_store
from ..store.state import StoreValidatorCache, utcnow
from .pipeline import IngestSummary, apply_version_links, feed_key_from_link, write_records

HttpFactory = Callable[..., object]


# ----------------------------------------------------------------------------- the decider


def is_due(source: dict, now: datetime) -> bool:
    if not source["enabled"]:
        return False
    last = source["last_run_at"]
    return last is None or now - last >= timedelta(minutes=source["interval_minutes"])


def next_run(source: dict, now: datetime) -> datetime | None:
    """When the source is next due (now when it never ran); None when it is disabled."""
    if not source["enabled"]:
        return None
    last = source["last_run_at"]
    return now if last is None else max(now, last + timedelta(minutes=source["interval_minutes"]))


def fetch_window(source: dict, today: date, lookback_days: int) -> tuple[date, date]:
    """From the day of the last success (a day's overlap: merging is idempotent), else a lookback."""
    last = source["last_success_at"]
    start = last.date() - timedelta(days=1) if last else today - timedelta(days=lookback_days)
    return start, today


_REQUIRED = {
    "arxiv": ("archives",),
    "crossref": (),  # one of issn / member / prefix
    "pubmed": (),  # journal and/or term
    "biorxiv": (),
    "medrxiv": (),
    "openalex": (),  # source_id or issn
    "feed": ("url",),
    "semanticscholar": (),
}


def check_params(kind: str, params: dict) -> None:
    """Refuse a source that could never run, when it is added rather than at 3 a.m."""
    if kind not in source_store.KINDS:
        raise ConfigError(f"unknown source kind {kind!r}; kinds are: {', '.join(source_store.KINDS)}")
    for name in _REQUIRED[kind]:
        if not params.get(name):
            raise ConfigError(f"a {kind} source needs --param {name}=…")
    if kind == "crossref" and sum(bool(params.get(k)) for k in ("issn", "member", "prefix")) != 1:
        raise ConfigError("a crossref source needs exactly one of issn=…, member=… or prefix=…")
    if kind == "pubmed" and not (params.get("journal") or params.get("term")):
        raise ConfigError("a pubmed source needs journal=… and/or term=…")
    if kind == "openalex" and not (params.get("source_id") or params.get("issn")):
        raise ConfigError("an openalex source needs source_id=S… or issn=…")
    if kind == "arxiv":
        from ..sources.arxiv_rss import feed_url

        feed_url("https://rss.arxiv.org/rss/", str(params["archives"]).replace(" ", "+").split("+"))


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


@dataclass(slots=True)
class _LinkBatch:
    """Preprint -> journal DOI pairs (bioRxiv /pubs): links, not records."""

    links: list[tuple[str, str]]


def _pages(source: dict, settings: Settings, http, start: date, end: date) -> Iterator[ParsedBatch]:
    kind, params = source["kind"], source["params"]
    if kind == "arxiv":
        from ..sources.arxiv_rss import feed_url, parse_rss

        url = feed_url(settings.arxiv_rss_url, str(params["archives"]).replace(" ", "+").split("+"))
        fetched = http.get(url)
        if fetched.not_modified:
            return
        yield parse_rss(fetched.content, url)
    elif kind == "crossref":
        from ..sources.crossref import CrossrefClient

        client = CrossrefClient(http, settings.crossref_url, settings.contact_email)
        yield from client.iter_pages(
            issn=params.get("issn"), member_id=params.get("member"), prefix=params.get("prefix"),
            from_index_date=start, rows=int(params.get("rows", 200)),
        )
    elif kind == "pubmed":
        from ..sources.pubmed import PubMedClient

        key = settings.pubmed_api_key.get_secret_value() if settings.pubmed_api_key else None
        client = PubMedClient(http, settings.pubmed_url, api_key=key, email=settings.contact_email)
        yield from client.iter_search(
            params.get("term") or "", journal=params.get("journal"), mindate=start, maxdate=end
        )
    elif kind in ("biorxiv", "medrxiv"):
        from ..sources.biorxiv import BiorxivClient

        client = BiorxivClient(http, settings.biorxiv_url)
        yield from client.iter_details(kind, start, end, category=params.get("category"))
        if params.get("pubs", "true") != "false":
            links = [(link.preprint_doi, link.published_doi) for link in client.iter_pubs(kind, start, end)]
            if links:
                yield _LinkBatch(links)
    elif kind == "openalex":
        from ..sources.openalex import OpenAlexClient

        client = OpenAlexClient(http, settings.openalex_url, settings.contact_email)
        filters = {"from_created_date": start.isoformat()}
        if params.get("source_id"):
            filters["primary_location.source.id"] = params["source_id"]
        if params.get("issn"):
            filters["primary_location.source.issn"] = params["issn"]
        yield from client.iter_pages(filters)
    elif kind == "feed":
        from ..sources.publisher_feed import parse_feed

        url = params["url"]  # checked (and pinned) per request by make_http's GuardedTransport
        fetched = http.get(url)
        if fetched.not_modified:
            return
        yield parse_feed(fetched.content, url, venue=params.get("venue"))
    elif kind == "semanticscholar":
        from ..sources.semanticscholar import SemanticScholarClient

        key = settings.semanticscholar_api_key.get_secret_value() if settings.semanticscholar_api_key else None
        client = SemanticScholarClient(http, settings.semanticscholar_url, api_key=key)
        lookups = _papers_to_enrich(source["_engine"], start, int(params.get("limit", 500)))
        for chunk_start in range(0, len(lookups), 500):
            found = client.papers_batch(lookups[chunk_start : chunk_start + 500])
            yield ParsedBatch(papers=[paper for paper in found if paper is not None])
    else:  # pragma: no cover - check_params refuses unknown kinds
        raise ConfigError(f"unknown source kind {kind!r}")


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
    """One polite client per source, with the interval its upstream asks for. It lives for one run,
    so its `deadline` is the run's (source_run_deadline). `client_options` go to PoliteClient
    (tests give it their sleep and clock)."""
    from ..sources.http import PoliteClient

    kind = source["kind"]
    interval = {
        "arxiv": settings.arxiv_min_interval, "crossref": 0.1, "openalex": 0.1, "biorxiv": 1.0, "medrxiv": 1.0,
        "semanticscholar": 1.0,
    }.get(kind, 0.0)
    if kind == "pubmed":
        from ..sources.pubmed import pubmed_min_interval

        interval = pubmed_min_interval(settings.pubmed_api_key.get_secret_value() if settings.pubmed_api_key else None)
    extra: dict = {"max_bytes": settings.max_response_bytes}
    if kind == "feed":
        extra["max_bytes"] = min(settings.feed_max_bytes, settings.max_response_bytes)
        if not settings.allow_private_urls:
            from ..sources.safe_url import GuardedTransport

            extra["transport"] = GuardedTransport()
    return PoliteClient(
        user_agent=settings.full_user_agent,
        min_interval=interval,
        timeout=settings.http_timeout,
        retries=settings.http_retries,
        max_backoff=settings.http_max_backoff,
        request_deadline=settings.http_request_deadline,
        deadline=settings.source_run_deadline,
        cache=StoreValidatorCache(engine) if kind in ("arxiv", "feed") else None,
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
        for page in _pages({**source, "_engine": engine}, settings, http, start, end):
            if isinstance(page, _LinkBatch):
                with engine.begin() as conn:
                    summary.updated += apply_version_links(conn, page.links, source=source["kind"], now=now)
                continue
            with engine.begin() as conn:
                summary.add(write_records(conn, page.papers, now))
                if source["kind"] == "arxiv" and page.feed and page.feed.announced:
                    from ..store.papers import record_announcement

                    record_announcement(
                        conn, source="arxiv-rss", feed=feed_key_from_link(page.feed.link, source["name"]),
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
