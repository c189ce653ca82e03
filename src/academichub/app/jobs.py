"""The job system's use cases over a Hub: the scheduler's tick (decide, record in the ledger, hand
keys to the queue), running one job by key (claim, keep the lease alive, call the Hub, finish and
chain what follows), and the views `jobs list|status` show. The queue itself (Huey) is a front
end's business (workers/): this module only gets an `enqueue(keys)` callable.

The ledger, not the queue, is the truth: a message may be lost (a consumer killed while holding it)
or delivered twice (two ticks, a retry); claiming a key is atomic, a done key never runs again, and
every tick re-enqueues jobs whose message seems lost and jobs whose worker's lease ran out."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..errors import AcademicHubError
from ..store import jobs as ledger
from . import schedule
from .hub import Hub

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 3600.0
Enqueue = Callable[[list[str]], None]


class JobError(AcademicHubError):
    """A job that cannot be run or asked for (an unknown name or key, a radar that does not exist)."""


class JobRetry(AcademicHubError):
    """A job's attempt failed and it is queued again: the queue should deliver it after `delay` seconds."""

    def __init__(self, key: str, delay: float, message: str):
        super().__init__(f"{key}: {message} (retry in {delay:.0f}s)")
        self.key, self.delay = key, delay


class JobFailed(AcademicHubError):
    """A job failed for good (its attempts are spent); the error is on its ledger row."""


