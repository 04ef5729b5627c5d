"""The per-operation GraphQL context: the services, the request and who is calling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from service import domain
from service.access.auth import AuthenticationError, Principal
from service.access.permissions import Action, allows
from service.api.errors import forbidden
from service.core import Services


@dataclass
class RequestContext:
    services: Services
    request: Request | WebSocket
    response: Response | WebSocket | None
    request_id: str
    connection_params: dict[str, Any] | None = None
    """Set by strawberry from the websocket ``connection_init`` payload."""
    _principal: Principal | None = field(default=None, repr=False)
    _connections: dict[str, domain.Connection | None] = field(default_factory=dict, repr=False)
    _refresh_schedule: domain.RefreshSchedule | None = field(default=None, repr=False)
    segments: DataLoader[str, domain.Segment | None] = field(init=False, repr=False)
    """Segments by id, batched: a page of exports reads their segments in one query."""
    last_runs: DataLoader[str, domain.ExportRun | None] = field(init=False, repr=False)
    """Each export's newest run, batched the same way."""

    def __post_init__(self) -> None:
        self.segments = DataLoader(load_fn=self._load_segments)
        self.last_runs = DataLoader(load_fn=self._load_last_runs)

    async def _load_segments(self, ids: list[str]) -> list[domain.Segment | None]:
        found = {s.id: s for s in await self.services.store.get_segments(ids)}
        return [found.get(i) for i in ids]

    async def _load_last_runs(self, export_ids: list[str]) -> list[domain.ExportRun | None]:
        latest = await self.services.store.latest_runs(export_ids)
        return [latest.get(i) for i in export_ids]

    def authorization(self) -> str | None:
        """The ``Bearer ...`` string: the HTTP header, or ``connectionParams.Authorization``."""
        if isinstance(self.request, Request):
            return self.request.headers.get("authorization")
        params = self.connection_params or {}
        value = params.get("Authorization", params.get("authorization"))
        return value if isinstance(value, str) else None

    async def authenticate(self) -> Principal:
        """Verify the caller's token once per operation; raises AuthenticationError."""
        if self._principal is None:
            self._principal = await self.services.verifier.verify(self.authorization())
        return self._principal

    @property
    def principal(self) -> Principal:
        """The verified caller (the Authentication extension ran before any resolver)."""
        if self._principal is None:
            raise AuthenticationError("not authenticated")
        return self._principal

    def require(self, action: Action) -> Principal:
        """The caller, when one of their roles allows ``action``; a FORBIDDEN error otherwise."""
        principal = self.principal
        if not allows(principal, action):
            raise forbidden(action.value)
        return principal

    async def load_connection(self, connection_id: str) -> domain.Connection | None:
        """A connection by raw id, read once per operation (exports in a page share few)."""
        if connection_id not in self._connections:
            self._connections[connection_id] = await self.services.store.get_connection(
                connection_id
            )
        return self._connections[connection_id]

    async def load_refresh_schedule(self) -> domain.RefreshSchedule:
        """The system refresh schedule, read once per operation (every export follows it)."""
        if self._refresh_schedule is None:
            self._refresh_schedule = await self.services.store.get_refresh_schedule()
        return self._refresh_schedule

    def forget_connection(self, connection_id: str) -> None:
        """Drop the memo after a mutation changed the connection."""
        self._connections.pop(connection_id, None)


Info: TypeAlias = strawberry.Info[RequestContext, None]
