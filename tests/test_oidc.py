"""OpenID Connect sign-in against a local provider the test starts (tests/oidc_provider.py), the
whole flow over real HTTP: the app and the provider each under uvicorn, httpx following the
redirects with its cookies, as a browser would. A good flow opens a session for the account with
the token's verified e-mail; a bad state, another nonce, another audience, an expired token, a
foreign signature, an unverified or unknown e-mail each end on the login page with no session."""

from __future__ import annotations

import httpx
import pytest
from accounts_support import ADMIN, make_app
from browser_support import serving
from oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider

from academichub.app import accounts

pytestmark = pytest.mark.postgres
CAROL = "carol@lab.example"


@pytest.fixture
def provider():
    found = Provider()
    with serving(found.app()) as base:
        found.issuer = base
        yield found


def hub_app(database_url, tmp_path, provider, **overrides):
    return make_app(database_url, tmp_path, oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                    oidc_client_secret=CLIENT_SECRET, oidc_button_label="Lab ID", **overrides)


@pytest.fixture
def site(database_url, tmp_path, provider):
    app = hub_app(database_url, tmp_path, provider)
    accounts.create_user(app.state.hub, CAROL, None)  # invited earlier; signs in through the provider only
    with serving(app) as base:
        yield app, base


def signed_in_as(client: httpx.Client, base: str) -> str | None:
    response = client.get(base + "/account", follow_redirects=False)
    if response.status_code != 200:
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
        return None
    return response.text.split("<h1>", 1)[1].split("</h1>", 1)[0].split(" · ")[-1].strip()


def test_the_whole_flow_opens_a_session_for_the_verified_email(site, provider):
    app, base = site
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        login = client.get(base + "/login")
        assert "Sign in with Lab ID" in login.text
        final = client.get(base + "/login/oidc", params={"next": "/account"})
        assert final.status_code == 200 and final.url == httpx.URL(base + "/account")
        assert [str(r.url).split("?")[0] for r in final.history] == [
            base + "/login/oidc", provider.issuer + "/authorize", base + "/login/oidc/callback"]
        assert signed_in_as(client, base) == CAROL
    (asked,) = provider.authorize_requests
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert len(asked["state"]) >= 32 and len(asked["nonce"]) >= 32 and asked["redirect_uri"] == base + "/login/oidc/callback"
    (exchange,) = provider.token_requests
    assert exchange["code_verifier"] and exchange["client_secret"] == CLIENT_SECRET
    sessions = accounts.sessions_of(app.state.hub, accounts.find_user(app.state.hub, CAROL).id)
    assert len(sessions) == 1


@pytest.mark.parametrize("tamper", [{"nonce": "another-nonce"}, {"aud": "another-client"}, {"exp_offset": -600},
                                    {"foreign_key": True}], ids=["wrong-nonce", "wrong-audience", "expired", "foreign-key"])
def test_a_token_not_to_be_believed_opens_no_session(site, provider, tamper):
    app, base = site
    provider.tamper = tamper
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        final = client.get(base + "/login/oidc", params={"next": "/account"})
        assert final.status_code == 400 and final.url.path == "/login/oidc/callback"
        assert "the ID token was refused" in final.text
        assert signed_in_as(client, base) is None
    assert provider.token_requests  # it got as far as the token
    assert accounts.sessions_of(app.state.hub, accounts.find_user(app.state.hub, CAROL).id) == []


def test_a_bad_state_or_a_missing_flow_cookie_opens_no_session(site, provider):
    app, base = site
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        to_provider = client.get(base + "/login/oidc")
        assert to_provider.status_code == 303
        back = client.get(to_provider.headers["location"])
        assert back.status_code == 302 and back.headers["location"].startswith(base + "/login/oidc/callback?")
        callback = httpx.URL(back.headers["location"])
        forged = client.get(callback.copy_set_param("state", "forged-state"))
        assert forged.status_code == 400 and "state differs" in forged.text
        assert signed_in_as(client, base) is None
    with httpx.Client(follow_redirects=False, timeout=30) as other:  # another browser replays the callback
        replay = other.get(callback)
        assert replay.status_code == 400 and signed_in_as(other, base) is None
    assert provider.token_requests == []  # no code was ever exchanged
    assert accounts.sessions_of(app.state.hub, accounts.find_user(app.state.hub, CAROL).id) == []


def test_an_unverified_or_unknown_email_opens_no_session(site, provider):
    app, base = site
    provider.email_verified = False
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        final = client.get(base + "/login/oidc")
        assert final.status_code == 400 and "no verified e-mail" in final.text
        assert signed_in_as(client, base) is None
    provider.email_verified, provider.email = True, "dave@lab.example"
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        final = client.get(base + "/login/oidc")
        assert final.status_code == 403 and signed_in_as(client, base) is None
    assert accounts.find_user(app.state.hub, "dave@lab.example") is None


def test_auto_create_makes_the_account_of_a_verified_email(database_url, tmp_path, provider):
    app = hub_app(database_url, tmp_path, provider, oidc_auto_create=True)
    provider.email = "Erin@Lab.example"
    with serving(app) as base, httpx.Client(follow_redirects=True, timeout=30) as client:
        final = client.get(base + "/login/oidc", params={"next": "/account"})
        assert final.status_code == 200 and signed_in_as(client, base) == "erin@lab.example"
    erin = accounts.find_user(app.state.hub, "erin@lab.example")
    assert erin is not None and erin.password_hash is None and not erin.is_admin
    assert accounts.find_user(app.state.hub, ADMIN).is_admin
