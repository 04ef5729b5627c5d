"""Finds destination plugins, checks them, and gives the service its destinations by key.

A plugin is refused at start-up, with a :class:`PluginError` naming it, when it
declares a plugin API version this segport cannot serve, when it implements a
hook segport does not have (a misspelled hook would otherwise be ignored), or
when two plugins claim one destination key.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

import pluggy

from service.plugins import hookspecs
from service.plugins.api import ENTRY_POINT_GROUP, PROJECT_NAME, Destination
from service.plugins.demo import DemoFixture
from service.plugins.service_info import ServiceInfo
from service.plugins.version import DECLARATION_ATTRIBUTE, incompatibility
from service.settings import Settings


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

    def demo_fixtures(self) -> list[DemoFixture]:
        """What the installed plugins contribute to ``segport demo``, by destination key."""
        fixtures = [
            fixture
            for batch in self.plugin_manager.hook.register_demo_fixtures()
            for fixture in batch or ()
        ]
        return sorted(fixtures, key=lambda fixture: fixture.destination_key)

    def substitute(self, destination: Destination) -> None:
        """Use ``destination`` in place of the registered one with its key (the demo points
        a destination at its fake servers this way, with no process-wide setting)."""
        if destination.key not in self._destinations:
            raise PluginError(f"no destination {destination.key!r} is registered to substitute")
        self._destinations[destination.key] = destination


def plugin_label(plugin_manager: pluggy.PluginManager, plugin: object) -> str:
    """How an error names a plugin: its entry-point name and distribution when it has them."""
    name = plugin_manager.get_name(plugin) or getattr(plugin, "__name__", repr(plugin))
    for registered, distribution in plugin_manager.list_plugin_distinfo():
        if registered is plugin:
            return f"{name!r} ({distribution.project_name} {distribution.version})"
    return repr(name)


def _check_versions(plugin_manager: pluggy.PluginManager) -> None:
    for plugin in sorted(
        plugin_manager.get_plugins(), key=lambda p: plugin_label(plugin_manager, p)
    ):
        if not hasattr(plugin, DECLARATION_ATTRIBUTE):
            continue  # undeclared: taken to be built for this version
        problem = incompatibility(getattr(plugin, DECLARATION_ATTRIBUTE))
        if problem is not None:
            raise PluginError(f"plugin {plugin_label(plugin_manager, plugin)} {problem}")


def _unknown_hooks(plugin_manager: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(
        name
        for name, caller in vars(plugin_manager.hook).items()
        if not name.startswith("_")
        and isinstance(caller, pluggy.HookCaller)
        and not caller.has_spec()
        and any(impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls())
    )


def _check_hooks(plugin_manager: pluggy.PluginManager) -> None:
    try:
        plugin_manager.check_pending()
    except pluggy.PluginValidationError as exc:
        unknown = ", ".join(_unknown_hooks(plugin_manager, exc.plugin)) or "?"
        known = ", ".join(sorted(_hook_names()))
        raise PluginError(
            f"plugin {plugin_label(plugin_manager, exc.plugin)} implements {unknown}, which is "
            f"not a segport hook (misspelled?); the hooks are: {known}"
        ) from exc


def _hook_names() -> list[str]:
    return [
        name for name, value in vars(hookspecs).items() if hasattr(value, f"{PROJECT_NAME}_spec")
    ]


def _register(plugin_manager: pluggy.PluginManager, plugin: ModuleType | object) -> None:
    try:
        plugin_manager.register(plugin)
    except pluggy.PluginValidationError as exc:
        # A hook implementation whose arguments the hook does not have.
        name = getattr(plugin, "__name__", repr(plugin))
        raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from exc


def create_plugin_manager(
    extra_plugins: Iterable[ModuleType | object] = (), load_entry_points: bool = True
) -> pluggy.PluginManager:
    """A plugin manager with segport's hooks and every plugin registered and checked."""
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"an installed plugin cannot be registered: {exc}") from exc
    for plugin in extra_plugins:
        _register(pm, plugin)
    _check_versions(pm)
    _check_hooks(pm)
    return pm


def load_destinations(
    extra_plugins: Iterable[ModuleType | object] = (), load_entry_points: bool = True
) -> DestinationRegistry:
    return DestinationRegistry(create_plugin_manager(extra_plugins, load_entry_points))


def service_info(settings: Settings) -> ServiceInfo:
    """What the ``startup`` hook tells plugins about the service these settings describe."""
    return ServiceInfo(
        public_url=settings.public_url.rstrip("/"),
        oauth_callback_url=settings.oauth_redirect_uri,
        mode="embedded" if settings.embedded else "distributed",
        data_dir=settings.data_dir if settings.embedded else None,
    )
