"""Accounts in Debian's Chromium over the served bundled day (issue 18): two users in two browser
contexts create radars, like papers and read briefings, and neither sees the other's; a logged-out
context gets the login page on every page route of the app (the JSON API answers 401); a page on
another origin (a second local server: an auto-submitting form and fetch() calls with the
victim's cookies) changes nothing.

Skipped when /usr/bin/chromium is missing, except under CI=true (tests/browser_support.py)."""

from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from browser_support import browser, new_page, serving, site  # noqa: F401 - fixtures

from academichub.app import accounts

ALICE, BOB, PASSWORD = "alice@lab.example", "bob@lab.example", "correct-horse-1"
ALICE_RADAR, BOB_RADAR = "alice spin qubits", "bob protein folding"
EXAMPLE_PARAMS = {"name": ALICE_RADAR, "key": "2411.17758", "venue": "Nature", "action": "disable"}


@pytest.fixture(scope="module")
def people(site):
    hub = site.hub
    accounts.create_user(hub, ALICE, PASSWORD, is_admin=True)
    accounts.create_user(hub, BOB, PASSWORD)
    return site


def signed_in(browser, people, email: str):
    page = new_page(browser, "desktop", lang="en")
    page.set_default_timeout(30_000)
    page.goto(people.url("/radars"))
    assert page.url.startswith(people.url("/login?next=/radars"))
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(people.url("/radars"))
    return page


def create_radar(page, people, name: str, interest: str) -> None:
    page.goto(people.url("/radars"))
    page.fill("#radar-name", name)
    page.fill("#radar-interest", interest)
    page.locator("form[action='/radars'] button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("body").inner_text().count(name) >= 1


def like_first_card(page, people, radar: str) -> str:  # the liked paper's id
    page.goto(people.url("/?radar=" + radar.replace(" ", "+")))
    first = page.eval_on_selector_all("article.card", "cards => cards.map(c => c.id)")[0]
    with page.expect_response(lambda r: r.url.endswith("/feedback") and r.request.method == "POST") as posted:
        page.locator(f"#{first} button.fb-like").click()
    assert posted.value.status == 303  # accepted (a refused one is 403), then the page is fetched again
    return first.removeprefix("paper-")


def test_two_users_see_only_their_own_radars_likes_and_briefings(browser, people):
    alice = signed_in(browser, people, ALICE)
    bob = signed_in(browser, people, BOB)
    try:
        create_radar(alice, people, ALICE_RADAR, "spin qubits in semiconductor quantum dots")
        create_radar(bob, people, BOB_RADAR, "protein structure prediction and folding")
        like_first_card(alice, people, ALICE_RADAR)
        like_first_card(bob, people, BOB_RADAR)

        alice.goto(people.url("/radars"))
        assert ALICE_RADAR in alice.content() and BOB_RADAR not in alice.content()
        bob.goto(people.url("/radars"))
        assert BOB_RADAR in bob.content() and ALICE_RADAR not in bob.content()
        # the other's radar is not there for them, by page or by API (same cookies)
        assert bob.goto(people.url("/radars/" + ALICE_RADAR)).status == 404
        assert bob.request.get(people.url(f"/api/radars/{ALICE_RADAR}")).status == 404
        assert alice.request.get(people.url(f"/api/radars/{BOB_RADAR}")).status == 404
        # likes are the radar owner's: Alice's radar holds her like, Bob's API sees no such radar
        assert alice.request.get(people.url(f"/api/radars/{ALICE_RADAR}")).json()["feedback"]["like"] == 1
        assert bob.request.get(people.url(f"/api/radars/{BOB_RADAR}")).json()["feedback"]["like"] == 1
        assert [r["name"] for r in bob.request.get(people.url("/api/radars")).json()] == [BOB_RADAR]
        # briefings: each writes and reads their own radar's; the other's is not there for them
        for page, radar, other in ((alice, ALICE_RADAR, BOB_RADAR), (bob, BOB_RADAR, ALICE_RADAR)):
            read_briefing(page, people, radar)
            assert page.locator("article.briefing, section.briefing, main").first.inner_text().count(radar) >= 1
            assert other not in page.content()
        answer = bob.goto(people.url("/briefing?radar=" + ALICE_RADAR.replace(" ", "+")))
        assert answer.status == 404
    finally:
        alice.context.close()
        bob.context.close()


def read_briefing(page, people, radar: str) -> None:
    """The radar's briefing page; "Write the briefing" first when none is stored yet."""
    page.goto(people.url("/briefing?radar=" + radar.replace(" ", "+")))
    write = page.locator("form[method=post] button.btn-primary", has_text="Write the briefing")
    if write.count():
        write.click()
        page.wait_for_load_state()
    assert page.url.startswith(people.url("/briefing")), page.url


def page_routes(app) -> list[str]:
    """Every GET route's path with example parameters (the app's own table, so new pages are walked too)."""
    found = []
    for route in app.routes:
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None) or set()
        if "GET" not in methods or path.startswith(("/static", "/docs-assets")):
            continue
        found.append(re.sub(r"\{(\w+)(:\w+)?\}", lambda m: EXAMPLE_PARAMS.get(m.group(1), "x"), path))
    return sorted(set(found))


