"""User repository: SQL for the ``scim_user`` and ``scim_user_value`` tables.

Functions take an open :class:`~sqlalchemy.Connection` inside a transaction and
the ``team_pk`` of the authenticated key; every statement is scoped by it, so a
user of another team is simply not found.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Row,
    String,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError

from ..ids import new_id
from ..scim.errors import NotFound, PreconditionFailed, Uniqueness
from ..scim.filter import Compare
from ..scim.projection import Projection
from ..scim.schemas import USER
from .common import ListQuery, Page, etag, meta, meta_of, page_total, total_of_page, utcnow
from .fast import Prepared
from .mapping import (
    USER_MULTI_VALUED,
    fold,
    user_document,
    user_from_rows,
    user_to_rows,
    with_references,
)
from .query import compile_filter, groups, memberships, sort_expression, users, values

__all__ = [
    "LIVE",
    "Claimants",
    "check_version",
    "claimants",
    "create_user",
    "delete_user",
    "find_dormant",
    "get_user",
    "list_users",
    "load_user",
    "purge_tombstones",
    "render_users",
    "save_user",
    "set_state",
    "state_of",
]

_VALUE_FIELDS = [c for c in values.c if c.name not in ("pk", "user_pk", "team_pk")]


def check_version(row: Row[Any], if_match: set[str] | None) -> None:
    """RFC 7644 §3.14: a write with ``If-Match`` needs the current version."""
    if if_match is None or "*" in if_match:
        return
    if etag(row.version) not in if_match and f'"{row.version}"' not in if_match:
        raise PreconditionFailed(
            f"The resource has changed: its version is {etag(row.version)}. "
            "Read it again and retry."
        )


LIVE = users.c.state != "deleted"
"""Tombstoned users are invisible to SCIM."""


# The hot statements are built once, with bind parameters: building a statement on
# every request costs several times what SQLite takes to run it.
_FIND_STMT = select(users).where(
    users.c.team_pk == bindparam("team_pk"), users.c.id == bindparam("user_id"), LIVE
)
_FIND = Prepared(_FIND_STMT)
_FIND_FOR_UPDATE = Prepared(_FIND_STMT.with_for_update())
# What a delete needs of the row (its pk, its version for If-Match, and the id and
# userName its event names): converting the whole row's 35 columns was a tenth of it.
_FIND_TO_DELETE = Prepared(
    select(users.c.pk, users.c.id, users.c.user_name, users.c.version)
    .where(users.c.team_pk == bindparam("team_pk"), users.c.id == bindparam("user_id"), LIVE)
    .with_for_update()
)
_VALUES_OF = Prepared(
    select(values.c.user_pk, *_VALUE_FIELDS)
    .where(values.c.user_pk.in_(bindparam("pks", expanding=True)))
    .order_by(values.c.pk)
)
_GROUPS_OF = Prepared(
    select(memberships.c.user_pk, groups.c.id, groups.c.display_name)
    .join(groups, groups.c.pk == memberships.c.group_pk)
    .where(memberships.c.user_pk.in_(bindparam("pks", expanding=True)))
    .order_by(groups.c.pk)
)
# The same two for one user (a read or a write of one resource).
_VALUES_OF_ONE = Prepared(
    select(values.c.user_pk, *_VALUE_FIELDS)
    .where(values.c.user_pk == bindparam("pk"))
    .order_by(values.c.pk)
)
_GROUPS_OF_ONE = Prepared(
    select(memberships.c.user_pk, groups.c.id, groups.c.display_name)
    .join(groups, groups.c.pk == memberships.c.group_pk)
    .where(memberships.c.user_pk == bindparam("pk"))
    .order_by(groups.c.pk)
)
# A page of users: its values and groups by the page's pk range (one indexed range
# scan each, no IN list of 100 parameters to build), when the range is dense. The
# rows are kept only for the page's own users, so the range needs no team condition,
# and has none: with one, SQLite without statistics scanned the team's whole
# (team_pk, attr, value_ci) index instead of this range (56 ms a page at 100,000).
_VALUES_IN_RANGE = Prepared(
    select(values.c.user_pk, *_VALUE_FIELDS)
    .where(values.c.user_pk.between(bindparam("lo"), bindparam("hi")))
    .order_by(values.c.pk)
)
_GROUPS_IN_RANGE = Prepared(
    select(memberships.c.user_pk, groups.c.id, groups.c.display_name)
    .join(groups, groups.c.pk == memberships.c.group_pk)
    .where(memberships.c.user_pk.between(bindparam("lo"), bindparam("hi")))
    .order_by(groups.c.pk)
)
_RANGE_SLACK = 4
"""A range holding more than this many times the page's users is read by IN list."""
_CONFLICT = Prepared(
    select(users.c.pk, users.c.state)
    .where(
        users.c.team_pk == bindparam("team_pk"),
        users.c.user_name_ci == bindparam("user_name_ci"),
        users.c.pk != bindparam("except_pk"),
    )
    .limit(1)
)
# The users a new resource's externalId and userName already name, of any state: one
# statement of two indexed probes (an OR would have SQLite scan the team's users), run
# on every create. It tells a re-provisioning (a dormant user to restore) from a 409
# (a live user holds the userName) from a plain insert (which purges a tombstone
# holding the userName), where three probes did.
_CLAIMANT_COLUMNS = (users.c.pk, users.c.state, users.c.external_id, users.c.user_name_ci)
_CLAIMANTS = Prepared(
    union_all(
        select(*_CLAIMANT_COLUMNS, literal_column("1").label("by_external_id")).where(
            users.c.team_pk == bindparam("team_pk"),
            users.c.external_id == bindparam("external_id"),
        ),
        select(*_CLAIMANT_COLUMNS, literal_column("0").label("by_external_id")).where(
            users.c.team_pk == bindparam("team_pk"),
            users.c.user_name_ci == bindparam("user_name_ci"),
        ),
    )
)
_DORMANT = ("inactive", "deleted")
_BY_PK = Prepared(select(users).where(users.c.pk == bindparam("pk")))
_INSERT_USER = Prepared(insert(users).returning(users.c.pk))
_INSERT_VALUES = Prepared(insert(values))
_DELETE_VALUES = Prepared(delete(values).where(values.c.user_pk == bindparam("b_user_pk")))
_UPDATE_USER = Prepared(
    update(users)
    .where(users.c.pk == bindparam("b_pk"))
    .values(version=users.c.version + 1, rendered_version=users.c.version + 1)
)
_ALWAYS_SET = frozenset({"last_modified", "rendered"})
"""What every SCIM write of a user sets, with ``version``, whatever else changed."""
# For statements whose rows are only rendered (a list page shows 200 timestamps):
# ``created`` and ``lastModified`` read as SQLite stores them (text, UTC) are turned
# into ``meta``'s form by slicing (``common.iso``), instead of being parsed into
# datetimes only to be formatted again. PostgreSQL's driver returns datetimes
# whatever the statement says, and ``iso`` takes those as usual.
_RENDERED_COLUMNS = [
    type_coerce(column, String).label(column.name)
    if column.name in ("created", "last_modified")
    else column
    for column in users.c
]
# A list page, and the userName lookup, read what a current ``rendered`` document
# needs; render_users reads the other columns of the rows that have none (_COLUMNS_OF).
_PAGE_COLUMNS = [
    column
    for column in _RENDERED_COLUMNS
    if column.name
    in ("pk", "id", "created", "last_modified", "version", "rendered", "rendered_version")
]
_COLUMNS_OF = Prepared(
    select(*_RENDERED_COLUMNS).where(users.c.pk.in_(bindparam("pks", expanding=True)))
)
_BY_USER_NAME = Prepared(
    select(*_PAGE_COLUMNS)
    .where(
        users.c.team_pk == bindparam("team_pk"),
        users.c.user_name_ci == bindparam("user_name_ci"),
        LIVE,
    )
    .limit(1)
)


