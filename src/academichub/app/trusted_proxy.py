"""Sign-in by an authenticating reverse proxy (oauth2-proxy, Authelia, a web server's auth module):
the proxy logs the user in and names them in a header (`trusted_proxy_header`). The header is
believed only when the request's direct peer, the TCP address, is one of `trusted_proxies`:
anyone can send the header, only the proxy can be that address. `X-Forwarded-For` is never read."""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from ..errors import AcademicHubError
from . import accounts

log = logging.getLogger(__name__)


@lru_cache(maxsize=32)
def _networks(spec: str) -> tuple:
    found = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            log.warning("trusted_proxies: %r is not an address or CIDR; ignored", item)
    return tuple(found)


def peer_is_trusted(settings, peer: str | None) -> bool:
    """Whether the direct peer is one of `trusted_proxies` (none are by default)."""
    if not settings.trusted_proxies or not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.strip("[]"))
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None) is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(settings.trusted_proxies))


def proxy_identity(hub, settings, header_value: str | None, peer: str | None) -> accounts.Identity | None:
    """The identity a trusted proxy vouches for; None when the header is absent, the peer is not
    trusted, or the e-mail has no usable account (then the request is as if the header were not there)."""
    if not settings.trusted_proxy_header or not header_value or not peer_is_trusted(settings, peer):
        return None
    try:
        email = accounts.normalize_email(header_value)
        account = accounts.find_user(hub, email)
        if account is None:
            if not settings.trusted_proxy_auto_create:
                return None
            account = accounts.login_external(hub, email, via="proxy", create=True, address=peer)
    except AcademicHubError:  # not an e-mail, a race on creation, a disabled account
        return None
    if account.disabled_at is not None:
        return None
    return accounts.Identity(user_id=account.id, email=account.email, is_admin=account.is_admin, via="proxy",
                              locale=account.locale)
