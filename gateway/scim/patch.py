"""SCIM PATCH (RFC 7644 §3.5.2) on the JSON representation of a resource.

:func:`parse_patch_request` checks a ``PatchOp`` message and parses its operations,
:func:`apply_patch` applies them in order, all or nothing, to a copy of a stored
resource, and :func:`split_member_operations` takes the membership changes out of a
Group request so the store can apply them as row-level deltas instead of rewriting
the member list.

Attribute names in paths and values are case-insensitive; the result uses the
canonical spelling of :mod:`gateway.scim.schemas`. Attributes no schema defines are
kept as sent: unknown keys of a value without a path, and paths under a schema URN
the resource type does not know (a custom extension), which nest under that URN
like the Enterprise User extension does.

Where RFC 7644 leaves room, the engine takes the reading that is safe for clients
that retry requests or echo what they read:

* ``remove`` whose value filter matches nothing changes nothing and succeeds. Only
  ``replace`` (§3.5.2.3) and, here, ``add`` fail with ``noTarget`` in that case.
* ``remove`` of a multi-valued attribute with a ``value`` removes only the listed
  values (matched by their ``value`` sub-attribute); without one it removes all.
* readOnly attributes echoed in a value without a path (``id``, ``meta``,
  ``schemas``, ``groups``, member ``display``) are ignored, as for PUT (§3.5.1); a
  path naming one fails with ``mutability``.
* ``replace`` with ``null`` unassigns (RFC 7643 §2.5); ``add`` with ``null`` adds
  nothing.
* Removing or unassigning a required attribute, or changing an immutable one that
  has a value, fails with ``mutability`` (§3.5.2, §3.5.2.2).
* ``password`` is ignored: the gateway never stores one.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import (
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    PayloadTooLarge,
    ScimError,
)
from .filter import AttrPath, Node, PatchPath, check_storable, matches, parse_path
from .resource import DROPPED_ON_INPUT
from .schemas import GROUP, GROUP_SCHEMA, PATCH_OP, Attribute, ResourceType, Schema

__all__ = [
    "MemberChange",
    "PatchOperation",
    "apply_patch",
    "parse_patch_request",
    "split_member_operations",
]

_OPS = ("add", "replace", "remove")
_STRING_TYPES = frozenset({"string", "reference", "binary", "dateTime"})
# The last segment of a schema URN such as "urn:...:acme:2.0:User" split as a path
# ("urn:...:acme:2.0" + "User") is a version number.
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*")


# --- public types -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatchOperation:
    """One parsed PATCH operation."""

    op: str
    """``"add"``, ``"replace"`` or ``"remove"``, lowercased."""
    path: PatchPath | None
    value: Any
    """The ``value`` as sent; ``None`` when absent (only ``remove`` may omit it)."""
    raw_path: str | None
    """The ``path`` as sent."""


@dataclass(frozen=True, slots=True)
class MemberChange:
    """A change to the members of a Group, for the store to apply row by row.

    ``kind`` is ``"add"``, ``"remove"``, ``"replace"`` or ``"clear"``. ``values`` holds
    member objects (``{"value": id, "type"?, "display"?, "$ref"?}``) for ``add``,
    ``replace`` and a ``remove`` by value; ``filter`` the value filter of a ``remove``
    such as ``members[value eq "x"]``.
    """

    kind: str
    values: tuple[dict[str, Any], ...] = ()
    filter: Node | None = None


# --- utilities ------------------------------------------------------------------------


def _key_of(mapping: dict[str, Any], name: str) -> str | None:
    """The key of ``mapping`` equal to ``name`` ignoring case (exact spelling first)."""
    if name in mapping:
        return name
    lowered = name.lower()
    for key in mapping:
        if isinstance(key, str) and key.lower() == lowered:
            return key
    return None


def _get(mapping: dict[str, Any], name: str) -> tuple[bool, Any]:
    key = _key_of(mapping, name)
    return (False, None) if key is None else (True, mapping[key])


def _put(mapping: dict[str, Any], name: str, value: Any) -> None:
    """Set ``mapping[name]``, or delete it when ``value`` is ``None``.

    A key that matches ``name`` ignoring case is replaced in its position, so values
    keep the order they were stored in.
    """
    present = _key_of(mapping, name)
    if value is None:
        if present is not None:
            del mapping[present]
        return
    if present is None or present == name:
        mapping[name] = value
        return
    items = list(mapping.items())
    mapping.clear()
    for key, item in items:
        mapping[name if key == present else key] = value if key == present else item


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
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
    return type(value).__name__


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _prefix(exc: ScimError, index: int) -> None:
    exc.detail = f"Operation {index}: {exc.detail}"
    exc.args = (exc.detail,)


def _full_name(path: AttrPath) -> str:
    return path.attr if path.urn is None else f"{path.urn}:{path.attr}"


# --- parsing --------------------------------------------------------------------------


def parse_patch_request(body: Any, *, max_operations: int = 1000) -> list[PatchOperation]:
    """Check a PATCH request body (RFC 7644 §3.5.2) and parse its operations.

    Raises ``invalidSyntax`` for a body that is not a ``PatchOp`` message or an
    operation that is not an object with a known ``op``, ``413`` for more than
    ``max_operations`` operations, ``invalidPath`` for a malformed ``path``,
    ``noTarget`` for a ``remove`` without a path (§3.5.2.2) and ``invalidValue`` for
    an ``add`` or ``replace`` without a value.
    """
    if not isinstance(body, dict):
        raise InvalidSyntax("The body of a PATCH request must be a JSON object.")
    _, schemas = _get(body, "schemas")
    if not isinstance(schemas, list) or not any(
        isinstance(urn, str) and urn.lower() == PATCH_OP.lower() for urn in schemas
    ):
        raise InvalidSyntax(f"A PATCH request must have 'schemas' with '{PATCH_OP}'.")
    _, operations = _get(body, "Operations")
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntax("A PATCH request needs 'Operations', a non-empty array.")
    if len(operations) > max_operations:
        # 413 like a Bulk request over maxOperations (RFC 7644 §3.7.4): the request is
        # larger than the server accepts. ``tooMany`` (§3.12) is about a filter's results.
        raise PayloadTooLarge(
            f"The PATCH request has {len(operations)} operations; at most "
            f"{max_operations} are allowed. Split it into several PATCH requests."
        )
    parsed: list[PatchOperation] = []
    for index, raw in enumerate(operations, 1):
        try:
            parsed.append(_parse_operation(index, raw))
        except ScimError as exc:
            if not exc.detail.startswith(f"Operation {index}"):
                _prefix(exc, index)
            raise
    return parsed


def _parse_operation(index: int, raw: Any) -> PatchOperation:
    if not isinstance(raw, dict):
        raise InvalidSyntax(f"Operation {index} must be a JSON object, not {_json_type(raw)}.")
    _, name = _get(raw, "op")
    if not isinstance(name, str) or name.lower() not in _OPS:
        raise InvalidSyntax(
            f"Operation {index} has 'op' {_show(name)}; expected 'add', 'replace' or 'remove'."
        )
    op = name.lower()
    _, raw_path = _get(raw, "path")
    if raw_path is not None and not isinstance(raw_path, str):
        raise InvalidPath(f"Operation {index} has a 'path' that is not a string.")
    if raw_path is not None and not raw_path.strip():
        raw_path = None
    path = None if raw_path is None else parse_path(raw_path.strip())
    if path is not None and path.filter is not None:
        check_storable(path.filter, InvalidPath)
    has_value, value = _get(raw, "value")
    if op == "remove" and path is None:
        raise NoTarget(f"Operation {index} is a 'remove' without a 'path'.")
    if op != "remove" and not has_value:
        raise InvalidValue(f"Operation {index} has no value.")
    return PatchOperation(op, path, value, raw_path)


# --- value checks ---------------------------------------------------------------------


def _check_scalar(attr: Attribute, value: Any, where: str) -> Any:
    kind = attr.type
    if kind in _STRING_TYPES:
        ok = isinstance(value, str)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "decimal":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = not isinstance(value, dict | list)
    if not ok:
        raise InvalidValue(f"'{where}' must be a {kind}, not {_json_type(value)}.")
    return value


def _check_complex(attr: Attribute, value: Any, where: str, *, keep_nulls: bool) -> dict[str, Any]:
    """A complex value with canonical sub-attribute names, read-only ones dropped.

    With ``keep_nulls`` a ``null`` sub-attribute stays in the result (it unassigns the
    sub-attribute when merged); otherwise it is left out.
    """
    if not isinstance(value, dict):
        raise InvalidValue(f"'{where}' must be an object, not {_json_type(value)}.")
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = attr.sub(key)
        if sub is not None and sub.mutability == "readOnly":
            continue
        name = key if sub is None else sub.name
        if item is None:
            if keep_nulls:
                out[name] = None
            continue
        if sub is None:
            out[name] = _clone(item)
        else:
            out[name] = _check_value(sub, item, f"{where}.{sub.name}")
    return out


def _check_items(attr: Attribute, value: Any, where: str) -> list[Any]:
    """The values of a multi-valued attribute; a single value is wrapped in a list."""
    raw = value if isinstance(value, list) else [value]
    items: list[Any] = []
    for item in raw:
        if item is None:
            raise InvalidValue(f"'{where}' cannot hold null values.")
        if attr.is_complex:
            element = _check_complex(attr, item, where, keep_nulls=False)
            if element:
                items.append(element)
        else:
            items.append(_check_scalar(attr, item, where))
    if attr.is_complex and sum(1 for i in items if i.get("primary") is True) > 1:
        raise InvalidValue(
            f"At most one value of '{where}' may have 'primary' set to true (RFC 7643 §2.4)."
        )
    return items


def _check_value(attr: Attribute, value: Any, where: str) -> Any:
    """A non-null value for ``attr``, type-checked (complex values canonicalised)."""
    if attr.multi_valued:
        return _check_items(attr, value, where)
    if isinstance(value, list):
        raise InvalidValue(f"'{where}' is single-valued; an array was sent.")
    if attr.is_complex:
        return _check_complex(attr, value, where, keep_nulls=False)
    return _check_scalar(attr, value, where)


def _value_case_exact(attr: Attribute | None) -> bool:
    if attr is None:
        return True
    if attr.is_complex:
        sub = attr.sub("value")
        return sub is not None and sub.case_exact
    return attr.case_exact


def _equal(a: Any, b: Any, case_exact: bool) -> bool:
    if not case_exact and isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return bool(a == b)


def _same_value(attr: Attribute | None, a: Any, b: Any) -> bool:
    """Whether two values of a multi-valued attribute are the same value.

    Complex values with a ``value`` sub-attribute are the same when their ``value``
    matches and so does their ``type`` where both have one; other values when equal.
    """
    exact = _value_case_exact(attr)
    if isinstance(a, dict) and isinstance(b, dict):
        has_a, value_a = _get(a, "value")
        has_b, value_b = _get(b, "value")
        if not (has_a and has_b):
            return a == b
        if not _equal(value_a, value_b, exact):
            return False
        has_a, type_a = _get(a, "type")
        has_b, type_b = _get(b, "type")
        return not (has_a and has_b) or _equal(type_a, type_b, False)
    return _equal(a, b, exact)


# --- applying -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a path points: an attribute in the resource or in an extension object."""

    container: str | None
    """``None`` for the top level, else the key of the extension object."""
    attr: Attribute | None
    """``None`` for an attribute no schema defines."""
    name: str
    sub: Attribute | None = None
    sub_name: str | None = None
    filter: Node | None = None


