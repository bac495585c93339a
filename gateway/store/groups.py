"""Group repository: ``scim_group`` and ``scim_membership``.

Membership changes are row-level deltas: adding a member inserts one row (a
duplicate is ignored), removing one deletes one row. Nothing reads or rewrites
the whole member list to change it, and ``excludedAttributes=members`` means the
member rows are never queried.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..ids import new_id
from ..scim.errors import InvalidValue, NotFound
from ..scim.filter import Compare, Node
from ..scim.projection import Projection
from ..scim.schemas import GROUP
from .common import ListQuery, Page, etag, meta, page_total, team_check, utcnow
from .db import kept_names
from .fast import Prepared
from .mapping import group_from_row, group_to_row
from .query import compile_filter, groups, member_condition, memberships, sort_expression, users
from .users import check_version

__all__ = [
    "add_members",
    "clear_members",
    "create_group",
    "current_version",
    "delete_group",
    "get_group",
    "list_groups",
    "load_group",
    "remove_members",
    "remove_members_where",
    "render_groups",
    "save_group",
    "touch_group",
]

_CHUNK = 500


# Hot statements, built once (see gateway.store.users).
_FIND_STMT = select(groups).where(
    groups.c.team_pk == bindparam("team_pk"), groups.c.id == bindparam("group_id")
)
_FIND = Prepared(_FIND_STMT)
_FIND_FOR_UPDATE = Prepared(_FIND_STMT.with_for_update())
_VERSION = Prepared(
    select(groups.c.version).where(
        groups.c.team_pk == bindparam("team_pk"), groups.c.id == bindparam("group_id")
    )
)
_TOUCH = Prepared(
    update(groups)
    .where(groups.c.pk == bindparam("b_pk"))
    .values(last_modified=bindparam("now"), version=groups.c.version + 1)
)
_RETURNED = (memberships.c.user_pk, memberships.c.child_group_pk)


def _remove_one(column: Any, table: Any, name: Any) -> Prepared:
    """Delete the membership of the member of ``table`` with the id ``member_id``;
    ``RETURNING`` its name too (found again by id: what its audit record shows,
    which then needs no lookup of its own)."""

    def by_id(*columns: Any) -> Any:
        return (
            select(*columns)
            .where(
                table.c.id == bindparam("member_id"),
                team_check(table.c.team_pk, bindparam("team_pk")),
            )
            .scalar_subquery()
        )

    return Prepared(
        delete(memberships)
        .where(memberships.c.group_pk == bindparam("group_pk"), column == by_id(table.c.pk))
        .returning(*_RETURNED, by_id(name).label("name"))
    )


# Remove one member by id (``members[value eq "..."]``, Entra's single-member
# remove): one lookup by a full key of the membership, whatever the size of the
# group; the child-group form runs only when no user had that id. One statement
# with an OR of the two was planned, once SQLite had statistics, as a read of the
# group's every membership row.
_REMOVE_USER = _remove_one(memberships.c.user_pk, users, users.c.user_name)
_REMOVE_CHILD_GROUP = _remove_one(memberships.c.child_group_pk, groups, groups.c.display_name)
# Found by id (unique index), then checked for the team (see team_check).
_USERS_BY_ID = Prepared(
    select(users.c.pk, users.c.id, users.c.user_name).where(
        users.c.id.in_(bindparam("ids", expanding=True)),
        team_check(users.c.team_pk, bindparam("team_pk")),
        users.c.state != "deleted",
    )
)
_GROUPS_BY_ID = Prepared(
    select(groups.c.pk, groups.c.id, groups.c.display_name).where(
        groups.c.id.in_(bindparam("ids", expanding=True)),
        team_check(groups.c.team_pk, bindparam("team_pk")),
    )
)
_USER_IDS = Prepared(
    select(users.c.pk, users.c.id).where(users.c.pk.in_(bindparam("pks", expanding=True)))
)
_GROUP_IDS = Prepared(select(groups.c.id).where(groups.c.pk.in_(bindparam("pks", expanding=True))))
# ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: a member already there (or added
# by a concurrent request, on PostgreSQL) is not returned, so it has no event.
_ADD_MEMBERS = {
    "sqlite": Prepared(sqlite.insert(memberships).on_conflict_do_nothing().returning(*_RETURNED)),
    "postgresql": Prepared(
        postgresql.insert(memberships).on_conflict_do_nothing().returning(*_RETURNED)
    ),
}


def _find_row(conn: Connection, team_pk: int, group_id: str, *, lock: bool = False) -> Row[Any]:
    stmt = _FIND_FOR_UPDATE if lock and conn.dialect.name == "postgresql" else _FIND
    row: Row[Any] | None = stmt.first(conn, {"team_pk": team_pk, "group_id": group_id})
    if row is None:
        raise NotFound(f"Group {group_id} not found.")
    return row


def _load_members(
    conn: Connection, group_pks: Sequence[int], base_url: str, *, with_display: bool = False
) -> dict[int, list[Any]]:
    """Members by group; ``display`` (returned only on request) when asked for."""
    out: dict[int, list[Any]] = defaultdict(list)
    if not group_pks:
        return out
    child = groups.alias("child")
    stmt = (
        select(
            memberships.c.group_pk,
            users.c.id.label("user_id"),
            func.coalesce(users.c.display_name, users.c.user_name).label("user_display"),
            child.c.id.label("group_id"),
            child.c.display_name.label("group_display"),
        )
        .select_from(
            memberships.outerjoin(users, users.c.pk == memberships.c.user_pk).outerjoin(
                child, child.c.pk == memberships.c.child_group_pk
            )
        )
        .where(memberships.c.group_pk.in_(group_pks))
        .order_by(memberships.c.pk)
    )
    for row in conn.execute(stmt):
        if row.user_id is not None:
            member = {"value": row.user_id, "$ref": f"{base_url}/Users/{row.user_id}"}
            display, kind = row.user_display, "User"
        else:
            member = {"value": row.group_id, "$ref": f"{base_url}/Groups/{row.group_id}"}
            display, kind = row.group_display, "Group"
        if with_display:
            member["display"] = display
        member["type"] = kind
        out[row.group_pk].append(member)
    return out


def render_groups(
    conn: Connection,
    rows: Sequence[Row[Any]],
    *,
    base_url: str,
    projection: Projection | None,
    apply_projection: bool = True,
) -> list[dict[str, Any]]:
    """Groups as SCIM resources. ``members`` are only loaded when ``projection`` wants
    them; with ``apply_projection=False`` the rest is left for the caller to project."""
    want_members = projection is None or projection.wants("members")
    with_display = projection is not None and projection.names("members", "display")
    member_map = (
        _load_members(conn, [r.pk for r in rows], base_url, with_display=with_display)
        if want_members
        else {}
    )
    out = []
    for row in rows:
        doc = group_from_row(row._mapping)
        resource: dict[str, Any] = {"schemas": doc.pop("schemas"), "id": row.id, **doc}
        if want_members:
            resource["members"] = member_map.get(row.pk, [])
        resource["meta"] = meta("Group", row, f"{base_url}/Groups/{row.id}")
        if projection is not None and apply_projection:
            resource = projection.apply(resource)
        out.append(resource)
    return out


Member = tuple[str, str, int | None]
"""A member that changed: (id, "User" or "Group", the user's pk or None)."""


def _resolve_members(
    conn: Connection, team_pk: int, group_pk: int | None, members: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Membership rows for member objects; 400 for an id that is not in this team."""
    wanted = list(dict.fromkeys(str(m.get("value")) for m in members))
    found: dict[str, dict[str, Any]] = {}
    # The audit record of each added member names it: kept for that step (audit.Names).
    names = kept_names(conn, "User", team_pk)
    for i in range(0, len(wanted), _CHUNK):
        chunk = wanted[i : i + _CHUNK]
        for user in _USERS_BY_ID.rows(conn, {"team_pk": team_pk, "ids": chunk}):
            found[user.id] = {"user_pk": user.pk, "child_group_pk": None, "id": user.id}
            names[user.id] = user.user_name
        missing = [v for v in chunk if v not in found]
        if missing:
            for row in _GROUPS_BY_ID.rows(conn, {"team_pk": team_pk, "ids": missing}):
                if row.pk == group_pk:
                    raise InvalidValue("A group cannot be a member of itself.")
                found[row.id] = {"user_pk": None, "child_group_pk": row.pk, "id": row.id}
                kept_names(conn, "Group", team_pk)[row.id] = row.display_name
    unknown = [v for v in wanted if v not in found]
    if unknown:
        raise InvalidValue(
            f"Member {unknown[0]!r} is not a User or Group of this team"
            + (f" (and {len(unknown) - 1} more)." if len(unknown) > 1 else ".")
        )
    return [found[v] for v in wanted]


def _describe(conn: Connection, removed: Sequence[Any]) -> list[Member]:
    """Ids and types of membership rows (user_pk, child_group_pk) that changed."""
    user_pks = [r.user_pk for r in removed if r.user_pk is not None]
    group_pks = [r.child_group_pk for r in removed if r.child_group_pk is not None]
    out: list[Member] = []
    for i in range(0, len(user_pks), _CHUNK):
        rows = _USER_IDS.rows(conn, {"pks": user_pks[i : i + _CHUNK]})
        out.extend((row.id, "User", row.pk) for row in rows)
    for i in range(0, len(group_pks), _CHUNK):
        rows = _GROUP_IDS.rows(conn, {"pks": group_pks[i : i + _CHUNK]})
        out.extend((row.id, "Group", None) for row in rows)
    return out


def add_members(
    conn: Connection, team_pk: int, group_pk: int, members: Sequence[dict[str, Any]]
) -> list[Member]:
    """Add members (one row each; present ones are left alone). Returns those added."""
    rows = _resolve_members(conn, team_pk, group_pk, members)
    batch = [
        {
            "user_pk": r["user_pk"],
            "child_group_pk": r["child_group_pk"],
            "group_pk": group_pk,
            "team_pk": team_pk,
        }
        for r in rows
    ]
    if not batch:
        return []
    add = _ADD_MEMBERS[conn.dialect.name]
    inserted = []
    for i in range(0, len(batch), _CHUNK):
        inserted += add.insert_rows(conn, batch[i : i + _CHUNK])
    ids = {(r["user_pk"], r["child_group_pk"]): r["id"] for r in rows}
    return [
        (ids[(r.user_pk, r.child_group_pk)], "User" if r.user_pk else "Group", r.user_pk)
        for r in inserted
    ]


def remove_members(
    conn: Connection, team_pk: int, group_pk: int, member_ids: Sequence[str]
) -> list[Member]:
    ids = list(dict.fromkeys(member_ids))
    if len(ids) == 1:
        params = {"group_pk": group_pk, "team_pk": team_pk, "member_id": ids[0]}
        one = _REMOVE_USER.rows(conn, params)
        # The audit record names the member: kept for that step (audit.Names).
        if one:
            kept_names(conn, "User", team_pk)[ids[0]] = one[0].name
            return [(ids[0], "User", r.user_pk) for r in one]
        one = _REMOVE_CHILD_GROUP.rows(conn, params)
        if one:
            kept_names(conn, "Group", team_pk)[ids[0]] = one[0].name
        return [(ids[0], "Group", None) for r in one]
    removed: list[Member] = []
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        user_pks = select(users.c.pk).where(
            team_check(users.c.team_pk, team_pk), users.c.id.in_(chunk)
        )
        group_pks = select(groups.c.pk).where(
            team_check(groups.c.team_pk, team_pk), groups.c.id.in_(chunk)
        )
        gone = conn.execute(
            delete(memberships)
            .where(
                memberships.c.group_pk == group_pk,
                or_(
                    memberships.c.user_pk.in_(user_pks), memberships.c.child_group_pk.in_(group_pks)
                ),
            )
            .returning(*_RETURNED)
        ).all()
        removed.extend(_describe(conn, gone))
    return removed


def _single_id(node: Node) -> str | None:
    """The id in ``value eq "<id>"``, when that is all the filter says.

    ``members.value`` is caseExact=false; the ids this gateway assigns are lower-case
    UUIDs, so a lower-case value matches exactly the rows the general query would."""
    if (
        isinstance(node, Compare)
        and node.op == "eq"
        and isinstance(node.value, str)
        and node.path.urn is None
        and node.path.sub is None
        and node.path.attr.lower() == "value"
        and node.value == node.value.lower()
    ):
        return node.value
    return None


def remove_members_where(conn: Connection, team_pk: int, group_pk: int, node: Node) -> list[Member]:
    member_id = _single_id(node)
    if member_id is not None:
        return remove_members(conn, team_pk, group_pk, [member_id])
    gone = conn.execute(
        delete(memberships)
        .where(and_(memberships.c.group_pk == group_pk, member_condition(node)))
        .returning(*_RETURNED)
    ).all()
    return _describe(conn, gone)


def clear_members(conn: Connection, group_pk: int) -> list[Member]:
    gone = conn.execute(
        delete(memberships).where(memberships.c.group_pk == group_pk).returning(*_RETURNED)
    ).all()
    return _describe(conn, gone)


def current_version(conn: Connection, team_pk: int, group_id: str) -> str:
    """The group's version as an entity tag, e.g. for the ETag of a 204 answer."""
    version = _VERSION.scalar(conn, {"team_pk": team_pk, "group_id": group_id})
    return etag(version)


def touch_group(conn: Connection, group_pk: int) -> None:
    _TOUCH.run(conn, {"b_pk": group_pk, "now": utcnow()})


def create_group(
    conn: Connection, team_pk: int, resource: dict[str, Any], *, base_url: str
) -> dict[str, Any]:
    columns = group_to_row(resource)
    now = utcnow()
    group_id = new_id()
    group_pk = conn.execute(
        insert(groups).returning(groups.c.pk),
        {
            **columns,
            "id": group_id,
            "team_pk": team_pk,
            "created": now,
            "last_modified": now,
            "version": 1,
        },
    ).scalar_one()
    kept_names(conn, "Group", team_pk)[group_id] = columns["display_name"]
    add_members(conn, team_pk, group_pk, resource.get("members") or [])
    row = _find_row(conn, team_pk, group_id)
    return render_groups(conn, [row], base_url=base_url, projection=None)[0]


def get_group(
    conn: Connection,
    team_pk: int,
    group_id: str,
    *,
    base_url: str,
    projection: Projection | None,
    apply_projection: bool = True,
) -> dict[str, Any]:
    row = _find_row(conn, team_pk, group_id)
    return render_groups(
        conn, [row], base_url=base_url, projection=projection, apply_projection=apply_projection
    )[0]


def load_group(
    conn: Connection, team_pk: int, group_id: str, *, if_match: set[str] | None
) -> tuple[Row[Any], dict[str, Any]]:
    """The locked row and its attributes without members, for a read-modify-write."""
    row = _find_row(conn, team_pk, group_id, lock=True)
    check_version(row, if_match)
    kept_names(conn, "Group", team_pk)[row.id] = row.display_name
    doc = group_from_row(row._mapping)
    return row, {"schemas": doc.pop("schemas"), "id": row.id, **doc}


def save_group(conn: Connection, row: Row[Any], resource: dict[str, Any]) -> None:
    """Store a group's attributes (not its members) and bump its version."""
    columns = group_to_row(resource)
    conn.execute(
        update(groups)
        .where(groups.c.pk == row.pk)
        .values(**columns, last_modified=utcnow(), version=groups.c.version + 1)
    )
    kept_names(conn, "Group", row.team_pk)[row.id] = columns["display_name"]


def delete_group(
    conn: Connection, team_pk: int, group_id: str, *, if_match: set[str] | None
) -> tuple[Row[Any], list[int]]:
    """Delete a group; returns its row and the pks of the users that were its members."""
    row = _find_row(conn, team_pk, group_id, lock=True)
    check_version(row, if_match)
    kept_names(conn, "Group", team_pk).pop(row.id, None)
    # Its parent groups lose a member: they get a new version (see users.delete_user).
    parents = select(memberships.c.group_pk).where(memberships.c.child_group_pk == row.pk)
    conn.execute(
        update(groups)
        .where(groups.c.pk.in_(parents))
        .values(last_modified=utcnow(), version=groups.c.version + 1)
    )
    member_users = list(
        conn.execute(
            select(memberships.c.user_pk).where(
                memberships.c.group_pk == row.pk, memberships.c.user_pk.is_not(None)
            )
        ).scalars()
    )
    conn.execute(
        delete(memberships).where(
            or_(memberships.c.group_pk == row.pk, memberships.c.child_group_pk == row.pk)
        )
    )
    conn.execute(delete(groups).where(groups.c.pk == row.pk))
    return row, member_users


def list_groups(
    conn: Connection, team_pk: int, query: ListQuery, *, base_url: str, projection: Projection
) -> Page:
    where = [groups.c.team_pk == team_pk, compile_filter(GROUP, query.filter)]
    # Resolved first: a bad sortBy is an error whether or not there is a page to sort.
    key = sort_expression(GROUP, query.sort_by) if query.sort_by is not None else None
    rows: Sequence[Row[Any]] = []
    if query.count:
        stmt = select(groups).where(*where)
        if key is not None:
            stmt = stmt.order_by(
                key.desc().nulls_last() if query.descending else key.asc().nulls_last()
            )
        stmt = stmt.order_by(groups.c.pk).offset(query.start_index - 1).limit(query.count)
        rows = conn.execute(stmt).all()
    total = page_total(conn, groups, where, query, len(rows))
    return Page(
        total=total,
        resources=render_groups(conn, rows, base_url=base_url, projection=projection),
        start_index=query.start_index,
    )
