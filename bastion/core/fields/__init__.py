"""Field types: each one class that owns its options, input, modifiers, validation,
storage, filter kind, sortability, secrecy, API output and JSON Schema."""

from __future__ import annotations

from bastion.core.fields.base import Field, FieldContext, StorageKind
from bastion.core.fields.multi import FileField, RelationField
from bastion.core.fields.registry import FIELD_TYPES, field_class, field_from_dict

__all__ = [
    "FIELD_TYPES", "Field", "FieldContext", "FileField", "RelationField", "StorageKind", "field_class",
    "field_from_dict",
]
