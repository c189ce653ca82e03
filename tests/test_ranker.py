"""The radar ranker on the real arXiv day (text and rules; embeddings are optional and tested in
test_embeddings.py): followed authors in every spelling, negative keywords, feedback that changes
the ranking, reasons on every ranked paper, and the rank command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from academichub.cli import app
from academichub.ingest.pipeline import SAMPLE_FILE, ingest_file
from academichub.names import name_key
from academichub.rank.ranker import Doc, RadarProfile, Ranker, mmr
from academichub.rank.service import load_docs, rank_radar
from academichub.store.radars import add_feedback, add_rule, add_seeds, create_radar, default_user, get_radar
from academichub.store.feed import get_paper


@pytest.fixture
def day(engine):
    ingest_file(engine, SAMPLE_FILE)
    return engine


def _radar(conn, name="r", **rules):
    radar_id = create_radar(conn, user_id=default_user(conn), name=name)
    for kind, values in rules.items():
        for value in values:
            add_rule(conn, radar_id, kind, value)
    return radar_id


def _paper_id(conn, arxiv_id):
    return get_paper(conn, arxiv_id)["id"]


def test_followed_author_in_any_spelling_comes_first_with_the_reason(day):
    # 2411.17700 is by "Jun Cui" in the day; follow him as "Cui, J." (the same name key)
    assert name_key("Cui, J.") == name_key("Jun Cui")
    with day.begin() as conn:
        _radar(conn, author=["Cui, J."])
        ranked = rank_radar(conn, get_radar(conn, "r"), limit=5)
        target = _paper_id(conn, "2411.17700")
    assert ranked[0].id == target
    assert ("author", "Cui, J.") in [(r.kind, r.text) for r in ranked[0].reasons]


def test_negative_keyword_removes_or_demotes(day):
    with day.begin() as conn:
        _radar(conn, "plain", keyword=["language model"])
        _radar(conn, "no-agents", keyword=["language model"], exclude=["agent"])
        plain = rank_radar(conn, get_radar(conn, "plain"), limit=30)
        excluding = rank_radar(conn, get_radar(conn, "no-agents"), limit=30)
        docs = {d.id: d for d in load_docs(conn, [r.id for r in plain + excluding])}
    with_agent = [r.id for r in plain if "agent" in (docs[r.id].title + " " + docs[r.id].abstract).lower()]
    assert with_agent, "the day has language-model papers about agents"
    assert not set(with_agent) & {r.id for r in excluding[:10]}
    assert all("agent" not in docs[r.id].title.lower() for r in excluding)
    assert all(any(x.kind == "keyword" for x in r.reasons) for r in excluding[:10])


def test_seeds_and_feedback_change_the_ranking(day):
    with day.begin() as conn:
        radar_id = _radar(conn)
        seed_ids = [_paper_id(conn, a) for a in ("2411.17702",)]  # ECG "good views" (cs.LG / eess.SP)
        add_seeds(conn, radar_id, seed_ids, origin="test")
        before = rank_radar(conn, get_radar(conn, "r"), limit=10)
        assert seed_ids[0] not in [r.id for r in before]  # seeds are never ranked
        assert before[0].reasons and before[0].reasons[0].kind == "seed"
        top = before[0].id
        add_feedback(conn, radar_id, top, "dismiss")
        after = rank_radar(conn, get_radar(conn, "r"), limit=10)
        assert top not in [r.id for r in after]
        liked = after[5].id
        add_feedback(conn, radar_id, liked, "like")
        again = rank_radar(conn, get_radar(conn, "r"), limit=10)
        assert liked not in [r.id for r in again]  # liked papers are positives now, not candidates
        assert [r.id for r in again] != [r.id for r in after]


def test_every_ranked_paper_says_why(day):
    with day.begin() as conn:
        radar_id = _radar(conn, category=["cs.CL"], keyword=["speech"])
        add_seeds(conn, radar_id, [_paper_id(conn, "2411.17702")], origin="test")
        ranked = rank_radar(conn, get_radar(conn, "r"), limit=20)
    assert len(ranked) == 20
    assert all(r.reasons for r in ranked)
    kinds = {x.kind for r in ranked for x in r.reasons}
    assert {"category", "seed"} <= kinds


def test_less_of_this_author_pushes_their_papers_down(day):
    with day.begin() as conn:
        radar_id = _radar(conn, category=["cs.CY"])
        first = rank_radar(conn, get_radar(conn, "r"), limit=3)
        paper = get_paper(conn, first[0].id)
        add_feedback(conn, radar_id, paper["id"], "less_author", paper["authors"][0]["name"])
        later = rank_radar(conn, get_radar(conn, "r"), limit=3)
    assert paper["id"] not in [r.id for r in later]


def test_mmr_spreads_a_batch():
    import numpy as np

    # six near-identical papers on one topic, then one on another topic scored a little lower
    vectors = np.array([[1, 0.01 * i] for i in range(6)] + [[0, 1]], dtype=float)
    ids = np.arange(1, 8)
    scores = np.array([10.0, 9.9, 9.8, 9.7, 9.6, 9.5, 9.4])
    assert mmr(ids, scores, vectors, k=2) == [1, 7]
    assert mmr(ids, scores, None, k=2) == [1, 2]


def test_ranker_returns_ids_and_scores_best_first():
    docs = [Doc(1, "graph neural networks for molecules"), Doc(2, "galaxy rotation curves"),
            Doc(3, "message passing neural networks on graphs")]
    profile = RadarProfile(seeds=[Doc(9, "graph neural networks", "message passing on molecular graphs")])
    ids, scores = Ranker().rank_ids(profile, docs)
    assert list(ids)[-1] == 2 and list(scores) == sorted(scores, reverse=True)


def test_rank_command_json(day, database_url, monkeypatch):
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    runner = CliRunner()
    created = runner.invoke(app, ["radar", "create", "nlp", "--category", "cs.CL", "--keyword", "translation",
                                  "--interest", "machine translation for low-resource languages"])
    assert created.exit_code == 0, created.output
    result = runner.invoke(app, ["rank", "nlp", "--limit", "5", "--format", "json"])
    assert result.exit_code == 0, result.output
    ranked = json.loads(result.stdout)  # stderr may carry a notice (no embeddings yet)
    assert len(ranked) == 5
    assert set(ranked[0]) == {"id", "title", "score", "reasons"}
    assert all(item["reasons"] for item in ranked)
    everything = json.loads(runner.invoke(app, ["rank", "nlp", "--all", "--format", "json"]).stdout)
    assert len(everything) == 1504
    since = runner.invoke(app, ["rank", "nlp", "--since", "2024-11-29", "--format", "json"])
    assert json.loads(since.stdout) == []
    missing = runner.invoke(app, ["rank", "nobody"])
    assert missing.exit_code == 1 and "no radar named 'nobody'" in missing.output


def test_graph_signal_lifts_papers_among_the_liked_ones():
    import numpy as np

    from academichub.rank.ranker import graph_signal

    rng = np.random.default_rng(0)
    topic = rng.standard_normal(16)
    cluster = topic + 0.3 * rng.standard_normal((30, 16))  # one topic, papers near each other
    scattered = rng.standard_normal((30, 16))  # unrelated papers, each on its own
    emb = np.vstack([cluster, scattered]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    first = np.zeros(60)
    first[:5] = 1.0  # the first ranking likes five papers of the topic ...
    first[30:35] = 1.0  # ... and five scattered ones as much
    graph = graph_signal(first, emb, emb.mean(axis=0), None)
    assert graph.shape == (60,)
    assert graph[5:30].mean() > graph[35:].mean()  # the topic's other papers rise with it


def test_statement_only_radar_with_embeddings_ranks_every_candidate():
    import numpy as np

    rng = np.random.default_rng(1)
    docs = [Doc(i, f"paper {i}", "text", embedding=rng.standard_normal(8).astype(np.float32)) for i in range(40)]
    profile = RadarProfile(interest="paper", interest_embedding=docs[3].embedding.copy())
    ids, scores = Ranker().rank_ids(profile, docs)
    assert sorted(ids.tolist()) == list(range(40)) and ids[0] == 3
    assert list(scores) == sorted(scores, reverse=True)


def test_feedback_from_the_shared_norms_equals_centring_every_row():
    import numpy as np

    from academichub.rank.ranker import _unit, feedback_signals

    rng = np.random.default_rng(3)
    emb = _unit(rng.standard_normal((300, 16)).astype(np.float32))
    centre = emb.mean(axis=0)
    inverse_norm = 1.0 / np.sqrt(1.0 - 2.0 * (emb @ centre) + centre @ centre)
    first = rng.standard_normal(300)
    rows = np.arange(0, 300, 2)
    weights = {"dense_feedback": 1.0}
    for head in (None, rows):
        plain = feedback_signals(weights, first, emb, None, head, centre=centre)["dense_feedback"]
        shared = feedback_signals(weights, first, emb, None, head, centre=centre, inverse_norm=inverse_norm)["dense_feedback"]
        np.testing.assert_allclose(shared, plain, rtol=1e-4, atol=1e-5)
        assert plain.std() > 0.01


def test_phrase_lookups_are_kept_read_only_and_bounded(monkeypatch):
    import numpy as np

    from academichub.rank import candidates

    docs = [Doc(i, f"A review of topic {i}" if i % 3 == 0 else f"Topic {i} results", "abstract text", (), (), ("cs.LG",))
            for i in range(30)]
    cs = Ranker().candidates(docs)
    rows = cs.rows_with_title_phrase("review", "review")
    assert rows.tolist() == list(range(0, 30, 3))
    assert cs.rows_with_title_phrase("review", "review") is rows  # kept
    assert not rows.flags.writeable
    with pytest.raises(ValueError):
        rows[0] = 1
    assert cs.row_set_with_terms("review") == frozenset(range(0, 30, 3))
    monkeypatch.setattr(candidates, "PHRASES_KEPT", 2)
    for word in ("results", "topic", "abstract"):
        cs.rows_with_terms(word)
    assert len(cs._phrases) <= 2
    assert np.array_equal(cs.rows_with_terms("review"), np.arange(0, 30, 3))


def test_era_affinity_prefers_the_seeds_years_only_when_dates_differ():
    from datetime import date

    seeds = [Doc(100 + i, "sediment transport in gravel-bed rivers", "bedload flux measurements", day=date(2014, 3, 1 + i))
             for i in range(3)]
    text = ("bedload transport in gravel rivers", "flume measurements of sediment flux")
    then, recent, undated = Doc(1, *text, day=date(2014, 9, 1)), Doc(2, *text, day=date(2024, 9, 1)), Doc(3, *text)
    other = [Doc(10 + i, f"galaxy survey {i}", "redshift space distortions", day=date(2019, 1, 1)) for i in range(5)]
    ranker = Ranker()
    profile = RadarProfile(seeds=seeds)
    signals = ranker.signals(profile, [then, recent, undated, *other])
    era = signals["era_affinity"]
    assert era[0] > era[2] > era[1]  # the undated paper gets the candidates' mean
    assert era[0] == pytest.approx(sum(pow(2.718281828, -abs((date(2014, 9, 1) - s.day).days) / 365) for s in seeds) / 3, rel=1e-6)
    ids, _ = ranker.rank_ids(profile, [recent, then, *other])
    assert ids.tolist()[:2] == [1, 2]  # same text: the paper of the seeds' years first
    same_day = [Doc(i, *text, day=date(2024, 11, 28)) for i in range(4)]  # a day's feed
    assert "era_affinity" not in ranker.signals(profile, same_day)


def test_era_density_by_running_sums_equals_the_pairwise_sum():
    import numpy as np

    from academichub.rank.candidates import _laplace_density

    rng = np.random.default_rng(5)
    x = rng.integers(700_000, 740_000, 2000).astype(float)
    for points in (np.unique(rng.integers(720_000, 730_000, 300)), np.array([1.0, 200_000.0, 730_000.0])):
        points = points.astype(float)  # the second spans centuries: the pairwise fallback
        counts = rng.integers(1, 4, len(points))
        pairwise = np.exp(-np.abs(x[:, None] - points[None, :]) / 365.0) @ counts
        np.testing.assert_allclose(_laplace_density(x, points, counts, 365.0), pairwise, rtol=1e-9, atol=1e-300)


def test_neighbour_graph_links_each_candidate_to_its_nearest():
    import numpy as np

    from academichub.rank.candidates import _neighbour_graph
    from academichub.rank.ranker import _unit

    rng = np.random.default_rng(5)
    emb = _unit(rng.standard_normal((700, 12)).astype(np.float32))  # more rows than one block
    centre = emb.mean(axis=0)
    graph = _neighbour_graph(emb, centre, 4)
    rows = _unit(emb - centre)
    cos = rows @ rows.T
    np.fill_diagonal(cos, -np.inf)
    links = graph.links.toarray()
    assert (links == links.T).all() and not np.diag(links).any()
    assert ((links > 0).sum(axis=1) >= 4).all()  # its own 4, and whoever counts it among theirs
    nearest = cos.argmax(axis=1)
    assert (links[np.arange(700), nearest] > 0).all()
    np.testing.assert_allclose(graph.kth, np.sort(cos, axis=1)[:, -4], rtol=1e-5)
    np.testing.assert_allclose(graph.degree, links.sum(axis=1), rtol=1e-5)


def test_propagation_reaches_along_a_topic_and_not_to_an_equally_near_stranger():
    """A chain of papers leads away from the seed; a tight group lies as far from the seed as the
    chain's end but links to nothing near it. Direct cosine cannot tell them apart; the walk can."""
    import numpy as np

    from academichub.rank.candidates import NeighbourGraph, _neighbour_graph
    from academichub.rank.ranker import propagate

    rng = np.random.default_rng(2)
    angles = np.radians(np.arange(4, 68, 4))  # the chain: 4 to 64 degrees from the seed
    chain = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
    group = np.array([np.cos(np.radians(-64)), np.sin(np.radians(-64)), 0.0]) + 0.02 * rng.standard_normal((6, 3))
    emb = np.vstack([chain, group]).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    seed = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    pos_sims = emb @ seed.T
    end, strangers = len(chain) - 1, slice(len(chain), None)
    assert abs(pos_sims[end, 0] - pos_sims[strangers, 0].mean()) < 0.05  # as near, directly
    graph = _neighbour_graph(emb, np.zeros(3, dtype=np.float32), 3)
    assert isinstance(graph, NeighbourGraph)
    values = propagate(graph, pos_sims)
    assert values.shape == (len(emb),)
    assert values[end] > values[strangers].max() + 1.0


