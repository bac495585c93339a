"""``okta``: Okta's SCIM 2.0 client (OIN and AIW provisioning apps).

Okta's deviations from RFC 7644 are absorbed here; the sources are Okta's SCIM 2.0
reference (developer.okta.com/docs/reference/scim/scim-20) and its "SCIM 2.0 SPEC
Test" suite. See docs/idp/okta.md.
"""

from __future__ import annotations

from plugins import Adapter, AdapterRegistry, hookimpl

__all__ = ["OktaAdapter"]


class OktaAdapter(Adapter):
    name = "okta"
    description = "Okta provisioning (OIN and AIW SCIM 2.0 apps)."


@hookimpl
def scim_gateway_register_adapters(registry: AdapterRegistry) -> None:
    registry.add(OktaAdapter)
