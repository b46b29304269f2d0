"""Collections: the model, parsing from API JSON (with every problem reported), and output."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bastion.core.auth.options import (
    AUTH_DEFAULTS,
    LOAD_ERROR,
    forget_missing_mapped_fields,
    parse_auth_options,
    public_auth_options,
)
from bastion.core.errors import BadRequest, FieldError, ValidationFailed
from bastion.core.fields import Field, field_class, field_from_dict
from bastion.core.fields.scalar import BoolField
from bastion.core.fields.structured import PasswordField
from bastion.core.fields.text import EmailField, TextField
from bastion.core.schema.indexes import IndexColumn, IndexError_, IndexSpec, IndexWhere, parse_index
from bastion.tools.ids import collection_id, field_id
from bastion.tools.timeutil import now_string

TYPES = ("base", "auth", "view")
RULES = ("listRule", "viewRule", "createRule", "updateRule", "deleteRule")
AUTH_RULES = ("authRule", "manageRule")
NAME_RE = re.compile(r"^\w{1,255}$", re.ASCII)
# Names a database engine keeps for itself, whatever the engine in use (a schema moves
# between engines): SQLite refuses sqlite_* tables, PostgreSQL looks up pg_* names in
# its catalog first and keeps information_schema, MariaDB keeps the databases mysql,
# performance_schema and sys; Bastion's view probes start with "bastion_probe_". (Its own
# tables, _collections, _params and _migrations, are refused as the tables they are.)
RESERVED_NAME_RE = re.compile(
    r"^(?:sqlite_|pg_|bastion_probe_)|^(?:information_schema|performance_schema|mysql|sys)$", re.I)
MAX_FIELDS = 500
MAX_RULE = 3500
# Field names PocketBase refuses, exactly so (the last three are keys of every record).
RESERVED_FIELD_NAMES = {"null", "true", "false", "_rowid_", "expand", "collectionId", "collectionName"}
AUTH_RESERVED_FIELD_NAMES = {"passwordConfirm", "oldPassword"}  # exactly so, as in PocketBase
ID_PATTERN = r"^[a-z0-9]+$"


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
        min=15, max=15, pattern=ID_PATTERN, autogeneratePattern="[a-z0-9]{15}",
    )
    f.parse_options(f.to_dict(), {})
    return f


def auth_field_specs() -> list[dict[str, Any]]:
    """The fields every auth collection has besides ``id``, in PocketBase's order."""
    return [
        {"name": "password", "type": "password", "system": True, "hidden": True, "required": True, "min": 8},
        {"name": "tokenKey", "type": "text", "system": True, "hidden": True, "required": True,
         "min": 30, "max": 60, "autogeneratePattern": "[a-zA-Z0-9]{50}"},
        {"name": "email", "type": "email", "system": True, "required": True},
        {"name": "emailVisibility", "type": "bool", "system": True},
        {"name": "verified", "type": "bool", "system": True},
    ]


