"""docs/plugins.md cannot rot: every hook and public plugin name is documented there, and the
walk-through's code is the toy plugin's source, byte for byte."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import service.plugins
import service.plugins.conformance
import service.plugins.testing
from service.plugins import Destination, DestinationSession, hookspecs

ROOT = Path(__file__).resolve().parents[1]
PLUGINS_DOC = ROOT / "docs" / "plugins.md"
TOY_PLUGIN = ROOT / "tests" / "plugins" / "toy_destination"
INCLUDE = re.compile(r"<!-- include: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)```", re.DOTALL)


def _doc() -> str:
    return PLUGINS_DOC.read_text()


def _headings() -> list[str]:
    return [line for line in _doc().splitlines() if line.startswith("#")]


def _hook_names() -> list[str]:
    return [
        name
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, f"{hookspecs.hookspec.project_name}_spec")
    ]


def test_hookspecs_define_hooks_at_all() -> None:
    assert "register_destinations" in _hook_names()


@pytest.mark.parametrize("hook", _hook_names())
def test_every_hook_has_a_heading_with_its_signature(hook: str) -> None:
    signature = inspect.signature(getattr(hookspecs, hook))
    parameters = ", ".join(
        f"{p.name}: {p.annotation}" if p.annotation is not p.empty else p.name
        for p in signature.parameters.values()
    )
    expected = f"`{hook}({parameters}) -> {signature.return_annotation}`"
    assert any(expected in heading for heading in _headings()), (
        f"docs/plugins.md needs a heading {expected} for the hook {hook!r}"
    )


@pytest.mark.parametrize("name", service.plugins.__all__)
def test_every_public_plugin_name_is_documented(name: str) -> None:
    doc = _doc()
    assert f"`{name}`" in doc or f"`{name}(" in doc, f"docs/plugins.md does not document `{name}`"


@pytest.mark.parametrize(
    "name", service.plugins.testing.__all__ + service.plugins.conformance.__all__
)
def test_every_testing_kit_name_is_documented(name: str) -> None:
    doc = _doc()
    assert f"`{name}`" in doc or f"`{name}(" in doc, (
        f"docs/plugins.md does not document the testing kit's `{name}`"
    )


def _public_members(cls: type) -> list[str]:
    own = {
        name
        for klass in cls.__mro__
        if klass.__module__.startswith("service.")
        for name in vars(klass)
    }
    return sorted(name for name in own if not name.startswith("_"))


@pytest.mark.parametrize(
    ("cls", "member"),
    [(cls, member) for cls in (Destination, DestinationSession) for member in _public_members(cls)],
)
def test_every_attribute_and_method_of_the_plugin_classes_is_documented(
    cls: type, member: str
) -> None:
    mention = re.compile(rf"`(async )?{member}[`(]")
    documented = any(mention.search(line) for line in _doc().splitlines())
    assert documented, f"docs/plugins.md does not document {cls.__name__}.{member}"


def test_the_walk_through_includes_every_file_of_the_toy_plugin() -> None:
    included = {match["path"] for match in INCLUDE.finditer(_doc())}
    sources = {
        str(path.relative_to(ROOT))
        for path in [
            TOY_PLUGIN / "pyproject.toml",
            *TOY_PLUGIN.glob("segport_toy_destination/*.py"),
        ]
    }
    assert included == sources


@pytest.mark.parametrize(
    "match", list(INCLUDE.finditer(PLUGINS_DOC.read_text())), ids=lambda m: m["path"]
)
def test_walk_through_code_is_the_toy_plugins_source(match: re.Match[str]) -> None:
    source = (ROOT / match["path"]).read_text()
    assert match["body"] == source, (
        f"the block under <!-- include: {match['path']} --> differs from the file; "
        "copy the file into docs/plugins.md"
    )


def _environment_variables() -> list[str]:
    from segport_constant_contact.settings import ConstantContactSettings
    from segport_mailchimp.settings import MailchimpSettings

    from service.settings import Settings

    names = []
    for settings_class in (Settings, ConstantContactSettings, MailchimpSettings):
        prefix = str(settings_class.model_config.get("env_prefix", ""))
        names += [f"{prefix}{field}".upper() for field in settings_class.model_fields]
    return names


@pytest.mark.parametrize("variable", _environment_variables())
def test_the_readme_documents_every_environment_variable(variable: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"`{variable}`" in readme, f"README.md's configuration tables lack `{variable}`"


def _graphql_blocks() -> list[tuple[str, str]]:
    """Every ```graphql block of the user-facing docs, with where it stands."""
    blocks = []
    for path in (ROOT / "docs" / "operations.md", ROOT / "README.md"):
        for number, block in enumerate(re.findall(r"```graphql\n(.*?)```", path.read_text(), re.S)):
            blocks.append((f"{path.name}#{number + 1}", block))
    return blocks


@pytest.mark.parametrize(("where", "block"), _graphql_blocks(), ids=lambda v: str(v)[:24])
def test_graphql_in_the_docs_is_valid_against_the_schema(where: str, block: str) -> None:
    from graphql import parse, validate

    from service.api.schema import create_schema

    schema = create_schema()._schema
    for document in re.split(r"\n\s*(?=mutation|query|subscription)", block.strip()):
        errors = validate(schema, parse(document))
        assert not errors, f"{where}: {document}\n{errors}"
