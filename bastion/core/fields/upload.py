"""An uploaded file on its way to storage, and the name it is stored under.

Stored names are made as PocketBase makes them: the original name in snake case
(ASCII word characters only, at most 100 of them, topped up with random characters
when shorter than 3), ``_``, ten random lowercase letters or digits, and the cleaned
extension (the last two dot-separated parts, at most 20 characters; sniffed from the
bytes when the name has none). Nothing of the client's name can reach a path: no
slash, backslash, NUL, dot-only segment or control character survives.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, BinaryIO

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_EXT_INVALID = re.compile(r"[^\w.*\-+=#]+", re.ASCII)
_SPLIT = re.compile(r"[\W_]+", re.ASCII)
MAX_ORIGINAL = 300


@dataclass(eq=False)
class Upload:
    """One uploaded file: its bytes in ``source`` (seekable, read from position 0)."""

    original_name: str
    name: str  # the stored name: sanitised and unique
    size: int
    content_type: str  # sniffed from the bytes
    source: BinaryIO


def random_part(length: int = 10) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _extension(name: str) -> str:
    """The original extension: from the second-to-last dot when there are two (``.tar.gz``)."""
    last = name.rfind(".")
    if last < 0:
        return ""
    second = name.rfind(".", 0, last)
    return name[second:] if second >= 0 else name[last:]


def _snake(text: str) -> str:
    words = []
    for word in _SPLIT.split(text):
        if not word:
            continue
        out = []
        for i, c in enumerate(word):
            if c.isupper() and i > 0 and not word[i - 1].isupper():
                out.append("_")
            out.append(c)
        words.append("".join(out))
    return "_".join(words).lower()


def base_name(sent: str) -> str:
    """The file name a client sent without its folders (``photos/cat.png`` → ``cat.png``),
    as PocketBase's multipart reader keeps it."""
    trimmed = sent.rstrip("/")
    return trimmed.rsplit("/", 1)[-1] if trimmed else ("/" if sent else "")


def stored_name(original: str, sniffed_extension: str = "") -> str:
    """The name an upload called ``original`` is stored under (see the module text)."""
    original = original[-MAX_ORIGINAL:]
    ext = _extension(original)
    clean_ext = "." + _EXT_INVALID.sub("", ext).strip(".")
    if clean_ext == ".":
        clean_ext = sniffed_extension if sniffed_extension.startswith(".") else ""
    if len(clean_ext) > 20:
        clean_ext = "." + clean_ext[-20:].strip(".")
    base = _snake(original[: len(original) - len(ext)].strip("."))
    if len(base) < 3:
        base += random_part()
    elif len(base) > 100:
        base = base[:100]
    return f"{base}_{random_part()}{clean_ext}"


def rule_view(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as rules read it (``@request.body``): an upload as its stored name."""
    def plain(value: Any) -> Any:
        if isinstance(value, Upload):
            return value.name
        if isinstance(value, list) and any(isinstance(v, Upload) for v in value):
            return [plain(v) for v in value]
        return value

    return {k: plain(v) for k, v in body.items()}


def add_uploads(body: dict[str, Any], key: str, uploads: list[Upload]) -> None:
    """Put ``uploads`` in ``body`` under the form key they came with, as PocketBase does:
    under a field's plain name they add to the names sent with them (so a form resending
    the kept names loses none); under ``+f`` or ``f+`` they are the operand."""
    names = body.get(key) if not key.startswith("+") and not key.endswith("+") else None
    kept = [n for n in (names if isinstance(names, list) else [names]) if isinstance(n, str) and n]
    body[key] = [*kept, *uploads]
