"""Accounts: who may use one AcademicHub, and how they prove it. The use cases every front end
(the web's login and account pages, `academichub users`, and the external logins added on top:
OpenID Connect, a trusted reverse proxy) call; none of them touches the accounts tables itself.

- Passwords are argon2id hashes (pwdlib). A login is rate-limited per account and per address,
  and an unknown e-mail costs the same hash verification as a known one.
- A session is a random cookie token; the store keeps only its sha256 (the session id), so a
  leaked database opens no session. Sessions expire, slide while used, and are revoked on logout,
  on "log out everywhere", on a password change and when the user is disabled.
- API tokens ("Authorization: Bearer ahk_...") are shown once, kept hashed, scoped read|write.
- The first account created takes over the implicit local user's radars (and everything that
  hangs off them: rules, seeds, feedback, shown papers, briefings) and is an administrator.

Hooks for other front ends: `login_external` (find or create the account an identity provider
vouched for), `start_session` (a session for it), `record_audit` (one audit line)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from ..errors import AcademicHubError
from ..store import accounts as store
from ..store.radars import DEFAULT_USER, act_for_process, acting_as, default_user_id
from .signing import signing_key

log = logging.getLogger(__name__)

SESSION_COOKIE = "academichub_session"
SESSION_LIFETIME = timedelta(days=14)  # since the last use: a used session slides
SESSION_TOUCH_EVERY = timedelta(minutes=5)  # at most one write per session this often
TOKEN_PREFIX = "ahk_"
INVITATION_LIFETIME = timedelta(days=7)
SCOPES = ("read", "write")
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
EMAIL_MAX = 128  # it is also the user's name (users.name is 128 long)
# Rate limits: failures counted over the window (a success of the same account clears its count)
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_FAILURES_PER_ACCOUNT = 5
LOGIN_FAILURES_PER_ADDRESS = 20

_hasher = PasswordHash((Argon2Hasher(),))
_dummy_hash: str | None = None  # verified for unknown e-mails, so they take as long as known ones


class AccountError(AcademicHubError):
    """An account operation refused: a taken or malformed e-mail, a weak password, an unknown user."""


class LoginRefused(AccountError):
    """Wrong e-mail or password, or a disabled account (the message never says which)."""


class LoginThrottled(AccountError):
    """Too many failed logins for this account or from this address; try again later."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request is, as the accounts know it (the web turns it into a Viewer)."""
    user_id: int
    email: str | None
    is_admin: bool
    via: str  # session | token | proxy | oidc | local
    can_write: bool = True
    session_id: str | None = None
    locale: str | None = None  # the language the user chose on /account (pages follow it)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def normalize_email(email: str) -> str:
    """The stored form of an e-mail: trimmed and lower-cased; AccountError when it is not one."""
    email = (email or "").strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in email) or len(email) > EMAIL_MAX:
        raise AccountError.translatable("{email!r} is not an e-mail address", email=email[:80])
    return email


