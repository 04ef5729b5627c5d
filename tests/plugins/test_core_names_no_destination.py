"""The core never names a destination, and no code changes the process environment.

Constant Contact is a plugin like any other: what the demo needs of it comes through
the ``register_demo_fixtures`` hook, and the plugin is pointed at its fake with settings
given explicitly, never through ``os.environ``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE_DIR = ROOT / "service"
PRODUCT_CODE = [
    SERVICE_DIR,
    ROOT / "plugins" / "constant_contact" / "segport_constant_contact",
    ROOT / "tests" / "plugins" / "toy_destination" / "segport_toy_destination",
]
SCHEMA_EXAMPLE = 'A DestinationType key, e.g. "constant_contact".'
"""The one mention allowed: an example value in the public GraphQL schema's description of
``CreateConnectionInput.destinationType``, which must stay byte-identical to schema.graphql."""
ENVIRON_MUTATORS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__"}


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def test_no_file_under_service_mentions_constant_contact() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in _files(SERVICE_DIR)
        if "constant_contact" in path.read_text().replace(SCHEMA_EXAMPLE, "").lower()
    ]
    assert offenders == []


def test_the_one_allowed_mention_is_the_frozen_schemas_example() -> None:
    assert f'"""{SCHEMA_EXAMPLE}"""' in (ROOT / "schema.graphql").read_text()


def _is_os_environ(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _environment_changes(path: Path) -> list[str]:
    changes = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
            if _is_os_environ(node.value):
                changes.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func
            if (_is_os_environ(target.value) and target.attr in ENVIRON_MUTATORS) or (
                isinstance(target.value, ast.Name)
                and target.value.id == "os"
                and target.attr in {"putenv", "unsetenv"}
            ):
                changes.append(f"{path.name}:{node.lineno}")
    return changes


def test_no_code_changes_the_process_environment() -> None:
    changes = [
        change
        for folder in PRODUCT_CODE
        for path in folder.rglob("*.py")
        for change in _environment_changes(path)
    ]
    assert changes == []
