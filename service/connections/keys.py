"""Encryption key rotation: re-encrypt every stored connection's credentials with the current key.

How a rotation goes (docs/operations.md, "Rotating keys"):

1. Deploy with ``SEGPORT_ENCRYPTION_KEY="NEW,OLD"``: new writes use NEW, reads
   accept both (MultiFernet, see :mod:`service.access.crypto`).
2. Run ``segport rotate-keys`` once (:func:`rotate_credentials`).
3. Deploy with ``SEGPORT_ENCRYPTION_KEY="NEW"``.

A connection a run found unreadable (the old key removed too early, see
:data:`~service.connections.credentials.UNDECRYPTABLE_MESSAGE`) is CONNECTED
again once the rotation, run with the old key restored, re-encrypts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from service.access.crypto import CredentialCipher, CredentialDecryptionError
from service.connections.credentials import UNDECRYPTABLE_MESSAGE
from service.coordination.locks import Locks
from service.domain import ConnectionStatus, utcnow
from service.store.base import Store

log = structlog.get_logger(__name__)

PAGE_SIZE = 200
ROTATION_LOCK_LEASE = 90.0
"""Seconds the per-connection lock lives if we die holding it."""


def refresh_lock_name(connection_id: str) -> str:
    """The lock token refreshes hold (service.connections.credentials): rotation must not race them,
    or a refresh token saved meanwhile would be overwritten by the older one."""
    return f"refresh:{connection_id}"


@dataclass(slots=True)
class RotationReport:
    rotated: int = 0
    failed: list[str] = field(default_factory=list)
    """Ids of connections whose credentials no configured key decrypts."""


class KeyRotationError(Exception):
    """Some stored credentials could not be decrypted with any configured key."""

    def __init__(self, report: RotationReport) -> None:
        super().__init__(
            f"rotated {report.rotated} connection(s), but {len(report.failed)} could not be "
            f"decrypted with any key in SEGPORT_ENCRYPTION_KEY (connection ids: "
            f"{', '.join(report.failed)}); add the key they were written with and run again"
        )
        self.report = report


async def rotate_credentials(store: Store, cipher: CredentialCipher, locks: Locks) -> int:
    """Re-encrypt every connection's credentials with ``cipher``'s first key.

    Returns how many connections were rewritten. Connections without
    credentials are left alone. Each connection is rotated under its token
    refresh lock and re-read inside it, so a concurrent refresh is never undone.
    Raises :class:`KeyRotationError` (after rotating all the others) when some
    credentials cannot be decrypted with any configured key.
    """
    report = RotationReport()
    after: str | None = None
    while True:
        page = await store.list_connections(PAGE_SIZE, after)
        for listed in page.items:
            if listed.credentials is None:
                continue
            async with locks.lock(refresh_lock_name(listed.id), ROTATION_LOCK_LEASE):
                connection = await store.get_connection(listed.id)
                if connection is None or connection.credentials is None:
                    continue
                try:
                    connection.credentials = cipher.rotate(connection.credentials)
                except CredentialDecryptionError:
                    report.failed.append(connection.id)
                    log.error("credentials_rotation_failed", connection_id=connection.id)
                    continue
                if (
                    connection.status is ConnectionStatus.NEEDS_REAUTHORIZATION
                    and connection.status_message == UNDECRYPTABLE_MESSAGE
                ):
                    # It was marked only because no key opened its credentials; with the
                    # key restored they are readable again, and so is the connection.
                    connection.status = ConnectionStatus.CONNECTED
                    connection.status_message = None
                    connection.updated_at = utcnow()
                    log.info("connection_credentials_readable_again", connection_id=connection.id)
                # Otherwise updated_at stays: re-encryption is not an edit anyone made.
                await store.save_connection(connection)
                report.rotated += 1
        if not page.has_next_page or not page.items:
            break
        after = page.items[-1].id
    log.info("credentials_rotated", rotated=report.rotated, failed=len(report.failed))
    if report.failed:
        raise KeyRotationError(report)
    return report.rotated
