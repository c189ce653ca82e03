"""The web shows the daily loop (issue 15), on a real store (SQLite, or PostgreSQL in the suite's
second pass) with an injected clock: /sources lists each source's last run, next run and last
error and runs one now (against a local server replaying the recorded arXiv day); arXiv
categories are followed from the bundled taxonomy; the feed header says when the store was last
updated, when the next fetch is due and that the bundled day is sample data; a first run follows
categories and journals and creates a radar in one form. zh and en both render."""

from __future__ import annotations

import re
import warnings
from datetime import date, datetime
from html import unescape

import pytest
from sqlalchemy import select, update

from academichub import taxonomy
from academichub.app.hub import Hub
from academichub.app.loop_status import loop_status
from academichub.ingest.pipeline import load_sample_if_empty, write_records
from academichub.model import PaperData
from academichub.settings import load_settings
from academichub.store.papers import count_papers, record_announcement
from academichub.store.radars import get_radar, list_radars
from academichub.store.schema import papers
from academichub.store.sources import add_source, get_source, list_sources, record_failure, record_success, set_enabled
from academichub.web.app import create_app

with warnings.catch_warnings():  # starlette's note about httpx versions is not ours to fix
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NOW = datetime(2024, 11, 29, 9, 0)  # the store's datetimes are naive UTC; so is the Hub's clock
SAMPLE_LOADED = datetime(2024, 11, 28, 20, 0)
SAMPLE_DAY = date(2024, 11, 28)


def client_for(engine, clock=lambda: NOW, **settings) -> TestClient:
    settings = load_settings(load_sample=False, **settings)
    app = create_app(settings, engine=engine)
    app.state.hub = Hub(settings, engine=engine, clock=clock)
    return TestClient(app)


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def row_of(html: str, source: str) -> dict[str, str]:
    """The cells of a source's row on /sources, by class (last-run, next-run, status)."""
    row = re.search(rf'<tr[^>]*data-source="{re.escape(source)}">(.*?)</tr>', html, re.S)
    assert row, source
    cells = dict(re.findall(r'<td class="([a-z-]+)"[^>]*>(.*?)</td>', row.group(1), re.S))
    return {name: text_of(cell) for name, cell in cells.items()}


def marked(html: str, attribute: str, value: str) -> str:
    """The text of the element carrying attribute="value" (one level of nesting is enough here)."""
    found = re.search(rf'<(\w+)[^>]*{attribute}="{value}"[^>]*>(.*?)</\1>', html, re.S)
    assert found, (attribute, value)
    return text_of(found.group(2))


def checkbox_values(html: str, name: str) -> list[str]:
    return re.findall(rf'<input type="checkbox" name="{name}" value="([^"]+)"', html)


# -- /sources -------------------------------------------------------------------------------------


def test_sources_page_shows_last_run_next_run_and_last_error(engine):
    with engine.begin() as conn:
        failing = add_source(conn, name="crossref:fems", kind="crossref", params={"issn": "1574-6941"},
                             label="FEMS Microbiology Ecology", now=datetime(2024, 11, 1))
        record_failure(conn, failing, error="HTTP 500 from api.crossref.org", now=datetime(2024, 11, 29, 7, 0))
        record_failure(conn, failing, error="HTTP 503 from api.crossref.org", now=datetime(2024, 11, 29, 8, 0))
        add_source(conn, name="arxiv", kind="arxiv", params={"archives": "cs.LG"}, label="arXiv", now=datetime(2024, 11, 1))
        healthy = add_source(conn, name="pubmed:nat", kind="pubmed", params={"journal": "Nature"}, label=None,
                             now=datetime(2024, 11, 1), interval_minutes=720)
        record_success(conn, healthy, added=12, updated=3, now=datetime(2024, 11, 29, 6, 30))
        add_source(conn, name="feed:off", kind="feed", params={"url": "https://example.org/rss"}, label=None,
                   now=datetime(2024, 11, 1), enabled=False)
    client = client_for(engine)
    page = client.get("/sources?lang=en")
    assert page.status_code == 200
    assert "no cron job needed" in page.text and "academichub worker" in page.text
    assert row_of(page.text, "crossref:fems") == {
        "last-run": "2024-11-29 08:00 UTC 0 added, 0 updated",
        "next-run": "2024-11-30 08:00 UTC",
        "status": "failing since 2024-11-29 07:00 UTC (2 runs): HTTP 503 from api.crossref.org",
    }
    assert row_of(page.text, "arxiv") == {"last-run": "never", "next-run": "due now", "status": "not run yet"}
    assert row_of(page.text, "pubmed:nat") == {
        "last-run": "2024-11-29 06:30 UTC 12 added, 3 updated", "next-run": "2024-11-29 18:30 UTC", "status": "ok",
    }
    assert row_of(page.text, "feed:off") == {"last-run": "never", "next-run": "disabled", "status": "off"}
    assert page.text.count('action="/sources/run"') == 4
    schedule = {s["name"]: (s["next_run"], s["due"]) for s in client.get("/api/sources").json()}
    assert schedule == {
        "arxiv": ("2024-11-29T09:00:00Z", True), "crossref:fems": ("2024-11-30T08:00:00Z", False),
        "feed:off": (None, False), "pubmed:nat": ("2024-11-29T18:30:00Z", False),
    }

    zh = client.get("/sources?lang=zh").text
    assert row_of(zh, "arxiv") == {"last-run": "从未", "next-run": "现在到期", "status": "尚未运行"}
    assert row_of(zh, "crossref:fems")["status"] == "自 2024-11-29 07:00 UTC 起失败（2 次）: HTTP 503 from api.crossref.org"
    assert "无需 cron 定时任务" in zh and "立即运行" in zh


