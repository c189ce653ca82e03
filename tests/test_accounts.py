"""Accounts (issue 18): the three attacks of the issue fail; sessions and API tokens that are
forged, expired or revoked open nothing; logins are rate-limited; the single user on a loopback
server needs no login while any other setup needs one on every route (all of `app.routes`, so a
new route cannot slip through); the first account takes over the local user's radars; the
`academichub users` commands work through the real script. Real store (SQLite, and PostgreSQL in
its pass), real HTTP stack (TestClient over the ASGI app)."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from academichub.app import accounts
from academichub.app.hub import Hub
from academichub.settings import Settings
from academichub.store import accounts as account_store
from academichub.store.radars import add_feedback, create_radar, default_user, list_radars, mark_shown, shown_batches
from academichub.web.app import create_app
from academichub.web.identity import PUBLIC_PATHS
from cli_support import academichub_script, script_env

pytestmark = pytest.mark.postgres

REMOTE = ("10.0.0.9", 40000)
LOCAL = ("127.0.0.1", 40000)
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self):
        self.now = datetime(2026, 3, 2, 9, 0, 0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def make_hub(engine, clock, **settings) -> Hub:
    base = dict(load_sample=False, scheduler=False, embed_on_ingest=False)
    return Hub(Settings(**{**base, **settings}), engine=engine, clock=clock)


def client_for(hub, client=LOCAL) -> TestClient:
    return TestClient(create_app(hub=hub), client=client, follow_redirects=False)


def csrf_of(page_text: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page_text).group(1)


def log_in(client: TestClient, email: str, password: str = PASSWORD):
    return client.post("/login", data={"email": email, "password": password, "next": "/radars"})


# ----------------------------------------------------------------------------- the issue's attacks


def test_the_three_attacks_of_the_issue_fail(engine, clock):
    hub = make_hub(engine, clock)
    with hub.writing() as conn:
        radar_id = create_radar(conn, user_id=default_user(conn), name="Qubits", interest="spin qubits")
    client = client_for(hub)
    # (1) DNS rebinding: a foreign Host is refused before any route runs; the radar is still there
    rebound = client.post(f"/radars/{radar_id}/delete", headers={
        "host": "evil.example:8731", "origin": "http://evil.example:8731", "sec-fetch-site": "same-origin"})
    assert rebound.status_code == 400
    assert rebound.json() == {"detail": "host not allowed"}
    assert client.get("/api/radars").json()[0]["name"] == "Qubits"
    # (2) a cross-site state change on the JSON API
    cross = client.post("/api/sources/follow/Nature", headers={"origin": "http://evil.example",
                                                               "sec-fetch-site": "cross-site"})
    assert cross.status_code == 403
    assert client.get("/api/sources").json() == []
    # (3) GETs change nothing: reading a radar's batch records nothing, reading a briefing writes none
    assert client.get("/api/papers", params={"radar": "Qubits"}).status_code == 200
    assert client.get("/api/papers", params={"radar": "Qubits"}).status_code == 200
    with hub.reading() as conn:
        assert shown_batches(conn, radar_id, hub.today()) == {}
    assert client.get("/api/briefing").status_code == 404


def test_a_foreign_host_is_refused_on_every_path(engine, clock):
    client = client_for(make_hub(engine, clock))
    for path in ("/", "/healthz", "/static/app.css", "/login", "/api/stats"):
        assert client.get(path, headers={"host": "rebind.example"}).status_code == 400, path
    assert client.get("/healthz", headers={"host": "localhost:8000"}).status_code == 200
    assert client.get("/healthz", headers={"host": "[::1]:8000"}).status_code == 200
    published = client_for(make_hub(engine, clock, public_url="https://hub.example.org/", allowed_hosts=None))
    assert published.get("/healthz", headers={"host": "hub.example.org"}).status_code == 200
    assert published.get("/healthz", headers={"host": "testserver"}).status_code == 400


# ----------------------------------------------------------------------------- who needs a login


def test_the_single_user_on_a_loopback_server_needs_no_login(engine, clock):
    hub = make_hub(engine, clock)
    client = client_for(hub)
    assert client.get("/").status_code == 200
    created = client.post("/radars", data={"name": "Spin", "interest": ""})
    assert created.status_code == 303
    assert [r["name"] for r in client.get("/api/radars").json()] == ["Spin"]
    # one account: still the single user, whose radars it now holds
    accounts.create_user(hub, "ada@lab.example", PASSWORD)
    assert [r["name"] for r in client.get("/api/radars").json()] == ["Spin"]
    # a remote client of the same server is nobody
    remote = client_for(hub, REMOTE)
    assert remote.get("/api/radars").status_code == 401
    # a second account ends the no-login mode for everyone
    accounts.create_user(hub, "bob@lab.example", PASSWORD)
    assert client.get("/api/radars").status_code == 401
    page = client.get("/radars")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/radars"


def test_a_published_server_needs_a_login_even_for_loopback_clients(engine, clock):
    """Behind a reverse proxy every request arrives from loopback: public_url turns the no-login mode off."""
    hub = make_hub(engine, clock, public_url="https://hub.example.org/", allowed_hosts="testserver,hub.example.org")
    accounts.create_user(hub, "ada@lab.example", PASSWORD)
    assert client_for(hub).get("/api/radars").status_code == 401


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_needs_a_login_on_a_non_loopback_server(engine, clock):
    hub = make_hub(engine, clock, host="0.0.0.0")
    accounts.create_user(hub, "ada@lab.example", PASSWORD)
    app = create_app(hub=hub)
    client = TestClient(app, client=REMOTE, follow_redirects=False)
    # the pages anyone may open: logging in, first run, and the doors a link opens (an invitation,
    # a password reset, the OpenID provider's way back)
    public = {"/login", "/healthz", "/setup", "/login/forgot", "/login/reset", "/invite", "/login/oidc",
              "/login/oidc/callback", "/digest/act", "/digest/unsubscribe"}
    assert public == set(PUBLIC_PATHS)
    # ... and the links that carry their own signed credential: without a good one they give nothing
    assert client.get("/digest/act?t=forged").status_code in (400, 403)
    assert client.post("/digest/act", data={"t": "forged"}).status_code in (400, 403)
    assert client.post("/digest/unsubscribe?t=forged").status_code in (400, 403)
    assert client.get("/feeds/forged/1.atom").status_code in (403, 404)
    assert client.get("/feeds/forged.opml").status_code in (403, 404)
    checked = 0
    for route in app.routes:
        if isinstance(route, Mount):
            continue  # static files: /static and the API docs' assets
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method == "HEAD" or route.path in public or route.path.startswith("/feeds/"):
                continue
            path = _concrete(route.path)
            answer = client.request(method, path)
            checked += 1
            if path.startswith("/api/") or path.startswith("/openapi"):
                assert answer.status_code == 401, (method, path, answer.status_code)
                assert answer.json() == {"detail": "login required"}
            else:
                assert answer.status_code == 303, (method, path, answer.status_code)
                assert answer.headers["location"].startswith("/login?next="), (method, path)
    assert checked > 40
    # the doors that stay open
    assert client.get("/healthz").status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/nowhere").status_code == 303  # even a missing page says nothing without a login
    assert any(isinstance(r, APIRoute) for r in app.routes)


def test_first_run_page_on_a_remote_server_needs_loopback_or_the_setup_token(engine, clock, caplog):
    hub = make_hub(engine, clock, host="0.0.0.0")
    with caplog.at_level("WARNING"):
        app = create_app(hub=hub)
    token = re.search(r"/setup\?token=(\S+) ", caplog.text).group(1)
    remote = TestClient(app, client=REMOTE, follow_redirects=False)
    assert remote.get("/").headers["location"] == "/setup"
    assert remote.get("/setup").status_code == 403
    form = {"email": "ada@lab.example", "password": PASSWORD, "password_again": PASSWORD}
    assert remote.post("/setup", data={**form, "token": "guess"}).status_code == 403
    assert accounts.count_accounts(hub) == 0
    made = remote.post("/setup", data={**form, "token": token})
    assert made.status_code == 303 and accounts.SESSION_COOKIE in made.headers["set-cookie"]
    admin = accounts.find_user(hub, "ada@lab.example")
    assert admin.is_admin
    assert remote.get("/api/radars").status_code == 200  # the new session
    assert remote.post("/setup", data={**form, "email": "eve@lab.example", "token": token}).status_code == 403


# ----------------------------------------------------------------------------- sessions


def test_sessions_forged_expired_revoked_and_password_change(engine, clock):
    hub = make_hub(engine, clock, host="0.0.0.0")
    accounts.create_user(hub, "ada@lab.example", PASSWORD)
    browser = client_for(hub, REMOTE)
    assert log_in(browser, "ada@lab.example", "wrong password").status_code == 401
    signed_in = log_in(browser, "ADA@lab.example")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/radars"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert browser.get("/api/radars").status_code == 200
    # forged
    forged = client_for(hub, REMOTE)
    forged.cookies.set(accounts.SESSION_COOKIE, "x" * 43)
    assert forged.get("/api/radars").status_code == 401
    # expired: two weeks without use
    clock.now += accounts.SESSION_LIFETIME + timedelta(seconds=1)
    assert browser.get("/api/radars").status_code == 401
    # revoked by logout (its CSRF token comes from a page)
    log_in(browser, "ada@lab.example")
    token = browser.cookies.get(accounts.SESSION_COOKIE)
    csrf = csrf_of(browser.get("/account").text)
    assert browser.post("/logout").status_code == 403  # no CSRF token
    assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 303
    stale = client_for(hub, REMOTE)
    stale.cookies.set(accounts.SESSION_COOKIE, token)
    assert stale.get("/api/radars").status_code == 401
    # a password change ends every other session
    other = client_for(hub, REMOTE)
    log_in(other, "ada@lab.example")
    log_in(browser, "ada@lab.example")
    csrf = csrf_of(browser.get("/account").text)
    changed = browser.post("/account/password", data={"current": PASSWORD, "password": "a new passphrase",
                                                      "password_again": "a new passphrase", "csrf_token": csrf})
    assert changed.status_code == 200
    assert browser.get("/api/radars").status_code == 200
    assert other.get("/api/radars").status_code == 401
    assert log_in(other, "ada@lab.example").status_code == 401
    assert log_in(other, "ada@lab.example", "a new passphrase").status_code == 303


def test_https_public_url_makes_the_cookie_secure(engine, clock):
    hub = make_hub(engine, clock, public_url="https://hub.example.org/", allowed_hosts="testserver")
    accounts.create_user(hub, "ada@lab.example", PASSWORD)
    assert "Secure" in log_in(client_for(hub, REMOTE), "ada@lab.example").headers["set-cookie"]


def test_a_session_needs_its_csrf_token_and_our_origin(engine, clock):
    hub = make_hub(engine, clock, host="0.0.0.0")
    accounts.create_user(hub, "ada@lab.example", PASSWORD)
    browser = client_for(hub, REMOTE)
    log_in(browser, "ada@lab.example")
    csrf = csrf_of(browser.get("/radars").text)
    assert f'name="csrf_token" value="{csrf}"' in browser.get("/radars").text  # every form carries it
    assert browser.post("/radars", data={"name": "A"}).status_code == 403
    assert browser.post("/radars", data={"name": "A", "csrf_token": "0" * 64}).status_code == 403
    assert browser.post("/radars", data={"name": "A", "csrf_token": csrf},
                        headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert browser.post("/radars", data={"name": "A", "csrf_token": csrf}).status_code == 303
    assert browser.post("/api/papers", params={"radar": "A"}).status_code == 403
    assert browser.post("/api/papers", params={"radar": "A"}, headers={"x-csrf-token": csrf}).status_code == 200


def test_log_out_everywhere(engine, clock):
    hub = make_hub(engine, clock, host="0.0.0.0")
    accounts.create_user(hub, "ada@lab.example", PASSWORD)
    one, two = client_for(hub, REMOTE), client_for(hub, REMOTE)
    log_in(one, "ada@lab.example")
    log_in(two, "ada@lab.example")
    user = accounts.find_user(hub, "ada@lab.example")
    assert len(accounts.sessions_of(hub, user.id)) == 2
    csrf = csrf_of(one.get("/account").text)
    assert one.post("/account/logout-everywhere", data={"csrf_token": csrf}).status_code == 303
    assert two.get("/api/radars").status_code == 401
    assert one.get("/api/radars").status_code == 401
    assert accounts.sessions_of(hub, user.id) == []


def test_the_account_language_follows_the_user_to_another_browser(engine, clock):
    hub = make_hub(engine, clock, host="0.0.0.0", default_language="zh")
    accounts.create_user(hub, "ada@lab.example", PASSWORD)
    laptop, phone = client_for(hub, REMOTE), client_for(hub, REMOTE)
    log_in(laptop, "ada@lab.example")
    assert '<html lang="zh' in laptop.get("/account").text
    csrf = csrf_of(laptop.get("/account").text)
    assert laptop.post("/account/language", data={"lang": "en", "csrf_token": csrf}).status_code == 303
    log_in(phone, "ada@lab.example")  # no language cookie in this browser
    assert '<html lang="en' in phone.get("/account").text
    assert '<html lang="zh' in phone.get("/account?lang=zh").text  # a link's ?lang= still wins


# ----------------------------------------------------------------------------- API tokens


def test_bearer_tokens_scopes_and_revocation(engine, clock):
    hub = make_hub(engine, clock, host="0.0.0.0")
    user_id = accounts.create_user(hub, "ada@lab.example", PASSWORD)
    _read_id, read = accounts.create_token(hub, user_id, "reader", "read")
    write_id, write = accounts.create_token(hub, user_id, "writer", "write")
    api = client_for(hub, REMOTE)
    assert api.get("/api/radars", headers={"authorization": f"Bearer {read}"}).status_code == 200
    refused = api.post("/api/sources/follow/Nature", headers={"authorization": f"Bearer {read}"})
    assert refused.status_code == 403 and refused.json() == {"detail": "this API token is read-only"}
    # a write token needs no CSRF token (no ambient credential), even "cross-site"
    followed = api.post("/api/sources/follow/Nature", headers={"authorization": f"Bearer {write}",
                                                               "sec-fetch-site": "cross-site"})
    assert followed.status_code == 200, followed.text
    for bad in ("ahk_" + "A" * 43, read[:-2], "not-a-token"):
        assert api.get("/api/radars", headers={"authorization": f"Bearer {bad}"}).status_code == 401
    assert accounts.revoke_token(hub, user_id, write_id)
    assert api.get("/api/radars", headers={"authorization": f"Bearer {write}"}).status_code == 401
    # the store keeps only digests
    with hub.reading() as conn:
        assert account_store.find_token(conn, read) is None
    accounts.disable_user(hub, "ada@lab.example")
    assert api.get("/api/radars", headers={"authorization": f"Bearer {read}"}).status_code == 401


def test_tokens_are_created_on_the_account_page_and_shown_once(engine, clock):
    hub = make_hub(engine, clock, host="0.0.0.0")
    accounts.create_user(hub, "ada@lab.example", PASSWORD)
    browser = client_for(hub, REMOTE)
    log_in(browser, "ada@lab.example")
    csrf = csrf_of(browser.get("/account").text)
    made = browser.post("/account/tokens", data={"name": "laptop", "scope": "write", "csrf_token": csrf})
    secret = re.search(r"(ahk_[A-Za-z0-9_-]{40,})", made.text).group(1)
    assert secret not in browser.get("/account").text
    assert client_for(hub, REMOTE).get("/api/stats", headers={"authorization": f"Bearer {secret}"}).status_code == 200


# ----------------------------------------------------------------------------- rate limits


def test_logins_are_rate_limited_per_account_and_per_address(engine, clock):
    hub = make_hub(engine, clock, host="0.0.0.0")
    accounts.create_user(hub, "ada@lab.example", PASSWORD)
    browser = client_for(hub, REMOTE)
    for _ in range(accounts.LOGIN_FAILURES_PER_ACCOUNT):
        assert log_in(browser, "ada@lab.example", "guess").status_code == 401
    assert log_in(browser, "ada@lab.example").status_code == 429  # even the right password, for now
    clock.now += accounts.LOGIN_WINDOW + timedelta(seconds=1)
    assert log_in(browser, "ada@lab.example").status_code == 303
    # per address: many accounts guessed from one address
    browser = client_for(hub, REMOTE)
    for n in range(accounts.LOGIN_FAILURES_PER_ADDRESS):
        assert log_in(browser, f"user{n}@lab.example", "guess").status_code == 401
    assert log_in(browser, "ada@lab.example").status_code == 429
    assert log_in(client_for(hub, ("10.0.0.10", 1)), "ada@lab.example").status_code == 303
    with hub.reading() as conn:
        actions = [row["action"] for row in account_store.recent_audit(conn, 200)]
    assert actions.count("login_throttled") == 2
    assert actions.count("login") == 2


# ----------------------------------------------------------------------------- per user


def test_the_first_account_takes_over_the_local_radars(engine, clock):
    hub = make_hub(engine, clock)
    with hub.writing() as conn:
        local = default_user(conn)
        radar_id = create_radar(conn, user_id=local, name="Qubits", interest="spin qubits")
        conn.exec_driver_sql("INSERT INTO papers (id, title, abstract, authors_text, versions, provenance, content_hash, "
                             "created_at, modified_at) VALUES (1, 'T', '', '', '[]', '{}', 'h', '2026-01-01', '2026-01-01')")
        add_feedback(conn, radar_id, 1, "like")
        mark_shown(conn, radar_id, hub.today(), [1], 0)
    first = accounts.create_user(hub, "ada@lab.example", PASSWORD)
    second = accounts.create_user(hub, "bob@lab.example", PASSWORD)
    with hub.reading() as conn:
        assert [r.name for r in list_radars(conn, first)] == ["Qubits"]
        assert list_radars(conn, local) == [] and list_radars(conn, second) == []
        assert list_radars(conn, first)[0].feedback == 1
        assert shown_batches(conn, radar_id, hub.today()) == {1: 0}
    assert accounts.get_user(hub, first).is_admin and not accounts.get_user(hub, second).is_admin


def test_each_user_sees_only_their_radars_and_only_admins_change_sources(engine, clock):
    hub = make_hub(engine, clock, host="0.0.0.0")
    accounts.create_user(hub, "ada@lab.example", PASSWORD)
    bob_id = accounts.create_user(hub, "bob@lab.example", PASSWORD)
    ada, bob = client_for(hub, REMOTE), client_for(hub, REMOTE)
    log_in(ada, "ada@lab.example")
    log_in(bob, "bob@lab.example")
    csrf = csrf_of(ada.get("/radars").text)
    ada.post("/radars", data={"name": "Mine", "csrf_token": csrf})
    ada_radar = ada.get("/api/radars").json()[0]
    assert bob.get("/api/radars").json() == []
    assert bob.get(f"/api/radars/{ada_radar['id']}").status_code == 404
    assert bob.get("/api/radars/Mine").status_code == 404
    assert bob.get("/api/papers", params={"radar": str(ada_radar["id"])}).status_code == 404
    # sources are shared: bob (not an admin) cannot follow one, even with his write token
    _id, token = accounts.create_token(hub, bob_id, "bob", "write")
    assert bob.post("/api/sources/follow/Nature", headers={"authorization": f"Bearer {token}"}).status_code == 403
    ada_token = accounts.create_token(hub, accounts.find_user(hub, "ada@lab.example").id, "ada", "write")[1]
    assert ada.post("/api/sources/follow/Nature", headers={"authorization": f"Bearer {ada_token}"}).status_code == 200


def test_invitations_make_an_account_once(engine, clock):
    hub = make_hub(engine, clock)
    admin = accounts.create_user(hub, "ada@lab.example", PASSWORD)
    secret = accounts.create_invitation(hub, "Carl@Lab.example", invited_by=admin)
    assert accounts.invitation_email(hub, secret) == "carl@lab.example"
    carl = accounts.accept_invitation(hub, secret, PASSWORD)
    assert accounts.get_user(hub, carl).email == "carl@lab.example"
    with pytest.raises(accounts.AccountError):
        accounts.accept_invitation(hub, secret, PASSWORD)
    late = accounts.create_invitation(hub, "dora@lab.example", invited_by=admin)
    clock.now += accounts.INVITATION_LIFETIME + timedelta(seconds=1)
    assert accounts.invitation_email(hub, late) is None
    with pytest.raises(accounts.AccountError):
        accounts.accept_invitation(hub, late, PASSWORD)


# ----------------------------------------------------------------------------- the CLI


def test_users_commands_through_the_real_script(database_url, tmp_path):
    env = script_env(ACADEMICHUB_DATABASE_URL=database_url, ACADEMICHUB_DATA_DIR=str(tmp_path / "data"))

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([academichub_script(), *args], input=stdin, capture_output=True, text=True, env=env,
                              timeout=120)

    made = run("radar", "create", "Old", "--keyword", "qubit")
    assert made.returncode == 0, made.stdout + made.stderr
    created = run("users", "create", "Ada@Lab.example", "--password-stdin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stdout + created.stderr
    assert created.stdout.startswith("created administrator ada@lab.example (id ")
    short = run("users", "create", "bob@lab.example", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and short.stderr == "error: a password needs at least 8 characters\n"
    assert run("users", "create", "bob@lab.example", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    listed = run("users", "list", "--format", "json")
    assert [(u["email"], u["is_admin"]) for u in __import__("json").loads(listed.stdout)] == [
        ("ada@lab.example", True), ("bob@lab.example", False)]
    assert "Old" in run("--user", "ada@lab.example", "radar", "list").stdout
    assert "no radars yet" in run("--user", "bob@lab.example", "radar", "list").stdout
    assert run("users", "disable", "bob@lab.example").stdout.strip() == "disabled bob@lab.example"
    assert run("users", "reset-password", "ada@lab.example", "--password-stdin", stdin="another passphrase\n").returncode == 0
    missing = run("users", "disable", "nobody@lab.example")
    assert missing.returncode == 1 and missing.stderr == "error: no account nobody@lab.example\n"
    from academichub.store.database import open_store

    engine = open_store(database_url)
    try:
        hub = Hub(Settings(load_sample=False), engine=engine)
        assert accounts.find_user(hub, "bob@lab.example").disabled_at is not None
        assert accounts.authenticate(hub, "ada@lab.example", "another passphrase").email == "ada@lab.example"
    finally:
        engine.dispose()
