"""`academichub worker` processes on Redis for tests (tests/test_workers_redis.py,
tests/test_delivery_workers.py): Redis or a skip, the workers' environment, starting them, killing
the one that holds a job, and the teardown that stops the rest and deletes the test's queue.

Real processes need real time: these tests poll for outcomes (`wait_for`), they never sleep a
fixed time for one. Redis: ACADEMICHUB_TEST_REDIS_URL, else 127.0.0.1:6379 (.ci/run starts one);
the queue's name is private to the test and its keys are deleted after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

REDIS_URL = os.environ.get("ACADEMICHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REPO = Path(__file__).resolve().parents[1]


def redis_client():
    """A client of the tests' Redis; the test is skipped when there is none."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means: no Redis here
        pytest.skip(f"no Redis at {REDIS_URL} ({type(exc).__name__}: {exc}); .ci/run starts one, "
                    "or set ACADEMICHUB_TEST_REDIS_URL")


def wait_for(predicate, timeout: float, what: str, tick=None) -> None:
    """Poll `predicate` (calling `tick` first each time) until it holds; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick:
            tick()
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def worker_env(database_url: str, tmp_path: Path, queue_name: str, lease: float, **settings: str) -> dict[str, str]:
    """The workers' environment: none of the developer's ACADEMICHUB_*, this checkout's package, the
    test's store, data folder and private queue on Redis, no scheduler (the test ticks), `settings`."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("ACADEMICHUB_")},
        "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "ACADEMICHUB_DATABASE_URL": database_url, "ACADEMICHUB_DATA_DIR": str(tmp_path / "data"),
        "ACADEMICHUB_QUEUE_URL": REDIS_URL, "ACADEMICHUB_QUEUE_NAME": queue_name, "ACADEMICHUB_SCHEDULER": "false",
        "ACADEMICHUB_JOB_LEASE_SECONDS": str(lease),
        **{f"ACADEMICHUB_{name.upper()}": value for name, value in settings.items()},
    }


def settings_of(env: dict[str, str]):
    """The Settings the workers of `env` read (for the test's own JobQueue on the same queue)."""
    from academichub.settings import load_settings

    return load_settings(**{k.removeprefix("ACADEMICHUB_").lower(): v for k, v in env.items()
                            if k.startswith("ACADEMICHUB_")})


@contextmanager
def running_workers(database_url: str, tmp_path: Path, lease: float, count: int = 2,
                    **settings: str) -> Iterator[tuple[list[subprocess.Popen], dict[str, str]]]:
    """`count` one-thread workers on a fresh private queue: (the processes, their environment).
    On the way out, whatever happened: the live ones are stopped (SIGTERM, then SIGKILL after 30 s)
    and the queue's keys are deleted from Redis."""
    client = redis_client()
    queue_name = f"ahtest_{uuid.uuid4().hex[:10]}"
    env = worker_env(database_url, tmp_path, queue_name, lease, **settings)
    workers: list[subprocess.Popen] = []
    try:
        for i in range(count):
            workers.append(subprocess.Popen(
                [sys.executable, "-c", "from academichub.cli import app; app()", "worker", "--concurrency", "1"],
                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"worker{i}.log", "wb"),
            ))
        yield workers, env
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        for key in client.scan_iter(match=f"huey.*{queue_name}*"):
            client.delete(key)


def kill_holder(workers: list[subprocess.Popen], holder: str) -> tuple[subprocess.Popen, subprocess.Popen]:
    """SIGKILL the worker named in a ledger or delivery row's `worker` (host:pid:thread) and reap it;
    (the killed one, a survivor)."""
    pid = int(holder.split(":")[1])
    victim = next(w for w in workers if w.pid == pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    return victim, next(w for w in workers if w is not victim)


__all__ = ["REDIS_URL", "kill_holder", "redis_client", "running_workers", "settings_of", "wait_for", "worker_env"]
