"""The administrator's use cases behind /admin: invite people, disable or enable an account,
make or unmake an administrator, hand out a password-reset link, and read the audit log and the
settings (secrets masked). Every change is written with its audit line in the same transaction
(accounts.record_audit / the core's own audit), naming who did it and from where.

Password reset links are signed (app/signing.py, purpose "password_reset"), expire after
RESET_LIFETIME and are single-use: they carry the account's password_changed_at, which the reset
itself changes, so a used (or outdated) link no longer verifies."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr

from ..errors import AcademicHubError
from ..store import account_admin as admin_store
from ..store import accounts as account_store
from . import accounts
from .signing import BadSignature, sign, signing_key, verify

RESET_PURPOSE = "password_reset"
RESET_LIFETIME = timedelta(hours=1)
MASK = "********"


class AdminError(AcademicHubError):
    """An administrator's action refused (the last administrator, one's own account, an unknown user)."""


def _account(conn, email: str) -> account_store.Account:
    account = account_store.account_by_email(conn, accounts.normalize_email(email))
    if account is None:
        raise AdminError.translatable("no account {email}", email=email[:80])
    return account


def set_admin(hub, email: str, is_admin: bool, *, actor_id: int, address: str | None) -> None:
    """Make or unmake an administrator; the last active administrator stays one."""
    with hub.writing() as conn:
        account = _account(conn, email)
        if not is_admin and account.is_admin and admin_store.count_active_admins(conn) <= 1:
            raise AdminError.translatable("the last administrator cannot be unmade")
        admin_store.set_admin(conn, account.id, is_admin)
        accounts.record_audit(hub, "admin_granted" if is_admin else "admin_revoked", actor_id=actor_id,
                              target=account.email, address=address, conn=conn)


def set_disabled(hub, email: str, disabled: bool, *, actor_id: int, address: str | None) -> None:
    """Disable (sessions revoked, tokens refused) or enable an account; never one's own."""
    account = accounts.find_user(hub, email)
    if account is None:
        raise AdminError.translatable("no account {email}", email=email[:80])
    if account.id == actor_id and disabled:
        raise AdminError.translatable("you cannot disable your own account")
    if disabled:
        accounts.disable_user(hub, email, actor_id=actor_id, address=address)
    else:
        accounts.enable_user(hub, email, actor_id=actor_id, address=address)


def invite(hub, email: str, *, is_admin: bool, actor_id: int, address: str | None) -> str:
    """An invitation's secret (for its /invite link, shown once); the core records the audit line."""
    return accounts.create_invitation(hub, email, invited_by=actor_id, is_admin=is_admin, address=address)


def audit_log(hub, *, limit: int = 200, offset: int = 0) -> list[dict]:
    with hub.reading() as conn:
        return admin_store.audit_entries(conn, limit=limit, offset=offset)


def settings_view(settings) -> list[tuple[str, str]]:
    """Every setting as (name, shown value), secrets masked (set or not is all one learns)."""
    shown = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            text = MASK if value.get_secret_value() else ""
        elif value is None:
            text = ""
        else:
            text = str(value)
        if name in ("database_url", "queue_url") and value:
            text = _mask_url_password(text)
        shown.append((name, text))
    return shown


def _mask_url_password(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:********@host/db"""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:{MASK}@{host}"


# ----------------------------------------------------------------------------- password reset


def _changed_mark(account: account_store.Account) -> str:
    return account.password_changed_at.isoformat() if account.password_changed_at is not None else "-"


def reset_token(hub, email: str, *, actor_id: int | None, address: str | None) -> str:
    """A signed, expiring, single-use token for resetting this account's password."""
    with hub.writing() as conn:
        account = _account(conn, email)
        if account.disabled_at is not None:
            raise AdminError.translatable("the account {email} is disabled", email=account.email)
        accounts.record_audit(hub, "password_reset_link", actor_id=actor_id, target=account.email, address=address,
                              conn=conn)
    return sign_reset(hub, account)


def sign_reset(hub, account: account_store.Account) -> str:
    """The reset token itself (no audit line: the caller writes its own)."""
    return sign(signing_key(hub.settings), RESET_PURPOSE, {"u": account.id, "c": _changed_mark(account)},
                max_age=RESET_LIFETIME.total_seconds(), now=hub.now().timestamp())


def reset_account(hub, token: str) -> account_store.Account:
    """The account a reset token is good for; AdminError when forged, expired, used or disabled."""
    try:
        payload = verify(signing_key(hub.settings), RESET_PURPOSE, token, now=hub.now().timestamp())
    except BadSignature as exc:
        raise AdminError.translatable("this reset link is not valid (used, expired or altered)") from exc
    account = accounts.get_user(hub, int(payload.get("u") or 0)) if isinstance(payload.get("u"), int) else None
    if account is None or account.disabled_at is not None or _changed_mark(account) != payload.get("c"):
        raise AdminError.translatable("this reset link is not valid (used, expired or altered)")
    return account


def reset_password(hub, token: str, new_password: str, *, address: str | None) -> int:
    """Set a new password through a reset link: every session of the account is revoked."""
    account = reset_account(hub, token)
    accounts.set_password(hub, account.id, new_password, actor_id=account.id, address=address)
    return account.id
