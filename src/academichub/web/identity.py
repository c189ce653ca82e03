"""Who is asking: the one place a route learns whose radars, feedback and settings it serves.

Until accounts exist every request is the single local user (created on first write). The
accounts work (issue 18) replaces the inside of `viewer` with the session, token or proxy
identity its middleware put on `request.state`; routes never look anywhere else."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ..store.radars import default_user, default_user_id


@dataclass(frozen=True)
class Viewer:
    user_id: int | None  # None: nobody has written anything yet (the local user is created on first write)
    is_admin: bool = True
    via: str = "local"  # local | session | token | proxy
    can_write: bool = True  # a read-scoped API token cannot


def viewer(request: Request) -> Viewer:
    """The identity of this request (reading never creates a user)."""
    found = getattr(request.state, "viewer", None)
    if found is not None:
        return found
    with request.app.state.hub.reading() as conn:
        return Viewer(user_id=default_user_id(conn))


def viewer_user_id(request: Request) -> int:
    """The viewer's user id for a write: the single local user is created when missing."""
    found = viewer(request)
    if found.user_id is not None:
        return found.user_id
    with request.app.state.hub.writing() as conn:
        return default_user(conn)
