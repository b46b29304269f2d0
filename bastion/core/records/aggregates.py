"""Aggregates over one collection: ``count``, ``sum``, ``avg``, ``min``, ``max`` per group.

Bastion's extension of the PocketBase API (``GET /api/collections/{c}/aggregate``, see
``docs/aggregates.md``). The rows are exactly those the caller could list: the
collection's ``listRule`` through ``Access`` and the client ``filter`` through
``Filters``. Field names are resolved by ``RecordResolver`` as in client filters, so
unknown and hidden fields and relation paths (``author.name``) behave the same, and
only names from the schema reach SQL. One statement per request::

    SELECT g0, count(*) AS n, sum(v0) AS sum_0, ..., count(*) OVER () AS total
    FROM (SELECT coalesce(<key>, <zero>) AS g0, <value> AS v0, ...
          FROM <table> WHERE <listRule> AND <filter>) AS agg_rows
    GROUP BY g0 ORDER BY ... LIMIT :limit

The derived table keeps GROUP BY and ORDER BY to plain column references, which every
engine accepts even when a key is a correlated subquery. Group keys fold NULL into the
zero value of their kind (a missing related record groups with ``""``), as filters
treat ``x = ""``; aggregates ignore NULLs, as SQL does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa

from bastion.core.access import Access, RequestInfo
from bastion.core.errors import BadRequest, Forbidden
from bastion.core.fields import RelationField
from bastion.core.fields.scalar import number_out
from bastion.core.ports import Database, Row
from bastion.core.records.filters import Filters
from bastion.core.records.query import MAX_FILTER
from bastion.core.records.resolver import RecordResolver
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry
from bastion.rules import FilterError, Identifier, Kind, ResolvedField, RuleDialect

FUNCTIONS = ("sum", "avg", "min", "max")
PARAMS = ("groupBy", "count", *FUNCTIONS, "filter", "sort", "limit", "fields")
MAX_GROUP_BY = 5
MAX_AGGREGATES = 20
MAX_SORT_KEYS = 8
MAX_NAME = 255
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_NAME_RE = re.compile(r"^\w+(\.\w+)*$", re.ASCII)
_SQL_FUNCTIONS: dict[str, Callable[[Any], sa.ColumnElement[Any]]] = {
    "sum": sa.func.sum, "avg": sa.func.avg, "min": sa.func.min, "max": sa.func.max,
}
_VERBS = {"groupBy": "grouped", "sum": "summed", "avg": "averaged", "min": "aggregated", "max": "aggregated"}


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ``sort`` entry: a groupBy field, ``count`` or ``<function>.<field>``."""

    key: str
    descending: bool = False


@dataclass(frozen=True)
class AggregateParams:
    """A checked aggregate request; field names are validated against the schema later."""

    group_by: tuple[str, ...] = ()
    sum: tuple[str, ...] = ()
    avg: tuple[str, ...] = ()
    min: tuple[str, ...] = ()
    max: tuple[str, ...] = ()
    sort: tuple[SortKey, ...] = ()
    limit: int = DEFAULT_LIMIT
    filter_text: str = ""

    @property
    def requested(self) -> list[tuple[str, str]]:
        """``(function, field)`` pairs in a stable order."""
        return [(fn, name) for fn in FUNCTIONS for name in getattr(self, fn)]

    def sort_keys(self) -> set[str]:
        return {"count", *(f"{fn}.{name}" for fn, name in self.requested)}


# -- parameters --------------------------------------------------------------------
def parse_aggregate_params(query: Mapping[str, str]) -> AggregateParams:
    """Check the query parameters' syntax and limits; raise BadRequest with the reason."""
    _check_param_names(query)
    group_by = _names(query, "groupBy")
    if len(group_by) > MAX_GROUP_BY:
        raise BadRequest(f"Too many groupBy fields: at most {MAX_GROUP_BY}.")
    lists = {fn: _names(query, fn) for fn in FUNCTIONS}
    if sum(len(names) for names in lists.values()) > MAX_AGGREGATES:
        raise BadRequest(f"Too many aggregated fields: at most {MAX_AGGREGATES} in sum, avg, min and max together.")
    _check_count(query.get("count"))
    filter_text = query.get("filter", "")
    if len(filter_text) > MAX_FILTER:
        raise BadRequest(f"The filter is too long: at most {MAX_FILTER} characters.")
    params = AggregateParams(
        group_by=group_by, sum=lists["sum"], avg=lists["avg"], min=lists["min"], max=lists["max"],
        limit=_limit(query.get("limit")), filter_text=filter_text,
    )
    return replace(params, sort=_sort(query.get("sort", ""), params))


