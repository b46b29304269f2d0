"""Client ``filter``/``sort`` parameters and stored rules, compiled through ``bastion.rules``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bastion.core.access import RequestInfo, rule_to_match
from bastion.core.errors import BadRequest, Forbidden, InvalidQuery
from bastion.core.records.resolver import RecordResolver
from bastion.core.schema.cache import QueryKey, RuleKey
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry
from bastion.rules import (
    And,
    Comparison,
    Expr,
    FilterError,
    Identifier,
    Or,
    RuleDialect,
    SimpleFieldResolver,
    compile_filter,
    compile_sort,
    get_dialect,
    parse,
    parse_sort,
    uses_macros,
)

log = logging.getLogger("bastion.rules")
# Client filters and sorts longer than this are compiled on every request and never kept:
# what a client can make the server keep stays small (2,048 entries of short text).
MAX_KEPT_TEXT = 128

# A client filter checked, to be compiled once the collection and table are known.
FilterBuilder = Callable[[Collection, sa.Table, RequestInfo], sa.ColumnElement[bool]]


@dataclass(frozen=True)
class FanOut:
    """How many multi-valued steps (back-relations ``x_via_y``, multiple relations,
    ``@collection`` joins) a client filter may take: in one comparison, both operands
    together, and in the whole filter.

    A comparison visits every combination of the rows its steps reach, so its cost grows
    as rows ** (steps + 1): ``owner.posts_via_owner.owner.posts_via_owner.title ?~
    owner.posts_via_owner.id`` takes three steps and, for a user with 106 posts, ran 73 s
    on SQLite (106 ** 4 comparisons). Two steps stay near rows ** 3 per comparison, and
    the statement time limit bounds what is left. Checked before the query runs.
    """

    per_comparison: int
    per_filter: int


# Every caller but superusers (guests, users, API keys).
CLIENT_FAN_OUT = FanOut(per_comparison=2, per_filter=8)
# Superusers could run any SQL through a view collection; their filters get more room
# (the dashboard) and are still refused before the query rather than timed out during it.
SUPERUSER_FAN_OUT = FanOut(per_comparison=4, per_filter=16)


def invalid(kind: str, exc: FilterError) -> BadRequest:
    return InvalidQuery(f"Invalid {kind}: {exc}")


def _comparisons(node: Expr) -> Iterator[Comparison]:
    if isinstance(node, And | Or):
        for item in node.items:
            yield from _comparisons(item)
    else:
        yield node


def _shares_paths(tree: Expr) -> bool:
    """Whether two mentions under ``?`` operators go through the same relation or list
    (``members.id ?= X && members.role ?= "admin"``): PocketBase reads them on one joined
    row, so the filter is evaluated over the record's joins (see ``Filters._condition``)."""
    heads: list[str] = []
    for comparison in _comparisons(tree):
        if not comparison.op.is_any:
            continue
        for side in (comparison.left, comparison.right):
            if isinstance(side, Identifier) and not side.name.startswith("@") and (
                    "." in side.name or side.modifier == "each"):
                heads.append(side.name.split(".", 1)[0])
    return len(heads) != len(set(heads))


def _multiplying(key: tuple[str, ...]) -> bool:
    """Whether a shared path join (``RecordResolver.path_joins``) can give a record more
    than one row: the items of a list or multiple relation, or a back-relation."""
    return key[-1] in (":ids", ":each") or "_via_" in key[-1]


def check_sort_fan_out(resolver: RecordResolver, bound: FanOut) -> None:
    """Refuse a sort whose keys take more multi-valued steps than ``bound``: each such key
    reads every row its path reaches, for every record sorted."""
    for identifier, taken in resolver.multi_steps.items():
        if taken > bound.per_comparison:
            raise FilterError(
                f"too many multi-valued relation steps in the sort key at position {identifier.pos} "
                f"({taken}; at most {bound.per_comparison})", identifier.pos)
    total = sum(resolver.multi_steps.values())
    if total > bound.per_filter:
        raise FilterError(f"too many multi-valued relation steps in the sort ({total}; at most {bound.per_filter})", 0)


