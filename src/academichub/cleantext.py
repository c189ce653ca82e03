"""Clean text for titles and abstracts: upstreams hard-wrap lines and pad with spaces.
LaTeX math is kept exactly as written (a reader of arXiv expects $\\alpha$, not a guess)."""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")


def clean_text(text: str | None) -> str:
    if not text:
        return ""
    return _SPACE.sub(" ", text).strip()
