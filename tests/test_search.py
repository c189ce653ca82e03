"""Ranked search over the bundled real day (2024-11-28, 1504 papers), SQLite and PostgreSQL: named
queries in a fixed order, Chinese queries through the glossary, highlighted snippets, sort by date,
the capped ranked set, and the semantic side fused in when vectors are stored."""

from __future__ import annotations

import warnings
from datetime import date

import numpy as np
import pytest
from markupsafe import Markup
from sqlalchemy import select, update

import academichub.app.search as search_module
from academichub.app.hub import Hub
from academichub.app.search import fuse, highlight, read_query
from academichub.ingest.pipeline import load_sample_if_empty
from academichub.store.database import open_store
from academichub.store.feed import FeedFilters
from academichub.store.schema import papers
from academichub.store.search import ranked_matches
from academichub.web.app import create_app
from test_web import cards, make_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

# The papers of the day whose title holds "graph neural network(s)" (grep the sample's <title>s).
GNN_TITLES = {
    "2411.17849",  # GNN 101: Visual Learning of Graph Neural Networks in Your Web Browser
    "2411.17971",  # Graph Neural Network for Cerebral Blood Flow Prediction With Clinical Datasets
    "2310.11083",  # Enhancing Signed Graph Neural Networks through Curriculum-Based Training
    "2402.14708",  # CaT-GNN: ... via Causal Temporal Graph Neural Networks
    "2406.14096",  # Graph Neural Networks for Job Shop Scheduling Problems: A Survey
    "2410.11782",  # G-Designer: ... via Graph Neural Networks
    "2411.13821",  # Heterophilic Graph Neural Networks Optimization with Causal Message-passing
}
HODGE = "2311.10270"  # Multiscale Hodge Scattering Networks for Data Analysis (the unranked search's first)
MATRICES = "2403.17687"  # Assessing the similarity of real matrices with arbitrary shape (its third)
DIOPHANTINE = "2411.18439"


@pytest.fixture(scope="module")
def sample(module_database_url):
    engine = open_store(module_database_url)
    summary = load_sample_if_empty(engine)
    assert summary is not None and summary.added == 1504
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def ids(sample) -> dict[str, int]:
    with sample.connect() as conn:
        return dict(conn.execute(select(papers.c.arxiv_id, papers.c.id)).all())


@pytest.fixture(scope="module")
def client(sample):
    # module-scoped: made before conftest's per-test settings, so it says itself what it must not run
    with TestClient(create_app(make_settings(embed_on_ingest=False, scheduler=False), engine=sample)) as c:
        yield c


@pytest.fixture
def hub(sample):
    return Hub(make_settings(embed_on_ingest=False, scheduler=False), engine=sample)


def arxiv_ids(items, ids) -> list[str]:
    back = {v: k for k, v in ids.items()}
    return [back[i["id"]] for i in items]


def test_graph_neural_network_puts_the_papers_with_the_phrase_in_their_title_first(client, ids):
    body = client.get("/api/papers", params={"q": "graph neural network", "size": 20}).json()
    ranked = arxiv_ids(body["items"], ids)
    assert set(ranked[:7]) == GNN_TITLES
    assert HODGE not in ranked[:3] and MATRICES not in ranked[:3]
    assert body["total"] == 16 and body["capped"] is False and body["sort"] == "relevance"
    # the page shows the same order (relevance is the default when there is a query)
    page = [c.id for c in cards(client.get("/", params={"q": "graph neural network", "lang": "en"}).text)]
    assert page == [ids[a] for a in ranked[:10]]
    # a phrase in quotes still ranks: every title with the phrase first
    quoted = arxiv_ids(client.get("/api/papers", params={"q": '"graph neural networks"', "size": 7}).json()["items"], ids)
    assert set(quoted) <= GNN_TITLES


def test_chinese_query_finds_what_the_english_one_finds(client, ids):
    english = client.get("/api/papers", params={"q": "graph neural network", "size": 20}).json()
    chinese = client.get("/api/papers", params={"q": "图神经网络", "size": 20}).json()
    assert [i["id"] for i in chinese["items"]] == [i["id"] for i in english["items"]]
    assert set(arxiv_ids(chinese["items"][:7], ids)) == GNN_TITLES
    assert chinese["notices"] == [{"kind": "translated", "words": ["图神经网络 → graph neural network"]}]
    html = client.get("/", params={"q": "图神经网络", "lang": "zh"}).text
    assert "已按英文检索：图神经网络 → graph neural network" in html
    assert "<mark>Graph</mark> <mark>Neural</mark> <mark>Networks</mark>" in html