def check_fan_out(text: str, resolvers: list[RecordResolver], bound: FanOut) -> None:
    """Refuse ``text`` when its comparisons take more multi-valued steps than ``bound``.

    The ``@collection`` rows are joined once to the record for the whole filter (each
    ``name:alias`` one join), so their number multiplies every comparison: together
    they are held to the bound of one comparison."""
    steps: dict[Identifier, int] = {}
    for resolver in resolvers:
        steps.update(resolver.multi_steps)
    joins = sum(len(resolver.joins) for resolver in resolvers)
    if joins > bound.per_comparison:
        raise FilterError(
            f"too many @collection joins in the filter ({joins}; at most {bound.per_comparison}): "
            "each multiplies the rows the query reads", 0)
    shared = joins + sum(_multiplying(key) for resolver in resolvers for key in resolver.path_joins)
    if shared > bound.per_comparison:
        raise FilterError(
            f"too many multi-valued paths read together in the filter ({shared}; at most {bound.per_comparison}): "
            "when ? comparisons mention one relation or list twice, every multi-valued path and "
            "@collection join is joined to the record and multiplies the rows the query reads", 0)
    if not any(steps.values()):
        return
    total = 0
    for comparison in _comparisons(parse(text)):
        taken = sum(steps.get(side, 0) for side in (comparison.left, comparison.right) if isinstance(side, Identifier))
        if taken > bound.per_comparison:
            raise FilterError(
                f"too many multi-valued relation steps in the comparison at position {comparison.pos} "
                f"({taken}; at most {bound.per_comparison}): each back-relation (_via_), multiple relation "
                "and @collection join multiplies the rows the query reads", comparison.pos)
        total += taken
    if total > bound.per_filter:
        raise FilterError(
            f"too many multi-valued relation steps in the filter ({total}; at most {bound.per_filter}): "
            "each back-relation (_via_), multiple relation and @collection join multiplies the rows "
            "the query reads", 0)


