"""Auth tokens: HS256 JWTs signed with the record's ``tokenKey`` + the collection secret.

A new ``tokenKey`` (set on a password or email change) makes every older token of that
record invalid; a new collection secret invalidates that token type collection-wide.
Only HS256 is accepted, so ``alg: none`` and algorithm-confusion tokens never verify.
"""

from __future__ import annotations

import hmac
import sys
import time
from typing import Any


def _import_pyjwt() -> Any:
    """PyJWT without ``cryptography``: at import it loads all of ``cryptography`` when that
    is installed (for RSA and EC keys), about 9 MB of a server's 82 MB idle memory, and
    Bastion signs and checks HS256 only. The OAuth2 code that needs ``cryptography``
    (through authlib/joserfc) still imports it when it first runs."""
    if "cryptography" in sys.modules:
        import jwt
        return jwt
    sys.modules["cryptography"] = None  # type: ignore[assignment]  # makes its import fail
    try:
        import jwt
        return jwt
    finally:
        del sys.modules["cryptography"]


jwt = _import_pyjwt()

ALGORITHM = "HS256"


def sign(claims: dict[str, Any], key: str, duration: int) -> str:
    payload = {**claims, "exp": int(time.time()) + int(duration)}
    token: str = jwt.encode(payload, key, algorithm=ALGORITHM)
    return token


def unverified_claims(token: str) -> dict[str, Any] | None:
    """Read claims without checking the signature (to find whose key to check with)."""
    try:
        decoded = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    if decoded["header"].get("alg") != ALGORITHM:
        return None
    claims = decoded["payload"]
    return claims if isinstance(claims, dict) else None


def verify(token: str, key: str) -> dict[str, Any] | None:
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp"]})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


class VerifiedTokens:
    """Tokens whose signature was checked, with the key that checked it.

    A client sends the same token with every request until it refreshes, and checking
    an HS256 signature (two base64 and JSON decodes and an HMAC) was a tenth of the CPU
    of a small authenticated request. A token seen before is accepted again only while
    it has not expired and the record's key (``tokenKey`` + the collection secret) is
    still the one it was signed with, so a password change or a new secret ends it
    exactly as a full check would. Bounded: the oldest entry goes first; at the bound
    it holds about 4 MiB (the claims, the key and the token, ~1 KiB each).
    """

    def __init__(self, limit: int = 4096):
        self.limit = limit
        self._known: dict[str, tuple[dict[str, Any], str]] = {}

    def claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a token seen before, or read unverified from a new one."""
        known = self._known.get(token)
        return known[0] if known is not None else unverified_claims(token)

    def verify(self, token: str, key: str) -> bool:
        known = self._known.get(token)
        if known is not None and hmac.compare_digest(known[1], key):
            if _unexpired(known[0]):
                return True
            del self._known[token]
            return False
        claims = verify(token, key)
        if claims is None:
            return False
        if len(self._known) >= self.limit:
            del self._known[next(iter(self._known))]
        self._known[token] = (claims, key)
        return True


def _unexpired(claims: dict[str, Any]) -> bool:
    exp = claims.get("exp")
    return isinstance(exp, (int, float)) and exp > time.time()
