"""``entra`` (also ``azure-ad``): Microsoft Entra ID's provisioning service.

Entra's deviations from RFC 7644 are absorbed here, each next to the Microsoft
document that shows it. See docs/idp/entra.md. The documents cited:

* [KNOWN] "Known issues and resolutions with SCIM 2.0 protocol compliance of the
  Microsoft Entra user provisioning service",
  https://learn.microsoft.com/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
* [TUTORIAL] "Tutorial: Develop and plan provisioning for a SCIM endpoint in
  Microsoft Entra ID",
  https://learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
* [HOW] "How Application Provisioning works in Microsoft Entra ID",
  https://learn.microsoft.com/entra/identity/app-provisioning/how-provisioning-works

What needs no code here, because the core already does it for every client: op
names in any case ("Add", "Replace", "Remove"; [TUTORIAL] "Don't require a
case-sensitive match on structural elements"), removing only the members listed
in a ``remove`` value ([KNOWN], without the ``aadOptscim062020`` flag), ignoring a
``"$ref": null`` in a member ([TUTORIAL] "Update Group [Add Members]"), the client
``meta`` on a create, ``excludedAttributes=members`` ([TUTORIAL] "Get Group"),
``204`` for a Group PATCH ([TUTORIAL] "Update Group"), a disabled user still
returned with its group memberships ([TUTORIAL] "Soft-deleting a user", [HOW]
"doesn't automatically restore the dynamic membership group"), and
``manager`` rendered as an object (checked again in :meth:`EntraAdapter.render`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from plugins import Adapter, AdapterRegistry, Inbound, Outbound, hookimpl
from plugins.adapter import ENTERPRISE_USER

__all__ = ["EntraAdapter"]

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
_CORE = frozenset({CORE_USER.lower(), CORE_GROUP.lower()})
_ENTERPRISE = ENTERPRISE_USER.lower()

# [TUTORIAL] "Create Group": Entra lists Microsoft's own schema next to the core one,
# "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group".
_MICROSOFT_SCHEMA = "http://schemas.microsoft.com/2006/11/resourcemanagement/adscim/"

# Top-level attributes a client may only echo (RFC 7644 §3.5.1). A dotted key under
# one of them in a pathless value is ignored, as the core ignores the attribute itself.
_READ_ONLY_HEADS = frozenset({"id", "meta", "groups", "schemas"})

_COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})

# A PATCH path: [urn ":"] attr ["[" filter "]"] ["." sub].
_PATH = re.compile(
    r"(?:(?P<urn>urn:[^\[\]]+):)?(?P<attr>[A-Za-z$][\w$-]*)"
    r"(?:\[(?P<filter>[^\]]*)\])?(?:\.(?P<sub>[A-Za-z$][\w$-]*))?",
    re.IGNORECASE,
)


class _Parts(NamedTuple):
    """A PATCH path's parts, as :data:`_PATH` reads them."""

    urn: str | None
    attr: str
    filter: str | None
    sub: str | None


@functools.lru_cache(maxsize=1024)
def _path_parts(path: str) -> _Parts | None:
    """``path``'s parts, or None when it is not a path :data:`_PATH` reads. Cached: an
    IdP sends the same few paths again and again, and each operation asks up to three
    times (a five-operation PATCH matched the pattern ten times)."""
    match = _PATH.fullmatch(path.strip())
    if match is None:
        return None
    return _Parts(
        match.group("urn"), match.group("attr"), match.group("filter"), match.group("sub")
    )


_TYPE_FILTER = re.compile(r'\s*type\s+eq\s+"((?:[^"\\]|\\.)*)"\s*', re.IGNORECASE)