class _Patcher:
    """Applies operations to one resource dict in place (the caller passes a copy)."""

    def __init__(self, resource: dict[str, Any], resource_type: ResourceType) -> None:
        self.resource = resource
        self.rt = resource_type
        self.touched: dict[int, Any] = {}
        self.primaries_unsettled = True
        """Whether a list of values may hold more than one primary value: the stored
        resource is taken as it comes, then only an operation that stores a list, or an
        object under a schema URN (which holds lists), can add one."""

    # entry points

    def apply(self, operation: PatchOperation) -> None:
        op = operation.op.lower() if isinstance(operation.op, str) else operation.op
        if op not in _OPS:
            raise InvalidSyntax(f"Unknown operation {_show(operation.op)}.")
        self.touched = {}
        if operation.path is None:
            if op == "remove":
                raise NoTarget("A 'remove' needs a 'path'.")
            self._apply_object(op, operation.value, None)
        else:
            raw = operation.raw_path or str(operation.path)
            self._apply_path(op, operation.path, operation.value, raw, lenient=False)
        if self.primaries_unsettled:
            self._normalise_primary()
            self.primaries_unsettled = False

    def finish(self) -> None:
        """Drop empty extension objects and make ``schemas`` list exactly the used ones."""
        resource = self.resource
        for key, value in list(resource.items()):
            if isinstance(value, dict) and not value and _is_urn(key):
                del resource[key]
        core = self.rt.schema.id
        used = {
            key.lower(): key
            for key, value in resource.items()
            if isinstance(value, dict) and _is_urn(key)
        }
        current = resource.get("schemas")
        schemas: list[str] = []
        seen: set[str] = set()
        for urn in current if isinstance(current, list) else []:
            if not isinstance(urn, str) or urn.lower() in seen:
                continue
            if urn.lower() == core.lower() or urn.lower() in used:
                schemas.append(urn)
                seen.add(urn.lower())
        if core.lower() not in seen:
            schemas.insert(0, core)
            seen.add(core.lower())
        schemas.extend(key for lowered, key in used.items() if lowered not in seen)
        resource["schemas"] = schemas

    # without a path, or a schema URN as the path

    def _apply_object(self, op: str, value: Any, schema: Schema | None) -> None:
        where = "value" if schema is None else schema.id
        if not isinstance(value, dict):
            raise InvalidValue(
                f"The '{where}' of an operation without a path must be an object of "
                f"attributes, not {_json_type(value)}."
            )
        for key, item in value.items():
            self._apply_key(op, key, item, schema)

    def _apply_key(self, op: str, key: str, value: Any, schema: Schema | None) -> None:
        """Apply one attribute of an object value (of the resource, or of ``schema``)."""
        if schema is None:
            if key.lower() == "schemas":
                return
            named = self.rt.schema_for(key)
            if named is not None:
                self._apply_schema(op, named, value, key)
                return
        in_core = schema is None or schema is self.rt.schema
        if in_core and key.lower() in DROPPED_ON_INPUT:
            return
        resolved = self.rt.resolve(None if schema is None else schema.id, key)
        if resolved is not None:
            attr = resolved.attribute
            if attr.mutability == "readOnly":
                return
            target = _Target(self._container_key(resolved.schema), attr, attr.name)
            self._set(op, target, value, attr.name)
            return
        if schema is None and _is_urn(key):
            try:
                path = parse_path(key)
            except ScimError:
                path = None
            if path is not None and path.attr.urn is not None:
                self._apply_path(op, path, value, key, lenient=True)
                return
        container = None if in_core or schema is None else schema.id
        self._set(op, _Target(container, None, key), value, key)

    def _apply_schema(self, op: str, schema: Schema, value: Any, where: str) -> None:
        """An operation whose target is a whole schema, e.g. the Enterprise extension."""
        is_core = schema is self.rt.schema
        if op == "remove" or (op == "replace" and value is None):
            if is_core:
                raise Mutability(f"'{where}' is the core schema; it cannot be removed.")
            for extension, required in self.rt.extensions:
                if extension is schema and required:
                    raise Mutability(f"The extension '{schema.id}' is required.")
            container = self._container(schema.id, create=False)
            for attr in schema.attributes:
                if attr.required and container is not None and _key_of(container, attr.name):
                    raise Mutability(f"'{schema.id}:{attr.name}' is required.")
            key = _key_of(self.resource, schema.id)
            if key is not None:
                del self.resource[key]
            return
        if value is None:
            return
        self._apply_object(op, value, schema)

    # with a path

    def _apply_path(self, op: str, path: PatchPath, value: Any, raw: str, *, lenient: bool) -> None:
        """Apply an operation with a path; ``lenient`` for a key of a pathless value."""
        ap = path.attr
        if ap.sub is not None and path.sub is not None:
            raise InvalidPath(f"'{raw}' has two sub-attributes.")
        sub_name = ap.sub if ap.sub is not None else path.sub
        if path.filter is None and sub_name is None:
            full = _full_name(ap)
            schema = self.rt.schema_for(full)
            if schema is not None:
                self._apply_schema(op, schema, value, raw)
                return
            custom = self._custom_extension_key(ap)
            if custom is not None:
                self._dispatch(op, _Target(None, None, custom), value, raw)
                return
        schema = None if ap.urn is None else self.rt.schema_for(ap.urn)
        if (ap.urn is None or schema is self.rt.schema) and ap.attr.lower() in DROPPED_ON_INPUT:
            return
        resolved = self.rt.resolve(ap.urn, ap.attr, sub_name)
        if resolved is None:
            if ap.urn is not None and schema is None:
                container = _key_of(self.resource, ap.urn) or ap.urn
                target = _Target(container, None, ap.attr, None, sub_name, path.filter)
            elif lenient and schema is not None and sub_name is None and path.filter is None:
                target = _Target(self._container_key(schema), None, ap.attr)
            else:
                raise InvalidPath(f"'{raw}' names no attribute of a {self.rt.name}.")
            self._dispatch(op, target, value, raw)
            return
        attr, sub = resolved.attribute, resolved.sub_attribute
        if path.filter is not None and not attr.multi_valued:
            raise InvalidPath(
                f"'{raw}': a value filter needs a multi-valued attribute; '{attr.name}' is not."
            )
        if attr.mutability == "readOnly" or (sub is not None and sub.mutability == "readOnly"):
            if lenient:
                return
            raise Mutability(f"'{raw}' is read-only.")
        target = _Target(
            self._container_key(resolved.schema),
            attr,
            attr.name,
            sub,
            None if sub is None else sub.name,
            path.filter,
        )
        self._dispatch(op, target, value, raw)

    def _custom_extension_key(self, ap: AttrPath) -> str | None:
        """The key of a custom extension object when ``ap`` is the URN of one."""
        full = _full_name(ap)
        if not _is_urn(full):
            return None
        key = _key_of(self.resource, full)
        if key is not None and isinstance(self.resource[key], dict):
            return key
        schemas = self.resource.get("schemas")
        for urn in schemas if isinstance(schemas, list) else []:
            if isinstance(urn, str) and urn.lower() == full.lower():
                return urn
        if ap.urn is None or ap.sub is not None:
            return None
        if _VERSION.fullmatch(ap.urn.rpartition(":")[2]) and self.rt.schema_for(ap.urn) is None:
            return full
        return None

    def _dispatch(self, op: str, target: _Target, value: Any, raw: str) -> None:
        if target.filter is not None:
            self._on_elements(op, target, value, raw)
            return
        if target.sub_name is not None:
            container = self._container(target.container, create=False)
            current = None if container is None else _get(container, target.name)[1]
            multi = target.attr.multi_valued if target.attr else isinstance(current, list)
            if multi:
                self._on_elements(op, target, value, raw)
            else:
                self._on_sub(op, target, value, raw)
            return
        if op == "remove":
            self._remove(target, value, raw)
        else:
            self._set(op, target, value, raw)

    # storage

    def _container_key(self, schema: Schema | None) -> str | None:
        if schema is None or schema is self.rt.schema:
            return None
        return schema.id

    def _container(self, key: str | None, *, create: bool) -> dict[str, Any] | None:
        if key is None:
            return self.resource
        actual = _key_of(self.resource, key)
        if actual is None:
            if not create:
                return None
            created: dict[str, Any] = {}
            self.resource[key] = created
            return created
        found = self.resource[actual]
        if not isinstance(found, dict):
            raise InvalidValue(f"'{actual}' does not hold an object of attributes.")
        if actual != key and self.rt.schema_for(key) is not None:
            self.resource[key] = self.resource.pop(actual)
        return found

    def _key(self, container: dict[str, Any], target: _Target) -> str:
        """The key of the target in ``container``, canonical names moved into place."""
        actual = _key_of(container, target.name)
        if actual is None:
            return target.name
        if target.attr is not None and actual != target.name:
            container[target.name] = container.pop(actual)
            return target.name
        return actual

    def _store(
        self, container: dict[str, Any], key: str, target: _Target, old: Any, new: Any, raw: str
    ) -> None:
        attr = target.attr
        if attr is not None and attr.mutability == "immutable" and not _empty(old) and new != old:
            raise Mutability(f"'{raw}' is immutable; it has a value that cannot change.")
        if _empty(new):
            if attr is not None and attr.required:
                raise Mutability(f"'{raw}' is required; it cannot be removed.")
            container.pop(key, None)
        else:
            container[key] = new
            if isinstance(new, list) or (
                container is self.resource and isinstance(new, dict) and _is_urn(key)
            ):
                self.primaries_unsettled = True
        if target.container is not None and not container:
            actual = _key_of(self.resource, target.container)
            if actual is not None and self.resource[actual] is container:
                del self.resource[actual]

    def _touch(self, element: Any) -> None:
        self.touched[id(element)] = element

    # whole attributes

    def _set(self, op: str, target: _Target, value: Any, raw: str) -> None:
        """``add`` or ``replace`` of a whole attribute."""
        if value is None:
            if op == "replace":
                self._remove(target, None, raw)
            return
        container = self._container(target.container, create=True)
        assert container is not None
        key = self._key(container, target)
        old = container.get(key)
        attr = target.attr
        new: Any
        if attr is None:
            new = self._merge_unmodelled(op, old, value)
        elif attr.multi_valued:
            items = _check_items(attr, value, raw)
            base = old if op == "add" and isinstance(old, list) else []
            new = self._merge_items(attr, base, items)
        elif attr.is_complex:
            given = _check_complex(attr, value, raw, keep_nulls=True)
            new = dict(old) if isinstance(old, dict) else {}
            for name, item in given.items():
                if item is None:
                    self._check_sub_removable(attr.sub(name), f"{raw}.{name}")
                _put(new, name, item)
            for sub in attr.sub_attributes:
                self._check_sub_change(sub, old, new, f"{raw}.{sub.name}")
        else:
            new = _check_scalar(attr, value, raw)
        self._store(container, key, target, old, new, raw)

    def _merge_unmodelled(self, op: str, old: Any, value: Any) -> Any:
        value = _clone(value)
        if isinstance(old, dict) and isinstance(value, dict):
            merged = dict(old)
            for name, item in value.items():
                _put(merged, _key_of(merged, name) or name, item)
            return merged
        if op == "add" and isinstance(old, list):
            result = list(old)
            for item in value if isinstance(value, list) else [value]:
                if item not in result:
                    result.append(item)
                    self._touch(item)
            return result
        return value

    def _merge_items(self, attr: Attribute, base: list[Any], items: list[Any]) -> list[Any]:
        """``base`` with ``items`` added; a value already there is updated, not repeated."""
        result = [dict(e) if isinstance(e, dict) else e for e in base]
        for item in items:
            index = next((i for i, e in enumerate(result) if _same_value(attr, e, item)), None)
            if index is None:
                result.append(item)
                self._touch(item)
                continue
            existing = result[index]
            if not (isinstance(existing, dict) and isinstance(item, dict)):
                continue
            merged = dict(existing)
            for name, sub_value in item.items():
                sub = attr.sub(name)
                # The matched value keeps its identity ("value", "type") and immutable parts.
                kept = name.lower() in ("value", "type") or (
                    sub is not None and sub.mutability == "immutable"
                )
                if kept and _key_of(merged, name) is not None:
                    continue
                _put(merged, name, sub_value)
            if merged != existing:
                result[index] = merged
                self._touch(merged)
        return result

    def _remove(self, target: _Target, value: Any, raw: str) -> None:
        """``remove`` of a whole attribute, or of the listed values of a multi-valued one."""
        attr = target.attr
        container = self._container(target.container, create=False)
        old = None
        key = target.name
        if container is not None:
            key = self._key(container, target)
            old = container.get(key)
        multi = attr.multi_valued if attr is not None else isinstance(old, list)
        if value is not None and multi:
            if container is None or not isinstance(old, list):
                return
            listed = value if isinstance(value, list) else [value]
            new = [e for e in old if not any(_same_value(attr, e, v) for v in listed)]
            self._store(container, key, target, old, new, raw)
            return
        if attr is not None and attr.required:
            raise Mutability(f"'{raw}' is required; it cannot be removed.")
        if container is None or key not in container:
            return
        self._store(container, key, target, old, None, raw)

    # sub-attributes and values of multi-valued attributes

    def _check_sub_removable(self, sub: Attribute | None, raw: str) -> None:
        if sub is not None and sub.required:
            raise Mutability(f"'{raw}' is required; it cannot be removed.")

    def _check_sub_change(self, sub: Attribute | None, old: Any, new: Any, raw: str) -> None:
        if sub is None or sub.mutability != "immutable" or not isinstance(old, dict):
            return
        had, before = _get(old, sub.name)
        has, after = _get(new, sub.name) if isinstance(new, dict) else (False, None)
        if had and before is not None and (not has or after != before):
            raise Mutability(f"'{raw}' is immutable; it has a value that cannot change.")

    def _on_sub(self, op: str, target: _Target, value: Any, raw: str) -> None:
        """A sub-attribute of a single-valued complex attribute, e.g. ``name.givenName``."""
        assert target.sub_name is not None
        container = self._container(target.container, create=op != "remove")
        if container is None:
            return
        key = self._key(container, target)
        old = container.get(key)
        if old is not None and not isinstance(old, dict):
            raise InvalidPath(f"'{raw}': '{key}' has no sub-attributes.")
        new = dict(old) if old else {}
        sub = target.sub
        present = _key_of(new, target.sub_name)
        name = sub.name if sub is not None else (present or target.sub_name)
        if op == "remove" or value is None:
            if op == "add":
                return
            self._check_sub_removable(sub, raw)
            _put(new, name, None)
        else:
            checked = _clone(value) if sub is None else _check_value(sub, value, raw)
            _put(new, name, checked)
        self._check_sub_change(sub, old, new, raw)
        self._store(container, key, target, old, new, raw)

    def _matches(self, target: _Target, element: Any) -> bool:
        assert target.filter is not None
        attr = target.attr
        item = element if isinstance(element, dict) else {"value": element}

        def case_exact(path: AttrPath) -> bool:
            if attr is None:
                return False
            if not attr.is_complex:
                return attr.case_exact
            sub = attr.sub(path.attr)
            return sub is not None and sub.case_exact

        return matches(target.filter, item, case_exact=case_exact)

    def _on_elements(self, op: str, target: _Target, value: Any, raw: str) -> None:
        """Values of a multi-valued attribute picked by a filter (all without one)."""
        attr = target.attr
        container = self._container(target.container, create=False)
        old: Any = None
        key = target.name
        if container is not None:
            key = self._key(container, target)
            old = container.get(key)
        if old is not None and not isinstance(old, list):
            raise InvalidPath(f"'{raw}': '{key}' is not multi-valued.")
        elements = old or []
        if target.filter is None:
            selected = set(range(len(elements)))
        else:
            selected = {i for i, e in enumerate(elements) if self._matches(target, e)}
        if not selected or container is None:
            if op == "remove":
                return
            raise NoTarget(f"'{raw}' matches no value.")
        new = [dict(e) if isinstance(e, dict) else e for e in elements]
        if target.sub_name is not None:
            self._on_selected_subs(op, target, new, selected, value, raw)
        elif op == "remove":
            new = [e for i, e in enumerate(new) if i not in selected]
        else:
            self._on_selected_values(op, target, new, selected, value, raw)
        if attr is None or attr.is_complex:
            new = [e for e in new if not (isinstance(e, dict) and not e)]
        self._store(container, key, target, old, new, raw)

    def _on_selected_subs(
        self,
        op: str,
        target: _Target,
        new: list[Any],
        selected: set[int],
        value: Any,
        raw: str,
    ) -> None:
        assert target.sub_name is not None
        sub = target.sub
        checked: Any = None
        if op != "remove" and value is not None:
            checked = value if sub is None else _check_value(sub, value, raw)
        if op == "remove" or value is None:
            if op == "add":
                return
            self._check_sub_removable(sub, raw)
        for i in sorted(selected):
            element = new[i]
            if not isinstance(element, dict):
                raise InvalidPath(f"'{raw}': the values are not complex.")
            before = dict(element)
            present = _key_of(element, target.sub_name)
            name = sub.name if sub is not None else (present or target.sub_name)
            _put(element, name, _clone(checked))
            self._check_sub_change(sub, before, element, raw)
            self._touch(element)

    def _on_selected_values(
        self,
        op: str,
        target: _Target,
        new: list[Any],
        selected: set[int],
        value: Any,
        raw: str,
    ) -> None:
        attr = target.attr
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if attr is not None and not attr.is_complex:
            if value is None:
                raise InvalidValue(f"'{raw}' cannot hold null values.")
            scalar = _check_scalar(attr, value, raw)
            for i in selected:
                new[i] = scalar
            return
        if value is None:
            if op == "replace":
                for i in selected:
                    new[i] = {}
            return
        if attr is not None:
            given = _check_complex(attr, value, raw, keep_nulls=op == "add")
        elif isinstance(value, dict):
            given = _clone(value)
        else:
            raise InvalidValue(f"'{raw}' must be an object, not {_json_type(value)}.")
        for i in sorted(selected):
            before = new[i]
            if op == "replace" or not isinstance(before, dict):
                element = {k: _clone(v) for k, v in given.items() if v is not None}
            else:
                element = dict(before)
                for name, item in given.items():
                    _put(element, name, _clone(item))
            if attr is not None:
                for sub in attr.sub_attributes:
                    self._check_sub_change(sub, before, element, f"{raw}.{sub.name}")
            new[i] = element
            self._touch(element)

    # primary (RFC 7643 §2.4, RFC 7644 §3.5.2)

    def _normalise_primary(self) -> None:
        """At most one value of each multi-valued attribute is primary: the newest."""
        containers = [self.resource] + [
            value
            for key, value in self.resource.items()
            if isinstance(value, dict) and _is_urn(key)
        ]
        for container in containers:
            for value in container.values():
                if not isinstance(value, list):
                    continue
                primaries = [e for e in value if isinstance(e, dict) and e.get("primary") is True]
                if len(primaries) < 2:
                    continue
                keep = next((e for e in reversed(primaries) if id(e) in self.touched), primaries[0])
                for element in primaries:
                    if element is not keep:
                        element["primary"] = False


