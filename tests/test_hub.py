"""The application layer (app.Hub) over the bundled real arXiv day in a real store (SQLite, or
PostgreSQL in the suite's second pass): one ranker and a candidate cache of several windows (a
briefing does not evict the radar page's set, and after refresh_candidates the page only scores),
"how many are left" by set arithmetic equal to what a second ranking would count, the embedder
loaded once per process, and one hub shared by the web app."""

from __future__ import annotations

import threading
import warnings
from datetime import date

import numpy as np
import pytest

from academichub.app.hub import Hub
from academichub.ingest.pipeline import load_sample_if_empty, store_records
from academichub.model import PaperData
from academichub.rank.service import candidate_set, profile_of
from academichub.settings import Settings
from academichub.store.feed import FeedFilters
from academichub.store.radars import get_radar, shown_batches
from test_web_radar import make_radar

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DAY = date(2024, 11, 28)


@pytest.fixture
def hub(engine):
    assert load_sample_if_empty(engine).added == 1504
    return Hub(Settings(load_sample=False, batch_size=10, default_language="en"), engine=engine)


def _ids(batch) -> list[int]:
    return [item["id"] for item in batch.items]


def _ranked_count(hub, radar_name: str, exclude: set[int]) -> int:
    """What the remaining count used to be: a second ranking, counted."""
    with hub.engine.connect() as conn:
        radar = get_radar(conn, radar_name)
        cs = candidate_set(conn, ranker=hub.ranker, cache=hub.candidates)
        ranking = hub.ranker.rank(profile_of(conn, radar), cs, explain=0, exclude=set(radar.seeds) | exclude)
    return len(ranking.ids)


def _join_reranks() -> None:
    """Until the background re-ranks a stale page asked for are done (else one lands mid-test)."""
    for thread in threading.enumerate():
        if thread.name.startswith("re-rank radar "):
            thread.join(120)


def test_after_a_refresh_pages_and_briefings_only_score(hub):
    make_radar(hub.engine, "q", interest="spin qubits in semiconductor quantum dots", keyword=["qubit"],
               exclude=["superconducting"], mute_author=["Shitong Luo"])
    assert hub.refresh_candidates() == 1504
    built = hub.candidates.builds
    assert built >= 2  # every stored paper, and the briefing windows of the latest day

    first = hub.next_batch("q", FeedFilters(), 10)
    assert hub.candidates.builds == built and first.state == "ok" and len(first.items) == 10
    briefing = hub.write_briefing("q", DAY, lang="en")
    assert briefing.papers and hub.candidates.builds == built  # its window was built by the refresh
    second = hub.next_batch("q", FeedFilters(), 10)
    assert hub.candidates.builds == built  # the briefing evicted nothing
    assert not set(_ids(first)) & set(_ids(second)) and second.batch == first.batch + 1

    # the remaining count is set arithmetic, and it is what a second ranking would count
    with hub.engine.connect() as conn:
        shown = set(shown_batches(conn, get_radar(conn, "q").id, hub.today()))
    assert shown == set(_ids(first)) | set(_ids(second))
    assert second.remaining == _ranked_count(hub, "q", shown)
    assert 0 < second.remaining < 1504 - 20  # the exclusion and the muted author take some out

    # the same batch again is the same papers, and nothing new is recorded
    again = hub.next_batch("q", FeedFilters(), 10, wanted=first.batch)
    assert set(_ids(again)) == set(_ids(first)) and again.remaining == second.remaining

    # a filter narrows both the batch and what is left (the filtered remaining still matches)
    narrowed = hub.next_batch("q", FeedFilters(categories=["quant-ph"]), 10)
    assert narrowed.total < second.total and narrowed.remaining < second.remaining

    # a new paper changes the corpus: the next page still reads the stored ranking (no build), the
    # re-rank (the rank job's work) builds once, and the pages after it read again
    computed = hub.rankings_computed
    store_records(hub.engine, [PaperData(source="arxiv-rss", source_id="2411.99999v1", title="A qubit in silicon",
                                         abstract="Spin qubits.", arxiv_id="2411.99999", arxiv_version=1)])
    hub.next_batch("q", FeedFilters(), 10)  # asks for a re-rank in a background thread (no queue here)
    _join_reranks()
    with hub.engine.connect() as conn:
        radar_id = get_radar(conn, "q").id
    hub.store_rankings(radar_id)  # the rank job's work: done by the thread, or now
    assert hub.candidates.builds == built + 1 and hub.rankings_computed > computed
    computed = hub.rankings_computed
    hub.next_batch("q", FeedFilters(), 10)
    assert hub.candidates.builds == built + 1 and hub.rankings_computed == computed


