"""Fields that hold one or many values: select, relation and file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion.core.errors import FieldError
from bastion.core.fields.base import Field, FieldContext, StorageKind
from bastion.core.fields.options import Errors, opt_bool, opt_int, opt_str, opt_str_list
from bastion.core.fields.upload import Upload
from bastion.tools import sniff
from bastion.tools.thumbsize import parse_size

FILENAME_RE = re.compile(r"^[^/\\\x00-\x1f]{1,150}$")
DEFAULT_FILE_SIZE = 5 * 1024 * 1024
MAX_SAFE_INT = 2**53 - 1


@dataclass
class _MultiField(Field):
    MULTI_VALUER = True
    maxSelect: int = 1

    @property
    def multi(self) -> bool:
        return self.maxSelect > 1

    @property
    def storage(self) -> StorageKind:
        return StorageKind.JSON if self.multi else StorageKind.TEXT

    def zero(self) -> Any:
        return [] if self.multi else ""

    def server_default(self) -> str | None:
        return "'[]'" if self.multi else "''"

    def items_of(self, raw: Any) -> list[str]:
        if raw is None or raw == "":
            return []
        if isinstance(raw, str):
            return [raw]
        if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            return [v for v in dict.fromkeys(raw) if v != ""]
        raise FieldError("validation_invalid_value", "Must be a string or a list of strings")

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        items = self.items_of(raw)
        if self.multi:
            return items
        # A single value keeps the last item of a list, as PocketBase does; this also makes
        # ``f+`` on a single select/relation replace the value instead of failing.
        return items[-1] if items else ""

    def values_of(self, value: Any) -> list[str]:
        if self.multi:
            return list(value or [])
        return [value] if value else []

    def modifier_keys(self) -> tuple[str, ...]:
        return (f"+{self.name}", f"{self.name}+", f"{self.name}-")

    def modify(self, value: Any, body: Mapping[str, Any], ctx: FieldContext) -> Any:
        """``+f`` prepends items, ``f+`` appends them and ``f-`` removes them; each item
        is kept once, in the order reached."""
        name = self.name
        items = list(self.values_of(value if value is not None else self.zero()))
        if f"+{name}" in body:
            items = self.items_of(body[f"+{name}"]) + items
        if f"{name}+" in body:
            items = items + self.items_of(body[f"{name}+"])
        if f"{name}-" in body:
            drop = set(self.items_of(body[f"{name}-"]))
            items = [i for i in items if i not in drop]
        return self.normalize(list(dict.fromkeys(items)), ctx)

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        if self.multi:
            return {"type": "array", "items": {"type": "string"}}
        return {"type": "string"}

    def validate(self, value: Any) -> None:
        super().validate(value)
        count = len(self.values_of(value))
        if self.multi and count > self.maxSelect:
            raise FieldError(
                "validation_too_many_values", f"Select no more than {self.maxSelect}",
                {"maxSelect": self.maxSelect},
            )

    def from_db(self, value: Any) -> Any:
        if self.multi:
            if value in (None, ""):
                return []
            if isinstance(value, str):
                return [value]
            return value
        if isinstance(value, list):
            return value[0] if value else ""
        return value or ""


@dataclass
class SelectField(_MultiField):
    TYPE = "select"
    SORTABLE = True
    values: list[str] = field(default_factory=list)

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        self.values = opt_str_list(data, "values", errors)
        if not self.values and "values" not in errors:
            errors["values"] = FieldError("validation_required", "Cannot be blank")
        self.maxSelect = opt_int(data, "maxSelect", errors, default=1) or 1
        if self.values and self.maxSelect > len(self.values) and "maxSelect" not in errors:
            # PocketBase: more selections than there are values is a settings error.
            errors["maxSelect"] = FieldError(
                "validation_max_less_equal_than_required",
                f"Must be no greater than {len(self.values)}",
                {"threshold": len(self.values)},
            )

    def options_dict(self) -> dict[str, Any]:
        return {"values": self.values, "maxSelect": self.maxSelect}

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        if self.multi:
            return {"type": "array", "items": {"type": "string", "enum": list(self.values)}}
        return {"type": "string", "enum": [*self.values, ""]}

    def validate(self, value: Any) -> None:
        super().validate(value)
        allowed = set(self.values)
        for item in self.values_of(value):
            if item not in allowed:
                raise FieldError("validation_invalid_value", f"Invalid value {item}", {"value": item})


@dataclass
class RelationField(_MultiField):
    TYPE = "relation"
    SORTABLE = True
    collectionId: str = ""
    cascadeDelete: bool = False
    minSelect: int = 0

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        self.collectionId = opt_str(data, "collectionId", errors, max_length=255)
        if not self.collectionId and "collectionId" not in errors:
            errors["collectionId"] = FieldError("validation_required", "Cannot be blank")
        self.cascadeDelete = opt_bool(data, "cascadeDelete", errors)
        self.minSelect = opt_int(data, "minSelect", errors)
        self.maxSelect = opt_int(data, "maxSelect", errors, default=1) or 1
        if self.minSelect > self.maxSelect:
            # PocketBase's code (an ozzo-validation Min rule on maxSelect).
            errors["maxSelect"] = FieldError(
                "validation_min_greater_equal_than_required",
                f"Must be no less than {self.minSelect}",
                {"threshold": self.minSelect},
            )

    def options_dict(self) -> dict[str, Any]:
        return {
            "collectionId": self.collectionId, "cascadeDelete": self.cascadeDelete,
            "minSelect": self.minSelect, "maxSelect": self.maxSelect,
        }

    def validate(self, value: Any) -> None:
        super().validate(value)
        count = len(self.values_of(value))
        if count and self.minSelect and count < self.minSelect:
            raise FieldError(
                "validation_not_enough_values", f"Select at least {self.minSelect}",
                {"minSelect": self.minSelect},
            )


@dataclass
class FileField(_MultiField):
    """Files of a record: stored names in the column, the bytes in the file storage.

    A value mixes names already on the record and new ``Upload`` objects until the
    records service stores the uploads and puts their names in their place. A name the
    record does not hold yet is refused (only uploads add files), as in PocketBase."""

    TYPE = "file"
    maxSize: int = 0
    mimeTypes: list[str] = field(default_factory=list)
    thumbs: list[str] = field(default_factory=list)
    protected: bool = False

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        self.maxSelect = opt_int(data, "maxSelect", errors, default=1) or 1
        self.maxSize = opt_int(data, "maxSize", errors)
        if self.maxSize < 0 or self.maxSize > MAX_SAFE_INT:
            errors["maxSize"] = FieldError("validation_invalid_value", "Must be between 0 and 2^53-1")
        self.mimeTypes = opt_str_list(data, "mimeTypes", errors)
        self.thumbs = opt_str_list(data, "thumbs", errors)
        for thumb in self.thumbs:
            if parse_size(thumb) is None:  # malformed, or 0x0 (PocketBase refuses both)
                errors["thumbs"] = FieldError("validation_invalid_value", f"Invalid thumb size {thumb[:40]}")
        self.protected = opt_bool(data, "protected", errors)
        opt_str(data, "name", errors)

    def options_dict(self) -> dict[str, Any]:
        return {
            "maxSelect": self.maxSelect, "maxSize": self.maxSize, "mimeTypes": self.mimeTypes,
            "thumbs": self.thumbs, "protected": self.protected,
        }

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        """Stored names as output; as input, a kept name or (in a multipart body) a file."""
        one: dict[str, Any] = {"type": "string"}
        if for_input:
            one = {"anyOf": [{"type": "string", "description": "a name the record holds"},
                             {"type": "string", "format": "binary", "description": "an upload (multipart)"}]}
        return {"type": "array", "items": one} if self.multi else one

    @property
    def max_size(self) -> int:
        """The largest file this field takes, in bytes (``maxSize``, 5 MiB when 0)."""
        return self.maxSize if self.maxSize > 0 else DEFAULT_FILE_SIZE

    def items_of(self, raw: Any) -> list[Any]:
        """Names and uploads, each once (by name), in order; nothing else is a file."""
        if raw is None or raw == "":
            return []
        if isinstance(raw, (str, Upload)):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(v, (str, Upload)) for v in raw):
            raise FieldError("validation_invalid_value", "Must be a file name, an upload or a list of them")
        seen: dict[str, Any] = {}
        for item in raw:
            key = item.name if isinstance(item, Upload) else item
            if key != "" and key not in seen:
                seen[key] = item
        return list(seen.values())

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        items = self.items_of(raw)
        held = set(self.values_of(ctx.old_value)) if ctx.old_value is not None else set()
        invalid = [item[:250] for item in items if isinstance(item, str) and item not in held]
        if invalid:
            raise FieldError("validation_invalid_file", f"Invalid new files: [{' '.join(invalid)}].",
                             {"invalidFiles": invalid})
        if self.multi:
            return items
        return items[-1] if items else ""

    def modify(self, value: Any, body: Mapping[str, Any], ctx: FieldContext) -> Any:
        """``+f`` prepends names or uploads, ``f+`` appends them and ``f-`` removes names."""
        name = self.name
        items = self.items_of(value if value is not None else self.zero())
        if f"+{name}" in body:
            items = self.items_of(body[f"+{name}"]) + items
        if f"{name}+" in body:
            items = items + self.items_of(body[f"{name}+"])
        if f"{name}-" in body:
            drop = {item for item in self.items_of(body[f"{name}-"]) if isinstance(item, str)}
            items = [i for i in items if (i.name if isinstance(i, Upload) else i) not in drop]
        return self.normalize(items, ctx)

    def convert(self, value: Any) -> Any:
        """Names stored under another type (or another shape) as this field holds them."""
        names = [item for item in self.items_of(value) if isinstance(item, str)]
        return names if self.multi else (names[-1] if names else "")

    def names_of(self, value: Any) -> list[str]:
        """The names in a value, uploads' stored names included."""
        return [item.name if isinstance(item, Upload) else item for item in self.values_of(value)]

    def uploads_of(self, value: Any) -> list[Upload]:
        return [item for item in self.values_of(value) if isinstance(item, Upload)]

    def validate(self, value: Any) -> None:
        count = len(self.values_of(value))
        if count == 0 and self.required:
            raise FieldError("validation_required", "Cannot be blank")
        if count > max(self.maxSelect, 1):
            # PocketBase's code for files differs from select/relation.
            raise FieldError(
                "validation_too_many_files", f"The maximum allowed files is {max(self.maxSelect, 1)}",
                {"maxSelect": max(self.maxSelect, 1)},
            )
        for item in self.values_of(value):
            if isinstance(item, Upload):
                self._check_upload(item)
            elif not FILENAME_RE.match(item):
                raise FieldError("validation_invalid_file", f"Invalid file name {item[:40]}")

    def _check_upload(self, upload: Upload) -> None:
        if upload.size > self.max_size:
            raise FieldError(
                "validation_file_size_limit",
                f"Failed to upload {upload.original_name[:300]} - the maximum allowed file size is "
                f"{self.max_size} bytes.", {"file": upload.original_name[:300], "maxSize": self.max_size})
        if self.mimeTypes and not any(sniff.matches(upload.content_type, t) for t in self.mimeTypes):
            raise FieldError(
                "validation_invalid_mime_type",
                f'"{upload.name}" mime type must be one of: {", ".join(self.mimeTypes)}.')

    def to_db(self, value: Any) -> Any:
        names = self.names_of(value)
        return super().to_db(names if self.multi else (names[-1] if names else ""))
