"""A ranking right after a start (issue 17): `academichub rank RADAR --limit 20` as a whole process,
and the first radar page (`/?radar=RADAR`) after `academichub serve` starts again, for the code of
`--src` and of `--baseline-src` (a checkout before the change) in the same run, each on its own copy
of `--store` with a data folder per code (the nearest-neighbour index the baseline's first run built
is copied to the other's, so the first runs differ by the candidate columns alone).

    python benchmarks/start_ranking.py --src src --baseline-src /tmp/base/src --store s150k.db --radar qubits [--runs 3]

Per code: the first `rank` (nothing in the data folder yet: the candidate files are written, the
nearest-neighbour index built where there are vectors), then `--runs` more (each a new process:
a restart), wall time and peak RSS from /usr/bin/time -v; then, after both codes' `rank` runs,
`serve` started twice on each data folder, the first radar page after each start (the rankings
the first serve stores are in the store for the others: a restart finds them current). Prints min / median / max of the restarts."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from serving import free_port, wait_until_serving  # benchmarks/serving.py (run as a script from benchmarks/)

CLI = "import sys; from academichub.cli import app; sys.exit(app(prog_name='academichub'))"


def _env(src: Path, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACADEMICHUB_")}
    env.update(PYTHONPATH=str(src.resolve()), ACADEMICHUB_DATA_DIR=str(folder), ACADEMICHUB_EMBED_ON_INGEST="false",
               ACADEMICHUB_SCHEDULER="false", ACADEMICHUB_DATABASE_URL=f"sqlite:///{folder.parent / 'store.db'}")
    return env


def timed_command(src: Path, folder: Path, *args: str) -> tuple[float, float, str, str]:
    """(wall s, peak RSS MB, stdout, stderr) of one `academichub ARGS` process under /usr/bin/time."""
    run = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", CLI, *args], env=_env(src, folder),
                         capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"{args[0]} failed:\n{run.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", run.stderr)
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1)) / 1024
    return seconds, rss, run.stdout, run.stderr


def _rank(src: Path, folder: Path, radar: str) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, stdout) of one `academichub rank RADAR --limit 20` process."""
    seconds, rss, out, _ = timed_command(src, folder, "rank", radar, "--limit", "20")
    return seconds, rss, out


def _first_page(src: Path, folder: Path, radar: str) -> float:
    """Seconds of the first `/?radar=RADAR` once a fresh `serve` answers /healthz."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--port", str(port)], env=_env(src, folder),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=900) as http:
            wait_until_serving(http, server)
            started = time.perf_counter()
            assert http.get("/?radar=" + radar).status_code == 200
            return time.perf_counter() - started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(120)


def _spread(values: list[float], unit: str) -> str:
    return f"min {min(values):.1f} / median {statistics.median(values):.1f} / max {max(values):.1f} {unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", required=True, type=Path)
    parser.add_argument("--baseline-src", required=True, type=Path)
    parser.add_argument("--store", required=True, type=Path, help="a SQLite store (copied, never written)")
    parser.add_argument("--radar", required=True)
    parser.add_argument("--runs", type=int, default=3, help="`rank` processes after the first")
    parser.add_argument("--serve", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--work", type=Path, default=None, help="where the copies go (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.work))
    outputs = {}
    try:
        shutil.copy(args.store, work / "store.db")  # one copy: `rank` writes nothing; `serve` stores rankings
        for label, src in (("baseline", args.baseline_src), ("this", args.src)):
            folder = work / label
            folder.mkdir()
            if label == "this" and (work / "baseline" / "index").is_dir():
                # the nearest-neighbour index the baseline's first run built (the same store): the
                # first runs then differ by the candidate columns alone
                shutil.copytree(work / "baseline" / "index", folder / "index",
                                ignore=shutil.ignore_patterns("candidates"))
            first = _rank(src, folder, args.radar)
            again = [_rank(src, folder, args.radar) for _ in range(args.runs)]
            outputs[label] = first[2]
            print(f"{label}: first rank {first[0]:.1f} s, {first[1]:.0f} MB peak; after a restart: "
                  f"{_spread([w for w, _, _ in again], 's')}, peak {_spread([r for _, r, _ in again], 'MB')}", flush=True)
        for label, src in (("baseline", args.baseline_src), ("this", args.src)):
            if args.serve:
                pages = [_first_page(src, work / label, args.radar) for _ in range(2)]
                print(f"{label}: first radar page after serve starts: {pages[0]:.1f} s (first start), "
                      f"{pages[1]:.1f} s (restart)", flush=True)
        same = outputs["baseline"] == outputs["this"]
        print(f"same 20 papers, scores and reasons printed: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