def test_ranker_propagates_from_the_seeds_over_every_candidate():
    import numpy as np

    rng = np.random.default_rng(4)
    docs = [Doc(i, f"paper {i}", "text", embedding=rng.standard_normal(8).astype(np.float32)) for i in range(60)]
    profile = RadarProfile(seeds=docs[:3])
    ranker = Ranker()
    cs = ranker.candidates(docs)
    signals = ranker.signals(profile, cs)
    assert signals["dense_propagation"].shape == (60,) and signals["dense_propagation"].std() > 0
    assert "dense_propagation" not in Ranker({"dense_propagation": 0.0}).signals(profile, cs)


def test_a_paper_without_a_vector_does_not_turn_the_embeddings_off(day):
    # a seed file's new entry is stored after `embed` ran: one paper of the store has no vector
    from academichub.rank.embeddings import store_vectors

    with day.begin() as conn:
        ids = [d.id for d in load_docs(conn)]
        rng = np.random.default_rng(0)
        store_vectors(conn, "m", ids[1:], rng.standard_normal((len(ids) - 1, 8)).astype(np.float32))
        docs = load_docs(conn, model="m")
    assert all(d.embedding is not None for d in docs)
    present = np.vstack([d.embedding for d in docs[1:]])
    mean = present.mean(axis=0)
    assert np.allclose(docs[0].embedding, mean / np.linalg.norm(mean), atol=1e-6)


