"""Clean text for titles and abstracts: upstreams hard-wrap lines and pad with spaces.
LaTeX math is kept exactly as written (a reader of arXiv expects $\\alpha$, not a guess)."""

from __future__ import annotations


def clean_text(text: str | None) -> str:
    """Collapse every run of whitespace to one space (str.split is several times faster than a regex)."""
    if not text:
        return ""
    return " ".join(text.split())
