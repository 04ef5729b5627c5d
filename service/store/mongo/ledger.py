"""Export ledgers on MongoDB: the ``ledgers`` and ``ledger_entries`` collections.

MongoDB writes one document atomically, and the mongoeco test server (like a
standalone mongod) has no multi-document transactions. So a run's ledger changes
are journalled in the run document by the same single-document write that stores
the checkpoint (``ledger_journal``), then applied to the entries, then the journal is
cleared. Applying is idempotent; a process that dies in between leaves the journal,
which the next reader of the export's ledger applies first (:meth:`MongoLedger.settle_ledger`).
Entries use one-letter field names: a million of them are tens of MB.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from bson import Binary
from pymongo import ASCENDING, DeleteOne, UpdateMany, UpdateOne

from service.store._records import pack_key_ids, unpack_key_ids
from service.store.base import (
    LedgerChanges,
    LedgerDigest,
    LedgerEntry,
    LedgerOutcome,
    LedgerReset,
    LedgerState,
)
from service.store.mongo.database import Doc, MongoDatabase

STANDING_PART = 1_000_000
"""Key ids per document of a kept list standing (8 MB, under the 16 MB limit)."""

JOURNAL_FIELD = "ledger_journal"
"""The field of a run document that holds ledger changes not yet applied."""


def journal(changes: LedgerChanges) -> Doc:
    """The run-document form of ``changes`` (with a token, so clearing it is exact)."""
    return {
        "token": secrets.token_hex(8),
        "export_id": changes.export_id,
        "run_no": changes.run_no,
        "sent": [[key_id, sealed, fp] for key_id, sealed, fp in changes.sent],
        "removed": list(changes.removed),
        "removal_failed": list(changes.removal_failed),
        "marked": [[key_id, outcome.value] for key_id, outcome in changes.marked],
        "forget_run": changes.forget_run,
    }


class MongoLedger:
    """The ledger part of :class:`~service.store.mongo.MongoStore`."""

    _db: MongoDatabase

    async def settle_ledger(self, export_id: str) -> None:
        """Apply the journals that runs of ``export_id`` left unapplied."""
        left = self._db["runs"].find(
            {"export_id": export_id, JOURNAL_FIELD: {"$exists": True}}, {JOURNAL_FIELD: 1}
        )
        async for doc in left:
            await self.apply_journal(str(doc["_id"]), doc[JOURNAL_FIELD])

    async def apply_journal(self, run_id: str, entry: Mapping[str, Any]) -> None:
        export_id, run_no = str(entry["export_id"]), int(entry["run_no"])
        entries = self._db["ledger_entries"]
        if entry.get("forget_run"):
            await entries.update_many({"e": export_id, "r": run_no}, {"$set": {"f": 0}})
        sent = LedgerOutcome.SENT.value
        ops: list[Any] = [
            UpdateOne(
                {"e": export_id, "k": int(key_id)},
                {"$set": {"s": Binary(bytes(sealed)), "f": int(fp), "o": sent, "r": run_no}},
                upsert=True,
            )
            for key_id, sealed, fp in entry.get("sent", [])
        ]
        ops += [
            UpdateMany(
                {"e": export_id, "k": int(key)},
                {"$set": {"o": LedgerOutcome.REMOVAL_FAILED.value, "r": run_no}},
            )
            for key in entry.get("removal_failed", [])
        ]
        ops += [
            UpdateMany({"e": export_id, "k": int(key)}, {"$set": {"o": int(outcome)}})
            for key, outcome in entry.get("marked", [])
        ]
        ops += [DeleteOne({"e": export_id, "k": int(k)}) for k in entry.get("removed", [])]
        if ops:
            await entries.bulk_write(ops, ordered=True)
        await self._db["runs"].update_one(
            {"_id": run_id, f"{JOURNAL_FIELD}.token": entry["token"]},
            {"$unset": {JOURNAL_FIELD: ""}},
        )

    async def ledger_state(self, export_id: str) -> LedgerState | None:
        await self.settle_ledger(export_id)
        doc = await self._db["ledgers"].find_one({"_id": export_id})
        return None if doc is None else _state(doc)

    async def start_ledger(
        self, export_id: str, run_id: str, basis: Mapping[str, Any], reset: LedgerReset
    ) -> LedgerState:
        await self.settle_ledger(export_id)
        ledgers = self._db["ledgers"]
        doc = await ledgers.find_one({"_id": export_id})
        if doc is None:
            new = {"_id": export_id, "basis": dict(basis), "run_id": run_id, "run_no": 1}
            await ledgers.replace_one({"_id": export_id}, new, upsert=True)
            return _state(new)
        if doc.get("run_id") == run_id:
            return _state(doc)
        await self._forget_list_standing(export_id)
        entries = self._db["ledger_entries"]
        if reset is LedgerReset.CLEAR:
            await entries.delete_many({"e": export_id})
        elif reset is LedgerReset.FORGET_FINGERPRINTS:
            await entries.update_many({"e": export_id}, {"$set": {"f": 0}})
        run_no = int(doc["run_no"]) + 1
        await ledgers.update_one(
            {"_id": export_id},
            {"$set": {"basis": dict(basis), "run_id": run_id, "run_no": run_no}},
        )
        return LedgerState(dict(basis), run_id, run_no)

    async def ledger_entries(
        self, export_id: str, key_ids: Sequence[int]
    ) -> dict[int, LedgerEntry]:
        if not key_ids:
            return {}
        cursor = self._db["ledger_entries"].find(
            {"e": export_id, "k": {"$in": [int(k) for k in key_ids]}}, _FIELDS
        )
        return {int(doc["k"]): _entry(doc) async for doc in cursor}

    async def iter_ledger(
        self, export_id: str, *, after_key_id: int | None = None, batch_size: int = 1000
    ) -> AsyncIterator[list[LedgerEntry]]:
        after = after_key_id
        while True:
            query: Doc = {"e": export_id}
            if after is not None:
                query["k"] = {"$gt": after}
            docs = (
                await self._db["ledger_entries"]
                .find(query, _FIELDS)
                .sort("k", ASCENDING)
                .limit(batch_size)
                .to_list()
            )
            if not docs:
                return
            yield [_entry(doc) for doc in docs]
            if len(docs) < batch_size:
                return
            after = docs[-1]["k"]

    async def iter_ledger_digest(
        self, export_id: str, *, batch_size: int = 10_000
    ) -> AsyncIterator[LedgerDigest]:
        after: int | None = None
        while True:
            query: Doc = {"e": export_id}
            if after is not None:
                query["k"] = {"$gt": after}
            docs = (
                await self._db["ledger_entries"]
                .find(query, {"_id": 0, "k": 1, "f": 1, "o": 1})
                .sort("k", ASCENDING)
                .limit(batch_size)
                .to_list()
            )
            if not docs:
                return
            yield LedgerDigest(
                [int(d["k"]) for d in docs],
                [int(d["f"]) for d in docs],
                [int(d["o"]) for d in docs],
            )
            if len(docs) < batch_size:
                return
            after = int(docs[-1]["k"])

    async def count_ledger(self, export_id: str) -> int:
        return int(await self._db["ledger_entries"].count_documents({"e": export_id}))

    async def keep_list_standing(self, export_id: str, run_no: int, key_ids: Sequence[int]) -> None:
        if await self._db["ledgers"].find_one({"_id": export_id}, {"_id": 1}) is None:
            raise ValueError(f"export {export_id!r} has no ledger to keep a standing for")
        await self._forget_list_standing(export_id)
        # Parts under MongoDB's 16 MB document limit, each naming how many there are: a
        # write that stopped part way is seen as none (list_standing checks the count).
        parts = [key_ids[i : i + STANDING_PART] for i in range(0, len(key_ids), STANDING_PART)]
        docs = [
            {
                "_id": f"{export_id}/{run_no}/{number}",
                "e": export_id,
                "r": run_no,
                "p": number,
                "n": max(len(parts), 1),
                "k": Binary(pack_key_ids(part)),
            }
            for number, part in enumerate(parts or [[]])
        ]
        await self._db["ledger_standings"].insert_many(docs, ordered=True)

    async def list_standing(self, export_id: str, run_no: int) -> list[int] | None:
        cursor = self._db["ledger_standings"].find({"e": export_id, "r": run_no}).sort("p", 1)
        docs = [doc async for doc in cursor]
        if not docs or len(docs) != int(docs[0]["n"]):
            return None
        key_ids: list[int] = []
        for doc in docs:
            key_ids += unpack_key_ids(bytes(doc["k"]))
        return key_ids

    async def _forget_list_standing(self, export_id: str) -> None:
        await self._db["ledger_standings"].delete_many({"e": export_id})


_FIELDS = {"_id": 0, "k": 1, "s": 1, "f": 1, "o": 1, "r": 1}


def _entry(doc: Mapping[str, Any]) -> LedgerEntry:
    outcome = LedgerOutcome(int(doc["o"]))
    return LedgerEntry(int(doc["k"]), bytes(doc["s"]), int(doc["f"]), outcome, int(doc["r"]))


def _state(doc: Mapping[str, Any]) -> LedgerState:
    return LedgerState(dict(doc["basis"]), doc.get("run_id"), int(doc["run_no"]))
