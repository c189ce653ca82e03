"""Huey as the job system's message carrier. `make_huey` picks the storage from the settings (Huey's
SQLite storage in data_dir when `queue_url` is unset, Redis for `redis://` URLs); `JobQueue` registers
the tasks (run one job by its ledger key; the scheduler's tick, every minute when `scheduler` is
on) and builds the Hub they use once per process, on first use.

Tasks carry only a ledger key: whether it runs, and how often it ran, is the ledger's business
(app/jobs.py), so a message delivered twice is harmless and a lost one is re-sent by the tick."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from huey import RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from huey.exceptions import RetryTask

from ..app.hub import Clock, Hub
from ..app.jobs import JobFailed, JobRetry, Jobs
from ..errors import ConfigError
from ..settings import Settings

log = logging.getLogger(__name__)


def make_huey(settings: Settings):
    """The Huey instance of these settings (results off: the ledger records outcomes)."""
    url = settings.queue_url
    if not url:
        path = Path(settings.data_dir) / "jobs.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(settings.queue_name, filename=str(path), results=False)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(settings.queue_name, url=url, results=False)
    raise ConfigError(f"queue_url {url!r}: use redis://host:port/db (or leave it unset for the SQLite queue)")


class _ServerConsumer(Consumer):
    """A consumer whose threads live in a process that owns its signals (the web server)."""

    def _set_signal_handlers(self) -> None:
        pass


class JobQueue:
    def __init__(self, settings: Settings, *, engine=None, clock: Clock | None = None, hub: Hub | None = None):
        self.settings = settings
        self.huey = make_huey(settings)
        self._engine, self._clock, self._hub = engine, clock, hub
        self._jobs: Jobs | None = None
        self._lock = threading.Lock()
        self._consumer: Consumer | None = None
        self._register()

    @property
    def jobs(self) -> Jobs:
        """The process's Jobs over its one Hub (built on first use, so a consumer's Hub is made in
        the process that runs the tasks)."""
        with self._lock:
            if self._jobs is None:
                hub = self._hub or Hub(self.settings, engine=self._engine, clock=self._clock)
                self._jobs = Jobs(hub, enqueue=self.enqueue)
            return self._jobs

    def _register(self) -> None:
        huey = self.huey

        @huey.task(name="academichub.run_job")
        def run_job(key: str) -> None:
            try:
                outcome = self.jobs.execute(key)
            except JobRetry as exc:
                log.warning("%s", exc)
                raise RetryTask(delay=exc.delay) from exc
            except JobFailed as exc:
                log.error("%s", exc)
                return
            log.info("job %s: %s", key, "done" if outcome.ran else f"skipped ({outcome.status})")

        @huey.task(name="academichub.tick")
        def tick() -> None:
            self.jobs.tick()

        self._run_job, self._tick = run_job, tick
        if self.settings.scheduler:
            @huey.periodic_task(crontab(), name="academichub.scheduler_tick")
            def scheduler_tick() -> None:
                self.jobs.tick()

    # ------------------------------------------------------------------ producing

    def enqueue(self, keys: list[str]) -> None:
        """One message per ledger key."""
        for key in keys:
            self._run_job(key)

    def tick(self) -> list[str]:
        """Run the scheduler's tick here and now (the periodic task calls the same)."""
        return self.jobs.tick()

    def request_tick(self) -> None:
        """Ask a consumer to tick soon (e.g. after a source was added)."""
        self._tick()

    def pending(self) -> int:
        return self.huey.pending_count()

    def scheduled(self) -> int:
        return self.huey.scheduled_count()

    # ------------------------------------------------------------------ consuming

    def consumer(self, workers: int | None = None, *, in_server: bool = False) -> Consumer:
        """A Huey consumer of worker threads (and the periodic tick when `scheduler` is on)."""
        options = dict(workers=workers or self.settings.worker_concurrency, periodic=self.settings.scheduler,
                       worker_type="thread", initial_delay=0.05, max_delay=1.0, check_worker_health=True)
        return (_ServerConsumer if in_server else Consumer)(self.huey, **options)

    def start_in_process(self, workers: int | None = None) -> None:
        """Start consumer threads in this process (the server's lifespan); `stop` ends them."""
        if self._consumer is None:
            self._consumer = self.consumer(workers, in_server=True)
            self._consumer.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the in-process consumer: running jobs get `timeout` seconds to finish; one that does
        not is abandoned (its lease runs out and another worker takes it over)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.shutdown_timeout = timeout
            consumer.stop(graceful=True)

    def wait_idle(self, timeout: float = 60.0, poll: float = 0.05) -> bool:
        """Until the queue is empty and no job is queued or running in the ledger (tests, `jobs run`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.jobs.idle() and not self.pending():
                return True
            time.sleep(poll)
        return False


__all__ = ["JobQueue", "make_huey"]
