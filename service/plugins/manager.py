"""Finds destination plugins and gives the service its destinations by key."""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

import pluggy

from service.plugins import hookspecs
from service.plugins.api import ENTRY_POINT_GROUP, PROJECT_NAME, Destination


class PluginError(Exception):
    """A plugin is broken (for example two plugins claim the same destination key)."""


class DestinationRegistry:
    """The installed destinations, loaded once at start-up."""

    def __init__(self, plugin_manager: pluggy.PluginManager) -> None:
        self.plugin_manager = plugin_manager
        self._destinations: dict[str, Destination] = {}
        for batch in plugin_manager.hook.register_destinations():
            for destination in batch or ():
                if destination.key in self._destinations:
                    raise PluginError(f"destination key {destination.key!r} is registered twice")
                self._destinations[destination.key] = destination

    def get(self, key: str) -> Destination | None:
        return self._destinations.get(key)

    def all(self) -> list[Destination]:
        return sorted(self._destinations.values(), key=lambda d: d.key)


def create_plugin_manager(
    extra_plugins: Iterable[ModuleType | object] = (), load_entry_points: bool = True
) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra_plugins:
        pm.register(plugin)
    return pm


def load_destinations(
    extra_plugins: Iterable[ModuleType | object] = (), load_entry_points: bool = True
) -> DestinationRegistry:
    return DestinationRegistry(create_plugin_manager(extra_plugins, load_entry_points))
