"""Secrets stored encrypted at rest (TOTP secrets), with AES-256-GCM.

The key comes from ``--encryption-key`` / ``BASTION_ENCRYPTION_KEY`` (at least 32
characters; the AES key is its SHA-256). A sealed value reads ``enc1:`` + base64url of
nonce + ciphertext + tag, bound to what it is (``purpose``), so a value copied into
another place does not open. Without a key values are stored as they are; values stored
before a key was set still open (they are plain), and are sealed when next written.
``cryptography`` is loaded on first use only.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

PREFIX = "enc1:"
MIN_KEY_LENGTH = 32


class SecretBoxError(RuntimeError):
    """A sealed value that cannot be opened: no key, or not the key that sealed it."""


class SecretBox:
    def __init__(self, key: str = ""):
        if key and len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"the encryption key must be at least {MIN_KEY_LENGTH} characters long")
        self._key = hashlib.sha256(key.encode()).digest() if key else None
        self._aead: Any = None

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def _cipher(self) -> Any:
        if self._aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            assert self._key is not None
            self._aead = AESGCM(self._key)
        return self._aead

    def seal(self, plain: str, purpose: str) -> str:
        if self._key is None:
            return plain
        nonce = os.urandom(12)
        sealed = self._cipher().encrypt(nonce, plain.encode(), purpose.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, purpose: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # stored before a key was set
        if self._key is None:
            raise SecretBoxError("a secret is stored encrypted but no encryption key is set "
                                 "(--encryption-key / BASTION_ENCRYPTION_KEY)")
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX):])
            return str(self._cipher().decrypt(raw[:12], raw[12:], purpose.encode()).decode())
        except (InvalidTag, ValueError) as exc:
            raise SecretBoxError("a stored secret does not open with the encryption key set "
                                 "(--encryption-key / BASTION_ENCRYPTION_KEY): not the key that sealed it, "
                                 "or the value was altered") from exc
