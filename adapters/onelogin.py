"""``onelogin``: OneLogin's "SCIM Provisioner with SAML (SCIM v2 Enterprise)" connector.

OneLogin's payloads come from an admin-edited JSON template, so they vary. Sources:
the request log in https://github.com/goauthentik/authentik/issues/11249, OneLogin's
KB0013904 (https://onelogin.service-now.com/kb?id=kb_article_view&sysparm_article=KB0013904),
OneLogin's template guide (https://developers.onelogin.com/scim/define-user-schema),
https://scim.dev/guide/applications/onelogin and Postman's "Configuring SCIM with
OneLogin" (learning.postman.com/docs/administration/scim-provisioning/
configuring-scim-with-onelogin/). Those sources show fewer requests than Okta's and
Entra's documentation, so only what they show is absorbed here:

- legacy schema URNs from edited templates, in ``schemas``, as extension keys and in
  PATCH paths and values (:meth:`OneLoginAdapter.normalize_resource`,
  :meth:`OneLoginAdapter.normalize_patch`);
- template fields at the top level of a User (``department``, ``title``,
  ``external_manager_id``) copied onto the common model
  (:meth:`OneLoginAdapter.map_attributes`).

What the core already handles for OneLogin: user updates as PUT and group membership
as PATCH on ``/Groups/{id}`` (authentik#11249); a trailing ``&`` or ``?`` on the query
string (``GET /Users?filter=userName+eq+%22...%22&``, ``PUT /Users/{id}?``, also
authentik#11249), because empty query parameters count as absent; lowercase ``op``
names (Azure/AzureAD-BYOA-Provisioning-Samples#24), because op names are matched
ignoring case; and "Suspend", which is a PUT with ``active: false`` (Postman's
OneLogin page).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from plugins import Adapter, AdapterRegistry, Inbound, hookimpl
from plugins.adapter import ENTERPRISE_USER

__all__ = ["DEFAULT_ATTRIBUTE_MAP", "LEGACY_URNS", "OneLoginAdapter"]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"

# authentik#11249 logs `"schemas":["urn:scim:schemas:core:2.0",
# "urn:scim:schemas:extension:enterprise:2.0"]` on `PUT /Users/{id}?`; OneLogin's own
# templates (developers.onelogin.com/scim/define-user-schema) and scim.dev's use the
# SCIM 1.1 URNs "urn:scim:schemas:core:1.0" and "urn:scim:schemas:extension:
# enterprise:1.0". The ":User"/":Group" spellings are what an admin gets when
# completing those by hand after RFC 7643.
_LEGACY_CORE = ("urn:scim:schemas:core:2.0", "urn:scim:schemas:core:1.0")
_LEGACY_ENTERPRISE = (
    "urn:scim:schemas:extension:enterprise:2.0",
    "urn:scim:schemas:extension:enterprise:1.0",
)

LEGACY_URNS: Mapping[str, Mapping[str, str]] = {
    "User": {
        **{urn: USER_SCHEMA for base in _LEGACY_CORE for urn in (base, f"{base}:User")},
        **{urn: ENTERPRISE_USER for base in _LEGACY_ENTERPRISE for urn in (base, f"{base}:User")},
    },
    "Group": {urn: GROUP_SCHEMA for base in _LEGACY_CORE for urn in (base, f"{base}:Group")},
}
"""Per resource type, each legacy URN OneLogin templates use -> its RFC 7643 URN."""

DEFAULT_ATTRIBUTE_MAP: Mapping[str, str] = {
    # KB0013904, scim.dev and the template guide name these template fields
    # ({$parameters.department}, {$parameters.title}, {$parameters.external_manager_id});
    # an edited template puts them at the top level of the User, where RFC 7643 has
    # only `title`. The manager id is OneLogin's, not a gateway user id.
    "department": "department",
    "title": "title",
    "external_manager_id": "manager",
}
"""Template fields copied onto the common model unless the team's ``attribute_map``
maps the same source elsewhere."""


_BY_LOWERCASE = {rt: {k.lower(): v for k, v in t.items()} for rt, t in LEGACY_URNS.items()}


def _casefold_table(resource_type: str) -> Mapping[str, str]:
    """The legacy URNs of ``resource_type``, lowercased: URNs compare case-insensitively."""
    return _BY_LOWERCASE.get(resource_type, {})


def _standard_urn(urn: str, table: Mapping[str, str]) -> str | None:
    return table.get(urn.lower())


def _merged(first: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``first`` with the keys of ``extra`` it lacks (deeply)."""
    out = dict(first)
    for key, value in extra.items():
        current = out.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = _merged(current, value)
        elif key not in out:
            out[key] = value
    return out