def _find_row(conn: Connection, team_pk: int, user_id: str, stmt: Prepared = _FIND) -> Row[Any]:
    """The live user's row as ``stmt`` reads it: :data:`_FIND`, or a read that also
    locks it (``FOR UPDATE``, which SQLite's dialect leaves out: its writers hold the
    database's write lock already)."""
    row: Row[Any] | None = stmt.first(conn, {"team_pk": team_pk, "user_id": user_id})
    if row is None:
        raise NotFound(f"User {user_id} not found.")
    return row


def _dense_range(user_pks: Sequence[int], page: bool) -> dict[str, int] | None:
    """Bind values for the *_IN_RANGE statements, when ``user_pks`` are a list page
    (consecutive in pk order) whose range is dense enough."""
    if not page or len(user_pks) < 2:
        return None
    lo, hi = min(user_pks), max(user_pks)
    if hi - lo + 1 > _RANGE_SLACK * len(user_pks):
        return None
    return {"lo": lo, "hi": hi}


def _load_values(
    conn: Connection, user_pks: Sequence[int], page: bool = False
) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    if not user_pks:
        return out
    if len(user_pks) == 1:
        out[user_pks[0]] = _VALUES_OF_ONE.dicts(conn, {"pk": user_pks[0]})
        return out
    span = _dense_range(user_pks, page)
    if span is not None:
        wanted = set(user_pks)
        for value in _VALUES_IN_RANGE.dicts(conn, span):
            if value["user_pk"] in wanted:  # not a tombstone's (or a filtered-out user's)
                out[value["user_pk"]].append(value)
        return out
    for value in _VALUES_OF.dicts(conn, {"pks": list(user_pks)}):
        out[value["user_pk"]].append(value)
    return out


