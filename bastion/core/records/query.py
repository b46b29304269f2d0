"""List parameters (page, perPage, skipTotal, sort, filter) and the list envelope."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.core.errors import BadRequest

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 1000
MAX_PAGE = 1_000_000
MAX_FILTER = 3500

@dataclass
class ListParams:
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    skip_total: bool = False
    sort: str = ""
    filter_text: str = ""
    cursor: str | None = None  # keyset pagination when set ("" = first page)


# What PocketBase (Go's strconv) reads as an integer and a boolean: ASCII digits with an
# optional sign, within 64 bits; no spaces, underscores or other scripts' digits.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64 = 2**63
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})


def _int_param(query: Mapping[str, str], key: str, default: int) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    # (at most 19 significant digits before converting: int() refuses very long text)
    value = int(raw) if _INTEGER.fullmatch(raw) and len(raw.lstrip("+-").lstrip("0")) <= 19 else None
    if value is None or not -_INT64 <= value < _INT64:
        raise BadRequest(f"Invalid {key} parameter: expected an integer, got {raw[:30]!r}.")
    return value


def _bool_param(raw: str | None) -> bool:
    if raw is None or raw == "" or raw in _FALSE:
        return False
    if raw in _TRUE:
        return True
    raise BadRequest(f"Invalid skipTotal parameter: expected a boolean, got {raw[:30]!r}.")


def parse_list_params(query: Mapping[str, str]) -> ListParams:
    page = max(1, min(_int_param(query, "page", 1), MAX_PAGE))
    per_page = _int_param(query, "perPage", DEFAULT_PER_PAGE)
    per_page = DEFAULT_PER_PAGE if per_page <= 0 else min(per_page, MAX_PER_PAGE)
    params = ListParams(page=page, per_page=per_page, skip_total=_bool_param(query.get("skipTotal")))
    params.sort = query.get("sort", "")
    text = query.get("filter", "")
    if len(text) > MAX_FILTER:
        raise BadRequest(f"The filter is too long: at most {MAX_FILTER} characters.")
    params.filter_text = text
    params.cursor = query.get("cursor")
    return params


def cursor_envelope(items: list[dict[str, Any]], params: ListParams, next_cursor: str | None) -> dict[str, Any]:
    return {"page": 1, "perPage": params.per_page, "totalItems": -1, "totalPages": -1,
            "items": items, "nextCursor": next_cursor}


def page_envelope(items: list[dict[str, Any]], params: ListParams, total: int) -> dict[str, Any]:
    pages = -1 if total < 0 else math.ceil(total / params.per_page)
    return {
        "page": params.page, "perPage": params.per_page,
        "totalItems": total, "totalPages": pages, "items": items,
    }
