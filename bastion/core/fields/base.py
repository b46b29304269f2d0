"""The contract every field type fulfils.

A field turns untrusted input into a stored value (``normalize``), applies the body
modifiers it takes (``modifier_keys``, ``modify``), checks a value against its options
(``validate``), says how it is stored (``storage``, ``column_type``) and how a stored value
is shown (``from_db``) and described (``json_schema``). Class-level capabilities say how
the rest of the code treats it (``FILTER_KIND``, ``SORTABLE``, ``SECRET``, ``SERVER_SET``),
so nothing outside this package asks for a type by name. Options are read from JSON by
``parse_options``, which records every problem in ``errors`` instead of stopping at the
first.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import sqlalchemy as sa

from bastion.core.errors import FieldError
from bastion.core.fields.gocast import to_string
from bastion.core.fields.options import Errors, opt_bool, opt_str
from bastion.core.ports import DatabaseEngine
from bastion.rules import Kind

NAME_RE = re.compile(r"^\w+$", re.ASCII)


class StorageKind(enum.Enum):
    """How a value is stored: one column type per kind and database."""

    ID = "id"
    TEXT = "text"
    NUMBER = "number"
    BOOL = "bool"
    JSON = "json"


@dataclass
class FieldContext:
    """What a field may need to know while normalizing a value."""

    is_new: bool = True
    old_value: Any = None


@dataclass
class Field:
    """Common keys of every field: ``id name type system hidden presentable required help``."""

    TYPE: ClassVar[str] = ""
    # Holds a list of values when ``multi`` (select, relation, file): filters reach the
    # items with ``:each`` and ``:length``, which other types ignore, as in PocketBase.
    MULTI_VALUER: ClassVar[bool] = False
    # How filters and rules compare a single value of this type (JSON: by path).
    FILTER_KIND: ClassVar[Kind] = Kind.TEXT
    # Whether a keyset (cursor) page may sort by it, when it holds one value.
    SORTABLE: ClassVar[bool] = False
    # Never shown, filtered on or listed in a view: a secret such as a password hash.
    SECRET: ClassVar[bool] = False
    # Set by the server on writes; a submitted value is ignored (autodate).
    SERVER_SET: ClassVar[bool] = False
    name: str = ""
    id: str = ""
    system: bool = False
    hidden: bool = False
    presentable: bool = False
    required: bool = False
    help: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    # -- options -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], errors: Errors) -> Field:
        f = cls()
        f.name = opt_str(data, "name", errors, max_length=255)
        f.id = opt_str(data, "id", errors, max_length=100)
        f.system = opt_bool(data, "system", errors)
        f.hidden = opt_bool(data, "hidden", errors)
        f.presentable = opt_bool(data, "presentable", errors)
        f.required = opt_bool(data, "required", errors)
        f.help = opt_str(data, "help", errors, max_length=1000)
        f.parse_options(data, errors)
        return f

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        """Read the type's own options; subclasses override."""

    def options_dict(self) -> dict[str, Any]:
        """The type's own options as JSON; subclasses override."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": self.TYPE,
            "system": self.system,
            "hidden": self.hidden,
            "presentable": self.presentable,
        }
        if self.has_help:
            out["help"] = self.help
        if self.has_required:
            out["required"] = self.required
        out.update(self.options_dict())
        return out

    has_required: ClassVar[bool] = True
    has_help: ClassVar[bool] = True  # (PocketBase's autodate fields have no help text)

    # -- storage -------------------------------------------------------------------
    @property
    def storage(self) -> StorageKind:
        return StorageKind.TEXT

    @property
    def multi(self) -> bool:
        """True when the value is a list (multi select, relation or file)."""
        return False

    @property
    def nullable(self) -> bool:
        return False

    def column_type(self, sql: DatabaseEngine) -> sa.types.TypeEngine[Any]:
        """The column type of this field on the engine ``sql`` describes."""
        kind = self.storage
        if kind is StorageKind.ID:
            return sa.String(255)
        if kind is StorageKind.NUMBER:
            return sa.Double()
        if kind is StorageKind.BOOL:
            return sa.Boolean()
        if kind is StorageKind.JSON:
            return sql.json_type()
        return sql.text_type()

    def zero(self) -> Any:
        return ""

    def server_default(self) -> str | None:
        """The SQL literal that fills existing rows when the column is added."""
        return "''"

    # -- values --------------------------------------------------------------------
    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        """Coerce untrusted input into the stored value or raise FieldError."""
        return raw

    def modifier_keys(self) -> tuple[str, ...]:
        """The body keys besides the field's name that change it (``f+``, ``+f``, ``f-``);
        other such keys are ignored, as in PocketBase."""
        return ()

    def modify(self, value: Any, body: Mapping[str, Any], ctx: FieldContext) -> Any:
        """``value`` (the current or just submitted one) changed by the modifier keys
        present in ``body``; raise FieldError on an invalid operand."""
        return value

    def validate(self, value: Any) -> None:
        """Check a normalized value against the options; raise FieldError."""
        if self.required and self.is_blank(value):
            raise FieldError("validation_required", "Cannot be blank")

    def is_blank(self, value: Any) -> bool:
        return value in ("", None, [], {})

    def from_db(self, value: Any) -> Any:
        """A stored value as the API shows it."""
        return self.zero() if value is None else value

    def to_db(self, value: Any) -> Any:
        return value

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        """The JSON Schema of a value as the API shows it, or as a body may send it."""
        return {"type": "string"}

    def convert(self, value: Any) -> Any:
        """Convert a value stored under another type; raise FieldError when impossible."""
        return self.normalize(value, FieldContext())


def text_of(raw: Any, what: str = "a string") -> str:
    """Accept strings and plain scalars (numbers, booleans) as text; refuse lists and objects."""
    if raw is None:
        return ""
    if isinstance(raw, str | int | float):
        return to_string(raw)
    raise FieldError("validation_invalid_value", f"Must be {what}")
