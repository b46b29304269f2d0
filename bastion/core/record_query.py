"""List parameters (page, perPage, skipTotal, sort, filter) and the list envelope."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from bastion.core.errors import BadRequest

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 1000
MAX_PAGE = 1_000_000
MAX_SORT_FIELDS = 8
MAX_FILTER = 3500

FilterBuilder = Callable[[Any, sa.Table, Any], sa.ColumnElement[bool]]


@dataclass
class SortItem:
    name: str
    desc: bool = False


@dataclass
class ListParams:
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    skip_total: bool = False
    sort: list[SortItem] = field(default_factory=list)
    filter: FilterBuilder | None = None
    filter_text: str = ""


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


def parse_sort(text: str) -> list[SortItem]:
    items = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        desc = part.startswith("-")
        name = part.lstrip("+-")
        if not name or len(name) > 255:
            raise BadRequest("Invalid sort parameter.")
        items.append(SortItem(name, desc))
    if len(items) > MAX_SORT_FIELDS:
        raise BadRequest(f"Invalid sort parameter: at most {MAX_SORT_FIELDS} fields.")
    return items


def parse_list_params(query: Mapping[str, str]) -> ListParams:
    page = max(1, min(_int_param(query, "page", 1), MAX_PAGE))
    per_page = _int_param(query, "perPage", DEFAULT_PER_PAGE)
    per_page = DEFAULT_PER_PAGE if per_page <= 0 else min(per_page, MAX_PER_PAGE)
    params = ListParams(page=page, per_page=per_page, skip_total=_bool_param(query.get("skipTotal")))
    params.sort = parse_sort(query.get("sort", ""))
    text = query.get("filter", "")
    if len(text) > MAX_FILTER:
        raise BadRequest(f"The filter is too long: at most {MAX_FILTER} characters.")
    params.filter_text = text
    return params


def order_by(
    sort: list[SortItem], col: Any, table: sa.Table, info: Any, dialect: str
) -> list[sa.ColumnElement[Any]]:
    out: list[sa.ColumnElement[Any]] = []
    for item in sort:
        if item.name == "@random":
            out.append(sa.func.rand() if dialect == "mysql" else sa.func.random())
            continue
        if item.name == "@rowid":
            if dialect == "sqlite":
                expr = sa.literal_column("rowid")
                out.append(expr.desc() if item.desc else expr.asc())
            continue
        f = col.field(item.name)
        if f is None or f.TYPE == "password" or (f.hidden and not info.is_superuser):
            raise BadRequest(f"Invalid sort parameter: unknown field {item.name!r}.")
        column = table.c[item.name]
        out.append(column.desc() if item.desc else column.asc())
    return out


def page_envelope(items: list[dict[str, Any]], params: ListParams, total: int) -> dict[str, Any]:
    pages = -1 if total < 0 else math.ceil(total / params.per_page)
    return {
        "page": params.page, "perPage": params.per_page,
        "totalItems": total, "totalPages": pages, "items": items,
    }