def test_rank_weights_come_from_a_toml_file_and_a_bad_one_is_refused(day, database_url, monkeypatch, tmp_path):
    from academichub.errors import ConfigError
    from academichub.rank.service import read_weights

    good = tmp_path / "weights.toml"
    good.write_text("dense_propagation = 2\nvenue_affinity = 0.5\n", encoding="utf-8")
    assert read_weights(good) == {"dense_propagation": 2.0, "venue_affinity": 0.5}
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("dense_propagaton = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown.toml: unknown ranking weights: dense_propagaton"):
        read_weights(unknown)
    text = tmp_path / "text.toml"
    text.write_text('learned = "high"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="text.toml: ranking weights must be numbers: learned"):
        read_weights(text)
    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["radar", "create", "r", "--keyword", "quantum"]).exit_code == 0
    monkeypatch.setenv("ACADEMICHUB_RANK_WEIGHTS", str(unknown))
    refused = runner.invoke(app, ["rank", "r", "--limit", "3", "--format", "json"])
    assert refused.exit_code == 1 and "unknown.toml" in refused.output
    monkeypatch.setenv("ACADEMICHUB_RANK_WEIGHTS", str(good))
    ranked = runner.invoke(app, ["rank", "r", "--limit", "3", "--format", "json"])
    assert ranked.exit_code == 0 and len(json.loads(ranked.stdout)) == 3


def test_a_title_keyword_comes_before_what_the_seeds_prefer(day):
    # seeds from computer vision; the keyword names a mathematics-education paper's title
    with day.begin() as conn:
        radar_id = _radar(conn, keyword=["Minecraft"])
        vision = [d.id for d in load_docs(conn) if "image" in d.title.lower()][:10]
        add_seeds(conn, radar_id, vision)
        ranked = rank_radar(conn, get_radar(conn, "r"), limit=3)
        target = _paper_id(conn, "2411.18464")
    assert ranked[0].id == target
