"""Collections: the model, parsing from API JSON (with every problem reported), and output."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from bastion.core.auth_options import AUTH_DEFAULTS, parse_auth_options, public_auth_options
from bastion.core.errors import FieldError, ValidationFailed
from bastion.core.fields import Field, field_from_dict
from bastion.core.fields.structured import PasswordField
from bastion.core.fields.text import TextField
from bastion.core.indexes import IndexColumn, IndexError_, IndexSpec, IndexWhere, parse_index
from bastion.tools.ids import collection_id
from bastion.tools.timeutil import now_string

TYPES = ("base", "auth", "view")
RULES = ("listRule", "viewRule", "createRule", "updateRule", "deleteRule")
AUTH_RULES = ("authRule", "manageRule")
NAME_RE = re.compile(r"^\w{1,255}$", re.ASCII)
# Names a database engine keeps for itself, whatever the engine in use (a schema moves
# between engines): SQLite refuses sqlite_* tables, PostgreSQL looks up pg_* names in
# its catalog first and keeps information_schema, MariaDB keeps the databases mysql,
# performance_schema and sys. Bastion's own tables start with "_", and its view probes
# with "bastion_probe_".
RESERVED_NAME_RE = re.compile(
    r"^(?:sqlite_|pg_|bastion_probe_)|^(?:information_schema|performance_schema|mysql|sys)$", re.I)
MAX_FIELDS = 500
MAX_RULE = 3500
RESERVED_FIELD_NAMES = {"expand", "collectionid", "collectionname"}
AUTH_RESERVED_FIELD_NAMES = {"passwordconfirm", "oldpassword"}
AUTH_SYSTEM_FIELDS = ("id", "password", "tokenKey", "email", "emailVisibility", "verified")


@dataclass
class Collection:
    """One collection; its ``fields`` map one-to-one onto the columns of its table."""

    id: str
    name: str
    type: str = "base"
    system: bool = False
    fields: list[Field] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    rules: dict[str, str | None] = field(default_factory=dict)
    view_query: str = ""
    auth: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    updated: str = ""

    @property
    def is_auth(self) -> bool:
        return self.type == "auth"

    @property
    def is_view(self) -> bool:
        return self.type == "view"

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def field_by_id(self, fid: str) -> Field | None:
        return next((f for f in self.fields if f.id == fid), None)

    def rule(self, name: str) -> str | None:
        return self.rules.get(name)

    def index_specs(self) -> list[IndexSpec]:
        return [parse_index(text) for text in self.indexes]

    def to_dict(self, secrets: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "name": self.name, "type": self.type, "system": self.system,
            "fields": [f.to_dict() for f in self.fields], "indexes": list(self.indexes),
            "created": self.created, "updated": self.updated,
        }
        for rule in RULES:
            out[rule] = self.rules.get(rule)
        if self.is_view:
            out["viewQuery"] = self.view_query
        if self.is_auth:
            for rule in AUTH_RULES:
                out[rule] = self.rules.get(rule)
            out.update(copy.deepcopy(self.auth) if secrets else public_auth_options(self.auth))
        return out


# -- parsing --------------------------------------------------------------------------

def id_field(system: bool = True) -> TextField:
    f = TextField(
        name="id", id="text3208210256", system=system, required=True, primaryKey=True,
        min=15, max=15, pattern=r"^[a-z0-9]+$", autogeneratePattern="[a-z0-9]{15}",
    )
    f.parse_options(f.to_dict(), {})
    return f


def auth_system_fields(existing: Collection | None = None) -> list[Field]:
    """The fields every auth collection has, in PocketBase's order."""
    errs: dict[str, Any] = {}
    specs = [
        {"name": "password", "type": "password", "system": True, "hidden": True, "required": True, "min": 8},
        {"name": "tokenKey", "type": "text", "system": True, "hidden": True, "required": True,
         "min": 30, "max": 60, "autogeneratePattern": "[a-zA-Z0-9]{50}"},
        {"name": "email", "type": "email", "system": True, "required": True},
        {"name": "emailVisibility", "type": "bool", "system": True},
        {"name": "verified", "type": "bool", "system": True},
    ]
    out: list[Field] = [id_field()]
    for spec in specs:
        f = field_from_dict(spec, errs)
        assert f is not None
        out.append(f)
    return out


