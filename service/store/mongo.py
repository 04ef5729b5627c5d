"""The distributed store: MongoDB through PyMongo's native asyncio client.

Collections mirror the SQLite tables. Every id is the document ``_id``, so
cursor pagination is a range on ``_id``. Profiles carry their ``segment_ids``
array; a multikey index on ``(segment_ids, _id)`` makes "members of these
segments after profile X, by id" one index scan (MongoDB merges the ranges
of several segments and returns a profile once). The one-active-run rule and
dedupe keys are partial unique indexes, so concurrent workers cannot race.
Nothing here needs multi-document transactions (a standalone server works).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConfigurationError, DuplicateKeyError

from service.domain import (
    ACTIVE_RUN_STATUSES,
    RUN_ERROR_SAMPLE_SIZE,
    Connection,
    ConnectionUsableBy,
    Export,
    ExportRun,
    ExportRunStatus,
    OAuthState,
    Profile,
    RefreshSchedule,
    ScheduleMode,
    Segment,
    utcnow,
)
from service.store import _records as rec
from service.store._paging import check_first, page_from_rows, unique_in_order
from service.store.base import ActiveRunExists, DuplicateRun, NotFound, Page, RunProgress

Doc = dict[str, Any]

DEFAULT_DATABASE = "segport"
_REFRESH_SCHEDULE_ID = "refresh_schedule"
# Expired OAuth states are kept a day (like the SQLite store), so a late
# callback is told "expired" rather than "unknown".
_OAUTH_STATE_GRACE_SECONDS = 86_400
# A run insert that loses to an active run which then finishes at once is retried.
_INSERT_RUN_ATTEMPTS = 3


def _to_mongo(doc: Doc, key: str = "id") -> Doc:
    doc["_id"] = doc.pop(key)
    return doc


def _from_mongo(doc: Mapping[str, Any], key: str = "id") -> Doc:
    plain = dict(doc)
    plain[key] = plain.pop("_id")
    return plain


def _segment(doc: Mapping[str, Any]) -> Segment:
    plain = _from_mongo(doc)
    plain.pop("name_folded", None)
    return rec.segment_from_doc(plain)


def _export(doc: Mapping[str, Any]) -> Export:
    plain = _from_mongo(doc)
    plain.pop("display_name_folded", None)
    return rec.export_from_doc(plain)


def _connection(doc: Mapping[str, Any]) -> Connection:
    return rec.connection_from_doc(_from_mongo(doc))


def _run(doc: Mapping[str, Any]) -> ExportRun:
    plain = _from_mongo(doc)
    plain.pop("active_export_id", None)
    return rec.run_from_doc(plain)


def _active_export_id(status: str, export_id: str) -> str | None:
    return export_id if ExportRunStatus(status) in ACTIVE_RUN_STATUSES else None


def _contains(search: str) -> Doc:
    """A filter value matching names that contain ``search`` (compared case-folded)."""
    return {"$regex": re.escape(search.casefold())}


def _id_after(after: str | None, *, newest_first: bool = False) -> Doc:
    if after is None:
        return {}
    return {"_id": {"$lt" if newest_first else "$gt": after}}


def _duplicate_key_field(exc: DuplicateKeyError) -> str:
    """Which unique index refused a write: from the server's key pattern, else its message."""
    details = exc.details or {}
    pattern = details.get("keyPattern") or details.get("keyValue") or {}
    if pattern:
        return str(next(iter(pattern)))
    message = str(exc)
    for field in ("active_export_id", "dedupe_key", "name"):
        if field in message:
            return field
    return "_id"


