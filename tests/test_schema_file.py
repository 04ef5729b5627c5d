"""The committed schema.graphql is the code's schema (clients and CI rely on it)."""

from pathlib import Path

from service.api.schema import export_sdl

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_committed_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == export_sdl(), (
        "schema.graphql differs from the code's schema; "
        "run `segport export-schema > schema.graphql` and commit it"
    )