# Filter text as tokens: JSON strings, whitespace, brackets, bare words, a lone quote.
_FILTER_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\s+|[()\[\]]|[^\s()\[\]"]+|"', re.DOTALL)
_SUB_TOKEN = re.compile(r"\.([A-Za-z$][\w$-]*)")
_ATTR_TOKEN = re.compile(r"[A-Za-z$.][\w$.:/-]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


# --- small helpers ----------------------------------------------------------------------


def _key(mapping: Mapping[str, Any], name: str) -> str | None:
    """The key of ``mapping`` equal to ``name`` ignoring case (``name`` itself first)."""
    if name in mapping:
        return name
    lowered = name.lower()
    return next((k for k in mapping if isinstance(k, str) and k.lower() == lowered), None)


def _get(mapping: Mapping[str, Any], name: str) -> Any:
    key = _key(mapping, name)
    return None if key is None else mapping[key]


def _as_bool(value: Any) -> Any:
    """``"True"``/``"False"`` in any case as a JSON boolean; anything else unchanged.

    [KNOWN] "Requests made to disable users", without the aadOptscim062020 flag:
    ``{"op": "Replace", "path": "active", "value": "False"}``. Entra also creates
    users with ``"active": "True"`` (AzureAD/SCIMReferenceCode#21).
    """
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _primaries(value: Any) -> Any:
    """The values of a multi-valued attribute with a string ``primary`` made boolean."""
    if isinstance(value, dict):
        return {k: _as_bool(v) if k.lower() == "primary" else v for k, v in value.items()}
    if isinstance(value, list):
        return [_primaries(item) if isinstance(item, dict) else item for item in value]
    return value


def _manager(value: Any) -> Any:
    """``manager`` as the complex value the Enterprise User schema defines.

    Entra sends the manager's id as a bare string, in a PATCH
    (``{"op": "add", "path": "urn:…:enterprise:2.0:User:manager", "value": "2c2f…"}``,
    Captain-P-Goldfish/SCIM-SDK#686) and in a created user
    (``"manager": "myuser"``, apache/directory-scimple#1242); Microsoft acknowledges
    it on Microsoft Q&A (learn.microsoft.com/answers/questions/188003) and the
    schema example of [TUTORIAL] shows ``"manager": "123456"``. [TUTORIAL]
    "Example 5" sends a list instead,
    ``[{"$ref": "http://.../scim/Users/00aa…", "value": "00aa…"}]``. All become
    ``{"value": id}``; the gateway, not the client, says where the manager lives.
    """
    if isinstance(value, str):
        return {"value": value} if value.strip() else None
    if isinstance(value, list):
        first = next((item for item in value if item is not None), None)
        if isinstance(first, dict):
            found = _get(first, "value")
            return {"value": found} if isinstance(found, str) else first
        return _manager(first)
    return value


def _attributes(doc: dict[str, Any], resource_type: str) -> dict[str, Any]:
    """A resource (or a pathless PATCH value) with Entra's value forms made standard."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        lowered = key.lower() if isinstance(key, str) else ""
        if lowered == "active":
            out[key] = _as_bool(value)
        elif lowered in _CORE and isinstance(value, dict):
            out[key] = _attributes(value, resource_type)
        elif lowered == _ENTERPRISE and isinstance(value, dict):
            out[key] = {k: _manager(v) if k.lower() == "manager" else v for k, v in value.items()}
        elif lowered == f"{_ENTERPRISE}:manager":
            out[key] = _manager(value)
        elif isinstance(value, list):
            out[key] = _primaries(value)
        else:
            out[key] = value
    return out


# --- PATCH ------------------------------------------------------------------------------


def _is_dotted(key: Any) -> bool:
    """A key such as ``name.givenName``: an attribute path, not an attribute name.

    Keys qualified by a schema URN are left to the core, which already reads them
    as paths in a value without a path.
    """
    return isinstance(key, str) and not key.lower().startswith("urn:") and "." in key


def _expand_dotted(op: dict[str, Any]) -> list[dict[str, Any]]:
    """One operation per dotted key of a pathless ``add``/``replace``.

    [KNOWN] "Requests to replace multiple attributes", with the aadOptscim062020 flag:
    ``{"op": "replace", "value": {"displayName": "Bjfe", "name.givenName": "Kkom",
    "name.familyName": "Unua", "urn:…:enterprise:2.0:User:employeeNumber": "Aklq"}}``.
    Other keys stay in pathless operations, in their order.
    """
    name, path, value = _get(op, "op"), _get(op, "path"), _get(op, "value")
    if (
        not isinstance(name, str)
        or name.lower() not in ("add", "replace")
        or (isinstance(path, str) and path.strip())
        or not isinstance(value, dict)
        or not any(_is_dotted(k) for k in value)
    ):
        return [op]
    ops: list[dict[str, Any]] = []
    plain: dict[str, Any] = {}
    for key, item in value.items():
        if not _is_dotted(key):
            plain[key] = item
            continue
        if plain:
            ops.append({"op": name, "value": plain})
            plain = {}
        head = re.split(r"[.\[]", key, maxsplit=1)[0].lower()
        if head not in _READ_ONLY_HEADS:
            ops.append({"op": name, "path": key, "value": item})
    if plain or not ops:
        ops.append({"op": name, "value": plain})
    return ops


class _Types:
    """Which ``type`` values each multi-valued attribute holds, as a PATCH goes on.

    Seeded from the resource as it stands; updated by the operations the adapter
    reads, so that a later operation on ``emails[type eq "work"]`` sees the work
    email an earlier one created or removed.
    """

    def __init__(self, current: Mapping[str, Any]) -> None:
        self.current = current
        self.known: dict[tuple[str, str], set[str]] = {}

    def of(self, urn: str | None, attr: str) -> set[str]:
        where = (urn or "").lower(), attr.lower()
        if where not in self.known:
            container: Any = self.current
            if urn is not None and urn.lower() not in _CORE:
                container = _get(self.current, urn)
            values = _get(container, attr) if isinstance(container, Mapping) else None
            found: set[str] = set()
            for element in values if isinstance(values, list) else []:
                kind = _get(element, "type") if isinstance(element, Mapping) else None
                if isinstance(kind, str):
                    found.add(kind.casefold())
            self.known[where] = found
        return self.known[where]


def _type_of(filter_text: str | None) -> str | None:
    """``x`` for the value filter ``type eq "x"``; ``None`` for any other filter."""
    match = _TYPE_FILTER.fullmatch(filter_text or "")
    if match is None:
        return None
    decoded: str = json.loads(f'"{match.group(1)}"')
    return decoded


def _create_missing(op: dict[str, Any], types: _Types) -> dict[str, Any]:
    """``emails[type eq "work"].value`` with no work email yet: add the work email.

    [TUTORIAL] "Update User [Multi-valued properties]" sends
    ``{"op": "Replace", "path": "emails[type eq \\"work\\"].value", "value": "…"}``
    and expects the value set; RFC 7644 §3.5.2.3 would answer ``noTarget`` when
    the user has no work email. The same holds for ``phoneNumbers``, ``addresses``
    and any multi-valued attribute Entra maps as ``attr[type eq "x"].sub``
    ([TUTORIAL] "The following table lists an example of user attributes").
    """
    name, path, value = _get(op, "op"), _get(op, "path"), _get(op, "value")
    if not isinstance(name, str) or not isinstance(path, str):
        return op
    parts = _path_parts(path)
    if parts is None or parts.filter is None:
        return op
    urn, attr, sub = parts.urn, parts.attr, parts.sub
    kind = _type_of(parts.filter)
    if kind is None:
        return op
    present = types.of(urn, attr)
    if name.lower() == "remove":
        if sub is None:
            present.discard(kind.casefold())
        return op
    if name.lower() not in ("add", "replace") or sub is None or sub.lower() == "type":
        return op
    if kind.casefold() in present:
        return op
    if value is None or value == "":
        # Nothing to clear: the value the operation would unassign does not exist.
        return {"op": "remove", "path": path}
    present.add(kind.casefold())
    target = attr if urn is None else f"{urn}:{attr}"
    return {"op": "add", "path": target, "value": [{"type": kind, sub: value}]}


def _track_whole_removal(op: dict[str, Any], types: _Types) -> None:
    """A ``remove`` of a whole multi-valued attribute leaves no ``type`` behind."""
    name, path = _get(op, "op"), _get(op, "path")
    if not (isinstance(name, str) and name.lower() == "remove" and isinstance(path, str)):
        return
    parts = _path_parts(path)
    if parts is None or parts.filter is not None or parts.sub is not None:
        return
    if _get(op, "value") is None:
        types.of(parts.urn, parts.attr).clear()


def _standard_values(op: dict[str, Any], resource_type: str) -> dict[str, Any]:
    """Booleans sent as strings, and ``manager`` as a string or under a bare path."""
    path, value = _get(op, "path"), _get(op, "value")
    out = {k: v for k, v in op.items() if k.lower() not in ("path", "value")}
    if not isinstance(path, str) or not path.strip():
        if isinstance(value, dict):
            value = _attributes(value, resource_type)
    else:
        parts = _path_parts(path)
        if parts is not None:
            urn, attr, sub = parts.urn, parts.attr, parts.sub
            where = None if urn is None else urn.lower()
            plain = parts.filter is None and sub is None
            is_active = (where is None or where in _CORE) and plain and attr.lower() == "active"
            if is_active or (sub is not None and sub.lower() == "primary"):
                value = _as_bool(value)
            elif sub is None and isinstance(value, list | dict) and attr.lower() != "manager":
                value = _primaries(value)
            is_manager = attr.lower() == "manager" and parts.filter is None
            if resource_type == "User" and is_manager and where in (None, _ENTERPRISE):
                # [TUTORIAL] "Example 5" patches the path "manager" (no schema URN).
                path = f"{ENTERPRISE_USER}:manager" + ("" if sub is None else f".{sub}")
                if sub is None:
                    value = _manager(value)
            elif path.strip().lower() in _CORE | {_ENTERPRISE} and isinstance(value, dict):
                # A schema URN as the path: its value is an object of attributes.
                value = _attributes({path.strip(): value}, resource_type)[path.strip()]
        out["path"] = path
    if _key(op, "value") is not None:
        out["value"] = value
    return out


# --- filters ----------------------------------------------------------------------------


def _is_literal(word: str) -> bool:
    return word.lower() in ("true", "false", "null") or _NUMBER.fullmatch(word) is not None


def _quote_bare_values(tokens: list[str]) -> list[str]:
    """``externalId eq jyoung`` as ``externalId eq "jyoung"``.

    [TUTORIAL] "Example 1. Query the service for a matching user" shows
    ``GET /scim/Users?filter=externalId eq jyoung``. Entra itself quotes values; this
    is tolerated so that the request as Microsoft documents it works too. A bare word
    in a value position is never valid RFC 7644 filter text, so quoting it cannot
    change the meaning of a valid filter.
    """
    out = list(tokens)
    for i in range(2, len(out) - 2):
        if (
            out[i].lower() in _COMPARE_OPS
            and out[i - 1].isspace()
            and out[i + 1].isspace()
            and _ATTR_TOKEN.fullmatch(out[i - 2]) is not None
            and _ATTR_TOKEN.fullmatch(out[i + 2]) is not None
            and not _is_literal(out[i + 2])
        ):
            out[i + 2] = json.dumps(out[i + 2])
    return out


def _comparison(tokens: list[str]) -> tuple[int, str] | None:
    """``WS op WS value`` or ``WS pr`` at the start of ``tokens``: (tokens used, text)."""
    if len(tokens) < 2 or not tokens[0].isspace():
        return None
    op = tokens[1].lower()
    if op == "pr":
        return 2, "pr"
    if op not in _COMPARE_OPS or len(tokens) < 4 or not tokens[2].isspace():
        return None
    if tokens[3] in ("(", ")", "[", "]") or tokens[3].isspace():
        return None
    return 4, f"{op} {tokens[3]}"


def _fold_value_paths(tokens: list[str]) -> list[str]:
    """``emails[type eq "work"].value eq "x"`` as ``emails[type eq "work" and value eq "x"]``.

    [TUTORIAL] "/Users": if ``emails[type eq "work"]`` is a matching attribute, Entra
    queries ``emails[type eq "work"].value eq "user@contoso.com"``. RFC 7644's
    grammar has no sub-attribute after a value filter (MicrosoftDocs/azure-docs#83855).
    """
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] != "[":
            out.append(tokens[i])
            i += 1
            continue
        close = next((j for j in range(i + 1, len(tokens)) if tokens[j] in "[]"), None)
        if close is None or tokens[close] != "]":
            out.extend(tokens[i:])
            break
        sub = _SUB_TOKEN.fullmatch(tokens[close + 1]) if close + 1 < len(tokens) else None
        found = _comparison(tokens[close + 2 :]) if sub is not None else None
        if sub is None or found is None:
            out.extend(tokens[i : close + 1])
            i = close + 1
            continue
        used, comparison = found
        inner = tokens[i + 1 : close]
        text = "".join(inner).strip()
        if any(t.lower() == "or" for t in inner):
            text = f"({text})"
        out.append(f"[{text} and {sub.group(1)} {comparison}]")
        i = close + 2 + used
    return out


def _standard_filter(text: str) -> str:
    tokens = _FILTER_TOKEN.findall(text)
    if "".join(tokens) != text or '"' in tokens:
        return text  # an unterminated string: the core reports it on the text as sent
    return "".join(_fold_value_paths(_quote_bare_values(tokens)))


# --- the adapter ------------------------------------------------------------------------


class EntraAdapter(Adapter):
    name = "entra"
    aliases = ("azure-ad",)
    description = "Microsoft Entra ID (Azure AD) provisioning."

    def normalize_query(self, params: dict[str, Any], ctx: Inbound) -> dict[str, Any]:
        text = params.get("filter")
        if not isinstance(text, str):
            return params
        return {**params, "filter": _standard_filter(text)}

    def normalize_resource(self, body: Any, ctx: Inbound) -> Any:
        if not isinstance(body, dict):
            return body
        out: dict[str, Any] = {}
        for key, value in body.items():
            if value is None:
                # [TUTORIAL] "Example 2. Provision a user" sends unassigned attributes
                # as null ("addresses": null, "manager": null); null means unassigned
                # (RFC 7643 §2.5), so they are not kept as unknown attributes.
                continue
            if isinstance(key, str) and key.lower().startswith(_MICROSOFT_SCHEMA):
                continue
            if isinstance(key, str) and key.lower() == "schemas" and isinstance(value, list):
                # [TUTORIAL] "Create Group": the Microsoft schema URN is not one the
                # gateway serves; it is dropped rather than rejected.
                value = [
                    urn
                    for urn in value
                    if not (isinstance(urn, str) and urn.lower().startswith(_MICROSOFT_SCHEMA))
                ]
            out[key] = value
        return _attributes(out, ctx.resource_type)

    def normalize_patch(self, body: Any, current: Mapping[str, Any], ctx: Inbound) -> Any:
        if not isinstance(body, dict):
            return body
        # Entra "sometimes passes" an "id" in the PATCH body and a "name" inside
        # operations (reported by python-scim/scim2-server, scim2_server/provider.py;
        # no Microsoft document shows it). Neither is part of a PatchOp (RFC 7644
        # §3.5.2), so both are dropped before the core parses the request.
        out = {k: v for k, v in body.items() if not (isinstance(k, str) and k.lower() == "id")}
        ops_key = _key(out, "Operations")
        operations = out.get(ops_key) if ops_key is not None else None
        if not isinstance(operations, list):
            return out
        expanded: list[Any] = []
        for raw in operations:
            if not isinstance(raw, dict):
                expanded.append(raw)
                continue
            op = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.lower() == "name")}
            expanded.extend(_expand_dotted(op))
        types = _Types(current)
        result: list[Any] = []
        for op in expanded:
            if isinstance(op, dict):
                _track_whole_removal(op, types)
                op = _standard_values(_create_missing(op, types), ctx.resource_type)
            result.append(op)
        assert ops_key is not None
        out[ops_key] = result
        return out

    def render(self, resource: dict[str, Any], ctx: Outbound) -> dict[str, Any]:
        # Entra fails with SystemForCrossDomainIdentityManagementServiceIncompatible when
        # a response carries manager as a string (Budibase/budibase#15369); the core
        # stores it as an object, and this keeps it one on the way out.
        extension = resource.get(ENTERPRISE_USER)
        if ctx.resource_type != "User" or not isinstance(extension, dict):
            return resource
        manager = extension.get("manager")
        if not isinstance(manager, str):
            return resource
        return {**resource, ENTERPRISE_USER: {**extension, "manager": {"value": manager}}}


@hookimpl
def scim_gateway_register_adapters(registry: AdapterRegistry) -> None:
    registry.add(EntraAdapter)
