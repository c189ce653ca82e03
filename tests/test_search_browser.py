"""Search in Chromium (Debian's, never a downloaded one) at a desktop and a phone size, over a real
uvicorn server on the bundled day: the named queries' order, the marked words, the Chinese query's
note, the sort control. Screenshots go to $ACADEMICHUB_SCREENSHOTS (default: a temporary folder).
A small local fixture in the style of the shared one (tests/browser_support.py, engineer D's)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from academichub.ingest.pipeline import load_sample_if_empty
from academichub.store.database import open_store
from test_search import GNN_TITLES, HODGE, MATRICES
from test_web import make_settings

CHROMIUM = Path("/usr/bin/chromium")
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}
PHRASE = re.compile(r"graph neural networks?", re.IGNORECASE)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def site(module_database_url):
    import uvicorn

    from academichub.web.app import create_app

    engine = open_store(module_database_url)
    load_sample_if_empty(engine)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(make_settings(embed_on_ingest=False, scheduler=False), engine=engine), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}", engine
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("ACADEMICHUB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _arxiv_of(engine) -> dict[int, str]:
    from sqlalchemy import select

    from academichub.store.schema import papers

    with engine.connect() as conn:
        return dict(conn.execute(select(papers.c.id, papers.c.arxiv_id)).all())


@pytest.mark.parametrize("size", SIZES)
def test_named_queries_in_chromium(site, browser, shots, size):
    url, engine = site
    arxiv = _arxiv_of(engine)
    width, height = SIZES[size]
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        orders = {}
        for q, lang in (("graph neural network", "en"), ("图神经网络", "zh")):
            page.goto(f"{url}/?lang={lang}")
            page.fill("#q", q)
            page.press("#q", "Enter")
            page.wait_for_selector("article.card")
            ids = [int(a.get_attribute("id").removeprefix("paper-")) for a in page.query_selector_all("article.card")]
            titles = [t.inner_text() for t in page.query_selector_all("article.card .card-title")]
            orders[q] = ids
            assert {arxiv[i] for i in ids[:7]} == GNN_TITLES, titles[:8]
            assert all(PHRASE.search(t) for t in titles[:7])
            assert HODGE not in {arxiv[i] for i in ids[:3]} and MATRICES not in {arxiv[i] for i in ids[:3]}
            marks = page.query_selector_all("article.card:first-of-type .card-title mark")
            assert [m.inner_text().lower() for m in marks][:2] == ["graph", "neural"]
            assert page.query_selector("#sort") is not None
            page.screenshot(path=str(shots / f"search-{size}-{lang}.png"), full_page=False)
        assert orders["图神经网络"] == orders["graph neural network"]
        assert "graph neural network" in page.inner_text(".search-hints")
        # sort by date through the form's own control
        page.select_option("#sort", "date")
        page.click("form.search button[type=submit]")
        page.wait_for_selector("article.card")
        assert "sort=date" in page.url
    finally:
        page.close()


def test_a_query_nothing_matches_says_why_in_chromium(site, browser, shots):
    url, _ = site
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(f"{url}/?lang=zh&q=" + "啊呀呀")
        hint = page.inner_text(".search-hints")
        assert "未能理解：啊呀呀" in hint
        assert page.query_selector("article.card") is None
        page.screenshot(path=str(shots / "search-phone-not-understood.png"))
    finally:
        page.close()
