"""The JSON API, MCP and `academichub rank` answer one ranking: the radar's stored one when it is
current for exactly what was asked, else ranked, stored and answered. A stored answer is the same
ids, order, scores and reasons as a fresh ranking, and after feedback or a new paper the answer is
the new ranking, never the stored stale order. Over the bundled real arXiv day in a real store
(SQLite, or PostgreSQL in the suite's second pass).

And ranking a radar without an interest statement never loads the statement embedder (torch):
the stored vectors are read by the model's name; a radar with a statement still embeds it."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import numpy as np
import pytest

from academichub.app.hub import Hub
from academichub.app.radar_feed import EXPLAINED_ALL
from academichub.ingest.pipeline import store_records
from academichub.model import AuthorData, PaperData
from academichub.rank.service import rank_all
from academichub.settings import Settings
from academichub.store.radars import add_feedback, add_rule, create_radar, default_user, get_radar
from academichub.store.rankings import ALL, forget_rankings, load_ranking
from cli_support import academichub_script, script_env

pytestmark = pytest.mark.postgres

DAY = date(2024, 11, 28)
NAME = "spin qubits"


@pytest.fixture
def radar_id(sample_engine) -> int:
    with sample_engine.begin() as conn:
        radar_id = create_radar(conn, user_id=default_user(conn), name=NAME, interest="spin qubits in semiconductor quantum dots")
        add_rule(conn, radar_id, "keyword", "spin qubit")
        add_rule(conn, radar_id, "category", "quant-ph")
        return radar_id


def new_hub(engine) -> Hub:
    """A hub as a new process has it: nothing kept in memory."""
    return Hub(Settings(load_sample=False, default_language="en"), engine=engine)


def answer(ranked) -> list[tuple]:
    return [(r.id, r.title, r.score, [(x.kind, x.text, x.weight) for x in r.reasons]) for r in ranked]


def fresh(engine, radar_id, since, limit, worth_saying=True) -> list[tuple]:
    """What a new process answers with no ranking stored (the stored ones forgotten first)."""
    with engine.begin() as conn:
        forget_rankings(conn, radar_id)
    return answer(new_hub(engine).rank(NAME, since=since, limit=limit, worth_saying=worth_saying))


def test_a_stored_answer_is_the_fresh_ranking(sample_engine, radar_id):
    hub = new_hub(sample_engine)
    for since, period in ((None, ALL), (DAY, DAY.isoformat())):
        for limit in (20, EXPLAINED_ALL):
            computed = hub.rankings_computed
            first = answer(hub.rank(NAME, since=since, limit=limit))
            with sample_engine.connect() as conn:
                assert load_ranking(conn, radar_id, period) is not None  # ranked once and stored
            again = answer(hub.rank(NAME, since=since, limit=limit))
            assert hub.rankings_computed == computed + (1 if limit == 20 else 0)  # the second read ranks nothing
            assert again == first and len(first) == limit
            assert all(reasons for *_, reasons in first[:20])  # every paper says why
            elsewhere = answer(new_hub(sample_engine).rank(NAME, since=since, limit=limit))  # read by another process
            assert elsewhere == first
            assert fresh(sample_engine, radar_id, since, limit) == first
            every_reason = answer(hub.rank(NAME, since=since, limit=limit, worth_saying=False))
            assert [p[0] for p in every_reason] == [p[0] for p in first]
    # the order is the ranker's own over every stored paper (a day: those outside it left out)
    with sample_engine.connect() as conn:
        radar = get_radar(conn, NAME)
        ranking = rank_all(conn, radar, ranker=hub.ranker, cache=hub.candidates, explain=0)
    assert [p[0] for p in answer(hub.rank(NAME, since=None, limit=50))] == ranking.ids[:50].tolist()
    assert [p[2] for p in answer(hub.rank(NAME, since=None, limit=50))] == [float(np.float32(s)) for s in ranking.scores[:50]]


def test_every_paper_of_every_stored_paper_has_its_reasons(sample_engine, radar_id):
    """`academichub rank NAME` (no limit): past the stored ranking's explained head, ranked again
    with every reason, and the same answer as a fresh one."""
    hub = new_hub(sample_engine)
    head = answer(hub.rank(NAME, since=None, limit=20))
    everything = answer(hub.rank(NAME, since=None, limit=None, worth_saying=False))
    assert len(everything) > EXPLAINED_ALL and [p[0] for p in everything[:20]] == [p[0] for p in head]
    with sample_engine.connect() as conn:  # each paper's reasons are the ranker's own, past the stored head too
        ranking = rank_all(conn, get_radar(conn, NAME), ranker=hub.ranker, cache=hub.candidates, explain=None)
    assert [p[0] for p in everything] == ranking.ids.tolist()
    assert [[(k, t) for k, t, _w in p[3]] for p in everything] == \
        [[(r.kind, r.text) for r in ranking.reasons[int(i)]] for i in ranking.ids]
    with sample_engine.connect() as conn:
        stored = load_ranking(conn, radar_id, ALL)
    assert len(stored.reasons) == EXPLAINED_ALL  # the unexplained tail was not stored
    assert fresh(sample_engine, radar_id, None, None, worth_saying=False) == everything


def test_after_feedback_or_a_new_paper_the_answer_is_the_new_ranking(sample_engine, radar_id):
    hub = new_hub(sample_engine)
    before = answer(hub.rank(NAME, since=DAY, limit=20))
    top = before[0][0]
    with sample_engine.begin() as conn:
        add_feedback(conn, radar_id, top, "like")
    after = answer(hub.rank(NAME, since=DAY, limit=20))
    assert top not in [p[0] for p in after]  # a liked paper leaves the ranking at once
    assert [p[0] for p in after] != [p[0] for p in before]
    assert after == fresh(sample_engine, radar_id, DAY, 20)

    hub = new_hub(sample_engine)
    assert answer(hub.rank(NAME, since=None, limit=20)) == fresh(sample_engine, radar_id, None, 20)
    hub.rank(NAME, since=None, limit=20)  # stored again
    probe = PaperData(source="synthetic-test", source_id="rank-api-probe", title="Spin qubit readout in semiconductor quantum dots",
                      abstract="Spin qubits in semiconductor quantum dots read out in a single shot.",
                      authors=[AuthorData(name="Zyx Probe")], arxiv_id="2411.99999", arxiv_version=1,
                      categories=["quant-ph"], announced=DAY)
    store_records(sample_engine, [probe])
    ranked = answer(hub.rank(NAME, since=None, limit=20))
    titles = [p[1] for p in ranked]
    assert probe.title in titles  # the new paper is in the answer, not the stored order of before
    assert ranked == fresh(sample_engine, radar_id, None, 20)


def test_statement_less_ranking_never_loads_the_embedder(sample_engine, database_url, radar_id, monkeypatch, tmp_path):
    import academichub.rank.embeddings as E
    from academichub.app.embedder import StatementVectors

    class Toy:
        """A tiny embedder stored under the configured model's name (the real one loads torch)."""

        name, dim, max_seq_length = E.DEFAULT_MODEL, 4, 128

        def encode(self, texts, batch_size=32):
            return np.array([[len(t) % 7 + 1, 1, 2, 3] for t in texts], dtype=np.float32)

    loads = []
    monkeypatch.setattr(E, "configured_embedder", lambda settings, engine=None: loads.append(1) or Toy())
    assert new_hub(sample_engine).embed_new_papers() == 1504 and loads == [1]
    with sample_engine.begin() as conn:
        plain = create_radar(conn, user_id=default_user(conn), name="plain", interest=None)
        add_rule(conn, plain, "keyword", "spin qubit")

    hub = new_hub(sample_engine)  # a new process: nothing loaded
    assert hub.rank("plain", limit=5)[0].reasons
    assert loads == [1]  # no statement: the model was not loaded, yet the stored vectors were read
    with sample_engine.connect() as conn:
        model, embed = hub.embedding(conn)
    assert model == E.DEFAULT_MODEL and isinstance(embed, StatementVectors)
    assert hub.rank(NAME, limit=5)
    assert loads == [1, 1] and embed.embedded == 1  # a statement: loaded once, embedded

    # the real CLI in its own process: ranking the statement-less radar imports no torch
    env = script_env(ACADEMICHUB_DATABASE_URL=database_url, ACADEMICHUB_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, "-X", "importtime", academichub_script(), "rank", "plain", "--limit", "5",
                           "--format", "json"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "academichub.rank.ranker" in imported  # it did rank here (no ranking was stored for it)
    assert not {m for m in imported if m.split(".")[0] in ("torch", "sentence_transformers", "onnxruntime", "transformers")}
