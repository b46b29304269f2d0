"""What identifiers in filters and rules mean for records: the core-side FieldResolver.

Plain fields resolve to columns; ``author.name`` follows a single relation through a
correlated scalar subquery; a path through a multiple relation (``members.id``), a
back-relation (``comments_via_post.message``) or ``@collection.<name>[:alias].<field>``
is a multi-valued operand whose items come from a correlated EXISTS. ``@request.*``
values are bound parameters. Nothing from the filter text becomes SQL text: names are
looked up in the schema and rejected when unknown.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from bastion.core.access import RequestInfo
from bastion.core.fields import Field, FieldContext, RelationField
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry
from bastion.rules import (
    FilterError,
    Identifier,
    ItemSource,
    JsonRef,
    Kind,
    ResolvedField,
    RuleDialect,
    get_dialect,
)

MAX_DEPTH = 6
JoinRule = Callable[[Collection, Any], "ColumnElement[bool] | None"]
"""(joined collection, its aliased table) → its list rule as a condition, or None."""
SYSTEM_KEYS = {"collectionId", "collectionName"}


class _Chain(NamedTuple):
    """A multi-valued path as an item source, and how many rows-multiplying steps it takes."""

    source: ItemSource
    kind: Kind
    modifier_applied: bool
    steps: int
    computed: bool  # the items are computed values (``:each``, ``:length``, JSON), not a column's


def json_path(parts: list[str], modifier: str | None) -> tuple[tuple[str | int, ...], bool]:
    """A JSON path from dotted parts. PocketBase reads a modifier after a JSON path as part
    of its last key, without the colon (``meta.k:length`` is the key ``klength``)."""
    if modifier is not None:
        parts = [*parts[:-1], parts[-1] + modifier]
    return tuple(int(p) if p.isdigit() else p for p in parts), modifier is not None


# The identifiers PocketBase resolves at all; anything else (``@request.nope``,
# ``@request.method.x``, a bare ``@request.body``) is refused before it means anything.
IDENTIFIER_FORMS = re.compile(
    r"\w+[\w.:]*|@request\.(context|method)|@request\.(auth|body|query|headers)\.[\w.:]*\w"
    r"|@collection\.\w+(:\w+)?\.[\w.:]*\w", re.ASCII)

# What identifies the caller and never changes for a given auth record.
AUTH_IDENTITY = frozenset({"@request.auth.id", "@request.auth.collectionId", "@request.auth.collectionName"})


class RecordResolver:
    """Resolves identifiers against one collection for one request."""

    def __init__(
        self, registry: Registry, col: Collection, table: sa.FromClause, info: RequestInfo,
        dialect: str | RuleDialect, *, trusted: bool, join_rule: JoinRule | None = None,
    ):
        self.registry = registry
        self.col = col
        self.table = table
        self.info = info
        self.dialect = get_dialect(dialect)
        self.trusted = trusted  # rules may read hidden fields; client filters may not
        # Whether hidden fields resolve: in rules, and in superusers' client filters (but
        # not in realtime subscription filters, as in PocketBase).
        self.sees_hidden = trusted or info.is_superuser
        # For client filters: the list rule of every collection a path joins (None = no check).
        self.join_rule = join_rule
        self.joins: dict[str, Any] = {}  # @collection references → aliased tables
        # Whether what was resolved depends on the request beyond the collection and
        # whether the caller is a superuser (then a compiled filter cannot be reused), or
        # on no more than who the caller is (their record's id and collection).
        self.request_bound = False
        self.auth_bound = False
        # The multi-valued steps of each identifier resolved: back-relations, multiple
        # relations and the @collection join. Each multiplies the rows a comparison visits
        # by the rows it reaches (``Filters`` bounds their number before a query runs).
        self.multi_steps: dict[Identifier, int] = {}
        self._steps = 0
        # While :meth:`every_row` compiles a comparison: ``@collection`` references read
        # fresh aliases (kept here) instead of the shared joined row.
        self._fresh: dict[str, Any] | None = None
        # For client filters and sorts: conditions on the record as a whole, one per single
        # relation followed, that its related record (if any) passes its list rule.
        self.guards: list[ColumnElement[bool]] = []
        # PocketBase's joins of the main query: set ``share`` to give multi-valued paths a
        # value on one joined row, the same row for every mention of the same path (two
        # ``?`` comparisons through ``members`` read one member). ``path_joins`` holds
        # them, in order, as (from, on) to LEFT JOIN to the record.
        self.share = False
        # A create rule: PocketBase reads the new record's own values as the bound values
        # they were given, so they compare without their columns' affinity.
        self.new_record = False
        self.path_joins: dict[tuple[str, ...], tuple[Any, ColumnElement[bool]]] = {}
        self._shared_items: dict[tuple[str, ...], ItemSource] = {}

    # -- entry point ---------------------------------------------------------------
    def resolve(self, identifier: Identifier) -> ResolvedField:
        name = identifier.name
        if not IDENTIFIER_FORMS.fullmatch(identifier.text):
            raise FilterError(f'unknown identifier "{identifier.text}"')
        if name.startswith("@request."):
            if name in AUTH_IDENTITY:
                self.auth_bound = True
            else:
                self.request_bound = True
            return self._request(name[len("@request."):], identifier.modifier)
        self._steps = 0
        if name.startswith("@collection."):
            self.request_bound = True
            resolved = self._collection(name[len("@collection."):], identifier.modifier)
            self.multi_steps[identifier] = self._steps + 1  # every row of the collection
            return resolved
        if name.startswith("@"):
            raise FilterError(f'unknown identifier "{name}"')
        resolved = self._path(self.table, self.col, name.split("."), depth=0, modifier=identifier.modifier)
        self.multi_steps[identifier] = self._steps
        return resolved

    # -- record fields -------------------------------------------------------------
    def _field(self, col: Collection, name: str) -> Field:
        f = col.field(name)
        if f is None or f.SECRET or (col.is_auth and name == "tokenKey" and not self.trusted):
            raise FilterError(f'unknown field "{name}" in collection "{col.name}"')
        if f.hidden and not self.sees_hidden:  # as unknown: names stay secret
            raise FilterError(f'unknown field "{name}" in collection "{col.name}"')
        return f

    def _path(
        self, table: Any, col: Collection, parts: list[str], depth: int, modifier: str | None = None
    ) -> ResolvedField:
        """A path of single relations is a correlated scalar subquery; a path that crosses a
        multiple relation, a back-relation, or ends in a multi-valued field after a relation
        is a multi-valued operand (see :meth:`_chain`)."""
        if depth > MAX_DEPTH:
            raise FilterError(f"relations can be followed at most {MAX_DEPTH} levels deep")
        head, rest = parts[0], parts[1:]
        if "_via_" in head and col.field(head) is None:
            return self._chain(table, col, parts, depth, modifier)
        f = self._field(col, head)
        column = self._visible_column(table, col, head)
        if not rest:
            resolved = self._terminal(f, column, modifier)
            if self.new_record and table is self.table:
                resolved = replace(resolved, computed=True)
            if modifier == "each" and f.multi and self.share and table is self.table:
                resolved = replace(resolved, shared=self._share_items((head, ":each"), column).value)
            if column is not table.c[head]:  # a hidden email: the comparison itself fails
                resolved = replace(resolved, guard=self._email_visible(table))
            return resolved
        if f.FILTER_KIND is Kind.JSON:
            path, applied = json_path(rest, modifier)
            return ResolvedField(expr=column, kind=Kind.JSON, json_path=path, modifier_applied=applied)
        target = self._target(col, f, parts)
        if f.multi:
            return self._chain(table, col, parts, depth, modifier)
        if rest == ["id"]:  # ``author.id`` is the stored id itself, as in PocketBase
            return self._terminal(f, column, modifier)
        alias = self.registry.table(target).alias()
        inner = self._path(alias, target, rest, depth + 1, modifier)
        if inner.multi:
            return self._chain(table, col, parts, depth, modifier)
        if table is self.table:  # (deeper hops: their subqueries apply the rules)
            self._guard_relation(target, column)
        conds = [alias.c.id == column, *self._joined(target, alias)]
        # Correlated with whatever encloses it, even when it ends up inside the FROM of an
        # item source (``author.tags:each``), where automatic correlation would not look.
        subquery: ColumnElement[Any] = (
            sa.select(inner.expr).where(*conds).limit(1).correlate_except(alias).scalar_subquery())
        if modifier == "length" and inner.modifier_applied:
            subquery = sa.func.coalesce(subquery, 0)  # no related record: no items
        shared = None  # ``owner.tags:each`` twice under ``?``: one joined item for both
        if modifier == "each" and inner.array and self.share and table is self.table:
            shared = self._shared(table, col, parts, modifier)
        return ResolvedField(
            expr=subquery, kind=inner.kind, json_path=inner.json_path, array=inner.array,
            item_kind=inner.item_kind, modifier_applied=inner.modifier_applied, computed=inner.computed,
            shared=shared)

    def _target(self, col: Collection, f: Field, parts: list[str]) -> Collection:
        if not isinstance(f, RelationField):
            raise FilterError(f'"{f.name}" is not a relation field, so "{".".join(parts)}" cannot be resolved')
        target = self.registry.find(f.collectionId)
        if target is None:
            raise FilterError(f'the collection of relation "{f.name}" no longer exists')
        return target

    # -- multi-valued paths --------------------------------------------------------
    def _chain(
        self, table: Any, col: Collection, parts: list[str], depth: int, modifier: str | None
    ) -> ResolvedField:
        """A path crossing multi-valued steps: its items are the final field's values over
        every combination of joined rows, iterated in a correlated EXISTS. ``:length`` and
        ``:each`` of the final field apply per joined row, as in PocketBase."""
        chain = self._chain_source(table, col, parts, depth, modifier)  # validates now
        # A single relation leading into the chain resolves the rest first, so the longest
        # chain seen for this identifier is the one that counts.
        self._steps = max(self._steps, chain.steps)

        def items() -> ItemSource:
            return self._chain_source(table, col, parts, depth, modifier).source

        shared = self._shared(table, col, parts, modifier) if self.share and table is self.table else None
        return ResolvedField(
            expr=table.c.id, multi=True, items=items, item_kind=chain.kind, modifier_applied=chain.modifier_applied,
            computed=chain.computed, counts=modifier == "length" and chain.kind is Kind.NUMBER and chain.computed,
            shared=shared)

    # -- shared joins (PocketBase's main query) --------------------------------------
    def _shared(self, table: Any, col: Collection, parts: list[str], modifier: str | None) -> ColumnElement[Any]:
        """The path's value on its joined row: each step a LEFT JOIN keyed by the path so
        far, so every mention of the same path reads the same row (see ``share``)."""
        cur, cur_col = table, col
        key: tuple[str, ...] = ()
        for i, name in enumerate(parts[:-1]):
            key = (*key, name)
            if "_via_" in name and cur_col.field(name) is None:
                cur, cur_col = self._share_back(cur, cur_col, name, key)
                continue
            f = self._field(cur_col, name)
            if f.FILTER_KIND is Kind.JSON:
                path, _ = json_path(parts[i + 1:], modifier)
                return self.dialect.json_text(JsonRef(cur.c[name], path))
            target = self._target(cur_col, f, parts)
            cur, cur_col = self._share_relation(cur, f, target, key), target
        name = parts[-1]
        f = self._field(cur_col, name)
        column = self._visible_column(cur, cur_col, name)
        if modifier == "each" and f.multi:
            return self._share_items((*key, name, ":each"), column).value
        if modifier == "length" and f.multi:
            return self.dialect.array_length(column)
        end = self._terminal(f, column, modifier)
        return self.dialect.array_text(column) if end.array else end.expr

    def _share_join(self, key: tuple[str, ...], build: Callable[[], tuple[Any, ColumnElement[bool]]]) -> Any:
        if key not in self.path_joins:
            self.path_joins[key] = build()
        return self.path_joins[key][0]

    def _share_items(self, key: tuple[str, ...], array: ColumnElement[Any]) -> ItemSource:
        if key not in self._shared_items:
            items = self.dialect.json_items(array)
            self._shared_items[key] = items
            self._share_join(key, lambda: (items.froms[0], sa.and_(sa.true(), *items.where)))
        return self._shared_items[key]

    def _share_relation(self, cur: Any, f: Field, target: Collection, key: tuple[str, ...]) -> Any:
        def build() -> tuple[Any, ColumnElement[bool]]:
            each = self.registry.table(target).alias()
            if f.multi:
                link = self._share_items((*key, ":ids"), cur.c[f.name]).value
            else:
                link = cur.c[f.name]
            return each, sa.and_(each.c.id == link, *self._joined(target, each))

        return self._share_join(key, build)

    def _share_back(self, cur: Any, cur_col: Collection, head: str, key: tuple[str, ...]) -> tuple[Any, Collection]:
        source, link = self._back_link(cur_col, head)

        def build() -> tuple[Any, ColumnElement[bool]]:
            each = self.registry.table(source).alias()
            if link.multi:  # "id IN (the items of the link)", as PocketBase joins it
                items = self.dialect.json_items(each.c[link.name])
                ids = sa.select(items.value).select_from(*items.froms).where(*items.where)
                linked: ColumnElement[bool] = cur.c.id.in_(ids)
            else:
                linked = each.c[link.name] == cur.c.id
            return each, sa.and_(linked, *self._joined(source, each))

        return self._share_join(key, build), source
    def _chain_source(
        self, table: Any, col: Collection, parts: list[str], depth: int, modifier: str | None
    ) -> _Chain:
        """The items (with fresh aliases), their kind, whether ``modifier`` was applied,
        and the number of multi-valued steps taken."""
        froms: list[Any] = []
        where: list[ColumnElement[bool]] = []
        cur, cur_col = table, col
        steps = 0
        for i, name in enumerate(parts[:-1]):
            if depth + i >= MAX_DEPTH:
                raise FilterError(f"relations can be followed at most {MAX_DEPTH} levels deep")
            if "_via_" in name and cur_col.field(name) is None:
                cur, cur_col = self._step_back(cur, cur_col, name, froms, where)
                steps += 1
                continue
            f = self._field(cur_col, name)
            if f.FILTER_KIND is Kind.JSON:
                path, applied = json_path(parts[i + 1:], modifier)
                value = self.dialect.json_text(JsonRef(cur.c[name], path))
                return _Chain(ItemSource(tuple(froms), value, tuple(where)), Kind.TEXT, applied, steps, True)
            target = self._target(cur_col, f, parts)
            cur, cur_col = self._step_relation(cur, f, target, froms, where), target
            steps += 1 if f.multi else 0
        source, kind, applied, computed = self._chain_end(cur, cur_col, parts[-1], modifier, froms, where)
        return _Chain(source, kind, applied, steps, computed)

    def _chain_end(
        self, cur: Any, cur_col: Collection, name: str, modifier: str | None,
        froms: list[Any], where: list[ColumnElement[bool]],
    ) -> tuple[ItemSource, Kind, bool, bool]:
        f = self._field(cur_col, name)
        column = self._visible_column(cur, cur_col, name)
        if modifier == "each" and f.multi:  # the items of every joined row's list
            values = self.dialect.json_items(column)
            if froms and froms[-1] is cur:
                # Joined to its related record as PocketBase joins it (LEFT JOIN): a related
                # record whose list is empty still gives one item, NULL.
                joined = cur.outerjoin(values.froms[0], sa.and_(sa.true(), *values.where))
                source = ItemSource((*froms[:-1], joined, *values.froms[1:]), values.value, tuple(where))
            else:
                source = ItemSource((*froms, *values.froms), values.value, (*where, *values.where))
            return source, Kind.TEXT, True, True
        if modifier == "length" and f.multi:
            length = self.dialect.array_length(column)
            return ItemSource(tuple(froms), length, tuple(where)), Kind.NUMBER, True, True
        end = self._terminal(f, column, modifier)
        value = self.dialect.array_text(column) if end.array else end.expr
        return ItemSource(tuple(froms), value, tuple(where)), end.kind, end.modifier_applied, end.computed

    def _step_relation(
        self, cur: Any, f: Field, target: Collection, froms: list[Any], where: list[ColumnElement[bool]]
    ) -> Any:
        each = self.registry.table(target).alias()
        if f.multi:
            ids = self.dialect.json_items(cur.c[f.name])
            froms.extend((*ids.froms, each))
            where.extend((*ids.where, each.c.id == ids.value))
        else:
            froms.append(each)
            where.append(each.c.id == cur.c[f.name])
        where.extend(self._joined(target, each))
        return each

    def _back_link(self, cur_col: Collection, head: str) -> tuple[Collection, RelationField]:
        """``posts_via_author``: the collection whose relation points here, and that field."""
        source_name, _, field_name = head.partition("_via_")
        source = self.registry.find(source_name)
        link = source.field(field_name) if source is not None else None
        if source is None or not isinstance(link, RelationField) or link.collectionId != cur_col.id:
            raise FilterError(f'unknown back-relation "{head}"')
        if link.hidden and not self.sees_hidden:
            raise FilterError(f'back-relation "{head}" goes through a hidden field')
        return source, link

    def _step_back(
        self, cur: Any, cur_col: Collection, head: str, froms: list[Any], where: list[ColumnElement[bool]]
    ) -> tuple[Any, Collection]:
        source, link = self._back_link(cur_col, head)
        field_name = link.name
        each = self.registry.table(source).alias()
        froms.append(each)
        if link.multi:
            links = self.dialect.json_items(each.c[field_name])
            froms.extend(links.froms)
            where.extend((*links.where, links.value == cur.c.id))
        else:
            where.append(each.c[field_name] == cur.c.id)
        where.extend(self._joined(source, each))
        return each, source

    def _joined(self, target: Collection, alias: Any) -> list[ColumnElement[bool]]:
        """The joined collection's list rule, for client filters (PocketBase's rule)."""
        if self.join_rule is None:
            return []
        self.request_bound = True
        cond = self.join_rule(target, alias)
        return [] if cond is None else [cond]

    def _guard_relation(self, target: Collection, column: ColumnElement[Any]) -> None:
        """PocketBase joins a followed relation and adds, for the whole query, "the joined
        record is missing or passes its list rule": a record whose related record the
        caller may not list drops out of the answer, whatever else the filter says."""
        joined = self.registry.table(target).alias()
        rule = self._joined(target, joined)
        if not rule:
            return
        hidden: sa.Select[Any] = sa.select(sa.literal_column("1")).select_from(joined).where(
            joined.c.id == column, sa.not_(sa.func.coalesce(rule[0], sa.false(), type_=sa.Boolean())))
        self.guards.append(sa.not_(hidden.exists()))

    def _visible_column(self, table: Any, col: Collection, name: str) -> ColumnElement[Any]:
        """An auth record's email reads as NULL to client filters and sorts unless the
        record shows it (``emailVisibility``), so emails cannot be guessed one filter at a
        time; as in PocketBase this holds for the caller's own record too."""
        column: ColumnElement[Any] = table.c[name]
        if self.trusted or self.info.is_superuser or not col.is_auth or name != "email":
            return column
        return sa.case((self._email_visible(table), column), else_=sa.null())

    @staticmethod
    def _email_visible(table: Any) -> ColumnElement[bool]:
        visible: ColumnElement[bool] = table.c.emailVisibility == sa.true()
        return visible

    def _terminal(self, f: Field, column: ColumnElement[Any], modifier: str | None) -> ResolvedField:
        """The field a path ends in, as PocketBase reads it. A multiple select, relation or
        file is its stored JSON array text, whose items ``:each`` and ``:length`` reach; on a
        single one ``:each`` is its value and ``:length`` 0 or 1. A modifier the type does
        not take (``:each`` on text, ``:isset`` outside ``@request``) is ignored."""
        if modifier in ("each", "length") and f.MULTI_VALUER and not f.multi:
            if modifier == "length":
                empty = sa.or_(column.is_(None), column == sa.literal("", sa.String()))
                count = sa.case((empty, 0), else_=1)
                return ResolvedField(expr=count, kind=Kind.NUMBER, modifier_applied=True, computed=True)
            return replace(self._column(f, column), modifier_applied=True, computed=True)
        if modifier in ("isset", "changed") or (modifier in ("each", "length") and not f.MULTI_VALUER):
            return replace(self._column(f, column), modifier_applied=True)
        return self._column(f, column)

    def _column(self, f: Field, column: ColumnElement[Any]) -> ResolvedField:
        if f.multi:
            return ResolvedField(expr=column, array=True, item_kind=Kind.TEXT)
        kind = f.FILTER_KIND
        if kind is Kind.JSON:
            return ResolvedField(expr=column, kind=Kind.JSON, json_path=())
        return ResolvedField(expr=column, kind=kind)

    def _collection(self, rest: str, modifier: str | None) -> ResolvedField:
        ref, _, field_path = rest.partition(".")
        name = ref.split(":", 1)[0]
        target = self.registry.find(name)
        if target is None or not field_path:
            raise FilterError(f'unknown collection "@collection.{ref}"')
        # Every mention of the same ``@collection.name[:alias]`` reads the same joined row, so
        # ``@collection.m.user ?= @request.auth.id && @collection.m.team ?= id`` needs one
        # membership row matching both; ``Filters`` joins them to the record accordingly.
        if self._fresh is not None:  # every mention its own rows (PocketBase's multi-match)
            fresh = self.registry.table(target).alias()
            self._fresh[f"{ref}#{len(self._fresh)}"] = fresh
            return self._path(fresh, target, field_path.split("."), depth=0, modifier=modifier)
        alias: Any = self.joins.get(ref)
        if alias is None:
            alias = self.registry.table(target).alias()
        resolved = self._path(alias, target, field_path.split("."), depth=0, modifier=modifier)
        self.joins[ref] = alias
        return resolved

    def check(self, identifier: Identifier) -> None:
        """Raise FilterError when ``identifier`` does not resolve; join nothing for it."""
        saved, self._fresh = self._fresh, {}
        try:
            self.resolve(identifier)
        finally:
            self._fresh = saved

    def every_row(self, build: Callable[[], ColumnElement[bool]]) -> ColumnElement[bool]:
        """PocketBase's rule for ``@collection`` under a plain operator: besides the joined
        row, *every* row of the collection must meet the comparison (a row where it is
        unknown does not count against it). ``build`` compiles the comparison again; here
        its ``@collection`` references read fresh aliases, and no row may fail it."""
        saved, self._fresh = self._fresh, {}
        try:
            cond = build()
            aliases = list(self._fresh.values())
        finally:
            self._fresh = saved
        if not aliases:
            return sa.true()
        failing: sa.Select[Any] = sa.select(sa.literal_column("1")).select_from(*aliases).where(sa.not_(cond))
        return sa.not_(failing.exists())

    # -- @request.* ----------------------------------------------------------------
    def _request(self, path: str, modifier: str | None) -> ResolvedField:
        section, _, key = path.partition(".")
        info = self.info
        if section == "method" and not key:
            return ResolvedField.literal(info.method)
        if section == "context" and not key:
            return ResolvedField.literal(info.context)
        if section == "auth":
            return self._auth(key)
        if section in ("query", "headers"):
            source = info.query if section == "query" else info.headers
            if modifier == "isset":
                return ResolvedField.literal(key in source, modifier_applied=True)
            return ResolvedField.literal(source.get(key))
        if section == "body":
            return self._body(key, modifier)
        return ResolvedField.literal(None)

    def _auth(self, key: str) -> ResolvedField:
        auth = self.info.auth
        if auth is None or not key:
            return ResolvedField.literal(None)
        if key == "collectionId":
            return ResolvedField.literal(auth.collection.id)
        if key == "collectionName":
            return ResolvedField.literal(auth.collection.name)
        name, _, rest = key.partition(".")
        f = auth.collection.field(name)
        if f is None or f.SECRET:
            return ResolvedField.literal(None)
        if rest:
            if not isinstance(f, RelationField) or f.multi:
                return ResolvedField.literal(None)
            target = self.registry.find(f.collectionId)
            if target is None:
                return ResolvedField.literal(None)
            alias = self.registry.table(target).alias()
            inner = RecordResolver(self.registry, target, alias, self.info, self.dialect, trusted=True)
            resolved = inner._path(alias, target, rest.split("."), depth=1)
            linked = auth.record.get(name) or ""
            if resolved.multi or resolved.items is not None:
                raise FilterError("@request.auth paths may not end in a multi-valued field")
            sub = sa.select(resolved.expr).where(alias.c.id == sa.literal(linked)).limit(1).scalar_subquery()
            return ResolvedField(expr=sub, kind=resolved.kind, json_path=resolved.json_path)
        return ResolvedField.literal(f.from_db(auth.record.get(name)))

    def _body(self, key: str, modifier: str | None) -> ResolvedField:
        body = self.info.body
        name = key.split(".", 1)[0]
        present = name in body
        if modifier == "isset":
            return ResolvedField.literal(present, modifier_applied=True)
        f = self.col.field(name)
        value: Any = body.get(name)
        if f is not None and present:
            try:
                value = f.normalize(value, FieldContext())
            except Exception:  # noqa: BLE001 - an invalid value simply compares as submitted
                value = body.get(name)
        if value is None and (modifier in ("length", "each") or (f is not None and f.multi)):
            value = []  # an absent multi-valued body key has no items
        if modifier == "changed":
            if not present or f is None or name not in self.table.c:
                return ResolvedField.literal(False, modifier_applied=True)
            column = self.table.c[name]
            changed = sa.or_(column.is_(None), column != sa.literal(f.to_db(value), column.type))
            return ResolvedField(expr=sa.case((changed, True), else_=False), kind=Kind.BOOL, modifier_applied=True)
        return ResolvedField.literal(value)
