"""The benchmark's ranking metrics on rankings small enough to compute by hand."""

from __future__ import annotations

import math

import pytest

from benchmarks.relevance.metrics import average_precision, evaluate, ndcg_at_k, r_precision


def test_hits_at_one_and_three():
    ranking = ["a", "x", "b", "y"]
    relevant = {"a", "b"}
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3)
    assert ndcg_at_k(ranking, relevant) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert r_precision(ranking, relevant) == 0.5  # top 2: a, x
    assert average_precision(ranking, relevant) == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_perfect_and_worst():
    assert evaluate(["a", "b", "c"], {"a", "b"}) == {"ndcg@10": 1.0, "r_prec": 1.0, "ap": 1.0}
    worst = evaluate(["c", "d", "a", "b"], {"a", "b"})
    assert worst["r_prec"] == 0.0
    assert worst["ap"] == pytest.approx((1 / 3 + 2 / 4) / 2)
    assert worst["ndcg@10"] == pytest.approx((1 / 2 + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))


def test_relevant_items_left_out_of_the_ranking_count_as_missed():
    ranking = ["x", "a"]
    relevant = {"a", "b"}
    assert average_precision(ranking, relevant) == pytest.approx(0.5 / 2)
    assert r_precision(ranking, relevant) == 0.5
    assert ndcg_at_k(ranking, relevant) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))


def test_ndcg_cuts_at_k_and_ideal_caps_at_k():
    ranking = [f"x{i}" for i in range(10)] + ["a"]
    assert ndcg_at_k(ranking, {"a"}) == 0.0
    assert ndcg_at_k(ranking, {"a"}, k=11) == pytest.approx(1 / math.log2(12))
    # 20 relevant, the first 10 all hits: the ideal is 10 hits, so 1.0 though half are not shown
    many = [f"r{i}" for i in range(20)]
    assert ndcg_at_k(many, set(many)) == 1.0
    assert r_precision(many[:10] + ["x"] * 10, set(many)) == 0.5


def test_nothing_relevant_scores_zero():
    assert evaluate(["a", "b"], set()) == {"ndcg@10": 0.0, "r_prec": 0.0, "ap": 0.0}


def test_single_relevant_at_rank_two():
    assert ndcg_at_k(["x", "a"], {"a"}) == pytest.approx(1 / math.log2(3))
    assert average_precision(["x", "a"], {"a"}) == 0.5
    assert r_precision(["x", "a"], {"a"}) == 0.0
