"""What is worked out from the schema once and kept until the schema changes.

Compiling a rule or a client filter, choosing the fields a caller sees and building a
list statement cost more than running them on a warm database, so each is kept here
under a typed key, one least-recently-used table per kind of entry. Every schema
change empties all of them (:meth:`SchemaCache.clear`, called by the registry): a
filter over one collection may join others, so nothing survives a change.

A key names the collection by id and holds its SQLAlchemy table: a value compiled over
one table object is only ever found again with that same object.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

import sqlalchemy as sa

if TYPE_CHECKING:
    from bastion.core.schema.collections import Collection

K = TypeVar("K")
V = TypeVar("V")

# The converter of a field's stored value to its API value, by field name.
Shown = tuple[tuple[str, Any], ...]


class _Lru(Generic[K, V]):
    """A dictionary that forgets its least recently used entry past ``limit``."""

    def __init__(self, limit: int):
        self.limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.limit:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class QueryKey(NamedTuple):
    """A client filter or sort over one collection's table, for superusers or not."""

    collection_id: str
    table: Any
    text: str
    superuser: bool


class RuleKey(NamedTuple):
    """A stored rule over one collection's table. When the compiled rule holds who the
    caller is, ``by_caller`` is set and ``caller`` is (auth collection id, record id), or
    None for a guest: a guest's condition is never anyone else's."""

    collection_id: str
    table: Any
    rule: str
    by_caller: bool = False
    caller: tuple[str, str] | None = None
    new_record: bool = False  # a create rule (see ``RecordResolver.new_record``)


class ListKey(NamedTuple):
    """A list request's page and count statements."""

    collection_id: str
    table: Any
    filter_text: str
    sort: str
    superuser: bool
    per_page: int
    skip_total: bool
    access: int  # id() of the list rule's kept condition (0 for none)


@dataclass(frozen=True)
class ListStatements:
    page: sa.Select[Any]
    count: sa.Select[Any] | None
    access: sa.ColumnElement[bool] | None  # the kept rule condition they were built on


class SchemaCache:
    """Typed, bounded tables of what the current schema compiles to."""

    def __init__(self, limit: int = 256):
        """At most ``limit`` entries of each kind, twice that of rule conditions (kept
        per caller when a rule names who the caller is)."""
        self.generation = 0  # how many schema changes emptied the cache
        self._shown: _Lru[tuple[str, bool], tuple[Collection, Shown]] = _Lru(limit)
        self._filters: _Lru[QueryKey, sa.ColumnElement[bool]] = _Lru(limit)
        self._sorts: _Lru[QueryKey, tuple[Any, ...]] = _Lru(limit)
        self._rules: _Lru[RuleKey, sa.ColumnElement[bool]] = _Lru(2 * limit)
        self._kept_rules: _Lru[int, sa.ColumnElement[bool]] = _Lru(2 * limit)
        self._lists: _Lru[ListKey, ListStatements] = _Lru(limit)

    def clear(self) -> None:
        """Forget everything: the schema changed."""
        self.generation += 1
        for table in (self._shown, self._filters, self._sorts, self._rules, self._kept_rules, self._lists):
            table.clear()

    def sizes(self) -> dict[str, int]:
        return {"shown": len(self._shown), "filters": len(self._filters), "sorts": len(self._sorts),
                "rules": len(self._rules), "lists": len(self._lists)}

    # -- the fields a caller sees ------------------------------------------------------
    def shown(self, col: Collection, superuser: bool) -> Shown | None:
        kept = self._shown.get((col.id, superuser))
        return kept[1] if kept is not None and kept[0] is col else None

    def keep_shown(self, col: Collection, superuser: bool, shown: Shown) -> None:
        self._shown.put((col.id, superuser), (col, shown))

    # -- client filters and sorts ------------------------------------------------------
    def filter(self, key: QueryKey) -> sa.ColumnElement[bool] | None:
        return self._filters.get(key)

    def keep_filter(self, key: QueryKey, condition: sa.ColumnElement[bool]) -> None:
        self._filters.put(key, condition)

    def sort(self, key: QueryKey) -> tuple[Any, ...] | None:
        return self._sorts.get(key)

    def keep_sort(self, key: QueryKey, clauses: list[Any]) -> None:
        self._sorts.put(key, tuple(clauses))

    # -- stored rules ------------------------------------------------------------------
    def rule(self, key: RuleKey) -> sa.ColumnElement[bool] | None:
        return self._rules.get(key)

    def keep_rule(self, key: RuleKey, condition: sa.ColumnElement[bool]) -> None:
        self._rules.put(key, condition)
        self._kept_rules.put(id(condition), condition)

    def is_kept_rule(self, condition: sa.ColumnElement[bool]) -> bool:
        """Whether ``condition`` is a kept rule (a statement built on it may be kept too)."""
        return self._kept_rules.get(id(condition)) is condition

    # -- list statements ---------------------------------------------------------------
    def statements(self, key: ListKey) -> ListStatements | None:
        return self._lists.get(key)

    def keep_statements(self, key: ListKey, statements: ListStatements) -> None:
        self._lists.put(key, statements)
