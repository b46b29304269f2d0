"""Options of auth collections (PocketBase's top-level keys) with their defaults.

Submitted options are read as PocketBase reads them: each key holds a value of one type
(a wrong type fails the whole request as unreadable, before any validation), ``null``
stands for the type's zero value, and keys PocketBase does not know are dropped. The
bounds and messages are PocketBase's (0.40).
"""

from __future__ import annotations

import copy
from typing import Any

from bastion.core.errors import BadRequest, FieldError
from bastion.tools.ids import random_string

TOKEN_KEYS = ("authToken", "passwordResetToken", "emailChangeToken", "verificationToken", "fileToken")
MIN_TOKEN_DURATION, MAX_TOKEN_DURATION = 10, 94_670_856
MIN_SECRET, MAX_SECRET = 30, 255
MIN_OTP_LENGTH = 4
MIN_OTP_MFA_DURATION, MAX_OTP_MFA_DURATION = 10, 86_400

LOAD_ERROR = "Failed to load the submitted data due to invalid formatting."


def _body(*paragraphs: str) -> str:
    """A default email body: the paragraphs, then the sign-off PocketBase ends them with."""
    return "\n".join((*paragraphs, "<p>\n  Thanks,<br/>\n  {APP_NAME} team\n</p>"))


def _button(path: str, label: str) -> str:
    return (f'<p>\n  <a class="btn" href="{{APP_URL}}/_/#/auth/{path}/{{TOKEN}}" target="_blank"'
            f' rel="noopener">{label}</a>\n</p>')


# PocketBase's default texts (subjects and bodies are part of what its API returns).
AUTH_ALERT_TEMPLATE = {"subject": "Login from a new location", "body": _body(
    "<p>Hello,</p>",
    "<p>We noticed a login to your {APP_NAME} account from a new location:</p>",
    "<p><em>{ALERT_INFO}</em></p>",
    "<p><strong>If this wasn't you, you should immediately change your {APP_NAME} account password"
    " to revoke access from all other locations.</strong></p>",
    "<p>If this was you, you may disregard this email.</p>",
)}
OTP_TEMPLATE = {"subject": "OTP for {APP_NAME}", "body": _body(
    "<p>Hello,</p>",
    "<p>Your one-time password is: <strong>{OTP}</strong></p>",
    "<p><i>If you didn't ask for the one-time password, you can ignore this email.</i></p>",
)}
VERIFICATION_TEMPLATE = {"subject": "Verify your {APP_NAME} email", "body": _body(
    "<p>Hello,</p>",
    "<p>Thank you for joining us at {APP_NAME}.</p>",
    "<p>Click on the button below to verify your email address.</p>",
    _button("confirm-verification", "Verify"),
    "<p><i>If you didn't recently register, please ignore this email.</i></p>",
)}
RESET_PASSWORD_TEMPLATE = {"subject": "Reset your {APP_NAME} password", "body": _body(
    "<p>Hello,</p>",
    "<p>Click on the button below to reset your password.</p>",
    _button("confirm-password-reset", "Reset password"),
    "<p><i>If you didn't ask to reset your password, please ignore this email.</i></p>",
)}
CONFIRM_EMAIL_CHANGE_TEMPLATE = {"subject": "Confirm your {APP_NAME} new email address", "body": _body(
    "<p>Hello,</p>",
    "<p>Click on the button below to confirm your new email address.</p>",
    _button("confirm-email-change", "Confirm new email"),
    "<p><i>If you didn't ask to change your email address, please ignore this email.</i></p>",
)}

AUTH_DEFAULTS: dict[str, Any] = {
    "authRule": "",
    "manageRule": None,
    "authAlert": {"enabled": True, "emailTemplate": AUTH_ALERT_TEMPLATE},
    "oauth2": {
        "enabled": False, "providers": [],
        "mappedFields": {"id": "", "name": "", "username": "", "avatarURL": ""},
    },
    "passwordAuth": {"enabled": True, "identityFields": ["email"]},
    "mfa": {"enabled": False, "duration": 600, "rule": ""},
    "otp": {"enabled": False, "duration": 180, "length": 8, "emailTemplate": OTP_TEMPLATE},
    "authToken": {"duration": 432_000},
    "passwordResetToken": {"duration": 1800},
    "emailChangeToken": {"duration": 1800},
    "verificationToken": {"duration": 86_400},
    "fileToken": {"duration": 180},
    "verificationTemplate": VERIFICATION_TEMPLATE,
    "resetPasswordTemplate": RESET_PASSWORD_TEMPLATE,
    "confirmEmailChangeTemplate": CONFIRM_EMAIL_CHANGE_TEMPLATE,
}

