"""Text-like fields: text, editor, email, url."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bastion.core.errors import FieldError
from bastion.core.fields.base import Field, FieldContext, StorageKind, text_of
from bastion.core.fields.options import Errors, opt_bool, opt_int, opt_str, opt_str_list
from bastion.tools.pattern_random import PatternError, compile_pattern, random_from_pattern

DEFAULT_TEXT_MAX = 5000
DEFAULT_EDITOR_MAX = 5 * 1024 * 1024
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
# The shape every accepted url has (also published in the OpenAPI document): one of the
# four schemes, then no whitespace and no C0/C1 control character anywhere.
URL_RE = re.compile(r"^(?:[hH][tT][tT][pP][sS]?|[fF][tT][pP][sS]?)://[^\s\x00-\x1f\x7f-\x9f]+$")


def compile_regex(pattern: str, key: str, errors: Errors) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        errors[key] = FieldError("validation_invalid_regex", f"Invalid regular expression: {exc}")
        return None


@dataclass
class TextField(Field):
    TYPE = "text"
    min: int = 0
    max: int = 0
    pattern: str = ""
    autogeneratePattern: str = ""
    primaryKey: bool = False
    _regex: re.Pattern[str] | None = field(default=None, repr=False)

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        self.min = opt_int(data, "min", errors)
        self.max = opt_int(data, "max", errors)
        if self.max and self.min > self.max:
            # PocketBase's code (an ozzo-validation Min rule on max).
            errors["max"] = FieldError(
                "validation_min_greater_equal_than_required", f"Must be no less than {self.min}",
                {"threshold": self.min},
            )
        self.pattern = opt_str(data, "pattern", errors)
        self._regex = compile_regex(self.pattern, "pattern", errors)
        self.autogeneratePattern = opt_str(data, "autogeneratePattern", errors)
        if self.autogeneratePattern:
            try:
                compile_pattern(self.autogeneratePattern)
            except PatternError as exc:
                errors["autogeneratePattern"] = FieldError(
                    "validation_invalid_regex", f"Unsupported autogenerate pattern: {exc}"
                )
        self.primaryKey = opt_bool(data, "primaryKey", errors)

    def options_dict(self) -> dict[str, Any]:
        return {
            "min": self.min, "max": self.max, "pattern": self.pattern,
            "autogeneratePattern": self.autogeneratePattern, "primaryKey": self.primaryKey,
        }

    @property
    def storage(self) -> StorageKind:
        return StorageKind.ID if self.primaryKey else StorageKind.TEXT

    @property
    def effective_max(self) -> int:
        return self.max or DEFAULT_TEXT_MAX

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        return text_of(raw)

    def autogenerate(self, prefix: str = "") -> str:
        return prefix + random_from_pattern(self.autogeneratePattern) if self.autogeneratePattern else prefix

    def validate(self, value: Any) -> None:
        if value == "":
            super().validate(value)
            return
        length = len(value)
        if self.min and length < self.min:
            raise FieldError(
                "validation_min_text_constraint", f"Must be at least {self.min} character(s)",
                {"min": self.min},
            )
        if length > self.effective_max:
            raise FieldError(
                "validation_max_text_constraint", f"Must be less than {self.effective_max} character(s)",
                {"max": self.effective_max},
            )
        if self._regex is not None and not self._regex.search(value):
            raise FieldError("validation_invalid_format", "Invalid value format")


@dataclass
class EditorField(Field):
    TYPE = "editor"
    maxSize: int = 0
    convertURLs: bool = False

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        self.maxSize = opt_int(data, "maxSize", errors)
        self.convertURLs = opt_bool(data, "convertURLs", errors)

    def options_dict(self) -> dict[str, Any]:
        return {"maxSize": self.maxSize, "convertURLs": self.convertURLs}

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        return text_of(raw)

    def validate(self, value: Any) -> None:
        super().validate(value)
        limit = self.maxSize or DEFAULT_EDITOR_MAX
        if len(value.encode("utf-8")) > limit:
            # PocketBase's code for an oversized editor value.
            raise FieldError(
                "validation_content_size_limit",
                f"The maximum allowed content size is {limit} bytes",
                {"maxSize": limit},
            )


@dataclass
class _DomainField(Field):
    exceptDomains: list[str] = field(default_factory=list)
    onlyDomains: list[str] = field(default_factory=list)

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        self.exceptDomains = [d.lower() for d in opt_str_list(data, "exceptDomains", errors)]
        self.onlyDomains = [d.lower() for d in opt_str_list(data, "onlyDomains", errors)]
        if self.exceptDomains and self.onlyDomains:
            # PocketBase requires each list to be empty when the other is set (both keys fail).
            for key in ("exceptDomains", "onlyDomains"):
                errors[key] = FieldError(
                    "validation_empty", "Use either exceptDomains or onlyDomains, not both"
                )

    def options_dict(self) -> dict[str, Any]:
        return {"exceptDomains": self.exceptDomains, "onlyDomains": self.onlyDomains}

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        if raw is None:
            return ""
        if not isinstance(raw, str):
            raise FieldError("validation_invalid_value", "Must be a string")
        return raw.strip()

    def check_domain(self, domain: str, code: str) -> None:
        domain = domain.lower()
        if self.onlyDomains and domain not in self.onlyDomains:
            raise FieldError(code, "Domain is not allowed")
        if self.exceptDomains and domain in self.exceptDomains:
            raise FieldError(code, "Domain is not allowed")


@dataclass
class EmailField(_DomainField):
    TYPE = "email"

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value == "":
            return
        if len(value) > 255 or not EMAIL_RE.match(value):
            raise FieldError("validation_is_email", "Must be a valid email address")
        self.check_domain(value.rsplit("@", 1)[1], "validation_email_domain_not_allowed")


@dataclass
class UrlField(_DomainField):
    TYPE = "url"

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value == "":
            return
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if (
            parts is None or len(value) > 2048 or not URL_RE.match(value) or not parts.hostname
        ):
            raise FieldError("validation_invalid_url", "Must be a valid url")
        self.check_domain(parts.hostname, "validation_url_domain_not_allowed")
