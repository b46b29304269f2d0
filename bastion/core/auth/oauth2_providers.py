"""OAuth2 / OpenID Connect providers: settings, the protocol, and the checks on answers.

A collection's ``oauth2.providers`` entry is completed by a small table of built-in
settings (endpoints, scopes, user-field mapping) or, for OpenID Connect, by the issuer's
discovery document. The authorization URL carries ``state``, a PKCE S256 challenge and,
for OIDC, a ``nonce`` derived from the PKCE verifier: the server keeps nothing between
``auth-methods`` and ``auth-with-oauth2``, yet can bind the id_token to the sign-in.
An id_token is accepted only when signed with a key from the issuer's JWKS by an
asymmetric algorithm, for this client, unexpired, and with the expected nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

if TYPE_CHECKING:
    from authlib.oauth2.rfc6749 import OAuth2Token
    from joserfc.jwk import KeySet

# authlib and joserfc (about 6 MiB, with the web client's httpx) are imported by the
# functions that talk to a provider, so a server that never signs anyone in through
# OAuth2 does not load them.
from bastion.core.ports import WebClient, WebError
from bastion.core.schema.collections import Collection
from bastion.tools.ids import random_string

log = logging.getLogger("bastion.oauth2")

HTTP_TIMEOUT = 10.0
MAX_DOCUMENT = 1024 * 1024  # bytes read from any provider response
DISCOVERY_TTL, JWKS_TTL, JWKS_MIN_REFRESH = 3600.0, 600.0, 30.0
FAILURE_TTL = 15.0  # a failed fetch is not retried for this long (auth-methods would wait on each call)
CLOCK_LEEWAY = 60
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]

OIDC_FIELDS = {"id": "sub", "name": "name", "username": "preferred_username", "email": "email",
               "emailVerified": "email_verified", "avatarURL": "picture"}


@dataclass(frozen=True)
class Builtin:
    """Defaults of a well-known provider; a collection's settings override them."""

    display_name: str
    auth_url: str = ""
    token_url: str = ""
    userinfo_url: str = ""
    issuer: str = ""  # set: the id_token is validated against this issuer's keys
    jwks_url: str = ""
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    pkce: bool = True
    token_auth: str = "client_secret_post"
    fields: Mapping[str, str] = field(default_factory=lambda: OIDC_FIELDS)
    emails_url: str = ""  # GitHub: the verified primary email comes from a second call
    avatar: str = ""  # a URL template filled from the raw user (Discord)
    auth_params: tuple[tuple[str, str], ...] = ()


# Endpoints as documented by each provider; they cannot be exercised by the test suite.
BUILTINS: dict[str, Builtin] = {
    "oidc": Builtin("OpenID Connect", token_auth=""),  # endpoints from extra.issuer's discovery
    "google": Builtin(
        "Google", "https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token",
        "https://openidconnect.googleapis.com/v1/userinfo", issuer="https://accounts.google.com",
        jwks_url="https://www.googleapis.com/oauth2/v3/certs"),
    "github": Builtin(
        "GitHub", "https://github.com/login/oauth/authorize", "https://github.com/login/oauth/access_token",
        "https://api.github.com/user", scopes=("read:user", "user:email"),
        fields={"id": "id", "name": "name", "username": "login", "avatarURL": "avatar_url"},
        emails_url="https://api.github.com/user/emails"),
    "gitlab": Builtin(
        "GitLab", "https://gitlab.com/oauth/authorize", "https://gitlab.com/oauth/token",
        "https://gitlab.com/oauth/userinfo", fields={**OIDC_FIELDS, "username": "nickname"}),
    "discord": Builtin(
        "Discord", "https://discord.com/oauth2/authorize", "https://discord.com/api/oauth2/token",
        "https://discord.com/api/users/@me", scopes=("identify", "email"),
        fields={"id": "id", "name": "global_name", "username": "username", "email": "email",
                "emailVerified": "verified"},
        avatar="https://cdn.discordapp.com/avatars/{id}/{avatar}.png"),
    # Microsoft's email claim is not verified by Microsoft: it never links by email.
    "microsoft": Builtin(
        "Microsoft", "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token", "https://graph.microsoft.com/oidc/userinfo",
        scopes=("openid", "email", "profile", "User.Read")),
    # clientSecret is the signed JWT Apple asks for; Apple posts the code back (form_post).
    "apple": Builtin(
        "Apple", "https://appleid.apple.com/auth/authorize", "https://appleid.apple.com/auth/token",
        issuer="https://appleid.apple.com", jwks_url="https://appleid.apple.com/auth/keys",
        scopes=("name", "email"), pkce=False, auth_params=(("response_mode", "form_post"),)),
}


