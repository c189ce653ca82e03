"""Ingest what a person names: files (format detected), URLs, arXiv RSS categories and arXiv ids
(through the API), each on its own, so one bad input never stops the others. `academichub ingest`
draws progress and prints; the order of things (fork the parsing worker first, one polite HTTP
client for every URL, close it after) lives here.

    with hub.ingest(targets, arxiv_ids=ids) as run:   # forks the parsing worker, if any
        for result in run.results(on_target=...):     # then start progress bars (threads)
            ..."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import AcademicHubError
from ..ingest.pipeline import IngestSummary

if TYPE_CHECKING:  # pragma: no cover
    from .hub import Hub

# on_target(target, total, unit) -> advance(n): a front end's progress for one input
OnTarget = Callable[[str, "int | None", str], Callable[[int], None]]


def _is_url(target: str) -> bool:
    return target.startswith(("http://", "https://"))


def feed_targets(rss_url: str, feeds: list[str]) -> list[str]:
    """The arXiv RSS URLs of `--feed` values (archives or categories, "cs+math" for several)."""
    from ..sources.arxiv_rss import feed_url

    return [feed_url(rss_url, archives.replace(" ", "+").split("+")) for archives in feeds]


def http_client(settings, *, arxiv: bool, engine=None):
    """The polite HTTP client of the settings (arXiv's interval when `arxiv`; conditional requests
    remembered in the store when `engine` is given)."""
    from ..sources.http import PoliteClient
    from ..store.state import StoreValidatorCache

    return PoliteClient(
        user_agent=settings.full_user_agent,
        min_interval=settings.arxiv_min_interval if arxiv else 0.0,
        timeout=settings.http_timeout,
        retries=settings.http_retries,
        max_backoff=settings.http_max_backoff,
        max_bytes=settings.max_response_bytes,
        request_deadline=settings.http_request_deadline,
        cache=StoreValidatorCache(engine) if engine is not None else None,
    )


def parsing_worker(settings, engine, paths: list):
    """One forked parsing worker for the bulk files among `paths`, when the settings and the
    machine allow it (None otherwise). Enter it before starting a progress bar (a thread)."""
    from ..ingest.pipeline import ParsingWorker, worker_available

    if not (settings.ingest_worker and worker_available()):
        return None
    return ParsingWorker(paths, settings.ingest_batch_size, engine.dialect.name)


def backfill(hub: "Hub", *, via: str, set_spec: str | None, category: str | None, start, end,
             metadata_prefix: str = "arXiv", limit: int | None = None, progress=None):
    """Harvest a date range from arXiv: OAI-PMH by set (resumable), or the query API by category
    and submitted date. The summary of what was stored."""
    from ..ingest.harvest import backfill_api, harvest_oai

    settings = hub.settings
    client = http_client(settings, arxiv=True, engine=None)
    try:
        if via == "oai":
            from ..sources.arxiv_oai import OaiClient

            return harvest_oai(hub.engine, OaiClient(client, settings.arxiv_oai_url), metadata_prefix=metadata_prefix,
                               set_spec=set_spec, from_date=start, until_date=end, progress=progress)
        if via != "api" or not category:
            raise AcademicHubError("backfill: via oai, or via api with a category")
        from ..sources.arxiv_api import ArxivApiClient

        return backfill_api(hub.engine, ArxivApiClient(client, settings.arxiv_api_url), category=category,
                            submitted_from=start, submitted_to=end, limit=limit, progress=progress)
    finally:
        client.close()


@dataclass(slots=True)
class IngestResult:
    target: str  # the file, the URL, or "arXiv API (N ids)"
    summary: IngestSummary | None  # None when the input failed as a whole
    error: str | AcademicHubError | None = None

    @property
    def ok(self) -> bool:
        return self.summary is not None


class InputIngest:
    """One `ingest` of several inputs; a context manager (the parsing worker and the HTTP client)."""

    def __init__(self, hub: "Hub", targets: list[str], *, arxiv_ids: list[str] | None = None):
        self.hub = hub
        self.targets = list(targets)
        self.arxiv_ids = list(arxiv_ids or [])
        self._parsing = None
        self._client = None
        self.total = IngestSummary()

    def __enter__(self) -> "InputIngest":
        files = [t for t in self.targets if not _is_url(t)]
        self._parsing = parsing_worker(self.hub.settings, self.hub.engine, files)
        if self._parsing is not None:
            self._parsing.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._parsing is not None:
            self._parsing.__exit__(*exc)
            self._parsing = None

    def _http(self):
        if self._client is None:
            self._client = http_client(self.hub.settings, arxiv=True, engine=self.hub.engine)
        return self._client

    def results(self, *, on_target: OnTarget | None = None) -> Iterator[IngestResult]:
        """Each input in turn, then the arXiv ids; `self.total` adds them up as they come."""
        from ..ingest.pipeline import ingest_file, ingest_url, store_records

        settings, engine = self.hub.settings, self.hub.engine
        start = on_target or (lambda target, total, unit: (lambda n: None))
        for target in self.targets:
            try:
                if _is_url(target):
                    advance = start(target, None, "records")
                    summary = ingest_url(engine, self._http(), target, batch_size=settings.ingest_batch_size,
                                         progress=advance)
                else:
                    path = Path(target)
                    size = path.stat().st_size if path.is_file() else None
                    advance = start(target, size, "bytes")
                    summary = ingest_file(engine, path, batch_size=settings.ingest_batch_size, on_bytes=advance,
                                          worker=False, parsing=self._parsing)
            except AcademicHubError as exc:
                self.total.failed += 1
                yield IngestResult(target, None, exc)
                continue
            except FileNotFoundError as exc:
                self.total.failed += 1
                yield IngestResult(target, None, f"{target}: file not found ({exc.strerror})")
                continue
            self.total.add(summary)
            yield IngestResult(target, summary)
        if self.arxiv_ids:
            from ..sources.arxiv_api import ArxivApiClient

            label = f"arXiv API ({len(self.arxiv_ids)} ids)"
            try:
                batch = ArxivApiClient(self._http(), settings.arxiv_api_url).query(id_list=self.arxiv_ids)
                summary = store_records(engine, batch.papers)
            except AcademicHubError as exc:
                self.total.failed += 1
                yield IngestResult(label, None, exc)
                return
            self.total.add(summary)
            yield IngestResult(label, summary)


__all__ = ["IngestResult", "InputIngest", "backfill", "feed_targets", "http_client", "parsing_worker"]
