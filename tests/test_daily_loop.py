"""Three simulated days of the daily loop, end to end, on the embedded job system: Huey's SQLite
queue consumed by worker threads in this process (as inside `academichub serve`), the test's store,
and a local HTTP server serving the recorded arXiv RSS and Crossref answers.

The clock is injected (the Hub's); nothing sleeps. The test calls the scheduler's tick itself at the
instants it chooses (the consumer's own every-minute tick is off, scheduler = false), then waits for
the consumer threads to drain the ledger. Each day is derived from the recorded 2024-11-28 feed: a
third of its items (of the first 3 x PER_DAY), its dates moved to the simulated day."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from embedder_support import offline_embedder

from academichub.settings import load_settings
from academichub.store import jobs as ledger
from academichub.store.schema import briefings, paper_embeddings, papers

pytest.importorskip("sentence_transformers", reason="the daily loop embeds: needs the embeddings extra")

RSS = "arxiv/rss/2024-11-28-all-archives.xml"
EMPTY_RSS = "arxiv/rss/empty.xml"
CROSSREF_PAGE = "crossref/cr_journals_issn_workstrue_behavior-2.json"  # FEMS Microbiology Ecology
RECORDED_DAY = "Thu, 28 Nov 2024"
PER_DAY = 40
# Monday to Wednesday: each feed day is announced at 20:00 US Eastern the evening before.
DAYS = [date(2024, 12, 2), date(2024, 12, 3), date(2024, 12, 4)]
FETCH_AT = time(2, 30)  # 21:30 Eastern the evening before: after the announcement
BRIEF_AT = time(8, 0)  # past 07:00 UTC (the local user's hour) and midnight in Los Angeles (lin's hour 0)


def moved(feed: bytes, day: date) -> bytes:
    return feed.replace(RECORDED_DAY.encode(), day.strftime("%a, %d %b %Y").encode())


def day_feed(recorded: bytes, k: int) -> bytes:
    """The k-th third of the recorded feed's first 3 x PER_DAY items, dated DAYS[k]."""
    items = re.findall(rb"<item>.*?</item>\s*", recorded, flags=re.S)
    head = recorded[: recorded.index(b"<item>")]
    tail = recorded[recorded.rindex(b"</item>") + len(b"</item>"):]
    return moved(head + b"".join(items[k * PER_DAY:(k + 1) * PER_DAY]) + tail, DAYS[k])


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    with offline_embedder(tmp_path_factory, max_seq_length=128) as loaded:
        yield loaded