def _rename_keys(doc: Mapping[str, Any], table: Mapping[str, str]) -> dict[str, Any]:
    """``doc`` with legacy URN keys under their standard URNs.

    An attribute sent under both spellings keeps the standard spelling's value.
    """
    out: dict[str, Any] = {}
    legacy: list[tuple[str, Any]] = []
    for key, value in doc.items():
        target = _standard_urn(key, table) if isinstance(key, str) else None
        if target is None:
            out[key] = value
        else:
            legacy.append((target, value))
    for target, value in legacy:
        current = out.get(target)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[target] = _merged(current, value)
        elif target not in out:
            out[target] = value
    return out


def _schemas(sent: Any, table: Mapping[str, str], core: str) -> Any:
    """``schemas`` with legacy URNs replaced and the core URN first.

    OneLogin's template is edited by hand, so the core URN may be missing or
    misspelled; the connector always means the resource type of the endpoint.
    """
    if not isinstance(sent, list):
        return [core] if sent is None else sent
    out: list[Any] = [core]
    seen = {core.lower()}
    for urn in sent:
        if not isinstance(urn, str):
            out.append(urn)
            continue
        value = _standard_urn(urn, table) or urn
        if value.lower() not in seen:
            seen.add(value.lower())
            out.append(value)
    return out


def _path(path: Any, table: Mapping[str, str]) -> Any:
    """A PATCH path with a legacy URN prefix replaced: ``urn:scim:schemas:extension:
    enterprise:2.0:department`` -> ``urn:ietf:...:enterprise:2.0:User:department``."""
    if not isinstance(path, str):
        return path
    lower = path.lower()
    for legacy in sorted(table, key=len, reverse=True):
        if lower == legacy:
            return table[legacy]
        if lower.startswith(legacy + ":"):
            return table[legacy] + path[len(legacy) :]
    return path


def _manager(extension: Any) -> Any:
    """The enterprise ``manager`` as the complex value RFC 7643 §4.3 defines.

    The manager is "whatever the template puts there": OneLogin's Enterprise User
    template sends SCIM 1.1's ``"manager": {"managerId": "{$parameters.
    external_manager_id}"}`` (developers.onelogin.com/scim/define-user-schema), an
    edited one may send a bare string. ``managerId`` is kept as sent.
    """
    if not isinstance(extension, dict):
        return extension
    manager = extension.get("manager")
    if isinstance(manager, str):
        return {**extension, "manager": {"value": manager}}
    if isinstance(manager, dict) and "value" not in manager:
        legacy = next((v for k, v in manager.items() if k.lower() == "managerid"), None)
        if isinstance(legacy, str):
            return {**extension, "manager": {**manager, "value": legacy}}
    return extension


class OneLoginAdapter(Adapter):
    name = "onelogin"
    description = "OneLogin SCIM provisioning (SCIM v2 Enterprise connector)."

    def normalize_resource(self, body: Any, ctx: Inbound) -> Any:
        if not isinstance(body, dict):
            return body
        table = _casefold_table(ctx.resource_type)
        core = USER_SCHEMA if ctx.resource_type == "User" else GROUP_SCHEMA
        schemas_key = next((k for k in body if k.lower() == "schemas"), "schemas")
        out = _rename_keys({k: v for k, v in body.items() if k != schemas_key}, table)
        if ctx.resource_type == "User" and ENTERPRISE_USER in out:
            out[ENTERPRISE_USER] = _manager(out[ENTERPRISE_USER])
        return {"schemas": _schemas(body.get(schemas_key), table, core), **out}

    def normalize_patch(self, body: Any, current: Mapping[str, Any], ctx: Inbound) -> Any:
        if not isinstance(body, dict):
            return body
        table = _casefold_table(ctx.resource_type)
        ops_key = next((k for k in body if k.lower() == "operations"), None)
        if ops_key is None or not isinstance(body[ops_key], list):
            return body
        return {**body, ops_key: [_operation(op, table) for op in body[ops_key]]}

    def map_attributes(self, resource: dict[str, Any], ctx: Inbound) -> dict[str, Any]:
        team_map = ctx.options.get("attribute_map") or {}
        taken = {source.lower() for source in team_map}
        merged = {k: v for k, v in DEFAULT_ATTRIBUTE_MAP.items() if k not in taken}
        merged.update(team_map)
        options = {**ctx.options, "attribute_map": merged}
        return super().map_attributes(resource, dataclasses.replace(ctx, options=options))


def _operation(op: Any, table: Mapping[str, str]) -> Any:
    if not isinstance(op, dict):
        return op
    out = dict(op)
    path_key = next((k for k in op if k.lower() == "path"), None)
    if path_key is not None:
        out[path_key] = _path(op[path_key], table)
    value_key = next((k for k in op if k.lower() == "value"), None)
    if value_key is not None and isinstance(op[value_key], dict):
        value = _rename_keys(op[value_key], table)
        if ENTERPRISE_USER in value:
            value[ENTERPRISE_USER] = _manager(value[ENTERPRISE_USER])
        out[value_key] = value
    return out


@hookimpl
def scim_gateway_register_adapters(registry: AdapterRegistry) -> None:
    registry.add(OneLoginAdapter)