OPTION_KEYS = tuple(k for k in AUTH_DEFAULTS if k not in ("authRule", "manageRule"))


# -- reading submitted options ----------------------------------------------------------

class _ListOf:
    """A JSON array whose items are all of one kind."""

    def __init__(self, item: Any):
        self.item = item


# A provider keeps the keys Bastion reads beyond PocketBase's; the ones both know are typed.
_PROVIDER = object()
_PROVIDER_TEXT = ("name", "clientId", "clientSecret", "authURL", "tokenURL", "userInfoURL", "displayName")
_TEMPLATE_SPEC = {"subject": str, "body": str}
_TOKEN_SPEC = {"secret": str, "duration": int}
SPECS: dict[str, Any] = {
    "authAlert": {"enabled": bool, "emailTemplate": _TEMPLATE_SPEC},
    "oauth2": {
        "enabled": bool, "providers": _ListOf(_PROVIDER),
        "mappedFields": {"id": str, "name": str, "username": str, "avatarURL": str},
    },
    "passwordAuth": {"enabled": bool, "identityFields": _ListOf(str)},
    "mfa": {"enabled": bool, "duration": int, "rule": str},
    "otp": {"enabled": bool, "duration": int, "length": int, "emailTemplate": _TEMPLATE_SPEC},
    **{key: _TOKEN_SPEC for key in TOKEN_KEYS},
    "verificationTemplate": _TEMPLATE_SPEC,
    "resetPasswordTemplate": _TEMPLATE_SPEC,
    "confirmEmailChangeTemplate": _TEMPLATE_SPEC,
}


class _Unreadable(Exception):
    """A value of the wrong type."""


def _zero(spec: Any) -> Any:
    if isinstance(spec, dict):
        return {key: _zero(sub) for key, sub in spec.items()}
    if isinstance(spec, _ListOf):
        return []
    return {bool: False, int: 0, str: ""}[spec]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _read(spec: Any, current: Any, incoming: Any) -> Any:
    """``incoming`` read over ``current`` as PocketBase decodes JSON into its option structs."""
    if incoming is None:
        return _zero(spec)
    if isinstance(spec, dict):
        if not isinstance(incoming, dict):
            raise _Unreadable
        base = current if isinstance(current, dict) else {}
        out = {key: copy.deepcopy(base[key]) if key in base else _zero(sub) for key, sub in spec.items()}
        for key, value in incoming.items():
            if key in spec:
                out[key] = _read(spec[key], out[key], value)
        return out
    if isinstance(spec, _ListOf):
        if not isinstance(incoming, list):
            raise _Unreadable
        return [_read(spec.item, None, item) for item in incoming]
    if spec is _PROVIDER:
        return _read_provider(incoming)
    if spec is bool:
        ok = isinstance(incoming, bool)
    elif spec is int:
        ok = _is_int(incoming)
    else:
        ok = isinstance(incoming, str)
    if not ok:
        raise _Unreadable
    return incoming


def _read_provider(incoming: Any) -> dict[str, Any]:
    if not isinstance(incoming, dict):
        raise _Unreadable
    out = copy.deepcopy(incoming)
    for key in _PROVIDER_TEXT:
        if out.get(key) is None:
            out.pop(key, None)
        elif not isinstance(out[key], str):
            raise _Unreadable
    if out.get("pkce") is not None and not isinstance(out["pkce"], bool):
        raise _Unreadable
    if out.get("extra") is not None and not isinstance(out["extra"], dict):
        raise _Unreadable
    return out


def _current(key: str, previous: dict[str, Any] | None) -> dict[str, Any]:
    """An option as it stands before this change, with a secret for every token."""
    source = previous.get(key) if previous else None
    if not isinstance(source, dict):
        source = AUTH_DEFAULTS[key]
    try:
        out: dict[str, Any] = _read(SPECS[key], _zero(SPECS[key]), source)
    except _Unreadable:  # stored by an older version that took any type
        out = _read(SPECS[key], _zero(SPECS[key]), AUTH_DEFAULTS[key])
    if key in TOKEN_KEYS and not out["secret"]:
        out["secret"] = random_string(50)
    return out


# -- checking them ------------------------------------------------------------------------

def required() -> FieldError:
    return FieldError("validation_required", "Cannot be blank")


def _at_least(threshold: int) -> FieldError:
    return FieldError("validation_min_greater_equal_than_required", f"Must be no less than {threshold}",
                      {"threshold": threshold})


def _at_most(threshold: int) -> FieldError:
    return FieldError("validation_max_less_equal_than_required", f"Must be no greater than {threshold}",
                      {"threshold": threshold})


