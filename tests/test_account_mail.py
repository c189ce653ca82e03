"""Account links by e-mail (smtp_host set), with a real SMTP server (aiosmtpd): /login/forgot
mails the signed, single-use reset link to an active account's address and answers the same page
whatever the address (no mail for an unknown, disabled or throttled one); an invitation made on
/admin is also mailed, and its link opens the account. Without smtp_host the page says whom to ask.
On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from accounts_support import ADMIN, ADMIN_PASSWORD, USER, USER_PASSWORD, Browser, make_app
from mail_support import mail  # noqa: F401 - the fixture: a real SMTP server
from test_admin import audit_rows, shown_link

from academichub.app import account_mail, accounts, admin

pytestmark = pytest.mark.postgres
PUBLIC = "http://hub.example.org"  # http: an https one would make the session cookies Secure
ASKED = "If an account has this address, a password reset link is on its way to it"


@pytest.fixture
def app(database_url, tmp_path, mail):
    return make_app(database_url, tmp_path, smtp_host="127.0.0.1", smtp_port=mail.port, smtp_security="none",
                    smtp_from="Radar <radar@lab.example>", public_url=PUBLIC + "/",
                    allowed_hosts="testserver,127.0.0.1")


def link_in(message, path: str) -> str:
    """The one link to `path` in a mail's plain text, as a local path (the test client's)."""
    body = message.get_body(("plain",)).get_content()
    found = re.findall(re.escape(PUBLIC + path) + r"\?token=\S+", body)
    assert len(found) == 1, body
    return found[0].removeprefix(PUBLIC)


def forgot(app, email: str, *, client=("127.0.0.1", 50000), **kwargs):
    response = Browser(app, client=client).client.post("/login/forgot", data={"email": email}, **kwargs)
    assert response.status_code == 200
    return response


def test_a_mailed_reset_link_sets_the_password_once_and_logs_every_session_out(app, mail):
    user, phone = Browser(app), Browser(app)
    user.login(USER, USER_PASSWORD)
    phone.login(USER, USER_PASSWORD)
    form = Browser(app).get("/login/forgot")
    assert 'action="/login/forgot"' in form.text and 'name="email"' in form.text
    assert "academichub users reset-password" not in form.text

    page = forgot(app, "  Bob@Lab.example ")
    assert ASKED in page.text
    mail.wait_for(1)
    assert len(mail.messages) == 1
    message = mail.messages[0]
    assert mail.envelopes[0] == ("radar@lab.example", [USER])
    assert message["To"] == USER and message["Subject"] == "AcademicHub: reset your password"
    assert message["From"] == "Radar <radar@lab.example>"
    path = link_in(message, "/login/reset")

    stranger = Browser(app)
    assert stranger.get(path).status_code == 200
    token = unquote(path.split("token=", 1)[1])
    done = stranger.client.post("/login/reset", data={"token": token, "password": "bob-mailed-pass",
                                                      "password_again": "bob-mailed-pass"})
    assert done.status_code == 303 and done.headers["location"] == "/login?reset=1"
    assert user.get("/account").status_code == 303 and phone.get("/account").status_code == 303  # sessions revoked
    assert Browser(app).client.post("/login", data={"email": USER, "password": USER_PASSWORD}).status_code == 401
    Browser(app).login(USER, "bob-mailed-pass")
    again = stranger.client.post("/login/reset", data={"token": token, "password": "evil-pass-3",
                                                       "password_again": "evil-pass-3"})
    assert again.status_code == 400 and "this reset link is not valid" in again.text
    assert stranger.get(path).status_code == 400
    Browser(app).login(USER, "bob-mailed-pass")

    admin = Browser(app)
    admin.login(ADMIN, ADMIN_PASSWORD)
    rows = audit_rows(admin.get("/admin").text)
    assert ["-", "password_reset_requested", USER, "127.0.0.1"] in rows
    assert [USER, "password_changed", USER, "127.0.0.1"] in rows


def test_an_unknown_or_disabled_address_gets_the_same_page_and_no_mail(app, mail):
    known = forgot(app, USER)
    mail.wait_for(1)
    assert len(mail.messages) == 1
    unknown = forgot(app, "nobody@lab.example")
    assert unknown.text == known.text  # the same answer, byte for byte
    accounts.disable_user(app.state.hub, ADMIN)
    disabled = forgot(app, ADMIN)
    assert disabled.text == known.text
    # a later known request is mailed: had the other two sent anything, it would have come first
    accounts.enable_user(app.state.hub, ADMIN)
    forgot(app, ADMIN)
    mail.wait_for(2)
    assert [envelope[1] for envelope in mail.envelopes] == [[USER], [ADMIN]]


def test_reset_mails_are_rate_limited_per_address_and_per_client(app, mail):
    hub = app.state.hub
    for _ in range(account_mail.RESETS_PER_EMAIL + 1):
        assert ASKED in forgot(app, USER).text
    mail.wait_for(account_mail.RESETS_PER_EMAIL + 1, timeout=3)
    assert len(mail.messages) == account_mail.RESETS_PER_EMAIL  # the last one throttled, silently
    # another client asking for many addresses is stopped too, whatever they are
    crawler = ("127.0.0.9", 40000)
    for n in range(account_mail.RESETS_PER_ADDRESS):
        forgot(app, f"guess{n}@lab.example", client=crawler)
    forgot(app, ADMIN, client=crawler)
    forgot(app, ADMIN)  # from elsewhere it is mailed
    mail.wait_for(account_mail.RESETS_PER_EMAIL + 1)
    assert [envelope[1] for envelope in mail.envelopes] == [[USER]] * account_mail.RESETS_PER_EMAIL + [[ADMIN]]
    # after the window the address is served again
    real = hub.clock
    hub.clock = lambda: real() + account_mail.RESET_WINDOW + timedelta(minutes=1)
    try:
        forgot(app, USER)
    finally:
        hub.clock = real
    mail.wait_for(account_mail.RESETS_PER_EMAIL + 2)
    assert mail.envelopes[-1][1] == [USER]
    entries = account_mail_entries(hub)
    assert entries.count(("throttled", USER, "127.0.0.1")) == 1
    assert entries.count(("throttled", ADMIN, "127.0.0.9")) == 1
    assert entries.count(("no_account", "guess0@lab.example", "127.0.0.9")) == 1


def account_mail_entries(hub) -> list[tuple[str, str, str]]:
    return [(row["details"]["outcome"], row["target"], row["address"]) for row in admin.audit_log(hub, limit=1000)
            if row["action"] == "password_reset_requested"]


def test_the_reset_mail_speaks_the_account_language_else_the_page(app, mail):
    hub = app.state.hub
    forgot(app, USER, headers={"Accept-Language": "zh-CN"})
    accounts.set_language(hub, accounts.find_user(hub, ADMIN).id, "en")
    forgot(app, ADMIN, headers={"Accept-Language": "zh-CN"})
    mail.wait_for(2)
    assert [m["Subject"] for m in mail.messages] == ["AcademicHub：重置密码", "AcademicHub: reset your password"]
    body = mail.messages[0].get_body(("plain",)).get_content()
    assert "链接只能使用一次，一小时内有效" in body and USER in body


def test_an_invitation_is_mailed_and_its_link_opens_the_account(app, mail):
    admin = Browser(app, client=("127.0.0.7", 41000))
    admin.login(ADMIN, ADMIN_PASSWORD)
    page = admin.post("/admin/invite", {"email": "Carol@Lab.example"})
    assert page.status_code == 200 and 'id="invitation-mailed"' in page.text
    shown = shown_link(page.text)
    mail.wait_for(1)
    assert mail.envelopes == [("radar@lab.example", ["carol@lab.example"])]
    assert mail.messages[0]["Subject"] == "AcademicHub: you are invited"
    path = link_in(mail.messages[0], "/invite")
    assert shown == PUBLIC + path  # the same link as shown once
    guest = Browser(app)
    assert guest.get(path).status_code == 200
    token = unquote(path.split("token=", 1)[1])
    accepted = guest.client.post("/invite", data={"token": token, "password": "carol-pass-1",
                                                  "password_again": "carol-pass-1"})
    assert accepted.status_code == 303 and guest.get("/account").status_code == 200
    assert accounts.find_user(app.state.hub, "carol@lab.example") is not None
    rows = audit_rows(admin.get("/admin").text)
    assert [ADMIN, "invitation_mailed", "carol@lab.example", "127.0.0.7"] in rows
    assert [ADMIN, "user_invited", "carol@lab.example", "127.0.0.7"] in rows


def test_a_refused_invitation_mail_is_said_and_the_link_still_shown(app, mail):
    admin = Browser(app)
    admin.login(ADMIN, ADMIN_PASSWORD)
    mail.script.append(("rcpt", "550 5.1.1 no such mailbox"))
    page = admin.post("/admin/invite", {"email": "dave@lab.example"})
    assert page.status_code == 200 and 'id="invitation-mail-failed"' in page.text
    assert "RCPT TO dave@lab.example refused: 550" in page.text
    assert shown_link(page.text).startswith(PUBLIC + "/invite?token=")
    assert mail.messages == []
    rows = audit_rows(admin.get("/admin").text)
    assert [row[:3] for row in rows if row[1] == "invitation_mail_failed"] == [
        [ADMIN, "invitation_mail_failed", "dave@lab.example"]]


def test_without_smtp_host_the_page_says_whom_to_ask_and_mails_nothing(database_url, tmp_path, mail):
    app = make_app(database_url, tmp_path, public_url=PUBLIC + "/", allowed_hosts="testserver,127.0.0.1")
    form = Browser(app).get("/login/forgot")
    assert "academichub users reset-password EMAIL" in form.text and 'name="email"' not in form.text
    posted = Browser(app).client.post("/login/forgot", data={"email": USER})
    assert posted.status_code == 200 and "academichub users reset-password EMAIL" in posted.text
    assert ASKED not in posted.text
    admin = Browser(app)
    admin.login(ADMIN, ADMIN_PASSWORD)
    page = admin.post("/admin/invite", {"email": "erin@lab.example"})
    assert page.status_code == 200 and "invitation-mail" not in page.text
    assert mail.transactions == 0
