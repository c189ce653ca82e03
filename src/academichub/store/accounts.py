"""The accounts store: users with a login, their server-side sessions, API tokens, invitations,
the audit log and login attempts. Secrets never reach the store: sessions, tokens and
invitations are kept as the sha256 of their random secret, passwords as an argon2id hash made
above (app/accounts.py). Every function takes an open Connection; the caller owns the
transaction, and passes `now` (the hub's clock) so tests can move time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from .radars import DEFAULT_USER
from .schema import api_tokens, audit_log, invitations, login_attempts, radars, sessions, users


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    email: str | None
    password_hash: str | None
    is_admin: bool
    disabled_at: datetime | None
    password_changed_at: datetime | None
    locale: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    address: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    user_id: int
    name: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


_USER_COLUMNS = (users.c.id, users.c.name, users.c.email, users.c.password_hash, users.c.is_admin,
                 users.c.disabled_at, users.c.password_changed_at, users.c.locale, users.c.created_at)


def _account(row) -> Account | None:
    return None if row is None else Account(*row)


# ----------------------------------------------------------------------------- users


def count_accounts(conn: Connection) -> int:
    """Users with a login (an e-mail); the implicit local user is not one."""
    return conn.execute(select(func.count()).select_from(users).where(users.c.email.is_not(None))).scalar_one()


def only_account_id(conn: Connection) -> int | None:
    """The id of the one account when exactly one exists."""
    rows = conn.execute(select(users.c.id).where(users.c.email.is_not(None)).limit(2)).scalars().all()
    return rows[0] if len(rows) == 1 else None


def account_by_email(conn: Connection, email: str) -> Account | None:
    return _account(conn.execute(select(*_USER_COLUMNS).where(users.c.email == email)).first())


def account_by_id(conn: Connection, user_id: int) -> Account | None:
    return _account(conn.execute(select(*_USER_COLUMNS).where(users.c.id == user_id)).first())


def list_accounts(conn: Connection) -> list[Account]:
    return [Account(*row) for row in conn.execute(
        select(*_USER_COLUMNS).where(users.c.email.is_not(None)).order_by(users.c.id))]


def insert_account(conn: Connection, *, email: str, name: str, password_hash: str | None, is_admin: bool,
                   now: datetime) -> int:
    return conn.execute(
        insert(users).values(name=name, email=email, password_hash=password_hash, is_admin=is_admin, created_at=now,
                             password_changed_at=now if password_hash else None).returning(users.c.id)
    ).scalar_one()


def name_taken(conn: Connection, name: str) -> bool:
    return conn.execute(select(users.c.id).where(users.c.name == name)).scalar() is not None


def adopt_local_user(conn: Connection, user_id: int) -> int:
    """Give the implicit local user's radars (and with them their rules, seeds, feedback, shown
    papers and briefings, which hang off radar ids) and its preferences to `user_id`; how many radars
    moved. The local user row stays, empty."""
    local = conn.execute(select(users.c.id, users.c.locale, users.c.timezone, users.c.briefing_hour)
                         .where(users.c.name == DEFAULT_USER, users.c.email.is_(None))).first()
    if local is None:
        return 0
    moved = conn.execute(update(radars).where(radars.c.user_id == local.id).values(user_id=user_id)).rowcount
    prefs = {k: getattr(local, k) for k in ("locale", "timezone", "briefing_hour") if getattr(local, k) is not None}
    if prefs:
        conn.execute(update(users).where(users.c.id == user_id).values(**prefs))
    return moved


def set_password_hash(conn: Connection, user_id: int, password_hash: str, now: datetime) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash,
                                                                   password_changed_at=now))


def set_disabled(conn: Connection, user_id: int, when: datetime | None) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(disabled_at=when))


def set_locale(conn: Connection, user_id: int, locale: str | None) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(locale=locale))


# ----------------------------------------------------------------------------- sessions


def insert_session(conn: Connection, *, session_id: str, user_id: int, now: datetime, expires_at: datetime,
                   address: str | None, user_agent: str | None) -> None:
    conn.execute(insert(sessions).values(
        id=session_id, user_id=user_id, created_at=now, last_seen_at=now, expires_at=expires_at,
        address=(address or None) and address[:64], user_agent=(user_agent or None) and user_agent[:255]))


def find_session(conn: Connection, session_id: str) -> SessionRow | None:
    row = conn.execute(select(sessions).where(sessions.c.id == session_id)).first()
    return None if row is None else SessionRow(*row)


def touch_session(conn: Connection, session_id: str, now: datetime, expires_at: datetime) -> None:
    conn.execute(update(sessions).where(sessions.c.id == session_id).values(last_seen_at=now, expires_at=expires_at))


def revoke_session(conn: Connection, session_id: str, now: datetime, *, user_id: int | None = None) -> int:
    query = update(sessions).where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
    if user_id is not None:
        query = query.where(sessions.c.user_id == user_id)
    return conn.execute(query.values(revoked_at=now)).rowcount


def revoke_sessions_of(conn: Connection, user_id: int, now: datetime, *, keep: str | None = None) -> int:
    query = update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
    if keep is not None:
        query = query.where(sessions.c.id != keep)
    return conn.execute(query.values(revoked_at=now)).rowcount


def live_sessions(conn: Connection, user_id: int, now: datetime) -> list[SessionRow]:
    rows = conn.execute(select(sessions).where(
        sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None), sessions.c.expires_at > now,
    ).order_by(sessions.c.last_seen_at.desc()))
    return [SessionRow(*row) for row in rows]


def delete_dead_sessions(conn: Connection, before: datetime) -> int:
    """Forget sessions that expired or were revoked before `before`."""
    return conn.execute(delete(sessions).where(
        (sessions.c.expires_at < before) | (sessions.c.revoked_at < before))).rowcount


# ----------------------------------------------------------------------------- API tokens


def insert_token(conn: Connection, *, user_id: int, token_hash: str, name: str, scope: str, now: datetime) -> int:
    return conn.execute(insert(api_tokens).values(
        user_id=user_id, token_hash=token_hash, name=name, scope=scope, created_at=now).returning(api_tokens.c.id)
    ).scalar_one()


_TOKEN_COLUMNS = (api_tokens.c.id, api_tokens.c.user_id, api_tokens.c.name, api_tokens.c.scope,
                  api_tokens.c.created_at, api_tokens.c.last_used_at, api_tokens.c.revoked_at)


def find_token(conn: Connection, token_hash: str) -> TokenRow | None:
    row = conn.execute(select(*_TOKEN_COLUMNS).where(api_tokens.c.token_hash == token_hash)).first()
    return None if row is None else TokenRow(*row)


def list_tokens(conn: Connection, user_id: int) -> list[TokenRow]:
    rows = conn.execute(select(*_TOKEN_COLUMNS).where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
                        .order_by(api_tokens.c.id))
    return [TokenRow(*row) for row in rows]


def touch_token(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


def revoke_token(conn: Connection, token_id: int, user_id: int | None, now: datetime) -> int:
    query = update(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
    if user_id is not None:
        query = query.where(api_tokens.c.user_id == user_id)
    return conn.execute(query.values(revoked_at=now)).rowcount


# ----------------------------------------------------------------------------- invitations


def insert_invitation(conn: Connection, *, token_hash: str, email: str, invited_by: int | None, is_admin: bool,
                      now: datetime, expires_at: datetime) -> int:
    return conn.execute(insert(invitations).values(
        token_hash=token_hash, email=email, invited_by=invited_by, is_admin=is_admin, created_at=now,
        expires_at=expires_at).returning(invitations.c.id)).scalar_one()


def find_invitation(conn: Connection, token_hash: str):
    return conn.execute(select(invitations).where(invitations.c.token_hash == token_hash)).first()


def use_invitation(conn: Connection, invitation_id: int, now: datetime) -> bool:
    """Mark it used; False when another request used it first."""
    return conn.execute(update(invitations).where(invitations.c.id == invitation_id, invitations.c.used_at.is_(None))
                        .values(used_at=now)).rowcount == 1


# ----------------------------------------------------------------------------- audit and rate limits


def insert_audit(conn: Connection, *, at: datetime, actor_id: int | None, action: str, target: str | None,
                 details: dict[str, Any] | None, address: str | None) -> None:
    conn.execute(insert(audit_log).values(at=at, actor_id=actor_id, action=action, target=(target or None) and target[:255],
                                          details=details or {}, address=(address or None) and address[:64]))


def recent_audit(conn: Connection, limit: int = 100) -> list[dict]:
    rows = conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)).mappings()
    return [dict(row) for row in rows]


def insert_login_attempt(conn: Connection, *, email: str, address: str | None, succeeded: bool, now: datetime) -> None:
    conn.execute(insert(login_attempts).values(at=now, email=email[:255], address=(address or None) and address[:64],
                                               succeeded=succeeded))


def failures_since(conn: Connection, since: datetime, *, email: str | None = None, address: str | None = None) -> int:
    """Failed logins after `since` for this e-mail (or from this address), counted back to the last
    success of the same key (a good login clears the slate for its account)."""
    column = login_attempts.c.email if email is not None else login_attempts.c.address
    key = email if email is not None else address
    if key is None:
        return 0
    last_ok = conn.execute(select(func.max(login_attempts.c.at)).where(
        column == key, login_attempts.c.succeeded.is_(True), login_attempts.c.at >= since)).scalar()
    start = max(since, last_ok) if last_ok is not None else since
    return conn.execute(select(func.count()).select_from(login_attempts).where(
        column == key, login_attempts.c.succeeded.is_(False), login_attempts.c.at >= start)).scalar_one()


def delete_login_attempts(conn: Connection, before: datetime) -> int:
    return conn.execute(delete(login_attempts).where(login_attempts.c.at < before)).rowcount


__all__ = [
    "Account", "SessionRow", "TokenRow", "account_by_email", "account_by_id", "adopt_local_user", "count_accounts",
    "delete_dead_sessions", "delete_login_attempts", "failures_since", "find_invitation", "find_session", "find_token",
    "insert_account", "insert_audit", "insert_invitation", "insert_login_attempt", "insert_session", "insert_token",
    "list_accounts", "list_tokens", "live_sessions", "name_taken", "only_account_id", "recent_audit", "revoke_session",
    "revoke_sessions_of", "revoke_token", "set_disabled", "set_locale", "set_password_hash", "touch_session",
    "touch_token", "use_invitation",
]
