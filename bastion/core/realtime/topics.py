"""Subscription strings, as PocketBase reads them.

A subscription is ``COLLECTION/*`` (or a bare ``COLLECTION``), ``COLLECTION/RECORD_ID``
or any custom string (``@oauth2``); ``?options=<url-encoded JSON>`` may follow, with
``query`` (``filter``, ``expand``, ``fields`` and whatever else a rule reads as
``@request.query.*``) and ``headers`` (read as ``@request.headers.*``, their names
snake_cased). The event a subscriber receives is named by the subscription string
exactly as it was given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import orjson

MAX_TOPICS = 1000
MAX_TOPIC_LENGTH = 2500
CLIENT_ID_LENGTH = (1, 255)
_SPLIT = re.compile(r"[\W_]+")
_CAPITAL = re.compile(r"(?<=[^A-Z])(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class Topic:
    """One subscription of a client."""

    raw: str  # the string as subscribed: the name of its events
    key: str  # the part before ``?``: what an event is matched on
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def record_id(self) -> str | None:
        """The record of a ``COLLECTION/RECORD_ID`` topic; None for ``*`` and bare topics."""
        _, slash, rest = self.key.partition("/")
        return rest if slash and rest != "*" else None

    @property
    def filter(self) -> str:
        return self.query.get("filter", "")

    @property
    def expand(self) -> str:
        return self.query.get("expand", "")

    @property
    def fields(self) -> str:
        return self.query.get("fields", "")


def parse_topic(raw: str) -> Topic:
    """``raw`` as a topic; options that cannot be read are ignored, as PocketBase does."""
    key, _, rest = raw.partition("?")
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    options = parse_qs(rest).get("options", [""])[0] if rest else ""
    if options:
        try:
            data = orjson.loads(options)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            query = _strings(data.get("query"), str)
            headers = _strings(data.get("headers"), snake_case)
    return Topic(raw, key, query, headers)


def _strings(value: object, rename: Callable[[str], str]) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {rename(str(k)): _go_string(v) for k, v in value.items()}


def _go_string(value: object) -> str:
    """A JSON value as PocketBase's option parsing turns it into a string."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return ""  # null, objects and arrays have no string form


def snake_case(name: str) -> str:
    """A header name as rules read it: ``X-Token`` → ``x_token``, ``fooBar`` → ``foo_bar``."""
    words = [w for w in _SPLIT.split(name) if w]
    return "_".join(_CAPITAL.sub("_", w) for w in words).lower()
