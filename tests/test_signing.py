"""Signed links: a token verifies only for its purpose, until it expires, and not once altered; the
installation key is created once and shared by every process of one data_dir."""

from __future__ import annotations

import pytest

from academichub.app.signing import BadSignature, sign, signing_key, verify
from academichub.settings import Settings


def test_key_is_created_once_and_private(tmp_path):
    settings = Settings(data_dir=tmp_path)
    first = signing_key(settings)
    assert first == signing_key(Settings(data_dir=tmp_path))
    assert len(first) >= 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_configured_key_wins(tmp_path):
    assert signing_key(Settings(data_dir=tmp_path, secret_key="s3cret")) == b"s3cret"
    assert not (tmp_path / "secret_key").exists()


def test_token_round_trip_purpose_expiry_and_tampering():
    key = b"k" * 32
    token = sign(key, "like", {"paper": 7, "user": 2}, max_age=60, now=1000.0)
    assert verify(key, "like", token, now=1059.0) == {"paper": 7, "user": 2}
    with pytest.raises(BadSignature, match="expired"):
        verify(key, "like", token, now=1061.0)
    with pytest.raises(BadSignature, match="invalid"):
        verify(key, "dismiss", token, now=1000.0)
    with pytest.raises(BadSignature, match="invalid"):
        verify(b"other-key", "like", token, now=1000.0)
    body, mac = token.split(".")
    forged = sign(key, "like", {"paper": 8, "user": 2}, max_age=60, now=1000.0).split(".")[0]
    with pytest.raises(BadSignature):
        verify(key, "like", f"{forged}.{mac}", now=1000.0)
    for junk in ("", ".", "abc", "abc.def"):
        with pytest.raises(BadSignature):
            verify(key, "like", junk)
    forever = sign(key, "feed", {"u": 1}, max_age=None, now=0.0)
    assert verify(key, "feed", forever, now=10**10) == {"u": 1}