def test_every_paper_shown_leaves_none(hub):
    make_radar(hub.engine, "few", interest=None, category=["q-bio.PE"])
    total = None
    for _ in range(400):
        batch = hub.next_batch("few", FeedFilters(categories=["q-bio.PE"]), 10)
        total = total or batch.total
        if batch.state != "ok":
            break
    assert batch.state == "all_shown" and batch.remaining == 0 and batch.items == []
    with hub.engine.connect() as conn:
        assert len(shown_batches(conn, get_radar(conn, "few").id, hub.today())) == total


def test_the_web_app_runs_on_the_hub_it_is_given(hub):
    from academichub.web.app import create_app

    make_radar(hub.engine, "q", interest="spin qubits in semiconductor quantum dots")
    hub.refresh_candidates()
    built = hub.candidates.builds
    app = create_app(hub=hub)
    assert app.state.hub is hub
    with TestClient(app) as client:
        page = client.get("/?radar=q")
        assert page.status_code == 200 and 'id="paper-' in page.text
        another = client.post("/radars/q/batches", follow_redirects=False)  # records the batch on show (a POST)
        assert another.status_code == 303 and another.headers["location"] == "/?radar=q&batch=0"
        ranked = client.get("/api/radars/q/rank?limit=5").json()
        assert len(ranked) == 5
        assert client.get("/api/radars/nobody/rank").status_code == 404
        assert client.get("/healthz").json()["database"] == "ok"
    assert hub.candidates.builds == built  # the requests only scored
    with hub.engine.connect() as conn:  # the app did not close the hub's engine: it is not its own
        assert shown_batches(conn, get_radar(conn, "q").id, hub.today())


class _Toy:
    """A tiny embedder (a real store, a fake model): counts how often it is loaded."""

    name, dim, max_seq_length = "toy", 4, 128
    loads = 0

    def encode(self, texts, batch_size=32):
        return np.array([[len(t) % 7 + 1, 1, 2, 3] for t in texts], dtype=np.float32)


def test_the_embedder_is_loaded_once_per_hub(engine, monkeypatch):
    import academichub.rank.embeddings as E

    def load(settings, engine=None):
        _Toy.loads += 1
        return _Toy()

    monkeypatch.setattr(E, "configured_embedder", load)
    _Toy.loads = 0
    hub = Hub(Settings(load_sample=False), engine=engine)
    store_records(engine, [PaperData(source="arxiv-rss", source_id=f"2411.1770{i}v1", title=f"Paper {i}",
                                     abstract="text " * i, arxiv_id=f"2411.1770{i}", arxiv_version=1) for i in range(3)])
    with engine.connect() as conn:
        assert hub.embedding(conn) == (None, None)  # nothing embedded yet: no model loaded
    assert _Toy.loads == 0
    assert hub.embed_new_papers() == 3
    with engine.connect() as conn:
        model, embed = hub.embedding(conn)
        assert model == "toy" and embed("a statement").shape == (4,)
        assert hub.embedding(conn)[0] == "toy"
    assert hub.embed_new_papers() == 0
    assert _Toy.loads == 1


def test_two_requests_that_miss_at_once_build_the_candidates_once(hub):
    """Both threads ask before either has a set (the barrier): without the per-window build lock
    each would read and build every stored paper (the second build is what the count catches)."""
    import threading

    barrier = threading.Barrier(2)
    sets = []

    def ask():
        with hub.engine.connect() as conn:
            barrier.wait()
            sets.append(candidate_set(conn, ranker=hub.ranker, cache=hub.candidates))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hub.candidates.builds == 1 and sets[0] is sets[1] and len(sets[0]) == 1504
