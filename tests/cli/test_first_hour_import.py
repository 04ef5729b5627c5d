"""``segport import profiles`` accounts for every line of real files: each is imported or
rejected with its number; a file with no rows is unusable (exit status 2)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

import service.store.importer
from service.cli import app
from service.domain import Profile
from service.settings import load_settings
from service.store import open_store


def _stored(profile_ids: list[str]) -> dict[str, Profile]:
    async def read() -> dict[str, Profile]:
        store = await open_store(load_settings())
        try:
            found = {pid: await store.get_profile(pid) for pid in profile_ids}
            return {pid: profile for pid, profile in found.items() if profile is not None}
        finally:
            await store.close()

    return asyncio.run(read())


def _segment_names() -> list[str]:
    async def read() -> list[str]:
        store = await open_store(load_settings())
        try:
            return [segment.name for segment in (await store.list_segments(100)).items]
        finally:
            await store.close()

    return asyncio.run(read())


def _import(runner: CliRunner, path: Path, content: bytes, *options: str) -> tuple[int, str, str]:
    path.write_bytes(content)
    result = runner.invoke(app, ["import", "profiles", str(path), *options])
    return result.exit_code, result.stdout, result.stderr


# -- CSV: an unclosed quote takes no line with it -----------------------------------------


def test_an_unclosed_quote_on_line_3_rejects_it_and_the_next_row_is_still_imported(
    cli_env: Path, runner: CliRunner
) -> None:
    code, out, _ = _import(
        runner,
        cli_env.parent / "quote.csv",
        b'id,email,name\nc1,ann@example.com,Ann\nc2,"bob@example.com,Bob\nc3,cy@example.com,Cy\n',
    )
    assert code == 1
    assert "rows read: 3, upserted: 2, rejected: 1" in out
    assert "line 3: unclosed quote" in out
    assert "line 4 is read again as a row" in out
    assert set(_stored(["c1", "c2", "c3"])) == {"c1", "c3"}


def test_an_unclosed_quote_in_the_last_column_does_not_swallow_the_rows_after_it(
    cli_env: Path, runner: CliRunner
) -> None:
    # The swallowing row would have had the header's three columns: no count gives it away.
    code, out, _ = _import(
        runner,
        cli_env.parent / "last.csv",
        b'id,email,name\nc1,a@example.com,"Ann\nc2,b@example.com,Bob\nc3,c@example.com,Cy\n',
    )
    assert code == 1
    assert "rows read: 3, upserted: 2, rejected: 1" in out
    assert "line 2: unclosed quote" in out
    assert "lines 3-4 are read again as rows" in out
    assert set(_stored(["c1", "c2", "c3"])) == {"c2", "c3"}


def test_a_quote_closed_rows_later_with_the_wrong_columns_gives_those_rows_back(
    cli_env: Path, runner: CliRunner
) -> None:
    code, out, _ = _import(
        runner,
        cli_env.parent / "late.csv",
        b"id,email,name\n"
        b'c1,a@example.com,"Ann\nAnnie"\n'  # a real two-line cell: kept
        b'c2,"b@example.com\n'  # opens a quote ...
        b'c3,c@example.com,"Cy"\n'  # ... that the first quote here closes
        b"c4,d@example.com,Dee\n",
    )
    assert code == 1
    assert "rows read: 4, upserted: 3, rejected: 1" in out
    assert "line 4: expected 3 columns as in the header, found 2" in out
    assert "line 5 is read again as a row" in out
    stored = _stored(["c1", "c2", "c3", "c4"])
    assert set(stored) == {"c1", "c3", "c4"}
    assert stored["c1"].attributes["name"] == "Ann\nAnnie"
    assert stored["c3"].attributes["name"] == "Cy"


def test_a_stray_quote_closing_just_before_more_text_gives_the_rows_back(
    cli_env: Path, runner: CliRunner
) -> None:
    # Two columns either way: only the text right after the closing quote gives it away.
    code, out, _ = _import(
        runner,
        cli_env.parent / "stray.csv",
        b'id,email\nd1,"d1@example.com\nd2,d2@example.com\nd3,"d3"@example.com\n',
    )
    assert code == 1
    assert "line 2: a quoted cell opened on this line closes on line 4 inside a cell" in out
    assert "lines 3-4 are read again as rows" in out
    assert set(_stored(["d1", "d2", "d3"])) == {"d2", "d3"}


def test_rows_with_a_line_break_in_a_quoted_cell_are_counted_with_their_lines(
    cli_env: Path, runner: CliRunner
) -> None:
    code, out, _ = _import(
        runner,
        cli_env.parent / "notes.csv",
        b'id,note\nn1,"two\nlines"\nn2,one line\nn3,"three\nlines\nhere"\n',
    )
    assert code == 0
    assert "rows read: 3, upserted: 3, rejected: 0" in out
    assert "rows with a line break in a quoted cell: 2 (lines 2-3, 5-7)" in out
    assert _stored(["n3"])["n3"].attributes == {"note": "three\nlines\nhere"}


def test_a_quote_open_past_the_most_lines_a_row_may_span_gives_the_lines_back(
    cli_env: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.store.importer, "MAX_ROW_LINES", 3)
    rows = b"".join(b"r%d,r%d@example.com\n" % (n, n) for n in range(2, 8))
    code, out, _ = _import(
        runner, cli_env.parent / "long.csv", b'id,email\nr1,"open\n' + rows + b'closed"\n'
    )
    assert code == 1
    assert "line 2: unclosed quote: a quoted cell opened on this line runs past 3 lines" in out
    assert set(_stored([f"r{n}" for n in range(1, 8)])) == {f"r{n}" for n in range(2, 8)}
    assert "line 9: " in out  # the stray closing quote's line, on its own: rejected


def test_a_line_that_is_not_utf8_is_rejected_and_the_lines_after_it_imported(
    cli_env: Path, runner: CliRunner
) -> None:
    code, out, _ = _import(
        runner,
        cli_env.parent / "latin1.csv",
        b"id,name\nu1,Ren\xe9\nu2,Zo\xc3\xab\nu3,Ann\n",
    )
    assert code == 1
    assert "rows read: 3, upserted: 2, rejected: 1" in out
    assert "line 2: not UTF-8 text (byte 0xe9)" in out
    stored = _stored(["u1", "u2", "u3"])
    assert set(stored) == {"u2", "u3"}
    assert stored["u2"].attributes == {"name": "Zoë"}


def test_every_line_is_imported_or_rejected_by_its_number(cli_env: Path, runner: CliRunner) -> None:
    lines = [
        b"id,email",
        b"a1,a1@example.com",
        b'a2,"a2@example.com',
        b"a3,a3@example.com",
        b"a4,a4@example.com,extra",
        b'a5,"a5@example.com"',
        b"a6,a6@\xff",
        b'a7,"a7@example.com',
    ]
    code, out, _ = _import(runner, cli_env.parent / "mixed.csv", b"\n".join(lines) + b"\n")
    rejected = {int(line.split()[1].rstrip(":")) for line in out.splitlines() if "  line " in line}
    imported = {int(pid[1:]) + 1 for pid in _stored([f"a{n}" for n in range(1, 8)])}
    assert code == 1
    assert rejected == {3, 5, 7, 8}
    assert imported == {2, 4, 6}
    assert rejected | imported == set(range(2, len(lines) + 1))


# -- files with no rows ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("blank.jsonl", b"\n"),
        ("empty.jsonl", b""),
        ("blank-lines.jsonl", b"\n  \n\n"),
        ("header-only.csv", b"id,email\n"),
        ("empty.csv", b""),
    ],
)
def test_a_file_with_no_rows_exits_2_as_documented(
    cli_env: Path, runner: CliRunner, name: str, content: bytes
) -> None:
    code, out, err = _import(runner, cli_env.parent / name, content, "--segment", "Spring")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2
    assert len(errors) == 1, err
    assert name in errors[0]
    assert "Traceback" not in err
    assert "rows read" not in out
    assert "Spring" not in _segment_names(), "an empty file makes no segment"


# -- JSON Lines: a cut line names the line ------------------------------------------------


def test_a_truncated_json_line_is_named_by_its_line_not_column_1(
    cli_env: Path, runner: CliRunner
) -> None:
    code, out, _ = _import(
        runner,
        cli_env.parent / "cut.jsonl",
        b'{"id": "j1"}\n{"id": "j2", "email": "j2@exa\n{"id": "j3"\n{"id": "j4"}\n{"id": "j5", ',
    )
    assert code == 1
    assert "rows read: 5, upserted: 2, rejected: 3" in out
    for line in (2, 3, 5):
        assert f"line {line}: invalid JSON: the line ends before the JSON value does" in out
    assert "column 1" not in out
    assert set(_stored(["j1", "j2", "j3", "j4", "j5"])) == {"j1", "j4"}


def test_an_error_inside_a_json_line_names_its_column_on_that_line(
    cli_env: Path, runner: CliRunner
) -> None:
    code, out, _ = _import(
        runner, cli_env.parent / "bad.jsonl", b'{"id": "j1"}\r\n{"id": "j2"}, 5\r\n'
    )
    assert code == 1
    assert "line 2: invalid JSON: unexpected content after document at column 13" in out
