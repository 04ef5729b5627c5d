"""Export runs on MongoDB: the ``runs`` collection and its unique indexes.

A run document holds :data:`~service.store.rules.ACTIVE_SLOT_FIELD` (its
export id while the run is active); a partial unique index on it allows one
active run per export and another one dedupe key per run, so concurrent
workers cannot race. Every update that moves a run's status moves the slot in
the same single-document write (no multi-document transactions needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from service.domain import RUN_ERROR_SAMPLE_SIZE, ExportRun, ExportRunStatus, utcnow
from service.store import _run_records as run_rec
from service.store import rules
from service.store._paging import PageRequest, unique_in_order
from service.store.base import ActiveRunExists, NotFound, Page, RunProgress
from service.store.mongo.database import (
    Doc,
    MongoDatabase,
    duplicate_key_field,
    from_mongo,
    to_mongo,
)
from service.store.mongo.ledger import JOURNAL_FIELD, MongoLedger, journal

_SLOT = rules.ACTIVE_SLOT_FIELD
# A run insert that loses to an active run which then finishes at once is retried.
_INSERT_RUN_ATTEMPTS = 3


def _run(doc: Mapping[str, Any]) -> ExportRun:
    return run_rec.run_from_doc(from_mongo(doc))


class MongoRuns(MongoLedger):
    """The run part of :class:`~service.store.mongo.MongoStore`."""

    _db: MongoDatabase

    async def insert_run(self, run: ExportRun) -> None:
        if await self._db["exports"].find_one({"_id": run.export_id}, {"_id": 1}) is None:
            raise NotFound("export", run.export_id)
        doc = to_mongo(run_rec.run_to_doc(run))
        for _ in range(_INSERT_RUN_ATTEMPTS):
            try:
                await self._db["runs"].insert_one(doc)
                return
            except DuplicateKeyError as exc:
                field, error = await self._run_conflict(exc, run.export_id, run.dedupe_key)
                if error is not None:
                    raise error from exc
                if field != _SLOT:
                    raise
        raise ActiveRunExists(run.export_id, "")

    async def _run_conflict(
        self, exc: DuplicateKeyError, export_id: str, dedupe_key: str | None
    ) -> tuple[str, Exception | None]:
        """The refused field and the store error it means; no error when the
        active slot is free again (the caller may try again) or for another index."""
        field = duplicate_key_field(exc)
        active_run_id: str | None = None
        if field == _SLOT:
            # The active run may have finished since: then the slot is free.
            active = await self._db["runs"].find_one({_SLOT: export_id}, {"_id": 1})
            active_run_id = None if active is None else active["_id"]
        error = rules.run_index_refusal(
            field, export_id=export_id, dedupe_key=dedupe_key, active_run_id=active_run_id
        )
        return field, error

    async def get_run(self, run_id: str) -> ExportRun | None:
        doc = await self._db["runs"].find_one({"_id": run_id})
        return None if doc is None else _run(doc)

    async def list_runs(
        self, first: int, after: str | None = None, export_id: str | None = None
    ) -> Page[ExportRun]:
        request = PageRequest(first, after, newest_first=True)
        query: Doc = {} if export_id is None else {"export_id": export_id}
        docs, total = await self._db.page("runs", query, request)
        return request.page([_run(d) for d in docs], total)

    async def latest_runs(self, export_ids: Sequence[str]) -> dict[str, ExportRun]:
        ids = unique_in_order(export_ids)
        if not ids:
            return {}
        # Sorted like by_export_newest_first, so $group's $first can read the index.
        cursor = await self._db["runs"].aggregate(
            [
                {"$match": {"export_id": {"$in": ids}}},
                {"$sort": {"export_id": ASCENDING, "_id": DESCENDING}},
                {"$group": {"_id": "$export_id", "run": {"$first": "$$ROOT"}}},
            ]
        )
        return {doc["_id"]: _run(doc["run"]) async for doc in cursor}

    async def active_run(self, export_id: str) -> ExportRun | None:
        doc = await self._db["runs"].find_one({_SLOT: export_id})
        return None if doc is None else _run(doc)

    async def list_active_runs(self) -> list[ExportRun]:
        cursor = self._db["runs"].find({_SLOT: {"$type": "string"}}).sort("_id", ASCENDING)
        return [_run(d) for d in await cursor.to_list()]

    async def update_run(
        self,
        run_id: str,
        *,
        expected_status: Sequence[ExportRunStatus] | None = None,
        **changes: Any,
    ) -> ExportRun | None:
        values = run_rec.run_changes_to_doc(changes)
        query: Doc = {"_id": run_id}
        if expected_status is not None:
            query["status"] = {"$in": run_rec.status_values(expected_status)}
        runs = self._db["runs"]
        if not values:
            doc = await runs.find_one(query)
            return None if doc is None else _run(doc)
        if rules.changes_move_active_slot(values):
            # The slot follows the status in the same update. The export id is
            # read first; it never changes unless given here.
            current = await runs.find_one({"_id": run_id}, {"export_id": 1, "status": 1})
            if current is None:
                return None
            values[_SLOT] = rules.active_slot_after(values, current)
        try:
            doc = await runs.find_one_and_update(
                query, {"$set": values}, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError as exc:
            current = await runs.find_one({"_id": run_id}, {"export_id": 1})
            export_id = values.get("export_id") or (current or {}).get("export_id", "")
            _, error = await self._run_conflict(exc, export_id, values.get("dedupe_key"))
            raise (error or exc) from exc
        return None if doc is None else _run(doc)

    async def record_run_progress(self, run_id: str, progress: RunProgress) -> ExportRun | None:
        changes, new_errors = run_rec.progress_to_doc(progress)
        ledger = journal(progress.ledger) if progress.ledger else None
        if ledger is not None:
            # Journalled in the run by the same one-document write as the checkpoint.
            changes = {**changes, JOURNAL_FIELD: ledger}
        update: Doc = {"$set": changes}
        if new_errors:
            # $slice with a positive count keeps the first entries: the sample
            # is the first RUN_ERROR_SAMPLE_SIZE errors of the run.
            update["$push"] = {"errors": {"$each": new_errors, "$slice": RUN_ERROR_SAMPLE_SIZE}}
        doc = await self._db["runs"].find_one_and_update(
            {"_id": run_id, "status": ExportRunStatus.RUNNING.value},
            update,
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None and ledger is not None:
            await self.apply_journal(run_id, ledger)
        return None if doc is None else _run(doc)

    async def request_run_cancel(self, run_id: str) -> ExportRun | None:
        runs = self._db["runs"]
        cancelled = await runs.find_one_and_update(
            {"_id": run_id, "status": ExportRunStatus.QUEUED.value},
            {"$set": rules.cancel_queued_run(utcnow())},
            return_document=ReturnDocument.AFTER,
        )
        if cancelled is not None:
            return _run(cancelled)
        # Not queued (any more): a running run is asked to stop; a finished one is left alone.
        asked = await runs.find_one_and_update(
            {"_id": run_id, "status": ExportRunStatus.RUNNING.value},
            {"$set": {"cancel_requested": True}},
            return_document=ReturnDocument.AFTER,
        )
        if asked is not None:
            return _run(asked)
        doc = await runs.find_one({"_id": run_id})
        return None if doc is None else _run(doc)
