"""The first ranking of a store that has never been ranked (issue 17): for the code of `--src` and
of `--baseline-src` in the same run, each on a store of its own made from the same files,
`academichub ingest FILES` as a whole process (wall time, peak RSS, and the candidate files' own
line where the code writes them), then the first `academichub rank RADAR --limit 20`, and, on
the store and data folder as `ingest` left them (put back), the first radar page (`/?radar=RADAR`)
after `serve` starts (no stored ranking, no candidate files unless `ingest` wrote them).

    python benchmarks/first_ranking.py --src src --baseline-src /tmp/base/src --radar qubits \\
        --radar-args "--keyword qubit --category quant-ph" --work /tmp/x GEN/*.xml
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import tempfile
from pathlib import Path

from start_ranking import _first_page, _rank, timed_command  # benchmarks/start_ranking.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", required=True, type=Path)
    parser.add_argument("--baseline-src", required=True, type=Path)
    parser.add_argument("--radar", required=True)
    parser.add_argument("--radar-args", required=True, help="the rules of `radar create`, one string")
    parser.add_argument("--work", type=Path, default=None, help="where the stores go (default: a temporary folder)")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.work))
    outputs = {}
    try:
        for label, src in (("baseline", args.baseline_src), ("this", args.src)):
            ranked = work / label / "rank" / "data"
            ranked.mkdir(parents=True)
            seconds, rss, _, err = timed_command(src, ranked, "ingest", *map(str, args.files))
            line = next((x for x in err.splitlines() if x.startswith("candidate files:")), "no candidate files written")
            print(f"{label}: ingest {seconds:.1f} s, {rss:.0f} MB peak ({line})", flush=True)
            timed_command(src, ranked, "radar", "create", args.radar, *shlex.split(args.radar_args))
            # the brand-new store kept aside and put back at the same path for the page (the
            # candidate files name the store's URL: a copy elsewhere would rebuild them)
            shutil.copytree(work / label / "rank", work / label / "kept")
            wall, peak, outputs[label] = _rank(src, ranked, args.radar)
            print(f"{label}: first rank after the ingest {wall:.1f} s, {peak:.0f} MB peak", flush=True)
            shutil.rmtree(work / label / "rank")
            (work / label / "kept").rename(work / label / "rank")
            page = _first_page(src, ranked, args.radar)
            print(f"{label}: first radar page of the new store after serve starts: {page:.1f} s", flush=True)
        print(f"same 20 papers, scores and reasons printed: {outputs['baseline'] == outputs['this']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
