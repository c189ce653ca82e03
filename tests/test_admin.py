"""The admin page (/admin): administrators only; invite (the link shown once, accepted at /invite),
disable/enable, make/unmake administrator, a password-reset link; settings shown read-only with
secrets masked; every action in the audit log (who, what, from where), newest first. Password
reset: a signed, expiring, single-use link that sets a new password and logs every session out.
On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from urllib.parse import urlsplit

import pytest
from accounts_support import ADMIN, ADMIN_PASSWORD, USER, USER_PASSWORD, Browser, make_app

from academichub.app import accounts

pytestmark = pytest.mark.postgres
_LINK = re.compile(r'<code class="token-secret">([^<]+)</code>')


def shown_link(html: str) -> str:
    found = _LINK.search(html)
    assert found, "no link shown"
    return unescape(found.group(1))


def audit_rows(html: str) -> list[list[str]]:
    table = html.split('class="sources-table audit-log"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", table, re.S)
    return [[unescape(cell) for cell in row.split("</td><td>")][1:] for row in rows]  # who, what, target, from


@pytest.fixture
def app(database_url, tmp_path):
    return make_app(database_url, tmp_path, oidc_issuer="https://id.example.org", oidc_client_id="hub",
                    oidc_client_secret="oidc-client-secret-value")


def test_only_administrators_see_the_admin_page(app):
    anonymous = Browser(app)
    response = anonymous.get("/admin")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/admin"
    user = Browser(app)
    user.login(USER, USER_PASSWORD)
    assert user.get("/admin").status_code == 403
    assert user.post("/admin/users/make-admin", {"email": USER}).status_code == 403
    assert accounts.find_user(app.state.hub, USER).is_admin is False
    assert 'href="/admin"' not in user.get("/account").text
    admin = Browser(app)
    admin.login(ADMIN, ADMIN_PASSWORD)
    page = admin.get("/admin")
    assert page.status_code == 200
    assert f'data-user="{ADMIN}"' in page.text and f'data-user="{USER}"' in page.text
    assert 'href="/sources"' in page.text and 'href="/admin"' in page.text
    # settings read-only, secrets masked: their values never reach the page
    assert "oidc-client-secret-value" not in page.text and "test-secret-key-for-signing" not in page.text
    assert re.search(r"<code>oidc_client_secret</code></dt><dd>\*{8}</dd>", page.text)
    assert re.search(r"<code>secret_key</code></dt><dd>\*{8}</dd>", page.text)
    assert re.search(r"<code>oidc_issuer</code></dt><dd>https://id.example.org</dd>", page.text)


def test_admin_actions_are_audited_newest_first(app):
    admin = Browser(app, client=("127.0.0.7", 41000))
    admin.login(ADMIN, ADMIN_PASSWORD)
    user = Browser(app)
    user.login(USER, USER_PASSWORD)
    assert user.get("/account").status_code == 200

    assert admin.post("/admin/users/disable", {"email": USER}).status_code == 303
    assert user.get("/account").status_code == 303  # the session died with the account
    assert Browser(app).client.post("/login", data={"email": USER, "password": USER_PASSWORD}).status_code == 401
    assert admin.post("/admin/users/enable", {"email": USER}).status_code == 303
    user.login(USER, USER_PASSWORD)
    assert admin.post("/admin/users/make-admin", {"email": USER}).status_code == 303
    assert user.get("/admin").status_code == 200
    assert admin.post("/admin/users/unmake-admin", {"email": USER}).status_code == 303
    assert user.get("/admin").status_code == 403
    # refusals: one's own account, the last administrator
    refused = admin.post("/admin/users/disable", {"email": ADMIN})
    assert refused.status_code == 400 and "you cannot disable your own account" in refused.text
    refused = admin.post("/admin/users/unmake-admin", {"email": ADMIN})
    assert refused.status_code == 400 and "the last administrator cannot be unmade" in refused.text
    assert accounts.find_user(app.state.hub, ADMIN).is_admin
    # a form without the session's CSRF token changes nothing
    no_token = admin.client.post("/admin/users/disable", data={"email": USER})
    assert no_token.status_code == 403 and accounts.find_user(app.state.hub, USER).disabled_at is None

    rows = audit_rows(admin.get("/admin").text)
    admin_rows = [row for row in rows if row[1] in ("user_disabled", "user_enabled", "admin_granted", "admin_revoked")]
    assert admin_rows == [
        [ADMIN, "admin_revoked", USER, "127.0.0.7"],
        [ADMIN, "admin_granted", USER, "127.0.0.7"],
        [ADMIN, "user_enabled", USER, "127.0.0.7"],
        [ADMIN, "user_disabled", USER, "127.0.0.7"],
    ]
    assert rows[0][:3] == [ADMIN, "admin_revoked", USER]  # the newest first


def test_an_invitation_link_is_shown_once_and_opens_one_account(app):
    admin = Browser(app)
    admin.login(ADMIN, ADMIN_PASSWORD)
    page = admin.post("/admin/invite", {"email": "Carol@Lab.example"})
    assert page.status_code == 200
    link = shown_link(page.text)
    assert link.startswith("http://testserver/invite?token=")
    assert "token-secret" not in admin.get("/admin").text  # shown once
    path = link.removeprefix("http://testserver")
    guest = Browser(app)
    form = guest.get(path)
    assert form.status_code == 200 and "carol@lab.example" in form.text
    token = dict(p.split("=", 1) for p in urlsplit(path).query.split("&"))["token"]
    different = guest.client.post("/invite", data={"token": token, "password": "carol-pass-1", "password_again": "x"})
    assert different.status_code == 400 and accounts.find_user(app.state.hub, "carol@lab.example") is None
    accepted = guest.client.post("/invite", data={"token": token, "password": "carol-pass-1",
                                                  "password_again": "carol-pass-1"})
    assert accepted.status_code == 303 and accepted.headers["location"] == "/"
    assert guest.get("/account").status_code == 200  # signed in
    carol = accounts.find_user(app.state.hub, "carol@lab.example")
    assert carol is not None and not carol.is_admin
    again = Browser(app).client.post("/invite", data={"token": token, "password": "other-pass-1",
                                                      "password_again": "other-pass-1"})
    assert again.status_code == 400 and "this invitation is not valid" in again.text
    assert Browser(app).get(path).status_code == 404
    rows = audit_rows(admin.get("/admin").text)
    assert [ADMIN, "user_invited", "carol@lab.example", "127.0.0.1"] in rows
    assert [ADMIN, "user_created", "carol@lab.example", "127.0.0.1"] in rows  # created on the inviter's behalf


def test_a_reset_link_sets_a_new_password_once_and_logs_every_session_out(app):
    admin = Browser(app)
    admin.login(ADMIN, ADMIN_PASSWORD)
    user, phone = Browser(app), Browser(app)
    user.login(USER, USER_PASSWORD)
    phone.login(USER, USER_PASSWORD)
    link = shown_link(admin.post("/admin/users/reset-link", {"email": USER}).text)
    assert link.startswith("http://testserver/login/reset?token=")
    path = link.removeprefix("http://testserver")
    token = path.split("token=", 1)[1]
    stranger = Browser(app)
    form = stranger.get(path)
    assert form.status_code == 200 and USER in form.text
    altered = stranger.get(path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB"))
    assert altered.status_code == 400 and "this reset link is not valid" in altered.text
    done = stranger.client.post("/login/reset", data={"token": token, "password": "bob-new-pass-2",
                                                      "password_again": "bob-new-pass-2"})
    assert done.status_code == 303 and done.headers["location"] == "/login?reset=1"
    assert "Password set; log in with the new one." in stranger.get("/login?reset=1").text
    assert user.get("/account").status_code == 303 and phone.get("/account").status_code == 303  # all sessions out
    assert Browser(app).client.post("/login", data={"email": USER, "password": USER_PASSWORD}).status_code == 401
    Browser(app).login(USER, "bob-new-pass-2")
    # single use: the same link no longer works, nor sets a password
    again = stranger.client.post("/login/reset", data={"token": token, "password": "evil-pass-3",
                                                       "password_again": "evil-pass-3"})
    assert again.status_code == 400 and "this reset link is not valid" in again.text
    Browser(app).login(USER, "bob-new-pass-2")
    # expiring: a fresh link an hour and a minute later is refused
    fresh = shown_link(admin.post("/admin/users/reset-link", {"email": USER}).text).removeprefix("http://testserver")
    hub = app.state.hub
    real = hub.clock
    hub.clock = lambda: real() + timedelta(hours=1, minutes=1)
    try:
        assert stranger.get(fresh).status_code == 400
    finally:
        hub.clock = real
    assert stranger.get(fresh).status_code == 200
    actions = [row[1] for row in audit_rows(admin.get("/admin").text)]
    assert actions.count("password_reset_link") == 2 and "password_changed" in actions


def test_forgot_password_says_whom_to_ask(app):
    page = Browser(app).get("/login")
    assert 'href="/login/forgot"' in page.text
    forgot = Browser(app).get("/login/forgot")
    assert forgot.status_code == 200
    assert "academichub users reset-password EMAIL" in forgot.text
