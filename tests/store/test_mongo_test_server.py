"""The MongoDB test server helper fails loudly, with instructions, when it cannot start."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.mongo_wire import MongoTestServerUnavailable, start_mongo_wire_server


def test_a_missing_mongo_interpreter_fails_with_instructions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no-python-here"
    monkeypatch.setenv("SEGPORT_TEST_MONGO_PYTHON", str(missing))

    with pytest.raises(MongoTestServerUnavailable) as raised:
        start_mongo_wire_server()

    message = str(raised.value)
    assert str(missing) in message
    assert "SEGPORT_TEST_MONGODB_URL" in message
    assert "mongoeco[wire]" in message


def test_an_interpreter_without_mongoeco_fails_with_its_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The test process's own Python 3.11 has no mongoeco.
    import sys

    monkeypatch.setenv("SEGPORT_TEST_MONGO_PYTHON", sys.executable)

    with pytest.raises(MongoTestServerUnavailable) as raised:
        start_mongo_wire_server()

    assert "mongoeco" in str(raised.value)
