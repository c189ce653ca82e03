"""Logging in and out, the first-run account page, and /account: change password, the list of
sessions (revoke one, or log out everywhere), API tokens (created and shown once, revoked), the
interface language. Every use case is app/accounts.py's; these routes only read forms and answer."""

from __future__ import annotations

from typing import Annotated, Callable

from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse

from ..app import accounts
from ..errors import AcademicHubError
from . import i18n
from .identity import is_loopback, secure_cookies, viewer, viewer_user_id

MAX_FIELD = 1024


def safe_next(value: str | None) -> str:
    """Where a login may send the browser on: a local path only (never //host or a scheme)."""
    value = (value or "").strip()
    if not value.startswith("/") or value.startswith("//") or "\\" in value or any(ord(c) < 32 for c in value):
        return "/"
    return value


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _signed_in(request: Request, token: str, target: str) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(accounts.SESSION_COOKIE, token, max_age=int(accounts.SESSION_LIFETIME.total_seconds()),
                        httponly=True, samesite="lax", secure=secure_cookies(request.app.state.settings, request.scope),
                        path="/")
    return response


def register(app: FastAPI, hub, render: Callable, setup_token: str | None) -> None:
    def login_form(request: Request, *, next_: str, email: str = "", error=None, status_code: int = 200):
        return render(request, "login.html", {"next": safe_next(next_), "email": email, "error": error,
                                              "reset_done": request.query_params.get("reset") == "1"},
                      status_code=status_code)

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next_: Annotated[str | None, Query(alias="next", max_length=2000)] = None):
        if accounts.count_accounts(hub) == 0:
            return RedirectResponse("/setup", status_code=303)
        return login_form(request, next_=next_ or "/")

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        email: Annotated[str, Form(max_length=MAX_FIELD)] = "",
        password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
        next_: Annotated[str, Form(alias="next", max_length=2000)] = "/",
    ):
        try:
            account = accounts.authenticate(hub, email, password, address=_address(request))
        except accounts.LoginThrottled as exc:
            return login_form(request, next_=next_, email=email, error=exc, status_code=429)
        except accounts.LoginRefused as exc:
            return login_form(request, next_=next_, email=email, error=exc, status_code=401)
        token = accounts.start_session(hub, account.id, address=_address(request),
                                       user_agent=request.headers.get("user-agent"))
        return _signed_in(request, token, safe_next(next_))

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request):
        accounts.end_session(hub, request.cookies.get(accounts.SESSION_COOKIE), address=_address(request))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(accounts.SESSION_COOKIE, path="/")
        return response

    # -- the first account --

    def may_set_up(request: Request, token: str | None) -> bool:
        if accounts.count_accounts(hub) != 0:
            return False
        if is_loopback(_address(request)):
            return True
        import hmac

        return setup_token is not None and token is not None and hmac.compare_digest(token, setup_token)

    @app.get("/setup", include_in_schema=False)
    def setup_page(request: Request, token: Annotated[str | None, Query(max_length=200)] = None):
        if accounts.count_accounts(hub) != 0:
            return RedirectResponse("/login", status_code=303)
        allowed = may_set_up(request, token)
        return render(request, "setup.html", {"allowed": allowed, "token": token or "", "email": "", "error": None},
                      status_code=200 if allowed else 403)

    @app.post("/setup", include_in_schema=False)
    def setup(
        request: Request,
        email: Annotated[str, Form(max_length=MAX_FIELD)] = "",
        password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
        password_again: Annotated[str, Form(max_length=MAX_FIELD)] = "",
        token: Annotated[str | None, Form(max_length=200)] = None,
    ):
        if not may_set_up(request, token):
            raise HTTPException(403, "the first account is created from the server itself or with the setup token")
        try:
            if password != password_again:
                raise accounts.AccountError.translatable("the two passwords differ")
            user_id = accounts.create_user(hub, email, password, is_admin=True, address=_address(request))
        except AcademicHubError as exc:
            return render(request, "setup.html", {"allowed": True, "token": token or "", "email": email, "error": exc},
                          status_code=400)
        token_value = accounts.start_session(hub, user_id, address=_address(request),
                                             user_agent=request.headers.get("user-agent"))
        return _signed_in(request, token_value, "/")

    # -- the account page --

    def account_page(request: Request, *, created: dict | None = None, error=None, done: str | None = None,
                     status_code: int = 200):
        me = viewer(request)
        if me.user_id is None:
            raise HTTPException(401, "login required")
        user = accounts.get_user(hub, me.user_id)
        return render(request, "account.html", {
            "user": user,
            "sessions": accounts.sessions_of(hub, me.user_id),
            "tokens": accounts.tokens_of(hub, me.user_id),
            "created": created,
            "error": error,
            "done": done,
            "has_password": user is not None and user.password_hash is not None,
        }, status_code=status_code)

    @app.get("/account", include_in_schema=False)
    def account(request: Request):
        return account_page(request)

    @app.post("/account/password", include_in_schema=False)
    def change_password(
        request: Request,
        current: Annotated[str, Form(max_length=MAX_FIELD)] = "",
        password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
        password_again: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    ):
        me = viewer(request)
        try:
            if password != password_again:
                raise accounts.AccountError.translatable("the two passwords differ")
            accounts.change_password(hub, viewer_user_id(request), current, password, session_id=me.session_id,
                                     address=_address(request))
        except AcademicHubError as exc:
            return account_page(request, error=exc, status_code=400)
        return account_page(request, done="password")

    @app.post("/account/sessions/revoke", include_in_schema=False)
    def revoke_session(request: Request, session: Annotated[str, Form(max_length=64)] = ""):
        accounts.revoke_session(hub, viewer_user_id(request), session)
        if session == viewer(request).session_id:
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse("/account#sessions", status_code=303)

    @app.post("/account/logout-everywhere", include_in_schema=False)
    def logout_everywhere(request: Request):
        accounts.end_all_sessions(hub, viewer_user_id(request), address=_address(request))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(accounts.SESSION_COOKIE, path="/")
        return response

    @app.post("/account/tokens", include_in_schema=False)
    def create_token(
        request: Request,
        name: Annotated[str, Form(max_length=200)] = "",
        scope: Annotated[str, Form(max_length=8)] = "read",
    ):
        try:
            token_id, secret = accounts.create_token(hub, viewer_user_id(request), name, scope, address=_address(request))
        except AcademicHubError as exc:
            return account_page(request, error=exc, status_code=400)
        return account_page(request, created={"id": token_id, "secret": secret, "name": name, "scope": scope})

    @app.post("/account/tokens/revoke", include_in_schema=False)
    def revoke_token(request: Request, token: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0):
        accounts.revoke_token(hub, viewer_user_id(request), token, address=_address(request))
        return RedirectResponse("/account#tokens", status_code=303)

    @app.post("/account/language", include_in_schema=False)
    def language(request: Request, lang: Annotated[str, Form(max_length=16)] = ""):
        code = i18n.normalize_language(lang)
        if code is None:
            return account_page(request, error=AcademicHubError.translatable("lang must be zh or en"), status_code=400)
        accounts.set_language(hub, viewer_user_id(request), code)
        response = RedirectResponse("/account", status_code=303)
        response.set_cookie(i18n.COOKIE, code, max_age=i18n.COOKIE_MAX_AGE, httponly=True, samesite="lax", path="/")
        return response
