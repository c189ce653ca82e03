"""A read-only JSON view of the job system for the web: counts by status, when each source and each
radar's briefing is next due, and the recent jobs of the ledger (`GET /api/jobs`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query
from pydantic import BaseModel
from ..app import Hub
from ..app.jobs import Jobs
from .app import UTCDateTime


class JobOut(BaseModel):
    """One job of the ledger (times in UTC)."""

    key: str
    name: str
    status: str
    attempts: int
    error: str | None = None
    result: dict | None = None
    created_at: UTCDateTime
    started_at: UTCDateTime | None = None
    finished_at: UTCDateTime | None = None


class SourceDue(BaseModel):
    name: str
    kind: str
    last_run_at: UTCDateTime | None = None
    next_run_at: UTCDateTime | None = None
    last_error: str | None = None


class BriefingDue(BaseModel):
    radar: str
    zone: str
    hour: int
    next_briefing_at: UTCDateTime
    last_job: dict | None = None


class JobsOut(BaseModel):
    counts: dict[str, int]
    sources: list[SourceDue]
    briefings: list[BriefingDue]
    jobs: list[JobOut]


def register(app: FastAPI, hub: Hub) -> None:
    jobs = Jobs(hub)  # the app's own hub: its clock is the one the page reports against

    @app.get("/api/jobs", response_model=JobsOut, tags=["jobs"])
    def jobs_view(
        limit: Annotated[int, Query(ge=1, le=500, description="Recent jobs, newest first.")] = 50,
        status: Annotated[str | None, Query(pattern="^(queued|running|done|failed)$")] = None,
    ) -> JobsOut:
        """The job system at a glance: counts by status, what is next due, and the recent jobs."""
        report = jobs.status()
        recent = [JobOut(key=j.key, name=j.name, status=j.status, attempts=j.attempts, error=j.error, result=j.result,
                         created_at=j.created_at, started_at=j.started_at, finished_at=j.finished_at)
                  for j in jobs.recent(limit, status)]
        return JobsOut(counts=report["counts"], sources=report["sources"], briefings=report["briefings"], jobs=recent)
