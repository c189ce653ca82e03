"""Ranking metrics with binary relevance. A ranking is a sequence of ids, best first; `relevant`
is the set of ids that count. Ids the ranking leaves out count as never retrieved (they lower
R-precision and average precision, as in trec_eval)."""

from __future__ import annotations

import math
from typing import Hashable, Iterable, Sequence


def _hits(ranking: Sequence[Hashable], relevant: set, k: int | None = None) -> list[bool]:
    items = ranking if k is None else ranking[:k]
    return [item in relevant for item in items]


def dcg_at_k(ranking: Sequence[Hashable], relevant: set, k: int = 10) -> float:
    return sum(1.0 / math.log2(i + 2) for i, hit in enumerate(_hits(ranking, relevant, k)) if hit)


def ndcg_at_k(ranking: Sequence[Hashable], relevant: Iterable[Hashable], k: int = 10) -> float:
    """DCG@k over the ideal DCG@k (all relevant first); 0.0 when nothing is relevant."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg_at_k(ranking, relevant, k) / ideal


def r_precision(ranking: Sequence[Hashable], relevant: Iterable[Hashable]) -> float:
    """Precision at R, R = the number of relevant items."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    return sum(_hits(ranking, relevant, len(relevant))) / len(relevant)


def average_precision(ranking: Sequence[Hashable], relevant: Iterable[Hashable]) -> float:
    """Mean of precision@k over the ranks k of the relevant items, divided by all relevant items."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    found = 0
    total = 0.0
    for i, hit in enumerate(_hits(ranking, relevant)):
        if hit:
            found += 1
            total += found / (i + 1)
    return total / len(relevant)


def evaluate(ranking: Sequence[Hashable], relevant: Iterable[Hashable], k: int = 10) -> dict[str, float]:
    relevant = set(relevant)
    return {
        f"ndcg@{k}": ndcg_at_k(ranking, relevant, k),
        "r_prec": r_precision(ranking, relevant),
        "ap": average_precision(ranking, relevant),
    }
