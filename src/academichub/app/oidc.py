"""Sign-in through an OpenID Connect provider (Keycloak, Authentik, Google, a university's IdP),
with Authlib: discovery from `<oidc_issuer>/.well-known/openid-configuration`, the
authorization-code flow with PKCE (S256), `state` and `nonce`, and an ID token whose signature is
checked against the provider's JWKS and whose `iss`, `aud`, `exp`, `iat` and `nonce` are
checked. The account is the one with the token's *verified* e-mail (created only when
`oidc_auto_create`); then the caller starts an ordinary server-side session.

Between the two legs the browser holds the flow's secrets (state, nonce, PKCE verifier, where to
go next) in a short-lived cookie signed with the installation key (app/signing.py): nothing is
stored server-side, and a cookie made for another browser's flow, altered or stale, verifies
nothing."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
import warnings

import httpx
from authlib.integrations.httpx_client import OAuth2Client

with warnings.catch_warnings():  # authlib.jose stays until Authlib 2.0; joserfc is not a dependency
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.jose.errors import JoseError
    from authlib.oidc.core import CodeIDToken
try:  # Authlib >= 1.7 checks claims with joserfc, whose errors are its own
    from joserfc.errors import JoseError as _JoserfcError

    TOKEN_ERRORS: tuple = (JoseError, _JoserfcError)
except ImportError:
    TOKEN_ERRORS = (JoseError,)

from ..errors import AcademicHubError
from . import accounts
from .signing import BadSignature, sign, signing_key, verify

FLOW_PURPOSE = "oidc_flow"
FLOW_LIFETIME = 600  # seconds the provider may take to send the browser back
DISCOVERY_TTL = 3600  # seconds a provider's metadata and keys are reused
CLOCK_LEEWAY = 60  # seconds of clock difference tolerated on exp/iat
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]  # no HS*/none
_jwt = JsonWebToken(ALGORITHMS)
_cache: dict[str, tuple[float, dict]] = {}
_cache_lock = threading.Lock()


class OidcError(AcademicHubError):
    """The OpenID Connect sign-in failed: the provider unreachable or odd, or its answer not to be believed."""


def enabled(settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def _get_json(settings, url: str) -> dict:
    try:
        response = httpx.get(url, timeout=settings.http_timeout, follow_redirects=False,
                             headers={"User-Agent": settings.full_user_agent, "Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcError(f"{url}: {exc}") from exc
    if not isinstance(data, dict):
        raise OidcError(f"{url}: not a JSON object")
    return data


def provider(settings, *, refresh: bool = False) -> dict:
    """The issuer's metadata, its keys under "jwks" (cached DISCOVERY_TTL; refresh: fetch again)."""
    issuer = settings.oidc_issuer.rstrip("/")
    with _cache_lock:
        found = _cache.get(issuer)
    if found is not None and not refresh and time.monotonic() - found[0] < DISCOVERY_TTL:
        return found[1]
    url = issuer + "/.well-known/openid-configuration"
    metadata = _get_json(settings, url)
    if str(metadata.get("issuer", "")).rstrip("/") != issuer:
        raise OidcError(f"{url}: says issuer {metadata.get('issuer')!r}, not {issuer!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(metadata.get(key), str):
            raise OidcError(f"{url}: no {key}")
    metadata = {**metadata, "jwks": _get_json(settings, metadata["jwks_uri"])}
    with _cache_lock:
        _cache[issuer] = (time.monotonic(), metadata)
    return metadata


def _client(settings, redirect_uri: str) -> OAuth2Client:
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    return OAuth2Client(client_id=settings.oidc_client_id, client_secret=secret, scope=settings.oidc_scopes,
                        redirect_uri=redirect_uri, code_challenge_method="S256",
                        token_endpoint_auth_method="client_secret_post" if secret else "none",
                        timeout=settings.http_timeout)


def begin(hub, redirect_uri: str, next_path: str) -> tuple[str, str]:
    """(the provider's authorization URL to send the browser to, the signed flow cookie)."""
    settings = hub.settings
    metadata = provider(settings)
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    with _client(settings, redirect_uri) as client:
        url, _ = client.create_authorization_url(metadata["authorization_endpoint"], state=state, nonce=nonce,
                                                 code_verifier=verifier)
    flow = sign(signing_key(settings), FLOW_PURPOSE, {"s": state, "n": nonce, "v": verifier, "next": next_path},
                max_age=FLOW_LIFETIME)
    return url, flow


def finish(hub, flow_cookie: str | None, params: dict[str, str], redirect_uri: str, *,
           address: str | None = None, user_agent: str | None = None) -> tuple[str, str]:
    """The provider sent the browser back: (a new session's cookie token, where to go next).
    OidcError (or accounts.LoginRefused) when anything does not hold; then no session exists."""
    settings = hub.settings
    try:
        flow = verify(signing_key(settings), FLOW_PURPOSE, flow_cookie or "")
    except BadSignature as exc:
        raise OidcError("the sign-in took too long or was not started here; try again") from exc
    if not hmac.compare_digest(str(params.get("state") or ""), str(flow.get("s") or "")):
        raise OidcError("the provider's answer does not belong to this sign-in (state differs)")
    if params.get("error"):
        raise OidcError(f"the provider refused: {str(params['error'])[:100]}")
    code = params.get("code")
    if not code:
        raise OidcError("the provider sent no authorization code")
    metadata = provider(settings)
    try:
        with _client(settings, redirect_uri) as client:
            token = client.fetch_token(metadata["token_endpoint"], grant_type="authorization_code", code=code,
                                       code_verifier=flow["v"])
    except Exception as exc:  # authlib's OAuthError, httpx errors: the exchange failed
        raise OidcError(f"{metadata['token_endpoint']}: the code exchange failed ({exc})") from exc
    claims = verify_id_token(settings, metadata, token.get("id_token"), nonce=flow["n"],
                             access_token=token.get("access_token"))
    email = claims.get("email")
    if not email or claims.get("email_verified") is not True:
        raise OidcError("the provider vouched for no verified e-mail address")
    account = accounts.login_external(hub, email, via="oidc", create=settings.oidc_auto_create, address=address)
    session = accounts.start_session(hub, account.id, address=address, user_agent=user_agent)
    return session, flow.get("next") or "/"


def verify_id_token(settings, metadata: dict, id_token: str | None, *, nonce: str, access_token: str | None) -> dict:
    """The ID token's claims once its signature (the issuer's JWKS), iss, aud, exp, iat and nonce hold."""
    if not id_token:
        raise OidcError("the provider sent no ID token")
    options = {"iss": {"essential": True, "value": metadata["issuer"]},
               "aud": {"essential": True, "value": settings.oidc_client_id},
               "exp": {"essential": True}, "nonce": {"essential": True}}
    params = {"nonce": nonce, "client_id": settings.oidc_client_id, "access_token": access_token}
    for attempt in (0, 1):  # a key we do not know yet: the provider rotated; fetch its keys once more
        keys = JsonWebKey.import_key_set(metadata["jwks"])
        try:
            claims = _jwt.decode(id_token, keys, claims_cls=CodeIDToken, claims_options=options, claims_params=params)
            claims.validate(leeway=CLOCK_LEEWAY)
            return dict(claims)
        except TOKEN_ERRORS as exc:
            if attempt == 0 and type(exc).__name__ in ("KeyMismatchError", "BadSignatureError"):
                metadata = provider(settings, refresh=True)
                continue
            raise OidcError(f"the ID token was refused: {getattr(exc, 'error', '') or type(exc).__name__}") from exc
        except ValueError as exc:  # no key with that kid
            if attempt == 0:
                metadata = provider(settings, refresh=True)
                continue
            raise OidcError(f"the ID token was refused: {exc}") from exc
    raise OidcError("the ID token was refused")
