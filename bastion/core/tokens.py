"""Auth tokens: HS256 JWTs signed with the record's ``tokenKey`` + the collection secret.

A new ``tokenKey`` (set on a password or email change) makes every older token of that
record invalid; a new collection secret invalidates that token type collection-wide.
Only HS256 is accepted, so ``alg: none`` and algorithm-confusion tokens never verify.
"""

from __future__ import annotations

import time
from typing import Any

import jwt

ALGORITHM = "HS256"


def sign(claims: dict[str, Any], key: str, duration: int) -> str:
    payload = {**claims, "exp": int(time.time()) + int(duration)}
    return jwt.encode(payload, key, algorithm=ALGORITHM)


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