def test_a_query_that_finds_nothing_says_which_words_were_not_understood(client):
    body = client.get("/api/papers", params={"q": "啊呀 图神经网络"}).json()
    assert body["total"] == 16 and body["notices"][0]["kind"] == "translated"  # a stray word is no obstacle
    body = client.get("/api/papers", params={"q": "啊呀呀"}).json()
    assert body["total"] == 0 and body["notices"] == [{"kind": "not_understood", "words": ["啊呀呀"]}]
    zh = client.get("/", params={"q": "啊呀呀", "lang": "zh"}).text
    assert "未能理解：啊呀呀（不在中英术语表中）" in zh
    en = client.get("/", params={"q": "啊呀呀", "lang": "en"}).text
    assert "Not understood: 啊呀呀 (not in the Chinese–English glossary)" in en
    none = client.get("/api/papers", params={"q": "zzqxjvw"}).json()
    assert none["total"] == 0 and none["notices"] == [{"kind": "no_match", "words": []}]
    assert "No paper matches every word of the query" in client.get("/", params={"q": "zzqxjvw", "lang": "en"}).text
    assert client.get("/api/papers", params={"q": "((("}).json()["notices"] == [{"kind": "no_terms", "words": []}]


def test_snippets_mark_the_words_and_escape_the_rest(client, ids):
    item = client.get("/api/papers", params={"q": "Diophantine", "size": 1}).json()["items"][0]
    assert item["id"] == ids[DIOPHANTINE]
    assert item["highlight"]["title"].startswith("Exact <mark>Diophantine</mark> approximation")
    marked = highlight({"title": "<b>Graph</b> & networks", "abstract": "a <script>graph</script> " + "x " * 80},
                       read_query("graph network").words)
    assert isinstance(marked["title"], Markup)
    assert str(marked["title"]) == "&lt;b&gt;<mark>Graph</mark>&lt;/b&gt; &amp; <mark>networks</mark>"
    assert str(marked["abstract"]).startswith("a &lt;script&gt;<mark>graph</mark>&lt;/script&gt; x")
    assert str(marked["abstract"]).endswith(" …")
    # the snippet is the stretch of the abstract that holds the words, cut with ellipses
    long = {"title": "t", "abstract": " ".join(["filler"] * 100 + ["graph", "neural", "network"] + ["tail"] * 100)}
    snippet = str(highlight(long, ["graph", "neural", "network"])["abstract"])
    assert snippet.startswith("… ") and snippet.endswith(" …")
    assert "<mark>graph</mark> <mark>neural</mark> <mark>network</mark>" in snippet
    assert len(snippet.split()) <= search_module.SNIPPET_WORDS + 2


def test_sort_by_date_puts_the_newest_first_on_web_api_and_cli(client, sample, ids, hub):
    first = client.get("/api/papers", params={"q": "graph neural network", "size": 1}).json()["items"]
    old = first[0]["id"]  # the relevance ranking's first, moved back a month
    with sample.begin() as conn:
        conn.execute(update(papers).where(papers.c.id == old).values(announced_on=date(2024, 11, 1)))
    try:
        relevance = [i["id"] for i in client.get("/api/papers", params={"q": "graph neural network", "size": 20}).json()["items"]]
        by_date = client.get("/api/papers", params={"q": "graph neural network", "size": 20, "sort": "date"}).json()
        assert relevance[0] == old and by_date["sort"] == "date"
        assert [i["id"] for i in by_date["items"]][-1] == old and len(by_date["items"]) == 16
        assert "sort=date" in by_date["next_batch"]
        html = client.get("/", params={"q": "graph neural network", "sort": "date", "lang": "en"}).text
        assert [c.id for c in cards(html)][0] != old
        assert '<option value="date" selected>' in html
        assert client.get("/api/papers", params={"q": "x", "sort": "newest"}).status_code == 422
        results = hub.search(FeedFilters(q="graph neural network"), sort="date", size=20)
        assert [i["id"] for i in results.page.items][-1] == old
    finally:
        with sample.begin() as conn:
            conn.execute(update(papers).where(papers.c.id == old).values(announced_on=date(2024, 11, 28)))


