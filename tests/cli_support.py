"""Running the real `academichub` console script from tests: the script this venv installed,
importing the package of this checkout (or a copy of it) through PYTHONPATH."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "academichub"
WIDE = "400"  # terminal columns: a table row (and its title cell) stays on one line


def academichub_script() -> str:
    """The installed console script of this venv (it imports the package from PYTHONPATH)."""
    script = Path(sys.executable).parent / "academichub"
    found = str(script) if script.is_file() else shutil.which("academichub")
    if not found:
        pytest.fail("the academichub console script is not installed (pip install -e .)")
    return found


def script_env(**extra: str) -> dict[str, str]:
    """The environment of a script run: no ACADEMICHUB_* of the developer's, this checkout's package."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACADEMICHUB_")}
    env.update({"PYTHONPATH": str(REPO / "src"), "COLUMNS": WIDE, "ACADEMICHUB_EMBED_ON_INGEST": "false", **extra})
    return env
