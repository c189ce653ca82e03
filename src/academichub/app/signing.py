"""Signed, expiring tokens for links that act without a login (a digest's "like" link, an
unsubscribe link, a password-reset link) and for cookies. One key per installation: the
`secret_key` setting, else a random key written once to `data_dir/secret_key` (mode 0600), so
links survive restarts and every worker process of one store agrees on it.

A token names its purpose; a token made for one purpose never verifies for another."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from pathlib import Path

from ..errors import AcademicHubError
from ..settings import Settings

_lock = threading.Lock()


class BadSignature(AcademicHubError):
    """A token that was forged, altered, made for another purpose, or has expired."""


def signing_key(settings: Settings) -> bytes:
    """The installation's key (created on first use when the setting is empty)."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value().encode("utf-8")
    path = Path(settings.data_dir) / "secret_key"
    with _lock:
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48).encode("ascii")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its key
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as out:
            out.write(key)
        return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, body: str) -> str:
    return _b64(hmac.new(key, f"{purpose}\n{body}".encode("utf-8"), hashlib.sha256).digest())


def sign(key: bytes, purpose: str, payload: dict, *, max_age: float | None, now: float | None = None) -> str:
    """A URL-safe token carrying `payload` (JSON) for `purpose`, valid `max_age` seconds (None: always)."""
    issued = time.time() if now is None else now
    data = {"p": payload, "e": None if max_age is None else int(issued + max_age)}
    body = _b64(json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{body}.{_mac(key, purpose, body)}"


def verify(key: bytes, purpose: str, token: str, *, now: float | None = None) -> dict:
    """The payload of a good token; BadSignature for anything else."""
    body, _, mac = (token or "").partition(".")
    if not body or not mac or not hmac.compare_digest(mac, _mac(key, purpose, body)):
        raise BadSignature(f"invalid {purpose} token")
    try:
        data = json.loads(_unb64(body))
    except ValueError as exc:
        raise BadSignature(f"invalid {purpose} token") from exc
    expires = data.get("e")
    if expires is not None and (time.time() if now is None else now) > expires:
        raise BadSignature(f"expired {purpose} token")
    return data.get("p") or {}
