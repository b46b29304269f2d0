"""One error tree for the whole domain; ``api.errors`` maps it onto HTTP.

Every error carries the HTTP status it stands for, a person-readable message and,
for validation failures, a ``data`` object shaped as PocketBase's::

    {"title": {"code": "validation_required", "message": "Cannot be blank."}}
"""

from __future__ import annotations

from typing import Any

DEFAULT_MESSAGES = {
    400: "Something went wrong while processing your request.",
    401: "Missing or invalid authentication.",
    403: "You are not allowed to perform this request.",
    404: "The requested resource wasn't found.",
    405: "Method not allowed.",
    413: "Request entity too large.",
    429: "Too Many Requests.",
    500: "Something went wrong while processing your request.",
    503: "The service is temporarily unavailable, please try again shortly.",
}


def sentence(message: str) -> str:
    """Upper-case the first letter and end with a full stop, as PocketBase does."""
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    if message[-1] not in ".?!":
        message += "."
    return message


class FieldError(Exception):
    """One invalid value: a machine code and a message for a person."""

    def __init__(self, code: str, message: str, params: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = sentence(message)
        self.params = params

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.params:
            out["params"] = self.params
        return out


class BastionError(Exception):
    """Base of every error that maps to an HTTP response."""

    status = 500

    def __init__(self, message: str = "", data: dict[str, Any] | None = None):
        self.message = sentence(message) or DEFAULT_MESSAGES.get(self.status, "")
        self.data = data or {}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "data": _plain(self.data)}


def _plain(data: Any) -> Any:
    if isinstance(data, FieldError):
        return data.to_dict()
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    return data


class BadRequest(BastionError):
    status = 400


class InvalidQuery(BadRequest):
    """A ``filter`` or ``sort`` that cannot be read. The answer is PocketBase's (its generic
    400 message, empty ``data``); what is wrong, with its position, is in ``detail``, a key
    PocketBase's shape does not have."""

    def __init__(self, detail: str):
        super().__init__()
        self.detail = sentence(detail)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "detail": self.detail}


class ValidationFailed(BadRequest):
    """Field-level validation errors; ``data`` maps field names to FieldError (or nests)."""


class Unauthorized(BastionError):
    status = 401


class Forbidden(BastionError):
    status = 403


class NotFound(BastionError):
    status = 404


class PayloadTooLarge(BastionError):
    status = 413


class TooManyRequests(BastionError):
    status = 429


class Unavailable(BastionError):
    """A backing service (database) cannot be reached; the client may retry."""

    status = 503
    retry_after = 5


class Conflict(BadRequest):
    """A write collided with existing data (unique constraint and the like)."""


def collect(errors: dict[str, Any], message: str) -> None:
    """Raise ValidationFailed with ``message`` when ``errors`` holds anything."""
    if errors:
        raise ValidationFailed(message, errors)


class RequestTimeout(BastionError):
    """The client sent its request too slowly; the connection is closed after the answer."""

    status = 408

    def __init__(self, message: str = "The request took too long to arrive.", data: dict[str, Any] | None = None):
        super().__init__(message, data)
