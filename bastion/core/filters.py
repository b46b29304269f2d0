"""Client ``filter`` parameters, compiled through the rules package into SQL conditions."""

from __future__ import annotations

from typing import Any

from bastion.core.errors import BadRequest
from bastion.core.record_query import FilterBuilder


class Filters:
    """Entry point for the records API and the system lists."""

    def builder(self, text: str, info: Any) -> FilterBuilder:
        raise BadRequest("The filter parameter is not supported yet.")

    def filter_plain(self, items: list[dict[str, Any]], text: str, allowed: tuple[str, ...]) -> list[dict[str, Any]]:
        raise BadRequest("The filter parameter is not supported yet.")
