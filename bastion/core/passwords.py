"""Password hashing with argon2id.

Parameters follow OWASP's minimum for argon2id (19 MiB memory, 2 passes, 1 lane): about
20 ms per hash on a 2-core machine, so a login costs the server little and an offline
guess costs an attacker the same. Hashing runs in a worker thread to keep the event loop
free. Hashes made with other parameters still verify and are re-hashed on next login.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# A fixed hash to verify against when no account matches, so timing reveals nothing.
_DUMMY = HASHER.hash("bastion-timing-equaliser")


async def hash_password(plain: str) -> str:
    return await asyncio.to_thread(HASHER.hash, plain)


async def verify_password(stored_hash: str, plain: str) -> bool:
    target = stored_hash or _DUMMY
    try:
        ok = await asyncio.to_thread(HASHER.verify, target, plain)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return bool(ok) and bool(stored_hash)


def needs_rehash(stored_hash: str) -> bool:
    try:
        return HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
