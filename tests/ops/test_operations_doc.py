"""docs/operations.md stays complete: every setting, metric and MongoDB index is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.observability.metrics import Metrics
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "operations.md").read_text()


def documented_default(variable: str) -> str:
    match = re.search(rf"^\| `{variable}` \| ([^|]+) \|", DOC, re.MULTILINE)
    assert match, f"{variable} has no row in the configuration table of docs/operations.md"
    return match.group(1).strip()


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_documented_with_its_default(name: str) -> None:
    field = Settings.model_fields[name]
    default = documented_default(f"SEGPORT_{name.upper()}")
    value = field.get_default(call_default_factory=True)
    if value is None or value == []:  # nothing set: an empty list (from a factory) is unset too
        assert default == "unset" or "generated" in default, default
    else:
        assert default == f"`{value}`", (
            f"SEGPORT_{name.upper()}: the doc says {default}, the code {value!r}"
        )


def test_every_metric_is_documented() -> None:
    metrics = Metrics()
    names = {family.name for family in metrics.registry.collect()}
    assert names
    for name in names:
        exposed = (
            name
            if name.endswith("_seconds") or "depth" in name or "active" in name
            else (f"{name}_total")
        )
        assert f"`{exposed}`" in DOC, f"{exposed} is not described in docs/operations.md"


def test_every_mongodb_index_is_listed() -> None:
    source = (ROOT / "service" / "store" / "mongo" / "indexes.py").read_text()
    names = set(re.findall(r'name="([a-z_]+)"', source))
    assert names
    for name in names:
        assert f"`{name}`" in DOC, f"MongoDB index {name} is not listed in docs/operations.md"
