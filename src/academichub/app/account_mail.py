"""Account links by e-mail, when the mail channel is set up (smtp_host): "forgot password" mails
the same signed, expiring, single-use reset link /admin hands out (app/admin.py), and an
invitation made on /admin is also mailed to the invited address. Sent with delivery/email.py.

/login/forgot must not tell who has an account: the web answers the same page whatever the
address and calls `mail_password_reset` after the answer has gone (so neither the page nor its
timing differs). Requests are rate-limited per typed address and per client address, counted on
their audit lines ("password_reset_requested") over RESET_WINDOW; a throttled or unknown address
gets no mail, silently. Links point at public_url, else this server on localhost (as a digest's)."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import quote

from ..delivery import account_mail as texts
from ..delivery.email import MailError, mail_setup, send_message
from ..store import account_admin as admin_store
from ..store import accounts as account_store
from . import accounts, admin
from .delivery import base_url

log = logging.getLogger(__name__)

REQUESTED = "password_reset_requested"
RESET_WINDOW = timedelta(hours=1)
RESETS_PER_EMAIL = 3  # mails asked for one address per window
RESETS_PER_ADDRESS = 10  # requests from one client address per window


def mail_enabled(settings) -> bool:
    """Whether account links go by mail (smtp_host set); otherwise an administrator or the CLI."""
    return bool(settings.smtp_host)


def reset_link(hub, token: str) -> str:
    return f"{base_url(hub.settings)}/login/reset?token={quote(token)}"


def invitation_link(hub, secret: str) -> str:
    return f"{base_url(hub.settings)}/invite?token={quote(secret)}"


def mail_password_reset(hub, email: str, *, address: str | None, lang: str | None) -> bool:
    """Mail a reset link to `email` when an active account has it and the limits allow; True when
    a mail went out. Never raises for an unknown address, a throttle or a failed send (each is
    an audit line and a log line): the caller has already answered."""
    if not mail_enabled(hub.settings):
        return False
    key = (email or "").strip().lower()[:255]
    address = (address or None) and address[:64]
    now = hub.now()
    since = now - RESET_WINDOW
    with hub.writing() as conn:
        throttled = (admin_store.count_audit_since(conn, REQUESTED, since, target=key) >= RESETS_PER_EMAIL
                     or admin_store.count_audit_since(conn, REQUESTED, since, address=address) >= RESETS_PER_ADDRESS)
        account = account_store.account_by_email(conn, key) if key else None
        if throttled:
            outcome = "throttled"
        elif account is None:
            outcome = "no_account"
        elif account.disabled_at is not None:
            outcome = "disabled"
        else:
            outcome = "mailed"
        account_store.insert_audit(conn, at=now, actor_id=None, action=REQUESTED, target=key or None,
                                   details={"outcome": outcome}, address=address)
    if outcome != "mailed":
        return False
    link = reset_link(hub, admin.sign_reset(hub, account))
    try:
        _deliver(hub, texts.reset_message, to=account.email, link=link, lang=account.locale or lang)
    except MailError as exc:
        accounts.record_audit(hub, "password_reset_mail_failed", target=account.email,
                              details={"error": str(exc)[:500]}, address=address)
        log.warning("password reset mail to %s not sent: %s", account.email, exc)
        return False
    return True


def mail_invitation(hub, email: str, secret: str, *, lang: str | None, actor_id: int | None,
                    address: str | None) -> str | None:
    """Mail an invitation's link (made by admin.invite) to the invited address; None when sent,
    else the reason it was not (shown to the administrator; the link stays on the page)."""
    if not mail_enabled(hub.settings):
        return "no mail set-up"
    to = accounts.normalize_email(email)
    link = invitation_link(hub, secret)
    try:
        _deliver(hub, texts.invitation_message, to=to, link=link, lang=lang)
    except MailError as exc:
        accounts.record_audit(hub, "invitation_mail_failed", actor_id=actor_id, target=to,
                              details={"error": str(exc)[:500]}, address=address)
        log.warning("invitation mail to %s not sent: %s", to, exc)
        return str(exc)
    accounts.record_audit(hub, "invitation_mailed", actor_id=actor_id, target=to, address=address)
    return None


def _deliver(hub, make, *, to: str, link: str, lang: str | None) -> None:
    setup = mail_setup(hub.settings)
    send_message(setup, make(to=to, link=link, lang=lang, setup=setup))


__all__ = ["RESETS_PER_ADDRESS", "RESETS_PER_EMAIL", "RESET_WINDOW", "invitation_link", "mail_enabled",
           "mail_invitation", "mail_password_reset", "reset_link"]
