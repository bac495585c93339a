"""``generic``: strict RFC 7644, for any SCIM 2.0 client that follows the standard."""

from __future__ import annotations

from plugins import Adapter, AdapterRegistry, hookimpl

__all__ = ["GenericAdapter"]


class GenericAdapter(Adapter):
    name = "generic"
    description = "Any SCIM 2.0 client that follows RFC 7644; no dialect is absorbed."


@hookimpl
def scim_gateway_register_adapters(registry: AdapterRegistry) -> None:
    registry.add(GenericAdapter)
