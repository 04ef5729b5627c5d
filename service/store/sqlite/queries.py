"""Query builders the SQLite aggregates share; each runs on a database thread.

SQL text here and in the aggregate modules is assembled only from the
package's own table and column names and ``?`` or ``:name`` placeholders;
every value is a bound parameter.
"""

# ruff: noqa: S608

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from service.store._paging import PageRequest
from service.store.sqlite.codec import decode

Params = Sequence[Any] | Mapping[str, Any]


def fetch_docs(conn: sqlite3.Connection, sql: str, params: Params = ()) -> list[dict[str, Any]]:
    """Every row ``sql`` returns, decoded as a document."""
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [decode(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


def fetch_doc(conn: sqlite3.Connection, sql: str, params: Params = ()) -> dict[str, Any] | None:
    """The first row ``sql`` returns as a document, or None."""
    docs = fetch_docs(conn, sql, params)
    return docs[0] if docs else None


def in_first_column_order(*columns: list[Any]) -> tuple[list[Any], ...]:
    """Parallel columns (one value per row in each) with their rows in the order of the
    first column's values, as they come from aggregates (``json_group_array``,
    ``group_concat``) over an ordered subquery: an aggregate takes its rows in the
    subquery's order, which SQLite does not promise. The first column's values must be
    unique; rows already in order are returned as they are."""
    first = columns[0]
    if first == sorted(first):
        return columns
    rows = sorted(zip(*columns, strict=True), key=itemgetter(0))
    return tuple(list(column) for column in zip(*rows, strict=True))


def marks(count: int) -> str:
    """``count`` positional placeholders, for ``IN (...)``."""
    return ", ".join("?" * count)


def upsert_sql(table: str, columns: Iterable[str], key: str = "id") -> str:
    """Insert a row with named parameters, or replace every other column on ``key``."""
    names = list(columns)
    quoted = ", ".join(f'"{n}"' for n in names)
    placeholders = ", ".join(f":{n}" for n in names)
    updates = ", ".join(f'"{n}" = excluded."{n}"' for n in names if n != key)
    return (
        f"INSERT INTO {table} ({quoted}) VALUES ({placeholders}) "
        f"ON CONFLICT({key}) DO UPDATE SET {updates}"
    )


def fetch_by_ids(conn: sqlite3.Connection, table: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of ``table`` whose id is among ``ids`` (in no particular order)."""
    if not ids:
        return []
    return fetch_docs(conn, f"SELECT * FROM {table} WHERE id IN ({marks(len(ids))})", ids)


def page_query(
    conn: sqlite3.Connection,
    table: str,
    where: Sequence[str],
    params: Sequence[Any],
    request: PageRequest,
) -> tuple[list[dict[str, Any]], int]:
    """``request.limit`` rows after the cursor, and how many rows match in all.

    ``where`` holds conditions joined by AND (none: every row), ``params`` their values.
    """
    conditions = list(where) or ["1 = 1"]
    total = conn.execute(
        f"SELECT COUNT(*) FROM {table} WHERE {' AND '.join(conditions)}", params
    ).fetchone()[0]
    page_params = list(params)
    if request.after is not None:
        conditions.append("id < ?" if request.newest_first else "id > ?")
        page_params.append(request.after)
    order = "DESC" if request.newest_first else "ASC"
    docs = fetch_docs(
        conn,
        f"SELECT * FROM {table} WHERE {' AND '.join(conditions)} ORDER BY id {order} LIMIT ?",
        [*page_params, request.limit],
    )
    return docs, int(total)
