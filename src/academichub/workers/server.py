"""The job consumer inside `academichub serve`: started by the web app's lifespan, stopped with it.
Threads, not processes, and no signal handlers (the server owns the process's signals)."""

from __future__ import annotations

import logging

from ..settings import Settings
from .queue import JobQueue

log = logging.getLogger(__name__)


def start_in_server(settings: Settings, engine=None, hub=None) -> JobQueue:
    """The server's queue, attached to its hub so "run now" becomes a job, and its consumer threads
    when it should run them: always on the embedded SQLite queue (nothing else would consume it),
    and on Redis while `scheduler` is on; none when dedicated workers do the work (queue_url set,
    scheduler off)."""
    queue = JobQueue(settings, engine=engine, hub=hub)
    if hub is not None:
        hub.attach_queue(queue.enqueue)
    if settings.queue_url and not settings.scheduler:
        log.info("job consumer: none in the server (dedicated workers on Redis)")
        return queue
    queue.start_in_process()
    log.info("job consumer: %d threads on %s, scheduler %s", settings.worker_concurrency,
             "Redis" if settings.queue_url else "the SQLite queue", "on" if settings.scheduler else "off")
    return queue


def stop_in_server(queue: JobQueue | None, timeout: float = 10.0) -> None:
    if queue is not None:
        queue.stop(timeout)