def check_password(password: str) -> None:
    if len(password or "") < PASSWORD_MIN:
        raise AccountError.translatable("a password needs at least {count} characters", count=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        raise AccountError.translatable("a password has at most {count} characters", count=PASSWORD_MAX)


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher.hash(password)


def _verify(password: str, password_hash: str | None) -> bool:
    global _dummy_hash
    if password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
        _hasher.verify(password or "", _dummy_hash)
        return False
    try:
        return _hasher.verify(password or "", password_hash)
    except Exception:  # a hash we cannot read is a refusal, not a crash
        return False


# ----------------------------------------------------------------------------- audit


def record_audit(hub, action: str, *, actor_id: int | None = None, target: str | None = None,
                 details: dict | None = None, address: str | None = None, conn=None) -> None:
    """One line of the audit log (login, logout, user_created, password_changed, token_created, ...).
    `conn`: write inside the caller's transaction."""
    if conn is not None:
        store.insert_audit(conn, at=hub.now(), actor_id=actor_id, action=action, target=target, details=details,
                           address=address)
        return
    with hub.writing() as own:
        store.insert_audit(own, at=hub.now(), actor_id=actor_id, action=action, target=target, details=details,
                           address=address)


# ----------------------------------------------------------------------------- users


def count_accounts(hub) -> int:
    with hub.reading() as conn:
        return store.count_accounts(conn)


def list_users(hub) -> list[store.Account]:
    with hub.reading() as conn:
        return store.list_accounts(conn)


def get_user(hub, user_id: int) -> store.Account | None:
    with hub.reading() as conn:
        return store.account_by_id(conn, user_id)


def find_user(hub, email: str) -> store.Account | None:
    with hub.reading() as conn:
        return store.account_by_email(conn, normalize_email(email))


def create_user(hub, email: str, password: str | None, *, is_admin: bool = False, actor_id: int | None = None,
                address: str | None = None, conn=None) -> int:
    """A new account (password None: it logs in only through an external identity). The first
    account is an administrator and takes over the local user's radars."""
    email = normalize_email(email)
    password_hash = hash_password(password) if password is not None else None
    if conn is None:
        with hub.writing() as own:
            return _create(hub, own, email, password_hash, is_admin, actor_id, address)
    return _create(hub, conn, email, password_hash, is_admin, actor_id, address)


def _create(hub, conn, email: str, password_hash: str | None, is_admin: bool, actor_id: int | None,
            address: str | None) -> int:
    from ..store.database import lock_for_writing

    lock_for_writing(conn)  # two "first accounts" at once: one of them is second
    if store.account_by_email(conn, email) is not None or store.name_taken(conn, email):
        raise AccountError.translatable("an account for {email} already exists", email=email)
    first = store.count_accounts(conn) == 0
    now = hub.now()
    user_id = store.insert_account(conn, email=email, name=email, password_hash=password_hash,
                                   is_admin=is_admin or first, now=now)
    moved = store.adopt_local_user(conn, user_id) if first else 0
    store.insert_audit(conn, at=now, actor_id=actor_id, action="user_created", target=email,
                       details={"is_admin": is_admin or first, "radars_adopted": moved}, address=address)
    return user_id


def disable_user(hub, email: str, *, actor_id: int | None = None, address: str | None = None) -> None:
    """Disabled: no login, its sessions revoked, its tokens refused (until enabled again)."""
    email = normalize_email(email)
    with hub.writing() as conn:
        account = store.account_by_email(conn, email)
        if account is None:
            raise AccountError.translatable("no account {email}", email=email)
        now = hub.now()
        store.set_disabled(conn, account.id, now)
        store.revoke_sessions_of(conn, account.id, now)
        store.insert_audit(conn, at=now, actor_id=actor_id, action="user_disabled", target=email, details={},
                           address=address)


def enable_user(hub, email: str, *, actor_id: int | None = None, address: str | None = None) -> None:
    email = normalize_email(email)
    with hub.writing() as conn:
        account = store.account_by_email(conn, email)
        if account is None:
            raise AccountError.translatable("no account {email}", email=email)
        store.set_disabled(conn, account.id, None)
        store.insert_audit(conn, at=hub.now(), actor_id=actor_id, action="user_enabled", target=email, details={},
                           address=address)


def set_password(hub, user_id: int, new_password: str, *, actor_id: int | None = None, address: str | None = None,
                 keep_session: str | None = None) -> None:
    """A new password (an admin's reset or the user's own change): every session but `keep_session`
    is revoked."""
    password_hash = hash_password(new_password)
    with hub.writing() as conn:
        account = store.account_by_id(conn, user_id)
        if account is None or account.email is None:
            raise AccountError.translatable("no such account")
        now = hub.now()
        store.set_password_hash(conn, user_id, password_hash, now)
        store.revoke_sessions_of(conn, user_id, now, keep=keep_session)
        store.insert_audit(conn, at=now, actor_id=actor_id if actor_id is not None else user_id,
                           action="password_changed", target=account.email, details={}, address=address)


def change_password(hub, user_id: int, old_password: str, new_password: str, *, session_id: str | None = None,
                    address: str | None = None) -> None:
    """The user's own change: the old password first; other sessions are logged out."""
    account = get_user(hub, user_id)
    if account is None or not _verify(old_password, account.password_hash):
        raise LoginRefused.translatable("the current password is wrong")
    set_password(hub, user_id, new_password, address=address, keep_session=session_id)


def set_language(hub, user_id: int, locale: str | None) -> None:
    with hub.writing() as conn:
        store.set_locale(conn, user_id, locale)


def authenticate(hub, email: str, password: str, *, address: str | None = None) -> store.Account:
    """The account these credentials open; LoginThrottled past the rate limits, else LoginRefused
    for anything wrong (unknown e-mail, wrong password, disabled)."""
    key = (email or "").strip().lower()[:255]
    now = hub.now()
    since = now - LOGIN_WINDOW
    with hub.reading() as conn:
        throttled = (store.failures_since(conn, since, email=key) >= LOGIN_FAILURES_PER_ACCOUNT
                     or store.failures_since(conn, since, address=address) >= LOGIN_FAILURES_PER_ADDRESS)
        account = store.account_by_email(conn, key) if key else None
    if throttled:
        with hub.writing() as conn:
            store.insert_audit(conn, at=now, actor_id=None, action="login_throttled", target=key, details={},
                               address=address)
        raise LoginThrottled.translatable("too many failed logins; try again in {minutes} minutes",
                                          minutes=int(LOGIN_WINDOW.total_seconds() // 60))
    good = _verify(password, account.password_hash if account is not None else None)
    ok = good and account is not None and account.disabled_at is None
    with hub.writing() as conn:
        store.insert_login_attempt(conn, email=key, address=address, succeeded=ok, now=now)
        store.insert_audit(conn, at=now, actor_id=account.id if ok else None, action="login" if ok else "login_failed",
                           target=key, details={} if ok or account is None or good else {"reason": "password"},
                           address=address)
    if not ok:
        raise LoginRefused.translatable("wrong e-mail or password")
    return account


def login_external(hub, email: str, *, via: str, create: bool = False, is_admin: bool = False,
                   address: str | None = None) -> store.Account:
    """The account an external identity (OpenID Connect, a trusted proxy header) names: found by
    e-mail, or created without a password when `create`; LoginRefused when missing or disabled."""
    email = normalize_email(email)
    with hub.writing() as conn:
        account = store.account_by_email(conn, email)
        if account is None:
            if not create:
                raise LoginRefused.translatable("no account {email}", email=email)
            _create(hub, conn, email, None, is_admin, None, address)
            account = store.account_by_email(conn, email)
        if account.disabled_at is not None:
            raise LoginRefused.translatable("wrong e-mail or password")
        store.insert_audit(conn, at=hub.now(), actor_id=account.id, action="login", target=email,
                           details={"via": via}, address=address)
    return account


# ----------------------------------------------------------------------------- sessions


def start_session(hub, user_id: int, *, address: str | None = None, user_agent: str | None = None) -> str:
    """A new session for the user: the cookie's token (the store keeps only its digest)."""
    token = secrets.token_urlsafe(32)
    now = hub.now()
    with hub.writing() as conn:
        store.insert_session(conn, session_id=_digest(token), user_id=user_id, now=now, expires_at=now + SESSION_LIFETIME,
                             address=address, user_agent=user_agent)
    return token


def session_identity(hub, token: str | None) -> Identity | None:
    """The identity behind a session cookie; None when forged, expired, revoked, or its user disabled."""
    if not token or len(token) > 128:
        return None
    session_id = _digest(token)
    now = hub.now()
    with hub.reading() as conn:
        row = store.find_session(conn, session_id)
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        account = store.account_by_id(conn, row.user_id)
    if account is None or account.disabled_at is not None:
        return None
    if now - row.last_seen_at >= SESSION_TOUCH_EVERY:
        with hub.writing() as conn:
            store.touch_session(conn, session_id, now, now + SESSION_LIFETIME)
    return Identity(user_id=account.id, email=account.email, is_admin=account.is_admin, via="session", locale=account.locale,
                    session_id=session_id)


def end_session(hub, token: str | None, *, address: str | None = None) -> None:
    """Logout: the session is revoked (its cookie then opens nothing)."""
    if not token:
        return
    session_id = _digest(token)
    with hub.writing() as conn:
        row = store.find_session(conn, session_id)
        if row is None:
            return
        store.revoke_session(conn, session_id, hub.now())
        store.insert_audit(conn, at=hub.now(), actor_id=row.user_id, action="logout", target=None, details={},
                           address=address)


def revoke_session(hub, user_id: int, session_id: str) -> bool:
    """One of the user's own sessions (from the account page's list)."""
    with hub.writing() as conn:
        return store.revoke_session(conn, session_id, hub.now(), user_id=user_id) == 1


def end_all_sessions(hub, user_id: int, *, address: str | None = None) -> int:
    """"Log out everywhere"."""
    with hub.writing() as conn:
        count = store.revoke_sessions_of(conn, user_id, hub.now())
        store.insert_audit(conn, at=hub.now(), actor_id=user_id, action="logout_everywhere", target=None,
                           details={"sessions": count}, address=address)
    return count


def sessions_of(hub, user_id: int) -> list[store.SessionRow]:
    with hub.reading() as conn:
        return store.live_sessions(conn, user_id, hub.now())


def csrf_token(settings, session_id: str) -> str:
    """The form token of a session: derived from its id with the installation key (nothing stored)."""
    return hmac.new(signing_key(settings), f"csrf\n{session_id}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(settings, session_id: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(settings, session_id), given or "")


# ----------------------------------------------------------------------------- API tokens


def create_token(hub, user_id: int, name: str, scope: str = "read", *, address: str | None = None) -> tuple[int, str]:
    """A new API token: (its id, the secret, shown this once)."""
    name = " ".join((name or "").split())[:128]
    if not name:
        raise AccountError.translatable("a token needs a name")
    if scope not in SCOPES:
        raise AccountError.translatable("scope must be read or write")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with hub.writing() as conn:
        token_id = store.insert_token(conn, user_id=user_id, token_hash=_digest(secret), name=name, scope=scope,
                                      now=hub.now())
        store.insert_audit(conn, at=hub.now(), actor_id=user_id, action="token_created", target=name,
                           details={"scope": scope, "token_id": token_id}, address=address)
    return token_id, secret


def tokens_of(hub, user_id: int) -> list[store.TokenRow]:
    with hub.reading() as conn:
        return store.list_tokens(conn, user_id)


def revoke_token(hub, user_id: int, token_id: int, *, address: str | None = None) -> bool:
    with hub.writing() as conn:
        done = store.revoke_token(conn, token_id, user_id, hub.now()) == 1
        if done:
            store.insert_audit(conn, at=hub.now(), actor_id=user_id, action="token_revoked", target=str(token_id),
                               details={}, address=address)
    return done


def token_identity(hub, secret: str | None) -> Identity | None:
    """The identity behind a bearer token; None when unknown, revoked, or its user disabled."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
        return None
    with hub.reading() as conn:
        row = store.find_token(conn, _digest(secret))
        if row is None or row.revoked_at is not None:
            return None
        account = store.account_by_id(conn, row.user_id)
    if account is None or account.disabled_at is not None:
        return None
    now = hub.now()
    if row.last_used_at is None or now - row.last_used_at >= SESSION_TOUCH_EVERY:
        with hub.writing() as conn:
            store.touch_token(conn, row.id, now)
    return Identity(user_id=account.id, email=account.email, is_admin=account.is_admin, via="token", locale=account.locale,
                    can_write=row.scope == "write")


# ----------------------------------------------------------------------------- invitations


def create_invitation(hub, email: str, *, invited_by: int | None, is_admin: bool = False,
                      address: str | None = None) -> str:
    """An invitation for `email`: the secret for its link (kept hashed), valid INVITATION_LIFETIME."""
    email = normalize_email(email)
    secret = secrets.token_urlsafe(32)
    now = hub.now()
    with hub.writing() as conn:
        if store.account_by_email(conn, email) is not None:
            raise AccountError.translatable("an account for {email} already exists", email=email)
        store.insert_invitation(conn, token_hash=_digest(secret), email=email, invited_by=invited_by,
                                is_admin=is_admin, now=now, expires_at=now + INVITATION_LIFETIME)
        store.insert_audit(conn, at=now, actor_id=invited_by, action="user_invited", target=email,
                           details={"is_admin": is_admin}, address=address)
    return secret


def invitation_email(hub, secret: str) -> str | None:
    """The e-mail an unused, unexpired invitation is for (None otherwise)."""
    with hub.reading() as conn:
        row = store.find_invitation(conn, _digest(secret or ""))
    if row is None or row.used_at is not None or row.expires_at <= hub.now():
        return None
    return row.email


def accept_invitation(hub, secret: str, password: str, *, address: str | None = None) -> int:
    """The invited account, created with this password; AccountError for a used/expired/unknown one."""
    password_hash = hash_password(password)
    with hub.writing() as conn:
        row = store.find_invitation(conn, _digest(secret or ""))
        if row is None or row.used_at is not None or row.expires_at <= hub.now():
            raise AccountError.translatable("this invitation is not valid (used, expired or unknown)")
        if not store.use_invitation(conn, row.id, hub.now()):
            raise AccountError.translatable("this invitation is not valid (used, expired or unknown)")
        return _create(hub, conn, row.email, password_hash, row.is_admin, row.invited_by, address)


# ----------------------------------------------------------------------------- whose data


def local_user_id(hub) -> int | None:
    """Whose data the single-user setup (and the CLI without --user) acts on: the one account when
    exactly one exists, else the implicit local user (None before it is created)."""
    with hub.reading() as conn:
        only = store.only_account_id(conn)
        if only is not None:
            return only
        if store.count_accounts(conn) > 1:
            return None
        return default_user_id(conn)


def local_user(hub) -> int:
    """As local_user_id, creating the implicit local user on first write."""
    found = local_user_id(hub)
    if found is not None:
        return found
    from ..store.radars import default_user

    with hub.writing() as conn:
        if (count := store.count_accounts(conn)) > 1:
            raise several_accounts(count)
        return store.only_account_id(conn) or default_user(conn)


def several_accounts(count: int) -> AccountError:
    """The refusal of a CLI command on one user's data when the store has `count` (>= 2) accounts and
    none was named: it says the fix."""
    return AccountError.translatable("this store has {count} accounts: give --user EMAIL (or set ACADEMICHUB_USER)",
                                     count=count)


def user_for_cli(hub, email: str | None) -> int:
    """The user a CLI command acts as: --user EMAIL, else the single account or the local user."""
    if email:
        account = find_user(hub, email)
        if account is None:
            raise AccountError.translatable("no account {email}", email=normalize_email(email))
        return account.id
    if (count := count_accounts(hub)) > 1:
        raise several_accounts(count)
    return local_user(hub)


def act_for_cli(hub, email: str | None, *, required: bool) -> None:
    """Make a CLI command's user the acting one (store/radars.py). A named account (the `user`
    setting, `--user EMAIL`) always; with none named, a command on one user's data (`required`) is
    refused on a store of two or more accounts, since acting on nobody answers with empty lists and
    "no radar named X" instead of an error. Otherwise the store's default owner (the single account,
    or the local user) is the user, as in the single-user set-up; nothing is created by reading."""
    if email:
        act_for_process(user_for_cli(hub, email))
        return
    act_for_process(None)  # nothing left from an earlier command run in this process (tests)
    if required and (count := count_accounts(hub)) > 1:
        raise several_accounts(count)


def cleanup(hub) -> tuple[int, int]:
    """Forget sessions dead for a day and login attempts older than the rate-limit window."""
    now = hub.now()
    with hub.writing() as conn:
        return (store.delete_dead_sessions(conn, now - timedelta(days=1)),
                store.delete_login_attempts(conn, now - LOGIN_WINDOW))


__all__ = [
    "DEFAULT_USER", "SESSION_COOKIE", "act_for_cli", "act_for_process", "acting_as", "AccountError", "Identity", "LoginRefused", "LoginThrottled", "accept_invitation",
    "authenticate", "change_password", "cleanup", "count_accounts", "create_invitation", "create_token", "create_user",
    "csrf_token", "csrf_valid", "disable_user", "enable_user", "end_all_sessions", "end_session", "find_user",
    "get_user", "invitation_email", "list_users", "local_user", "local_user_id", "login_external", "normalize_email",
    "record_audit", "revoke_session", "revoke_token", "session_identity", "sessions_of", "set_language",
    "set_password", "several_accounts", "start_session", "token_identity", "tokens_of", "user_for_cli",
]