def _is_urn(key: Any) -> bool:
    return isinstance(key, str) and key.lower().startswith("urn:")


_IMMUTABLE = (str, int, float, bool, type(None))


def _clone(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars), several times faster than
    :func:`copy.deepcopy`, which a PATCH of a user once spent a tenth of its time in."""
    kind = type(value)
    if kind is dict:
        return {k: _clone(v) for k, v in value.items()}
    if kind is list:
        return [_clone(v) for v in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


def apply_patch(
    resource: dict[str, Any], ops: Sequence[PatchOperation], resource_type: ResourceType
) -> dict[str, Any]:
    """Apply ``ops`` in order to a copy of ``resource`` and return the copy.

    The request is atomic (RFC 7644 §3.5.2): when an operation fails, its
    :class:`~gateway.scim.errors.ScimError` propagates, its detail prefixed with the
    operation's number, and ``resource`` is left as it was.
    """
    result: dict[str, Any] = _clone(resource)
    patcher = _Patcher(result, resource_type)
    for index, operation in enumerate(ops, 1):
        try:
            patcher.apply(operation)
        except ScimError as exc:
            _prefix(exc, index)
            raise
    patcher.finish()
    return result


# --- Group membership -----------------------------------------------------------------

_MEMBERS = GROUP.schema.attribute("members")
assert _MEMBERS is not None


def _is_members_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in ("members", f"{GROUP_SCHEMA.lower()}:members")


def _is_members(path: AttrPath) -> bool:
    return path.attr.lower() == "members" and (
        path.urn is None or path.urn.lower() == GROUP_SCHEMA.lower()
    )


def _member_values(value: Any, where: str) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    assert _MEMBERS is not None
    members: list[dict[str, Any]] = []
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, dict):
            raise InvalidValue(
                f"'{where}' must hold member objects with a 'value', not {_json_type(item)}."
            )
        member: dict[str, Any] = {}
        for key, sub_value in item.items():
            sub = _MEMBERS.sub(key)
            if sub_value is None:
                continue
            if sub is None:
                member[key] = sub_value
            else:
                member[sub.name] = _check_scalar(sub, sub_value, f"{where}.{sub.name}")
        if not member.get("value"):
            raise InvalidValue(f"Each member in '{where}' needs a 'value', the member's id.")
        members.append(member)
    return tuple(members)


def _member_change(op: str, value: Any, where: str) -> MemberChange | None:
    if op == "remove" and value is None:
        return MemberChange("clear")
    values = _member_values(value, where)
    if op == "replace":
        return MemberChange("replace", values) if values else MemberChange("clear")
    return MemberChange(op, values) if values else None


def split_member_operations(
    ops: Sequence[PatchOperation],
) -> tuple[list[PatchOperation], list[MemberChange]]:
    """Split a Group PATCH into the operations on other attributes and member changes.

    Every operation on ``members`` becomes a :class:`MemberChange`, in order; a value
    without a path that has a ``members`` key is split into the member change and an
    operation on the rest. Sub-attributes of members cannot be patched: ``value``,
    ``$ref`` and ``type`` are immutable and ``display`` is read-only (``mutability``).
    """
    rest: list[PatchOperation] = []
    changes: list[MemberChange] = []
    for index, operation in enumerate(ops, 1):
        try:
            _split(operation, rest, changes)
        except ScimError as exc:
            _prefix(exc, index)
            raise
    return rest, changes


def _split(
    operation: PatchOperation, rest: list[PatchOperation], changes: list[MemberChange]
) -> None:
    path = operation.path
    op = operation.op.lower()
    whole_schema = (
        path is not None
        and path.filter is None
        and path.sub is None
        and path.attr.sub is None
        and _full_name(path.attr).lower() == GROUP_SCHEMA.lower()
    )
    if path is None or whole_schema:
        if op == "remove" or not isinstance(operation.value, dict):
            rest.append(operation)
            return
        others: dict[str, Any] = {}
        found = False
        for key, item in operation.value.items():
            if _is_members_key(key):
                found = True
                change = _member_change(op, item, "members")
                if change is not None:
                    changes.append(change)
            elif key.lower() == GROUP_SCHEMA.lower() and isinstance(item, dict):
                inner: dict[str, Any] = {}
                for inner_key, inner_item in item.items():
                    if inner_key.lower() == "members":
                        found = True
                        change = _member_change(op, inner_item, "members")
                        if change is not None:
                            changes.append(change)
                    else:
                        inner[inner_key] = inner_item
                if inner:
                    others[key] = inner
            else:
                others[key] = item
        if not found:
            rest.append(operation)
        elif others:
            rest.append(PatchOperation(op, path, others, operation.raw_path))
        return
    if not _is_members(path.attr):
        rest.append(operation)
        return
    raw = operation.raw_path or str(path)
    sub_name = path.attr.sub if path.attr.sub is not None else path.sub
    if sub_name is not None:
        assert _MEMBERS is not None
        sub = _MEMBERS.sub(sub_name)
        if sub is None:
            raise InvalidPath(f"'{raw}': members have no sub-attribute '{sub_name}'.")
        if sub.mutability == "readOnly":
            raise Mutability(f"'{raw}' is read-only.")
        raise Mutability(f"'{raw}' is immutable: a member is added or removed, not changed.")
    if path.filter is not None:
        if op != "remove":
            raise Mutability(
                f"'{raw}': a member is added or removed, not changed; its 'value', '$ref' "
                "and 'type' are immutable and 'display' is read-only."
            )
        changes.append(MemberChange("remove", filter=path.filter))
        return
    change = _member_change(op, operation.value, raw)
    if change is not None:
        changes.append(change)
