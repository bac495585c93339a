"""Translate between canonical SCIM JSON and rows of the common model.

``user_to_rows`` splits a canonical User into column values, one row per element
of each multi-valued attribute, and ``extra``: whatever the gateway does not model,
kept as sent. ``user_from_rows`` is the inverse. The two are exact inverses for
every modelled attribute, which the round-trip tests pin.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..scim.schemas import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA

__all__ = [
    "USER_COLUMNS",
    "USER_MULTI_VALUED",
    "VALUE_COLUMNS",
    "fold",
    "group_from_row",
    "group_to_row",
    "user_document",
    "user_from_rows",
    "user_to_rows",
    "with_references",
]

ENT = ENTERPRISE_USER_SCHEMA

# (path, column). A path is (attribute,) or (attribute, sub) or (URN, attribute[, sub]).
USER_COLUMNS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("userName",), "user_name"),
    (("externalId",), "external_id"),
    (("displayName",), "display_name"),
    (("nickName",), "nick_name"),
    (("profileUrl",), "profile_url"),
    (("title",), "title"),
    (("userType",), "user_type"),
    (("preferredLanguage",), "preferred_language"),
    (("locale",), "locale"),
    (("timezone",), "timezone"),
    (("active",), "active"),
    (("name", "formatted"), "name_formatted"),
    (("name", "familyName"), "family_name"),
    (("name", "givenName"), "given_name"),
    (("name", "middleName"), "middle_name"),
    (("name", "honorificPrefix"), "honorific_prefix"),
    (("name", "honorificSuffix"), "honorific_suffix"),
    ((ENT, "employeeNumber"), "employee_number"),
    ((ENT, "costCenter"), "cost_center"),
    ((ENT, "organization"), "organization"),
    ((ENT, "division"), "division"),
    ((ENT, "department"), "department"),
    ((ENT, "manager", "value"), "manager_id"),
    ((ENT, "manager", "displayName"), "manager_display_name"),
)

USER_MULTI_VALUED = (
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "entitlements",
    "roles",
    "x509Certificates",
)

# sub-attribute -> column of scim_user_value
VALUE_COLUMNS: dict[str, str] = {
    "value": "value",
    "display": "display",
    "type": "type",
    "primary": "primary",
    "formatted": "formatted",
    "streetAddress": "street_address",
    "locality": "locality",
    "region": "region",
    "postalCode": "postal_code",
    "country": "country",
}
_VALUE_ATTRS = tuple(VALUE_COLUMNS.items())
_COMPLEX_TOPS = ("name",)


def fold(text: str | None) -> str | None:
    """The case-folded key used for case-insensitive matching and uniqueness."""
    return None if text is None else text.casefold()


def _column_groups(
    columns: Iterable[tuple[tuple[str, ...], str]],
) -> tuple[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], ...]:
    """USER_COLUMNS grouped by the object that holds them, in the same order: ((),
    top-level (attribute, column) pairs), (("name",), its pairs), ... So a User's
    columns are popped with one walk per object, not one per column."""
    groups: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for path, column in columns:
        groups.setdefault(path[:-1], []).append((path[-1], column))
    return tuple((parent, tuple(pairs)) for parent, pairs in groups.items())


_COLUMN_GROUPS = _column_groups(USER_COLUMNS)
_NOTHING: dict[str, Any] = {}
"""Where a User has no object (or not an object) at a parent path: popping from it
gives None and changes nothing."""


def _pop_columns(doc: dict[str, Any]) -> dict[str, Any]:
    """The modelled attributes' values, by column, popped from ``doc`` (None for any
    that is missing, or whose parent is missing or not an object)."""
    columns: dict[str, Any] = {}
    for parent, pairs in _COLUMN_GROUPS:
        node: Any = doc
        for part in parent:
            node = node.get(part)
            if not isinstance(node, dict):
                node = _NOTHING
                break
        for attr, column in pairs:
            columns[column] = node.pop(attr, None)
    return columns


def _pruned(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` without empty objects; nested objects of the input stay as they are."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            value = _pruned(value)
            if not value:
                continue
        out[key] = value
    return out


def user_to_rows(resource: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Split a canonical User into (columns incl. ``extra``, value rows)."""
    doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in resource.items()}
    if isinstance(doc.get(ENT), dict) and isinstance(doc[ENT].get("manager"), dict):
        doc[ENT]["manager"] = dict(doc[ENT]["manager"])
        doc[ENT]["manager"].pop("$ref", None)
    doc.pop("schemas", None)
    columns = _pop_columns(doc)
    columns["user_name_ci"] = fold(columns["user_name"])
    values: list[dict[str, Any]] = []
    for attr in USER_MULTI_VALUED:
        items = doc.pop(attr, None) or []
        for position, item in enumerate(items):
            values.append(_value_row(attr, position, item))
    columns["extra"] = _pruned(doc) or None
    return columns, values


def _value_row(attr: str, position: int, item: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"attr": attr, "position": position}
    rest = dict(item)
    for sub, column in _VALUE_ATTRS:
        row[column] = rest.pop(sub, None)
    if not isinstance(row["primary"], bool):
        row["primary"] = None
    value = row["value"]
    row["value_ci"] = value.casefold() if isinstance(value, str) else None
    if value is not None and not isinstance(value, str):
        rest["value"] = value  # keep non-string values losslessly
        row["value"] = None
    row["extra"] = rest or None
    return row


