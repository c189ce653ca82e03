"""The "why" line names what matched, in the page's language: the followed author, the seed paper
by its title, and the interest statement's own words found in the paper (a Chinese statement's
through its English terms), on the bundled real arXiv day (2024-11-28) in a real store."""

from __future__ import annotations

import warnings

import pytest

from academichub.ingest.pipeline import SAMPLE_FILE, ingest_file
from academichub.names import fold
from academichub.rank.ranker import statement_terms
from academichub.rank.service import rank_radar
from academichub.settings import Settings
from academichub.store.radars import add_rule, add_seeds, create_radar, default_user, find_paper, get_radar
from academichub.web.app import create_app
from test_web_radar import why

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SEED = "2306.03564"  # Burkard et al., in the day's cross-lists
SEED_TITLE = "Theory of the Simultaneous Transient Dispersive Readout of Multiple Spin Qubits"
SHUTTLING = "2007.03598"  # "Spin shuttling in a silicon double quantum dot", by Guido Burkard among others


@pytest.fixture
def day(engine):
    ingest_file(engine, SAMPLE_FILE)
    with engine.begin() as conn:
        en = create_radar(conn, user_id=default_user(conn), name="spins", interest="spin qubits in semiconductor quantum dots")
        add_rule(conn, en, "author", "Guido Burkard")
        add_seeds(conn, en, [find_paper(conn, SEED)], origin="test")
        create_radar(conn, user_id=default_user(conn), name="自旋", interest="量子点中的自旋量子比特")
    return engine


def test_statement_terms_are_the_statements_words_the_paper_holds():
    text = fold("We read out a spin qubit in a Si/SiGe quantum-dot device; the qubits are coupled by exchange.")
    # the longest stretch first, singular or plural, hyphenated or not; stop words and filler end a run
    assert statement_terms("I am interested in papers on spin qubits in semiconductor quantum dots", text) == [
        "spin qubits", "quantum dots"]
    # punctuation ends a run too: no "dots spin" across a comma; as the statement writes them
    assert statement_terms("Quantum dots, spin, Exchange", text) == ["Quantum dots", "spin", "Exchange"]
    assert statement_terms("galaxy formation", text) == []
    assert statement_terms("spin; qubit; exchange; device; silicon", text, limit=3) == ["spin", "qubit", "exchange"]


def test_reasons_name_the_author_the_seed_and_the_statement_terms(day):
    with day.connect() as conn:
        ranked = {r.id: r for r in rank_radar(conn, get_radar(conn, "spins"), limit=10)}
        shuttling = find_paper(conn, SHUTTLING)
        reasons = [(r.kind, r.text) for r in ranked[shuttling].reasons]
        assert reasons == [("author", "Guido Burkard"), ("seed", SEED_TITLE),
                           ("statement", "spin qubits, semiconductor quantum dots")]
        # a Chinese statement is matched through its English terms, which the reason names
        chinese = {r.id: r for r in rank_radar(conn, get_radar(conn, "自旋"), limit=10)}
        assert [(r.kind, r.text) for r in chinese[shuttling].reasons] == [("statement", "quantum dots, spin, qubits")]


def test_the_why_line_reads_in_chinese_and_english(day):
    with day.connect() as conn:
        shuttling = find_paper(conn, SHUTTLING)
    settings = Settings(load_sample=False, default_language="en", batch_size=10)
    with TestClient(create_app(settings, engine=day)) as client:
        for url, params in (("/radars/spins", {}), ("/", {"radar": "spins", "size": 20, "batch": 0})):
            en = why(client.get(url, params={**params, "lang": "en"}).text)[shuttling]
            assert en == ("Why: followed author Guido Burkard · similar to seed “" + SEED_TITLE + "” · matches your "
                          "interest in “spin qubits”, “semiconductor quantum dots”"), url
            zh = why(client.get(url, params={**params, "lang": "zh"}).text)[shuttling]
            assert zh == ("推荐理由： 关注的作者 Guido Burkard · 与种子论文“" + SEED_TITLE + "”相似 · "
                          "符合您的兴趣描述：“spin qubits”、“semiconductor quantum dots”"), url
        zh = why(client.get("/", params={"radar": "自旋", "size": 20, "lang": "zh"}).text)[shuttling]
        assert zh == "推荐理由： 符合您的兴趣描述：“quantum dots”、“spin”、“qubits”"
