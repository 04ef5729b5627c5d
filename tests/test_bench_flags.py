"""The two benchmark scripts take the same flags for the row count (issue 10, item 26).

Only their argument parsing is exercised: benchmarks never run inside the tests.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = ("export.py", "export_mailchimp.py", "import_profiles.py")


def load(script: str) -> ModuleType:
    # The scripts import each other as run from bench/ (``python bench/x.py``).
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{Path(script).stem}", BENCH / script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row_count(script: str, argv: list[str]) -> int:
    args = load(script).parse_arguments(argv)
    # Each script keeps its own attribute name; the flags are what is shared.
    count = args.rows if script == "import_profiles.py" else args.profiles
    assert isinstance(count, int)
    return count


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("flag", ["-n", "--rows", "--profiles"])
def test_every_script_takes_every_name_of_the_row_count(script: str, flag: str) -> None:
    assert row_count(script, [flag, "1234"]) == 1234


def test_the_defaults_stay() -> None:
    assert row_count("export.py", []) == 1_000_000
    assert row_count("import_profiles.py", []) == 100_000
    assert load("import_profiles.py").parse_arguments(["--batch-size", "50"]).batch_size == 50
