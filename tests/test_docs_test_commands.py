"""The documented test commands work on anyone's checkout (issue 10, item 26): no path of
one machine, and the extras they need are said next to them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_README = ROOT / "plugins" / "constant_contact" / "README.md"
PLUGINS_GUIDE = ROOT / "docs" / "plugins.md"

ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:work|home|Users|root|opt|srv|tmp)/\S*")


def section(text: str, heading: str) -> str:
    """The Markdown section under ``heading`` (up to the next heading of any level)."""
    start = text.index(heading)
    following = re.search(r"^#{1,6} ", text[start + len(heading) :], flags=re.MULTILINE)
    end = start + len(heading) + following.start() if following else len(text)
    return text[start:end]


def test_the_plugin_readme_names_no_path_of_one_machine() -> None:
    text = PLUGIN_README.read_text()

    assert ABSOLUTE_PATH.findall(text) == []
    tests = section(text, "## Tests")
    assert ".venv/bin/pytest plugins/constant_contact/tests" in tests
    assert "pip install -e '.[test]' -e plugins/constant_contact" in tests


def test_the_plugin_guide_says_its_test_command_needs_the_test_extras() -> None:
    tests = section(PLUGINS_GUIDE.read_text(), "## Testing a plugin")

    assert ABSOLUTE_PATH.findall(tests) == []
    assert ".venv/bin/pytest tests/plugins -q" in tests
    assert "'.[test]'" in tests
    assert "tests/plugins/toy_destination" in tests