def _unreadable(creating: bool, key: str) -> BadRequest:
    """PocketBase's answer to a body it cannot decode (a key of the wrong type)."""
    if creating and key in ("name", "type"):
        return BadRequest("Failed to load the collection type data due to invalid formatting.")
    return BadRequest(LOAD_ERROR)


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
    if not trusted:
        for key in ("name", "type", "id"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise _unreadable(creating, key)
    errors: dict[str, Any] = {}
    base = existing.to_dict(secrets=True) if existing else {}
    merged = {**base, **data}
    ctype = merged.get("type")
    ctype = "base" if ctype in (None, "") else ctype
    if ctype not in TYPES:
        errors["type"] = FieldError("validation_in_invalid", "Must be a valid value")
        ctype = "base"
    if existing and ctype != existing.type:
        errors["type"] = FieldError("validation_collection_type_change", "Collection type cannot be changed")
    name = _parse_name(merged.get("name"), existing, trusted, errors)
    cid = existing.id if existing else merged.get("id")
    cid = collection_id(ctype, name) if cid in (None, "") else cid
    if not isinstance(cid, str) or len(cid) > 100:
        errors["id"] = FieldError("validation_length_out_of_range", "The length must be between 1 and 100",
                                  {"max": 100, "min": 1})
    elif not NAME_RE.match(cid):
        errors["id"] = FieldError("validation_match_invalid", "Must be in a valid format")
    col = Collection(
        id=cid if isinstance(cid, str) else "", name=name, type=ctype,
        system=bool(merged.get("system")) if trusted else (existing.system if existing else False),
        created=existing.created if existing else now_string(), updated=now_string(),
    )
    col.rules = _parse_rules(merged, ctype, None if trusted else existing, errors, strict=not trusted)
    if ctype == "view":
        query = merged.get("viewQuery", "")
        if not isinstance(query, str) or not query.strip():
            errors["viewQuery"] = FieldError("validation_required", "Cannot be blank")
        else:
            col.view_query = query.strip()
    if ctype == "auth":
        col.auth = parse_auth_options(merged, existing.auth if existing else None, errors, strict=not trusted)
    col.fields = _parse_fields(merged.get("fields"), ctype, existing, errors, strict=not trusted)
    if ctype == "auth":
        forget_missing_mapped_fields(col.auth, {f.name for f in col.fields})
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


def _parse_name(name: Any, existing: Collection | None, trusted: bool, errors: dict[str, Any]) -> str:
    """The collection name, checked in PocketBase's order (a name taken by another
    collection or an internal table is the service's to find)."""
    if name is None or name == "":
        errors["name"] = FieldError("validation_required", "Cannot be blank")
    elif not isinstance(name, str) or len(name) > 255:
        errors["name"] = FieldError("validation_length_out_of_range", "The length must be between 1 and 255",
                                    {"max": 255, "min": 1})
    elif not trusted and "_via_" in name.lower():
        errors["name"] = FieldError("validation_found_via", 'The value cannot contain "_via_".')
    elif not NAME_RE.match(name):
        errors["name"] = FieldError("validation_match_invalid", "Must be in a valid format")
    elif trusted:
        return name
    elif existing and existing.system and name != existing.name:
        errors["name"] = FieldError(
            "validation_collection_system_name_change", "System collection name cannot be changed")
    elif RESERVED_NAME_RE.match(name) and not (existing and existing.name == name):
        errors["name"] = FieldError(
            "validation_collection_name_invalid", "The name shouldn't match with an existing internal table.")
    else:
        return name
    return ""


def _parse_rules(
    merged: dict[str, Any], ctype: str, existing: Collection | None, errors: dict[str, Any], strict: bool
) -> dict[str, str | None]:
    names = RULES + (AUTH_RULES if ctype == "auth" else ())
    rules: dict[str, str | None] = {}
    for rule in names:
        default = AUTH_DEFAULTS.get(rule) if rule in AUTH_RULES else None
        value = merged.get(rule, default)
        if value is not None and not isinstance(value, str):
            if strict:
                raise BadRequest(LOAD_ERROR)
            errors[rule] = FieldError("validation_invalid_rule", "Must be a string or null")
            continue
        if isinstance(value, str) and len(value) > MAX_RULE:
            errors[rule] = FieldError("validation_invalid_rule", f"Must be at most {MAX_RULE} characters")
            continue
        if rule == "manageRule" and value == "":
            errors[rule] = FieldError("validation_nil_or_not_empty_required", "Cannot be blank")
            continue
        if existing and existing.system and existing.name.startswith("_") and value != existing.rules.get(rule):
            errors[rule] = FieldError(
                "validation_collection_system_rule_change", "System collection API rule cannot be changed"
            )
            continue
        rules[rule] = value
    return rules


# The system fields, each with the type it must have and the flags PocketBase enforces
# on a submitted field of that name and type.
_SYSTEM_FLAGS: dict[str, tuple[type[Field], dict[str, bool]]] = {
    "password": (PasswordField, {"system": True, "hidden": True, "required": True}),
    "tokenKey": (TextField, {"system": True, "hidden": True, "required": True}),
    "email": (EmailField, {"system": True, "hidden": False}),
    "emailVisibility": (BoolField, {"system": True}),
    "verified": (BoolField, {"system": True}),
}


def _merged_items(raw: list[Any]) -> list[Any]:
    """The submitted field definitions merged as PocketBase merges them: a field with an
    id replaces the earlier one with that id; one without replaces the earlier one of the
    same name (taking its id), in place. Every other field gets the id derived from its
    type and name, made unique with a number."""
    out: list[Any] = []
    for item in raw:
        given = item.get("id") if isinstance(item, dict) else None
        if not isinstance(item, dict) or given not in (None, "") and not isinstance(given, str):
            out.append(item)  # not a field, or an id of the wrong type: the parser says so
            continue
        item = dict(item)
        name, ftype = _text(item.get("name")), _text(item.get("type"))
        if given:
            at = next((i for i, other in enumerate(out) if _key(other, "id") == given), None)
        else:
            item.pop("id", None)
            if ftype:
                base, taken = field_id(ftype, name), {_key(other, "id") for other in out}
                item["id"] = next((f"{base}{n}" for n in ("", *range(2, 1000)) if f"{base}{n}" not in taken), base)
            at = next((i for i, other in enumerate(out) if name and _key(other, "name") == name), None)
            if at is not None:
                item["id"] = out[at].get("id")
        if at is None:
            out.append(item)
        else:
            out[at] = item
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _key(entry: Any, key: str) -> str:
    """A text key (``id`` or ``name``) of a definition or a field; "" when there is none."""
    if isinstance(entry, Field):
        return str(getattr(entry, key))
    return _text(entry.get(key)) if isinstance(entry, dict) else ""


def _parse_fields(
    raw: Any, ctype: str, existing: Collection | None, errors: dict[str, Any], strict: bool = True
) -> list[Field]:
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        errors["fields"] = FieldError("validation_invalid_value", "Must be a list of fields")
        return []
    if len(raw) > MAX_FIELDS:
        errors["fields"] = FieldError("validation_too_many_values", f"At most {MAX_FIELDS} fields")
        return []
    # Every entry is a submitted definition or a system field put in by Bastion, in the
    # final order (error keys are positions in it, as in PocketBase's answers).
    entries: list[Any] = _merged_items(raw)
    if ctype != "view":
        given_id = next((e for e in entries if isinstance(e, dict) and e.get("name") == "id"), None)
        if field_class(given_id) is not TextField:
            entries.insert(0, id_field())
    if ctype == "auth":
        for spec in auth_field_specs():
            at = next((i for i, e in enumerate(entries) if isinstance(e, dict) and e.get("name") == spec["name"]),
                      None)
            if at is None:
                entries.append(field_from_dict(spec, {}))
            elif field_class(entries[at]) is not field_class(spec):
                replacement = field_from_dict(spec, {})
                assert replacement is not None
                replacement.id = _key(entries[at], "id") or replacement.id
                entries[at] = replacement
    field_errors: dict[str, Any] = {}
    fields: list[Field] = []
    for i, entry in enumerate(entries):
        if isinstance(entry, Field):
            fields.append(entry)
            continue
        ferrs: dict[str, Any] = {}
        f = field_from_dict(entry, ferrs)
        if f is not None and not ferrs:
            _enforce_system(f, ctype)
            if existing is not None:
                _check_system_change(f, existing, ferrs)
        if ferrs:
            field_errors[str(i)] = ferrs
        elif f is not None:
            fields.append(f)
    duplicate = _first_duplicate(entries)
    if duplicate:
        errors["fields"] = duplicate
        return fields
    if existing is not None and ctype != "view" and _system_field_lost(existing, entries):
        errors["fields"] = FieldError("validation_system_field_change", "System fields cannot be deleted or renamed")
        return fields
    reserved = [str(i) for i, e in enumerate(entries)
                if ctype == "auth" and isinstance(e, dict) and _key(e, "name") in AUTH_RESERVED_FIELD_NAMES]
    if reserved:
        errors["fields"] = {key: {"name": FieldError(
            "validation_reserved_field_name", "The field name is reserved and cannot be used")} for key in reserved}
        return fields
    for i, entry in enumerate(entries):
        name = _key(entry, "name") if isinstance(entry, dict) else ""
        key = str(i)
        if not strict:  # names older versions took stay readable
            pass
        elif name in RESERVED_FIELD_NAMES:
            field_errors.setdefault(key, {})["name"] = FieldError("validation_not_in_invalid", "Must not be in list")
        elif "_via_" in name.lower() and "name" not in field_errors.get(key, {}):
            # A back-relation in a rule is written name_via_field: no field may look like one.
            field_errors.setdefault(key, {})["name"] = FieldError(
                "validation_found_via", 'The value cannot contain "_via_".')
        if ctype == "auth" and field_class(entry) is PasswordField and name != "password":
            field_errors.setdefault(key, {})["type"] = FieldError(
                "validation_invalid_value", "Only the system password field may be of type password")
    if field_errors:
        errors["fields"] = field_errors
    return fields


def _first_duplicate(entries: list[Any]) -> dict[str, Any] | None:
    """PocketBase's one error for the first field repeating an earlier id or name."""
    ids: set[str] = set()
    names: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, (dict, Field)):
            continue
        fid, name = _key(entry, "id"), _key(entry, "name")
        if fid in ids:
            return {str(i): {"id": FieldError(
                "validation_duplicated_field_id", f'Duplicated or invalid field id "{fid}"')}}
        if name.lower() in names:
            return {str(i): {"name": FieldError(
                "validation_duplicated_field_name", f"Duplicated or invalid field name {name}",
                {"fieldName": name})}}
        ids.add(fid)
        names.add(name.lower())
    return None