def _check_param_names(query: Mapping[str, str]) -> None:
    known = {p.lower(): p for p in PARAMS}
    for key in query:
        if key not in PARAMS and key.lower() in known:
            raise BadRequest(f'Unknown parameter "{key}": did you mean "{known[key.lower()]}"?')


def _names(query: Mapping[str, str], param: str) -> tuple[str, ...]:
    raw = query.get(param, "")
    if len(raw) > MAX_NAME * MAX_AGGREGATES:
        raise BadRequest(f"Invalid {param}: the list is too long.")
    if not raw.strip():
        return ()
    names: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        _check_name(name, param)
        if name not in names:
            names.append(name)
    return tuple(names)


def _check_name(name: str, param: str) -> None:
    if not name:
        raise BadRequest(f"Invalid {param}: empty field name in the comma list.")
    if len(name) > MAX_NAME or not _NAME_RE.match(name):
        raise BadRequest(f"Invalid {param}: {name[:40]!r} is not a field name (letters, digits, _ and dots).")


def _check_count(raw: str | None) -> None:
    if raw is not None and raw.strip().lower() not in ("", "1", "t", "true"):
        raise BadRequest("Invalid count parameter: count is always returned; use count=1 or leave it out.")


def _limit(raw: str | None) -> int:
    if raw is None or raw.strip() == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid limit parameter: expected an integer, got {raw[:30]!r}.") from None
    if not 1 <= value <= MAX_LIMIT:
        raise BadRequest(f"Invalid limit parameter: it must be between 1 and {MAX_LIMIT}.")
    return value


def _sort(text: str, params: AggregateParams) -> tuple[SortKey, ...]:
    if not text.strip():
        return ()
    parts = text.split(",")
    if len(parts) > MAX_SORT_KEYS:
        raise BadRequest(f"Invalid sort: at most {MAX_SORT_KEYS} keys.")
    aggregates = params.sort_keys()
    keys: list[SortKey] = []
    for part in parts:
        name = part.strip()
        descending = name.startswith("-")
        name = name[1:] if name[:1] in ("-", "+") else name
        _check_name(name, "sort")
        grouped = name in params.group_by
        if grouped and name in aggregates:
            raise BadRequest(f'Invalid sort: "{name}" is both a groupBy field and an aggregate.')
        if not grouped and name not in aggregates:
            raise BadRequest(
                f'Invalid sort: "{name}" is neither a groupBy field nor a requested aggregate '
                "(count, or <function>.<field> such as sum.total when sum=total is requested).")
        keys.append(SortKey(name, descending))
    return tuple(keys)


