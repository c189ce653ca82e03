"""/admin (administrators only, 403 for anyone else): the accounts (invite, disable/enable,
make/unmake administrator, a password-reset link), a link to /sources, the settings read-only
with secrets masked, and the audit log, newest first. Also the pages an invitation or a reset
link opens (/invite, /login/reset) and "forgot password" (/login/forgot: the reset link by mail
when smtp_host is set, app/account_mail.py; otherwise whom to ask). Every use case is
app/admin.py's or app/accounts.py's; these routes only read forms and answer."""

from __future__ import annotations

from typing import Annotated, Callable
from urllib.parse import quote

from fastapi import BackgroundTasks, FastAPI, Form, Query, Request
from fastapi.responses import RedirectResponse

from ..app import account_mail, accounts, admin
from ..errors import AcademicHubError
from . import i18n
from .account_page import _signed_in
from .identity import require_admin, viewer

MAX_FIELD = 1024
USER_ACTIONS = ("disable", "enable", "make-admin", "unmake-admin", "reset-link")


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def base_url(request: Request) -> str:
    """Where links handed out point: public_url, else the address this request came to."""
    public = request.app.state.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def language(request: Request) -> str:
    """The page's language (as web/app.py's render picks it): the mail's, when the account has none."""
    settings = request.app.state.settings
    return i18n.negotiate(query=request.query_params.get("lang"), cookie=request.cookies.get(i18n.COOKIE),
                          accept_language=request.headers.get("accept-language"),
                          default=i18n.normalize_language(settings.default_language) or i18n.FALLBACK)


def register(app: FastAPI, hub, render: Callable) -> None:
    def admin_page(request: Request, *, shown: dict | None = None, error=None, status_code: int = 200):
        require_admin(request)
        return render(request, "admin.html", {
            "users": accounts.list_users(hub),
            "audit": admin.audit_log(hub),
            "settings_view": admin.settings_view(request.app.state.settings),
            "shown": shown,
            "error": error,
        }, status_code=status_code)

    @app.get("/admin", include_in_schema=False)
    def admin_home(request: Request):
        return admin_page(request)

    @app.post("/admin/invite", include_in_schema=False)
    def invite(request: Request, email: Annotated[str, Form(max_length=MAX_FIELD)] = "",
               is_admin: Annotated[bool, Form()] = False):
        require_admin(request)
        try:
            secret = admin.invite(hub, email, is_admin=is_admin, actor_id=viewer(request).user_id,
                                  address=_address(request))
        except AcademicHubError as exc:
            return admin_page(request, error=exc, status_code=400)
        link = f"{base_url(request)}/invite?token={quote(secret)}"
        shown = {"kind": "invitation", "email": email.strip().lower(), "link": link}
        if account_mail.mail_enabled(request.app.state.settings):
            shown["mail_error"] = account_mail.mail_invitation(hub, email, secret, lang=language(request),
                                                               actor_id=viewer(request).user_id,
                                                               address=_address(request))
            shown["mailed"] = shown["mail_error"] is None
        return admin_page(request, shown=shown)

    @app.post("/admin/users/{action}", include_in_schema=False)
    def user_action(request: Request, action: str, email: Annotated[str, Form(max_length=MAX_FIELD)] = ""):
        require_admin(request)
        me, address = viewer(request), _address(request)
        try:
            if action == "disable" or action == "enable":
                admin.set_disabled(hub, email, action == "disable", actor_id=me.user_id, address=address)
            elif action == "make-admin" or action == "unmake-admin":
                admin.set_admin(hub, email, action == "make-admin", actor_id=me.user_id, address=address)
            elif action == "reset-link":
                token = admin.reset_token(hub, email, actor_id=me.user_id, address=address)
                link = f"{base_url(request)}/login/reset?token={quote(token)}"
                return admin_page(request, shown={"kind": "reset", "email": email.strip().lower(), "link": link})
            else:
                return admin_page(request, error=AcademicHubError.translatable("unknown action"), status_code=404)
        except AcademicHubError as exc:
            return admin_page(request, error=exc, status_code=400)
        return RedirectResponse("/admin#users", status_code=303)

    # -- an invitation's link --

    @app.get("/invite", include_in_schema=False)
    def invitation(request: Request, token: Annotated[str, Query(max_length=200)] = ""):
        email = accounts.invitation_email(hub, token)
        return render(request, "invite.html", {"token": token, "email": email, "error": None},
                      status_code=200 if email else 404)

    @app.post("/invite", include_in_schema=False)
    def accept(request: Request, token: Annotated[str, Form(max_length=200)] = "",
               password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
               password_again: Annotated[str, Form(max_length=MAX_FIELD)] = ""):
        email = accounts.invitation_email(hub, token)
        try:
            if password != password_again:
                raise accounts.AccountError.translatable("the two passwords differ")
            user_id = accounts.accept_invitation(hub, token, password, address=_address(request))
        except AcademicHubError as exc:
            return render(request, "invite.html", {"token": token, "email": email, "error": exc}, status_code=400)
        session = accounts.start_session(hub, user_id, address=_address(request),
                                         user_agent=request.headers.get("user-agent"))
        return _signed_in(request, session, "/")

    # -- forgot password, and a reset link --

    @app.get("/login/forgot", include_in_schema=False)
    def forgot(request: Request):
        return render(request, "forgot.html", {"by_mail": account_mail.mail_enabled(request.app.state.settings),
                                               "asked": False})

    @app.post("/login/forgot", include_in_schema=False)
    def ask_reset(request: Request, background: BackgroundTasks,
                  email: Annotated[str, Form(max_length=MAX_FIELD)] = ""):
        """The same answer whatever the address; the mail (if any) is sent after it has gone."""
        by_mail = account_mail.mail_enabled(request.app.state.settings)
        if by_mail and email.strip():
            background.add_task(account_mail.mail_password_reset, hub, email, address=_address(request),
                                lang=language(request))
        return render(request, "forgot.html", {"by_mail": by_mail, "asked": by_mail and bool(email.strip())})

    @app.get("/login/reset", include_in_schema=False)
    def reset_page(request: Request, token: Annotated[str, Query(max_length=1000)] = ""):
        try:
            account = admin.reset_account(hub, token)
        except AcademicHubError as exc:
            return render(request, "reset.html", {"token": "", "email": None, "error": exc}, status_code=400)
        return render(request, "reset.html", {"token": token, "email": account.email, "error": None})

    @app.post("/login/reset", include_in_schema=False)
    def reset(request: Request, token: Annotated[str, Form(max_length=1000)] = "",
              password: Annotated[str, Form(max_length=MAX_FIELD)] = "",
              password_again: Annotated[str, Form(max_length=MAX_FIELD)] = ""):
        try:
            account = admin.reset_account(hub, token)
            if password != password_again:
                raise accounts.AccountError.translatable("the two passwords differ")
            admin.reset_password(hub, token, password, address=_address(request))
        except admin.AdminError as exc:
            return render(request, "reset.html", {"token": "", "email": None, "error": exc}, status_code=400)
        except AcademicHubError as exc:
            return render(request, "reset.html", {"token": token, "email": account.email, "error": exc},
                          status_code=400)
        response = RedirectResponse("/login?reset=1", status_code=303)
        response.delete_cookie(accounts.SESSION_COOKIE, path="/")
        return response
