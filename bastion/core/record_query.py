"""List parameters (page, perPage, skipTotal, sort, filter) and the list envelope."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bastion.core.errors import BadRequest

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 1000
MAX_PAGE = 1_000_000
MAX_FILTER = 3500

FilterBuilder = Callable[[Any, sa.Table, Any], sa.ColumnElement[bool]]


@dataclass
class ListParams:
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    skip_total: bool = False
    sort: str = ""
    filter: FilterBuilder | None = None
    filter_text: str = ""
    cursor: str | None = None  # keyset pagination when set ("" = first page)


def _int_param(query: Mapping[str, str], key: str, default: int) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid {key} parameter: expected an integer, got {raw[:30]!r}.") from None


def _bool_param(raw: str | None) -> bool:
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in ("1", "t", "true"):
        return True
    if value in ("", "0", "f", "false"):
        return False
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
