"""Hook specifications of the ``scim_gateway`` plugin system.

These docstrings are the reference documentation for plugin authors. A plugin is
any module or object with functions marked ``@hookimpl``, found through the
``scim_gateway`` entry-point group of an installed distribution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from .model import ProvisioningEvent

if TYPE_CHECKING:
    from .manager import AdapterRegistry

__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "scim_gateway_provisioning_event",
    "scim_gateway_register_adapters",
]

PROJECT_NAME = "scim_gateway"
"""The pluggy project name, which is also the entry-point group."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def scim_gateway_register_adapters(registry: AdapterRegistry) -> None:
    """Register adapter classes, one per identity-provider dialect.

    Called once at startup. Call ``registry.add(MyAdapter)`` for each
    :class:`plugins.Adapter` subclass the plugin provides. Adapter names (and
    aliases) are global: two adapters claiming one name stop startup with a
    message naming both distributions.

    :param registry: the registry to add adapter classes to.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@hookspec
def scim_gateway_provisioning_event(event: ProvisioningEvent) -> None:
    """Observe one committed change to the common model.

    Called after the transaction that made the change has committed, once per
    change, in the order the changes were made; never for a change that rolled
    back. Observers (audit, webhooks, metrics) must not mutate anything the
    event refers to and should return quickly: they run on the request's path.
    An exception raised here is logged and does not fail the request, which has
    already been committed.

    :param event: the change: its kind (``user.created``, ``member.added``, ...),
        team, resource, what changed, and the key and adapter that made it.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """
