"""Identifiers in the shapes PocketBase uses."""

from __future__ import annotations

import secrets
import string
import zlib

ID_ALPHABET = string.ascii_lowercase + string.digits
ALNUM = string.ascii_letters + string.digits


def random_string(length: int, alphabet: str = ALNUM) -> str:
    """Return a cryptographically random string drawn from ``alphabet``.

    One ``token_bytes`` call per string (rejection sampling keeps every character
    equally likely) instead of one system call per character.
    """
    size = len(alphabet)
    if not 0 < size <= 256:
        raise ValueError("alphabet must have 1 to 256 characters")
    limit = 256 - 256 % size
    out: list[str] = []
    while len(out) < length:
        for byte in secrets.token_bytes(length * 2):
            if byte < limit:
                out.append(alphabet[byte % size])
                if len(out) == length:
                    break
    return "".join(out)


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
