"""``entra`` (also ``azure-ad``): Microsoft Entra ID's provisioning service.

Entra's deviations from RFC 7644 are absorbed here; the source is Microsoft's
"Known issues and resolutions with SCIM 2.0 protocol compliance" and "Tutorial:
Develop and plan provisioning for a SCIM endpoint". See docs/idp/entra.md.
"""

from __future__ import annotations

from plugins import Adapter, AdapterRegistry, hookimpl

__all__ = ["EntraAdapter"]


class EntraAdapter(Adapter):
    name = "entra"
    aliases = ("azure-ad",)
    description = "Microsoft Entra ID (Azure AD) provisioning."


@hookimpl
def scim_gateway_register_adapters(registry: AdapterRegistry) -> None:
    registry.add(EntraAdapter)
