"""Delivery on the web: the viewer's delivery settings (/settings/delivery: their e-mail address,
their channels with the last error and the last test, add, edit, remove, send a test) and the
pages a digest's signed links open.

A digest's like/dismiss/save link never acts on GET (mail scanners and link previews open every
link): GET shows what the link will do and a button; the button's POST acts. The unsubscribe URL
takes the RFC 8058 one-click POST (`List-Unsubscribe=One-Click`) that mail clients send from
elsewhere, so these POSTs carry their authority in the signed token, not in a same-site check."""

from __future__ import annotations

from typing import Annotated, Callable

from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse

from ..app import delivery
from ..app.hub import Hub
from ..app.signing import BadSignature
from ..errors import AcademicHubError, NotFound
from ..store.delivery import CADENCES, KINDS
from .identity import viewer, viewer_user_id
from .sources_page import _refuse_cross_site

FLASHES = ("added", "saved", "removed", "test-queued", "email")
TOKEN_MAX = 2000


def _radar(value: str | None) -> int | None:
    value = (value or "").strip()
    if not value or value == "all":
        return None
    if not value.isdigit():
        raise HTTPException(422, "radar must be a radar id or all")
    return int(value)


def register(app: FastAPI, hub: Hub, render: Callable) -> None:
    def page(request: Request, *, error=None, status_code: int = 200):
        user_id = viewer(request).user_id
        found = delivery.settings_of(hub, user_id)
        done = request.query_params.get("done")
        context = {
            "email": found.email, "channels": found.channels, "radars": found.radars,
            "radar_names": dict(found.radars), "recent": found.recent, "tests": found.tests, "kinds": KINDS,
            "cadences": CADENCES,
            "masked": delivery.masked, "error": error, "flash": done if done in FLASHES else None,
            "smtp_ready": bool(hub.settings.smtp_host),
        }
        return render(request, "delivery_settings.html", context, status_code=status_code)

    @app.get("/settings/delivery", include_in_schema=False)
    def delivery_settings(request: Request):
        return page(request)

    def attempt(request: Request, action: Callable[[int], None], done: str):
        _refuse_cross_site(request)
        user_id = viewer_user_id(request)
        try:
            action(user_id)
        except NotFound:
            raise HTTPException(404, "no such delivery channel") from None
        except AcademicHubError as exc:
            return page(request, error=exc, status_code=400)
        return RedirectResponse(f"/settings/delivery?done={done}", status_code=303)

    @app.post("/settings/delivery/email", include_in_schema=False)
    def set_email(request: Request, email: Annotated[str, Form(max_length=254)] = ""):
        return attempt(request, lambda user_id: delivery.set_email(hub, user_id, email), "email")

    @app.post("/settings/delivery/channels", include_in_schema=False)
    def add_channel(
        request: Request,
        kind: Annotated[str, Form(max_length=16)],
        target: Annotated[str, Form(max_length=2000)] = "",
        secret: Annotated[str, Form(max_length=500)] = "",
        radar: Annotated[str, Form(max_length=20)] = "all",
        cadence: Annotated[str, Form(max_length=8)] = "daily",
        lang: Annotated[str, Form(max_length=8)] = "zh",
    ):
        radar_id = _radar(radar)
        return attempt(request, lambda user_id: delivery.add_channel(
            hub, user_id, kind, target, secret=secret, radar_id=radar_id, cadence=cadence, lang=lang), "added")

    @app.post("/settings/delivery/channels/{channel_id}", include_in_schema=False)
    def edit_channel(
        request: Request,
        channel_id: int,
        target: Annotated[str, Form(max_length=2000)] = "",
        secret: Annotated[str, Form(max_length=500)] = "",
        radar: Annotated[str, Form(max_length=20)] = "all",
        cadence: Annotated[str, Form(max_length=8)] = "daily",
        lang: Annotated[str, Form(max_length=8)] = "zh",
        enabled: Annotated[str, Form(max_length=8)] = "",
    ):
        radar_id = _radar(radar)
        return attempt(request, lambda user_id: delivery.update_channel(
            hub, user_id, channel_id, target=target, secret=secret, radar_id=radar_id, cadence=cadence, lang=lang,
            enabled=enabled in ("1", "on", "true")), "saved")

    @app.post("/settings/delivery/channels/{channel_id}/remove", include_in_schema=False)
    def remove_channel(request: Request, channel_id: int):
        return attempt(request, lambda user_id: delivery.remove_channel(hub, user_id, channel_id), "removed")

    @app.post("/settings/delivery/channels/{channel_id}/test", include_in_schema=False)
    def test_channel(request: Request, channel_id: int):
        """A job on the queue (app/delivery.py: request_test): the answer does not wait for the mail
        server or the webhook; the channel's row shows the test's outcome on a later view."""
        return attempt(request, lambda user_id: delivery.request_test(hub, user_id, channel_id), "test-queued")

    # -- a digest's signed links --

    def link_page(request: Request, state: str, *, pending=None, channel=None, token: str = "", status_code: int = 200):
        return render(request, "digest_link.html", {"state": state, "pending": pending, "channel": channel,
                                                    "token": token}, status_code=status_code)

    def refused(request: Request, exc: Exception):
        if isinstance(exc, NotFound):
            return link_page(request, "gone", status_code=404)
        return link_page(request, "invalid", status_code=403)

    @app.get("/digest/act", include_in_schema=False)
    def confirm_action(request: Request, t: Annotated[str, Query(max_length=TOKEN_MAX)] = ""):
        try:
            pending = delivery.read_action(hub, t)
        except (BadSignature, NotFound) as exc:
            return refused(request, exc)
        return link_page(request, "confirm", pending=pending, token=t)

    @app.post("/digest/act", include_in_schema=False)
    def do_action(request: Request, t: Annotated[str, Form(max_length=TOKEN_MAX)] = ""):
        try:
            pending = delivery.act(hub, t)
        except (BadSignature, NotFound) as exc:
            return refused(request, exc)
        return link_page(request, "done", pending=pending)

    @app.get("/digest/unsubscribe", include_in_schema=False)
    def confirm_unsubscribe(request: Request, t: Annotated[str, Query(max_length=TOKEN_MAX)] = ""):
        try:
            channel = delivery.read_unsubscribe(hub, t)
        except (BadSignature, NotFound) as exc:
            return refused(request, exc)
        return link_page(request, "unsubscribe", channel=channel, token=t)

    @app.post("/digest/unsubscribe", include_in_schema=False)
    async def do_unsubscribe(request: Request):
        """The confirm page's button, or a mail client's one-click POST (token in the query)."""
        token = request.query_params.get("t") or ""
        if not token:
            form = await request.form()
            token = str(form.get("t") or "")
        if len(token) > TOKEN_MAX:
            return link_page(request, "invalid", status_code=403)
        from starlette.concurrency import run_in_threadpool

        try:
            channel = await run_in_threadpool(delivery.unsubscribe, hub, token)
        except (BadSignature, NotFound) as exc:
            return refused(request, exc)
        return link_page(request, "unsubscribed", channel=channel)
