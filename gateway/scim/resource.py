"""Validate and canonicalise a resource a client sends (POST, PUT, Bulk, after PATCH).

RFC 7643 attribute names are case-insensitive; the gateway stores and returns
them in their canonical spelling. This module walks a client's JSON against the
resource type's schemas and returns a new dict in which:

- known attributes have their canonical names and are type-checked;
- readOnly attributes the client echoes (``id``, ``meta``, ``groups``, member
  ``display``) are dropped, as RFC 7644 §3.5.1 tells a server to do;
- ``password`` is dropped: the gateway is SSO-only and never stores one;
- attributes no schema defines are kept as sent, so nothing is silently lost;
- required attributes are present, else ``invalidValue``;
- an attribute given twice under spellings that differ only in case (``userName``
  and ``USERNAME``) is ``invalidSyntax``: names are case-insensitive (RFC 7643 §2.1),
  so it is a repeated key, which the gateway refuses rather than pick one;
- values fit the database columns they go to (:data:`COLUMN_LENGTHS`), else
  ``invalidValue`` naming the attribute, before the database would refuse them.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidSyntax, InvalidValue
from .schemas import Attribute, ResourceType, Schema

__all__ = [
    "COLUMN_LENGTHS",
    "DROPPED_ON_INPUT",
    "VALUE_TYPE_LENGTH",
    "canonicalize",
    "check_required",
]

DROPPED_ON_INPUT = frozenset({"password"})
_SKIP_TOP = frozenset({"schemas", "id", "meta"})

COLUMN_LENGTHS = {"userName": 512, "externalId": 512}
"""The longest value, in characters, of attributes stored in a column of bounded
length (``gateway/store/tables.py``); ``userName`` also case-folded (``ß`` folds to
``ss``), as its case-insensitive twin column holds it."""
VALUE_TYPE_LENGTH = 64
"""The longest ``type`` of a value of a multi-valued attribute (``emails``, ...)."""


def _type_ok(attr: Attribute, value: Any) -> bool:
    t = attr.type
    if t in ("string", "reference", "binary", "dateTime"):
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "decimal":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t == "complex":
        return isinstance(value, dict)
    return True


def _check_value(attr: Attribute, value: Any, where: str) -> Any:
    if value is None:
        return None
    if attr.type == "complex":
        if not isinstance(value, dict):
            raise InvalidValue(f"'{where}' must be an object.")
        return _canonical_complex(attr, value, where)
    if not _type_ok(attr, value):
        raise InvalidValue(f"'{where}' must be of type {attr.type}, not {_json_type(value)}.")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _once(seen: dict[str, str], name: str, key: str, where: str) -> None:
    """Note that ``key`` spells ``name``; refuse a second spelling of it."""
    first = seen.setdefault(name.lower(), key)
    if first != key:
        raise InvalidSyntax(
            f"'{where}' is given twice, as {first!r} and {key!r}; attribute names are "
            "case-insensitive (RFC 7643 §2.1), so send it once."
        )


def _canonical_complex(attr: Attribute, value: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for key, sub_value in value.items():
        sub = attr.sub(key)
        if sub is None:
            out[key] = sub_value
            continue
        _once(seen, sub.name, key, f"{where}.{sub.name}")
        if sub.mutability == "readOnly" or sub_value is None:
            continue
        checked = _check_value(sub, sub_value, f"{where}.{sub.name}")
        if (
            attr.multi_valued
            and sub.name == "type"
            and isinstance(checked, str)
            and len(checked) > VALUE_TYPE_LENGTH
        ):
            raise InvalidValue(
                f"'{where}.type' is {len(checked)} characters long; the limit is "
                f"{VALUE_TYPE_LENGTH}."
            )
        out[sub.name] = checked
    return out


def _canonical_attribute(attr: Attribute, value: Any) -> Any:
    if value is None:
        return None
    if not attr.multi_valued:
        if isinstance(value, list):
            raise InvalidValue(f"'{attr.name}' is single-valued; an array was sent.")
        return _check_value(attr, value, attr.name)
    if isinstance(value, dict) and attr.type == "complex":
        value = [value]
    if not isinstance(value, list):
        raise InvalidValue(f"'{attr.name}' is multi-valued and must be an array.")
    items = [_check_value(attr, item, f"{attr.name}[{i}]") for i, item in enumerate(value)]
    items = [item for item in items if item is not None]
    if attr.type == "complex" and sum(1 for i in items if i.get("primary") is True) > 1:
        raise InvalidValue(f"At most one value of '{attr.name}' may have primary set to true.")
    return items


def _canonical_schema_part(schema: Schema, data: dict[str, Any], *, top: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for key, value in data.items():
        if key.lower() in DROPPED_ON_INPUT:
            continue
        attr = schema.attribute(key)
        if attr is None:
            out[key] = value
            continue
        _once(seen, attr.name, key, attr.name)
        if attr.mutability == "readOnly":
            continue
        canonical = _canonical_attribute(attr, value)
        if canonical is not None:
            out[attr.name] = canonical
    return out


def canonicalize(rt: ResourceType, body: Any) -> dict[str, Any]:
    """Return the canonical form of a resource body sent by a client."""
    if not isinstance(body, dict):
        raise InvalidSyntax("The request body must be a JSON object.")
    extension_by_urn = {schema.id.lower(): schema for schema, _ in rt.extensions}
    core: dict[str, Any] = {}
    extensions: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    for key, value in body.items():
        lower = key.lower()
        if lower in _SKIP_TOP:
            continue
        if lower in extension_by_urn:
            ext = extension_by_urn[lower]
            _once(seen, ext.id, key, ext.id)
            if value is None:
                continue
            if not isinstance(value, dict):
                raise InvalidValue(f"'{ext.id}' must be an object.")
            part = _canonical_schema_part(ext, value, top=False)
            if part:
                extensions[ext.id] = part
            continue
        if lower == "externalid":
            _once(seen, "externalId", key, "externalId")
            if value is not None and not isinstance(value, str):
                raise InvalidValue("'externalId' must be a string.")
            if value is not None:
                core["externalId"] = value
            continue
        core[key] = value
    out = _canonical_schema_part(rt.schema, core, top=True)
    _check_column_lengths(out)
    out.update(extensions)
    schemas = [rt.schema.id] + [urn for urn in extensions]
    schemas += [k for k in out if k.lower().startswith("urn:") and k not in schemas]
    return {"schemas": schemas, **out}


def _check_column_lengths(resource: dict[str, Any]) -> None:
    for name, limit in COLUMN_LENGTHS.items():
        value = resource.get(name)
        if not isinstance(value, str):
            continue
        length = max(len(value), len(value.casefold())) if name == "userName" else len(value)
        if length > limit:
            folded = " once case-folded" if len(value) <= limit else ""
            raise InvalidValue(
                f"'{name}' is {length} characters long{folded}; the limit is {limit}."
            )


def check_required(rt: ResourceType, resource: dict[str, Any]) -> None:
    """Raise ``invalidValue`` when a required attribute is missing or empty."""
    for attr in rt.schema.attributes:
        if attr.required and attr.mutability != "readOnly":
            value = resource.get(attr.name)
            if value is None or value == "" or value == []:
                raise InvalidValue(f"'{attr.name}' is required.")
    for schema, _required in rt.extensions:
        part = resource.get(schema.id)
        if not isinstance(part, dict):
            continue
        for attr in schema.attributes:
            if attr.required and part.get(attr.name) in (None, ""):
                raise InvalidValue(f"'{schema.id}:{attr.name}' is required.")
