"""The ``fields`` query parameter: pick keys (dot paths, ``*``) from any JSON response."""

from __future__ import annotations

import html
import re
from typing import Any

_EXCERPT = re.compile(r"^(.+):excerpt\((\d+)(?:,\s*(true|false|1|0))?\)$")
_TAGS = re.compile(r"<[^>]*>")
_SPLIT = re.compile(r",(?![^(]*\))")
MAX_FIELDS_PARAM = 100


def excerpt(value: Any, limit: int, ellipsis: bool) -> Any:
    if not isinstance(value, str):
        return value
    text = " ".join(html.unescape(_TAGS.sub(" ", value)).split())
    if len(text) <= limit:
        return text
    return text[:limit].rstrip() + ("..." if ellipsis else "")


def _parse(spec: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for part in [p.strip() for p in _SPLIT.split(spec)][:MAX_FIELDS_PARAM]:
        if not part:
            continue
        modifier = None
        m = _EXCERPT.match(part)
        if m:
            part = m.group(1)
            modifier = (int(m.group(2)), (m.group(3) or "false") in ("true", "1"))
        node = tree
        keys = part.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                break
        else:
            node[keys[-1]] = modifier if modifier else node.get(keys[-1], True)
    return tree


def _apply(data: Any, tree: dict[str, Any]) -> Any:
    if isinstance(data, list):
        return [_apply(item, tree) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    if "*" in tree:
        out.update({k: v for k, v in data.items() if k not in tree or tree[k] is True})
    for key, sub in tree.items():
        if key == "*" or key not in data:
            continue
        if sub is True:
            out[key] = data[key]
        elif isinstance(sub, tuple):
            out[key] = excerpt(data[key], *sub)
        else:
            out[key] = _apply(data[key], sub)
    return out


def pick_fields(data: Any, spec: str) -> Any:
    tree = _parse(spec)
    if not tree:
        return data
    if isinstance(data, dict) and isinstance(data.get("items"), list) and "page" in data:
        return {**data, "items": _apply(data["items"], tree)}
    return _apply(data, tree)