def _load_groups(
    conn: Connection, user_pks: Sequence[int], base_url: str, page: bool = False
) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = defaultdict(list)
    if not user_pks:
        return out
    span = _dense_range(user_pks, page)
    if len(user_pks) == 1:
        found: Iterable[Any] = _GROUPS_OF_ONE.rows(conn, {"pk": user_pks[0]})
    elif span is not None:
        wanted = set(user_pks)
        found = [r for r in _GROUPS_IN_RANGE.rows(conn, span) if r.user_pk in wanted]
    else:
        found = _GROUPS_OF.rows(conn, {"pks": list(user_pks)})
    for row in found:
        out[row.user_pk].append(
            {
                "value": row.id,
                "$ref": f"{base_url}/Groups/{row.id}",
                "display": row.display_name,
                "type": "direct",
            }
        )
    return out


def render_users(
    conn: Connection,
    rows: Sequence[Row[Any]],
    *,
    base_url: str,
    projection: Projection | None,
    apply_projection: bool = True,
    page: bool = False,
    as_json: bool = False,
) -> list[Any]:
    """Users as SCIM resources. ``groups`` is only loaded when ``projection`` wants it;
    with ``apply_projection=False`` the rest is left for the caller to project.
    ``page`` (rows of one list page, in pk order) lets their values be read by pk range.

    A row whose ``rendered`` document is current (see :data:`User.rendered_version`) is
    served from it; the others are rebuilt from their columns and value rows. ``rows``
    may carry only :data:`_PAGE_COLUMNS`: the columns of a row without a current
    document are then read by pk.

    ``as_json`` (for a caller that serialises the resources as they are: no projection,
    an adapter that renders nothing) lets a user served from its document be returned
    as an ``orjson.Fragment``, its JSON spliced rather than parsed and written again."""
    pks = [row.pk for row in rows]
    docs: dict[int, Any] = {}
    stale = []
    base_ref = b'"$ref":"' + orjson.dumps(base_url)[1:-1]  # what _BASE_MARK stands for
    for row in rows:
        rendered = row.rendered
        if rendered is None or row.rendered_version != row.version:
            stale.append(row)
        elif as_json:
            if _BASE_MARK in rendered:
                rendered = rendered.replace(_BASE_MARK, base_ref)
            docs[row.pk] = rendered
        else:
            docs[row.pk] = with_references(orjson.loads(rendered), base_url)
    if stale:
        _rebuild(conn, stale, docs, base_url, page and len(stale) == len(rows))
    want_groups = projection is None or projection.wants("groups")
    group_map = _load_groups(conn, pks, base_url, page) if want_groups else {}
    out: list[Any] = []
    for row in rows:
        resource = docs[row.pk]
        member_of = group_map.get(row.pk)
        location = f"{base_url}/Users/{row.id}"
        if isinstance(resource, bytes):
            tail = b',"groups":' + orjson.dumps(member_of) if member_of else b""
            shown = orjson.dumps(meta("User", row, location))
            out.append(orjson.Fragment(resource[:-1] + tail + b',"meta":' + shown + b"}"))
            continue
        if member_of:
            resource["groups"] = member_of
        resource["meta"] = meta("User", row, location)
        if projection is not None and apply_projection:
            resource = projection.apply(resource)
        out.append(resource)
    return out


