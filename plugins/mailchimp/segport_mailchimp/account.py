"""What a connection reads from the account: audiences and their merge fields."""

from __future__ import annotations

from dataclasses import dataclass

from segport_mailchimp.fields import MergeField
from segport_mailchimp.transport import ApiTransport

PAGE = 1000
"""Items per page of the lists and merge-fields calls (their maximum)."""


@dataclass(frozen=True, slots=True)
class Audience:
    list_id: str
    name: str
    member_count: int | None


async def audiences(transport: ApiTransport) -> list[Audience]:
    """Every audience of the account (``GET /lists``, paged)."""
    found = await transport.pages("/lists", "lists", count=PAGE)
    return [
        Audience(
            list_id=str(item.get("id", "")),
            name=str(item.get("name", "")),
            member_count=(item.get("stats") or {}).get("member_count"),
        )
        for item in found
    ]


async def merge_fields(transport: ApiTransport, list_id: str) -> list[MergeField]:
    """The audience's merge fields (``GET /lists/{id}/merge-fields``, paged)."""
    found = await transport.pages(f"/lists/{list_id}/merge-fields", "merge_fields", count=PAGE)
    return [MergeField.from_json(item) for item in found if item.get("tag")]
