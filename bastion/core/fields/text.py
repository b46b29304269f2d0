"""Text-like fields: text, editor, email, url."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bastion.core.errors import FieldError
from bastion.core.fields.base import Field, FieldContext, StorageKind, text_of
from bastion.core.fields.formats import is_email, is_url, url_host
from bastion.core.fields.gocast import to_string
from bastion.core.fields.options import Errors, opt_bool, opt_int, opt_str, opt_str_list
from bastion.core.fields.scalar import EMPTY
from bastion.tools.pattern_random import PatternError, compile_pattern, random_from_pattern

DEFAULT_TEXT_MAX = 5000
DEFAULT_EDITOR_MAX = 5 * 1024 * 1024
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
# Simple shapes for settings and the OpenAPI document. Record url and email fields check
# values with ``formats.is_url``/``is_email`` instead, which accept what PocketBase accepts.
URL_RE = re.compile(r"^(?:[hH][tT][tT][pP][sS]?|[fF][tT][pP][sS]?)://[^\s\x00-\x1f\x7f-\x9f]+$")
EMAIL_SCHEMA: dict[str, Any] = {
    "type": "string", "anyOf": [EMPTY, {"pattern": EMAIL_RE.pattern, "maxLength": 255}]}
URL_SCHEMA: dict[str, Any] = {"type": "string", "anyOf": [EMPTY, {"pattern": URL_RE.pattern, "maxLength": 2048}]}


# Characters a primary key never holds and names it never is, whatever its pattern, as in
# PocketBase: a record id names the folder of its files.
FORBIDDEN_PK_CHARACTERS = (".", "/", "\\", "|", '"', "'", "`", "<", ">", ":", "?", "*", "%", "$",
                           "\x00", "\t", "\n", "\r", " ")
RESERVED_PKS = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                          *(f"LPT{i}" for i in range(1, 10))})
DEFAULT_ID_PATTERN = "^[a-z0-9]+$"


def go_regex(pattern: str) -> str:
    """``pattern`` with Go's meaning of ``$`` (the end of the text only; Python's also
    matches before a final newline), unless the pattern turns on multi-line mode."""
    if "(?m" in pattern or "$" not in pattern:
        return pattern
    out, escaped, in_class = [], False, False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif ch == "$" and not in_class:
            out.append("\\Z")
            continue
        out.append(ch)
    return "".join(out)


def compile_regex(pattern: str, key: str, errors: Errors) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(go_regex(pattern))
    except re.error as exc:
        errors[key] = FieldError("validation_invalid_regex", f"Invalid regular expression: {exc}")
        return None


@dataclass
class TextField(Field):
    TYPE = "text"
    SORTABLE = True
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
        # As PocketBase: numbers as Go prints them, lists and objects as "".
        return to_string(raw)

    def convert(self, value: Any) -> Any:
        return text_of(value)

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        if for_input and self.max:
            return {"type": "string", "maxLength": self.max}
        return {"type": "string"}

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
                "validation_max_text_constraint", f"Must be no more than {self.effective_max} character(s)",
                {"max": self.effective_max},
            )
        if self._regex is not None and not self._regex.search(value):
            raise FieldError("validation_invalid_format", "Invalid value format")
        if self.primaryKey and self.pattern != DEFAULT_ID_PATTERN:
            self._check_pk(value)

    @staticmethod
    def _check_pk(value: str) -> None:
        for ch in FORBIDDEN_PK_CHARACTERS:
            if ch in value:
                raise FieldError("validation_forbidden_pk_character", f"'{ch}' is not a valid primary key character.",
                                 {"ch": ch})
        if value.upper() in RESERVED_PKS:
            raise FieldError("validation_reserved_pk", f"The primary key '{value.upper()}' is reserved and cannot "
                             "be used.", {"reserved": value.upper()})


@dataclass
class EditorField(Field):
    TYPE = "editor"
    SORTABLE = True
    maxSize: int = 0
    convertURLs: bool = False

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        self.maxSize = opt_int(data, "maxSize", errors)
        self.convertURLs = opt_bool(data, "convertURLs", errors)

    def options_dict(self) -> dict[str, Any]:
        return {"maxSize": self.maxSize, "convertURLs": self.convertURLs}

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        return to_string(raw)

    def convert(self, value: Any) -> Any:
        return text_of(value)

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
    SORTABLE = True
    exceptDomains: list[str] = field(default_factory=list)
    onlyDomains: list[str] = field(default_factory=list)

    def parse_options(self, data: dict[str, Any], errors: Errors) -> None:
        # Kept as given: PocketBase compares domains exactly, letter case included.
        self.exceptDomains = opt_str_list(data, "exceptDomains", errors)
        self.onlyDomains = opt_str_list(data, "onlyDomains", errors)
        if self.exceptDomains and self.onlyDomains:
            # PocketBase requires each list to be empty when the other is set (both keys fail).
            for key in ("exceptDomains", "onlyDomains"):
                errors[key] = FieldError(
                    "validation_empty", "Use either exceptDomains or onlyDomains, not both"
                )

    def options_dict(self) -> dict[str, Any]:
        return {"exceptDomains": self.exceptDomains, "onlyDomains": self.onlyDomains}

    def normalize(self, raw: Any, ctx: FieldContext) -> Any:
        # As PocketBase: cast to text and kept as sent (no trimming: " a@b.c" is invalid).
        return to_string(raw)

    def convert(self, value: Any) -> Any:
        return text_of(value)

    def allowed(self, domain: str) -> bool:
        if self.onlyDomains and domain not in self.onlyDomains:
            return False
        return not (self.exceptDomains and domain in self.exceptDomains)


@dataclass
class EmailField(_DomainField):
    TYPE = "email"

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        return EMAIL_SCHEMA

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value == "":
            return
        if not is_email(value):
            raise FieldError("validation_is_email", "Must be a valid email address")
        if not self.allowed(value.rsplit("@", 1)[1]):
            raise FieldError("validation_email_domain_not_allowed", "Email domain is not allowed")


@dataclass
class UrlField(_DomainField):
    TYPE = "url"

    def json_schema(self, for_input: bool = False) -> dict[str, Any]:
        return URL_SCHEMA

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value == "":
            return
        if not is_url(value):
            raise FieldError("validation_invalid_url", "Must be a valid url")
        # PocketBase compares the url's host with its port ("a.com:8080"); a url without
        # "//" ("a.com", "mailto:x@a.com") has no host and passes no onlyDomains.
        if not self.allowed(url_host(value)):
            raise FieldError("validation_url_domain_not_allowed", "Url domain is not allowed")