def _system_field_lost(existing: Collection, entries: list[Any]) -> bool:
    """Whether a system field of ``existing`` is missing (by id) or renamed."""
    names: dict[str, str] = {}
    for entry in entries:
        names.setdefault(_key(entry, "id"), _key(entry, "name"))
    return any(f.system and names.get(f.id) != f.name for f in existing.fields)


def _enforce_system(f: Field, ctype: str) -> None:
    """The flags a submitted system field keeps whatever was sent (PocketBase's rules)."""
    if ctype == "view":
        return
    if f.name == "id" and isinstance(f, TextField):
        f.system = f.required = f.primaryKey = True
        f.hidden = False
        if not f.pattern:
            f.pattern = ID_PATTERN
        return
    wanted, flags = _SYSTEM_FLAGS.get(f.name, (None, {}))
    if ctype == "auth" and type(f) is wanted:
        for attr, value in flags.items():
            setattr(f, attr, value)


def _check_system_change(f: Field, existing: Collection, ferrs: dict[str, Any]) -> None:
    old = existing.field_by_id(f.id) or existing.field(f.name)
    if old is not None and old.system and (old.name != f.name or type(old) is not type(f)):
        ferrs["name"] = FieldError("validation_system_field_change", "System fields cannot be renamed or retyped")
    if old is not None and old.system:
        f.system = True


