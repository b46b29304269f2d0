"""Whether a subscriber may see a changed record: the collection's rule (and the
subscription's filter) through the one access evaluator, as SQL.

Each record is checked as the change carries it (as it was stored by the write, or as
it was before a delete): the rule runs over a one-row subquery of its values in place
of the collection's table, with relations it reads resolved against the other tables.
A later write to the same record does not change what an earlier event is checked on.
The one-row source of a collection is built once per schema, its values bound per
check, so rules compiled over it are kept as the REST API's are.

:func:`owner_field` finds the field a rule ties to the caller (``owner =
@request.auth.id``): only clients bound to that record can match, which lets dispatch
skip every other subscriber of the collection without asking the database.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bastion.core.access import RequestInfo, rule_to_match
from bastion.core.errors import BastionError
from bastion.core.ports import Database
from bastion.core.records.filters import Filters
from bastion.core.records.record import Record
from bastion.core.schema.collections import Collection
from bastion.core.schema.registry import Registry
from bastion.rules.ast import And, Comparison, Expr, Identifier, Op
from bastion.rules.errors import FilterError
from bastion.rules.parser import parse

AUTH_ID = "@request.auth.id"


class Checks:
    def __init__(self, db: Database, registry: Registry, filters: Filters):
        self.db = db
        self.registry = registry
        self.filters = filters
        self._owners: dict[tuple[str, str], str | None] = {}
        self._sources: dict[str, tuple[sa.Table, Any, list[tuple[str, str]]]] = {}

    async def visible(
        self, info: RequestInfo, col: Collection, rule_name: str, filter_text: str, record: Record,
    ) -> bool:
        """Whether ``record`` (its values as given) passes ``rule_name`` of ``col`` and
        ``filter_text`` for ``info``'s caller."""
        try:
            rule = rule_to_match(info, col, rule_name)
        except BastionError:  # a locked rule, an API key that does not allow it
            return False
        if rule is None and not filter_text:
            return True
        source, names = self._source(col)
        try:
            conds = []
            if rule is not None:
                conds.append(self.filters.compile(rule, info, col, source, keep=True))
            if filter_text:  # hidden fields are unknown there, even to superusers
                conds.append(self.filters.client_filter(filter_text, col, source, info, hidden=False))
        except BastionError:  # a filter that does not compile, or that only superusers may use
            return False
        stmt = sa.select(sa.literal(1)).select_from(source).where(*conds).limit(1)
        values = {param: record.get(name) for name, param in names}
        async with self.db.read() as conn:
            return await conn.fetch_one(stmt, values) is not None

    def _source(self, col: Collection) -> tuple[Any, list[tuple[str, str]]]:
        """The one-row stand-in of ``col``'s table, and its (column, parameter) names."""
        table = self.registry.table(col)
        kept = self._sources.get(col.id)
        if kept is None or kept[0] is not table:
            names = [(name, f"rt_{i}") for i, name in enumerate(table.c.keys())]
            row = sa.select(*(sa.bindparam(param, type_=table.c[name].type).label(name)
                              for name, param in names)).subquery("rt_record")
            kept = (table, row, names)
            self._sources[col.id] = kept
        return kept[1], kept[2]

    def owner_field(self, col: Collection, rule_name: str) -> str | None:
        """The single-valued field of ``col`` the rule requires to equal the caller's id
        (``owner = @request.auth.id``, alone or and-ed with more), or None."""
        rule = col.rule(rule_name)
        if not rule:
            return None
        key = (col.id + "\x00" + rule_name, rule)
        if key not in self._owners:
            if len(self._owners) > 1000:
                self._owners.clear()
            self._owners[key] = _owner_field(col, rule)
        return self._owners[key]


def _owner_field(col: Collection, rule: str) -> str | None:
    try:
        tree: Expr = parse(rule)
    except FilterError:
        return None
    for item in tree.items if isinstance(tree, And) else (tree,):
        if not isinstance(item, Comparison) or item.op is not Op.EQ:
            continue
        for mine, theirs in ((item.left, item.right), (item.right, item.left)):
            if (isinstance(theirs, Identifier) and theirs.name == AUTH_ID and theirs.modifier is None
                    and isinstance(mine, Identifier) and mine.modifier is None and "." not in mine.name):
                f = col.field(mine.name)
                if f is not None and not f.multi:
                    return mine.name
    return None
