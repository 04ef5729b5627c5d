"""Store contract: connections (save, get, list by who may use them, delete)."""

from __future__ import annotations

from dataclasses import replace

from service.domain import ConnectionStatus, ConnectionUsableBy
from service.store.base import Store
from tests.support.records import make_connection


async def test_saved_connection_reads_back_equal(store: Store) -> None:
    connection = make_connection(account_id="fake0account")
    await store.save_connection(connection)

    assert await store.get_connection(connection.id) == connection
    assert await store.get_connection("missing") is None


async def test_a_connections_way_to_connect_reads_back(store: Store) -> None:
    by_key = make_connection(auth_kind="api_key")
    unrecorded = make_connection(auth_kind=None)
    for connection in (by_key, unrecorded):
        await store.save_connection(connection)

    assert (await store.get_connection(by_key.id)) == by_key
    stored = await store.get_connection(unrecorded.id)
    assert stored is not None
    assert stored.auth_kind is None
    changed = replace(by_key, auth_kind="oauth2")
    await store.save_connection(changed)
    assert (await store.get_connection(by_key.id)) == changed


async def test_connection_with_only_required_fields_reads_back_equal(store: Store) -> None:
    connection = make_connection(
        status=ConnectionStatus.PENDING_AUTHORIZATION,
        settings={},
        credentials=None,
        account=None,
        export_user=None,
        data_privacy_accepted_by=None,
        data_privacy_accepted_at=None,
        created_by=None,
    )
    await store.save_connection(connection)

    assert await store.get_connection(connection.id) == connection


async def test_save_connection_replaces_the_connection_with_the_same_id(store: Store) -> None:
    connection = make_connection()
    await store.save_connection(connection)
    changed = replace(
        connection,
        status=ConnectionStatus.NEEDS_REAUTHORIZATION,
        status_message="The refresh token was refused.",
        credentials=None,
    )

    await store.save_connection(changed)

    assert await store.get_connection(connection.id) == changed
    assert (await store.list_connections(10)).total_count == 1


async def test_list_connections_filters_by_who_may_use_them_and_pages(store: Store) -> None:
    admins = [make_connection(usable_by=ConnectionUsableBy.ADMINS) for _ in range(2)]
    everyone = [
        make_connection(usable_by=ConnectionUsableBy.ADMINS_AND_CONTRIBUTORS) for _ in range(3)
    ]
    for connection in admins + everyone:
        await store.save_connection(connection)

    all_page = await store.list_connections(10)
    contributors = await store.list_connections(
        2, usable_by=[ConnectionUsableBy.ADMINS_AND_CONTRIBUTORS]
    )
    rest = await store.list_connections(
        2,
        after=contributors.items[-1].id,
        usable_by=[ConnectionUsableBy.ADMINS_AND_CONTRIBUTORS],
    )
    none_allowed = await store.list_connections(10, usable_by=[])

    assert [c.id for c in all_page.items] == sorted(c.id for c in admins + everyone)
    assert contributors.total_count == 3
    assert contributors.has_next_page
    assert [c.id for c in contributors.items + rest.items] == sorted(c.id for c in everyone)
    assert not rest.has_next_page
    assert none_allowed.items == []
    assert none_allowed.total_count == 0


async def test_delete_connection_says_whether_it_existed(store: Store) -> None:
    connection = make_connection()
    await store.save_connection(connection)

    assert await store.delete_connection(connection.id) is True
    assert await store.delete_connection(connection.id) is False
    assert await store.get_connection(connection.id) is None