@pytest.fixture
def arxiv_day(local_server, shared_data):
    """The recorded arXiv day served as the cs.LG feed (its channel link says so, as arXiv's would)."""
    recorded = (shared_data / "arxiv/rss/2024-11-28-all-archives.xml").read_bytes()
    body = re.sub(rb"<link>http://rss\.arxiv\.org/rss/[^<]+</link>", b"<link>http://rss.arxiv.org/rss/cs.LG</link>", recorded, count=1)
    assert body != recorded
    local_server.route("/rss/cs.LG", body=body)
    local_server.route("/broken.rss", status=500, body=b"upstream exploded")
    return local_server


def test_run_now_fetches_the_source_and_says_how_it_went(engine, arxiv_day):
    with engine.begin() as conn:
        add_source(conn, name="arxiv", kind="arxiv", params={"archives": "cs.LG"}, label="arXiv", now=datetime(2024, 11, 1))
        add_source(conn, name="feed:broken", kind="feed", params={"url": arxiv_day.url("/broken.rss")}, label=None,
                   now=datetime(2024, 11, 1))
    client = client_for(engine, arxiv_rss_url=arxiv_day.url("/rss/"), arxiv_min_interval=0, http_retries=0,
                        allow_private_urls=True)

    assert client.post("/sources/run", data={"source": "arxiv"}, headers={"origin": "https://evil.example"}).status_code == 403
    assert client.post("/sources/run", data={"source": "no-such-source"}).status_code == 404
    assert arxiv_day.requests == []

    ran = client.post("/sources/run", data={"source": "arxiv"}, follow_redirects=False)
    assert ran.status_code == 303 and ran.headers["location"] == "/sources?done=ran&source=arxiv"
    assert [path for path, _ in arxiv_day.requests] == ["/rss/cs.LG"]
    with engine.connect() as conn:
        stored = count_papers(conn)
        row = get_source(conn, "arxiv")
    assert stored == 1504 and row["last_added"] == 1504 and row["last_run_at"] == NOW
    page = client.get(ran.headers["location"] + "&lang=en").text
    assert marked(page, "data-flash", "ran") == "Ran arxiv: 1504 added, 0 updated."
    # arXiv follows its announcements: after Friday 09:00 UTC the next is Sunday 20:00 New York time.
    assert row_of(page, "arxiv") == {
        "last-run": "2024-11-29 09:00 UTC 1504 added, 0 updated", "next-run": "2024-12-02 01:00 UTC", "status": "ok",
    }
    assert marked(client.get(ran.headers["location"] + "&lang=zh").text, "data-flash", "ran") == "已运行 arxiv：新增 1504 篇，更新 0 篇。"

    failed = client.post("/sources/run", data={"source": "feed:broken"}, follow_redirects=False)
    assert failed.headers["location"] == "/sources?done=failed&source=feed%3Abroken"
    page = client.get(failed.headers["location"] + "&lang=en").text
    with engine.connect() as conn:
        error = get_source(conn, "feed:broken")["last_error"]
    assert "500" in error
    assert marked(page, "data-flash", "failed") == f"feed:broken failed: {error}"
    assert row_of(page, "feed:broken")["status"] == f"failing since 2024-11-29 09:00 UTC (1 runs): {error}"