class Filters:
    """Compiles filters, sorts and rules for one database engine's rule dialect (given
    as the dialect or its engine's name)."""

    def __init__(self, registry: Registry, dialect: str | RuleDialect):
        self.registry = registry
        self.dialect = get_dialect(dialect)

    # -- client parameters ---------------------------------------------------------
    def client_filter(
        self, text: str, col: Collection, table: sa.Table, info: RequestInfo, hidden: bool = True,
    ) -> sa.ColumnElement[bool]:
        """A client's ``filter`` parameter over ``col`` as a condition (400 when invalid,
        403 for what only superusers may filter by). ``hidden=False``: hidden fields are
        unknown even to superusers (realtime subscriptions' filters)."""
        return self._builder(text, info, hidden)(col, table, info)

    def _builder(self, text: str, info: RequestInfo, hidden: bool = True) -> FilterBuilder:
        """Check ``text`` now (syntax, privileges) and compile it once the collection is known."""
        if "\x00" in text:
            raise BadRequest("Invalid filter: NUL characters are not allowed.")
        if not info.is_superuser:
            for marker in ("@collection.", "@request."):
                if marker in text:
                    raise Forbidden(f"Only superusers can filter by {marker}")
        try:
            reusable = len(text) <= MAX_KEPT_TEXT and not uses_macros(parse(text))
        except FilterError as exc:
            raise invalid("filter", exc) from None

        def build(col: Collection, table: sa.Table, req: RequestInfo) -> sa.ColumnElement[bool]:
            key = self._filter_key(col, table, text, req, hidden)
            cond = self.registry.cache.filter(key) if reusable else None
            if cond is not None:
                return cond
            resolvers: list[RecordResolver] = []

            def resolver_for(t: Any) -> RecordResolver:
                resolvers.append(self.client_resolver(col, t, req))
                resolvers[-1].sees_hidden = resolvers[-1].sees_hidden and hidden
                return resolvers[-1]

            try:
                cond = self._condition(text, table, resolver_for)
                check_fan_out(text, resolvers, SUPERUSER_FAN_OUT if req.is_superuser else CLIENT_FAN_OUT)
            except FilterError as exc:
                raise invalid("filter", exc) from None
            if reusable and not any(r.request_bound for r in resolvers):
                self.registry.cache.keep_filter(key, cond)
            return cond

        return build

    def ordering(
        self, text: str, col: Collection, table: sa.Table, info: RequestInfo
    ) -> tuple[list[Any], sa.ColumnElement[bool]]:
        """ORDER BY clauses for ``text``, and what sorting by it adds to the query's
        conditions: as in PocketBase, a record whose related record on a sort path the
        caller may not list drops out."""
        if not text:
            return [], sa.true()
        if not info.is_superuser:
            for marker in ("@collection.", "@request."):
                if marker in text:
                    raise Forbidden(f"Only superusers can filter by {marker}")
        key = self._sort_key(col, table, text, info)
        cached = self.registry.cache.sort(key)
        if cached is not None:
            return list(cached), sa.true()  # kept only when nothing in it depends on the caller
        resolver = self.client_resolver(col, table, info)
        # The engine's own insertion-order column where it has one, else the id.
        rowid = None if self.dialect.implicit_rowid() is not None else table.c.id
        try:
            items = parse_sort(text)
            # An @collection key gives every record the same value (PocketBase joins the
            # whole collection and orders by an unspecified row of it): checked, not used.
            for item in items:
                if item.name.startswith("@collection."):
                    resolver.check(item.field)
            items = tuple(item for item in items if not item.name.startswith("@collection."))
            clauses = compile_sort(items, resolver, self.dialect, rowid=rowid)
            check_sort_fan_out(resolver, SUPERUSER_FAN_OUT if info.is_superuser else CLIENT_FAN_OUT)
        except FilterError as exc:
            raise invalid("sort", exc) from None
        if not resolver.request_bound and not resolver.guards and len(text) <= MAX_KEPT_TEXT:
            self.registry.cache.keep_sort(key, clauses)
        return clauses, sa.and_(sa.true(), *resolver.guards)

    def reused(self, col: Collection, table: sa.Table, filter_text: str, sort: str, info: RequestInfo) -> bool:
        """Whether the client filter and sort over ``col`` were compiled once and kept
        (they depend on nothing but the schema and whether the caller is a superuser),
        so that a statement built from them may be kept too."""
        cache = self.registry.cache
        return ((not filter_text or cache.filter(self._filter_key(col, table, filter_text, info)) is not None)
                and (not sort or cache.sort(self._sort_key(col, table, sort, info)) is not None))

    @staticmethod
    def _filter_key(col: Collection, table: sa.Table, text: str, info: RequestInfo, hidden: bool = True) -> QueryKey:
        # Compiled without hidden fields, a filter is kept apart (a NUL never occurs in
        # a filter's text, so no other key can name it).
        return QueryKey(col.id, table, text if hidden else "\x00no-hidden\x00" + text, info.is_superuser)

    @staticmethod
    def _sort_key(col: Collection, table: sa.Table, text: str, info: RequestInfo) -> QueryKey:
        return QueryKey(col.id, table, text, info.is_superuser)

    def _condition(
        self, text: str, table: Any, resolver_for: Callable[[Any], RecordResolver]
    ) -> sa.ColumnElement[bool]:
        """Compile ``text`` over ``table``. With ``@collection`` references the condition is
        evaluated over the record joined (ON TRUE) with those collections' rows, as
        ``id IN (SELECT ...)``, so each ``@collection.name[:alias]`` is one joined row and
        relation paths stay correlated to the record (an empty collection still joins one
        NULL row, so other branches of the condition can match)."""
        tree = parse(text)
        share = _shares_paths(tree)
        if share or "@collection." in text:
            inner = table.alias()
            resolver = resolver_for(inner)
            resolver.share = share
            cond = compile_filter(tree, resolver, self.dialect)
            source = inner
            for alias in resolver.joins.values():
                source = source.outerjoin(alias, sa.true())
            for joined, on in resolver.path_joins.values():
                source = source.outerjoin(joined, on)
            rows = sa.select(inner.c.id).select_from(source).where(cond, *resolver.guards)
            within: sa.ColumnElement[bool] = table.c.id.in_(rows)
            return within
        resolver = resolver_for(table)
        cond = compile_filter(tree, resolver, self.dialect)
        return sa.and_(cond, *resolver.guards) if resolver.guards else cond

    def client_resolver(self, col: Collection, table: Any, info: RequestInfo) -> RecordResolver:
        """A resolver for client filters/sorts: joined collections need list access."""

        def join_rule(target: Collection, alias: Any) -> sa.ColumnElement[bool] | None:
            try:
                rule = rule_to_match(info, target, "listRule")
            except Forbidden as exc:
                if info.api_key is not None:
                    raise FilterError(f'cannot filter through "{target.name}": {exc.message}') from None
                raise FilterError(
                    f'only superusers can filter through "{target.name}" (its list rule is locked)') from None
            return None if rule is None else self.compile(rule, info, target, alias)

        return RecordResolver(self.registry, col, table, info, self.dialect, trusted=False, join_rule=join_rule)

    def plain(self, table: sa.Table, text: str, allowed: tuple[str, ...]) -> sa.ColumnElement[bool]:
        """A filter over plain columns of a system table (e.g. the collections list)."""
        try:
            return compile_filter(text, SimpleFieldResolver(table, allowed), self.dialect)
        except FilterError as exc:
            raise invalid("filter", exc) from None

    # -- stored rules --------------------------------------------------------------
    def check_rule(self, rule: str, col: Collection) -> str | None:
        """The problem with a rule for ``col``, or None when it compiles."""
        table = self.registry.table(col) if self.registry.find(col.id) is col else _table_for(col, self.registry)
        resolver = RecordResolver(self.registry, col, table, RequestInfo(), self.dialect, trusted=True)
        try:
            compile_filter(rule, resolver, self.dialect)
        except FilterError as exc:
            return str(exc)
        return None

    def compile(
        self, rule: str, info: RequestInfo, col: Collection, table: sa.Table, new_record: bool = False,
        keep: bool = False,
    ) -> sa.ColumnElement[bool]:
        """``core.access.RuleCompiler``: a stored rule as a condition; a broken rule denies.
        ``keep``: ``table`` stands for the collection's table for as long as the schema
        lasts (realtime's one-row source), so what is compiled over it may be kept too.

        A rule that reads nothing of the request but who the caller is (the usual
        ``owner = @request.auth.id``) is compiled once per schema and caller and kept."""
        auth = info.auth
        caller = None if auth is None else (auth.collection.id, auth.id)
        cache = self.registry.cache
        anyone_key = RuleKey(col.id, table, rule, new_record=new_record)
        caller_key = RuleKey(col.id, table, rule, by_caller=True, caller=caller, new_record=new_record)
        for key in (anyone_key, caller_key):
            kept = cache.rule(key)
            if kept is not None:
                return kept
        resolvers: list[RecordResolver] = []

        def resolver_for(t: Any) -> RecordResolver:
            resolvers.append(RecordResolver(self.registry, col, t, info, self.dialect, trusted=True))
            resolvers[-1].new_record = new_record
            return resolvers[-1]

        try:
            cond = self._condition(rule, table, resolver_for)
            reusable = not uses_macros(parse(rule))
        except FilterError as exc:
            log.warning("rule of collection %s does not compile (%s); denying", col.name, exc)
            return sa.false()
        # Only over the collection's own table: a rule compiled over a fresh alias (a
        # client filter joining this collection) would never be looked up again.
        own_table = keep or (self.registry.find(col.id) is col and self.registry.table(col) is table)
        if reusable and own_table and not any(r.request_bound for r in resolvers):
            by_caller = any(r.auth_bound for r in resolvers)
            cache.keep_rule(caller_key if by_caller else anyone_key, cond)
        return cond

    def kept(self, cond: sa.ColumnElement[bool]) -> bool:
        """Whether ``cond`` is a rule condition kept by :meth:`compile` (so a statement
        built on it may be kept under it)."""
        return self.registry.cache.is_kept_rule(cond)


def _table_for(col: Collection, registry: Registry) -> sa.Table:
    from bastion.core.schema.tables import build_table

    return build_table(col, registry.sql)
