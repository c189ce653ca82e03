"""Fetching URLs a user typed in (their own feeds, OPML imports) without letting them reach what only
this server can reach (SSRF): the database admin page on localhost, the cloud metadata service on
169.254.169.254, the router on 192.168.1.1.

A URL passes when it is http(s), carries no user:password@, and its host is, or resolves only to,
public addresses; every resolved address is checked, because an attacker's DNS name can list a
public and a private one. IPv4 hidden in IPv6 (::ffff:127.0.0.1, 6to4) is unwrapped first, and the
old inet_aton spellings that resolvers still accept (http://2130706433/, http://0x7f.1/,
http://0177.1/, http://127.1/) are read as the addresses they are.

Checking a name and then letting the HTTP library resolve it again to connect would let a DNS
server answer "public" to the check and "127.0.0.1" a moment later (DNS rebinding). So
`GuardedTransport` resolves each request's host once, checks every address, and connects to one of
those very addresses (`_PinnedBackend`, a network backend under httpx's pool); TLS SNI, certificate
checking and the Host header still use the name. Redirects are followed by httpx through the same
transport, so every hop is checked and pinned the same way."""

from __future__ import annotations

import ipaddress
import re
import socket
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable

import httpcore
import httpx

from ..errors import SourceError
from .http import pooled_transport

Resolver = Callable[..., list]

_SCHEMES = ("http", "https")
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
_AUTHORITY_END = re.compile(r"[/?#]")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$", re.I)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_public_url(url: str, *, resolver: Resolver = socket.getaddrinfo, allow_private: bool = False) -> str:
    """The URL, stripped, when it may be fetched on a user's behalf; SourceError saying why not.
    `allow_private` (the allow_private_urls setting) skips the address check, never the form check:
    file:, javascript: and user:password@ URLs are refused either way."""
    url, host, port = _checked_form(url)
    if not allow_private:
        _public_addresses(url, host, port, resolver)
    return url


def _checked_form(url: str) -> tuple[str, str, int]:
    """The stripped URL, its host (as resolved: lower case, no final dot) and port, when the URL has
    a form we fetch: http(s), a host, no credentials, no characters that parsers read differently."""
    url = url.strip()
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in url):
        _refuse(url, "spaces, control characters or backslashes in the URL")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise SourceError(f"refused: malformed URL ({exc})", url=url) from exc
    if parsed.scheme not in _SCHEMES:
        _refuse(url, f"scheme {parsed.scheme or '(none)'!r} is not http or https")
    if parsed.userinfo or "@" in _AUTHORITY_END.split(url.split("://", 1)[-1], 1)[0]:
        _refuse(url, "user name or password in the URL")
    host = parsed.raw_host.decode("ascii").rstrip(".").lower()
    if not host:
        _refuse(url, "no host")
    return url, host, parsed.port or (443 if parsed.scheme == "https" else 80)


def _public_addresses(url: str, host: str, port: int, resolver: Resolver) -> list[Address]:
    """Every address the host resolves to (one lookup), when all of them are public."""
    addresses = _addresses(url, host, port, resolver)
    for address in addresses:
        reason = _not_public(address)
        if reason:
            _refuse(url, f"host {host} is {address} ({reason})" if host != str(address) else f"{address} is {reason}")
    return addresses


@dataclass(frozen=True, slots=True)
class _Pin:
    """The checked addresses of the one host the request in flight may connect to."""

    host: str  # as httpcore will ask for it: the URL's host, lower case
    addresses: tuple[Address, ...]


_pinned: ContextVar[_Pin | None] = ContextVar("academichub_pinned_addresses", default=None)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the addresses GuardedTransport checked for this request, never to a fresh lookup
    of the name; a host it was not told about is refused (fail closed)."""

    def __init__(self, network: httpcore.NetworkBackend):
        self._network = network

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        pin = _pinned.get()
        if pin is None or pin.host != host.lower():
            raise SourceError(f"refused: connection to {host}, whose address was not checked", url=host)
        failure: Exception | None = None
        for address in pin.addresses:
            try:
                return self._network.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # the next address of the name, as a resolver-led connect would
                failure = exc
        raise failure  # type: ignore[misc] - a pin always holds at least one address

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise SourceError("refused: unix sockets are not fetched", url=path)

    def sleep(self, seconds: float) -> None:
        self._network.sleep(seconds)


class GuardedTransport(httpx.BaseTransport):
    """A transport that checks every request, redirect hops included, and connects to the address
    it checked. `network` is the backend that opens sockets (tests pass a local stand-in)."""

    def __init__(self, *, resolver: Resolver = socket.getaddrinfo, network: httpcore.NetworkBackend | None = None):
        self._resolver = resolver
        self._inner = pooled_transport(_PinnedBackend(network or httpcore.SyncBackend()))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url, host, port = _checked_form(str(request.url))
        addresses = _public_addresses(url, host, port, self._resolver)
        token = _pinned.set(_Pin(request.url.raw_host.decode("ascii").lower(), tuple(addresses)))
        try:
            return self._inner.handle_request(request)
        finally:
            _pinned.reset(token)

    def close(self) -> None:
        self._inner.close()


def _refuse(url: str, reason: str):
    raise SourceError(f"refused: {reason}", url=url)


def _addresses(url: str, host: str, port: int, resolver: Resolver) -> list[Address]:
    literal = _literal_address(host)
    if literal is not None:
        return [literal]
    if _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        # No top-level domain is numeric: this is an address spelled in a way we do not read.
        _refuse(url, f"host {host} is a numeric address in an unrecognised form")
    try:
        answers = resolver(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise SourceError(f"refused: cannot resolve host {host}: {exc}", url=url) from exc
    addresses = []
    for answer in answers:
        text = str(answer[4][0]).split("%", 1)[0]
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError as exc:
            raise SourceError(f"refused: host {host} resolved to {text!r}, not an address", url=url) from exc
    if not addresses:
        _refuse(url, f"host {host} resolved to no address")
    return addresses


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address written in the host: IPv6, dotted IPv4, or inet_aton's 1-4 parts in decimal,
    octal (leading 0) or hex (0x), e.g. 2130706433, 0x7f.1, 0177.0.0.1, 127.1."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        try:
            if part.lower().startswith("0x"):
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:
            return None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = 0
    for n in leading:
        value = value * 256 + n
    value = value * 256 ** (5 - len(numbers)) + last
    return ipaddress.IPv4Address(value)


def _not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why this address must not be fetched, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            reason = _not_public(embedded)
            return f"IPv4 {embedded} inside IPv6: {reason}" if reason else None
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("shared address space 100.64.0.0/10", address.version == 4 and address in _SHARED_ADDRESS_SPACE),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, applies in checks if applies), None)
