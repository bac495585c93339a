"""The SCIM Gateway plugin contract: what a plugin author reads and imports.

Write an adapter by subclassing :class:`Adapter` and registering it::

    from plugins import Adapter, hookimpl

    class JumpCloudAdapter(Adapter):
        name = "jumpcloud"

    @hookimpl
    def scim_gateway_register_adapters(registry):
        registry.add(JumpCloudAdapter)

and declare the module in your distribution's ``scim_gateway`` entry points.
Test it with the kit in :mod:`plugins.testing` (``assert_conforms("jumpcloud")``);
docs/writing-an-adapter.md walks through every step.
"""

from .adapter import COMMON_FIELDS, Adapter
from .hookspecs import hookimpl, hookspec
from .manager import AdapterRegistry, GatewayPlugins, PluginError, PluginInfo
from .model import EVENT_KINDS, Inbound, Outbound, ProvisioningEvent

__all__ = [
    "COMMON_FIELDS",
    "EVENT_KINDS",
    "Adapter",
    "AdapterRegistry",
    "GatewayPlugins",
    "Inbound",
    "Outbound",
    "PluginError",
    "PluginInfo",
    "ProvisioningEvent",
    "hookimpl",
    "hookspec",
]
