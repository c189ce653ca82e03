"""Bulk harvests that survive interruption.

OAI-PMH lists run to thousands of pages and arXiv asks harvesters to pause between them, so a
harvest takes hours and will meet a 503 or a dead connection somewhere. Each page's papers and
the resumption token that follows them are committed in ONE transaction: after a crash the store
holds exactly the pages before the saved token, and the next run with the same parameters picks
up from that token. Nothing is lost and nothing is merged twice."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..errors import FeedError, ParseError, SourceError, StoreError
from ..sources.arxiv_oai import SOURCE as OAI_SOURCE
from ..sources.arxiv_oai import OaiClient, oai_day
from ..store.state import mark_harvest_failed, save_harvest_progress, start_or_resume_harvest
from .pipeline import IngestSummary, Progress, write_records

if TYPE_CHECKING:  # arxiv_api is imported only by those who use it
    from ..sources.arxiv_api import ArxivApiClient


def harvest_oai(
    engine: Engine,
    client: OaiClient,
    *,
    metadata_prefix: str = "arXiv",
    set_spec: str | None = None,
    from_date: date | str | None = None,
    until_date: date | str | None = None,
    progress: Progress | None = None,
) -> IngestSummary:
    """ListRecords to the end, resuming a harvest with the same endpoint and parameters if one was cut off."""
    params = {
        "endpoint": client.base_url,
        "metadataPrefix": metadata_prefix,
        "set": set_spec,
        "from": oai_day(from_date),
        "until": oai_day(until_date),
    }
    with engine.begin() as conn:
        harvest = start_or_resume_harvest(conn, OAI_SOURCE, params)
    summary = IngestSummary()
    token = harvest.resumption_token
    done = harvest.records_done
    if token:
        summary.notes.append(f"resumed harvest {harvest.id} after {done} records")
    try:
        while True:
            if token:
                page = client.list_records(resumption_token=token)
            else:
                page = client.list_records(
                    metadata_prefix=metadata_prefix, set_spec=set_spec, from_date=from_date, until_date=until_date
                )
            done += len(page.papers)
            try:
                with engine.begin() as conn:
                    summary.add(write_records(conn, page.papers))
                    save_harvest_progress(
                        conn,
                        harvest.id,
                        token=page.resumption_token,
                        records_done=done,
                        complete_list_size=page.complete_list_size,
                    )
            except SQLAlchemyError as exc:
                raise StoreError(f"writing an OAI-PMH page of {len(page.papers)} records failed: {exc}") from exc
            if progress:
                progress(len(page.papers))
            if not page.resumption_token:
                return summary
            if page.resumption_token == token:
                raise SourceError(f"OAI-PMH server repeated resumption token {token!r}; stopping", url=client.base_url)
            token = page.resumption_token
    except (SourceError, ParseError, StoreError) as exc:
        _mark_failed(engine, harvest.id, exc)
        raise


def _mark_failed(engine: Engine, harvest_id: int, exc: Exception) -> None:
    """Record the failure in its own transaction; the saved token stays, so the next run resumes.
    An expired token (badResumptionToken) is forgotten instead: the next run starts over, and the
    pages already stored merge as unchanged."""
    dead_token = isinstance(exc, FeedError) and "badResumptionToken" in str(exc)
    try:
        with engine.begin() as conn:
            mark_harvest_failed(conn, harvest_id, str(exc), forget_token=dead_token)
    except SQLAlchemyError:
        pass  # the store itself is failing: the original error is the one worth raising


def backfill_api(
    engine: Engine,
    api_client: ArxivApiClient,
    *,
    category: str,
    submitted_from: date,
    submitted_to: date,
    page_size: int = 100,
    limit: int | None = None,
    progress: Progress | None = None,
) -> IngestSummary:
    """A category's papers over a submission window from the search API, one transaction per page,
    so an interrupted backfill keeps the pages it finished (a rerun merges them as unchanged)."""
    query = api_client.search_category(category, submitted_from, submitted_to)
    summary = IngestSummary()
    for page in api_client.iter_pages(search_query=query, page_size=page_size, limit=limit):
        try:
            with engine.begin() as conn:
                summary.add(write_records(conn, page.papers))
        except SQLAlchemyError as exc:
            raise StoreError(f"writing an arXiv API page of {len(page.papers)} records failed: {exc}") from exc
        if progress:
            progress(len(page.papers))
    return summary
