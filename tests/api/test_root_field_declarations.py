"""The schema refuses to build when the permission table and the root fields disagree."""

from __future__ import annotations

import pytest

from service.access.permissions import Action
from service.api import schema
from service.api.permissions import ROOT_FIELD_ACTIONS


def test_a_root_field_without_a_declared_action_fails_the_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = {k: v for k, v in ROOT_FIELD_ACTIONS.items() if k != "Mutation.runExport"}
    monkeypatch.setattr(schema, "ROOT_FIELD_ACTIONS", table)

    with pytest.raises(schema.UndeclaredRootField, match=r"root field Mutation\.runExport needs"):
        schema.create_schema()


def test_a_declared_action_for_no_root_field_fails_the_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = {**ROOT_FIELD_ACTIONS, "Query.removedLongAgo": Action.READ}
    monkeypatch.setattr(schema, "ROOT_FIELD_ACTIONS", table)

    with pytest.raises(schema.UndeclaredRootField, match=r"no root field Query\.removedLongAgo"):
        schema.create_schema()
