"""The provisioning service: one SCIM write, inside one database transaction.

Routes and Bulk call these functions with an open connection. Each runs the team's
adapter over the request, validates the result against the schemas, applies the
team's lifecycle policy (deprovisioning, tombstones, re-provisioning, roles), and
records one provisioning event per change on ``ctx.events``. The caller emits
those events only after the transaction commits.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Row, select

from .routes.common import Ctx
from .scim.errors import InvalidSyntax, Mutability
from .scim.patch import MemberChange, apply_patch, parse_patch_request, split_member_operations
from .scim.projection import Projection
from .scim.resource import canonicalize, check_required
from .scim.schemas import GROUP, USER, ResourceType
from .store import groups as group_repo
from .store import users as user_repo
from .store.common import utcnow
from .store.groups import Member
from .store.query import memberships, users
from .store.roles import recompute_roles

__all__ = ["check_immutable", "create", "delete", "patch", "replace"]

_NOT_COMPARED = frozenset({"meta", "groups", "id", "schemas"})


def check_immutable(rt: ResourceType, before: dict[str, Any], after: dict[str, Any]) -> None:
    """RFC 7644 §3.5.1: an immutable attribute with a value must not change."""
    for attr in rt.schema.attributes:
        if attr.mutability != "immutable":
            continue
        old = before.get(attr.name)
        if old is not None and after.get(attr.name) != old:
            raise Mutability(f"'{attr.name}' is immutable and cannot be changed.")


def _check_schemas(rt: ResourceType, body: Any) -> None:
    """RFC 7643 §3: ``schemas`` is required and names the resource's core schema."""
    schemas = body.get("schemas") if isinstance(body, dict) else None
    if not isinstance(schemas, list) or rt.schema.id.lower() not in {
        s.lower() for s in schemas if isinstance(s, str)
    }:
        raise InvalidSyntax(
            f"'schemas' must be an array that includes {rt.schema.id!r} (RFC 7643 §3)."
        )


def _inbound_resource(ctx: Ctx, rt: ResourceType, method: str, body: Any) -> dict[str, Any]:
    """Adapter, then schema validation, then attribute mapping."""
    inbound = ctx.inbound(rt, method)
    body = ctx.adapter.normalize_resource(body, inbound)
    _check_schemas(rt, body)
    resource = canonicalize(rt, body)
    check_required(rt, resource)
    return ctx.adapter.map_attributes(resource, inbound)


# --- users ---------------------------------------------------------------------------


def _user_events(ctx: Ctx, before: dict[str, Any], after: dict[str, Any]) -> None:
    user_id, name = after["id"], after.get("userName")
    was, now = before.get("active") is not False, after.get("active") is not False
    if was and not now:
        ctx.event("user.deactivated", USER, user_id, name, {"active": [True, False]})
    elif now and not was:
        ctx.event("user.reactivated", USER, user_id, name, {"active": [False, True]})
    changed = _changed_attributes(before, after, ignore={"active"})
    if changed:
        ctx.event("user.updated", USER, user_id, name, {"attributes": changed})


def _changed_attributes(
    before: dict[str, Any], after: dict[str, Any], *, ignore: set[str]
) -> list[str]:
    """The names of the top-level attributes whose values differ."""
    return sorted(
        key
        for key in set(before) | set(after)
        if key not in _NOT_COMPARED and key not in ignore and before.get(key) != after.get(key)
    )


def _roles(conn: Connection, ctx: Ctx, user_pks: list[int]) -> None:
    for user_id, old, new in recompute_roles(conn, user_pks, ctx.policy):
        ctx.event("role.changed", USER, user_id, None, {"role": [old, new]})


def _deprovision(conn: Connection, ctx: Ctx, saved: dict[str, Any], before_active: bool) -> None:
    """The team's ``deprovision = "delete"`` policy turns a deactivation into a delete."""
    if ctx.policy.deprovision != "delete" or not before_active:
        return
    if saved.get("active") is False:
        _delete_user(conn, ctx, saved["id"], None)


