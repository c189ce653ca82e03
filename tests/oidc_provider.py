"""A small OpenID provider the OIDC tests start on a local port: discovery, JWKS, an authorization
endpoint that signs a configured person in at once, and a token endpoint that checks the client's
secret, the code's redirect URI and its PKCE verifier (Authlib's S256) before it answers with an
ID token signed by Authlib's JOSE. `tamper` makes it misbehave the ways an attacker or a broken
provider would (another nonce or audience, an expired token, a key the JWKS does not hold)."""

from __future__ import annotations

import secrets
import time
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt

CLIENT_ID = "academichub-test"
CLIENT_SECRET = "provider-test-secret"


@dataclass
class Provider:
    issuer: str = ""
    email: str = "carol@lab.example"
    email_verified: bool = True
    tamper: dict = field(default_factory=dict)  # nonce | aud | exp_offset | foreign_key
    key: object = field(default_factory=lambda: JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"}))
    foreign: object = field(default_factory=lambda: JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"}))
    codes: dict = field(default_factory=dict)
    authorize_requests: list = field(default_factory=list)
    token_requests: list = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/jwks", self.jwks),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
        ])

    async def discovery(self, request: Request):
        return JSONResponse({
            "issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        })

    async def jwks(self, request: Request):
        return JSONResponse({"keys": [self.key.as_dict(is_private=False)]})

    async def authorize(self, request: Request):
        q = dict(request.query_params)
        self.authorize_requests.append(q)
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code" or "openid" not in q.get("scope", "").split():
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": q.get("nonce"), "challenge": q.get("code_challenge"),
                            "method": q.get("code_challenge_method"), "redirect_uri": q["redirect_uri"]}
        return RedirectResponse(q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")}),
                                status_code=302)

    async def token(self, request: Request):
        form = dict(await request.form())
        self.token_requests.append(form)
        grant = self.codes.pop(form.get("code", ""), None)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if (grant is None or form.get("grant_type") != "authorization_code" or grant["method"] != "S256"
                or form.get("redirect_uri") != grant["redirect_uri"]
                or create_s256_code_challenge(form.get("code_verifier", "")) != grant["challenge"]):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "person-1", "aud": self.tamper.get("aud", CLIENT_ID),
                  "iat": now, "exp": now + self.tamper.get("exp_offset", 300),
                  "nonce": self.tamper.get("nonce", grant["nonce"]),
                  "email": self.email, "email_verified": self.email_verified}
        key = self.foreign if self.tamper.get("foreign_key") else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key).decode("ascii")
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                             "id_token": id_token})