def _column_tree(columns: Iterable[tuple[tuple[str, ...], str]]) -> dict[str, Any]:
    """USER_COLUMNS as a nested {attribute: column or sub-tree} in the same order."""
    tree: dict[str, Any] = {}
    for path, column in columns:
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = column
    return tree


_USER_TREE = _column_tree(USER_COLUMNS)


def _compile(name: str, body: list[str], arg: str) -> Callable[[Any], Any]:
    namespace: dict[str, Any] = {}
    # The text is ours, built from the column tables above: nothing from a request.
    exec(f"def {name}({arg}):\n" + "\n".join(body), namespace)
    function: Callable[[Any], Any] = namespace[name]
    return function


def _tree_reader(index: Callable[[str], str]) -> Callable[[Any], tuple[dict[str, Any], Any]]:
    """A function of a row giving (the User's modelled attributes, its ``extra``).

    Written out from ``_USER_TREE``, one line per column, instead of walking the tree
    for every row: a page of 100 users read the tree 100 times. ``index`` says how a
    column is read (by name from a mapping, or by position from a tuple row)."""
    body: list[str] = ["    out = {}"]
    names = iter(range(len(USER_COLUMNS)))

    def emit(tree: dict[str, Any], target: str) -> None:
        for key, spec in tree.items():
            if isinstance(spec, str):
                body.append(f"    v = r[{index(spec)}]")
                body.append(f"    if v is not None: {target}[{key!r}] = v")
            else:
                node = f"n{next(names)}"
                body.append(f"    {node} = {{}}")
                emit(spec, node)
                body.append(f"    if {node}: {target}[{key!r}] = {node}")

    emit(_USER_TREE, "out")
    body.append(f"    return out, r[{index('extra')}]")
    return _compile("read_user", body, "r")


_read_mapping = _tree_reader(repr)


@functools.lru_cache(maxsize=64)
def _read_tuple(fields: tuple[str, ...]) -> Callable[[Any], tuple[dict[str, Any], Any]]:
    """The reader for tuple rows with these column names (a statement's rows)."""
    return _tree_reader(lambda column: str(fields.index(column)))


_last_tuple_reader: tuple[Any, Callable[[Any], tuple[dict[str, Any], Any]] | None] = (None, None)


def _reader_of(fields: tuple[str, ...]) -> Callable[[Any], tuple[dict[str, Any], Any]]:
    """``_read_tuple(fields)``, remembered for the last ``fields`` seen: the rows of a
    page share one tuple, and looking it up in the cache hashes its 35 names."""
    global _last_tuple_reader
    last, read = _last_tuple_reader
    if fields is last and read is not None:
        return read
    read = _read_tuple(fields)
    _last_tuple_reader = (fields, read)
    return read


def _element_reader() -> Callable[[Any], dict[str, Any]]:
    """A function of a value row giving its element of a multi-valued attribute."""
    body = ["    e = {}"]
    for sub, column in _VALUE_ATTRS:
        body.append(f"    v = item[{column!r}]")
        body.append(f"    if v is not None: e[{sub!r}] = v")
    body.append("    extra = item['extra']")
    body.append("    if extra: e.update(extra)")
    body.append("    return e")
    return _compile("read_element", body, "item")


_read_element = _element_reader()


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge(current, value)
        else:
            into[key] = value


def user_from_rows(
    row: Any,
    values: Iterable[Any],
    *,
    base_url: str,
) -> dict[str, Any]:
    """Rebuild the canonical User (without ``id``/``meta``/``groups``) from its row (a
    mapping by column name, or a statement's row with ``_fields``) and value rows."""
    return with_references(user_document(row, values), base_url)


def user_document(row: Any, values: Iterable[Any]) -> dict[str, Any]:
    """:func:`user_from_rows` without the references that name the server
    (``manager.$ref``): what the ``rendered`` column keeps of a user."""
    fields = getattr(row, "_fields", None)
    read = _read_mapping if fields is None else _reader_of(fields)
    doc, extra = read(row)
    for item in values:
        element = _read_element(item)
        found = doc.get(item["attr"])
        if found is None:
            doc[item["attr"]] = [element]
        else:
            found.append(element)
    if extra:
        _merge(doc, extra)
    schemas = [USER_SCHEMA]
    schemas += [k for k in doc if k.startswith("urn:")]
    return {"schemas": schemas, **doc}


def with_references(doc: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``doc`` (a :func:`user_document`) with ``manager.$ref`` under ``base_url``."""
    manager = doc.get(ENT, {}).get("manager")
    if isinstance(manager, dict) and manager.get("value"):
        manager["$ref"] = f"{base_url}/Users/{manager['value']}"
    return doc


def group_to_row(resource: Mapping[str, Any]) -> dict[str, Any]:
    """Columns of a canonical Group; ``members`` are handled as membership rows."""
    doc = dict(resource)
    doc.pop("schemas", None)
    doc.pop("members", None)
    display_name = doc.pop("displayName", None)
    return {
        "display_name": display_name,
        "display_name_ci": fold(display_name),
        "external_id": doc.pop("externalId", None),
        "extra": doc or None,
    }


def group_from_row(row: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"displayName": row["display_name"]}
    if row["external_id"] is not None:
        doc["externalId"] = row["external_id"]
    if row["extra"]:
        _merge(doc, row["extra"])
    schemas = [GROUP_SCHEMA] + [k for k in doc if k.startswith("urn:")]
    return {"schemas": schemas, **doc}