def _restored_events(ctx: Ctx, was: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    """A re-provisioning POST: the user is back, unless the POST itself says
    ``active: false``, and the POST's attributes replaced the old ones."""
    user_id, name = after["id"], after.get("userName")
    back = after.get("active") is not False
    if back:
        changes = {"restored_from": was, "active": [False, True]}
        ctx.event("user.reactivated", USER, user_id, name, changes)
    changed = _changed_attributes(before, after, ignore={"active"})
    if changed or (not back and was == "deleted"):
        restored = {} if back else {"restored_from": was}
        ctx.event("user.updated", USER, user_id, name, {"attributes": changed, **restored})


def _create_user(conn: Connection, ctx: Ctx, body: Any) -> dict[str, Any]:
    resource = _inbound_resource(ctx, USER, "POST", body)
    found = user_repo.claimants(conn, ctx.team_pk, resource)
    dormant = user_repo.find_dormant(conn, resource, found) if ctx.policy.reprovision else None
    if dormant is not None:
        before = user_repo.render_users(conn, [dormant], base_url=ctx.base_url, projection=None)
        saved = user_repo.save_user(
            conn, ctx.team_pk, dormant, resource, base_url=ctx.base_url, restore=True
        )
        _restored_events(ctx, dormant.state, before[0], saved)
        _roles(conn, ctx, [dormant.pk])
        return saved
    role = ctx.policy.role_for([]) if ctx.policy.uses_roles else None
    created = user_repo.create_user(
        conn, ctx.team_pk, resource, base_url=ctx.base_url, role=role, found=found
    )
    ctx.event("user.created", USER, created["id"], created.get("userName"), {"role": role})
    return created


def _save_user(
    conn: Connection, ctx: Ctx, row: Row[Any], current: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    check_immutable(USER, current, new)
    saved = user_repo.save_user(conn, ctx.team_pk, row, new, base_url=ctx.base_url, current=current)
    _user_events(ctx, current, saved)
    _deprovision(conn, ctx, saved, current.get("active") is not False)
    return saved


def _replace_user(
    conn: Connection, ctx: Ctx, user_id: str, body: Any, if_match: set[str] | None
) -> dict[str, Any]:
    new = _inbound_resource(ctx, USER, "PUT", body)
    row, current = user_repo.load_user(
        conn, ctx.team_pk, user_id, base_url=ctx.base_url, if_match=if_match
    )
    if "active" not in new:
        # A PUT that omits ``active`` keeps the current state: some IdPs send
        # partial PUTs, and suspending a user by omission would lock them out.
        new = {**new, "active": current.get("active", True)}
    return _save_user(conn, ctx, row, current, new)


def _patch_user(
    conn: Connection, ctx: Ctx, user_id: str, body: Any, if_match: set[str] | None
) -> dict[str, Any]:
    row, current = user_repo.load_user(
        conn, ctx.team_pk, user_id, base_url=ctx.base_url, if_match=if_match
    )
    inbound = ctx.inbound(USER, "PATCH")
    ops = parse_patch_request(
        ctx.adapter.normalize_patch(body, current, inbound),
        max_operations=ctx.limits.max_patch_operations,
    )
    new = canonicalize(USER, apply_patch(current, ops, USER))
    check_required(USER, new)
    new = ctx.adapter.map_attributes(new, inbound)
    return _save_user(conn, ctx, row, current, new)


def _delete_user(conn: Connection, ctx: Ctx, user_id: str, if_match: set[str] | None) -> None:
    tombstone = ctx.policy.delete_mode == "tombstone"
    if tombstone:
        # Before this delete's own tombstone exists: with tombstone_days = 0 it must
        # survive until the next DELETE, whatever the clock says.
        older_than = utcnow() - timedelta(days=ctx.policy.tombstone_days)
        user_repo.purge_tombstones(conn, ctx.team_pk, older_than=older_than)
    row = user_repo.delete_user(conn, ctx.team_pk, user_id, if_match=if_match, tombstone=tombstone)
    ctx.event("user.deleted", USER, row.id, row.user_name, {"tombstone": tombstone})


# --- groups --------------------------------------------------------------------------


def _member_events(ctx: Ctx, group_id: str, kind: str, members: list[Member]) -> None:
    changes = [
        {"group": group_id, "member": member_id, "member_type": member_type}
        for member_id, member_type, _pk in members
    ]
    ctx.events_of(kind, GROUP, group_id, None, changes)


def _apply_members(
    conn: Connection, ctx: Ctx, group_pk: int, group_id: str, changes: list[MemberChange]
) -> None:
    """Row-level membership deltas, with one event per member actually changed."""
    added: list[Member] = []
    removed: list[Member] = []
    for change in changes:
        if change.kind == "add":
            added += group_repo.add_members(conn, ctx.team_pk, group_pk, change.values)
        elif change.kind == "remove" and change.filter is not None:
            removed += group_repo.remove_members_where(conn, ctx.team_pk, group_pk, change.filter)
        elif change.kind == "remove":
            ids = [str(v["value"]) for v in change.values]
            removed += group_repo.remove_members(conn, ctx.team_pk, group_pk, ids)
        else:
            removed += group_repo.clear_members(conn, group_pk)
            if change.kind == "replace":
                added += group_repo.add_members(conn, ctx.team_pk, group_pk, change.values)
    # Sets for the checks: a PUT that replaces 1,000 members removes and adds 1,000.
    added_set, removed_set = set(added), set(removed)
    net_added = [m for m in added if m not in removed_set]
    net_removed = [m for m in removed if m not in added_set]
    _member_events(ctx, group_id, "member.added", net_added)
    _member_events(ctx, group_id, "member.removed", net_removed)
    _roles(conn, ctx, [pk for _id, _t, pk in net_added + net_removed if pk is not None])


def _group_saved(
    conn: Connection, ctx: Ctx, row: Row[Any], current: dict[str, Any], new: dict[str, Any]
) -> None:
    check_immutable(GROUP, current, new)
    group_repo.save_group(conn, row, new)
    old_name, new_name = current.get("displayName"), new.get("displayName")
    if old_name != new_name:
        ctx.event("group.renamed", GROUP, row.id, new_name, {"displayName": [old_name, new_name]})
        if ctx.policy.roles:
            _roles(conn, ctx, _member_user_pks(conn, row.pk))
    else:
        # ``new`` may come from a PUT body, which has no ``id`` and carries ``members``
        # (handled as membership events): compare the group's own attributes only.
        changed = _changed_attributes(current, new, ignore={"members"})
        if changed:
            ctx.event("group.updated", GROUP, row.id, new_name, {"attributes": changed})


def _member_user_pks(conn: Connection, group_pk: int) -> list[int]:
    stmt = select(memberships.c.user_pk).where(
        memberships.c.group_pk == group_pk, memberships.c.user_pk.is_not(None)
    )
    return list(conn.execute(stmt).scalars())


def _create_group(conn: Connection, ctx: Ctx, body: Any) -> dict[str, Any]:
    resource = _inbound_resource(ctx, GROUP, "POST", body)
    members = tuple(resource.pop("members", None) or ())
    created = group_repo.create_group(conn, ctx.team_pk, resource, base_url=ctx.base_url)
    ctx.event("group.created", GROUP, created["id"], created.get("displayName"), {})
    if members:
        row, _ = group_repo.load_group(conn, ctx.team_pk, created["id"], if_match=None)
        _apply_members(conn, ctx, row.pk, row.id, [MemberChange("add", members)])
        created = group_repo.get_group(
            conn, ctx.team_pk, created["id"], base_url=ctx.base_url, projection=None
        )
    return created


def _replace_group(
    conn: Connection, ctx: Ctx, group_id: str, body: Any, if_match: set[str] | None
) -> dict[str, Any]:
    new = _inbound_resource(ctx, GROUP, "PUT", body)
    row, current = group_repo.load_group(conn, ctx.team_pk, group_id, if_match=if_match)
    _group_saved(conn, ctx, row, current, new)
    members = MemberChange("replace", tuple(new.get("members") or ()))
    _apply_members(conn, ctx, row.pk, row.id, [members])
    return group_repo.get_group(conn, ctx.team_pk, group_id, base_url=ctx.base_url, projection=None)


def _patch_group(
    conn: Connection,
    ctx: Ctx,
    group_id: str,
    body: Any,
    if_match: set[str] | None,
    projection: Projection | None,
) -> dict[str, Any] | None:
    row, current = group_repo.load_group(conn, ctx.team_pk, group_id, if_match=if_match)
    inbound = ctx.inbound(GROUP, "PATCH")
    ops = parse_patch_request(
        ctx.adapter.normalize_patch(body, current, inbound),
        max_operations=ctx.limits.max_patch_operations,
    )
    other_ops, member_changes = split_member_operations(ops)
    if other_ops:
        new = canonicalize(GROUP, apply_patch(current, other_ops, GROUP))
        check_required(GROUP, new)
        _group_saved(conn, ctx, row, current, new)
    else:
        group_repo.touch_group(conn, row.pk)
    _apply_members(conn, ctx, row.pk, row.id, member_changes)
    if projection is None:
        return None
    return group_repo.get_group(
        conn, ctx.team_pk, group_id, base_url=ctx.base_url, projection=projection
    )


def _delete_group(conn: Connection, ctx: Ctx, group_id: str, if_match: set[str] | None) -> None:
    row, member_pks = group_repo.delete_group(conn, ctx.team_pk, group_id, if_match=if_match)
    ctx.event("group.deleted", GROUP, row.id, row.display_name, {})
    if ctx.policy.group_delete_deactivates_sole_members and member_pks:
        still_in = set(
            conn.execute(
                select(memberships.c.user_pk).where(memberships.c.user_pk.in_(member_pks))
            ).scalars()
        )
        orphans = conn.execute(
            select(users.c.pk, users.c.id, users.c.user_name).where(
                users.c.pk.in_([pk for pk in member_pks if pk not in still_in]),
                users.c.state == "active",
            )
        ).all()
        user_repo.set_state(conn, [o.pk for o in orphans], active=False)
        for orphan in orphans:
            changes = {"active": [True, False], "reason": f"group {row.id} deleted"}
            ctx.event("user.deactivated", USER, orphan.id, orphan.user_name, changes)
    _roles(conn, ctx, member_pks)


# --- the four writes -----------------------------------------------------------------


def create(conn: Connection, ctx: Ctx, rt: ResourceType, body: Any) -> dict[str, Any]:
    return _create_user(conn, ctx, body) if rt is USER else _create_group(conn, ctx, body)


def replace(
    conn: Connection,
    ctx: Ctx,
    rt: ResourceType,
    resource_id: str,
    body: Any,
    if_match: set[str] | None,
) -> dict[str, Any]:
    if rt is USER:
        return _replace_user(conn, ctx, resource_id, body, if_match)
    return _replace_group(conn, ctx, resource_id, body, if_match)


def patch(
    conn: Connection,
    ctx: Ctx,
    rt: ResourceType,
    resource_id: str,
    body: Any,
    if_match: set[str] | None,
    projection: Projection | None = None,
) -> dict[str, Any] | None:
    """The patched resource; for a group, only when ``projection`` asks for it."""
    if rt is USER:
        return _patch_user(conn, ctx, resource_id, body, if_match)
    return _patch_group(conn, ctx, resource_id, body, if_match, projection)


def delete(
    conn: Connection, ctx: Ctx, rt: ResourceType, resource_id: str, if_match: set[str] | None
) -> None:
    if rt is USER:
        _delete_user(conn, ctx, resource_id, if_match)
    else:
        _delete_group(conn, ctx, resource_id, if_match)