def parse_collection(
    data: Any, existing: Collection | None, creating: bool, trusted: bool = False
) -> Collection:
    """Build a Collection from API JSON (a full create or a partial update over ``existing``).

    ``trusted`` is for definitions read back from storage or written by Bastion itself:
    they may use reserved names and system rules.
    """
    message = "Failed to create collection." if creating else "Failed to update collection."
    if not isinstance(data, dict):
        raise ValidationFailed(message, {"": FieldError("validation_invalid_value", "Must be a JSON object")})
    errors: dict[str, Any] = {}
    base = existing.to_dict(secrets=True) if existing else {}
    merged = {**base, **data}
    ctype = merged.get("type")
    ctype = "base" if ctype in (None, "") else ctype
    if ctype not in TYPES:
        errors["type"] = FieldError("validation_in_invalid", f"Must be one of {', '.join(TYPES)}")
        ctype = "base"
    if existing and ctype != existing.type:
        errors["type"] = FieldError("validation_collection_type_change", "Collection type cannot be changed")
    name = merged.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        errors["name"] = FieldError(
            "validation_invalid_name", "Must be 1-255 letters, digits or underscores"
        )
        name = ""
    elif trusted:
        pass
    elif existing and existing.system and name != existing.name:
        errors["name"] = FieldError("validation_collection_system_name_change", "System collections cannot be renamed")
    elif name.startswith("_") and not (existing and existing.system):
        errors["name"] = FieldError("validation_invalid_name", "Names starting with _ are reserved")
    elif RESERVED_NAME_RE.match(name) and not (existing and existing.name == name):
        errors["name"] = FieldError(
            "validation_collection_name_invalid", "The name shouldn't match with an existing internal table.")
    cid = existing.id if existing else merged.get("id")
    cid = collection_id(ctype, name) if cid in (None, "") else cid
    if not isinstance(cid, str) or not re.match(r"^\w{1,100}$", cid):
        errors["id"] = FieldError("validation_invalid_value", "Must be 1-100 letters, digits or underscores")
    col = Collection(
        id=cid if isinstance(cid, str) else "", name=name, type=ctype,
        system=bool(merged.get("system")) if trusted else (existing.system if existing else False),
        created=existing.created if existing else now_string(), updated=now_string(),
    )
    col.rules = _parse_rules(merged, ctype, None if trusted else existing, errors)
    if ctype == "view":
        query = merged.get("viewQuery", "")
        if not isinstance(query, str) or not query.strip():
            errors["viewQuery"] = FieldError("validation_required", "Cannot be blank")
        else:
            col.view_query = query.strip()
    if ctype == "auth":
        col.auth = parse_auth_options(merged, existing.auth if existing else None, errors)
    col.fields = _parse_fields(merged.get("fields"), ctype, existing, errors)
    renames = {}
    if existing is not None:
        for f in col.fields:
            before = existing.field_by_id(f.id)
            if before is not None and before.name != f.name:
                renames[before.name] = f.name
    col.indexes = _parse_indexes(merged.get("indexes"), col, errors, renames)
    if errors:
        raise ValidationFailed(message, errors)
    return col


def _parse_rules(
    merged: dict[str, Any], ctype: str, existing: Collection | None, errors: dict[str, Any]
) -> dict[str, str | None]:
    names = RULES + (AUTH_RULES if ctype == "auth" else ())
    rules: dict[str, str | None] = {}
    for rule in names:
        default = AUTH_DEFAULTS.get(rule) if rule in AUTH_RULES else None
        value = merged.get(rule, default)
        if value is not None and not isinstance(value, str):
            errors[rule] = FieldError("validation_invalid_rule", "Must be a string or null")
            continue
        if isinstance(value, str) and len(value) > MAX_RULE:
            errors[rule] = FieldError("validation_invalid_rule", f"Must be at most {MAX_RULE} characters")
            continue
        if rule == "manageRule" and value == "":
            errors[rule] = FieldError("validation_invalid_rule", "Use null or a non-empty rule")
            continue
        if existing and existing.system and existing.name.startswith("_") and value != existing.rules.get(rule):
            errors[rule] = FieldError(
                "validation_collection_system_rule_change", "System collection rules cannot be changed"
            )
            continue
        rules[rule] = value
    return rules


def _parse_fields(
    raw: Any, ctype: str, existing: Collection | None, errors: dict[str, Any]
) -> list[Field]:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        errors["fields"] = FieldError("validation_invalid_value", "Must be a list of fields")
        return []
    if len(raw) > MAX_FIELDS:
        errors["fields"] = FieldError("validation_too_many_values", f"At most {MAX_FIELDS} fields")
        return []
    field_errors: dict[str, Any] = {}
    fields: list[Field] = []
    # Missing system fields are put in front, and error keys count them, as PocketBase's do.
    submitted = {item.get("name") for item in raw if isinstance(item, dict) and isinstance(item.get("name"), str)}
    system_names = () if ctype == "view" else (("id",) if ctype != "auth" else AUTH_SYSTEM_FIELDS)
    offset = sum(1 for name in system_names if name not in submitted)
    position: dict[int, int] = {}
    for i, item in enumerate(raw):
        ferrs: dict[str, Any] = {}
        f = field_from_dict(item, ferrs)
        if f is not None and existing is not None:
            _check_system_change(f, existing, ferrs)
        if ferrs:
            field_errors[str(i + offset)] = ferrs
        elif f is not None:
            fields.append(f)
            position[id(f)] = i + offset
    fields = _with_system_fields(fields, ctype)
    reserved = RESERVED_FIELD_NAMES | (AUTH_RESERVED_FIELD_NAMES if ctype == "auth" else set())
    seen: set[str] = set()
    for i, f in enumerate(fields):
        key = str(position.get(id(f), i))
        lname = f.name.lower()
        if lname in seen:
            field_errors.setdefault(key, {})["name"] = FieldError(
                "validation_duplicated_field_name", f"Duplicated field name {f.name}")
        if lname in reserved:
            field_errors.setdefault(key, {})["name"] = FieldError(
                "validation_not_in_invalid", f"{f.name} is a reserved field name")
        seen.add(lname)
        if ctype == "auth" and isinstance(f, PasswordField) and f.name != "password":
            field_errors.setdefault(key, {})["type"] = FieldError(
                "validation_invalid_value", "Only the system password field may be of type password")
    if field_errors:
        errors["fields"] = field_errors
    return fields


