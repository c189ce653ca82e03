"""Who is asking: the one place a route learns whose radars, feedback and settings it serves.

`ViewerGate`, a pure ASGI middleware in front of every route, resolves each request's viewer
and puts it on `request.state.viewer`; routes read it through `viewer(request)` and never look
anywhere else. In order:

1. The Host header must be one of `allowed_hosts` (400 otherwise: DNS rebinding).
2. `Authorization: Bearer ahk_...` is an API token (a bad one is 401, never a fallback); else the
   session cookie; else, in the single-user setup, the local user: the server listens on a
   loopback address, public_url (if set) is a loopback one, the client is loopback and the store
   holds at most one account. Anyone else is anonymous.
3. An anonymous request reaches only /static, /login, /healthz and /setup (the first-run page);
   any other page redirects to /login?next=... (to /setup while no account exists), the JSON
   API answers 401.
4. A state-changing request (not GET/HEAD/OPTIONS) must come from our own pages (Sec-Fetch-Site,
   else Origin) unless it carries a bearer token, and a read-scoped token cannot make one (403).
   A session's form and fetch posts also carry its CSRF token (`require_csrf`, an app-wide
   dependency, since it may read the form body)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ..app import accounts, trusted_proxy
from ..app.accounts import acting_as

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PREFIXES = ("/static/", "/feeds/")  # a feed URL carries its own signed credential
# Links from a digest: their signed, expiring token is the whole credential, so a mail client's
# one-click POST (RFC 8058: from its own servers, any Origin or none) is no cross-site forgery.
SIGNED_LINK_PATHS = frozenset({"/digest/act", "/digest/unsubscribe"})
PUBLIC_PATHS = frozenset({"/login", "/healthz", "/setup",
                          "/login/forgot", "/login/reset", "/invite", "/login/oidc", "/login/oidc/callback"}) | SIGNED_LINK_PATHS
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Viewer:
    user_id: int | None  # None: nobody has written anything yet (the local user is created on first write)
    is_admin: bool = True
    via: str = "local"  # local | session | token | proxy | oidc | anonymous
    can_write: bool = True  # a read-scoped API token cannot
    email: str | None = None
    session_id: str | None = None  # the session's id (its cookie token's digest), for CSRF and "this session"
    locale: str | None = None  # the account's chosen language

    @property
    def signed_in(self) -> bool:
        return self.via != "anonymous"


ANONYMOUS = Viewer(user_id=None, is_admin=False, via="anonymous", can_write=False)


def viewer(request: Request) -> Viewer:
    """The identity of this request (reading never creates a user)."""
    found = getattr(request.state, "viewer", None)
    if found is not None:
        return found
    return Viewer(user_id=accounts.local_user_id(request.app.state.hub))  # an app without the gate (never served)


def viewer_user_id(request: Request) -> int:
    """The viewer's user id for a write: the single local user is created when missing."""
    found = viewer(request)
    if found.user_id is not None:
        return found.user_id
    if found.via != "local":
        raise HTTPException(401, "login required")
    return accounts.local_user(request.app.state.hub)


def require_admin(request: Request) -> None:
    """Shared things (sources, the venue catalog) change only by an administrator's hand."""
    if not viewer(request).is_admin:
        raise HTTPException(403, "administrators only")


def csrf_token_of(request: Request) -> str | None:
    """The token a session's forms carry (None without a session: nothing to forge)."""
    found = viewer(request)
    if found.session_id is None:
        return None
    return accounts.csrf_token(request.app.state.settings, found.session_id)


async def require_csrf(request: Request) -> None:
    """Every route's: a session's state-changing request carries its CSRF token (the X-CSRF-Token
    header, or the csrf_token form field). Bearer tokens and the cookie-less local user need none:
    they carry no ambient credential a foreign page could borrow (the gate checks the origin)."""
    found = viewer(request)
    if request.method in SAFE_METHODS or found.session_id is None:
        return
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
    if not accounts.csrf_valid(request.app.state.settings, found.session_id, given):
        raise HTTPException(403, "missing or wrong CSRF token")


def same_origin_headers(headers: Headers) -> bool:
    """A state change must come from our own pages. Browsers say so in Sec-Fetch-Site; under our
    `Referrer-Policy: no-referrer` they send `Origin: null` for a plain form post, so Origin is only
    the fallback for older clients; non-browser clients (curl, tests) send neither."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = headers.get("origin") or headers.get("referer") or ""
    if origin == "null":
        return False
    if not origin:
        return True
    return origin.split("://", 1)[-1].split("/", 1)[0] == headers.get("host", "")


def _hostname(host: str) -> str:
    """The name part of a Host header ('[::1]:8000' -> '::1', 'Example.org:80' -> 'example.org')."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_loopback(name: str | None) -> bool:
    if not name:
        return False
    name = name.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_hosts(settings) -> frozenset[str]:
    if settings.allowed_hosts:
        names = {_hostname(h) for h in settings.allowed_hosts.split(",") if h.strip()}
    else:
        names = set(LOOPBACK_NAMES)
    if settings.public_url:
        public = urlsplit(settings.public_url).hostname
        if public:
            names.add(public.lower())
    return frozenset(names)


def single_user_server(settings) -> bool:
    """Whether this server may treat loopback clients as the single user: it listens on a loopback
    address and is not published under another name (a reverse proxy makes everyone look local)."""
    public = urlsplit(settings.public_url).hostname if settings.public_url else None
    return is_loopback(settings.host) and (public is None or is_loopback(public))


def secure_cookies(settings, scope: Scope) -> bool:
    return scope.get("scheme") == "https" or bool(settings.public_url and settings.public_url.startswith("https:"))


