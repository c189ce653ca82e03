"""The briefing's links in a real browser (Debian's Chromium through Playwright, 1366x900), over a
real uvicorn server on a free port and a store holding the bundled day: a radar feed leads to
that radar's briefing, and every citation a reader can click on /briefing, /briefing?radar=, /
and /?radar= lands on an element of the page or on a paper page that answers 200."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser_support import serving

from academichub.app.hub import Hub
from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import Settings
from academichub.store.radars import add_rule, create_radar, default_user
from academichub.web.app import create_app

sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed")
RADAR = "spin qubits"


@pytest.fixture
def site(engine):
    """The base URL of a live server over the bundled day with one radar."""

    assert load_sample_if_empty(engine).added == 1504
    with engine.begin() as conn:
        radar_id = create_radar(conn, user_id=default_user(conn), name=RADAR,
                                interest="spin qubits in semiconductor quantum dots")
        add_rule(conn, radar_id, "keyword", "qubit")
    settings = Settings(load_sample=False, default_language="en", batch_size=10)
    app = create_app(settings, hub=Hub(settings, engine=engine))
    with serving(app) as base:
        yield base


@pytest.fixture
def page(site):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def citations(page) -> list[str]:
    return page.eval_on_selector_all("a.cite", "links => links.map(a => a.getAttribute('href'))")


def assert_citations_land(page, site: str) -> int:
    """Every citation's target: an element of this page, or a paper page answering 200."""
    hrefs = citations(page)
    for href in hrefs:
        if href.startswith("#"):
            assert page.evaluate("id => document.getElementById(id) !== null", href[1:]), href
        else:
            assert href.startswith("/papers/"), href
            assert page.request.get(site + href).status == 200, href
    return len(hrefs)


def test_a_reader_follows_the_briefing_links(site, page):
    page.goto(f"{site}/?radar=spin%20qubits&lang=en")
    page.locator("#briefing-panel > summary").click()  # the panel is folded until the reader opens it
    page.get_by_role("link", name="Write the briefing").click()
    page.wait_for_load_state()
    assert page.url == f"{site}/briefing?date=2024-11-28&radar=spin+qubits"
    assert page.locator(".briefing-radar").count() == 0  # reading the page writes nothing (a GET)
    page.get_by_role("button", name="Write the briefing").click()  # a POST, then back to the page
    page.wait_for_load_state()
    assert page.url == f"{site}/briefing?date=2024-11-28&radar=spin+qubits"
    assert page.locator(".briefing-radar").inner_text() == RADAR
    assert page.locator(".briefing-period").inner_text() == "Day Nov 28, 2024"
    assert assert_citations_land(page, site) > 5
    first = page.locator("a.cite").first
    target = first.get_attribute("href")
    first.click()
    assert page.url.endswith(target)
    assert page.locator(target).is_visible()  # the cited card, scrolled to

    page.goto(f"{site}/?radar=spin%20qubits&lang=en")  # the radar feed's panel: now its briefing
    assert page.locator("#briefing-panel-title").text_content() == "Briefing of radar “spin qubits”, Nov 28, 2024"
    assert page.get_by_role("link", name="Read the briefing").get_attribute("href") == (
        "/briefing?date=2024-11-28&radar=spin+qubits")
    assert assert_citations_land(page, site) > 5

    page.goto(f"{site}/briefing?lang=en")
    page.get_by_role("button", name="Write the briefing").click()
    page.wait_for_load_state()
    assert page.locator(".briefing-radar").inner_text() == "All papers"
    assert assert_citations_land(page, site) > 20
    page.goto(f"{site}/?lang=en")
    assert assert_citations_land(page, site) > 5