@dataclass(frozen=True)
class Provider:
    """One usable provider of a collection: its settings merged over the built-in ones."""

    name: str
    display_name: str
    client_id: str
    client_secret: str
    spec: Builtin


@dataclass(frozen=True)
class ExternalUser:
    id: str
    name: str
    username: str
    email: str
    email_verified: bool
    avatar_url: str
    raw: dict[str, Any]


class ProviderError(Exception):
    """A provider answered badly or not at all; the detail is logged, never returned."""


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def providers(col: Collection) -> dict[str, Provider]:
    """The enabled providers of ``col`` by name; incomplete entries are left out."""
    out: dict[str, Provider] = {}
    for entry in col.auth.get("oauth2", {}).get("providers") or []:
        if not isinstance(entry, dict) or entry.get("enabled") is False:
            continue
        name, client_id = _text(entry.get("name")), _text(entry.get("clientId"))
        extra: dict[str, Any] = entry["extra"] if isinstance(entry.get("extra"), dict) else {}
        base = BUILTINS.get("oidc" if name.startswith("oidc") else name) or Builtin(name, token_auth="")
        spec = replace(
            base,
            auth_url=_text(entry.get("authURL")) or base.auth_url,
            token_url=_text(entry.get("tokenURL")) or base.token_url,
            userinfo_url=_text(entry.get("userInfoURL")) or base.userinfo_url,
            issuer=_text(extra.get("issuer")) or base.issuer,
            jwks_url=_text(extra.get("jwksURL")) or base.jwks_url,
            pkce=entry["pkce"] if isinstance(entry.get("pkce"), bool) else base.pkce,
            token_auth=_text(extra.get("tokenAuthMethod")) or base.token_auth,
            scopes=tuple(_scopes(extra.get("scopes"))) or base.scopes,
        )
        if not name or not client_id or not (spec.issuer or (spec.auth_url and spec.token_url)):
            continue
        if not spec.issuer and not (spec.userinfo_url or spec.emails_url):
            continue
        display = _text(entry.get("displayName")) or base.display_name
        out[name] = Provider(name, display, client_id, _text(entry.get("clientSecret")), spec)
    return out