_BASE = "\x00"
"""Stands for the server's base URL in a stored document (the manager's ``$ref``). No
stored string holds NUL: request bodies that do are refused (``http.read_json``)."""
_BASE_MARK = b'"$ref":"\\u0000'
"""How :data:`_BASE` starts a ``$ref`` in the document's JSON."""


def _document(
    user_id: str, columns: Mapping[str, Any], value_rows: Iterable[Any]
) -> dict[str, Any]:
    """A user's SCIM attributes as the ``rendered`` column keeps them: ``schemas``,
    ``id``, then the rest (:func:`user_document`), the order the resource shows, with
    its references under :data:`_BASE`."""
    doc = user_document(columns, value_rows)
    return with_references({"schemas": doc.pop("schemas"), "id": user_id, **doc}, _BASE)


def _serialized(doc: dict[str, Any]) -> bytes | None:
    """``doc`` (a :func:`_document`) as the ``rendered`` column keeps it. ``None``
    (the user is served from its columns) for what orjson cannot write exactly (an
    integer beyond 64 bits), and for a NUL anywhere but in the one :data:`_BASE`."""
    try:
        rendered = orjson.dumps(doc)
    except TypeError:
        return None
    if rendered.count(b"\\u0000") != rendered.count(_BASE_MARK):
        return None
    return rendered


def _rebuild(
    conn: Connection,
    rows: Sequence[Row[Any]],
    docs: dict[int, dict[str, Any]],
    base_url: str,
    page: bool,
) -> None:
    """Fill ``docs`` (by pk) for ``rows`` from their columns and value rows."""
    pks = [row.pk for row in rows]
    if "user_name" not in rows[0]._fields:  # rows of _PAGE_COLUMNS
        rows = _COLUMNS_OF.rows(conn, {"pks": pks})
    value_map = _load_values(conn, pks, page)
    for row in rows:
        doc = user_from_rows(row, value_map.get(row.pk, ()), base_url=base_url)
        docs[row.pk] = {"schemas": doc.pop("schemas"), "id": row.id, **doc}


def _insert_values(
    conn: Connection, team_pk: int, user_pk: int, rows: Iterable[dict[str, Any]]
) -> None:
    batch = [{**row, "user_pk": user_pk, "team_pk": team_pk} for row in rows]
    if batch:
        _INSERT_VALUES.many(conn, batch)


def _conflict(conn: Connection, team_pk: int, user_name_ci: str, except_pk: int | None) -> Any:
    """The user (pk, state) already holding this userName in the team, if any."""
    params = {"team_pk": team_pk, "user_name_ci": user_name_ci, "except_pk": except_pk or -1}
    return _CONFLICT.first(conn, params)


_LOOK_UP: Any = object()
"""For :func:`_claim_user_name`: the holder of the userName is not known yet."""


def _claim_user_name(
    conn: Connection,
    team_pk: int,
    columns: dict[str, Any],
    except_pk: int | None,
    holder: Any = _LOOK_UP,
) -> None:
    """409 when a live user holds the userName; a tombstone holding it is purged.
    ``holder``: that user (pk and state) or None, when the caller looked it up."""
    if holder is _LOOK_UP:
        holder = _conflict(conn, team_pk, columns["user_name_ci"], except_pk)
    if holder is None:
        return
    if holder.state != "deleted":
        raise _uniqueness(columns["user_name"])
    _purge(conn, [holder.pk])


def _uniqueness(user_name: str) -> Uniqueness:
    return Uniqueness(f"A user with userName {user_name!r} already exists in this team.")


def state_of(active: bool | None) -> str:
    """The application's state for a SCIM ``active`` value (unassigned = active)."""
    return "inactive" if active is False else "active"


