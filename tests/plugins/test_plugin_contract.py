"""The plugin contract as the service enforces it at start-up: a plugin built for another
plugin API version or implementing a hook segport does not have is refused with its name,
and ``startup`` is told what plugins may know of the service, not its settings."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from service.core import open_services
from service.plugins import (
    PLUGIN_API_VERSION,
    Destination,
    DestinationContext,
    DestinationSession,
    Rejection,
    ServiceInfo,
    hookimpl,
)
from service.plugins.manager import PluginError, load_destinations
from service.plugins.version import parse_version
from tests.support.settings import make_settings

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "service" / "plugins"


class Quiet(Destination):
    key = "quiet"
    display_name = "Quiet"

    def build_record(self, values: Mapping[str, Any]) -> dict[str, Any] | Rejection:
        return dict(values)

    def open_session(self, ctx: DestinationContext) -> DestinationSession:
        raise NotImplementedError


def plugin(name: str, **attributes: object) -> ModuleType:
    """A plugin module named ``name`` holding ``attributes`` (hooks, a version declaration)."""
    module = ModuleType(name)
    for attribute, value in attributes.items():
        setattr(module, attribute, value)
    return module


@hookimpl
def register_quiet() -> list[Destination]:
    return [Quiet()]


def test_the_plugin_api_version_is_major_dot_minor() -> None:
    assert parse_version(PLUGIN_API_VERSION) == (1, 3)


@pytest.mark.parametrize("declared", ["1.3", "1.2", "1.1", "1.0"])
def test_a_plugin_built_for_this_version_or_an_earlier_minor_is_loaded(declared: str) -> None:
    built = plugin(
        "quiet_plugin", SEGPORT_PLUGIN_API=declared, register_destinations=register_quiet
    )
    assert load_destinations([built], load_entry_points=False).get("quiet") is not None


def test_a_plugin_that_declares_no_version_is_loaded() -> None:
    undeclared = plugin("quiet_plugin", register_destinations=register_quiet)
    assert load_destinations([undeclared], load_entry_points=False).get("quiet") is not None


@pytest.mark.parametrize(
    ("declared", "words"),
    [
        ("2.0", "was built for segport plugin API 2.0, but this segport provides 1.3"),
        ("0.9", "major versions differ"),
        ("1.7", "newer than the 1.3 this segport provides: upgrade segport"),
        ("one", "which is not a 'MAJOR.MINOR' string"),
        (1, "which is not a 'MAJOR.MINOR' string"),
    ],
)
def test_a_plugin_built_for_an_incompatible_version_is_refused_by_name(
    declared: object, words: str
) -> None:
    built_elsewhere = plugin("acme_plugin", SEGPORT_PLUGIN_API=declared)
    with pytest.raises(PluginError, match="plugin 'acme_plugin'") as refused:
        load_destinations([built_elsewhere], load_entry_points=False)
    assert words in str(refused.value)


def test_the_installed_plugins_declare_a_compatible_version() -> None:
    registry = load_destinations()
    for key in ("constant_contact", "toy_webhook"):
        assert registry.get(key) is not None


def test_a_misspelled_hook_fails_at_start_up_naming_the_plugin_and_the_hook() -> None:
    @hookimpl
    def register_destination() -> list[Destination]:  # one letter short
        return [Quiet()]

    misspelled = plugin("typo_plugin", register_destination=register_destination)
    with pytest.raises(PluginError) as refused:
        load_destinations([misspelled], load_entry_points=False)
    message = str(refused.value)
    assert "plugin 'typo_plugin' implements register_destination" in message
    assert "not a segport hook" in message
    assert "register_destinations" in message  # the hooks there are, to spot the typo


def test_a_hook_with_an_argument_the_hook_lacks_is_refused_by_name() -> None:
    @hookimpl
    def startup(settings: object) -> None:  # the 0.x signature
        return None

    outdated = plugin("old_plugin", startup=startup)
    with pytest.raises(PluginError, match="plugin 'old_plugin' cannot be registered"):
        load_destinations([outdated], load_entry_points=False)


def test_two_plugins_claiming_one_key_stop_the_start() -> None:
    first = plugin("first", register_destinations=register_quiet)
    second = plugin("second", register_destinations=register_quiet)
    with pytest.raises(PluginError, match="'quiet' is registered twice"):
        load_destinations([first, second], load_entry_points=False)


async def test_startup_is_told_what_plugins_may_know_of_the_service(tmp_path: Path) -> None:
    told: list[ServiceInfo] = []

    @hookimpl
    def startup(service: ServiceInfo) -> None:
        told.append(service)

    settings = make_settings(
        f"sqlite:///{tmp_path / 'segport.db'}", public_url="https://segport.example/"
    )
    recorder = plugin("recorder", startup=startup)
    async with open_services(settings, extra_plugins=[recorder], load_entry_points=False):
        pass
    assert told == [
        ServiceInfo(
            public_url="https://segport.example",
            oauth_callback_url="https://segport.example/oauth/callback",
            mode="embedded",
            data_dir=tmp_path.resolve(),
        )
    ]
    with pytest.raises(AttributeError):
        told[0].public_url = "elsewhere"  # type: ignore[misc]


class Unregistered(Quiet):
    key = "unregistered"


def test_a_substituted_destination_replaces_the_registered_one() -> None:
    registry = load_destinations([plugin("quiet", register_destinations=register_quiet)], False)
    replacement = Quiet()
    registry.substitute(replacement)
    assert registry.get("quiet") is replacement
    with pytest.raises(PluginError, match="no destination 'unregistered'"):
        registry.substitute(Unregistered())


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_validation_does_not_import_the_destination_api() -> None:
    assert "service.plugins.api" not in _imported_modules(PLUGINS_DIR / "validation.py")


def test_the_plugin_platform_imports_nothing_of_the_service_above_it() -> None:
    allowed = ("service.plugins", "service.settings")
    for path in PLUGINS_DIR.glob("*.py"):
        above = {
            module
            for module in _imported_modules(path)
            if module.startswith("service.") and not module.startswith(allowed)
        }
        assert above == set(), f"{path.name} imports {sorted(above)}"


def test_the_testing_kit_imports_only_the_plugin_platform() -> None:
    service_modules = {
        module
        for module in _imported_modules(PLUGINS_DIR / "testing.py")
        if module.split(".")[0] == "service"
    }
    assert service_modules
    assert all(module.startswith("service.plugins") for module in service_modules)
