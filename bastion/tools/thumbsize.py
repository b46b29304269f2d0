"""Thumb sizes as PocketBase writes them (``WxH``, ``WxHt``, ``WxHb``, ``WxHf``, ``0xH``,
``Wx0``) and the image types thumbs are made of: what field options and downloads need
to know without loading the image library (``tools/images.py``)."""

from __future__ import annotations

import re

# ASCII digits only, as in PocketBase (Python's \d would take any Unicode digit).
THUMB_RE = re.compile(r"^(\d+)x(\d+)(t|b|f)?$", re.ASCII)

#: The types thumbnails are made of (PocketBase's list).
IMAGE_TYPES = ("image/png", "image/jpg", "image/jpeg", "image/gif", "image/webp")


def parse_size(spec: str) -> tuple[int, int, str] | None:
    """``"100x50f"`` -> ``(100, 50, "f")``; None when malformed or both sides are 0."""
    match = THUMB_RE.fullmatch(spec) if len(spec) <= 32 else None
    if match is None:
        return None
    width, height = int(match[1]), int(match[2])
    if width == 0 and height == 0:
        return None
    return width, height, match[3] or ""
