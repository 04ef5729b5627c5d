"""Who may do what: api.md's permission table, in one place.

Every GraphQL resolver asks this module; none re-implements a rule. Two kinds
of question are answered here:

* role-level actions (:class:`Action`, :func:`allows`): may this caller create
  connections at all, load profiles, change the refresh schedule, ...;
* object-level checks: may this caller see this connection, its details, use
  it for exports, edit this export.

Choices where api.md is silent:

* Viewers see no connections: the ``connections`` query answers FORBIDDEN for
  them, ``node(id:)`` answers null, and ``Export.connection`` is null.
* A contributor may act on an export only while it is attached to a
  connection usable by contributors. A detached export (no connection, or
  one that no longer exists) is for admins, and for the contributor who
  created it: detaching must not hand an admin's export, configured for an
  admins-only purpose, to every contributor; and a contributor who detached
  their own export can still re-attach or remove it. (Attaching always
  needs a connection the caller may use, too.)
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from service.access.auth import Principal
from service.domain import Connection, ConnectionUsableBy, Export, Role


class Action(StrEnum):
    """Role-level actions of api.md's table."""

    MANAGE_CONNECTIONS = "manage connections"
    """Create, edit, remove and authorize connections."""
    SEE_CONNECTIONS = "see connections"
    """See connections at all (which ones is decided by :func:`can_see_connection`)."""
    MANAGE_EXPORTS = "manage exports"
    """Create, edit, run, cancel and remove exports (on connections the caller may use)."""
    READ = "read"
    """Read exports, runs, segments, profile attribute names, the schedule, destination types."""
    CHANGE_REFRESH_SCHEDULE = "change the refresh schedule"
    MANAGE_DESTINATION_PAUSES = "see and lift destination pauses"
    """The shared rate limiter's pauses (e.g. a spent daily quota), for every export."""
    LOAD_DATA = "load profiles and segments"


_ROLES_ALLOWED: dict[Action, frozenset[Role]] = {
    Action.MANAGE_CONNECTIONS: frozenset({Role.ADMIN}),
    Action.SEE_CONNECTIONS: frozenset({Role.ADMIN, Role.CONTRIBUTOR}),
    Action.MANAGE_EXPORTS: frozenset({Role.ADMIN, Role.CONTRIBUTOR}),
    Action.READ: frozenset({Role.ADMIN, Role.CONTRIBUTOR, Role.VIEWER}),
    Action.CHANGE_REFRESH_SCHEDULE: frozenset({Role.ADMIN}),
    Action.MANAGE_DESTINATION_PAUSES: frozenset({Role.ADMIN}),
    Action.LOAD_DATA: frozenset({Role.ADMIN}),
}


def allows(principal: Principal, action: Action) -> bool:
    """True when one of the caller's roles may perform ``action`` (on some object)."""
    return bool(principal.roles & _ROLES_ALLOWED[action])


def visible_usable_by(principal: Principal) -> Sequence[ConnectionUsableBy] | None:
    """The ``usable_by`` values of the connections the caller may list.

    None means every connection (admins); an empty list means none (viewers).
    Used to filter in the database, so pages and totals stay right.
    """
    if principal.is_admin:
        return None
    if principal.is_contributor:
        return [ConnectionUsableBy.ADMINS_AND_CONTRIBUTORS]
    return []


def can_see_connection(principal: Principal, connection: Connection) -> bool:
    """May the caller see the connection's id, name and type?"""
    allowed = visible_usable_by(principal)
    return allowed is None or connection.usable_by in allowed


def can_see_connection_details(principal: Principal) -> bool:
    """Status, account, export user, consent and settings: admins only."""
    return principal.is_admin


def can_use_connection(principal: Principal, connection: Connection) -> bool:
    """May the caller create or edit exports that send through ``connection``?"""
    if not allows(principal, Action.MANAGE_EXPORTS):
        return False
    return can_see_connection(principal, connection)


def can_edit_export(principal: Principal, export: Export, connection: Connection | None) -> bool:
    """May the caller edit, run, cancel or remove ``export``?

    ``connection`` is the export's connection as stored (None when detached
    or when it no longer exists).
    """
    if not allows(principal, Action.MANAGE_EXPORTS):
        return False
    if principal.is_admin:
        return True
    if export.connection_id is None or connection is None:
        return export.created_by == principal.sub
    return can_use_connection(principal, connection)


def visibility_key(principal: Principal) -> tuple[object, ...]:
    """Callers with the same key get the same answer from every object-level rule here.

    The rules above read the caller's roles, and, for who may edit an export
    without seeing its connection, the caller's ``sub`` (only for callers who
    may manage exports without being admins). Work done for one caller (a
    subscription event executed once) may be shared only with callers of the
    same key; keep this in step with the rules.
    """
    roles = tuple(sorted(role.value for role in principal.roles))
    personal = (
        principal.sub
        if allows(principal, Action.MANAGE_EXPORTS) and not principal.is_admin
        else None
    )
    return (roles, personal)
