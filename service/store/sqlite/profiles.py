"""Profiles on SQLite: ``profiles``, their ``segment_members`` rows and ``profile_attributes``."""

# ruff: noqa: S608

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache, partial
from typing import Any

import orjson

from service.domain import Profile
from service.store import _records as rec
from service.store import rules
from service.store.sqlite.codec import json_text
from service.store.sqlite.database import SQLiteDatabase
from service.store.sqlite.queries import in_first_column_order, marks

# SQLite caps compound SELECTs at 500 terms; above this many segments the
# member query scans memberships in profile-id order instead of merging ranges.
MAX_MERGED_SEGMENTS = 200


class SQLiteProfiles(rules.KeysetSegmentMembers):
    """The profile part of :class:`~service.store.sqlite.SQLiteStore`."""

    _db: SQLiteDatabase
    _write_batch_size: int

    async def upsert_profiles(self, profiles: Sequence[Profile]) -> int:
        checked = rec.checked_profiles(profiles)
        for batch in rules.in_batches(checked, self._write_batch_size):
            await self._db.write(partial(_write_profiles, batch=batch))
        return len(checked)

    async def get_profile(self, profile_id: str) -> Profile | None:
        row = await self._db.read(
            lambda conn: conn.execute(
                "SELECT id, attributes, segment_ids FROM profiles WHERE id = ?", (profile_id,)
            ).fetchone()
        )
        if row is None:
            return None
        return Profile(row[0], orjson.loads(row[1]), orjson.loads(row[2]))

    async def profile_attribute_names(self) -> list[str]:
        rows = await self._db.read(
            lambda conn: conn.execute(
                "SELECT name FROM profile_attributes ORDER BY name"
            ).fetchall()
        )
        return [r[0] for r in rows]

    async def _read_member_batch(
        self, segment_ids: list[str], after: str | None, limit: int
    ) -> list[Profile]:
        sql = _members_sql(len(segment_ids))
        params = _members_params(segment_ids, after, limit)
        # Only SQLite's own work on the reader thread (it runs without the GIL); the batch
        # is decoded here. Decoding there too made the reader compete for the GIL with
        # the run mapping the previous batch, which cost both about twice their time.
        columns = await self._db.read(partial(_fetch_columns, sql=sql, params=params))
        return _profiles(columns)


# -- run on the writer thread ---------------------------------------------------


def _write_profiles(conn: sqlite3.Connection, batch: Sequence[tuple[Profile, str]]) -> None:
    profile_rows: list[tuple[str, str, str]] = []
    member_rows: list[tuple[str, str]] = []
    names: set[str] = set()
    for profile, attributes in batch:
        profile_rows.append((profile.id, attributes, json_text(profile.segment_ids)))
        member_rows.extend((segment_id, profile.id) for segment_id in profile.segment_ids)
        names.update(profile.attributes)
    # The memberships this batch replaces, per segment, before they are replaced: the
    # counts move by the difference, in the same transaction (writes are serialized, so
    # the counts stay exact whoever writes at the same time).
    changes: Counter[str] = Counter(segment_id for segment_id, _ in member_rows)
    for segment_id, members in conn.execute(
        "SELECT segment_id, COUNT(*) FROM segment_members "
        "WHERE profile_id IN (SELECT value FROM json_each(?)) GROUP BY segment_id",
        (json_text([p.id for p, _ in batch]),),
    ):
        changes[segment_id] -= members
    conn.executemany(
        "INSERT INTO profiles (id, attributes, segment_ids) VALUES (?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET attributes = excluded.attributes, "
        "segment_ids = excluded.segment_ids",
        profile_rows,
    )
    # Replace the memberships: a profile is in exactly the segments it was last given.
    conn.executemany(
        "DELETE FROM segment_members WHERE profile_id = ?", [(p.id,) for p, _ in batch]
    )
    conn.executemany(
        "INSERT INTO segment_members (segment_id, profile_id) VALUES (?, ?)", member_rows
    )
    conn.executemany(
        "INSERT OR IGNORE INTO profile_attributes (name) VALUES (?)", [(n,) for n in names]
    )
    conn.executemany(
        "INSERT INTO segment_member_counts (segment_id, members) VALUES (?, ?) "
        "ON CONFLICT(segment_id) DO UPDATE SET members = members + excluded.members",
        [(segment_id, change) for segment_id, change in changes.items() if change],
    )


# -- segment members, run on the reader thread ---------------------------------


@lru_cache(maxsize=32)
def _members_sql(segment_count: int) -> str:
    """The query for one batch of members: ``(after, limit)`` parameters per segment range."""
    if segment_count == 1:
        ids = (
            "SELECT profile_id FROM segment_members WHERE segment_id = ? AND profile_id > ? "
            "ORDER BY profile_id LIMIT ?"
        )
    elif segment_count <= MAX_MERGED_SEGMENTS:
        # One index range per segment, each cut at the batch size, merged and de-duplicated.
        one = (
            "SELECT profile_id FROM (SELECT profile_id FROM segment_members "
            "WHERE segment_id = ? AND profile_id > ? ORDER BY profile_id LIMIT ?)"
        )
        ids = " UNION ".join([one] * segment_count) + " ORDER BY 1 LIMIT ?"
    else:
        ids = (
            "SELECT DISTINCT profile_id FROM segment_members INDEXED BY segment_members_by_profile "
            f"WHERE profile_id > ? AND segment_id IN ({marks(segment_count)}) "
            "ORDER BY profile_id LIMIT ?"
        )
    rows = (
        "SELECT p.id AS id, p.attributes AS attributes, p.segment_ids AS segment_ids FROM "
        f"({ids}) AS m JOIN profiles AS p ON p.id = m.profile_id ORDER BY p.id"
    )
    # The batch as one row of three JSON arrays (the ids, the attribute objects and the
    # segment lists, in the same order): SQLite makes it in one step, without the GIL.
    # Row by row, the reader thread took the GIL back after every row's step; against a
    # run mapping on the event loop, each of those waits was long (a 1M run's reads took
    # six times their own time, and the run waited for them).
    return (
        "SELECT json_group_array(id), '[' || group_concat(attributes, ',') || ']', "
        f"'[' || group_concat(segment_ids, ',') || ']' FROM ({rows})"
    )


def _members_params(segment_ids: list[str], after: str | None, limit: int) -> list[Any]:
    # '' sorts before every non-empty id, so "after nothing" is "after ''".
    start = after if after is not None else ""
    if len(segment_ids) == 1:
        return [segment_ids[0], start, limit]
    if len(segment_ids) <= MAX_MERGED_SEGMENTS:
        params: list[Any] = []
        for segment_id in segment_ids:
            params.extend((segment_id, start, limit))
        params.append(limit)
        return params
    return [start, *segment_ids, limit]


def _fetch_columns(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any]
) -> tuple[str, str | None, str | None]:
    columns: tuple[str, str | None, str | None] = conn.execute(sql, params).fetchone()
    return columns


def _profiles(columns: tuple[str, str | None, str | None]) -> list[Profile]:
    """The batch's profiles from its three JSON arrays: three parses in C, and no Python
    per row but making the ``Profile``."""
    ids_text, attributes_text, segments_text = columns
    if attributes_text is None or segments_text is None:
        return []  # no rows: group_concat gives NULL
    loads = orjson.loads
    # A batch (and where the next one starts) must be in id order.
    ids, attributes, segments = in_first_column_order(
        loads(ids_text), loads(attributes_text), loads(segments_text)
    )
    return list(map(Profile, ids, attributes, segments))
