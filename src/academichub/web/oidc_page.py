"""The login page's "Sign in with ..." button: /login/oidc sends the browser to the OpenID
provider, /login/oidc/callback takes it back and starts a session (app/oidc.py does the work)."""

from __future__ import annotations

import logging
from typing import Annotated, Callable

from fastapi import FastAPI, Query, Request
from fastapi.responses import RedirectResponse

from ..app import accounts, oidc
from ..errors import AcademicHubError
from .account_page import _signed_in, safe_next
from .identity import secure_cookies

log = logging.getLogger(__name__)
FLOW_COOKIE = "academichub_oidc"
FLOW_PATH = "/login/oidc"


def enabled(settings) -> bool:
    return oidc.enabled(settings)


def _callback_url(request: Request) -> str:
    public = request.app.state.settings.public_url
    return (public or str(request.base_url)).rstrip("/") + FLOW_PATH + "/callback"


def register(app: FastAPI, hub, render: Callable) -> None:
    def refused(request: Request, error, status_code: int):
        response = render(request, "login.html", {"next": "/", "email": "", "error": error, "reset_done": False},
                          status_code=status_code)
        response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
        return response

    @app.get(FLOW_PATH, include_in_schema=False)
    def start(request: Request, next_: Annotated[str | None, Query(alias="next", max_length=2000)] = None):
        if not enabled(request.app.state.settings):
            return RedirectResponse("/login", status_code=303)
        try:
            url, flow = oidc.begin(hub, _callback_url(request), safe_next(next_))
        except AcademicHubError as exc:
            log.warning("OpenID Connect sign-in could not start: %s", exc)
            return refused(request, exc, 502)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(FLOW_COOKIE, flow, max_age=oidc.FLOW_LIFETIME, httponly=True, samesite="lax",
                            secure=secure_cookies(request.app.state.settings, request.scope), path=FLOW_PATH)
        return response

    @app.get(FLOW_PATH + "/callback", include_in_schema=False)
    def callback(request: Request):
        if not enabled(request.app.state.settings):
            return RedirectResponse("/login", status_code=303)
        params = {k: v[:4096] for k, v in request.query_params.items()}
        address = request.client.host if request.client else None
        try:
            session, target = oidc.finish(hub, request.cookies.get(FLOW_COOKIE), params, _callback_url(request),
                                          address=address, user_agent=request.headers.get("user-agent"))
        except accounts.LoginRefused as exc:
            return refused(request, exc, 403)
        except AcademicHubError as exc:
            log.warning("OpenID Connect sign-in refused: %s", exc)
            return refused(request, exc, 400)
        response = _signed_in(request, session, safe_next(target))
        response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
        return response