def test_three_days_fetch_embed_and_brief_by_themselves(engine, database_url, local_server, shared_data,
                                                        embedder, monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from academichub.rank import embeddings as E
    from academichub.store.radars import add_rule, create_radar, default_user
    from academichub.store.schema import users
    from academichub.store.sources import add_source
    from academichub.web.app import create_app
    from academichub.workers import JobQueue

    monkeypatch.setattr(E, "configured_embedder", lambda settings, engine=None: embedder)
    base = local_server.url("")
    settings = load_settings(
        database_url=database_url, data_dir=tmp_path / "data", arxiv_rss_url=base + "/rss/", crossref_url=base,
        arxiv_min_interval=0, http_retries=0, source_lookback_days=8, scheduler=False, worker_concurrency=2,
        load_sample=False, briefing_papers=10, embed_on_ingest=True,
    )
    recorded = (shared_data / RSS).read_bytes()
    local_server.route("/journals/1574-6941/works", body=(shared_data / CROSSREF_PAGE).read_bytes(),
                       headers={"Content-Type": "application/json"})
    first = datetime.combine(DAYS[0], time(0, 0))
    with engine.begin() as conn:
        add_source(conn, name="arxiv-cs", kind="arxiv", params={"archives": "cs"}, label=None, now=first)
        add_source(conn, name="crossref:fems", kind="crossref", params={"issn": "1574-6941"},
                   label="FEMS Microbiology Ecology", now=first)
        ml = create_radar(conn, user_id=default_user(conn), name="ml")
        add_rule(conn, ml, "category", "cs.LG")
        lin = conn.execute(users.insert().values(name="lin", timezone="America/Los_Angeles", briefing_hour=0,
                                                 created_at=first).returning(users.c.id)).scalar_one()
        cy = create_radar(conn, user_id=lin, name="ai")
        add_rule(conn, cy, "category", "cs.AI")

    clock = [first]
    queue = JobQueue(settings, engine=engine, clock=lambda: clock[0])
    queue.start_in_process()
    web = TestClient(create_app(settings, engine=engine))

    def fetches(prefix: str) -> int:
        return sum(1 for path, _ in local_server.requests if path.startswith(prefix))

    def count(table, *where) -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()

    try:
        for k, day in enumerate(DAYS):
            local_server.route("/rss/cs", body=day_feed(recorded, k))
            arxiv_before, crossref_before = fetches("/rss/"), fetches("/journals/")

            clock[0] = datetime.combine(day, FETCH_AT)
            window = (day - timedelta(days=1)).isoformat()
            source_key = f"source:crossref:fems:{day.isoformat()}"
            assert sorted(queue.tick()) == sorted([f"arxiv:{window}", source_key])
            assert queue.wait_idle(300), "the consumer threads did not drain the ledger"
            assert queue.tick() == []  # fetched, embedded: nothing due until the briefing hour
            assert queue.wait_idle(60)

            clock[0] = datetime.combine(day, BRIEF_AT)
            assert sorted(queue.tick()) == [f"brief:{ml}:{day}", f"brief:{cy}:{day}"]
            assert queue.wait_idle(300)
            assert queue.tick() == []  # a period is briefed once, however often the tick asks

            # Each upstream fetched once that day; the day's third of the feed stored and embedded.
            assert fetches("/rss/") - arxiv_before == 1
            assert fetches("/journals/") - crossref_before == 1
            assert count(papers, papers.c.announced_on == day) == PER_DAY
            assert count(paper_embeddings) == count(papers)
            for radar_id in (ml, cy):
                assert count(briefings, briefings.c.radar_id == radar_id, briefings.c.period_start == day,
                             briefings.c.period_end == day) == 1
            with engine.connect() as conn:
                done = {job.key: job.status for job in ledger.recent(conn, 500)}
            arxiv_key = f"arxiv:{window}"
            for key in (arxiv_key, f"embed:{arxiv_key}", f"candidates:{arxiv_key}", source_key,
                        f"brief:{ml}:{day}", f"deliver:{ml}:{day}", f"brief:{cy}:{day}", f"deliver:{cy}:{day}"):
                assert done.get(key) == "done", (key, done)
            assert set(done.values()) == {"done"}

            # The feed page shows the new day.
            page = web.get("/", params={"lang": "en"})
            assert page.status_code == 200
            assert f'<time class="stat-value" datetime="{day.isoformat()}">' in page.text

        # A fourth evening with no announcement (arXiv's real empty feed): fetched once, nothing new,
        # nothing embedded, no briefing written again.
        thursday = DAYS[-1] + timedelta(days=1)
        local_server.route("/rss/cs", body=moved((shared_data / EMPTY_RSS).read_bytes(), thursday))
        arxiv_before, papers_before, briefings_before = fetches("/rss/"), count(papers), count(briefings)
        clock[0] = datetime.combine(thursday, FETCH_AT)
        assert sorted(queue.tick()) == [f"arxiv:{DAYS[-1]}", f"source:crossref:fems:{thursday}"]
        assert queue.wait_idle(120)
        clock[0] = datetime.combine(thursday, BRIEF_AT)
        assert queue.tick() == []
        assert queue.wait_idle(60)
        assert fetches("/rss/") - arxiv_before == 1
        assert (count(papers), count(briefings)) == (papers_before, briefings_before)
        with engine.connect() as conn:
            assert ledger.get(conn, f"embed:arxiv:{DAYS[-1]}") is None  # no new papers: nothing chained
            assert ledger.counts(conn)["failed"] == 0
        page = web.get("/", params={"lang": "en"})
        assert f'<time class="stat-value" datetime="{DAYS[-1].isoformat()}">' in page.text
    finally:
        queue.stop()
