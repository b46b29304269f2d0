"""A record: one row of a collection, with the collection that says what its values mean.

The write paths (``RecordService.create`` and ``update``, ``record_input.prepare``) carry
a ``Record`` instead of a bare row, so whatever observes a write (hooks, realtime, an
outbox) receives the collection and typed access to each field. A ``Record`` is a
read-only mapping of field name to stored value, so it goes wherever a database row
goes; the API's JSON is still made by ``RecordService.to_api``, which decides what each
caller may see.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from bastion.core.fields import Field
from bastion.core.schema.collections import Collection


class Record(Mapping[str, Any]):
    """The stored values of one record of ``collection``, by field name."""

    __slots__ = ("_values", "collection")

    def __init__(self, collection: Collection, values: Mapping[str, Any]):
        self.collection = collection
        # Kept as given (a database row, or a dict no one else holds), not copied: a
        # record is made on every write, and copying a row cost a few percent of one.
        self._values = values

    @property
    def id(self) -> str:
        return str(self._values.get("id") or "")

    def field(self, name: str) -> Field | None:
        return self.collection.field(name)

    def value(self, name: str) -> Any:
        """A field's value as the API shows it (a number as a number, an unset list as
        ``[]``); a column the collection has no field for, as stored."""
        f = self.collection.field(name)
        stored = self._values.get(name)
        return stored if f is None else f.from_db(stored)

    def with_values(self, changes: Mapping[str, Any]) -> Record:
        """This record with ``changes`` applied (stored values), as a new record."""
        return Record(self.collection, {**self._values, **changes})

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Record({self.collection.name!r}, id={self.id!r})"