# -- arXiv categories from the taxonomy -----------------------------------------------------------


def test_following_categories_creates_and_updates_the_arxiv_source(engine):
    client = client_for(engine)
    assert client.post("/sources/categories", data={"category": ["cs.LG"]}, headers={"origin": "https://evil.example"}).status_code == 403

    first = client.post("/sources/categories", data={"category": ["cs.LG", "math.ST"]}, follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/sources?done=followed&source=arxiv&category=cs.LG&category=math.ST"
    with engine.connect() as conn:
        rows = list_sources(conn)
    assert [(r["name"], r["kind"], r["label"], r["params"], r["enabled"]) for r in rows] == [
        ("arxiv", "arxiv", "arXiv", {"archives": "cs.LG+math.ST"}, True)
    ]
    page = client.get(first.headers["location"] + "&lang=en").text
    assert marked(page, "data-flash", "followed") == "Now following cs.LG, math.ST."
    assert row_of(page, "arxiv")["next-run"] == "due now"

    # codes in any case, repeats and ones already followed: only the new one is added
    again = client.post("/sources/categories", data={"category": ["CS.lg", "stat.ML", "stat.ML"]}, follow_redirects=False)
    assert again.headers["location"] == "/sources?done=followed&source=arxiv&category=stat.ML"
    with engine.connect() as conn:
        assert get_source(conn, "arxiv")["params"] == {"archives": "cs.LG+math.ST+stat.ML"}

    client.post("/sources/categories/unfollow", data={"category": "math.ST"})
    with engine.connect() as conn:
        assert get_source(conn, "arxiv")["params"] == {"archives": "cs.LG+stat.ML"}
    followed_page = client.get("/sources?lang=en").text
    # followed ones are no longer offered as checkboxes
    assert "cs.LG" not in checkbox_values(followed_page, "category")
    assert "math.ST" in checkbox_values(followed_page, "category")


def test_an_unknown_category_is_refused_and_nothing_is_stored(engine):
    client = client_for(engine)
    refused = client.post("/sources/categories?lang=en", data={"category": ["q-bio.NC", "cs.XX", "cs"]})
    assert refused.status_code == 400
    assert marked(refused.text, "data-error", "categories") == (
        "not an arXiv category: 'cs.XX', 'cs' (codes look like cs.LG, math.ST, quant-ph)"
    )
    assert 'value="q-bio.NC" checked' in refused.text  # the user's choice is kept in the form
    with engine.connect() as conn:
        assert list_sources(conn) == []

    client.post("/sources/categories", data={"category": ["cs.LG"]})
    assert client.post("/sources/categories", data={"category": ["math.XX"]}).status_code == 400
    with engine.connect() as conn:
        assert [(r["name"], r["params"]) for r in list_sources(conn)] == [("arxiv", {"archives": "cs.LG"})]


def test_the_category_filter_works_without_javascript_in_both_languages(engine):
    client = client_for(engine)
    everything = client.get("/sources?lang=en").text
    assert sorted(checkbox_values(everything, "category")) == sorted(taxonomy.categories())
    assert checkbox_values(client.get("/sources", params={"q": "机器学习", "lang": "en"}).text, "category") == ["cs.LG", "stat.ML"]
    assert checkbox_values(client.get("/sources", params={"q": "hep-th"}).text, "category") == ["hep-th"]
    found = client.get("/sources", params={"q": "statistics theory", "lang": "zh"}).text
    assert checkbox_values(found, "category") == ["math.ST", "stat.TH"]
    assert "统计理论" in found and "统计学" in found  # Chinese category and group names
    nothing = client.get("/sources", params={"q": "no such field", "lang": "en"}).text
    assert checkbox_values(nothing, "category") == [] and "No category matches this search." in nothing


# -- the feed header ------------------------------------------------------------------------------


def _load_sample(engine) -> None:
    load_sample_if_empty(engine)
    with engine.begin() as conn:  # when it was loaded, fixed so the header's value is exact
        conn.execute(update(papers).values(created_at=SAMPLE_LOADED))


def test_feed_header_says_when_the_store_was_updated_when_the_next_fetch_is_due_and_that_it_is_sample_data(engine):
    _load_sample(engine)
    client = client_for(engine)

    page = client.get("/?lang=en").text
    assert marked(page, "data-loop", "updated") == "Store last updated 2024-11-28 20:00 UTC"
    assert marked(page, "data-loop", "next") == "No source to fetch yet"
    assert marked(page, "data-loop", "sample") == (
        "This is sample data: the bundled arXiv announcement of Nov 28, 2024, shipped so there is something to read. "
        "Follow real sources to get new papers every day."
    )
    zh = client.get("/?lang=zh").text
    assert marked(zh, "data-loop", "updated") == "资料库最近更新于 2024-11-28 20:00 UTC"
    assert marked(zh, "data-loop", "sample").startswith("这是示例数据：随软件附带的 2024年11月28日 arXiv 公告")

    with engine.begin() as conn:
        early = add_source(conn, name="crossref:a", kind="crossref", params={"issn": "1574-6941"}, label=None,
                           now=datetime(2024, 11, 1), interval_minutes=720)
        record_success(conn, early, added=0, updated=0, now=datetime(2024, 11, 29, 3, 0))  # next: 15:00
        late = add_source(conn, name="arxiv", kind="arxiv", params={"archives": "cs.LG"}, label=None,
                          now=datetime(2024, 11, 1))
        record_success(conn, late, added=5, updated=0, now=datetime(2024, 11, 29, 6, 0))  # next: tomorrow 06:00
        add_source(conn, name="feed:off", kind="feed", params={"url": "https://example.org/rss"}, label=None,
                   now=datetime(2024, 11, 1), enabled=False)  # never ran, but disabled: never due
    page = client.get("/?lang=en").text
    assert marked(page, "data-loop", "updated") == "Store last updated 2024-11-29 06:00 UTC"
    assert marked(page, "data-loop", "next") == "Next fetch 2024-11-29 15:00 UTC (crossref:a)"
    assert marked(client.get("/?lang=zh").text, "data-loop", "next") == "下次抓取 2024-11-29 15:00 UTC（crossref:a）"
    assert 'action="/welcome"' not in page  # sources exist: no first-run panel

    with engine.begin() as conn:
        add_source(conn, name="pubmed:x", kind="pubmed", params={"term": "x"}, label=None, now=datetime(2024, 11, 1))
    assert marked(client.get("/?lang=en").text, "data-loop", "next") == "Next fetch: due now (pubmed:x)"
    with engine.begin() as conn:
        for name in ("crossref:a", "arxiv", "pubmed:x"):
            set_enabled(conn, name, False)
    assert marked(client.get("/?lang=en").text, "data-loop", "next") == "Every source is disabled: nothing will be fetched"

    # another day on show: no sample notice there
    assert 'data-loop="sample"' not in client.get("/?lang=en&date=2024-11-27").text


def test_a_newer_announced_day_replaces_the_sample_by_itself(engine):
    _load_sample(engine)
    new_day = date(2024, 11, 29)
    with engine.begin() as conn:
        write_records(conn, [PaperData(source="arxiv-rss", source_id="2411.99999v1", title="A paper of the next day",
                                       abstract="Fresh.", arxiv_id="2411.99999", arxiv_version=1, categories=["cs.LG"],
                                       announced=new_day)], now=datetime(2024, 11, 29, 1, 5))
        record_announcement(conn, source="arxiv-rss", feed="cs.LG", day=new_day, items=1, skip_days=[], now=datetime(2024, 11, 29, 1, 5))
    status = loop_status(engine, NOW)
    assert (status.latest_day, status.sample_day, status.shown_day, status.showing_sample) == (new_day, SAMPLE_DAY, new_day, False)
    assert status.last_updated_at.isoformat() == "2024-11-29T01:05:00+00:00"
    client = client_for(engine)
    page = client.get("/?lang=en").text
    assert 'data-loop="sample"' not in page
    assert marked(page, "data-loop", "updated") == "Store last updated 2024-11-29 01:05 UTC"
    first = client.get("/api/papers?size=1").json()["items"][0]
    assert (first["title"], first["announced_on"]) == ("A paper of the next day", "2024-11-29")
    assert 'data-loop="sample"' in client.get("/?lang=en&date=2024-11-28").text  # the sample day itself still says so


# -- the first run --------------------------------------------------------------------------------


def test_first_run_offers_categories_and_journals_and_creates_sources_and_a_radar(engine):
    client = client_for(engine)
    page = client.get("/?lang=en").text
    assert "Welcome: what should your radar watch?" in page
    assert checkbox_values(page, "category") == [c.code for c in taxonomy.featured()]
    assert "nature" in checkbox_values(page, "venue")
    zh = client.get("/?lang=zh").text
    assert "欢迎：您的雷达要关注什么？" in zh and "机器学习" in zh and "计算机科学" in zh

    done = client.post("/welcome", data={"category": ["cs.LG", "stat.ML"], "venue": ["nature"], "name": " My  ML ",
                                         "interest": "graph neural networks for molecules"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/?radar=My+ML"
    with engine.connect() as conn:
        sources = {r["name"]: (r["kind"], r["params"]) for r in list_sources(conn)}
        radar = get_radar(conn, "My ML")
    assert sources["arxiv"] == ("arxiv", {"archives": "cs.LG+stat.ML"})
    assert sources["crossref:nature"][0] == "crossref" and sources["feed:nature"][0] == "feed"
    assert set(sources) == {"arxiv", "crossref:nature", "feed:nature"}
    assert radar.interest == "graph neural networks for molecules"
    assert [r.value for r in radar.rules["category"]] == ["cs.LG", "stat.ML"]
    assert [r.value for r in radar.rules["venue"]] == ["Nature"]

    after = client.get(done.headers["location"] + "&lang=en")
    assert after.status_code == 200 and 'action="/welcome"' not in after.text
    assert 'action="/welcome"' not in client.get("/?lang=en").text
    assert marked(after.text, "data-loop", "next") == "Next fetch: due now (arxiv)"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"category": ["cs.LG", "cs.XX"], "name": "r"}, "not an arXiv category: 'cs.XX' (codes look like cs.LG, math.ST, quant-ph)"),
        ({"category": ["cs.LG"], "venue": ["no-such-journal"], "name": "r"}, "no journal 'no-such-journal' in the venue catalog"),
        ({"category": ["cs.LG"], "name": "  "}, "a radar needs a name"),
        ({"name": "r", "interest": "x"}, "pick at least one arXiv category or journal to follow"),
    ],
)
def test_a_refused_first_run_stores_nothing_and_keeps_the_form(engine, form, error):
    client = client_for(engine)
    refused = client.post("/welcome?lang=en", data=form)
    assert refused.status_code == 400
    assert marked(refused.text, "data-error", "welcome") == error
    for code in form.get("category", []):
        if code == "cs.LG":
            assert 'value="cs.LG" checked' in refused.text
    with engine.connect() as conn:
        assert list_sources(conn) == [] and list_radars(conn) == []
    assert client.post("/welcome", data={"category": ["cs.LG"], "name": "r"},
                       headers={"origin": "https://evil.example"}).status_code == 403