def wants_json(path: str, headers: Headers) -> bool:
    return path.startswith(("/api/", "/openapi")) or path == "/api" or headers.get("accept", "").startswith("application/json")


def setup_token_for(hub, settings) -> str | None:
    """A one-time token for /setup when this server is not single-user and no account exists yet,
    printed in the log, so whoever started the server can create the administrator remotely."""
    if single_user_server(settings) or accounts.count_accounts(hub) != 0:
        return None
    # derived from the installation's key, so every process of `serve --workers N` prints and
    # accepts the same one; it opens nothing once the first account exists
    from ..app.signing import signing_key

    digest = hmac.new(signing_key(settings), b"academichub first-run setup", hashlib.sha256).digest()
    token = base64.urlsafe_b64encode(digest[:18]).decode("ascii")
    log.warning("no account exists yet: open /setup?token=%s to create the administrator account", token)
    return token


class ViewerGate:
    """Pure ASGI middleware (streams untouched): host check, viewer, login gate, origin check."""

    def __init__(self, app: ASGIApp, *, hub, settings, setup_token: str | None = None) -> None:
        self.app = app
        self.hub = hub
        self.settings = settings
        self.hosts = allowed_hosts(settings)
        self.single_user = single_user_server(settings)
        self.setup_token = setup_token
        self._local: tuple | None = None  # (store token, the local viewer then): _kept_local

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if _hostname(headers.get("host", "")) not in self.hosts:
            await _answer(send, 400, {"detail": "host not allowed"})
            return
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        client = (scope.get("client") or ("", 0))[0]
        found = self._kept_local(headers, client)
        if found is None:
            found = await run_in_threadpool(self._resolve, headers, client)
        if found is None:
            await _answer(send, 401, {"detail": "invalid API token"}, extra=[(b"www-authenticate", b"Bearer")])
            return
        scope.setdefault("state", {})["viewer"] = found
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if not found.signed_in and not public:
            if wants_json(path, headers):
                await _answer(send, 401, {"detail": "login required"}, extra=[(b"www-authenticate", b"Bearer")])
                return
            here = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
            target = "/setup" if accounts.count_accounts(self.hub) == 0 else "/login?next=" + quote(here, safe="/")
            await _redirect(send, target)
            return
        if method not in SAFE_METHODS:
            if found.via == "token":
                if not found.can_write:
                    await _answer(send, 403, {"detail": "this API token is read-only"})
                    return
            elif path not in SIGNED_LINK_PATHS and not same_origin_headers(headers):
                await _answer(send, 403, {"detail": "cross-site request refused"})
                return
        with acting_as(found.user_id):  # radar names and ids below mean the viewer's
            await self.app(scope, receive, send)

    def _only_local(self, headers: Headers, client: str) -> bool:
        """Whether only the single-user rule can name this request's viewer (no token, proxy or
        session cookie to check)."""
        return (self.single_user and is_loopback(client) and not headers.get("authorization")
                and not self.settings.trusted_proxy_header and not _cookie(headers, accounts.SESSION_COOKIE))

    def _kept_local(self, headers: Headers, client: str) -> Viewer | None:
        """The local user as resolved for the store's current state, without a thread or a query
        (it depends on the accounts alone, so it holds until the store changes); None: resolve."""
        if not self._only_local(headers, client):
            return None
        kept = self._local
        token = self.hub.data_version.token() if self.hub.data_version.dialect == "sqlite" else None
        if token is not None and kept is not None and kept[0] == token:
            return kept[1]
        return None

    def _resolve(self, headers: Headers, client: str) -> Viewer | None:
        """The viewer; None for a bad bearer token (refused, never treated as anonymous)."""
        if self._only_local(headers, client):
            token = self.hub.data_version.token()  # read before the lookup: a change meanwhile shows next time
            found = self._resolve_uncached(headers, client)
            if token is not None:
                self._local = (token, found)
            return found
        return self._resolve_uncached(headers, client)

    def _resolve_uncached(self, headers: Headers, client: str) -> Viewer | None:
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            identity = accounts.token_identity(self.hub, authorization[7:].strip())
            return None if identity is None else _as_viewer(identity)
        if self.settings.trusted_proxy_header:  # an authenticating reverse proxy (app/trusted_proxy.py)
            identity = trusted_proxy.proxy_identity(self.hub, self.settings, headers.get(self.settings.trusted_proxy_header),
                                                    client)
            if identity is not None:
                return _as_viewer(identity)
        cookie = _cookie(headers, accounts.SESSION_COOKIE)
        if cookie:
            identity = accounts.session_identity(self.hub, cookie)
            if identity is not None:
                return _as_viewer(identity)
        if self.single_user and is_loopback(client) and accounts.count_accounts(self.hub) <= 1:
            return Viewer(user_id=accounts.local_user_id(self.hub), is_admin=True, via="local")
        return ANONYMOUS


def _as_viewer(identity: accounts.Identity) -> Viewer:
    return Viewer(user_id=identity.user_id, is_admin=identity.is_admin, via=identity.via, can_write=identity.can_write,
                  email=identity.email, session_id=identity.session_id, locale=identity.locale)


def _cookie(headers: Headers, name: str) -> str | None:
    from starlette.requests import cookie_parser

    raw = headers.get("cookie")
    return cookie_parser(raw).get(name) if raw else None


async def _answer(send: Send, status: int, body: dict, *, extra: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"cache-control", b"no-store"), *(extra or [])]})
    await send({"type": "http.response.body", "body": data})


async def _redirect(send: Send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0"),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b""})
