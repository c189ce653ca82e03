"""How generic a phrase is in science writing at large, so that theme labels prefer "dark matter"
and "EEG" over "models" and "data" even when a theme's own papers use both.

`background.json` holds document frequencies of the common 1-2-word phrases in the bundled real
arXiv day (2024-11-28, 1504 papers from every archive). Regenerate it with
`python -m academichub.brief.background` (a test checks the shipped file is what this builds)."""

from __future__ import annotations

import json
import math
from collections import Counter
from functools import lru_cache
from pathlib import Path

from .text import paper_text, phrases

HERE = Path(__file__).parent
BACKGROUND_FILE = HERE / "background.json"
MIN_DF = 10  # phrases rarer than this in the background are "specific" (weight 1)
MAX_WORDS = 2


def build(texts: list[str]) -> dict:
    df: Counter[str] = Counter()
    for text in texts:
        df.update({p for p in phrases(text, max_n=MAX_WORDS)})
    kept = {term: count for term, count in df.items() if count >= MIN_DF}
    return {"documents": len(texts), "min_df": MIN_DF, "df": dict(sorted(kept.items()))}


def build_from_sample() -> dict:
    from ..ingest.pipeline import SAMPLE_FILE
    from ..sources.arxiv_rss import parse_rss

    batch = parse_rss(Path(SAMPLE_FILE).read_bytes(), str(SAMPLE_FILE))
    return build([paper_text(p.title, p.abstract) for p in batch.papers])


@lru_cache(maxsize=1)
def load() -> tuple[int, dict[str, int]]:
    try:
        data = json.loads(BACKGROUND_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0, {}
    return int(data.get("documents", 0)), dict(data.get("df", {}))


def specificity(term: str) -> float:
    """1 for a phrase that is rare in science writing; down to about 0.3 for the most common
    ("models", "data"): the square root of its background IDF over the largest possible IDF."""
    documents, df = load()
    count = df.get(term, 0)
    if not documents or not count:
        return 1.0
    return math.sqrt(math.log((documents + 1) / (count + 1)) / math.log(documents + 1))


if __name__ == "__main__":  # pragma: no cover - maintenance
    BACKGROUND_FILE.write_text(json.dumps(build_from_sample(), ensure_ascii=False, indent=0, sort_keys=True) + "\n",
                               encoding="utf-8")
    print(f"wrote {BACKGROUND_FILE}")
