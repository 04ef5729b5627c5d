"""Fixtures for the command-line tests: a clean ``SEGPORT_*`` environment on a temporary SQLite
database, and typer's runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Embedded mode on ``<tmp>/segport.db``; returns the database path."""
    for name in list(os.environ):
        if name.startswith("SEGPORT_"):
            monkeypatch.delenv(name)
    database = tmp_path / "segport.db"
    monkeypatch.setenv("SEGPORT_DATABASE_URL", f"sqlite:///{database}")
    return database


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
