"""A real `academichub serve` process for the page benchmarks: a free port, and the wait until it
answers /healthz (the start-up's own time is not the first page's)."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(http: httpx.Client, server: subprocess.Popen, seconds: float = 120) -> None:
    """Until the server answers /healthz; SystemExit if it died or `seconds` passed."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit("the server did not start")
        time.sleep(0.1)
