"""Field types: parsing of their options, input coercion, validation and storage kind."""

from __future__ import annotations

from bastion.core.fields.base import Field, FieldContext, StorageKind
from bastion.core.fields.registry import FIELD_TYPES, field_from_dict

__all__ = ["FIELD_TYPES", "Field", "FieldContext", "StorageKind", "field_from_dict"]
