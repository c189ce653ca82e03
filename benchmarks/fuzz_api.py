"""The API fuzz run, longer than CI's: tests/test_api_fuzz.py (schemathesis over the app's own
OpenAPI schema, in-process, on a store holding the bundled real arXiv day) with many examples
per route and a fresh random seed each run, printed so that a failure can be replayed.

    python -m benchmarks.fuzz_api --examples 1000 [--seed N] [--database-url postgresql+psycopg://…]

The checks are the CI test's own (no 5xx, documented status codes and content types, answers
that conform to the published response schemas, schema-valid requests accepted, date-times with
a time zone); only the number of examples and the seed differ. Exit status: pytest's (0: none
found). CI runs the same module with 25 derandomized examples per route."""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST = REPO / "tests" / "test_api_fuzz.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz_api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000, help="examples per route (CI: 25)")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: a random one, printed)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server to run on (as ACADEMICHUB_TEST_DATABASE_URL); default SQLite")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    env = dict(os.environ, FUZZ_API_EXAMPLES=str(args.examples), FUZZ_API_SEED=str(seed))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    if args.database_url:
        env["ACADEMICHUB_TEST_DATABASE_URL"] = args.database_url
    store = "PostgreSQL" if env.get("ACADEMICHUB_TEST_DATABASE_URL") else "SQLite"
    print(f"fuzzing the API: {args.examples} examples per route, seed {seed}, {store}", flush=True)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(TEST),
               "-k", "test_api[", f"--hypothesis-seed={seed}"]
    started = time.perf_counter()
    code = subprocess.call(command, cwd=REPO, env=env)
    elapsed = time.perf_counter() - started
    verdict = "no failure found" if code == 0 else f"FAILED (pytest exit {code})"
    print(f"{verdict} in {elapsed:.0f} s; replay with: python -m benchmarks.fuzz_api --examples {args.examples} "
          f"--seed {seed}" + (" --database-url URL" if args.database_url else ""))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
