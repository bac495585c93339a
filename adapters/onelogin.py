"""``onelogin``: OneLogin's "SCIM Provisioner with SAML (SCIM v2 Enterprise)" connector.

OneLogin's payloads come from an admin-edited JSON template, so they vary; what is
absorbed here is documented in docs/idp/onelogin.md with its sources.
"""

from __future__ import annotations

from plugins import Adapter, AdapterRegistry, hookimpl

__all__ = ["OneLoginAdapter"]


class OneLoginAdapter(Adapter):
    name = "onelogin"
    description = "OneLogin SCIM provisioning."


@hookimpl
def scim_gateway_register_adapters(registry: AdapterRegistry) -> None:
    registry.add(OneLoginAdapter)