@dataclass(frozen=True, slots=True)
class Claimants:
    """What a new User resource's externalId and userName already name in its team
    (:func:`claimants`): the users of that externalId, and the one user (live,
    inactive or a tombstone) holding that userName."""

    user_name_ci: str | None
    by_external_id: list[Any]
    holder: Any | None


def claimants(conn: Connection, team_pk: int, resource: dict[str, Any]) -> Claimants:
    """The users a create of ``resource`` must reckon with, in one statement."""
    ext, name = resource.get("externalId"), fold(resource.get("userName"))
    # Without an externalId, ``external_id = NULL`` matches nothing: that half finds no row.
    rows = _CLAIMANTS.rows(conn, {"team_pk": team_pk, "external_id": ext, "user_name_ci": name})
    holder = next((r for r in rows if not r.by_external_id), None)
    return Claimants(name, [r for r in rows if r.by_external_id], holder)


def find_dormant(conn: Connection, resource: dict[str, Any], found: Claimants) -> Row[Any] | None:
    """An inactive or deleted user this new resource re-provisions, from its
    :func:`claimants`: same externalId (the latest such user), else same userName.

    A userName match never restores a user whose externalId says it is another
    identity: a recycled userName (a new hire given a former employee's address) must
    not inherit the old account, its id, memberships and role."""
    dormant = [r.pk for r in found.by_external_id if r.state in _DORMANT]
    pick: int | None = max(dormant) if dormant else None
    holder = found.holder
    if (
        pick is None
        and holder is not None
        and holder.state in _DORMANT
        and (resource.get("externalId") is None or holder.external_id is None)
    ):
        pick = holder.pk
    if pick is None:
        return None
    row: Row[Any] | None = _BY_PK.first(conn, {"pk": pick})
    return row


def create_user(
    conn: Connection,
    team_pk: int,
    resource: dict[str, Any],
    *,
    base_url: str,
    role: str | None = None,
    found: Claimants | None = None,
) -> dict[str, Any]:
    """Insert a canonical User; 409 ``uniqueness`` when its userName is taken.
    ``found``: :func:`claimants` of ``resource``, when the caller has them.

    A user created without ``active`` is active: the server's default (a later PATCH
    that removes ``active`` leaves it unassigned, as RFC 7644 §3.5.2.2 says)."""
    columns, value_rows = user_to_rows(resource)
    if columns["active"] is None:
        columns["active"] = True
    holder = _LOOK_UP
    if found is not None and found.user_name_ci == columns["user_name_ci"]:
        holder = found.holder
    _claim_user_name(conn, team_pk, columns, None, holder)
    now = utcnow()
    user_id = new_id()
    doc = _document(user_id, columns, value_rows)
    fresh = {
        **columns,
        "id": user_id,
        "team_pk": team_pk,
        "state": state_of(columns["active"]),
        "role": role,
        "deleted_at": None,
        "created": now,
        "last_modified": now,
        "version": 1,
        "rendered": _serialized(doc),
        "rendered_version": 1,
    }
    try:
        fresh["pk"] = _INSERT_USER.scalar(conn, fresh)
    except IntegrityError as exc:
        raise _uniqueness(columns["user_name"]) from exc
    _insert_values(conn, team_pk, fresh["pk"], value_rows)
    # A new user belongs to no group yet: rendered from what was written.
    return _render_written(conn, fresh, doc, base_url=base_url, groups_of=None)


def get_user(
    conn: Connection,
    team_pk: int,
    user_id: str,
    *,
    base_url: str,
    projection: Projection | None,
    apply_projection: bool = True,
) -> dict[str, Any]:
    row = _find_row(conn, team_pk, user_id)
    resource: dict[str, Any] = render_users(
        conn, [row], base_url=base_url, projection=projection, apply_projection=apply_projection
    )[0]
    return resource


def load_user(
    conn: Connection, team_pk: int, user_id: str, *, base_url: str, if_match: set[str] | None
) -> tuple[Row[Any], dict[str, Any]]:
    """The locked row and its canonical resource, for a read-modify-write."""
    row = _find_row(conn, team_pk, user_id, _FIND_FOR_UPDATE)
    check_version(row, if_match)
    resource = render_users(conn, [row], base_url=base_url, projection=None)[0]
    return row, resource