def _number_problem(value: int, low: int, high: int | None) -> FieldError | None:
    if value == 0:
        return required()
    if value < low:
        return _at_least(low)
    if high is not None and value > high:
        return _at_most(high)
    return None


def _template_problems(template: dict[str, Any]) -> dict[str, Any]:
    return {key: required() for key in ("subject", "body") if not template[key]}


def parse_auth_options(
    data: dict[str, Any], previous: dict[str, Any] | None, errors: dict[str, Any], strict: bool = True
) -> dict[str, Any]:
    """Read submitted auth options over ``previous`` (or the defaults) and check them.

    A value of the wrong type raises ``BadRequest`` (PocketBase's "invalid formatting"
    answer); other problems go into ``errors`` under the option's key. ``strict=False``
    is for definitions Bastion stored itself: a wrongly typed value keeps what was there,
    and only the checks older versions made apply.
    """
    options: dict[str, Any] = {}
    for key in OPTION_KEYS:
        options[key] = _current(key, previous)
        if key not in data:
            continue
        try:
            options[key] = _read(SPECS[key], options[key], data[key])
        except _Unreadable:
            if strict:
                raise BadRequest(LOAD_ERROR) from None
    _keep_client_secrets(previous, options)
    for key in OPTION_KEYS:
        problems = _option_problems(key, options[key], strict)
        if problems:
            errors[key] = problems
    return options


def _option_problems(key: str, conf: dict[str, Any], strict: bool) -> dict[str, Any]:
    """PocketBase's checks of one option by itself (those across options come later)."""
    problems: dict[str, Any] = {}
    if key in TOKEN_KEYS:
        secret = conf["secret"]
        if not secret:
            problems["secret"] = required()
        elif not MIN_SECRET <= len(secret) <= MAX_SECRET:
            problems["secret"] = FieldError(
                "validation_length_out_of_range", f"The length must be between {MIN_SECRET} and {MAX_SECRET}",
                {"max": MAX_SECRET, "min": MIN_SECRET})
        duration = _number_problem(conf["duration"], MIN_TOKEN_DURATION, MAX_TOKEN_DURATION)
        if duration:
            problems["duration"] = duration
        return problems
    if key in ("mfa", "otp") and conf["enabled"]:
        duration = _number_problem(conf["duration"], MIN_OTP_MFA_DURATION, MAX_OTP_MFA_DURATION)
        if duration:
            problems["duration"] = duration
    if not strict:
        return problems
    if key == "otp" and conf["enabled"]:
        length = _number_problem(conf["length"], MIN_OTP_LENGTH, None)
        if length:
            problems["length"] = length
    if key in ("otp", "authAlert"):
        template = _template_problems(conf["emailTemplate"])
        if template:
            problems["emailTemplate"] = template
    elif key.endswith("Template"):
        problems.update(_template_problems(conf))
    elif key == "passwordAuth" and conf["enabled"] and not conf["identityFields"]:
        problems["identityFields"] = required()
    elif key == "oauth2" and conf["enabled"]:
        seen: set[str] = set()
        for i, provider in enumerate(conf["providers"]):
            name = provider.get("name") or ""
            if name and name in seen:
                problems["providers"] = {str(i): {"name": FieldError(
                    "validation_duplicated_provider", f"The provider {name} is already registered",
                    {"name": name})}}
                break
            seen.add(name)
    return problems


def _keep_client_secrets(previous: dict[str, Any] | None, options: dict[str, Any]) -> None:
    """``clientSecret`` is write-only: a provider sent back without one keeps its old one."""
    def listed(opts: dict[str, Any] | None) -> list[dict[str, Any]]:
        found = ((opts or {}).get("oauth2") or {}).get("providers")
        return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []

    old = {p.get("name"): p.get("clientSecret") for p in listed(previous)}
    for provider in listed(options):
        if not provider.get("clientSecret") and old.get(provider.get("name")):
            provider["clientSecret"] = old[provider.get("name")]


def forget_missing_mapped_fields(options: dict[str, Any], field_names: set[str]) -> None:
    """OAuth2 mapped fields naming a field the collection lacks are cleared, as PocketBase does."""
    mapped = options.get("oauth2", {}).get("mappedFields", {})
    for key, value in mapped.items():
        if value and value not in field_names:
            mapped[key] = ""


def public_auth_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options as returned by the API: write-only secrets removed."""
    out = copy.deepcopy(options)
    for key in TOKEN_KEYS:
        out.get(key, {}).pop("secret", None)
    for provider in out.get("oauth2", {}).get("providers", []):
        if isinstance(provider, dict):
            provider.pop("clientSecret", None)
    return out