def test_loop_status_of_a_fresh_store(engine):
    status = loop_status(engine, NOW)
    assert status.first_run and status.sources == 0 and status.enabled == 0
    assert (status.last_updated_at, status.next_fetch_at, status.latest_day, status.sample_day) == (None, None, None, None)
    assert not status.showing_sample and not status.fetch_due_now
    with engine.connect() as conn:
        assert conn.execute(select(papers.c.id)).first() is None


def test_run_now_in_the_server_is_a_job_its_consumer_runs(engine, database_url, arxiv_day, tmp_path):
    """With the server's lifespan running (its queue attached to its hub), "run now" answers at once
    with "queued"; the server's own consumer threads then fetch the source, recorded in the ledger."""
    from academichub.store import jobs as ledger
    from academichub.workers import JobQueue

    with engine.begin() as conn:
        add_source(conn, name="arxiv", kind="arxiv", params={"archives": "cs.LG"}, label="arXiv", now=datetime(2024, 11, 1))
    settings = load_settings(database_url=database_url, data_dir=tmp_path / "data", load_sample=False, scheduler=False,
                             arxiv_rss_url=arxiv_day.url("/rss/"), arxiv_min_interval=0, http_retries=0,
                             embed_on_ingest=False)
    with TestClient(create_app(settings, engine=engine)) as client:
        ran = client.post("/sources/run", data={"source": "arxiv"}, follow_redirects=False)
        assert ran.status_code == 303 and ran.headers["location"] == "/sources?done=queued&source=arxiv"
        assert JobQueue(settings, engine=engine).wait_idle(60)
        with engine.connect() as conn:
            jobs = [job for job in ledger.recent(conn, 20) if job.name == "sources"]
            stored = count_papers(conn)
        assert [(job.params["sources"], job.status, job.attempts) for job in jobs] == [(["arxiv"], "done", 1)]
        assert jobs[0].key.startswith("sources:arxiv:now-")
        assert stored == 1504 and [path for path, _ in arxiv_day.requests] == ["/rss/cs.LG"]
        page = client.get("/sources?done=queued&source=arxiv&lang=en").text
        assert marked(page, "data-flash", "queued") == "Queued: arxiv will run in a moment."
