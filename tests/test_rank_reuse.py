"""A radar ranked again reads back what it computed before (its dense query blocks, propagation,
its lexical head's rows), and the lexical signals are computed on the head of a first ranking:
neither may change what a fresh, full ranking puts at the top. On real records: the recorded arXiv
day and a real library (its entries as seeds and candidates), vectors seeded by each text."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from academichub.rank import ranker as ranker_module
from academichub.rank.ranker import Doc, RadarProfile, Ranker

from ranking_support import TextVectors, library_and_day

_vector = TextVectors(7)


@pytest.fixture(scope="module")
def records(shared_data):
    """(library docs, the others): grackles' entries with an abstract, the 2024-11-28 day and the
    quant-ph records of 2000 (fewer than 5,000 in all: the exact neighbour graph)."""
    return library_and_day(shared_data, _vector)


def _profile(library: list[Doc], liked: list[Doc] = ()) -> RadarProfile:
    rng = np.random.default_rng(0)
    seeds = [library[i] for i in rng.choice(len(library), 10, replace=False)]
    return RadarProfile(seeds=seeds, liked=list(liked), keywords=["behavioral flexibility"], excludes=["review"],
                        interest="animal cognition and behavioural flexibility in birds",
                        interest_embedding=_vector("animal cognition and behavioural flexibility in birds"))


def _same(a, b) -> None:
    """The same papers in the same order with the same reasons; scores equal to float32 rounding
    (two fresh rankings differ there: BLAS sums in a different order from one call to the next)."""
    assert a.ids.tolist() == b.ids.tolist()
    assert np.allclose(a.scores, b.scores, rtol=1e-6, atol=1e-6)
    assert a.reasons.keys() == b.reasons.keys()
    for pid, reasons in a.reasons.items():
        assert [(r.kind, r.text) for r in reasons] == [(r.kind, r.text) for r in b.reasons[pid]]
        assert np.allclose([r.weight for r in reasons], [r.weight for r in b.reasons[pid]], rtol=1e-5)


def test_a_radar_ranked_again_gives_what_a_fresh_ranker_gives(records):
    library, day = records
    docs = library + day
    ranker = Ranker()
    cs = ranker.candidates(docs)
    profile = _profile(library)
    first = ranker.rank(profile, cs, explain=20, top=100)
    again = ranker.rank(profile, cs, explain=20, top=100)  # the blocks, propagation and head rows read back
    assert ranker._per_candidates[cs]  # (something was kept to be read back)
    fresh = Ranker().rank(profile, Ranker().candidates(docs), explain=20, top=100)
    _same(first, again)
    _same(again, fresh)
    # a like changes the positives: nothing of the radar's may be read back
    liked = ranker.rank(_profile(library, [library[-1]]), cs, explain=20, top=100)
    fresh_liked = Ranker().rank(_profile(library, [library[-1]]), Ranker().candidates(docs), explain=20, top=100)
    _same(liked, fresh_liked)
    assert liked.ids.tolist() != first.ids.tolist()


def test_kept_blocks_are_bounded_and_an_evicted_one_is_computed_again(records, monkeypatch):
    library, day = records
    docs = library + day
    monkeypatch.setattr(ranker_module, "DENSE_KEPT_BYTES", 1)  # only the newest block stays
    ranker = Ranker()
    cs = ranker.candidates(docs)
    one, two = _profile(library), _profile(library, [library[-1]])
    first = ranker.rank(one, cs, explain=20, top=100)
    ranker.rank(two, cs, explain=20, top=100)
    kept = ranker._per_candidates[cs]
    assert len([k for k in kept if k != "_inverse_norm"]) == 1
    _same(ranker.rank(one, cs, explain=20, top=100), first)


def test_the_lexical_head_keeps_the_full_rankings_top(records, monkeypatch):
    """The lexical signals on the head of a first ranking (LEXICAL_HEAD, 2,000 candidates) against
    every candidate: not one of the full ranking's top 20 dropped."""
    library, others = records
    docs = library + others
    profile = _profile(library)
    assert len(docs) > ranker_module.LEXICAL_HEAD * 1.5
    head = Ranker().rank(profile, docs, explain=0, top=100)
    monkeypatch.setattr(ranker_module, "LEXICAL_HEAD", 10**9)
    full = Ranker().rank(profile, docs, explain=0, top=100)
    assert set(full.ids[:20].tolist()) == set(head.ids[:20].tolist())


