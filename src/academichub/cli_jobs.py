"""`academichub worker [--concurrency N]` and `academichub jobs list|status|run NAME`: the job
system's command-line front end (the queue is workers/, the use cases app/jobs.py).

Registered by cli.py. The shared helpers (_settings, _fail, out, console) are looked up on the cli
module when a command runs."""

from __future__ import annotations

import json
from datetime import date as Date
from typing import Annotated, Optional

import typer

from . import cli as _cli
from .errors import AcademicHubError
from .terminal import add_text_row, text_table

jobs_app = typer.Typer(help="The job system: what ran, what is due, and running a job now.", no_args_is_help=True)

QUEUE_SETTINGS = ("queue_url", "queue_name")
SCHEDULE_SETTINGS = ("timezone", "briefing_hour")


def _queue(settings):
    from .workers import JobQueue

    return JobQueue(settings)


@_cli.setting_flags(*QUEUE_SETTINGS, "scheduler", "job_lease_seconds", *SCHEDULE_SETTINGS)
def worker_command(
    concurrency: Annotated[Optional[int], typer.Option("--concurrency", help="Worker threads (default: the worker_concurrency setting, ACADEMICHUB_WORKER_CONCURRENCY).",
                                                       show_default=False)] = None,
) -> None:
    """Run a job consumer (threads of one process) until SIGINT/SIGTERM; start as many as you like, on
    any machines, against one Redis queue and one PostgreSQL store."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = _cli._settings(**({"worker_concurrency": concurrency} if concurrency else {}))
        queue = _queue(settings)
        queue.jobs  # the Hub (and the store's migrations) before the first message
        consumer = queue.consumer(settings.worker_concurrency)
    except AcademicHubError as exc:
        _cli._fail(exc)
    _cli.console.print(
        f"worker: {settings.worker_concurrency} threads on {'Redis' if settings.queue_url else 'the SQLite queue'}"
        f" (queue {settings.queue_name}), scheduler {'on' if settings.scheduler else 'off'}"
    )
    consumer.run()


@jobs_app.command("list")
def jobs_list(
    limit: Annotated[int, typer.Option(help="How many (newest first).")] = 30,
    status: Annotated[Optional[str], typer.Option(help="Only jobs in this state: queued, running, done or failed.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Recent jobs from the ledger: key, status, attempts, times, error."""
    from .app import Hub
    from .app.jobs import Jobs

    try:
        rows = Jobs(Hub(_cli._settings())).recent(limit, status)
    except AcademicHubError as exc:
        _cli._fail(exc)
    if fmt == "json":
        _cli.out.print_json(json.dumps([
            {"key": j.key, "name": j.name, "status": j.status, "attempts": j.attempts, "error": j.error,
             "result": j.result, "worker": j.worker, "created_at": j.created_at, "started_at": j.started_at,
             "finished_at": j.finished_at} for j in rows], default=str, ensure_ascii=False))
        return
    table = text_table(f"{len(rows)} jobs", ["key", "status", "attempts", "created", "started", "finished",
                                            ("error", {"overflow": "fold"})])
    for j in rows:
        add_text_row(table, j.key, j.status, str(j.attempts), str(j.created_at)[:19], str(j.started_at or "")[:19],
                     str(j.finished_at or "")[:19], j.error or "")
    _cli.out.print(table)


@jobs_app.command("status")
@_cli.setting_flags(*QUEUE_SETTINGS, *SCHEDULE_SETTINGS)
def jobs_status(fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table") -> None:
    """Jobs by status, the queue's length, and when each source and each radar's briefing is next due."""
    from .app import Hub
    from .app.jobs import Jobs

    try:
        settings = _cli._settings()
        report = Jobs(Hub(settings)).status()
        queue = _queue(settings)
        report["queue"] = {"pending": queue.pending(), "scheduled": queue.scheduled()}
    except AcademicHubError as exc:
        _cli._fail(exc)
    except Exception as exc:  # noqa: BLE001 - an unreachable queue (Redis down) is reported, not a traceback
        _cli._fail(AcademicHubError(f"cannot read the queue: {type(exc).__name__}: {exc}"))
    if fmt == "json":
        _cli.out.print_json(json.dumps(report, default=str, ensure_ascii=False))
        return
    counts = ", ".join(f"{n} {s}" for s, n in report["counts"].items())
    _cli.out.print(f"jobs: {counts}; queue: {report['queue']['pending']} pending, {report['queue']['scheduled']} scheduled")
    table = text_table("sources", ["name", "kind", "last run", "next run", ("last error", {"overflow": "fold"})])
    for s in report["sources"]:
        add_text_row(table, s["name"], s["kind"], str(s["last_run_at"] or "never")[:16],
                     str(s["next_run_at"] or "off")[:16], s["last_error"] or "")
    _cli.out.print(table)
    table = text_table("briefings", ["radar", "zone", "hour", "next briefing (UTC)", "last job"])
    for b in report["briefings"]:
        last = b["last_job"]
        add_text_row(table, b["radar"], b["zone"], str(b["hour"]), str(b["next_briefing_at"])[:16],
                     f"{last['key']} {last['status']}" if last else "none")
    _cli.out.print(table)


@jobs_app.command("run")
@_cli.setting_flags("job_lease_seconds")
def jobs_run(
    name: Annotated[str, typer.Argument(help="sources, embed, candidates, rank, brief or deliver.", show_default=False)],
    source: Annotated[Optional[list[str]], typer.Option("--source", help="sources: this source (repeatable; default all enabled).")] = None,
    radar: Annotated[Optional[str], typer.Option("--radar", help="brief/deliver: the radar.")] = None,
    day: Annotated[Optional[str], typer.Option("--date", help="brief/deliver: the day YYYY-MM-DD (default: the newest announced).")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Also run what the job chains (embed after new papers, deliver after a briefing).")] = True,
) -> None:
    """Run one job now, here, recorded in the ledger like a scheduled one (a briefing already done for
    its period is not written again)."""
    from .app import Hub
    from .app.jobs import Jobs

    try:
        when = None
        if day:
            try:
                when = Date.fromisoformat(day)
            except ValueError:
                raise AcademicHubError(f"--date {day!r}: use YYYY-MM-DD") from None
        request: dict = {}
        if name == "sources":
            request["sources"] = source or None
        elif name in ("brief", "deliver"):
            request.update(radar=radar, day=when)
        outcomes = Jobs(Hub(_cli._settings())).run_now(name, follow=follow, **request)
    except AcademicHubError as exc:
        _cli._fail(exc)
    for outcome in outcomes:
        verb = "ran" if outcome.ran else f"not run ({outcome.status} already)"
        _cli.out.print(f"{outcome.key}: {verb}" + (f" {json.dumps(outcome.result, ensure_ascii=False)}" if outcome.result else ""))
