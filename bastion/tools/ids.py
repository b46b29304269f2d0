"""Identifiers in the shapes PocketBase uses."""

from __future__ import annotations

import secrets
import string
import zlib

ID_ALPHABET = string.ascii_lowercase + string.digits
ALNUM = string.ascii_letters + string.digits


def random_string(length: int, alphabet: str = ALNUM) -> str:
    """Return a cryptographically random string drawn from ``alphabet``."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_record_id() -> str:
    """A 15-character ``[a-z0-9]`` record id."""
    return random_string(15, ID_ALPHABET)


def crc32(text: str) -> int:
    return zlib.crc32(text.encode("utf-8")) & 0xFFFFFFFF


def collection_id(collection_type: str, name: str) -> str:
    """The deterministic id PocketBase derives for a collection (``pbc_`` + CRC32)."""
    return f"pbc_{crc32(collection_type + name)}"


def field_id(field_type: str, name: str) -> str:
    """The deterministic id PocketBase derives for a field (type + CRC32 of its name)."""
    return f"{field_type}{crc32(name)}"