def test_the_ranked_set_is_capped_and_says_so(client, sample, hub, monkeypatch):
    with sample.connect() as conn:
        full = ranked_matches(conn, FeedFilters(q="quantum"))
        capped = ranked_matches(conn, FeedFilters(q="quantum"), limit=5)
    assert len(full.ids) == 143 and not full.capped
    assert capped.capped and capped.ids == full.ids[:5]
    monkeypatch.setattr(search_module, "SEARCH_CAP", 5)
    results = hub.search(FeedFilters(q="quantum"), size=3)
    assert results.total_label == "5+" and results.page.total == 5 and results.page.batches == 2
    assert "5+ matching papers" in client.get("/", params={"q": "quantum", "lang": "en", "size": 3}).text
    assert client.get("/api/papers", params={"q": "quantum"}).json()["capped"] is True
    # facets come from the ranked set, not from every match
    assert sum(n for _, n in results.facets) >= 5 and all(n <= 5 for _, n in results.facets)


def test_other_filters_narrow_a_ranked_search(client, ids):
    body = client.get("/api/papers", params={"q": "graph neural network", "category": "cs.LG", "size": 50}).json()
    assert 0 < body["total"] < 16
    assert all("cs.LG" in i["categories"] for i in body["items"])
    narrowed = client.get("/api/papers", params={"q": "graph neural network -survey", "size": 50}).json()
    assert narrowed["total"] == 15 and "2406.14096" not in arxiv_ids(narrowed["items"], ids)


def test_fusion_is_reciprocal_rank_with_a_floor_for_papers_no_word_matched():
    lexical = [1, 2, 3]
    semantic = [(3, 0.9), (4, 0.5), (5, 0.1)]
    # 3: 1/63 + 1/61; 1: 1/61; 2 and 4: 1/62 each (ties by id); 5 is too far and matched no word
    assert fuse(lexical, semantic) == [3, 1, 2, 4]


def test_stored_vectors_join_the_ranking(sample, ids, hub):
    """With vectors, a paper that shares no word with the query but sits next to it in the
    embedding space is found; the title-phrase papers still come first."""
    from academichub.rank.embeddings import store_vectors
    from sqlalchemy import text

    target = ids[DIOPHANTINE]
    all_ids = sorted(ids.values())
    matrix = np.zeros((len(all_ids), 4), dtype=np.float32)
    matrix[:, 0] = 1.0
    matrix[all_ids.index(target)] = [0.0, 1.0, 0.0, 0.0]
    with sample.begin() as conn:
        store_vectors(conn, "fake-model", all_ids, matrix)
    try:
        hub.embedding = lambda conn: ("fake-model", lambda text_: np.array([0.0, 1.0, 0.0, 0.0], dtype=np.float32))
        results = hub.search(FeedFilters(q="graph neural network"), size=50)
        found = [i["id"] for i in results.page.items]
        assert results.semantic and results.page.total == 17 and target in found
        back = {v: k for k, v in ids.items()}
        assert {back[i] for i in found[:7]} == GNN_TITLES
        assert highlight(results.page.items[found.index(target)], ["graph"])["title"].startswith("Exact Diophantine")
        # an excluded word keeps its promise: nothing joins that the words did not match
        narrowed = [i["id"] for i in hub.search(FeedFilters(q="graph neural network -survey"), size=50).page.items]
        assert target not in narrowed and len(narrowed) == 15
        # date order reads the words only
        assert target not in [i["id"] for i in hub.search(FeedFilters(q="graph neural network"), sort="date", size=50).page.items]
    finally:
        with sample.begin() as conn:
            conn.execute(text("DELETE FROM paper_embeddings WHERE model = 'fake-model'"))


def test_cli_search_ranks_sorts_and_explains(sample, ids, monkeypatch, capsys):
    from typer.testing import CliRunner

    from academichub.cli import app

    monkeypatch.setenv("ACADEMICHUB_DATABASE_URL", sample.url.render_as_string(hide_password=False))
    monkeypatch.setenv("ACADEMICHUB_LOAD_SAMPLE", "false")
    runner = CliRunner()
    result = runner.invoke(app, ["papers", "search", "图神经网络", "--limit", "7", "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    start = result.stdout.index("{")
    body = json.loads(result.stdout[start:])
    assert {i["arxiv_id"] for i in body["items"]} == GNN_TITLES
    bad = runner.invoke(app, ["papers", "search", "graph", "--sort", "newest"])
    assert bad.exit_code != 0
    dated = runner.invoke(app, ["papers", "search", "graph neural network", "--sort", "date", "--limit", "3"])
    assert dated.exit_code == 0 and "16 papers" in dated.stdout
