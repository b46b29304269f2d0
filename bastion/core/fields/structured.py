"""Structured fields: json, geoPoint and password."""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from bastion.core.errors import FieldError
from bastion.core.fields.base import Field, FieldContext, StorageKind
from bastion.core.fields.options import Errors, opt_int, opt_str
from bastion.core.fields.text import compile_regex
from bastion.rules import Kind

DEFAULT_JSON_MAX = 1024 * 1024
MAX_JSON_DEPTH = 64
GEO_POINT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "lon": {"type": "number", "minimum": -180, "maximum": 180},
    "lat": {"type": "number", "minimum": -90, "maximum": 90}}}


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


@dataclass
class JsonField(Field):
    TYPE = "json"
    FILTER_KIND = Kind.JSON
    maxSize: int = 0

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        self.maxSize = opt_int(data, "maxSize", errors)

    def options_dict(self) -> dict[str, Any]:
        return {"maxSize": self.maxSize}

    @property
    def storage(self) -> StorageKind:
        return StorageKind.JSON

    @property
    def nullable(self) -> bool:
        return True

    def zero(self) -> Any:
        return None

    def server_default(self) -> str | None:
        return None

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        if isinstance(raw, str):
            # A string holding valid JSON is taken as that JSON (as multipart sends it).
            with contextlib.suppress(orjson.JSONDecodeError):
                raw = orjson.loads(raw)
        if _depth(raw) > MAX_JSON_DEPTH:
            raise FieldError("validation_invalid_json", f"Nested deeper than {MAX_JSON_DEPTH} levels")
        return raw

    def validate(self, value: Any) -> None:
        super().validate(value)
        limit = self.maxSize or DEFAULT_JSON_MAX
        try:
            size = len(orjson.dumps(value))
        except TypeError:
            raise FieldError("validation_invalid_json", "Must be valid JSON") from None
        if size > limit:
            raise FieldError(
                "validation_json_size_limit", f"The maximum allowed JSON size is {limit} bytes",
                {"maxSize": limit},
            )

    def from_db(self, value: Any) -> Any:
        return value

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        return {}


@dataclass
class GeoPointField(Field):
    TYPE = "geoPoint"
    FILTER_KIND = Kind.JSON

    @property
    def storage(self) -> StorageKind:
        return StorageKind.JSON

    def zero(self) -> Any:
        return {"lon": 0, "lat": 0}

    def server_default(self) -> str | None:
        return "'{\"lon\":0,\"lat\":0}'"

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        if raw is None or raw == "":
            return self.zero()
        if isinstance(raw, str):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise FieldError("validation_invalid_value", "Must be an object with lon and lat") from None
        if not isinstance(raw, dict):
            raise FieldError("validation_invalid_value", "Must be an object with lon and lat")
        point = {}
        for key in ("lon", "lat"):
            v = raw.get(key, 0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise FieldError("validation_invalid_value", f"{key} must be a number")
            point[key] = v
        return point

    def validate(self, value: Any) -> None:
        if self.required and value["lon"] == 0 and value["lat"] == 0:
            raise FieldError("validation_required", "Cannot be blank")
        if not -90 <= value["lat"] <= 90:
            raise FieldError("validation_invalid_latitude", "Latitude must be between -90 and 90 degrees")
        if not -180 <= value["lon"] <= 180:
            raise FieldError(
                "validation_invalid_longitude", "Longitude must be between -180 and 180 degrees"
            )

    def from_db(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {"lon": value.get("lon", 0), "lat": value.get("lat", 0)}
        return self.zero()

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        return GEO_POINT_SCHEMA


@dataclass
class PasswordField(Field):
    """Holds a password hash; the plain value is validated, hashed and never shown."""

    TYPE = "password"
    SECRET = True
    min: int = 0
    max: int = 0
    pattern: str = ""
    cost: int = 0
    _regex: re.Pattern[str] | None = field(default=None, repr=False)

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        self.min = opt_int(data, "min", errors, maximum=71)
        self.max = opt_int(data, "max", errors, maximum=71)
        self.pattern = opt_str(data, "pattern", errors)
        self._regex = compile_regex(self.pattern, "pattern", errors)
        self.cost = opt_int(data, "cost", errors, maximum=31)

    def options_dict(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max, "pattern": self.pattern, "cost": self.cost}

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        if raw is None:
            return ""
        if not isinstance(raw, str):
            raise FieldError("validation_invalid_value", "Must be a string")
        return raw

    def validate_plain(self, plain: str) -> None:
        """Check a submitted plain-text password (before it is hashed)."""
        if plain == "":
            if self.required:
                raise FieldError("validation_required", "Cannot be blank")
            return
        limit = self.max or 71
        if self.min and len(plain) < self.min:
            raise FieldError(
                "validation_min_text_constraint", f"Must be at least {self.min} character(s)",
                {"min": self.min},
            )
        if len(plain) > limit:
            raise FieldError(
                "validation_max_text_constraint", f"Must be less than {limit} character(s)",
                {"max": limit},
            )
        if self._regex is not None and not self._regex.search(plain):
            raise FieldError("validation_invalid_format", "Invalid value format")

    def validate(self, value: Any) -> None:
        if self.required and not value:
            raise FieldError("validation_required", "Cannot be blank")

    def from_db(self, value: Any) -> Any:
        return value or ""
