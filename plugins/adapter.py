"""The adapter base class: strict RFC 7644, which the ``generic`` adapter uses as is.

An adapter translates one identity provider's dialect of SCIM into the standard
the gateway's core speaks. Subclasses override only what their IdP does
differently. Adapters are pure: they see the request (and, for PATCH, the
resource as it stands) and return new values; they do no I/O and keep no state.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from .model import Inbound, Outbound

__all__ = ["COMMON_FIELDS", "ENTERPRISE_USER", "Adapter"]

ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

COMMON_FIELDS: Mapping[str, tuple[str, ...]] = {
    "display_name": ("displayName",),
    "nick_name": ("nickName",),
    "title": ("title",),
    "user_type": ("userType",),
    "locale": ("locale",),
    "timezone": ("timezone",),
    "preferred_language": ("preferredLanguage",),
    "given_name": ("name", "givenName"),
    "family_name": ("name", "familyName"),
    "department": (ENTERPRISE_USER, "department"),
    "employee_number": (ENTERPRISE_USER, "employeeNumber"),
    "cost_center": (ENTERPRISE_USER, "costCenter"),
    "organization": (ENTERPRISE_USER, "organization"),
    "division": (ENTERPRISE_USER, "division"),
    "manager": (ENTERPRISE_USER, "manager", "value"),
}
"""Fields of the common model an ``attribute_map`` can target, and where they live
in a canonical SCIM User."""


def _lookup(doc: Mapping[str, Any], path: str) -> Any:
    """A value by source path: ``urn:...:Ext:attr``, ``attr`` or ``attr.sub``."""
    if path.lower().startswith("urn:") and ":" in path:
        urn, _, rest = path.rpartition(":")
        node = next((v for k, v in doc.items() if k.lower() == urn.lower()), None)
        if not isinstance(node, Mapping):
            return None
        doc, path = node, rest
    node = doc
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = next((v for k, v in node.items() if k.lower() == part.lower()), None)
    return node


def _assign(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = doc
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


class Adapter:
    """Strict RFC 7643/7644. Every hook returns its input unchanged."""

    name: ClassVar[str] = "generic"
    """The name keys and teams use to select this adapter (``--adapter okta``)."""
    aliases: ClassVar[tuple[str, ...]] = ()
    """Other accepted names (``azure-ad`` for ``entra``)."""
    description: ClassVar[str] = "Any SCIM 2.0 client that follows RFC 7644."

    def normalize_query(self, params: dict[str, Any], ctx: Inbound) -> dict[str, Any]:
        """Rewrite list/search parameters (``filter``, ``count``...) before parsing."""
        return params

    def normalize_resource(self, body: Any, ctx: Inbound) -> Any:
        """Rewrite a POST/PUT body (a User or a Group) before validation."""
        return body

    def normalize_patch(self, body: Any, current: Mapping[str, Any], ctx: Inbound) -> Any:
        """Rewrite a PatchOp body before parsing. ``current`` is the resource as it
        stands (a Group without its members)."""
        return body

    def map_attributes(self, resource: dict[str, Any], ctx: Inbound) -> dict[str, Any]:
        """Copy IdP-specific attributes onto common-model fields.

        Driven by the team option ``attribute_map``, a table from a source path
        (``"urn:okta:acme:1.0:user:costCode"``, ``"department"``) to a field of
        :data:`COMMON_FIELDS`. The source attribute is kept as sent, so nothing
        the IdP sent is lost. Runs on canonical resources, after validation.
        """
        mapping = ctx.options.get("attribute_map") or {}
        if ctx.resource_type != "User" or not mapping:
            return resource
        out = copy.deepcopy(resource)
        for source, target in mapping.items():
            value = _lookup(resource, source)
            if value is None or target not in COMMON_FIELDS:
                continue
            path = COMMON_FIELDS[target]
            if path[0] == ENTERPRISE_USER and ENTERPRISE_USER not in out.get("schemas", []):
                out["schemas"] = [*out.get("schemas", []), ENTERPRISE_USER]
            _assign(out, path, value if not isinstance(value, Mapping) else value.get("value"))
        return out

    def render(self, resource: dict[str, Any], ctx: Outbound) -> dict[str, Any]:
        """Rewrite a resource on its way out."""
        return resource