def _scopes(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    return [s for s in value if isinstance(s, str) and s] if isinstance(value, list) else []


def code_nonce(verifier: str) -> str:
    """The OIDC nonce bound to a PKCE verifier (not the challenge, which is public)."""
    digest = hashlib.sha256(b"bastion-oidc-nonce:" + verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def safe_redirect(url: Any) -> bool:
    """Only absolute http(s) URLs: no ``javascript:``, ``data:`` or scheme-relative tricks."""
    if not isinstance(url, str) or not 0 < len(url) <= 2048 or any(c.isspace() or ord(c) < 32 for c in url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _jwt_header(token: str) -> dict[str, Any]:
    try:
        header = orjson.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    except ValueError as exc:
        raise ProviderError("malformed id_token") from exc
    if not isinstance(header, dict):
        raise ProviderError("malformed id_token")
    return header


def validate_id_token(
    id_token: str, keys: KeySet, *, issuer: str, client_id: str, nonce: str | None
) -> dict[str, Any]:
    """The claims of a verified id_token (OIDC Core 3.1.3.7); raise ProviderError otherwise."""
    from joserfc import jwt
    from joserfc.errors import JoseError

    header = _jwt_header(id_token)
    if header.get("alg") not in ID_TOKEN_ALGORITHMS:  # never "none", never HMAC
        raise ProviderError(f"id_token algorithm {str(header.get('alg'))[:20]!r} is not accepted")
    try:
        key = keys.get_by_kid(header.get("kid"))
        claims = jwt.decode(id_token, key, algorithms=ID_TOKEN_ALGORITHMS).claims
        jwt.JWTClaimsRegistry(
            leeway=CLOCK_LEEWAY, iss={"essential": True, "value": issuer}, sub={"essential": True},
            aud={"essential": True, "value": client_id}, exp={"essential": True}, iat={"essential": True},
        ).validate(claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise ProviderError(f"invalid id_token: {exc!r}") from exc
    if "azp" in claims and claims["azp"] != client_id:
        raise ProviderError("id_token azp is another client")
    got = claims.get("nonce")
    if (got is not None or nonce is not None) and not (
            isinstance(got, str) and nonce is not None and hmac.compare_digest(got, nonce)):
        raise ProviderError("id_token nonce mismatch")
    return claims


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class ProviderClient:
    """Talks to providers: discovery, keys, token exchange and the user's data.

    Discovery documents and key sets are cached per URL (an hour and ten minutes); an
    id_token signed with an unknown ``kid`` refetches the key set, at most every 30 s. A
    failed fetch is remembered for ``FAILURE_TTL`` seconds: an unreachable issuer costs
    one timeout per 15 s, not one per ``auth-methods`` call.
    """

    def __init__(self, web: WebClient) -> None:
        self.web = web
        self._documents: dict[str, tuple[float, Any]] = {}  # URL -> (fetched at, JSON or KeySet)
        self._failures: dict[str, tuple[float, str]] = {}  # URL -> (failed at, why)

    # -- HTTP ----------------------------------------------------------------------
    async def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            resp = await self.web.request(method, url, timeout=HTTP_TIMEOUT, limit=MAX_DOCUMENT, **kwargs)
        except WebError as exc:
            raise ProviderError(f"{url}: {exc}") from exc
        if not 200 <= resp.status < 300:
            raise ProviderError(f"{url} answered {resp.status}: {resp.body[:300]!r}")
        try:
            return orjson.loads(resp.body)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(f"{url}: not JSON") from exc

    async def _cached(self, url: str, ttl: float, keys: bool = False) -> Any:
        """A discovery document or key set, fetched again once ``ttl`` seconds old."""
        hit = self._documents.get(url)
        now = time.monotonic()
        if hit and now - hit[0] < ttl:
            return hit[1]
        failed = self._failures.get(url)
        if failed and now - failed[0] < FAILURE_TTL:
            raise ProviderError(f"{failed[1]} (failed {now - failed[0]:.0f}s ago; retried after {FAILURE_TTL:g}s)")
        try:
            doc = await self._json("GET", url, headers={"Accept": "application/json"})
            if keys:
                from joserfc.errors import JoseError
                from joserfc.jwk import KeySet

                try:
                    doc = KeySet.import_key_set(doc)
                except (JoseError, ValueError, TypeError, KeyError) as exc:
                    raise ProviderError(f"{url}: not a JSON Web Key Set") from exc
        except ProviderError as exc:
            self._failures[url] = (time.monotonic(), str(exc))
            raise
        self._failures.pop(url, None)
        self._documents[url] = (now, doc)
        return doc

    async def resolve(self, provider: Provider) -> Provider:
        """Fill endpoints an OIDC provider leaves to its discovery document."""
        spec = provider.spec
        if not spec.issuer or (spec.auth_url and spec.token_url and spec.jwks_url and spec.token_auth):
            # RFC 6749's default client authentication, unless a provider's table says otherwise
            return replace(provider, spec=replace(spec, token_auth=spec.token_auth or "client_secret_basic"))
        base = spec.issuer.rstrip("/")
        doc = await self._cached(base + "/.well-known/openid-configuration", DISCOVERY_TTL)
        if not isinstance(doc, dict) or _text(doc.get("issuer")).rstrip("/") != base:
            raise ProviderError(f"discovery document of {base} names another issuer")
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        spec = replace(
            spec, issuer=_text(doc.get("issuer")),  # exactly as the id_token's "iss" will say it
            auth_url=spec.auth_url or _text(doc.get("authorization_endpoint")),
            token_url=spec.token_url or _text(doc.get("token_endpoint")),
            userinfo_url=spec.userinfo_url or _text(doc.get("userinfo_endpoint")),
            jwks_url=spec.jwks_url or _text(doc.get("jwks_uri")),
            token_auth=spec.token_auth or (
                "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"))
        if not (spec.auth_url and spec.token_url and spec.jwks_url):
            raise ProviderError(f"discovery document of {spec.issuer} lacks endpoints")
        return replace(provider, spec=spec)

    # -- the authorization URL ---------------------------------------------------------
    def authorization(self, p: Provider) -> dict[str, Any]:
        from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        state = random_string(30)
        verifier = challenge = ""
        params = dict(p.spec.auth_params)
        if p.spec.pkce:
            verifier = random_string(43)
            challenge = create_s256_code_challenge(verifier)
            params.update(code_challenge=challenge, code_challenge_method="S256")
            if p.spec.issuer:
                params["nonce"] = code_nonce(verifier)
        url = prepare_grant_uri(p.spec.auth_url, p.client_id, "code", scope=" ".join(p.spec.scopes),
                                state=state, **params) + "&redirect_uri="
        return {"name": p.name, "displayName": p.display_name, "logo": "", "state": state,
                "authURL": url, "authUrl": url, "codeVerifier": verifier, "codeChallenge": challenge,
                "codeChallengeMethod": "S256" if p.spec.pkce else ""}

    # -- the provider round trips -----------------------------------------------------
    async def token(self, p: Provider, code: str, verifier: str, redirect: str) -> OAuth2Token:
        from authlib.oauth2.auth import ClientAuth
        from authlib.oauth2.rfc6749 import OAuth2Token
        from authlib.oauth2.rfc6749.parameters import prepare_token_request

        body = prepare_token_request("authorization_code", code=code, redirect_uri=redirect,
                                     code_verifier=verifier if p.spec.pkce else None)
        headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        method = p.spec.token_auth if p.client_secret else "none"
        url, headers, body = ClientAuth(p.client_id, p.client_secret, method).prepare(
            "POST", p.spec.token_url, headers, body)
        data = await self._json("POST", url, headers=headers, content=body)
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str) or not data["access_token"]:
            raise ProviderError(f"{p.name}: the token response has no access_token")
        return OAuth2Token.from_dict(data)

    async def _keys(self, p: Provider, kid: str | None) -> KeySet:
        keys: KeySet = await self._cached(p.spec.jwks_url, JWKS_TTL, keys=True)
        if kid and all(k.kid != kid for k in keys):  # rotated keys: refetch, at most every 30 s
            keys = await self._cached(p.spec.jwks_url, JWKS_MIN_REFRESH, keys=True)
        return keys

    async def raw_user(self, p: Provider, token: OAuth2Token, verifier: str) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        bearer = {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/json"}
        if p.spec.issuer:
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                raise ProviderError(f"{p.name}: no id_token in the token response")
            kid = _jwt_header(id_token).get("kid")
            nonce = code_nonce(verifier) if p.spec.pkce and verifier else None
            raw = validate_id_token(id_token, await self._keys(p, kid if isinstance(kid, str) else None),
                                    issuer=p.spec.issuer, client_id=p.client_id, nonce=nonce)
        if p.spec.userinfo_url and not raw.get("email"):
            info = await self._json("GET", p.spec.userinfo_url, headers=bearer)
            if not isinstance(info, dict) or (raw and info.get("sub") != raw.get("sub")):
                raise ProviderError(f"{p.name}: the userinfo response is not about the id_token's subject")
            raw = {**info, **raw}
        if p.spec.emails_url:
            emails = await self._json("GET", p.spec.emails_url, headers=bearer)
            primary = [e for e in emails if isinstance(e, dict) and e.get("primary") and e.get("verified")] \
                if isinstance(emails, list) else []
            if primary:
                raw = {**raw, "email": primary[0].get("email"), "email_verified": True}
        return raw

    def user(self, p: Provider, raw: dict[str, Any]) -> ExternalUser:
        names = {**p.spec.fields, "emailVerified": p.spec.fields.get("emailVerified", "email_verified")}
        value = {k: raw.get(claim) for k, claim in names.items()}
        ext_id = value["id"]
        ext_id = str(ext_id) if isinstance(ext_id, str | int) and not isinstance(ext_id, bool) else ""
        if not 0 < len(ext_id) <= 255:
            raise ProviderError(f"{p.name}: the user has no id")
        avatar = _text(value.get("avatarURL"))
        if p.spec.avatar and raw.get("avatar"):
            avatar = p.spec.avatar.format_map({k: str(v) for k, v in raw.items()})
        email = _text(value.get("email"))
        return ExternalUser(ext_id, _text(value.get("name")), _text(value.get("username")), email,
                            bool(email) and _bool(value.get("emailVerified")), avatar, raw)

