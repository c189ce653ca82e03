"""Sign-in by an authenticating reverse proxy: `trusted_proxy_header` is believed only when the
direct peer is in `trusted_proxies`. The same header from any other address is ignored (a spoofed
header gets the login page); unknown e-mails open nothing unless `trusted_proxy_auto_create`."""

from __future__ import annotations

import pytest
from accounts_support import ADMIN, USER, make_app
from fastapi.testclient import TestClient

from academichub.app import accounts

pytestmark = pytest.mark.postgres
HEADER = "X-Forwarded-Email"


def client_from(app, address: str) -> TestClient:
    return TestClient(app, client=(address, 40000), follow_redirects=False)


@pytest.fixture
def app(database_url, tmp_path):
    return make_app(database_url, tmp_path, trusted_proxy_header=HEADER, trusted_proxies="10.0.0.0/8, 192.0.2.7")


def test_the_header_is_believed_from_a_trusted_proxy_only(app):
    for proxy in ("10.20.30.40", "192.0.2.7"):
        page = client_from(app, proxy).get("/account", headers={HEADER: USER})
        assert page.status_code == 200 and f"<h1>Account · {USER}</h1>" in page.text
        assert 'href="/admin"' not in page.text
        assert client_from(app, proxy).get("/admin", headers={HEADER: USER}).status_code == 403
    assert client_from(app, "10.0.0.1").get("/admin", headers={HEADER: ADMIN.upper()}).status_code == 200
    for spoofer in ("192.0.2.8", "127.0.0.1", "11.0.0.1", "::1"):
        client = client_from(app, spoofer)
        for path in ("/account", "/admin", "/"):
            response = client.get(path, headers={HEADER: ADMIN, "X-Forwarded-For": "10.0.0.1"})
            assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), (spoofer, path)
        assert client.get("/api/radars", headers={HEADER: ADMIN}).status_code == 401
        assert client.post("/admin/users/disable", data={"email": USER}, headers={HEADER: ADMIN}).status_code == 303
    assert accounts.find_user(app.state.hub, USER).disabled_at is None


def test_unknown_disabled_or_malformed_names_open_nothing(app):
    proxy = client_from(app, "10.0.0.2")
    assert proxy.get("/account", headers={HEADER: "nobody@lab.example"}).status_code == 303
    assert accounts.find_user(app.state.hub, "nobody@lab.example") is None
    assert proxy.get("/account", headers={HEADER: "not an address"}).status_code == 303
    accounts.disable_user(app.state.hub, USER)
    assert proxy.get("/account", headers={HEADER: USER}).status_code == 303


def test_auto_create_makes_the_named_account(database_url, tmp_path):
    app = make_app(database_url, tmp_path, trusted_proxy_header=HEADER, trusted_proxies="10.0.0.0/8",
                   trusted_proxy_auto_create=True)
    page = client_from(app, "10.0.0.2").get("/account", headers={HEADER: "Frank@Lab.example"})
    assert page.status_code == 200 and "<h1>Account · frank@lab.example</h1>" in page.text
    frank = accounts.find_user(app.state.hub, "frank@lab.example")
    assert frank is not None and frank.password_hash is None and not frank.is_admin
    assert client_from(app, "10.0.0.2").get("/account", headers={HEADER: "frank@lab.example"}).status_code == 200
    assert len(accounts.list_users(app.state.hub)) == 3
    assert client_from(app, "172.16.0.1").get("/account", headers={HEADER: "grace@lab.example"}).status_code == 303
    assert accounts.find_user(app.state.hub, "grace@lab.example") is None
