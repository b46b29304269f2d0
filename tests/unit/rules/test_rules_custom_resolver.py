"""A resolver written the way core's record resolver will be: relations and @request.*.

It shows that the FieldResolver interface carries relation traversal (a multi-valued
``items`` source joining another table, a correlated scalar subquery for a single
relation) and request values (bound literals, ``:isset`` applied by the resolver).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from rules_backends import ALL_IDS, NOW, Backend

from bastion.rules import (
    FilterError,
    Identifier,
    ItemSource,
    ResolvedField,
    SimpleFieldResolver,
    compile_filter,
    get_dialect,
)

REQUEST: dict[str, Any] = {
    "auth": {"id": "r2", "name": "Two"},
    "body": {"title": "New", "tags": ["a", "x"]},
    "query": {"wild": "%ELLO%", "dangling": "%ello\\", "plain": "o W"},
}


class RecordLikeResolver:
    """``tags.label`` (multi relation), ``self.label`` (single relation), ``@request.*``."""

    def __init__(self, rules_db: Backend) -> None:
        self.items = rules_db.table
        self.labels = rules_db.labels
        self.dialect = get_dialect(rules_db.name)
        self.plain = SimpleFieldResolver(rules_db.table, {"id", "title", "n"}, multi={"tags"})

    def resolve(self, identifier: Identifier) -> ResolvedField:
        if identifier.name.startswith("@request."):
            return self._request(identifier)
        if identifier.name == "tags.label":
            return ResolvedField(expr=self.items.c.tags, multi=True, items=self._tag_labels)
        if identifier.name == "self.label":
            label = self.labels.alias()
            subquery = (
                sa.select(label.c.label).where(label.c.id == self.items.c.id).scalar_subquery()
            )
            return ResolvedField(expr=subquery)
        return self.plain.resolve(identifier)

    def _tag_labels(self) -> ItemSource:
        ids = self.dialect.json_items(self.items.c.tags)
        label = self.labels.alias()
        return ItemSource(
            froms=(*ids.froms, label), value=label.c.label, where=(label.c.id == ids.value,)
        )

    def _request(self, identifier: Identifier) -> ResolvedField:
        path = identifier.name.split(".")[1:]
        value: Any = REQUEST
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if identifier.modifier == "isset":
            present = path[0] == "body" and len(path) == 2 and path[1] in REQUEST["body"]
            return ResolvedField.literal(present, modifier_applied=True)
        return ResolvedField.literal(value)


CASES = [
    ('tags.label ?= "Alpha"', ["r1", "r5", "r8"]),
    ('tags.label = "Alpha"', ["r8"]),
    ('tags.label ~ "a"', ["r1", "r2", "r5", "r6", "r8"]),
    ('tags.label ?~ "ray"', ["r6"]),
    ('tags.label = ""', ["r3", "r4", "r7"]),
    ('self.label = "first"', ["r1"]),
    ('self.label = ""', ["r3", "r4", "r5", "r6", "r7", "r8"]),
    ('self.label != "first"', ["r2", "r3", "r4", "r5", "r6", "r7", "r8"]),
    ("self.label ~ title", []),
    ("id = @request.auth.id", ["r2"]),
    ('@request.auth.id != ""', ALL_IDS),
    ("@request.auth.missing = null", ALL_IDS),
    ("@request.nothing.here = null", ALL_IDS),
    ('@request.body.tags:each ?= "x"', ALL_IDS),
    ('@request.body.tags:each = "a"', []),
    ("@request.body.tags:length = 2", ALL_IDS),
    ("@request.body.title:isset = true", ALL_IDS),
    ("@request.body.other:isset = true", []),
    ('@request.body.title:lower = "new"', ALL_IDS),
    ("@request.body.tags:each ?= tags", ["r1", "r5", "r6", "r8"]),
    ("tags ?= @request.body.tags", []),
    ("title = @request.auth.name || n = 100", ["r6"]),
    ("title ~ @request.query.wild", ["r1", "r2"]),
    ("title ~ @request.query.dangling", []),
    ("title ~ @request.query.plain", ["r1"]),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[text for text, _ in CASES])
async def test_custom_resolver(rules_db: Backend, text: str, expected: list[str]) -> None:
    condition = compile_filter(text, RecordLikeResolver(rules_db), rules_db.name, now=NOW)
    assert await rules_db.run(condition) == expected


def test_isset_needs_the_resolver(sqlite_table: sa.Table) -> None:
    resolver = SimpleFieldResolver(sqlite_table, {"title"})
    with pytest.raises(
        FilterError, match=r"Invalid field \"title:isset\" at position 0: the :isset"
    ):
        compile_filter("title:isset = true", resolver, "sqlite")


@pytest.fixture
def sqlite_table() -> sa.Table:
    return sa.Table("t", sa.MetaData(), sa.Column("title", sa.String), sa.Column("tags", sa.JSON))