def _parse_indexes(
    raw: Any, col: Collection, errors: dict[str, Any], renames: dict[str, str]
) -> list[str]:
    """The indexes in Bastion's canonical text; the first problem found is reported, at
    its position, as PocketBase reports it."""
    if raw is None:
        raw = []
    if not isinstance(raw, list) or len(raw) > 100:
        errors["indexes"] = FieldError("validation_invalid_value", "Must be a list of at most 100 indexes")
        return []
    out: list[str] = []
    problem: dict[str, Any] = {}
    names = {f.name for f in col.fields}
    for i, text in enumerate(raw):
        try:
            spec = parse_index(text)
        except IndexError_ as exc:
            problem = {str(i): FieldError("validation_invalid_index_expression", f"Invalid index: {exc}")}
            break
        if renames:
            spec = _renamed(spec, renames, names)
        missing = [c.name for c in spec.columns if c.name not in names]
        if spec.where and spec.where.column not in names:
            missing.append(spec.where.column)
        if missing:
            problem = {str(i): FieldError(
                "validation_invalid_index_expression",
                f"Unknown field(s) in index: {', '.join(dict.fromkeys(missing))}")}
            break
        spec = IndexSpec(spec.name, col.name, spec.unique, spec.columns, spec.where)
        out.append(spec.to_sql())
    if "name" in errors or "id" in errors:
        # Index texts name the table (generated auth ones the id too): with either invalid
        # they cannot be read back, and the collection is refused anyway.
        if problem:
            errors["indexes"] = problem
        return out
    if col.is_auth and not problem:
        out = _ensure_auth_indexes(out, col)
    problem = problem or _index_repeats(out)
    if problem:
        errors["indexes"] = problem
    return out


def _index_repeats(indexes: list[str]) -> dict[str, Any]:
    """The first index repeating an earlier one's name (its definition is the service's
    to check, after the names other collections use, in PocketBase's order)."""
    names: set[str] = set()
    for i, text in enumerate(indexes):
        name = parse_index(text).name.lower()
        if name in names:
            return {str(i): FieldError("validation_duplicated_index_name", "The index name already exists")}
        names.add(name)
    return {}


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


def auth_problems(col: Collection, check_rule: Callable[[str, Collection], str | None]) -> dict[str, Any]:
    """PocketBase's checks across an auth collection's options, made once everything else
    is valid: MFA needs a second way to sign in (and a valid rule), and every identity
    field must exist and have a single-column UNIQUE index."""
    mfa, password_auth = col.auth["mfa"], col.auth["passwordAuth"]
    if mfa["enabled"]:
        methods = sum(bool(col.auth[key]["enabled"]) for key in ("passwordAuth", "otp", "oauth2"))
        if methods < 2:
            return {"mfa": {"enabled": FieldError(
                "validation_mfa_not_enough_auths", "MFA requires at least 2 auth methods to be enabled.")}}
        problem = check_rule(mfa["rule"], col) if mfa["rule"] else None
        if problem:
            return {"mfa": {"rule": FieldError("validation_invalid_rule", f"Invalid rule: {problem}")}}
    if not password_auth["enabled"]:
        return {}
    unique = {s.columns[0].name.lower() for s in col.index_specs() if s.unique and len(s.columns) == 1}
    for name in password_auth["identityFields"]:
        if col.field(name) is None:
            return {"passwordAuth": {"identityFields": FieldError(
                "validation_missing_field", f"Invalid or missing field {name}", {"fieldName": name})}}
        if name.lower() not in unique:
            return {"passwordAuth": {"identityFields": FieldError(
                "validation_missing_unique_constraint", f"The field {name} doesn't have a UNIQUE constraint.",
                {"fieldName": name})}}
    return {}
