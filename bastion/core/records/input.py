"""Turning a submitted body into column values: modifiers, coercion, validation.

Errors for every field are gathered before anything is written, so one response lists
all problems. Auth system fields follow PocketBase: ``password``/``passwordConfirm``,
``oldPassword`` for a change, and ``verified``/``email`` guarded unless the caller may
manage the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bastion.core.errors import FieldError
from bastion.core.fields import Field, FieldContext
from bastion.core.fields.scalar import AutodateField
from bastion.core.fields.structured import PasswordField
from bastion.core.fields.text import TextField
from bastion.core.records.record import Record
from bastion.core.schema.collections import Collection
from bastion.tools.timeutil import now_string

IGNORED_KEYS = {"collectionId", "collectionName", "expand"}


@dataclass
class PreparedRecord:
    """The values to write, plus plain passwords to hash (by field name)."""

    values: dict[str, Any]
    errors: dict[str, Any] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)

    @property
    def new_password(self) -> str | None:
        """The new plain password of an auth record (its ``password`` field)."""
        return self.passwords.get("password")


def has_nul(value: Any) -> bool:
    """True when a NUL character hides anywhere in ``value`` (no engine stores it alike)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    return False


def _apply_modifiers(f: Field, body: dict[str, Any], current: Any, errors: dict[str, Any]) -> tuple[bool, Any]:
    """Resolve ``f`` and the modifier keys ``f`` takes (``f+``, ``+f``, ``f-``) into one
    value; return (submitted, value). Modifiers a type does not take are ignored, as in
    PocketBase."""
    name = f.name
    modifiers = [k for k in f.modifier_keys() if k in body]
    if name not in body and not modifiers:
        return False, current
    value = current
    ctx = FieldContext(is_new=current is None, old_value=current)
    try:
        if name in body:
            value = f.normalize(body[name], ctx)
        if modifiers:
            value = f.modify(value, body, ctx)
    except FieldError as exc:
        errors[name] = exc
    return True, value


def has_modifier(f: Field, key: str) -> bool:
    """True when ``key`` is a modifier ``f`` takes: ``f+``/``f-`` on a number, ``+f``,
    ``f+``/``f-`` on a select, relation or file. Other such keys are ignored."""
    return key in f.modifier_keys()


def modifier_keys(col: Collection, body: dict[str, Any]) -> set[str]:
    """The fields of ``col`` that ``body`` changes through ``f+``, ``+f`` or ``f-`` keys."""
    names = set()
    for key in body:
        if isinstance(key, str) and (key.endswith(("+", "-")) or key.startswith("+")):
            name = key.strip("+").removesuffix("-") if key.startswith("+") else key[:-1]
            f = col.field(name)
            if f is not None and has_modifier(f, key):
                names.add(name)
    return names


def rule_body(col: Collection, body: dict[str, Any], prepared: PreparedRecord) -> dict[str, Any]:
    """``body`` as rules see it: every modifier key replaced by the value it resolves to
    under the plain field name, so ``@request.body.score`` is the score being written
    whether it came as ``score`` or as ``score+`` (a rule can't be passed by renaming)."""
    names = modifier_keys(col, body)
    if not names:
        return body
    out = {k: v for k, v in body.items()
           if not any(k in (f"+{n}", f"{n}+", f"{n}-") for n in names)}
    for name in names:
        if name in prepared.values:
            out[name] = prepared.values[name]
        else:  # refused (an error is reported) or not writable by this caller: still set
            out[name] = body.get(name, body.get(f"{name}+", body.get(f"+{name}", body.get(f"{name}-"))))
    return out


def prepare(
    col: Collection, body: dict[str, Any], existing: Record | None, *, can_manage: bool
) -> PreparedRecord:
    """Coerce and validate ``body`` for a create (``existing`` None) or an update."""
    is_new = existing is None
    now = now_string()  # one instant for every autodate field of this write
    out = PreparedRecord(values={})
    errors = out.errors
    for f in col.fields:
        current = None if existing is None else existing.get(f.name)
        if isinstance(f, AutodateField):
            if (is_new and f.onCreate) or (not is_new and f.onUpdate):
                out.values[f.name] = now
            elif is_new:
                out.values[f.name] = ""
            continue
        if isinstance(f, PasswordField):
            _password(f, body, out, is_new, col.is_auth)
            continue
        if f.name == "id" and not is_new:
            if "id" in body and body["id"] != current:
                errors["id"] = FieldError("validation_pk_change", "The record primary key cannot be changed")
            continue
        if col.is_auth and f.name in ("tokenKey",):
            out.values[f.name] = current if not is_new else None
            continue
        if col.is_auth and f.name == "verified" and not can_manage and f.name in body:
            if (is_new and body[f.name] not in (False, None, "", "false")) or (
                not is_new and bool(body[f.name]) != bool(current)
            ):
                errors[f.name] = FieldError("validation_values_mismatch", "You are not allowed to change this field")
                continue
        if col.is_auth and f.name == "email" and not is_new and not can_manage and "email" in body:
            if body["email"] != current:
                errors["email"] = FieldError(
                    "validation_values_mismatch", "Use the email change flow to change the email")
                continue
        if f.hidden and not can_manage and not (col.is_auth and f.system):
            submitted, value = False, current
        else:
            submitted, value = _apply_modifiers(f, body, current, errors)
        if f.name in errors:
            continue
        if submitted and has_nul(value):
            errors[f.name] = FieldError("validation_invalid_value", "Must not contain NUL characters")
            continue
        if is_new and not submitted:
            value = f.zero()
        if isinstance(f, TextField) and value == "" and f.autogeneratePattern and (is_new or submitted):
            value = f.autogenerate()
        if submitted or is_new:
            try:
                f.validate(value)
            except FieldError as exc:
                errors[f.name] = exc
                continue
        out.values[f.name] = value
        if submitted and (is_new or value != current):
            out.changed.add(f.name)
    return out


def _password(
    f: PasswordField, body: dict[str, Any], out: PreparedRecord, is_new: bool, confirm_needed: bool
) -> None:
    plain = body.get(f.name)
    submitted = plain not in (None, "")
    if not submitted:
        if is_new and f.required:
            out.errors[f.name] = FieldError("validation_required", "Cannot be blank")
        return
    if not isinstance(plain, str):
        out.errors[f.name] = FieldError("validation_invalid_value", "Must be a string")
        return
    try:
        f.validate_plain(plain)
    except FieldError as exc:
        out.errors[f.name] = exc
        return
    if confirm_needed and body.get("passwordConfirm") != plain:
        out.errors["passwordConfirm"] = FieldError("validation_values_mismatch", "Values don't match")
        return
    out.passwords[f.name] = plain
    out.changed.add(f.name)
