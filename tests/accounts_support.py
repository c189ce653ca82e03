"""Helpers for the accounts tests: an app over an empty store with accounts, and a browser-like
client that logs in through /login and sends its session's CSRF token with each form."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from academichub.app import accounts
from academichub.settings import Settings
from academichub.store.database import open_store
from academichub.web.app import create_app

ADMIN, ADMIN_PASSWORD = "ada@lab.example", "ada-password-1"
USER, USER_PASSWORD = "bob@lab.example", "bob-password-1"
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def make_app(database_url: str, tmp_path, **overrides):
    """The app with two accounts (an administrator and a user), so no loopback client is the
    single local user: every request must sign in."""
    settings = Settings(database_url=database_url, data_dir=tmp_path / "data", load_sample=False, scheduler=False,
                        embed_on_ingest=False, default_language="en", secret_key="test-secret-key-for-signing",
                        **overrides)
    app = create_app(settings, engine=open_store(database_url))
    hub = app.state.hub
    accounts.create_user(hub, ADMIN, ADMIN_PASSWORD, is_admin=True)
    accounts.create_user(hub, USER, USER_PASSWORD)
    return app


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


class Browser:
    """A TestClient that logs in and posts forms as a browser would (same-origin, with the token)."""

    def __init__(self, app, client=("127.0.0.1", 50000)) -> None:
        self.client = TestClient(app, client=client, follow_redirects=False)
        self.csrf: str | None = None

    def login(self, email: str, password: str):
        response = self.client.post("/login", data={"email": email, "password": password, "next": "/account"})
        assert response.status_code == 303, response.text
        self.csrf = csrf_of(self.client.get("/account").text)
        return response

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs):
        form = dict(data or {})
        if self.csrf:
            form["csrf_token"] = self.csrf
        return self.client.post(path, data=form, **kwargs)
