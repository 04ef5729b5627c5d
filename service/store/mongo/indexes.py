"""The MongoDB indexes: made on open (idempotent), each named for the rule it serves."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from service.store import rules

# Only runs holding a slot (a string, not None) are in the one-active-run index.
_HOLDS_SLOT = {rules.ACTIVE_SLOT_FIELD: {"$type": "string"}}


async def create_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    await db["profiles"].create_index(
        [("segment_ids", ASCENDING), ("_id", ASCENDING)], name="members_by_segment"
    )
    await db["segments"].create_index("name", unique=True, name="unique_name")
    await db["connections"].create_index(
        [("usable_by", ASCENDING), ("_id", ASCENDING)], name="by_usable_by"
    )
    await db["exports"].create_index(
        [("connection_id", ASCENDING), ("_id", ASCENDING)], name="by_connection"
    )
    runs = db["runs"]
    await runs.create_index(
        [("export_id", ASCENDING), ("_id", DESCENDING)], name="by_export_newest_first"
    )
    await runs.create_index(
        rules.ACTIVE_SLOT_FIELD,
        unique=True,
        partialFilterExpression=_HOLDS_SLOT,
        name="one_active_run_per_export",
    )
    await runs.create_index(
        rules.DEDUPE_KEY_FIELD,
        unique=True,
        partialFilterExpression={rules.DEDUPE_KEY_FIELD: {"$type": "string"}},
        name="unique_dedupe_key",
    )
    # Expired states stay for the grace period, then MongoDB's TTL monitor removes them.
    await db["oauth_states"].create_index(
        "expires_at",
        expireAfterSeconds=int(rules.OAUTH_STATE_GRACE.total_seconds()),
        name="expire",
    )
    await db["ledger_entries"].create_index(
        [("e", ASCENDING), ("k", ASCENDING)], unique=True, name="entry_by_export_key"
    )
    await db["ledger_entries"].create_index(
        [("e", ASCENDING), ("r", ASCENDING)], name="entries_by_export_run"
    )
    await db["ledger_standings"].create_index(
        [("e", ASCENDING), ("r", ASCENDING), ("p", ASCENDING)], name="standing_by_export_run"
    )
    await db["claims"].create_index("expires_at", expireAfterSeconds=0, name="expire")
