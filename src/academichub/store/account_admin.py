"""What the admin page changes and reads beyond store/accounts.py: an account's administrator
flag, and the audit log with each actor's e-mail (newest first)."""

from __future__ import annotations

from sqlalchemy import Connection, func, select, update

from .schema import audit_log, users


def set_admin(conn: Connection, user_id: int, is_admin: bool) -> int:
    return conn.execute(update(users).where(users.c.id == user_id, users.c.email.is_not(None))
                        .values(is_admin=is_admin)).rowcount


def count_active_admins(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(users).where(
        users.c.is_admin.is_(True), users.c.email.is_not(None), users.c.disabled_at.is_(None))).scalar_one()


def audit_entries(conn: Connection, *, limit: int = 200, offset: int = 0) -> list[dict]:
    """Audit lines, newest first, each with `actor` (the acting account's e-mail, None for the CLI)."""
    rows = conn.execute(
        select(audit_log, users.c.email.label("actor"))
        .select_from(audit_log.outerjoin(users, users.c.id == audit_log.c.actor_id))
        .order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
    ).mappings()
    return [dict(row) for row in rows]


def count_audit_since(conn: Connection, action: str, since, *, target: str | None = None,
                      address: str | None = None) -> int:
    """How many `action` lines since `since` for this target (or from this address): the window a
    rate limit counts over (the reset mails of /login/forgot)."""
    if target is None and address is None:
        return 0
    query = select(func.count()).select_from(audit_log).where(audit_log.c.action == action, audit_log.c.at >= since)
    query = query.where(audit_log.c.target == target) if target is not None else query.where(
        audit_log.c.address == address)
    return conn.execute(query).scalar_one()