class MongoStore:
    """The :class:`~service.store.base.Store` on a MongoDB database."""

    def __init__(self, url: str, *, write_batch_size: int, timeout_ms: int) -> None:
        if write_batch_size < 1:
            raise ValueError(f"write_batch_size must be at least 1, got {write_batch_size}")
        if timeout_ms < 1:
            raise ValueError(f"timeout_ms must be at least 1, got {timeout_ms}")
        self._url = url
        self._write_batch_size = write_batch_size
        self._timeout_ms = timeout_ms
        self._client: AsyncMongoClient[Doc] | None = None
        self._db: AsyncDatabase[Doc] | None = None
        # Attribute names this process has already recorded: skip re-writing them.
        self._known_attributes: set[str] = set()

    # -- lifecycle -------------------------------------------------------
    async def open(self) -> None:
        if self._client is not None:
            return
        try:
            client: AsyncMongoClient[Doc] = AsyncMongoClient(
                self._url,
                tz_aware=True,
                serverSelectionTimeoutMS=self._timeout_ms,
                connectTimeoutMS=self._timeout_ms,
                appname="segport",
            )
        except (ValueError, ConfigurationError) as exc:  # InvalidURI is a ConfigurationError
            # The URL itself is not repeated: it may hold a password.
            raise ValueError(f"SEGPORT_DATABASE_URL is not a usable MongoDB URL: {exc}") from exc
        self._client = client
        self._db = client.get_default_database(default=DEFAULT_DATABASE)
        try:
            await self._create_indexes()
        except BaseException:
            await self.close()
            raise

    async def _create_indexes(self) -> None:
        await self._c("profiles").create_index(
            [("segment_ids", ASCENDING), ("_id", ASCENDING)], name="members_by_segment"
        )
        await self._c("segments").create_index("name", unique=True, name="unique_name")
        await self._c("connections").create_index(
            [("usable_by", ASCENDING), ("_id", ASCENDING)], name="by_usable_by"
        )
        await self._c("exports").create_index(
            [("connection_id", ASCENDING), ("_id", ASCENDING)], name="by_connection"
        )
        runs = self._c("runs")
        await runs.create_index(
            [("export_id", ASCENDING), ("_id", DESCENDING)], name="by_export_newest_first"
        )
        await runs.create_index(
            "active_export_id",
            unique=True,
            partialFilterExpression={"active_export_id": {"$type": "string"}},
            name="one_active_run_per_export",
        )
        await runs.create_index(
            "dedupe_key",
            unique=True,
            partialFilterExpression={"dedupe_key": {"$type": "string"}},
            name="unique_dedupe_key",
        )
        await self._c("oauth_states").create_index(
            "expires_at", expireAfterSeconds=_OAUTH_STATE_GRACE_SECONDS, name="expire"
        )
        await self._c("claims").create_index("expires_at", expireAfterSeconds=0, name="expire")

    async def close(self) -> None:
        client, self._client, self._db = self._client, None, None
        if client is not None:
            await client.close()

    async def ping(self) -> None:
        await self._database().command("ping")

    def _database(self) -> AsyncDatabase[Doc]:
        if self._db is None:
            raise RuntimeError("the MongoDB store is not open (call open() first)")
        return self._db

    def _c(self, name: str) -> AsyncCollection[Doc]:
        return self._database()[name]

    async def _page(
        self,
        collection: str,
        query: Doc,
        first: int,
        after: str | None,
        *,
        newest_first: bool = False,
    ) -> tuple[list[Doc], int]:
        check_first(first)
        coll = self._c(collection)
        total = await coll.count_documents(query)
        docs = await (
            coll.find({**query, **_id_after(after, newest_first=newest_first)})
            .sort("_id", DESCENDING if newest_first else ASCENDING)
            .limit(first + 1)
            .to_list()
        )
        return docs, total

    async def _by_ids(self, collection: str, ids: Sequence[str]) -> list[Doc]:
        wanted = unique_in_order(ids)
        if not wanted:
            return []
        docs = await self._c(collection).find({"_id": {"$in": wanted}}).to_list()
        by_id = {doc["_id"]: doc for doc in docs}
        return [by_id[i] for i in wanted if i in by_id]

    # -- segments --------------------------------------------------------
    async def save_segment(self, segment: Segment) -> None:
        doc = _to_mongo(rec.segment_to_doc(segment))
        doc["name_folded"] = segment.name.casefold()
        try:
            await self._c("segments").replace_one({"_id": segment.id}, doc, upsert=True)
        except DuplicateKeyError as exc:
            if _duplicate_key_field(exc) != "name":
                raise
            raise ValueError(
                f"segment name {segment.name!r} is already used by another segment"
            ) from exc

    async def get_segment(self, segment_id: str) -> Segment | None:
        doc = await self._c("segments").find_one({"_id": segment_id})
        return None if doc is None else _segment(doc)

    async def get_segments(self, segment_ids: Sequence[str]) -> list[Segment]:
        return [_segment(d) for d in await self._by_ids("segments", segment_ids)]

    async def list_segments(
        self, first: int, after: str | None = None, search: str | None = None
    ) -> Page[Segment]:
        query: Doc = {"name_folded": _contains(search)} if search else {}
        docs, total = await self._page("segments", query, first, after)
        return page_from_rows([_segment(d) for d in docs], first, total, after)

    async def count_segment_members(self, segment_ids: Sequence[str]) -> int:
        ids = unique_in_order(segment_ids)
        if not ids:
            return 0
        # A profile is one document, so counting documents counts each once.
        return await self._c("profiles").count_documents({"segment_ids": {"$in": ids}})

    # -- profiles --------------------------------------------------------
    async def upsert_profiles(self, profiles: Sequence[Profile]) -> int:
        checked = [profile for profile, _ in rec.checked_profiles(profiles)]
        coll = self._c("profiles")
        for start in range(0, len(checked), self._write_batch_size):
            batch = checked[start : start + self._write_batch_size]
            await coll.bulk_write(
                [
                    ReplaceOne(
                        {"_id": p.id},
                        {"attributes": p.attributes, "segment_ids": p.segment_ids},
                        upsert=True,
                    )
                    for p in batch
                ],
                ordered=False,
            )
            await self._record_attribute_names({n for p in batch for n in p.attributes})
        return len(checked)

    async def _record_attribute_names(self, names: set[str]) -> None:
        new = sorted(names - self._known_attributes)
        if not new:
            return
        await self._c("profile_attributes").bulk_write(
            [UpdateOne({"_id": n}, {"$setOnInsert": {"name": n}}, upsert=True) for n in new],
            ordered=False,
        )
        self._known_attributes.update(new)

    async def get_profile(self, profile_id: str) -> Profile | None:
        doc = await self._c("profiles").find_one({"_id": profile_id})
        if doc is None:
            return None
        return Profile(doc["_id"], doc["attributes"], doc["segment_ids"])

    async def profile_attribute_names(self) -> list[str]:
        docs = await self._c("profile_attributes").find({}, {"_id": 1}).sort("_id", 1).to_list()
        return [d["_id"] for d in docs]

    async def iter_segment_members(
        self,
        segment_ids: Sequence[str],
        *,
        after_profile_id: str | None = None,
        batch_size: int = 5000,
    ) -> AsyncIterator[list[Profile]]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        ids = unique_in_order(segment_ids)
        if not ids:
            return
        membership: Any = ids[0] if len(ids) == 1 else {"$in": ids}
        coll = self._c("profiles")
        after = after_profile_id
        while True:
            query: Doc = {"segment_ids": membership, **_id_after(after)}
            # One bounded query per batch (not one long cursor): nothing stays
            # open between batches, however slowly the destination consumes them.
            docs = await (
                coll.find(query, batch_size=batch_size)
                .sort("_id", ASCENDING)
                .limit(batch_size)
                .to_list()
            )
            batch = [Profile(d["_id"], d["attributes"], d["segment_ids"]) for d in docs]
            if batch:
                yield batch
            if len(batch) < batch_size:
                return
            after = batch[-1].id

    # -- connections -----------------------------------------------------
    async def save_connection(self, connection: Connection) -> None:
        doc = _to_mongo(rec.connection_to_doc(connection))
        await self._c("connections").replace_one({"_id": connection.id}, doc, upsert=True)

    async def get_connection(self, connection_id: str) -> Connection | None:
        doc = await self._c("connections").find_one({"_id": connection_id})
        return None if doc is None else _connection(doc)

    async def list_connections(
        self,
        first: int,
        after: str | None = None,
        usable_by: Sequence[ConnectionUsableBy] | None = None,
    ) -> Page[Connection]:
        query: Doc = {}
        if usable_by is not None:
            query["usable_by"] = {"$in": [ConnectionUsableBy(u).value for u in usable_by]}
        docs, total = await self._page("connections", query, first, after)
        return page_from_rows([_connection(d) for d in docs], first, total, after)

    async def delete_connection(self, connection_id: str) -> bool:
        result = await self._c("connections").delete_one({"_id": connection_id})
        return result.deleted_count > 0

    # -- exports ---------------------------------------------------------
    async def save_export(self, export: Export) -> None:
        doc = _to_mongo(rec.export_to_doc(export))
        doc["display_name_folded"] = export.display_name.casefold()
        await self._c("exports").replace_one({"_id": export.id}, doc, upsert=True)

    async def get_export(self, export_id: str) -> Export | None:
        doc = await self._c("exports").find_one({"_id": export_id})
        return None if doc is None else _export(doc)

    async def get_exports(self, export_ids: Sequence[str]) -> list[Export]:
        return [_export(d) for d in await self._by_ids("exports", export_ids)]

    async def list_exports(
        self,
        first: int,
        after: str | None = None,
        search: str | None = None,
        connection_ids: Sequence[str] | None = None,
    ) -> Page[Export]:
        query: Doc = {}
        if search:
            query["display_name_folded"] = _contains(search)
        if connection_ids is not None:
            query["connection_id"] = {"$in": unique_in_order(connection_ids)}
        docs, total = await self._page("exports", query, first, after)
        return page_from_rows([_export(d) for d in docs], first, total, after)

    async def export_ids_using_connection(self, connection_id: str) -> list[str]:
        docs = (
            await self._c("exports")
            .find({"connection_id": connection_id}, {"_id": 1})
            .sort("_id", ASCENDING)
            .to_list()
        )
        return [d["_id"] for d in docs]

    async def detach_exports(self, connection_id: str, now: datetime) -> int:
        result = await self._c("exports").update_many(
            {"connection_id": connection_id},
            {"$set": {"connection_id": None, "updated_at": rec.as_utc(now)}},
        )
        return result.matched_count

    async def delete_export(self, export_id: str) -> bool:
        # The export goes first: insert_run checks the export exists, so once it
        # is gone no new run can appear for it; then its runs are removed.
        result = await self._c("exports").delete_one({"_id": export_id})
        await self._c("runs").delete_many({"export_id": export_id})
        return result.deleted_count > 0

    async def list_scheduled_exports(self) -> list[Export]:
        docs = (
            await self._c("exports")
            .find(
                {"schedule.mode": {"$ne": ScheduleMode.OFF.value}, "connection_id": {"$ne": None}}
            )
            .sort("_id", ASCENDING)
            .to_list()
        )
        return [_export(d) for d in docs]

    # -- runs ------------------------------------------------------------
    async def insert_run(self, run: ExportRun) -> None:
        if await self._c("exports").find_one({"_id": run.export_id}, {"_id": 1}) is None:
            raise NotFound("export", run.export_id)
        doc = _to_mongo(rec.run_to_doc(run))
        doc["active_export_id"] = _active_export_id(doc["status"], run.export_id)
        for _ in range(_INSERT_RUN_ATTEMPTS):
            try:
                await self._c("runs").insert_one(doc)
                return
            except DuplicateKeyError as exc:
                error = await self._run_conflict(exc, run.export_id, run.dedupe_key)
                if error is not None:
                    raise error from exc
        raise ActiveRunExists(run.export_id, "")

    async def _run_conflict(
        self, exc: DuplicateKeyError, export_id: str, dedupe_key: str | None
    ) -> Exception | None:
        """The store error for a unique-index refusal on ``runs``; None to try again."""
        field = _duplicate_key_field(exc)
        if field == "dedupe_key" and dedupe_key is not None:
            return DuplicateRun(dedupe_key)
        if field == "active_export_id":
            active = await self._c("runs").find_one({"active_export_id": export_id}, {"_id": 1})
            # The active run may have finished since: then the caller may try again.
            return None if active is None else ActiveRunExists(export_id, active["_id"])
        return exc

    async def get_run(self, run_id: str) -> ExportRun | None:
        doc = await self._c("runs").find_one({"_id": run_id})
        return None if doc is None else _run(doc)

    async def list_runs(
        self, first: int, after: str | None = None, export_id: str | None = None
    ) -> Page[ExportRun]:
        query: Doc = {} if export_id is None else {"export_id": export_id}
        docs, total = await self._page("runs", query, first, after, newest_first=True)
        return page_from_rows([_run(d) for d in docs], first, total, after)

    async def latest_runs(self, export_ids: Sequence[str]) -> dict[str, ExportRun]:
        ids = unique_in_order(export_ids)
        if not ids:
            return {}
        # Sorted like by_export_newest_first, so $group's $first can read the index.
        cursor = await self._c("runs").aggregate(
            [
                {"$match": {"export_id": {"$in": ids}}},
                {"$sort": {"export_id": ASCENDING, "_id": DESCENDING}},
                {"$group": {"_id": "$export_id", "run": {"$first": "$$ROOT"}}},
            ]
        )
        return {doc["_id"]: _run(doc["run"]) async for doc in cursor}

    async def active_run(self, export_id: str) -> ExportRun | None:
        doc = await self._c("runs").find_one({"active_export_id": export_id})
        return None if doc is None else _run(doc)

    async def list_active_runs(self) -> list[ExportRun]:
        docs = (
            await self._c("runs")
            .find({"active_export_id": {"$type": "string"}})
            .sort("_id", ASCENDING)
            .to_list()
        )
        return [_run(d) for d in docs]

    async def update_run(
        self,
        run_id: str,
        *,
        expected_status: Sequence[ExportRunStatus] | None = None,
        **changes: Any,
    ) -> ExportRun | None:
        values = rec.run_changes_to_doc(changes)
        query: Doc = {"_id": run_id}
        if expected_status is not None:
            query["status"] = {"$in": [ExportRunStatus(s).value for s in expected_status]}
        runs = self._c("runs")
        if not values:
            doc = await runs.find_one(query)
            return None if doc is None else _run(doc)
        if "status" in values or "export_id" in values:
            # The active-run slot follows the status in the same update. The
            # export id is read first; it never changes unless given here.
            current = await runs.find_one({"_id": run_id}, {"export_id": 1, "status": 1})
            if current is None:
                return None
            export_id = values.get("export_id") or current["export_id"]
            status = str(values.get("status") or current["status"])
            values["active_export_id"] = _active_export_id(status, export_id)
        try:
            doc = await runs.find_one_and_update(
                query, {"$set": values}, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError as exc:
            current = await runs.find_one({"_id": run_id}, {"export_id": 1})
            export_id = values.get("export_id") or (current or {}).get("export_id", "")
            error = await self._run_conflict(exc, export_id, values.get("dedupe_key"))
            raise (error or exc) from exc
        return None if doc is None else _run(doc)

    async def record_run_progress(self, run_id: str, progress: RunProgress) -> ExportRun | None:
        changes: Doc = {
            "counts": rec.counts_to_doc(progress.counts),
            "progress": float(progress.progress),
            "checkpoint": dict(progress.checkpoint),
        }
        if progress.message is not None:
            changes["message"] = progress.message
        update: Doc = {"$set": changes}
        if progress.new_errors:
            # $slice with a positive count keeps the first entries: the sample
            # is the first RUN_ERROR_SAMPLE_SIZE errors of the run.
            update["$push"] = {
                "errors": {
                    "$each": [rec.error_to_doc(e) for e in progress.new_errors],
                    "$slice": RUN_ERROR_SAMPLE_SIZE,
                }
            }
        doc = await self._c("runs").find_one_and_update(
            {"_id": run_id, "status": ExportRunStatus.RUNNING.value},
            update,
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _run(doc)

    async def request_run_cancel(self, run_id: str) -> ExportRun | None:
        runs = self._c("runs")
        cancelled = await runs.find_one_and_update(
            {"_id": run_id, "status": ExportRunStatus.QUEUED.value},
            {
                "$set": {
                    "status": ExportRunStatus.CANCELLED.value,
                    "cancel_requested": True,
                    "finished_at": utcnow(),
                    "message": "Cancelled before it started.",
                    "active_export_id": None,
                }
            },
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

    # -- oauth states ----------------------------------------------------
    async def save_oauth_state(self, state: OAuthState) -> None:
        doc = _to_mongo(rec.oauth_state_to_doc(state), key="state")
        await self._c("oauth_states").replace_one({"_id": state.state}, doc, upsert=True)

    async def consume_oauth_state(self, state: str) -> OAuthState | None:
        doc = await self._c("oauth_states").find_one_and_delete({"_id": state})
        return None if doc is None else rec.oauth_state_from_doc(_from_mongo(doc, key="state"))

    # -- refresh schedule & small key/value -----------------------------
    async def get_refresh_schedule(self) -> RefreshSchedule:
        doc = await self._c("settings").find_one({"_id": _REFRESH_SCHEDULE_ID})
        return RefreshSchedule() if doc is None else rec.refresh_schedule_from_doc(doc)

    async def save_refresh_schedule(self, schedule: RefreshSchedule) -> None:
        doc = rec.refresh_schedule_to_doc(schedule)
        await self._c("settings").replace_one({"_id": _REFRESH_SCHEDULE_ID}, doc, upsert=True)

    async def claim_once(self, key: str, expires_at: datetime) -> bool:
        claims = self._c("claims")
        doc = {"_id": key, "expires_at": rec.as_utc(expires_at)}
        try:
            await claims.insert_one(doc)
            return True
        except DuplicateKeyError:
            pass
        # The TTL monitor removes expired claims only every minute or so: an
        # expired one is taken over here, atomically, by whoever deletes it.
        expired = await claims.delete_one({"_id": key, "expires_at": {"$lte": utcnow()}})
        if expired.deleted_count == 0:
            return False
        try:
            await claims.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False
