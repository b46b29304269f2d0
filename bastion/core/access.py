"""The one access evaluator: rules become SQL conditions for every transport.

A rule is ``None`` (superusers only), ``""`` (everyone) or an expression of the filter
language that must match. :func:`rule_to_match` decides which of the three applies to a
caller (superusers and API keys first); ``Access`` compiles an expression with its
``RuleCompiler`` (``core.filters.Filters``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from bastion.core.schema.collections import Collection

if TYPE_CHECKING:
    from bastion.core.auth.api_keys import ApiKeyScope
from bastion.core.errors import Forbidden

SUPERUSERS = "_superusers"


@dataclass(frozen=True)
class AuthIdentity:
    """The authenticated record of a request."""

    collection: Collection
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def is_superuser(self) -> bool:
        return self.collection.name == SUPERUSERS


@dataclass
class RequestInfo:
    """What rules may refer to as ``@request.*``."""

    auth: AuthIdentity | None = None
    api_key: ApiKeyScope | None = None
    method: str = "GET"
    context: str = "default"
    headers: Mapping[str, str] = field(default_factory=dict)  # lower case, '-' as '_'
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def is_superuser(self) -> bool:
        return self.auth is not None and self.auth.is_superuser


class RuleCompiler(Protocol):
    def compile(
        self, rule: str, info: RequestInfo, col: Collection, table: sa.Table, new_record: bool = False
    ) -> sa.ColumnElement[bool]: ...


ONLY_SUPERUSERS = "Only superusers can perform this action."
KEY_ACTIONS = ("list", "view", "create", "update", "delete")


def rule_to_match(info: RequestInfo, col: Collection, rule_name: str) -> str | None:
    """The expression ``info``'s caller must match for ``rule_name`` of ``col``, or None
    when everything is allowed (superusers, an API key that allows the action, an empty
    rule). Raises Forbidden when the rule is locked (``null``) or a key does not allow it."""
    if info.is_superuser:
        return None
    if info.api_key is not None:
        action = rule_name.removesuffix("Rule")
        # A key never reaches a system collection (superusers, keys, OTPs ...), whatever
        # it names: "*" means every collection the app's own schema declares.
        if not col.system and action in KEY_ACTIONS and info.api_key.allows(col.id, action):
            return None
        raise Forbidden(f"The API key {info.api_key.name!r} does not allow {action} on {col.name}.")
    rule = col.rule(rule_name)
    if rule is None:
        raise Forbidden(ONLY_SUPERUSERS)
    return rule if rule.strip() else None


class Access:
    def __init__(self, compiler: RuleCompiler):
        self.compiler = compiler

    def condition(
        self, info: RequestInfo, col: Collection, rule_name: str, table: sa.Table
    ) -> sa.ColumnElement[bool] | None:
        """None when everything is allowed; a condition to AND in otherwise.

        Raises Forbidden when the rule is locked (``null``) and the caller isn't a superuser.
        """
        rule = rule_to_match(info, col, rule_name)
        if rule is None:
            return None
        # A create rule reads the new record's values as given, not as stored (see
        # ``RecordResolver.new_record``).
        return self.compiler.compile(rule, info, col, table, new_record=rule_name == "createRule")
