"""/docs and /redoc work offline under the CSP: Swagger UI and ReDoc come from the fastapi-offline
package through this origin, started by a script file (no inline script); Chromium renders the
operations list with no network beyond the server."""

from __future__ import annotations

import re
import warnings
from html.parser import HTMLParser

import pytest

from browser_support import serving

from academichub.settings import Settings
from academichub.web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CHROMIUM = "/usr/bin/chromium"


class _Assets(HTMLParser):
    """Every URL a page loads (scripts, stylesheets, icons) and the text of inline scripts."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if attrs.get("src"):
                self.urls.append(attrs["src"])
            else:
                self._in_script = True
                self.inline_scripts.append("")
        elif tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])
        elif tag in ("img", "iframe") and attrs.get("src"):
            self.urls.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline_scripts[-1] += data


@pytest.fixture
def docs_client(engine):
    with TestClient(create_app(Settings(load_sample=False), engine=engine)) as client:
        yield client


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_load_only_same_origin_assets_and_no_inline_script(docs_client, path):
    page = docs_client.get(path)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "cdn" not in csp and "https:" not in csp
    assets = _Assets()
    assets.feed(page.text)
    assert assets.inline_scripts == []
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert assets.urls and all(url.startswith("/") and not url.startswith("//") for url in assets.urls)
    expected = {"/docs": "/static/api-docs/swagger-ui-bundle.js", "/redoc": "/static/api-docs/redoc.standalone.js"}[path]
    assert expected in assets.urls and "/static/api-docs.js" in assets.urls
    for url in assets.urls:
        answer = docs_client.get(url)
        assert answer.status_code == 200, url
        assert len(answer.content) > 300, url
    assert docs_client.get("/openapi.json").status_code == 200


# -- in Chromium ----------------------------------------------------------------------------------


@pytest.fixture
def live_server(engine):
    """The app under a real uvicorn server on a free local port, over a temp store."""
    with serving(create_app(Settings(load_sample=False), engine=engine)) as base:
        yield base


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    import os

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _offline_page(browser, base: str):
    """A page that may reach the server and nothing else, and records CSP violations and errors."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    outside: list[str] = []

    def only_local(route):
        if route.request.url.startswith(base) or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return context, page, outside, problems


def test_swagger_ui_renders_the_operations_offline(live_server, browser):
    context, page, outside, problems = _offline_page(browser, live_server)
    page.goto(f"{live_server}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    assert page.evaluate("typeof SwaggerUIBundle") == "function"
    paths = page.eval_on_selector_all(".opblock-summary-path", "nodes => nodes.map(n => n.getAttribute('data-path'))")
    assert {"/api/papers", "/api/papers/{key}", "/api/stats", "/healthz"} <= set(paths)
    assert outside == []
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    context.close()


def test_redoc_renders_the_operations_offline(live_server, browser):
    context, page, outside, problems = _offline_page(browser, live_server)
    page.goto(f"{live_server}/redoc")
    page.locator("h2", has_text="One batch of the feed").wait_for(timeout=20_000)
    assert page.evaluate("typeof Redoc") == "object"
    assert outside == []
    # ReDoc's "API docs by Redocly" footer asks for its logo from a CDN: the CSP blocks that image
    # (the page is offline by design); nothing else may be refused.
    refused = [p for p in problems if ("Content Security Policy" in p or "Refused" in p) and "cdn.redoc.ly/redoc/logo" not in p]
    assert refused == [], problems
    context.close()