def test_feedback_changes_read_back_only_what_still_holds(records):
    """One ranker through a radar's life (a like, a second like, a dismissal, a seed removed, the
    first radar again): each ranking reads back the columns of the positives it has seen and
    computes the rest; each is what a fresh ranker gives for that radar."""
    library, day = records
    docs = library + day
    ranker = Ranker()
    cs = ranker.candidates(docs)
    seeds_only = _profile(library)
    one_like = _profile(library, [library[-1]])
    two_likes = _profile(library, [library[-1], library[-2]])
    dismissed = RadarProfile(**{**vars_of(two_likes), "dismissed": [day[0]]})
    seed_removed = RadarProfile(**{**vars_of(two_likes), "seeds": two_likes.seeds[1:]})
    rankings = []
    for profile in (seeds_only, one_like, two_likes, dismissed, seed_removed, seeds_only):
        reused = ranker.rank(profile, cs, explain=20, top=100)
        _same(reused, Ranker().rank(profile, Ranker().candidates(docs), explain=20, top=100))
        rankings.append(reused.ids[:20].tolist())
    kept = ranker._per_candidates[cs]
    # a column per positive seen (ten seeds, two likes), each computed once
    assert len([k for k in kept if k[0] == "positive"]) == 12
    assert rankings[0] != rankings[1] != rankings[2] and rankings[2] != rankings[4] and rankings[5] == rankings[0]


def test_a_re_embedded_positive_is_not_read_back(records):
    """A positive's kept column belongs to its vector, not to its paper: the same paper with a new
    vector (embedded again by another model) ranks as a fresh ranker ranks it."""
    library, day = records
    docs = library + day
    ranker = Ranker()
    cs = ranker.candidates(docs)
    liked = library[-1]
    ranker.rank(_profile(library, [liked]), cs, explain=20, top=100)
    moved = dataclasses.replace(liked, embedding=_vector("another model's vector for this paper"))
    again = ranker.rank(_profile(library, [moved]), cs, explain=20, top=100)
    _same(again, Ranker().rank(_profile(library, [moved]), Ranker().candidates(docs), explain=20, top=100))


def test_propagation_does_not_turn_on_how_a_cosine_was_rounded(records):
    """A positive that is itself a candidate is its neighbours' k-th neighbour at a cosine the graph
    and the positives' product each round their own way (~1e-7): the link must not come and go
    with the rounding (it moved the propagation of far papers by up to 0.4, 3.9 in a score)."""
    from academichub.rank.ranker import PROPAGATION_K, propagate

    library, day = records
    cs = Ranker().candidates(library + day)
    seeds = _profile(library).seeds
    signals = Ranker().signals(_profile(library), cs)
    pos_sims = np.asarray(signals["_pos_sims"])
    graph = cs.neighbour_graph(PROPAGATION_K)
    kth_ties = np.isclose(pos_sims, graph.kth[:, None], rtol=0, atol=1e-6).sum()
    assert kth_ties >= len(seeds) // 2  # most seeds are some candidates' k-th neighbour
    rng = np.random.default_rng(3)
    for _ in range(3):
        rounded = pos_sims + rng.choice([-2e-7, 2e-7], pos_sims.shape).astype(np.float32)
        np.testing.assert_allclose(propagate(graph, rounded), propagate(graph, pos_sims), rtol=0, atol=1e-4)


def vars_of(profile: RadarProfile) -> dict:
    return {f: getattr(profile, f) for f in profile.__dataclass_fields__}


def test_a_forked_process_fits_the_lexical_model_on_threads_of_its_own(records):
    """The lexical model of new positives is fitted on a pool of threads; a process forked after
    the pool was made (a server's worker) has none of its threads and must make its own."""
    import multiprocessing

    library, day = records
    docs = library + day
    profile = _profile(library, [library[-1]])
    expected = Ranker().rank(profile, Ranker().candidates(docs), explain=0, top=20).ids.tolist()  # the pool exists now
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        got = pool.apply_async(_rank_in_child, (docs, profile)).get(timeout=300)
    assert got == expected


def _rank_in_child(docs, profile):
    return Ranker().rank(profile, Ranker().candidates(docs), explain=0, top=20).ids.tolist()
