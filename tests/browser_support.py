"""Browser tests' shared fixtures: a real server, Debian's Chromium through Playwright, screenshots
and axe-core. Import the fixtures into a test module (`from browser_support import ...`).

- `site`: `create_app` served by uvicorn in a thread on a free port, over the module's store
  (SQLite, or PostgreSQL when ACADEMICHUB_TEST_DATABASE_URL is set, as tests/conftest.py does)
  with the bundled day loaded by the app's own start-up; scheduler and embedding off.
- `browser`: Chromium at /usr/bin/chromium (never a downloaded one). Without it the browser
  tests are skipped, with the reason, except under CI=true, where they fail.
- `VIEWPORTS` (desktop 1366×900, phone 390×844) and `new_page(browser, viewport)`.
- `screenshot(page, name, viewport)`: artifacts/screenshots/<name>-<viewport>.png, the folder the
  README names as CI's artefacts (gitignored).
- `assert_axe_clean(page, name)`: axe-core (axe-playwright-python) finds no serious or critical
  violation, else the test fails listing each rule and where."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "artifacts" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
SERIOUS = ("serious", "critical")


def require_chromium() -> None:
    """Skip (fail under CI=true) when Debian's Chromium or the Playwright package is missing."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (Debian: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
        import axe_playwright_python  # noqa: F401
    except ImportError:
        missing.append("the playwright and axe-playwright-python packages (pip install -e '.[test]')")
    if not missing:
        return
    reason = "browser tests need " + " and ".join(missing)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + "; CI=true, so they must run", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _clean_environment():
    """A developer's ACADEMICHUB_* variables must not reach the module's settings (conftest's
    autouse fixture cleans them only per test, after module fixtures are built)."""
    kept = {k: v for k, v in os.environ.items()
            if k.startswith("ACADEMICHUB_") and k not in ("ACADEMICHUB_TEST_DATABASE_URL", "ACADEMICHUB_SHARED_DATA")}
    for name in kept:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(kept)


@dataclass
class Site:
    """The running server: `url(path)` and the app's hub (for test set-up through the store)."""

    base: str
    app: object

    @property
    def hub(self):
        return self.app.state.hub

    @property
    def engine(self):
        return self.app.state.hub.engine

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def site(module_database_url, tmp_path_factory):
    """The app over a real store with the bundled day, served over HTTP for the module's tests."""
    require_chromium()
    import uvicorn

    from academichub.settings import Settings
    from academichub.web.app import create_app

    with _clean_environment():
        settings = Settings(
            database_url=module_database_url,
            data_dir=tmp_path_factory.mktemp("browser-data"),
            load_sample=True,
            scheduler=False,
            embed_on_ingest=False,
            default_language="zh",
        )
    app = create_app(settings)
    with serving(app, start_timeout=120) as base:  # the start-up loads the sample day (1504 papers)
        yield Site(base=base, app=app)


@contextmanager
def serving(app, *, start_timeout: float = 30):
    """`app` under a real uvicorn server (its lifespan on) on a free local port; yields its base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="browser-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive():
            pytest.fail("the test server did not start (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail(f"the test server did not start within {start_timeout:.0f} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless (--no-sandbox: CI runs as root)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(browser, viewport: str, *, width: int | None = None, lang: str = "zh"):
    """A fresh context (no cookies, no storage) and page at one of VIEWPORTS, optionally narrower.
    The caller closes `page.context`."""
    size = dict(VIEWPORTS[viewport])
    if width is not None:
        size["width"] = width
    context = browser.new_context(
        viewport=size,
        device_scale_factor=1,
        locale="zh-CN" if lang == "zh" else "en-US",
        is_mobile=viewport == "phone",
        has_touch=viewport == "phone",
    )
    return context.new_page()


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request) -> str:
    """Each browser test that takes this runs at the desktop and the phone size."""
    return request.param


@pytest.fixture
def page(browser, viewport):
    page = new_page(browser, viewport)
    page.set_default_timeout(30_000)
    yield page
    page.context.close()


def screenshot(page, name: str, viewport: str) -> Path:
    """The page as shown (its first screen and everything below) under artifacts/screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}-{viewport}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page)
    return [v for v in result.response["violations"] if v.get("impact") in SERIOUS]


def assert_axe_clean(page, name: str) -> None:
    found = axe_violations(page)
    if found:
        lines = []
        for v in found:
            targets = [", ".join(node["target"]) if isinstance(node["target"], list) else str(node["target"])
                       for node in v["nodes"][:5]]
            lines.append(f"{v['impact']} {v['id']} ({v['help']}): {len(v['nodes'])} nodes, e.g. {targets}")
        pytest.fail(f"axe-core on {name}:\n  " + "\n  ".join(lines), pytrace=False)


def first_card_top(page) -> float:
    """The top of the first paper card, in CSS pixels from the top of the page."""
    return page.evaluate(
        "() => { const c = document.querySelector('article.card');"
        " return c ? c.getBoundingClientRect().top + window.scrollY : null; }"
    )


def overflow(page, width: int | None = None) -> dict:
    """How wide the document is against the viewport (or `width`: a phone's layout viewport grows
    to fit what overflows), and the elements past that edge."""
    return page.evaluate(
        """(given) => {
          const width = given || window.innerWidth;
          const wide = [];
          for (const el of document.querySelectorAll('body *')) {
            const r = el.getBoundingClientRect();
            if (r.right > width + 0.5 && r.width > 0) {
              wide.push((el.tagName + '.' + (el.className || '')).slice(0, 60) + ' ' + Math.round(r.right));
            }
          }
          return {scroll: document.documentElement.scrollWidth, inner: width, wide: wide.slice(0, 8)};
        }""",
        width,
    )


__all__ = [
    "CHROMIUM", "SCREENSHOTS", "VIEWPORTS", "Site", "assert_axe_clean", "axe_violations", "browser",
    "first_card_top", "new_page", "overflow", "page", "require_chromium", "screenshot", "serving", "site",
    "viewport",
]
