"""The importer module on its own: batching, progress and the re-import of a profile."""

from __future__ import annotations

from pathlib import Path

import orjson

from service.settings import Settings
from service.store import open_store
from service.store.importer import ProfileImporter


async def test_rows_across_many_batches_are_all_written_and_progress_reaches_the_file_size(
    tmp_path: Path,
) -> None:
    source = tmp_path / "p.jsonl"
    source.write_bytes(
        b"".join(orjson.dumps({"id": f"p{n:03}", "n": n}) + b"\n" for n in range(25))
    )
    seen: list[int] = []
    store = await open_store(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    try:
        summary = await ProfileImporter(store, batch_size=4, on_progress=seen.append).import_file(
            source
        )
        assert (summary.rows_read, summary.upserted, summary.rejected) == (25, 25, 0)
        assert seen[-1] == source.stat().st_size
        assert seen == sorted(seen)
        last = await store.get_profile("p024")
        assert last is not None
        assert last.attributes == {"n": 24}
    finally:
        await store.close()


async def test_importing_a_profile_again_replaces_its_attributes_and_segments(
    tmp_path: Path,
) -> None:
    store = await open_store(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    try:
        first = tmp_path / "first.jsonl"
        first.write_text('{"id": "p1", "attributes": {"a": 1, "b": 2}, "segments": ["Old"]}\n')
        second = tmp_path / "second.jsonl"
        second.write_text('{"id": "p1", "attributes": {"a": 3}, "segments": ["New"]}\n')
        await ProfileImporter(store).import_file(first)
        summary = await ProfileImporter(store).import_file(second)
        assert summary.segments_created == ["New"]
        profile = await store.get_profile("p1")
        assert profile is not None
        assert profile.attributes == {"a": 3}
        [new] = [s for s in (await store.list_segments(10)).items if s.name == "New"]
        assert profile.segment_ids == [new.id]
    finally:
        await store.close()


async def test_integer_ids_are_kept_as_text(tmp_path: Path) -> None:
    store = await open_store(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    try:
        source = tmp_path / "ints.jsonl"
        source.write_text('{"id": 42, "email": "x@example.com"}\n{"id": true}\n')
        summary = await ProfileImporter(store).import_file(source)
        assert summary.upserted == 1
        assert [(r.line, r.reason) for r in summary.rejections] == [
            (2, "id must be a string, found a boolean")
        ]
        assert await store.get_profile("42") is not None
    finally:
        await store.close()
