"""Named mutual-exclusion locks: in-process (embedded) or Redis (shared by every worker).

The OAuth token refresh takes ``lock(f"refresh:{connection_id}")`` so that two
processes never spend the same rotating refresh token. A Redis lock holds a
random token (only its owner can release it) and expires after ``timeout``
seconds, so a crashed holder cannot block the others for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import structlog
from redis.exceptions import LockError, LockNotOwnedError

from service.coordination.redis import RedisClient

log = structlog.get_logger(__name__)

KEY_PREFIX = "segport:lock:"
DEFAULT_TIMEOUT = 60.0


class LockTimeout(Exception):
    """The lock could not be taken within the allowed wait."""

    def __init__(self, name: str, wait: float) -> None:
        super().__init__(f"lock {name!r} was not free within {wait:g} seconds")
        self.name = name
        self.wait = wait


class Locks(Protocol):
    def lock(
        self, name: str, timeout: float = DEFAULT_TIMEOUT, *, wait: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Hold the lock ``name`` inside the ``async with`` block.

        ``timeout``: the longest the lock is held before it expires on its own
        (Redis; a holder in this process always releases it). ``wait``: the
        longest to wait for it, raising :class:`LockTimeout`; None waits as long
        as it takes.
        """
        ...


class MemoryLocks:
    """asyncio locks by name, for one process; a name's lock is dropped when unused."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def lock(
        self, name: str, timeout: float = DEFAULT_TIMEOUT, *, wait: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        # In one process a holder always releases, so ``timeout`` (a lease) has no use.
        return self._held(name, wait)

    @asynccontextmanager
    async def _held(self, name: str, wait: float | None) -> AsyncIterator[None]:
        lock, users = self._locks.get(name, (asyncio.Lock(), 0))
        self._locks[name] = (lock, users + 1)
        try:
            try:
                async with asyncio.timeout(wait):
                    await lock.acquire()
            except TimeoutError:
                raise LockTimeout(name, wait or 0.0) from None
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[name]
            if users == 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)


class RedisLocks:
    """Locks in Redis (``SET NX PX`` with a random token), shared by every process."""

    def __init__(self, redis: RedisClient, *, poll_interval: float = 0.05) -> None:
        self._redis = redis
        self._poll_interval = poll_interval

    def lock(
        self, name: str, timeout: float = DEFAULT_TIMEOUT, *, wait: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        return self._held(name, timeout, wait)

    @asynccontextmanager
    async def _held(self, name: str, lease: float, wait: float | None) -> AsyncIterator[None]:
        # A new Lock object per use: redis-py keeps the token on the object, and
        # thread_local=False keeps tasks of one thread from sharing it.
        lock = self._redis.lock(
            KEY_PREFIX + name,
            timeout=lease,
            sleep=self._poll_interval,
            blocking_timeout=wait,
            thread_local=False,
        )
        if not await lock.acquire():
            raise LockTimeout(name, wait or 0.0)
        try:
            yield
        finally:
            try:
                await lock.release()
            except (LockNotOwnedError, LockError):
                # It expired while held (the work outlived ``timeout``): someone else
                # may have entered; say so rather than hide it.
                log.warning("lock_expired_while_held", lock=name, timeout=lease)


def make_locks(redis: RedisClient | None) -> Locks:
    """Redis locks when a client is given, in-process ones otherwise."""
    return RedisLocks(redis) if redis is not None else MemoryLocks()


__all__ = ["LockTimeout", "Locks", "MemoryLocks", "RedisLocks", "make_locks"]
