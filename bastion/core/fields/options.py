"""Reading field and collection options from untrusted JSON, collecting errors."""

from __future__ import annotations

import math
from typing import Any

from bastion.core.errors import FieldError

Errors = dict[str, Any]


def opt_bool(data: dict[str, Any], key: str, errors: Errors, default: bool = False) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        errors[key] = FieldError("validation_invalid_value", "Must be a boolean")
        return default
    return value


def opt_int(
    data: dict[str, Any], key: str, errors: Errors, default: int = 0,
    minimum: int | None = 0, maximum: int | None = None,
) -> int:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        errors[key] = FieldError("validation_invalid_value", "Must be an integer")
        return default
    # PocketBase checks these options with ozzo-validation Min/Max rules; same codes here.
    if minimum is not None and value < minimum:
        errors[key] = FieldError(
            "validation_min_greater_equal_than_required", f"Must be no less than {minimum}",
            {"threshold": minimum},
        )
    elif maximum is not None and value > maximum:
        errors[key] = FieldError(
            "validation_max_less_equal_than_required", f"Must be no greater than {maximum}",
            {"threshold": maximum},
        )
    return value


def opt_number_or_none(data: dict[str, Any], key: str, errors: Errors) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        errors[key] = FieldError("validation_invalid_value", "Must be a number or null")
        return None
    return value


def opt_str(
    data: dict[str, Any], key: str, errors: Errors, default: str = "", max_length: int = 1000
) -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        errors[key] = FieldError("validation_invalid_value", "Must be a string")
        return default
    if len(value) > max_length:
        errors[key] = FieldError(
            "validation_length_too_long", f"Must be at most {max_length} characters",
            {"max": max_length},
        )
        return default
    return value


def opt_str_list(
    data: dict[str, Any], key: str, errors: Errors, max_items: int = 1000, max_length: int = 255
) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors[key] = FieldError("validation_invalid_value", "Must be a list of strings")
        return []
    if len(value) > max_items:
        errors[key] = FieldError("validation_too_many_values", f"Must have at most {max_items} items")
        return []
    if any(len(v) > max_length for v in value):
        errors[key] = FieldError(
            "validation_length_too_long", f"Each item must be at most {max_length} characters"
        )
        return []
    return list(value)
