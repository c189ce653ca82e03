"""Ingest benchmark: the same as `academichub bench ingest`."""

import sys

from academichub.cli import app

if __name__ == "__main__":
    sys.exit(app(["bench", "ingest", *sys.argv[1:]]))
