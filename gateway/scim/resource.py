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

from collections.abc import Callable
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


def _given_twice(where: str, first: str, key: str) -> InvalidSyntax:
    return InvalidSyntax(
        f"'{where}' is given twice, as {first!r} and {key!r}; attribute names are "
        "case-insensitive (RFC 7643 §2.1), so send it once."
    )


def _once(seen: dict[str, str], name: str, key: str, where: str) -> None:
    """Note that ``key`` spells ``name``; refuse a second spelling of it."""
    first = seen.setdefault(name.lower(), key)
    if first != key:
        raise _given_twice(where, first, key)


def _spellings(
    data: dict[str, Any], stop: str, find: Callable[[str], Attribute | None]
) -> dict[str, str]:
    """Attribute name to key for the keys of ``data`` before ``stop`` that name an
    attribute (``find``): how a name was first spelled, to catch a second spelling."""
    spellings: dict[str, str] = {}
    for key in data:
        if key == stop:
            break
        attr = find(key)
        if attr is not None:
            spellings.setdefault(attr.name, key)
    return spellings


def _spelled(
    seen: dict[str, str] | None,
    data: dict[str, Any],
    key: str,
    name: str,
    find: Callable[[str], Attribute | None],
    where: str,
) -> dict[str, str]:
    """Note that ``key`` of ``data`` spells the attribute ``name`` (``where`` in an
    error), once the spellings are noted (``seen``), or when ``key`` is the first key
    that is not canonical (the earlier ones are then recovered); ``invalidSyntax`` for
    a second spelling of one name."""
    if seen is None:
        seen = _spellings(data, key, find)
    first = seen.setdefault(name, key)
    if first != key:
        raise _given_twice(where, first, key)
    return seen


def _at(where: str, index: int | None) -> str:
    return where if index is None else f"{where}[{index}]"


def _canonical_complex(
    attr: Attribute, value: dict[str, Any], where: str, index: int | None = None
) -> dict[str, Any]:
    """``value`` with canonical sub-attribute names. ``where`` (with ``index`` for a value
    of a multi-valued attribute) names it in error messages, which are only then built.

    Two keys can spell one sub-attribute only if one of them is not its canonical
    spelling, so spellings are noted only from the first such key on (:func:`_spellings`
    recovers the earlier ones)."""
    out: dict[str, Any] = {}
    seen: dict[str, str] | None = None
    for key, sub_value in value.items():
        sub = attr.sub(key)  # the spelling as sent first, lowercased only if that misses
        if sub is None:
            out[key] = sub_value
            continue
        name = sub.name
        if seen is not None or key != name:
            seen = _spelled(seen, value, key, name, attr.sub, f"{_at(where, index)}.{name}")
        if sub.mutability == "readOnly" or sub_value is None:
            continue
        if sub.type == "complex" or not _type_ok(sub, sub_value):
            sub_value = _check_value(sub, sub_value, f"{_at(where, index)}.{name}")
        if (
            name == "type"
            and attr.multi_valued
            and isinstance(sub_value, str)
            and len(sub_value) > VALUE_TYPE_LENGTH
        ):
            raise InvalidValue(
                f"'{_at(where, index)}.type' is {len(sub_value)} characters long; the limit "
                f"is {VALUE_TYPE_LENGTH}."
            )
        out[name] = sub_value
    return out


def _canonical_attribute(attr: Attribute, value: Any) -> Any:
    if value is None:
        return None
    if not attr.multi_valued:
        if isinstance(value, list):
            raise InvalidValue(f"'{attr.name}' is single-valued; an array was sent.")
        if attr.type != "complex" and _type_ok(attr, value):
            return value
        return _check_value(attr, value, attr.name)
    complex_ = attr.type == "complex"
    if complex_ and isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidValue(f"'{attr.name}' is multi-valued and must be an array.")
    items: list[Any] = []
    primaries = 0
    for index, item in enumerate(value):
        if item is None:
            continue
        if complex_:
            if not isinstance(item, dict):
                raise InvalidValue(f"'{attr.name}[{index}]' must be an object.")
            item = _canonical_complex(attr, item, attr.name, index)
            if item.get("primary") is True:
                primaries += 1
        elif not _type_ok(attr, item):
            _check_value(attr, item, f"{attr.name}[{index}]")  # raises
        items.append(item)
    if primaries > 1:
        raise InvalidValue(f"At most one value of '{attr.name}' may have primary set to true.")
    return items


def _canonical_schema_part(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    """The attributes of one schema with canonical names (see :func:`_canonical_complex`
    for when the keys seen are noted; a dropped key noted there is harmless, as no key
    that is kept spells the same name)."""
    out: dict[str, Any] = {}
    names = schema.attributes_by_name
    seen: dict[str, str] | None = None
    for key, value in data.items():
        lowered = key.lower()
        if lowered in DROPPED_ON_INPUT:
            continue
        attr = names.get(lowered)
        if attr is None:
            out[key] = value
            continue
        name = attr.name
        if seen is not None or key != name:
            seen = _spelled(seen, data, key, name, schema.attribute, name)
        if attr.mutability == "readOnly":
            continue
        canonical = _canonical_attribute(attr, value)
        if canonical is not None:
            out[name] = canonical
    return out


def canonicalize(rt: ResourceType, body: Any) -> dict[str, Any]:
    """Return the canonical form of a resource body sent by a client."""
    if not isinstance(body, dict):
        raise InvalidSyntax("The request body must be a JSON object.")
    extension_by_urn = rt.extensions_by_urn
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
            part = _canonical_schema_part(ext, value)
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
    out = _canonical_schema_part(rt.schema, core)
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
