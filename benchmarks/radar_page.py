"""The radar page as a user's browser drives it: a real `academichub serve` (the sources of
`--src`, so a checkout of the code before a change runs against the same store), one client
asking 50 times for the next batch of `/?radar=NAME`, then 32 clients at once asking for a shown
batch again for `--seconds`. Prints the first request after the start, min/median/max of the one
client, and req/s, p50, p99 and errors of the 32. A stop-gap until `academichub bench web`.

    python benchmarks/radar_page.py --src src --database-url sqlite:///store.db --radar NAME [--workers N] [--settle S]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from serving import free_port, wait_until_serving  # benchmarks/serving.py (run as a script from benchmarks/)

CLI = "import sys; from academichub.cli import app; sys.exit(app(prog_name='academichub'))"



def _clear_shown(url: str) -> None:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.execute("DELETE FROM radar_shown")


async def _load(base: str, path: str, clients: int, seconds: float) -> dict:
    times: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def client() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    ok = (await http.get(path)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    times.append(time.perf_counter() - started)
                else:
                    errors += 1

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    took = time.monotonic() - began
    times.sort()
    p = (lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000) if times else (lambda q: float("nan"))
    return {"req/s": len(times) / took, "p50 ms": p(0.5), "p99 ms": p(0.99), "errors": errors, "requests": len(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", required=True, help="the src folder of the code to serve")
    parser.add_argument("--database-url", required=True, help="a SQLite store (sqlite:///PATH)")
    parser.add_argument("--radar", required=True)
    parser.add_argument("--workers", type=int, default=None, help="serve --workers (omitted: not passed)")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds to wait after the first radar request (the start-up warm-up then done)")
    args = parser.parse_args()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACADEMICHUB_")}
    env.update(PYTHONPATH=str(Path(args.src).resolve()), ACADEMICHUB_DATABASE_URL=args.database_url,
               ACADEMICHUB_EMBED_ON_INGEST="false", ACADEMICHUB_SCHEDULER="false",
               ACADEMICHUB_DATA_DIR=str(Path(args.database_url.removeprefix("sqlite:///")).parent / f"data-{port}"))
    command = [sys.executable, "-c", CLI, "serve", "--port", str(port)]
    if args.workers:
        command += ["--workers", str(args.workers)]
    _clear_shown(args.database_url)
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    feed = "/?radar=" + args.radar
    try:
        with httpx.Client(base_url=base, timeout=600) as http:
            wait_until_serving(http, server)
            started = time.perf_counter()
            assert http.get(feed).status_code == 200
            first = (time.perf_counter() - started) * 1000
            time.sleep(args.settle)
            one = []
            for _ in range(args.requests):
                started = time.perf_counter()
                assert http.get(feed).status_code == 200
                one.append((time.perf_counter() - started) * 1000)
        load = asyncio.run(_load(base, feed + "&batch=0", args.clients, args.seconds))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)
    print(f"first radar request after start: {first:.0f} ms")
    print(f"one client, {args.requests} x {feed}: min {min(one):.1f} / median {statistics.median(one):.1f} / "
          f"max {max(one):.1f} ms")
    print(f"{args.clients} clients, {args.seconds:.0f} s of {feed}&batch=0: " + ", ".join(
        f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in load.items()))


if __name__ == "__main__":
    main()
