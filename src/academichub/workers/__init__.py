"""The job system's front end on Huey: the queue, its tasks and consumers (threads inside `serve`,
or `academichub worker` processes on Redis). It calls the app layer (app/jobs.py over a Hub) only."""

from .queue import JobQueue, make_huey

__all__ = ["JobQueue", "make_huey"]
