"""``segport import profiles``: JSON Lines and CSV into the real SQLite store, row by row.

A broken row is reported with its line number and reason, and every other row
is imported; segments named in the file are created when missing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from typer.testing import CliRunner

from service.cli import app
from service.domain import Profile, Segment
from service.settings import load_settings
from service.store import open_store


def _read_store(profile_ids: list[str]) -> tuple[dict[str, Profile], dict[str, Segment]]:
    async def read() -> tuple[dict[str, Profile], dict[str, Segment]]:
        store = await open_store(load_settings())
        try:
            profiles = {}
            for profile_id in profile_ids:
                found = await store.get_profile(profile_id)
                if found is not None:
                    profiles[profile_id] = found
            page = await store.list_segments(100)
            return profiles, {segment.name: segment for segment in page.items}
        finally:
            await store.close()

    return asyncio.run(read())


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def test_jsonl_rows_are_imported_with_attributes_and_named_segments(
    cli_env: Path, runner: CliRunner
) -> None:
    source = _write_jsonl(
        cli_env.parent / "profiles.jsonl",
        [
            {
                "id": "p1",
                "attributes": {"email": "ann@example.com", "age": 31},
                "segments": ["VIP"],
            },
            {"id": "p2", "attributes": {"email": "bob@example.com"}, "segments": ["VIP", "New"]},
        ],
    )
    result = runner.invoke(app, ["import", "profiles", str(source)])
    assert result.exit_code == 0, result.output
    assert "rows read: 2, upserted: 2, rejected: 0" in result.stdout
    profiles, segments = _read_store(["p1", "p2"])
    assert set(segments) == {"VIP", "New"}
    assert profiles["p1"].attributes == {"email": "ann@example.com", "age": 31}
    assert profiles["p1"].segment_ids == [segments["VIP"].id]
    assert sorted(profiles["p2"].segment_ids) == sorted([segments["VIP"].id, segments["New"].id])


def test_a_flat_jsonl_object_takes_every_other_key_as_an_attribute(
    cli_env: Path, runner: CliRunner
) -> None:
    source = _write_jsonl(
        cli_env.parent / "flat.jsonl",
        [{"id": "f1", "email": "f@example.com", "city": "Lyon", "segments": ["Flat"]}],
    )
    assert runner.invoke(app, ["import", "profiles", str(source)]).exit_code == 0
    profiles, segments = _read_store(["f1"])
    assert profiles["f1"].attributes == {"email": "f@example.com", "city": "Lyon"}
    assert profiles["f1"].segment_ids == [segments["Flat"].id]


def test_existing_segments_are_reused_by_name_or_by_id(cli_env: Path, runner: CliRunner) -> None:
    first = _write_jsonl(cli_env.parent / "a.jsonl", [{"id": "a1", "segments": ["Loyal"]}])
    assert runner.invoke(app, ["import", "profiles", str(first)]).exit_code == 0
    _, segments = _read_store([])
    loyal_id = segments["Loyal"].id
    second = _write_jsonl(
        cli_env.parent / "b.jsonl",
        [{"id": "b1", "segments": ["Loyal"]}, {"id": "b2", "segments": [loyal_id]}],
    )
    result = runner.invoke(app, ["import", "profiles", str(second)])
    assert "segments created" not in result.stdout
    profiles, segments = _read_store(["b1", "b2"])
    assert list(segments) == ["Loyal"]
    assert profiles["b1"].segment_ids == profiles["b2"].segment_ids == [loyal_id]


def test_segment_option_adds_every_row_to_that_segment(cli_env: Path, runner: CliRunner) -> None:
    source = _write_jsonl(
        cli_env.parent / "p.jsonl", [{"id": "s1"}, {"id": "s2", "segments": ["Own"]}]
    )
    result = runner.invoke(
        app, ["import", "profiles", str(source), "--segment", "Spring sale", "--batch-size", "1"]
    )
    assert result.exit_code == 0, result.output
    profiles, segments = _read_store(["s1", "s2"])
    spring = segments["Spring sale"].id
    assert profiles["s1"].segment_ids == [spring]
    assert profiles["s2"].segment_ids == [segments["Own"].id, spring]


def test_broken_jsonl_rows_are_reported_by_line_and_the_rest_imported(
    cli_env: Path, runner: CliRunner
) -> None:
    source = cli_env.parent / "broken.jsonl"
    source.write_text(
        '{"id": "ok1"}\n'
        "{not json\n"
        '{"attributes": {"a": 1}}\n'
        "\n"
        '{"id": "x", "attributes": [1, 2]}\n'
        '["id", "y"]\n'
        '{"id": "z", "segments": "VIP"}\n'
        '{"id": "ok2", "attributes": {}}\n'
    )
    result = runner.invoke(app, ["import", "profiles", str(source)])
    assert result.exit_code == 1
    assert "rows read: 7, upserted: 2, rejected: 5" in result.stdout
    assert "line 2: invalid JSON" in result.stdout
    assert "line 3: missing id" in result.stdout
    assert "line 5: attributes must be a JSON object, found an array" in result.stdout
    assert "line 6: expected a JSON object, found an array" in result.stdout
    assert "line 7: segments must be an array of strings, found a string" in result.stdout
    profiles, _ = _read_store(["ok1", "ok2", "x", "z"])
    assert set(profiles) == {"ok1", "ok2"}


def test_csv_with_a_broken_row_reports_its_line_and_imports_the_rest(
    cli_env: Path, runner: CliRunner
) -> None:
    source = cli_env.parent / "profiles.csv"
    source.write_text(
        "id,email,first_name,segments\n"
        "c1,ann@example.com,Ann,VIP;Newsletter\n"
        "c2,bob@example.com\n"
        'c3,"cy@example.com","Cy\nthe second",\n'
        ",nobody@example.com,No,\n"
        "c4,dee@example.com,,VIP\n"
    )
    result = runner.invoke(app, ["import", "profiles", str(source)])
    assert result.exit_code == 1
    assert "rows read: 5, upserted: 3, rejected: 2" in result.stdout
    assert "line 3: expected 4 columns as in the header, found 2" in result.stdout
    assert "line 6: missing id" in result.stdout  # the quoted newline makes row 4 two lines
    profiles, segments = _read_store(["c1", "c2", "c3", "c4"])
    assert set(profiles) == {"c1", "c3", "c4"}
    assert profiles["c1"].attributes == {"email": "ann@example.com", "first_name": "Ann"}
    assert profiles["c1"].segment_ids == [segments["VIP"].id, segments["Newsletter"].id]
    assert profiles["c3"].attributes["first_name"] == "Cy\nthe second"
    assert profiles["c3"].segment_ids == []
    # empty cells are omitted, not stored as ""
    assert profiles["c4"].attributes == {"email": "dee@example.com"}


def test_csv_without_an_id_column_is_refused_naming_the_columns(
    cli_env: Path, runner: CliRunner
) -> None:
    source = cli_env.parent / "noid.csv"
    source.write_text("email,name\na@example.com,A\n")
    result = runner.invoke(app, ["import", "profiles", str(source)])
    assert result.exit_code == 2
    assert "no 'id' column (found: email, name)" in result.stderr


def test_only_twenty_reasons_are_listed_but_every_rejection_is_counted(
    cli_env: Path, runner: CliRunner
) -> None:
    source = cli_env.parent / "many.jsonl"
    source.write_text('{"id": "good"}\n' + '{"no": "id"}\n' * 25)
    result = runner.invoke(app, ["import", "profiles", str(source)])
    assert result.exit_code == 1
    assert "rejected: 25" in result.stdout
    assert result.stdout.count(": missing id") == 20
    assert "line 21: missing id" in result.stdout
    assert "line 22: missing id" not in result.stdout
    assert "... and 5 more rejected rows" in result.stdout


def test_an_empty_file_imports_nothing_and_says_so(cli_env: Path, runner: CliRunner) -> None:
    source = cli_env.parent / "empty.jsonl"
    source.write_text("\n")
    result = runner.invoke(app, ["import", "profiles", str(source)])
    assert result.exit_code == 2
    assert "no profiles found" in result.stderr


def test_an_unknown_extension_is_refused_naming_it(cli_env: Path, runner: CliRunner) -> None:
    source = cli_env.parent / "profiles.xlsx"
    source.write_text("whatever")
    result = runner.invoke(app, ["import", "profiles", str(source)])
    assert result.exit_code == 2
    assert "'.xlsx'" in result.stderr


def test_a_missing_file_is_named(cli_env: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["import", "profiles", str(cli_env.parent / "absent.csv")])
    assert result.exit_code == 2
    assert "absent.csv' does not exist" in result.stderr