def _check_system_change(f: Field, existing: Collection, ferrs: dict[str, Any]) -> None:
    old = existing.field_by_id(f.id) or existing.field(f.name)
    if old is not None and old.system and (old.name != f.name or old.TYPE != f.TYPE):
        ferrs["name"] = FieldError("validation_system_field_change", "System fields cannot be renamed or retyped")
    if old is not None and old.system:
        f.system = True


def _with_system_fields(fields: list[Field], ctype: str) -> list[Field]:
    """Ensure the ``id`` field (and auth fields) exist, first and in order."""
    if ctype == "view":
        return fields
    required = [id_field()] if ctype != "auth" else auth_system_fields()
    by_name = {f.name: f for f in fields}
    head: list[Field] = []
    for sys_field in required:
        given = by_name.get(sys_field.name)
        if given is not None and given.TYPE == sys_field.TYPE:
            given.system = True
            if sys_field.name == "id":
                given.primaryKey = True  # type: ignore[attr-defined]
            head.append(given)
        else:
            head.append(sys_field)
    names = {f.name for f in head}
    return head + [f for f in fields if f.name not in names]


def _parse_indexes(
    raw: Any, col: Collection, errors: dict[str, Any], renames: dict[str, str]
) -> list[str]:
    if raw is None:
        raw = []
    if not isinstance(raw, list) or len(raw) > 100:
        errors["indexes"] = FieldError("validation_invalid_value", "Must be a list of at most 100 indexes")
        return []
    out: list[str] = []
    index_errors: dict[str, Any] = {}
    names = {f.name for f in col.fields}
    for i, text in enumerate(raw):
        try:
            spec = parse_index(text)
        except IndexError_ as exc:
            index_errors[str(i)] = FieldError("validation_invalid_index_expression", f"Invalid index: {exc}")
            continue
        if renames:
            spec = _renamed(spec, renames, names)
        missing = [c.name for c in spec.columns if c.name not in names]
        if spec.where and spec.where.column not in names:
            missing.append(spec.where.column)
        if missing:
            index_errors[str(i)] = FieldError(
                "validation_invalid_index_expression", f"Unknown field(s) in index: {', '.join(dict.fromkeys(missing))}")
            continue
        spec = IndexSpec(spec.name, col.name, spec.unique, spec.columns, spec.where)
        out.append(spec.to_sql())
    if "name" in errors or "id" in errors:
        # Index texts name the table (generated auth ones the id too): with either invalid
        # they cannot be read back, and the collection is refused anyway.
        if index_errors:
            errors["indexes"] = index_errors
        return out
    if col.is_auth:
        out = _ensure_auth_indexes(out, col)
    seen: set[str] = set()
    for i, text in enumerate(out):
        iname = parse_index(text).name.lower()
        if iname in seen:
            index_errors[str(i)] = FieldError("validation_duplicated_index_name", "Duplicated index name")
        seen.add(iname)
    if index_errors:
        errors["indexes"] = index_errors
    return out


def _renamed(spec: IndexSpec, renames: dict[str, str], names: set[str]) -> IndexSpec:
    """Follow field renames in an index that still names the old field."""
    cols = tuple(
        IndexColumn(renames[c.name], c.nocase, c.desc) if c.name not in names and c.name in renames else c
        for c in spec.columns
    )
    where = spec.where
    if where is not None and where.column not in names and where.column in renames:
        where = IndexWhere(renames[where.column], where.op, where.value)
    return IndexSpec(spec.name, spec.table, spec.unique, cols, where)


def _ensure_auth_indexes(indexes: list[str], col: Collection) -> list[str]:
    specs = [parse_index(t) for t in indexes]
    have = {(s.columns[0].name, s.unique) for s in specs if len(s.columns) == 1}
    out = list(indexes)
    if ("tokenKey", True) not in have:
        out.append(f"CREATE UNIQUE INDEX `idx_tokenKey_{col.id}` ON `{col.name}` (`tokenKey`)")
    if ("email", True) not in have:
        out.append(f"CREATE UNIQUE INDEX `idx_email_{col.id}` ON `{col.name}` (`email`) WHERE `email` != ''")
    return out


def collection_from_stored(data: dict[str, Any]) -> Collection:
    """Rebuild a Collection from its stored JSON (trusted, already validated)."""
    col = parse_collection(data, None, creating=True, trusted=True)
    col.id = data["id"]
    col.created, col.updated = data.get("created", ""), data.get("updated", "")
    return col
