"""Password hashing with argon2id.

Parameters follow OWASP's minimum for argon2id (19 MiB memory, 2 passes, 1 lane): about
20 ms per hash on a 2-core machine, so a login costs the server little and an offline
guess costs an attacker the same. Hashing runs in a worker thread to keep the event loop
free. Hashes made with other parameters still verify and are re-hashed on next login.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Hashing is CPU-bound: more threads than cores only makes each hash slower and holds
# more 19 MiB buffers at once, so it gets a pool of its own, one thread per core.
_POOL = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="argon2")
# A fixed hash to verify against when no account matches, so timing reveals nothing.
_DUMMY = HASHER.hash("bastion-timing-equaliser")


async def hash_password(plain: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_POOL, HASHER.hash, plain)


async def verify_password(stored_hash: str, plain: str) -> bool:
    target = stored_hash or _DUMMY
    try:
        ok = await asyncio.get_running_loop().run_in_executor(_POOL, HASHER.verify, target, plain)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return bool(ok) and bool(stored_hash)


def needs_rehash(stored_hash: str) -> bool:
    try:
        return HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
