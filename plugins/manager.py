"""The plugin manager: entry points, blocking, validation, and the adapter registry.

The gateway finds every plugin, its own built-in adapters included, through the
``scim_gateway`` entry-point group, exactly as it finds a third party's. The core
calls the typed methods here (:meth:`GatewayPlugins.adapter`,
:meth:`GatewayPlugins.emit`), never ``pm.hook`` directly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .adapter import Adapter
from .model import ProvisioningEvent

__all__ = ["AdapterRegistry", "GatewayPlugins", "PluginError", "PluginInfo"]

log = logging.getLogger("scim_gateway.plugins")


class PluginError(Exception):
    """The plugins cannot be loaded as configured; the message says why."""


def _distribution_of(module: str) -> str:
    top = module.split(".", 1)[0]
    names = metadata.packages_distributions().get(top) or []
    return names[0] if names else f"module {module}"


def _check_entry_point_names(blocked: set[str]) -> None:
    """Two distributions declaring one plugin name: pluggy would load one silently."""
    seen: dict[str, str] = {}
    for ep in metadata.entry_points(group=hookspecs.PROJECT_NAME):
        if ep.name in blocked:
            continue
        dist = ep.dist.name if ep.dist is not None else ep.value
        other = seen.get(ep.name)
        if other is not None and other != dist:
            raise PluginError(
                f"Two distributions declare the plugin {ep.name!r}: {other} and {dist}. "
                "Uninstall one, or block the name with [plugins] block = [...]."
            )
        seen[ep.name] = dist


class AdapterRegistry:
    """Adapter classes by name and alias; a name can be claimed only once."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Adapter]] = {}

    def add(self, adapter: type[Adapter]) -> None:
        if not (isinstance(adapter, type) and issubclass(adapter, Adapter)):
            raise PluginError(f"{adapter!r} is not a subclass of plugins.Adapter.")
        for name in (adapter.name, *adapter.aliases):
            key = name.lower()
            other = self._classes.get(key)
            if other is not None and other is not adapter:
                raise PluginError(
                    f"Two adapters claim the name {name!r}: {other.__qualname__} from "
                    f"{_distribution_of(other.__module__)} and {adapter.__qualname__} from "
                    f"{_distribution_of(adapter.__module__)}. Uninstall one, or block one "
                    "with [plugins] block = [...] in the config."
                )
            self._classes[key] = adapter

    def get(self, name: str) -> type[Adapter] | None:
        return self._classes.get(name.lower())

    def canonical_names(self) -> list[str]:
        return sorted({cls.name for cls in self._classes.values()})

    def classes(self) -> list[type[Adapter]]:
        return sorted(set(self._classes.values()), key=lambda cls: cls.name)


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    adapters: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "adapters": list(self.adapters),
        }


class GatewayPlugins:
    """Loads plugins once per process and exposes what the core needs from them."""

    def __init__(
        self,
        *,
        blocked: Iterable[str] = (),
        entry_points: bool = True,
        extra: Sequence[Any] = (),
    ) -> None:
        self.blocked = sorted({b.strip() for b in blocked if b.strip()})
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        for name in self.blocked:
            self.pm.set_blocked(name)
        known = ", ".join(sorted(n for n in vars(hookspecs) if n.startswith("scim_gateway_")))
        try:
            if entry_points:
                _check_entry_point_names(set(self.blocked))
                self.pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
            for plugin in extra:
                self.pm.register(plugin)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"Plugin {exc.plugin!r} does not match the hook specifications "
                f"(a misspelt hook or argument?): {exc}. Known hooks: {known}."
            ) from exc
        self.registry = AdapterRegistry()
        try:
            self.pm.hook.scim_gateway_register_adapters(registry=self.registry)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"A plugin failed while registering adapters: {exc!r}.") from exc
        self._instances: dict[str, Adapter] = {}

    def adapter(self, name: str) -> Adapter | None:
        """The adapter instance for ``name`` (or an alias); ``None`` if not loaded."""
        key = name.lower()
        instance = self._instances.get(key)
        if instance is None:
            cls = self.registry.get(key)
            if cls is None:
                return None
            instance = self._instances[key] = cls()
        return instance

    def emit(self, events: Iterable[ProvisioningEvent]) -> None:
        """Deliver committed events to every observer, one by one: an observer's
        failure is logged and does not keep the event from the others."""
        observers = self.pm.hook.scim_gateway_provisioning_event.get_hookimpls()
        for event in events:
            for impl in observers:
                try:
                    impl.function(event=event)
                except Exception:
                    log.exception(
                        "provisioning-event observer failed on %s (plugin %s)",
                        event.kind,
                        impl.plugin_name,
                    )

    def describe(self) -> list[PluginInfo]:
        """What is loaded, and from which distribution."""
        infos: dict[str, PluginInfo] = {}
        dist_of: dict[int, tuple[str, str]] = {}
        for plugin, facade in self.pm.list_plugin_distinfo():
            dist_of[id(plugin)] = (str(facade.metadata["name"]), str(facade.version))
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            distribution, version = dist_of.get(id(plugin), ("(registered directly)", ""))
            module = getattr(plugin, "__name__", "")
            adapters = tuple(
                cls.name
                for cls in self.registry.classes()
                if module and (cls.__module__ == module or cls.__module__.startswith(module + "."))
            )
            infos[name] = PluginInfo(name, distribution, version, adapters)
        return [infos[k] for k in sorted(infos)]