# -- the service -------------------------------------------------------------------
@dataclass
class AggregateService:
    """Runs aggregate requests under the collection's list rule."""

    db: Database
    registry: Registry
    access: Access
    filters: Filters

    async def aggregate(self, info: RequestInfo, col: Collection, params: AggregateParams) -> dict[str, Any]:
        """``{"items": [{"group": {...}, "count": n, "sum": {...}, ...}], "totalGroups": n}``."""
        table = self.registry.table(col)
        conds = [c for c in (self.access.condition(info, col, "listRule", table),) if c is not None]
        if params.filter_text:
            conds.append(self.filters.client_filter(params.filter_text, col, table, info))
        fields = self._resolve_all(info, col, table, params)
        query = _Query(params, fields, self.db.sql.rules)
        stmt = query.statement(table, sa.and_(sa.true(), *conds))
        async with self.db.read() as conn:
            rows = await conn.fetch_all(stmt)
        return query.envelope(rows)

    def _resolve_all(
        self, info: RequestInfo, col: Collection, table: sa.Table, params: AggregateParams
    ) -> dict[str, ResolvedField]:
        resolver = RecordResolver(self.registry, col, table, info, self.db.sql.rules, trusted=False)
        fields: dict[str, ResolvedField] = {}
        uses = [("groupBy", name) for name in params.group_by] + params.requested
        for role, name in uses:
            field = fields.get(name) or self._resolve(resolver, info, col, name, role)
            if role in ("sum", "avg") and field.kind is not Kind.NUMBER:
                raise BadRequest(f'Invalid {role} field "{name}": {role} needs a number field.')
            fields[name] = field
        return fields

    def _resolve(
        self, resolver: RecordResolver, info: RequestInfo, col: Collection, name: str, role: str
    ) -> ResolvedField:
        self._check_visible(info, col, name, role)
        try:
            field = resolver.resolve(Identifier(name, None, 0))
        except FilterError as exc:
            raise BadRequest(f'Invalid {role} field "{name}": {exc.message}') from None
        if field.is_literal or field.multi or field.items is not None or field.array:
            raise BadRequest(f'Invalid {role} field "{name}": multi-valued fields cannot be {_VERBS[role]}.')
        if field.json_path is not None or field.kind not in (Kind.TEXT, Kind.NUMBER, Kind.BOOL):
            raise BadRequest(f'Invalid {role} field "{name}": json fields cannot be {_VERBS[role]}.')
        if "." in name:
            field = replace(field, expr=self._follow(info, col, resolver.table, name.split("."), name))
        return field

    def _follow(
        self, info: RequestInfo, col: Collection, table: Any, parts: list[str], name: str
    ) -> sa.ColumnElement[Any]:
        """``author.name`` as a subquery that sees only authors the caller may view.

        Filters may test related values whatever the related collection's rules (as in
        PocketBase); an aggregate prints them, so each hop applies the target's
        ``viewRule``, as ``expand`` does: a related record the caller may not view
        counts as no record.
        """
        if len(parts) == 1:
            return table.c[parts[0]]  # type: ignore[no-any-return]
        f = col.field(parts[0])
        target = self.registry.find(getattr(f, "collectionId", "")) if f is not None else None
        if target is None:
            raise BadRequest(f'Invalid field "{name}": "{parts[0]}" is not a relation.')
        alias = self.registry.table(target).alias()
        try:
            rule = self.access.condition(info, target, "viewRule", cast(sa.Table, alias))
        except Forbidden:
            raise Forbidden(
                f'Only superusers can view "{target.name}" records, so "{name}" cannot be aggregated.'
            ) from None
        stmt = sa.select(self._follow(info, target, alias, parts[1:], name))
        stmt = stmt.where(alias.c.id == table.c[parts[0]])
        if rule is not None:
            stmt = stmt.where(rule)
        return stmt.limit(1).scalar_subquery()

    def _check_visible(self, info: RequestInfo, col: Collection, name: str, role: str) -> None:
        """Hidden fields anywhere on the path, and auth emails, are for superusers only.

        Filters may test an email; an aggregate would print it, which ``to_api`` hides
        from everyone but superusers and the owner, so it is refused here.
        """
        if info.is_superuser:
            return
        current: Collection | None = col
        parts = name.split(".")
        for i, part in enumerate(parts):
            f = current.field(part) if current is not None else None
            if current is None or f is None:
                return  # the resolver names what is wrong
            if f.hidden:  # the resolver's answer for an unknown field: hidden names stay secret
                raise BadRequest(
                    f'Invalid {role} field "{name}": unknown field "{part}" in collection "{current.name}".')
            if current.is_auth and part == "email" and i == len(parts) - 1:
                raise BadRequest(f'Invalid {role} field "{name}": emails of auth records cannot be {_VERBS[role]}.')
            related = f.collectionId if isinstance(f, RelationField) else None
            current = self.registry.find(related) if related else None


@dataclass(frozen=True)
class _Output:
    """One result column: where it is in the row and how to show it."""

    label: str
    kind: Kind
    function: str = ""
    field: str = ""


class _Query:
    """The statement for one request and the conversion of its rows."""

    def __init__(self, params: AggregateParams, fields: dict[str, ResolvedField], dialect: RuleDialect):
        self.params = params
        self.fields = fields
        self.dialect = dialect

    def statement(self, table: sa.Table, where: sa.ColumnElement[bool]) -> sa.Select[Any]:
        inner, values = self._inner_columns(table)
        rows = sa.select(*inner).select_from(table).where(where).subquery("agg_rows")
        keys = [rows.c[f"g{i}"] for i in range(len(self.params.group_by))]
        count = sa.func.count().label("n")
        by_key: dict[str, Any] = {"count": count}
        columns: list[Any] = [*keys, count]
        for j, (fn, name) in enumerate(self.params.requested):
            agg = _SQL_FUNCTIONS[fn](rows.c[values[name]]).label(f"{fn}_{j}")
            by_key[f"{fn}.{name}"] = agg
            columns.append(agg)
        if not keys:
            return sa.select(*columns).select_from(rows)
        by_key.update(zip(self.params.group_by, keys, strict=True))
        columns.append(sa.func.count().over().label("total"))
        stmt = sa.select(*columns).group_by(*keys).order_by(*self._order(by_key))
        return stmt.limit(self.params.limit)

    def _inner_columns(self, table: sa.Table) -> tuple[list[Any], dict[str, str]]:
        inner: list[Any] = []
        for i, name in enumerate(self.params.group_by):
            field = self.fields[name]
            expr = field.expr
            if not (isinstance(expr, sa.Column) and not expr.nullable):
                expr = sa.func.coalesce(expr, _zero(field.kind))
            inner.append(expr.label(f"g{i}"))
        values: dict[str, str] = {}
        for _, name in self.params.requested:
            if name in values:
                continue
            field = self.fields[name]
            expr = field.expr
            if field.kind is Kind.BOOL:  # PostgreSQL has no min/max of booleans
                expr = sa.case((expr, 1), (sa.not_(expr), 0))
            values[name] = f"v{len(values)}"
            inner.append(expr.label(values[name]))
        if not inner:
            inner.append(table.c.id.label("v"))
        return inner, values

    def _order(self, by_key: dict[str, Any]) -> list[Any]:
        keys = list(self.params.sort)
        named = {k.key for k in keys}
        keys += [SortKey(name) for name in self.params.group_by if name not in named]
        clauses = []
        for key in keys:
            clauses.append(self.dialect.order(by_key[key.key], key.descending))  # NULLs first ascending
        return clauses

    def envelope(self, rows: Any) -> dict[str, Any]:
        items = [self._item(row) for row in rows]
        total = len(items)
        if self.params.group_by and rows:
            total = int(rows[0]["total"])
        return {"items": items, "totalGroups": total}

    def _item(self, row: Row) -> dict[str, Any]:
        group = {name: _value(self.fields[name].kind, row[f"g{i}"])
                 for i, name in enumerate(self.params.group_by)}
        item: dict[str, Any] = {"group": group, "count": int(row["n"] or 0)}
        for j, (fn, name) in enumerate(self.params.requested):
            raw = row[f"{fn}_{j}"]
            value: Any
            if fn == "sum":
                value = number_out(raw)  # the sum of no values is 0
            elif fn == "avg":
                value = None if raw is None else number_out(raw)
            else:
                value = _value(self.fields[name].kind, raw)
            item.setdefault(fn, {})[name] = value
        return item


def _zero(kind: Kind) -> sa.ColumnElement[Any]:
    if kind is Kind.NUMBER:
        return sa.literal(0.0, sa.Double())
    if kind is Kind.BOOL:
        return sa.false()
    return sa.literal("", sa.Text())


def _value(kind: Kind, raw: Any) -> Any:
    """A database value as JSON: ints when integral, bools as bools, Decimals as floats."""
    if raw is None:
        return None
    if kind is Kind.BOOL:
        return bool(raw)
    if kind is Kind.NUMBER or isinstance(raw, Decimal):
        return number_out(raw)
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return raw if isinstance(raw, str) else str(raw)