def save_user(
    conn: Connection,
    team_pk: int,
    row: Row[Any],
    resource: dict[str, Any],
    *,
    base_url: str,
    restore: bool = False,
    current: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Replace a user's stored attributes with ``resource`` (a canonical User); with
    ``restore``, bring an inactive or deleted user back. ``current`` (the stored user
    as loaded) lets a write that leaves the multi-valued attributes as they were skip
    rewriting their rows (a deactivation, a profile update)."""
    columns, value_rows = user_to_rows(resource)
    if restore and columns["active"] is None:
        columns["active"] = True
    if columns["user_name_ci"] != row.user_name_ci:
        _claim_user_name(conn, team_pk, columns, row.pk)
    extra: dict[str, Any] = {"state": state_of(columns["active"])}
    if restore:
        extra["deleted_at"] = None
    now = utcnow()
    doc = _document(row.id, columns, value_rows)
    written = {**columns, **extra, "last_modified": now, "rendered": _serialized(doc)}
    # Only the columns whose values change are set: SQLite rewrites the entries of
    # every index on a column an UPDATE sets, changed or not (a deactivation set all
    # 35 columns, and rewrote the user's entries in its four indexes).
    changed = {k: v for k, v in written.items() if k in _ALWAYS_SET or getattr(row, k) != v}
    try:
        _UPDATE_USER.run(conn, {**changed, "b_pk": row.pk})
    except IntegrityError as exc:
        raise _uniqueness(columns["user_name"]) from exc
    # The value rows are a function of the multi-valued attributes alone: when those
    # are what was loaded, the stored rows are already these.
    if current is None or any(
        current.get(attr) != resource.get(attr) for attr in USER_MULTI_VALUED
    ):
        _DELETE_VALUES.run(conn, {"b_user_pk": row.pk})
        _insert_values(conn, team_pk, row.pk, value_rows)
    # Rendered from what was just written: the same row, one version on, the same groups
    # (a user's write never changes them: ``current``, loaded in this transaction, has
    # them already).
    fresh = {**row._mapping, **written, "version": row.version + 1}
    if current is not None:
        groups = [dict(group) for group in current.get("groups") or ()]
        return _render_written(conn, fresh, doc, base_url=base_url, groups=groups)
    return _render_written(conn, fresh, doc, base_url=base_url, groups_of=row.pk)


def _render_written(
    conn: Connection,
    fresh: dict[str, Any],
    doc: dict[str, Any],
    *,
    base_url: str,
    groups_of: int | None = None,
    groups: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The SCIM resource of a user just written (``fresh``: its row, by column name;
    ``doc``: the :func:`_document` of what was written), without reading it back: its
    ``groups`` as given, else those of user ``groups_of`` read now, else none."""
    resource = with_references(doc, base_url)
    user_id = fresh["id"]
    if groups is None and groups_of is not None:
        groups = _load_groups(conn, [groups_of], base_url).get(groups_of)
    if groups:
        resource["groups"] = groups
    resource["meta"] = meta_of(
        "User",
        fresh["created"],
        fresh["last_modified"],
        fresh["version"],
        f"{base_url}/Users/{user_id}",
    )
    return resource


# One user's purge (a DELETE): the same statements as _leave_groups and _purge,
# prebuilt for a single pk.
_BUMP_PARENTS_OF_ONE = Prepared(
    update(groups)
    .where(
        groups.c.pk.in_(
            select(memberships.c.group_pk).where(memberships.c.user_pk == bindparam("b_user_pk"))
        )
    )
    .values(last_modified=bindparam("now"), version=groups.c.version + 1)
)
_LEAVE_ONE = Prepared(delete(memberships).where(memberships.c.user_pk == bindparam("user_pk")))
_DELETE_USER_ONE = Prepared(delete(users).where(users.c.pk == bindparam("user_pk")))


def _leave_groups(conn: Connection, user_pks: Sequence[int]) -> None:
    """Drop the users' memberships; the groups that lose a member get a new version,
    so that a client holding one of them (If-None-Match, If-Match) sees it is stale."""
    if len(user_pks) == 1:
        _BUMP_PARENTS_OF_ONE.run(conn, {"b_user_pk": user_pks[0], "now": utcnow()})
        _LEAVE_ONE.run(conn, {"user_pk": user_pks[0]})
        return
    parents = select(memberships.c.group_pk).where(memberships.c.user_pk.in_(user_pks))
    conn.execute(
        update(groups)
        .where(groups.c.pk.in_(parents))
        .values(last_modified=utcnow(), version=groups.c.version + 1)
    )
    conn.execute(delete(memberships).where(memberships.c.user_pk.in_(user_pks)))


def _purge(conn: Connection, user_pks: Sequence[int]) -> None:
    _leave_groups(conn, user_pks)
    if len(user_pks) == 1:
        _DELETE_VALUES.run(conn, {"b_user_pk": user_pks[0]})
        _DELETE_USER_ONE.run(conn, {"user_pk": user_pks[0]})
        return
    conn.execute(delete(values).where(values.c.user_pk.in_(user_pks)))
    conn.execute(delete(users).where(users.c.pk.in_(user_pks)))


_LOCK_GROUPS_OF = Prepared(
    select(groups.c.pk)
    .where(
        groups.c.pk.in_(
            select(memberships.c.group_pk)
            .join(users, users.c.pk == memberships.c.user_pk)
            .where(users.c.team_pk == bindparam("team_pk"), users.c.id == bindparam("user_id"))
        )
    )
    .order_by(groups.c.pk)
    .with_for_update(key_share=True)
)


def _lock_groups_of(conn: Connection, team_pk: int, user_id: str) -> None:
    """On PostgreSQL, lock the user's groups before the user, in the order group writes
    take them: a group PATCH locks its group, then updates its members' roles (when the
    team maps groups to roles). Locking the user first, then its groups (to bump their
    versions), deadlocked a DELETE with a concurrent PATCH of one of the user's groups.
    ``FOR NO KEY UPDATE`` is the lock that bump takes anyway; it leaves other groups
    free to add these as members."""
    if conn.dialect.name != "postgresql":
        return
    _LOCK_GROUPS_OF.rows(conn, {"team_pk": team_pk, "user_id": user_id})


def delete_user(
    conn: Connection,
    team_pk: int,
    user_id: str,
    *,
    if_match: set[str] | None,
    tombstone: bool = False,
) -> Row[Any]:
    """Delete a user at once, or leave a tombstone: hidden from SCIM, out of its
    groups, restorable by a re-POST until it is purged. Returns what it was: its pk,
    id, userName and version."""
    _lock_groups_of(conn, team_pk, user_id)
    row = _find_row(conn, team_pk, user_id, _FIND_TO_DELETE)
    check_version(row, if_match)
    if not tombstone:
        _purge(conn, [row.pk])
        return row
    _leave_groups(conn, [row.pk])
    _UPDATE_USER.run(
        conn,
        {
            "state": "deleted",
            "active": False,
            "deleted_at": utcnow(),
            "last_modified": utcnow(),
            "b_pk": row.pk,
        },
    )
    return row


_TOMBSTONES = select(users.c.pk).where(
    users.c.state == "deleted", users.c.deleted_at < bindparam("older_than")
)
_ALL_TOMBSTONES = Prepared(_TOMBSTONES)
# A tombstone team's DELETE runs this first.
_TEAM_TOMBSTONES = Prepared(_TOMBSTONES.where(users.c.team_pk == bindparam("team_pk")))


def purge_tombstones(conn: Connection, team_pk: int | None, *, older_than: datetime) -> int:
    """Delete tombstones older than ``older_than``; returns how many."""
    if team_pk is None:
        found = _ALL_TOMBSTONES.rows(conn, {"older_than": older_than})
    else:
        found = _TEAM_TOMBSTONES.rows(conn, {"older_than": older_than, "team_pk": team_pk})
    pks = [row.pk for row in found]
    for i in range(0, len(pks), 500):
        _purge(conn, pks[i : i + 500])
    return len(pks)


def set_state(conn: Connection, user_pks: Sequence[int], *, active: bool) -> None:
    """Activate or deactivate users in place (policy actions, not client writes)."""
    if user_pks:
        conn.execute(
            update(users)
            .where(users.c.pk.in_(user_pks))
            .values(
                active=active,
                state=state_of(active),
                last_modified=utcnow(),
                version=users.c.version + 1,
            )
        )


def _user_name_lookup(query: ListQuery) -> str | None:
    """The folded value of a plain ``userName eq "..."`` filter: the lookup every IdP
    makes before it creates a user, answered by one prebuilt indexed query."""
    node = query.filter
    if (
        isinstance(node, Compare)
        and node.op == "eq"
        and isinstance(node.value, str)
        and node.path.sub is None
        and node.path.attr.lower() == "username"
        and (node.path.urn is None or node.path.urn.lower() == USER.schema.id.lower())
        and query.sort_by is None
    ):
        return node.value.casefold()
    return None


def list_users(
    conn: Connection,
    team_pk: int,
    query: ListQuery,
    *,
    base_url: str,
    projection: Projection,
    as_json: bool = False,
) -> Page:
    """A list or search page; ``as_json`` as :func:`render_users` takes it."""
    render = functools.partial(
        render_users, conn, base_url=base_url, projection=projection, as_json=as_json
    )
    folded = _user_name_lookup(query)
    if folded is not None:
        found = _BY_USER_NAME.first(conn, {"team_pk": team_pk, "user_name_ci": folded})
        shown = [found] if found is not None and query.start_index == 1 and query.count else []
        total = 0 if found is None else 1
        return Page(total=total, resources=render(shown), start_index=query.start_index)
    if query.filter is None and query.sort_by is None:
        return _plain_page(conn, team_pk, query, render)
    where = [users.c.team_pk == team_pk, LIVE, compile_filter(USER, query.filter)]
    # Resolved first: a bad sortBy is an error whether or not there is a page to sort.
    key = sort_expression(USER, query.sort_by) if query.sort_by is not None else None
    rows: Sequence[Row[Any]] = []
    if query.count:
        stmt = select(users).where(*where)
        if key is not None:
            stmt = stmt.order_by(
                key.desc().nulls_last() if query.descending else key.asc().nulls_last()
            )
        stmt = stmt.order_by(users.c.pk).offset(query.start_index - 1).limit(query.count)
        rows = conn.execute(stmt).all()
    total = page_total(conn, users, where, query, len(rows))
    return Page(total=total, resources=render(rows), start_index=query.start_index)


_PAGE = Prepared(
    select(*_PAGE_COLUMNS)
    .where(users.c.team_pk == bindparam("team_pk"), LIVE)
    .order_by(users.c.pk)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
# SQLite: the page's first pk found by skipping ``offset`` entries of the index
# (team_pk, pk, state) alone, then the page read from there. With a plain OFFSET,
# SQLite also visited each skipped user's row: the last page of a 100,000-user team
# took about 18 ms to read against 13 this way (docs/performance.md, item 31, where
# also: PostgreSQL's planner did not take this form well on small tables).
_PAGE_START = (
    select(users.c.pk)
    .where(users.c.team_pk == bindparam("team_pk"), LIVE)
    .order_by(users.c.pk)
    .limit(1)
    .offset(bindparam("offset"))
    .scalar_subquery()
)
_PAGE_FROM_START = Prepared(
    select(*_PAGE_COLUMNS)
    .where(users.c.team_pk == bindparam("team_pk"), LIVE, users.c.pk >= _PAGE_START)
    .order_by(users.c.pk)
    .limit(bindparam("limit"))
)
_COUNT_LIVE = Prepared(
    select(func.count()).select_from(users).where(users.c.team_pk == bindparam("team_pk"), LIVE)
)


def _plain_page(
    conn: Connection, team_pk: int, query: ListQuery, render: Callable[..., list[Any]]
) -> Page:
    """A page with neither filter nor sortBy: an IdP's import, page after page.

    Both statements are answered from the index (team_pk, pk, state)."""
    rows: list[Any] = []
    if query.count:
        params = {"team_pk": team_pk, "limit": query.count, "offset": query.start_index - 1}
        page = _PAGE_FROM_START if conn.dialect.name == "sqlite" else _PAGE
        rows = page.rows(conn, params)
    total = total_of_page(
        query, len(rows), lambda: int(_COUNT_LIVE.scalar(conn, {"team_pk": team_pk}))
    )
    return Page(total=total, resources=render(rows, page=True), start_index=query.start_index)