def backoff_delay(attempts: int) -> float:
    """Exponential: 30 s after the first failed attempt, doubling, at most an hour."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    ran: bool  # False: done already, or held by another worker
    status: str
    result: dict | None = None
    chained: tuple[str, ...] = ()  # the jobs this one recorded to follow it


def worker_id() -> str:
    """Who holds a job: host, process and thread (several threads of one process run jobs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Jobs:
    def __init__(self, hub: Hub, *, enqueue: Enqueue | None = None, heartbeat_seconds: float | None = None):
        self.hub = hub
        self.enqueue = enqueue
        lease = hub.settings.job_lease_seconds
        self.lease_seconds = lease
        self.heartbeat_seconds = heartbeat_seconds if heartbeat_seconds is not None else max(0.2, lease / 3)

    # ------------------------------------------------------------------ the tick

    def radar_clocks(self, conn) -> list[schedule.RadarClock]:
        settings = self.hub.settings
        return [
            schedule.RadarClock(radar_id, name, zone or settings.timezone,
                                settings.briefing_hour if hour is None else int(hour))
            for radar_id, name, zone, hour in ledger.briefing_owners(conn)
        ]

    def plan(self) -> list[schedule.JobIntent]:
        """What is due now (the decider, over the store's sources, radars and ledger)."""
        from ..store.feed import latest_announcement
        from ..store.sources import list_sources

        from .delivery import channel_clocks

        now = self.hub.now()
        with self.hub.engine.connect() as conn:
            sources = list_sources(conn)
            radars = self.radar_clocks(conn)
            channels = channel_clocks(self.hub, conn)
            latest = latest_announcement(conn)
            keys = schedule.candidate_keys(now, sources, radars, latest) + schedule.digest_candidate_keys(now, channels)
            found = {**ledger.states(conn, None), **ledger.states(conn, keys)}
        entries = {key: schedule.LedgerEntry(job.status, job.params) for key, job in found.items()}
        intents = schedule.due_jobs(now, sources, radars, latest, entries)
        ingesting = any(intent.key.startswith(schedule.INGEST_PREFIXES) for intent in intents)
        return intents + schedule.due_digests(now, channels, entries, ingesting=ingesting)

    def tick(self) -> list[str]:
        """Record what is due, and hand the queue every job that needs a message: the new ones, and
        those whose message seems lost (queued and not picked up within a lease) or whose worker died
        (running past its lease). Returns the keys enqueued."""
        intents = self.plan()
        now = self.hub.now()
        new = []
        with self.hub.engine.begin() as conn:
            for intent in intents:
                if ledger.ensure(conn, intent.key, intent.name, intent.params, now):
                    new.append(intent.key)
            stranded = [job.key for job in ledger.stranded(conn, now, self.lease_seconds) if job.key not in new]
        keys = new + stranded
        self._send(keys)
        return keys

    def _send(self, keys: list[str]) -> None:
        if keys and self.enqueue is not None:
            self.enqueue(keys)
            ledger.mark_enqueued(self.hub.engine, keys, self.hub.now())

    # ------------------------------------------------------------------ running one job

    def execute(self, key: str, *, force: bool = False) -> Outcome:
        """Run the job of `key` if it can be claimed; what follows it is recorded and enqueued.
        A failed attempt raises JobRetry (queued again, with backoff) or JobFailed (attempts spent)."""
        me = worker_id()
        job = ledger.claim(self.hub.engine, key, me, self.hub.now(), self.lease_seconds, force=force)
        if job is None:
            with self.hub.engine.connect() as conn:
                found = ledger.get(conn, key)
            if found is None:
                raise JobError(f"no job {key!r} in the ledger")
            return Outcome(key, False, found.status, found.result)
        stop = threading.Event()
        beat = threading.Thread(target=self._keep_lease, args=(key, me, stop), name=f"lease {key}", daemon=True)
        beat.start()
        try:
            result, follow = self._run(job)
        except Exception as exc:  # noqa: BLE001 - a job's failure is recorded on its row, then retried or failed
            stop.set()
            beat.join()
            message = str(exc) if isinstance(exc, AcademicHubError) else f"{type(exc).__name__}: {exc}"
            now = self.hub.now()
            if job.attempts < MAX_ATTEMPTS:
                delay = backoff_delay(job.attempts)
                ledger.fail(self.hub.engine, key, me, now, message, retry_at=now + timedelta(seconds=delay))
                raise JobRetry(key, delay, message) from exc
            ledger.fail(self.hub.engine, key, me, now, message, retry_at=None)
            raise JobFailed(f"{key}: failed after {job.attempts} attempts: {message}") from exc
        stop.set()
        beat.join()
        now = self.hub.now()
        with self.hub.engine.begin() as conn:
            if not ledger.finish(conn, key, me, now, result):
                # The lease ran out and another worker took the job over: its run counts, not ours.
                return Outcome(key, False, "running", result)
            created = [intent.key for intent in follow if ledger.ensure(conn, intent.key, intent.name, intent.params, now)]
        self._send(created)
        return Outcome(key, True, "done", result, tuple(intent.key for intent in follow))

    def _keep_lease(self, key: str, me: str, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_seconds):
            try:
                if not ledger.heartbeat(self.hub.engine, key, me, self.hub.now(), self.lease_seconds):
                    return
            except Exception:  # noqa: BLE001 - a store hiccup: try again at the next beat (the lease has slack)
                log.warning("renewing the lease of %s failed", key, exc_info=True)

    def _run(self, job: ledger.Job) -> tuple[dict, list[schedule.JobIntent]]:
        """Call the Hub for one job; (its result, the jobs that follow it)."""
        params, hub = job.params, self.hub
        if job.name == "sources":
            runs = self._run_sources(job.key, list(params["sources"]))
            failed = {run.name: run.error for run in runs if not run.ok}
            if runs and len(failed) == len(runs):
                raise JobError("; ".join(f"{name}: {error}" for name, error in failed.items()))
            added = sum(run.summary.added for run in runs)
            result = {"added": added, "updated": sum(run.summary.updated for run in runs), "failed": failed}
            follow = [schedule.JobIntent("embed", f"embed:{job.key}", {"after": job.key})] if added else []
            return result, follow
        if job.name == "embed":
            # embed_on_ingest off: vectors are made by `academichub embed` when the user says so.
            embedded = hub.embed_new_papers() if hub.settings.embed_on_ingest else 0
            return {"embedded": embedded}, [schedule.JobIntent("candidates", f"candidates:{params['after']}",
                                                               {"after": params["after"]})]
        if job.name == "candidates":
            hub.refresh_candidates()
            from ..store.radars import all_radar_ids

            with hub.engine.connect() as conn:
                radar_ids = all_radar_ids(conn)
            # the radars' stored rankings follow the new papers (each its own job: one failing radar
            # does not hold up the others)
            return {}, [schedule.JobIntent("rank", f"rank:{rid}:after-{params['after']}", {"radar_id": rid})
                        for rid in radar_ids]
        if job.name == "rank":
            periods = hub.store_rankings(int(params["radar_id"]))
            return {"periods": periods}, []
        if job.name == "brief":
            day = date.fromisoformat(params["day"])
            # By id: a radar's name is only unique per owner (and names resolve to the local user's).
            briefing = hub.write_briefing(str(params["radar_id"]), day)
            if getattr(briefing, "radar_id", params["radar_id"]) != params["radar_id"]:
                raise JobError(f"radar {params['radar_id']} ({params['radar']}) is gone")
            result = {"briefing_id": getattr(briefing, "id", None), "papers": len(getattr(briefing, "paper_ids", []) or [])}
            follow = [schedule.JobIntent("deliver", schedule.deliver_key(params["radar_id"], day), dict(params))]
            return result, follow
        if job.name == "deliver":
            digests = hub.deliver(int(params["radar_id"]), date.fromisoformat(params["day"]))
            return {"digests": [intent.key for intent in digests]}, list(digests)
        if job.name == "digest":
            sent = hub.deliver_digest(int(params["channel_id"]), str(params["period"]), late=bool(params.get("late")),
                                      held_by_job=True)
            return sent.to_dict(), []
        if job.name == "test":
            from .delivery import run_test

            return run_test(hub, int(params["user_id"]), int(params["channel_id"])).to_dict(), []
        raise JobError(f"unknown job name {job.name!r} ({job.key})")

    def _run_sources(self, key: str, names: list[str]) -> list:
        """The sources of one job, one after the other. An arXiv announcement's job waits
        `arxiv_min_interval` between two feeds: each source has its own polite client, and arXiv
        asks for the interval between any two requests."""
        if not key.startswith("arxiv:") or len(names) < 2:
            return self.hub.run_sources(names)
        runs = []
        for i, name in enumerate(names):
            if i:
                time.sleep(self.hub.settings.arxiv_min_interval)
            runs += self.hub.run_sources([name])
        return runs

    # ------------------------------------------------------------------ asked for by a person

    def request(self, name: str, *, radar: str | None = None, day: date | None = None,
                sources: list[str] | None = None, version: str | None = None) -> str:
        """Record a job asked for now ("run now", `jobs run NAME`) and enqueue it; its key.
        sources: the named sources (default: every enabled one) in a window of their own, so a
        scheduled run of the same window still happens; brief/deliver: a radar's period (default:
        the newest announced day), the same key the scheduler uses, so it is never written twice."""
        now = schedule.as_naive(self.hub.now())
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S")
        if name == "sources":
            from ..store.sources import list_sources

            with self.hub.engine.connect() as conn:
                rows = list_sources(conn)
            names = sources or [r["name"] for r in rows if r["enabled"]]
            if not names:
                raise JobError("no enabled sources to run (add one with `academichub sources add`)")
            unknown = sorted(set(names) - {r["name"] for r in rows})
            if unknown:
                raise JobError(f"no such source: {', '.join(unknown)}")
            intent = schedule.JobIntent("sources", f"sources:{'+'.join(sorted(names))}:now-{stamp}", {"sources": names})
        elif name in ("embed", "candidates"):
            intent = schedule.JobIntent(name, f"{name}:now-{stamp}", {"after": f"now-{stamp}"})
        elif name in ("brief", "deliver"):
            intent = self._radar_intent(name, radar, day)
        elif name == "rank":
            # rank:RADAR:DAY:VERSION: the inputs' version (a page view that found a stale ranking)
            # makes a key that many views share; asked for by a person, the moment does.
            found = self._radar_intent("brief", radar, day)
            radar_id, day_text = found.params["radar_id"], found.params["day"]
            intent = schedule.JobIntent("rank", f"rank:{radar_id}:{day_text}:{version or 'now-' + stamp}",
                                        {"radar_id": radar_id, "radar": found.params["radar"], "day": day_text})
        else:
            raise JobError(f"unknown job {name!r}: use sources, embed, candidates, rank, brief or deliver")
        with self.hub.engine.begin() as conn:
            ledger.ensure(conn, intent.key, intent.name, intent.params, now)
        self._send([intent.key])
        return intent.key

    def request_test(self, user_id: int, channel_id: int) -> str:
        """Record and enqueue the delivery page's "send a test" of a channel; its key. The key names
        the second it was asked in (`test:CHANNEL:now-TIME`): a double click sends one test."""
        stamp = schedule.as_naive(self.hub.now()).strftime("%Y-%m-%dT%H:%M:%S")
        intent = schedule.JobIntent("test", f"test:{channel_id}:now-{stamp}", {"channel_id": channel_id, "user_id": user_id})
        with self.hub.engine.begin() as conn:
            ledger.ensure(conn, intent.key, intent.name, intent.params, schedule.as_naive(self.hub.now()))
        self._send([intent.key])
        return intent.key

    def _radar_intent(self, name: str, radar: str | None, day: date | None) -> schedule.JobIntent:
        from ..store.feed import latest_announcement
        from ..store.radars import radar_id_of

        if not radar:
            raise JobError(f"a {name} job needs --radar NAME")
        with self.hub.engine.connect() as conn:
            radar_id = radar_id_of(conn, radar)
            day = day or latest_announcement(conn)
            radar_name = None
            if radar_id is not None:
                from ..store.radars import get_radar

                radar_name = get_radar(conn, radar_id).name
        if radar_id is None:
            raise JobError(f"no radar {radar!r}")
        if day is None:
            raise JobError("the store has no announced day to brief")
        key = (schedule.brief_key if name == "brief" else schedule.deliver_key)(radar_id, day)
        return schedule.JobIntent(name, key, {"radar_id": radar_id, "radar": radar_name, "day": day.isoformat()})

    def run_now(self, name: str, *, follow: bool = True, **request) -> list[Outcome]:
        """`jobs run NAME`: record the job, run it here at once, and (follow) the jobs it chains."""
        saved, self.enqueue = self.enqueue, None
        try:
            pending = [self.request(name, **request)]
            outcomes = []
            while pending:
                key = pending.pop(0)
                outcome = self.execute(key, force=True)
                outcomes.append(outcome)
                if follow and outcome.ran:
                    pending += list(outcome.chained)
            return outcomes
        finally:
            self.enqueue = saved

    # ------------------------------------------------------------------ views

    def recent(self, limit: int = 50, status: str | None = None) -> list[ledger.Job]:
        with self.hub.engine.connect() as conn:
            return ledger.recent(conn, limit, status)

    def idle(self) -> bool:
        """No job queued or running in the ledger."""
        with self.hub.engine.connect() as conn:
            counts = ledger.counts(conn)
        return not counts["queued"] and not counts["running"]

    def status(self) -> dict:
        """Counts by status, when each source and each radar's briefing is next due."""
        from ..ingest.runner import next_run
        from ..store.sources import list_sources

        now = self.hub.now()
        naive = schedule.as_naive(now)
        with self.hub.engine.connect() as conn:
            counts = ledger.counts(conn)
            sources = [{"name": s["name"], "kind": s["kind"], "last_run_at": s["last_run_at"],
                        "next_run_at": next_run(s, naive), "last_error": s["last_error"]} for s in list_sources(conn)]
            radars = [{"radar": r.name, "zone": r.zone, "hour": r.hour,
                       "next_briefing_at": schedule.as_naive(schedule.next_briefing(r, now)),
                       "last_job": (lambda j: j and {"key": j.key, "status": j.status})(ledger.latest_of(conn, f"brief:{r.radar_id}:"))}
                      for r in self.radar_clocks(conn)]
        return {"now": naive, "counts": counts, "sources": sources, "briefings": radars}


__all__ = ["JobError", "JobFailed", "JobRetry", "Jobs", "Outcome", "backoff_delay", "worker_id"]
