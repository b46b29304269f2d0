"""The field types by name, and parsing a field from JSON."""

from __future__ import annotations

from typing import Any

from bastion.core.errors import FieldError
from bastion.core.fields.base import NAME_RE, Field
from bastion.core.fields.multi import FileField, RelationField, SelectField
from bastion.core.fields.options import Errors
from bastion.core.fields.scalar import AutodateField, BoolField, DateField, NumberField
from bastion.core.fields.structured import GeoPointField, JsonField, PasswordField
from bastion.core.fields.text import EditorField, EmailField, TextField, UrlField
from bastion.tools.ids import field_id

FIELD_TYPES: dict[str, type[Field]] = {
    cls.TYPE: cls
    for cls in (
        TextField, EditorField, NumberField, BoolField, EmailField, UrlField, DateField,
        AutodateField, SelectField, FileField, RelationField, JsonField, PasswordField,
        GeoPointField,
    )
}


def field_class(data: Any) -> type[Field] | None:
    """The field class a submitted definition names in its ``type``, or None."""
    ftype = data.get("type") if isinstance(data, dict) else None
    return FIELD_TYPES.get(ftype) if isinstance(ftype, str) else None


def field_from_dict(data: Any, errors: Errors) -> Field | None:
    """Parse one field definition; record problems in ``errors`` and return None on failure."""
    if not isinstance(data, dict):
        errors["type"] = FieldError("validation_invalid_value", "A field must be an object")
        return None
    ftype = data.get("type")
    cls = field_class(data)
    if cls is None:
        errors["type"] = FieldError(
            "validation_invalid_field_type",
            f"Unknown field type {str(ftype)[:40]!r}; expected one of {', '.join(sorted(FIELD_TYPES))}",
        )
        return None
    field = cls.from_dict(data, errors)
    if not field.name:
        errors.setdefault("name", FieldError("validation_required", "Cannot be blank"))
    elif not NAME_RE.match(field.name):
        # PocketBase's code for a name that fails its ^\w+$ pattern.
        errors.setdefault(
            "name",
            FieldError("validation_match_invalid", "Use only letters, digits and underscores"),
        )
    if not field.id and field.name:
        field.id = field_id(field.TYPE, field.name)
    return field
