"""The job consumer inside `academichub serve`: started by the web app's lifespan, stopped with it.
Threads, not processes, and no signal handlers (the server owns the process's signals).

With `serve --workers N` every web process starts here, and only ONE may consume: the first to
take an exclusive lock on `data_dir/serve-jobs.lock` (flock, released when its process ends, so a
killed leader's successor can take it over on restart). The others only send jobs (their hub's
queue is attached, so "run now" and a stale ranking's re-rank still become jobs). The same holds
on Redis: one consumer per server, whatever the number of web processes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..settings import Settings
from .queue import JobQueue

log = logging.getLogger(__name__)

LOCK_FILE = "serve-jobs.lock"


def take_consumer_lock(settings: Settings) -> int | None:
    """An open descriptor holding the server's consumer lock, or None when another process has it."""
    import fcntl

    path = Path(settings.data_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def start_in_server(settings: Settings, engine=None, hub=None) -> JobQueue:
    """The server's queue, attached to its hub so "run now" becomes a job, and its consumer threads
    when it should run them: always on the embedded SQLite queue (nothing else would consume it),
    and on Redis while `scheduler` is on; none when dedicated workers do the work (queue_url set,
    scheduler off), and none in a web process that is not the server's consumer (`consuming`)."""
    queue = JobQueue(settings, engine=engine, hub=hub)
    queue.consuming = False
    queue.lock_fd = None
    if hub is not None:
        hub.attach_queue(queue.enqueue)
    queue.lock_fd = take_consumer_lock(settings)  # held: this process is the server's leader
    if settings.queue_url and not settings.scheduler:
        log.info("job consumer: none in the server (dedicated workers on Redis)")
        return queue
    if queue.lock_fd is None:
        log.info("job consumer: in another web process of this server (pid %d sends jobs only)", os.getpid())
        return queue
    queue.consuming = True
    queue.start_in_process()
    log.info("job consumer: %d threads on %s, scheduler %s", settings.worker_concurrency,
             "Redis" if settings.queue_url else "the SQLite queue", "on" if settings.scheduler else "off")
    return queue


def leads(queue: JobQueue) -> bool:
    """Whether this web process is the server's leader (holds the lock): it alone consumes jobs,
    embeds at start and warms the rankings up."""
    return getattr(queue, "lock_fd", None) is not None


def stop_in_server(queue: JobQueue | None, timeout: float = 10.0) -> None:
    if queue is not None:
        queue.stop(timeout)
        fd, queue.lock_fd = getattr(queue, "lock_fd", None), None
        if fd is not None:
            os.close(fd)  # releases the lock
