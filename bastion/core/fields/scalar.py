"""Scalar fields: number, bool, date, autodate."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.core.errors import FieldError
from bastion.core.fields.base import Field, FieldContext, StorageKind
from bastion.core.fields.gocast import to_bool, to_float
from bastion.core.fields.godate import parse_date
from bastion.core.fields.options import Errors, opt_bool, opt_number_or_none, opt_str
from bastion.rules import Kind
from bastion.tools.timeutil import format_datetime, parse_datetime

MAX_SAFE = 2**53
EMPTY: dict[str, Any] = {"const": ""}
DATE_OUT: dict[str, Any] = {"type": "string",
            "anyOf": [EMPTY, {"pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}Z$"}]}
DATE_IN: dict[str, Any] = {"type": "string", "anyOf": [EMPTY, {"format": "date-time"}],
           "description": "RFC 3339 or YYYY-MM-DD HH:MM:SS.sssZ, stored in UTC; empty clears it"}


def wire_date(text: str) -> str:
    """``text`` as ``YYYY-MM-DD HH:MM:SS.sssZ`` in UTC (a four-digit year, as PocketBase
    writes it); ValueError when it is no datetime."""
    return format_datetime(parse_datetime(text))


def number_out(value: Any) -> int | float:
    if value is None:
        return 0
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < MAX_SAFE else value


@dataclass
class NumberField(Field):
    TYPE = "number"
    FILTER_KIND = Kind.NUMBER
    SORTABLE = True
    min: float | None = None
    max: float | None = None
    onlyInt: bool = False

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        self.min = opt_number_or_none(data, "min", errors)
        self.max = opt_number_or_none(data, "max", errors)
        if self.min is not None and self.max is not None and self.min > self.max:
            # PocketBase's code for max < min on a number field.
            errors["max"] = FieldError(
                "validation_min_number_constraint",
                f"Must be greater or equal than {number_out(self.min)}",
                {"min": number_out(self.min)},
            )
        self.onlyInt = opt_bool(data, "onlyInt", errors)

    def options_dict(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max, "onlyInt": self.onlyInt}

    @property
    def storage(self) -> StorageKind:
        return StorageKind.NUMBER

    def zero(self) -> Any:
        return 0

    def server_default(self) -> str | None:
        return "0"

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        # As PocketBase: any value is cast, and what does not read as a number is 0
        # ("abc", " 12 ", [], {}); true is 1. Only the infinities and NaN are refused.
        value = to_float(raw)
        if not math.isfinite(value):
            raise FieldError("validation_not_a_number", "The submitted number is not properly formatted")
        return number_out(value)

    def modifier_keys(self) -> tuple[str, ...]:
        return (f"{self.name}+", f"{self.name}-")

    def modify(self, value: Any, body: Mapping[str, Any], ctx: FieldContext) -> Any:
        """``f+`` adds to the value and ``f-`` subtracts from it."""
        base = value if value is not None else 0
        if f"{self.name}+" in body:
            base += self.normalize(body[f"{self.name}+"], ctx)
        if f"{self.name}-" in body:
            base -= self.normalize(body[f"{self.name}-"], ctx)
        return self.normalize(base, ctx)

    def convert(self, value: Any) -> Any:
        """A value stored under another type: only what reads as a number converts."""
        if value is None or value == "":
            return 0
        if isinstance(value, bool):
            raise FieldError("validation_not_a_number", "Must be a number")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise FieldError("validation_not_a_number", "Must be a number") from None
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FieldError("validation_not_a_number", "Must be a number")
        return number_out(value)

    def validate(self, value: Any) -> None:
        if value == 0:
            # As in PocketBase, zero (also what an unset number holds) is only checked
            # against ``required``: an optional field with min > 0 may stay unset.
            if self.required:
                raise FieldError("validation_required", "Cannot be blank")
            return
        if self.onlyInt and not float(value).is_integer():
            raise FieldError("validation_only_int_constraint", "Decimal numbers are not allowed")
        if self.min is not None and value < self.min:
            raise FieldError(
                "validation_min_number_constraint", f"Must be greater or equal than {number_out(self.min)}",
                {"min": number_out(self.min)},
            )
        if self.max is not None and value > self.max:
            raise FieldError(
                "validation_max_number_constraint", f"Must be less or equal than {number_out(self.max)}",
                {"max": number_out(self.max)},
            )

    def from_db(self, value: Any) -> Any:
        return number_out(value)

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        return {"type": "number"}


@dataclass
class BoolField(Field):
    TYPE = "bool"
    FILTER_KIND = Kind.BOOL
    SORTABLE = True

    @property
    def storage(self) -> StorageKind:
        return StorageKind.BOOL

    def zero(self) -> Any:
        return False

    def server_default(self) -> str | None:
        return "false"

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        # As PocketBase: numbers other than 0 and the texts 1 t T TRUE true True are
        # true; anything else is false ("on", "yes", [], {}).
        return to_bool(raw)

    def convert(self, value: Any) -> Any:
        """A value stored under another type: only what reads as a boolean converts."""
        if value is None or value == "":
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "t", "f"):
            return value.lower() in ("true", "1", "t")
        raise FieldError("validation_invalid_value", "Must be a boolean")

    def validate(self, value: Any) -> None:
        if self.required and value is not True:
            raise FieldError("validation_required", "Cannot be blank")

    def from_db(self, value: Any) -> Any:
        return bool(value)

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass
class DateField(Field):
    TYPE = "date"
    SORTABLE = True
    min: str = ""
    max: str = ""

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        for key in ("min", "max"):
            value = opt_str(data, key, errors, max_length=64)
            if value:
                try:
                    value = wire_date(value)
                except (ValueError, OverflowError):
                    errors[key] = FieldError("validation_invalid_date", "Must be a valid date")
                    value = ""
            setattr(self, key, value)
        if self.min and self.max and self.min > self.max:
            # PocketBase checks max against the [min, max] range: an empty range is invalid.
            errors["max"] = FieldError(
                "validation_date_out_of_range", "The date is out of the allowed range"
            )

    def options_dict(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max}

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        return DATE_IN if for_input else DATE_OUT

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        # As PocketBase: a text in one of the layouts it reads (see godate), else "";
        # numbers (unix times included) and other JSON values are "" too.
        return parse_date(raw) if isinstance(raw, str) else ""

    def convert(self, value: Any) -> Any:
        """A value stored under another type: only what reads as a date converts."""
        if value is None or value == "":
            return ""
        if not isinstance(value, str) or len(value) > 64:
            raise FieldError("validation_invalid_date", "Must be a valid date")
        try:
            return wire_date(value)
        except (ValueError, OverflowError):
            raise FieldError("validation_invalid_date", "Must be a valid date") from None

    def validate(self, value: Any) -> None:
        super().validate(value)
        # PocketBase's codes: its date bounds are ozzo-validation Min/Max threshold rules.
        if value and self.min and value < self.min:
            raise FieldError(
                "validation_min_greater_equal_than_required", f"Must be no earlier than {self.min}",
                {"threshold": self.min},
            )
        if value and self.max and value > self.max:
            raise FieldError(
                "validation_max_less_equal_than_required", f"Must be no later than {self.max}",
                {"threshold": self.max},
            )


@dataclass
class AutodateField(Field):
    """Set by the server on create and/or update; submitted values are ignored."""

    TYPE = "autodate"
    SORTABLE = True
    SERVER_SET = True
    onCreate: bool = True
    onUpdate: bool = False
    has_required = False
    has_help = False

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        self.onCreate = opt_bool(data, "onCreate", errors, default=False)
        self.onUpdate = opt_bool(data, "onUpdate", errors, default=False)
        if not (self.onCreate or self.onUpdate):
            # PocketBase reports the missing choice on both keys.
            for key in ("onCreate", "onUpdate"):
                errors[key] = FieldError(
                    "validation_required", "Either onCreate or onUpdate must be enabled"
                )

    def options_dict(self) -> dict[str, Any]:
        return {"onCreate": self.onCreate, "onUpdate": self.onUpdate}

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        if raw in (None, ""):
            return ""
        if not isinstance(raw, str):
            raise FieldError("validation_invalid_date", "Must be a valid date")
        try:
            return wire_date(raw)
        except (ValueError, OverflowError):
            raise FieldError("validation_invalid_date", "Must be a valid date") from None

    def validate(self, value: Any) -> None:
        return None

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        return DATE_OUT
