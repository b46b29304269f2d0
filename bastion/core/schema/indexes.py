"""Collection indexes, written as PocketBase writes them and rebuilt safely per database.

An index is declared as SQL text (``CREATE UNIQUE INDEX idx_slug ON posts (slug)``). The
text is parsed into an ``IndexSpec`` and the real DDL is generated from it, so no
user-written SQL reaches the database. A partial index may carry one simple condition
(``WHERE col != ''``, ``= 'x'``, ``IS NOT NULL``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENT = r"(?:`([^`]+)`|\"([^\"]+)\"|\[([^\]]+)\]|(\w+))"
_HEAD = re.compile(
    r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?" + _IDENT + r"\s+ON\s+" + _IDENT
    + r"\s*\((.*)\)\s*(?:WHERE\s+(.+?))?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_COLUMN = re.compile(
    r"^\s*" + _IDENT + r"(?:\s+COLLATE\s+(\w+))?(?:\s+(ASC|DESC))?\s*$", re.IGNORECASE
)
_WHERE = re.compile(
    r"^\s*" + _IDENT + r"\s*(?:(!=|<>|=)\s*('(?:[^']|'')*'|-?\d+(?:\.\d+)?)|(IS\s+NOT\s+NULL))\s*$",
    re.IGNORECASE,
)


class IndexError_(ValueError):
    """The index text could not be understood."""


@dataclass(frozen=True)
class IndexColumn:
    name: str
    nocase: bool = False
    desc: bool = False


@dataclass(frozen=True)
class IndexWhere:
    column: str
    op: str  # "=", "!=", "notnull"
    value: str | float | None


@dataclass(frozen=True)
class IndexSpec:
    name: str
    table: str
    unique: bool
    columns: tuple[IndexColumn, ...]
    where: IndexWhere | None = None

    def to_sql(self) -> str:
        """The canonical PocketBase-style text for this index."""
        cols = ", ".join(
            f"`{c.name}`" + (" COLLATE NOCASE" if c.nocase else "") + (" DESC" if c.desc else "")
            for c in self.columns
        )
        text = f"CREATE {'UNIQUE ' if self.unique else ''}INDEX `{self.name}` ON `{self.table}` ({cols})"
        if self.where:
            w = self.where
            if w.op == "notnull":
                text += f" WHERE `{w.column}` IS NOT NULL"
            else:
                lit = f"'{str(w.value).replace(chr(39), chr(39) * 2)}'" if isinstance(w.value, str) else w.value
                text += f" WHERE `{w.column}` {w.op} {lit}"
        return text


def _ident(match: re.Match[str], start: int) -> str:
    return next(g for g in match.groups()[start:start + 4] if g is not None)


def parse_index(text: str) -> IndexSpec:
    if not isinstance(text, str) or len(text) > 2000:
        raise IndexError_("an index must be a string of at most 2000 characters")
    m = _HEAD.match(text)
    if not m:
        raise IndexError_("expected CREATE [UNIQUE] INDEX name ON table (columns)")
    name, table = _ident(m, 1), _ident(m, 5)
    columns = []
    for part in m.group(10).split(","):
        cm = _COLUMN.match(part)
        if not cm:
            raise IndexError_(f"unsupported index column {part.strip()!r}: use plain field names")
        collate = (cm.group(5) or "").lower()
        if collate and collate != "nocase":
            raise IndexError_(f"unsupported collation {collate!r}")
        columns.append(IndexColumn(_ident(cm, 0), collate == "nocase", (cm.group(6) or "").lower() == "desc"))
    where = None
    if m.group(11):
        wm = _WHERE.match(m.group(11))
        if not wm:
            raise IndexError_("a partial index may only use WHERE field = value, != value or IS NOT NULL")
        column = _ident(wm, 0)
        if wm.group(7):
            where = IndexWhere(column, "notnull", None)
        else:
            raw = wm.group(6)
            value: str | float = raw[1:-1].replace("''", "'") if raw.startswith("'") else float(raw)
            where = IndexWhere(column, "!=" if wm.group(5) in ("!=", "<>") else "=", value)
    for ident in (name, table, *(c.name for c in columns)):
        if not re.match(r"^\w{1,255}$", ident):
            raise IndexError_(f"invalid identifier {ident[:40]!r}")
    return IndexSpec(name, table, bool(m.group(1)), tuple(columns), where)
