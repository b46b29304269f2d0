"""Options of auth collections (PocketBase's top-level keys) with their defaults."""

from __future__ import annotations

import copy
from typing import Any

from bastion.core.errors import FieldError
from bastion.tools.ids import random_string

TOKEN_KEYS = ("authToken", "passwordResetToken", "emailChangeToken", "verificationToken", "fileToken")
MIN_TOKEN_DURATION, MAX_TOKEN_DURATION = 10, 94_670_856

_TEMPLATE = {"subject": "", "body": ""}

AUTH_DEFAULTS: dict[str, Any] = {
    "authRule": "",
    "manageRule": None,
    "authAlert": {"enabled": True, "emailTemplate": {
        "subject": "Login from a new location",
        "body": "<p>Hello,</p><p>We noticed a login to your {APP_NAME} account from a new location.</p>",
    }},
    "oauth2": {
        "enabled": False, "providers": [],
        "mappedFields": {"id": "", "name": "", "username": "", "avatarURL": ""},
    },
    "passwordAuth": {"enabled": True, "identityFields": ["email"]},
    "mfa": {"enabled": False, "duration": 1800, "rule": ""},
    "otp": {"enabled": False, "duration": 180, "length": 8, "emailTemplate": {
        "subject": "OTP for {APP_NAME}", "body": "<p>Your one-time password is: <strong>{OTP}</strong></p>",
    }},
    "authToken": {"duration": 604800},
    "passwordResetToken": {"duration": 1800},
    "emailChangeToken": {"duration": 1800},
    "verificationToken": {"duration": 259200},
    "fileToken": {"duration": 180},
    "verificationTemplate": {
        "subject": "Verify your {APP_NAME} email",
        "body": "<p>Click to verify: <a href=\"{APP_URL}/_/#/auth/confirm-verification/{TOKEN}\">verify</a></p>",
    },
    "resetPasswordTemplate": {
        "subject": "Reset your {APP_NAME} password",
        "body": "<p>Click to reset: <a href=\"{APP_URL}/_/#/auth/confirm-password-reset/{TOKEN}\">reset</a></p>",
    },
    "confirmEmailChangeTemplate": {
        "subject": "Confirm your {APP_NAME} new email address",
        "body": "<p>Click to confirm: <a href=\"{APP_URL}/_/#/auth/confirm-email-change/{TOKEN}\">confirm</a></p>",
    },
}

OPTION_KEYS = tuple(k for k in AUTH_DEFAULTS if k not in ("authRule", "manageRule"))


def _merge(base: Any, incoming: Any) -> Any:
    if isinstance(base, dict) and isinstance(incoming, dict):
        out = dict(base)
        for key, value in incoming.items():
            out[key] = _merge(base.get(key), value) if key in base else value
        return out
    return copy.deepcopy(incoming)


def parse_auth_options(
    data: dict[str, Any], previous: dict[str, Any] | None, errors: dict[str, Any]
) -> dict[str, Any]:
    """Merge submitted auth options over ``previous`` (or the defaults) and check them."""
    options = copy.deepcopy(previous) if previous else {k: copy.deepcopy(AUTH_DEFAULTS[k]) for k in OPTION_KEYS}
    for key in OPTION_KEYS:
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, dict):
            errors[key] = FieldError("validation_invalid_value", "Must be an object")
            continue
        options[key] = _merge(options[key], value)
    _keep_client_secrets(previous, options)
    for key in TOKEN_KEYS:
        _check_token(options, key, errors)
    _check_password_auth(options, errors)
    methods = sum(bool(options[k].get("enabled")) for k in ("passwordAuth", "otp", "oauth2"))
    if options["mfa"].get("enabled") and methods < 2:
        errors["mfa"] = {"enabled": FieldError(
            "validation_mfa_not_enough_auths", "MFA needs at least two enabled authentication methods")}
    for key, lo, hi in (("mfa", 10, 86400), ("otp", 10, 86400)):
        duration = options[key].get("duration")
        if not isinstance(duration, int) or isinstance(duration, bool) or not lo <= duration <= hi:
            errors[key] = {"duration": FieldError(
                "validation_invalid_value", f"Must be an integer between {lo} and {hi}")}
    return options


def _keep_client_secrets(previous: dict[str, Any] | None, options: dict[str, Any]) -> None:
    """``clientSecret`` is write-only: a provider sent back without one keeps its old one."""
    def listed(opts: dict[str, Any] | None) -> list[dict[str, Any]]:
        found = ((opts or {}).get("oauth2") or {}).get("providers")
        return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []

    old = {p.get("name"): p.get("clientSecret") for p in listed(previous)}
    for provider in listed(options):
        if not provider.get("clientSecret") and old.get(provider.get("name")):
            provider["clientSecret"] = old[provider.get("name")]


def _check_token(options: dict[str, Any], key: str, errors: dict[str, Any]) -> None:
    conf = options[key]
    duration = conf.get("duration")
    if (
        not isinstance(duration, int) or isinstance(duration, bool)
        or not MIN_TOKEN_DURATION <= duration <= MAX_TOKEN_DURATION
    ):
        errors[key] = {"duration": FieldError(
            "validation_invalid_value",
            f"Must be an integer between {MIN_TOKEN_DURATION} and {MAX_TOKEN_DURATION} seconds",
        )}
    secret = conf.get("secret") or random_string(50)
    if not isinstance(secret, str) or not 30 <= len(secret) <= 255:
        errors[key] = {"secret": FieldError("validation_length_out_of_range", "Must be 30 to 255 characters")}
        secret = random_string(50)
    conf["secret"] = secret


def _check_password_auth(options: dict[str, Any], errors: dict[str, Any]) -> None:
    conf = options["passwordAuth"]
    if not isinstance(conf.get("enabled"), bool):
        errors["passwordAuth"] = {"enabled": FieldError("validation_invalid_value", "Must be a boolean")}
    fields = conf.get("identityFields")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        errors["passwordAuth"] = {"identityFields": FieldError(
            "validation_invalid_value", "Must be a list of field names")}


def public_auth_options(options: dict[str, Any]) -> dict[str, Any]:
    """Options as returned by the API: write-only secrets removed."""
    out = copy.deepcopy(options)
    for key in TOKEN_KEYS:
        out.get(key, {}).pop("secret", None)
    for provider in out.get("oauth2", {}).get("providers", []):
        if isinstance(provider, dict):
            provider.pop("clientSecret", None)
    return out