PUBLIC = {"/login", "/setup", "/healthz", "/login/forgot", "/login/reset", "/invite", "/login/oidc",
          "/login/oidc/callback", "/openapi.json",
          "/digest/act", "/digest/unsubscribe"}  # a digest's signed links: refused without a good token


def test_a_logged_out_browser_gets_the_login_page_on_every_route(browser, people):
    routes = page_routes(people.app)
    assert {"/", "/radars", "/briefing", "/sources", "/admin", "/account", "/api/radars"} <= set(routes)
    page = new_page(browser, "desktop", lang="en")
    try:
        walked = 0
        for path in routes:
            if path in PUBLIC or path in ("/docs", "/redoc") or path.startswith("/feeds/"):
                continue  # a feed URL carries its own signed credential (tests/test_radar_atom.py)
            response = page.goto(people.url(path))
            if path.startswith("/api/"):
                assert response.status == 401, path
                continue
            assert urlsplit_path(page.url) == "/login", (path, page.url)
            assert page.locator("#login-password").is_visible(), path
            walked += 1
        assert walked >= 10
    finally:
        page.context.close()


def urlsplit_path(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path


ATTACK = """<!doctype html><html><body>
<form id="f" method="post" action="{base}/radars"><input name="name" value="pwned by form"><input name="interest" value="x"></form>
<script>
fetch("{base}/api/radars/{radar}/feedback", {{method: "POST", credentials: "include", mode: "no-cors",
  headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{paper: "2411.17700", action: "like"}})}})
  .catch(() => null)
  .then(() => fetch("{base}/radars", {{method: "POST", credentials: "include", mode: "no-cors",
    headers: {{"Content-Type": "application/x-www-form-urlencoded"}}, body: "name=pwned+by+fetch&interest=x"}}))
  .catch(() => null)
  .then(() => fetch("{base}/admin/users/disable", {{method: "POST", credentials: "include", mode: "no-cors",
    headers: {{"Content-Type": "application/x-www-form-urlencoded"}}, body: "email={bob}"}}))
  .catch(() => null)
  .then(() => {{ document.title = "fetched"; document.getElementById("f").submit(); }});
</script></body></html>"""


@pytest.mark.parametrize("where", ["same-site", "cross-site"])
def test_a_page_on_another_origin_changes_nothing(browser, people, where):
    """same-site: another port of 127.0.0.1 (the session cookie goes along; the gate refuses the
    request by its Sec-Fetch-Site); cross-site: localhost (SameSite=Lax keeps the cookie home)."""
    alice = signed_in(browser, people, ALICE)
    try:
        if ALICE_RADAR not in alice.content():
            create_radar(alice, people, ALICE_RADAR, "spin qubits in semiconductor quantum dots")
        before = alice.request.get(people.url(f"/api/radars/{ALICE_RADAR}")).json()
        radars_before = alice.request.get(people.url("/api/radars")).json()
        html = ATTACK.format(base=people.base, radar=ALICE_RADAR.replace(" ", "%20"), bob=BOB)
        attacker = Starlette(routes=[Route("/", lambda request: HTMLResponse(html))])
        posts = []
        alice.on("response", lambda r: posts.append((r.url.split("/", 3)[3], r.status)) if r.request.method == "POST" else None)
        with serving(attacker) as evil:
            if where == "cross-site":
                evil = evil.replace("127.0.0.1", "localhost")
            with alice.expect_navigation(url=lambda url: url.startswith(people.base)):
                alice.goto(evil + "/")
            alice.wait_for_load_state()
        if where == "same-site":  # every attempt reached the hub with Alice's cookie and was refused
            assert "cross-site request refused" in alice.content()
            assert posts == [("api/radars/alice%20spin%20qubits/feedback", 403), ("radars", 403),
                             ("admin/users/disable", 403), ("radars", 403)]
        else:  # no cookie went along: anonymous, sent to the login page
            assert urlsplit_path(alice.url) == "/login"
            assert posts == [("api/radars/alice%20spin%20qubits/feedback", 401), ("radars", 303),
                             ("admin/users/disable", 303), ("radars", 303)]
        assert alice.request.get(people.url("/api/radars")).json() == radars_before
        assert alice.request.get(people.url(f"/api/radars/{ALICE_RADAR}")).json() == before
        assert accounts.find_user(people.hub, BOB).disabled_at is None
        alice.goto(people.url("/radars"))
        assert "pwned" not in alice.content()
    finally:
        alice.context.close()
