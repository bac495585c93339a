"""``/Groups`` (RFC 7644 §3.3-§3.6), with membership changes as row-level deltas."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from ..http import parse_if_match
from ..scim.patch import MemberChange, apply_patch, parse_patch_request, split_member_operations
from ..scim.projection import Projection
from ..scim.resource import canonicalize, check_required
from ..scim.schemas import GROUP
from ..store import groups as repo
from .common import Ctx, body, context, list_query, list_response, query_params
from .users import check_immutable, resource_response, search_body

__all__ = ["apply_member_changes", "routes_for_groups"]


def _projection(request: Request) -> Projection:
    params = query_params(request)
    return Projection.parse(GROUP, params["attributes"], params["excludedAttributes"])


async def list_groups(request: Request) -> Response:
    ctx = await context(request)
    return await _search(ctx, query_params(request))


async def search_groups(request: Request) -> Response:
    ctx = await context(request)
    return await _search(ctx, search_body(await body(request, ctx)))


async def _search(ctx: Ctx, params: dict[str, Any]) -> Response:
    query = list_query(ctx, params)
    projection = Projection.parse(GROUP, params["attributes"], params["excludedAttributes"])
    page = await ctx.db.run(
        lambda conn: repo.list_groups(
            conn, ctx.team_pk, query, base_url=ctx.base_url, projection=projection
        )
    )
    return list_response(page)


async def create_group(request: Request) -> Response:
    ctx = await context(request)
    resource = canonicalize(GROUP, await body(request, ctx))
    check_required(GROUP, resource)
    created = await ctx.db.run(
        lambda conn: repo.create_group(conn, ctx.team_pk, resource, base_url=ctx.base_url),
        write=True,
    )
    return resource_response(created, status=201, created=True, projection=_projection(request))


async def get_group(request: Request) -> Response:
    ctx = await context(request)
    projection = _projection(request)
    group_id = request.path_params["id"]
    resource = await ctx.db.run(
        lambda conn: repo.get_group(
            conn,
            ctx.team_pk,
            group_id,
            base_url=ctx.base_url,
            projection=projection,
            apply_projection=False,  # meta.version is needed below, whatever is asked for
        )
    )
    version = resource["meta"]["version"]
    none_match = parse_if_match(request, "if-none-match")
    if none_match and (version in none_match or "*" in none_match):
        return Response(status_code=304, headers={"ETag": version})
    return resource_response(resource, projection=projection)


def apply_member_changes(
    conn: Connection, team_pk: int, group_pk: int, changes: list[MemberChange]
) -> None:
    for change in changes:
        if change.kind == "add":
            repo.add_members(conn, team_pk, group_pk, change.values)
        elif change.kind == "remove" and change.filter is not None:
            repo.remove_members_where(conn, group_pk, change.filter)
        elif change.kind == "remove":
            repo.remove_members(conn, team_pk, group_pk, [str(v["value"]) for v in change.values])
        elif change.kind in ("clear", "replace"):
            repo.clear_members(conn, group_pk)
            if change.kind == "replace":
                repo.add_members(conn, team_pk, group_pk, change.values)


def replace_tx(
    conn: Connection, ctx: Ctx, group_id: str, new: dict[str, Any], if_match: set[str] | None
) -> dict[str, Any]:
    row, current = repo.load_group(conn, ctx.team_pk, group_id, if_match=if_match)
    check_immutable(GROUP, current, new)
    repo.save_group(conn, row, new)
    apply_member_changes(
        conn, ctx.team_pk, row.pk, [MemberChange("replace", tuple(new.get("members") or ()))]
    )
    return repo.get_group(conn, ctx.team_pk, group_id, base_url=ctx.base_url, projection=None)


async def replace_group(request: Request) -> Response:
    ctx = await context(request)
    new = canonicalize(GROUP, await body(request, ctx))
    check_required(GROUP, new)
    group_id = request.path_params["id"]
    if_match = parse_if_match(request)
    saved = await ctx.db.run(
        lambda conn: replace_tx(conn, ctx, group_id, new, if_match), write=True
    )
    return resource_response(saved, projection=_projection(request))


def patch_tx(
    conn: Connection,
    ctx: Ctx,
    group_id: str,
    ops: list[Any],
    if_match: set[str] | None,
    projection: Projection | None,
) -> dict[str, Any] | None:
    other_ops, member_changes = split_member_operations(ops)
    row, current = repo.load_group(conn, ctx.team_pk, group_id, if_match=if_match)
    if other_ops:
        new = canonicalize(GROUP, apply_patch(current, other_ops, GROUP))
        check_required(GROUP, new)
        check_immutable(GROUP, current, new)
        repo.save_group(conn, row, new)
    else:
        repo.touch_group(conn, row.pk)
    apply_member_changes(conn, ctx.team_pk, row.pk, member_changes)
    if projection is None:
        return None
    return repo.get_group(conn, ctx.team_pk, group_id, base_url=ctx.base_url, projection=projection)


def _patch_with_version(
    conn: Connection,
    ctx: Ctx,
    group_id: str,
    ops: list[Any],
    if_match: set[str] | None,
    projection: Projection | None,
) -> tuple[dict[str, Any] | None, str]:
    """:func:`patch_tx`, and the group's new version for the ETag header (RFC 7644 §3.14),
    which a 204 answer or a projection without ``meta`` would otherwise lack."""
    saved = patch_tx(conn, ctx, group_id, ops, if_match, projection)
    return saved, repo.current_version(conn, ctx.team_pk, group_id)


async def patch_group(request: Request) -> Response:
    """PATCH answers 204, or 200 with the group when ``attributes`` or
    ``excludedAttributes`` asks for it (RFC 7644 §3.5.2 allows both): a group's
    full member list is never reloaded just to answer a membership change."""
    ctx = await context(request)
    ops = parse_patch_request(
        await body(request, ctx), max_operations=ctx.limits.max_patch_operations
    )
    params = query_params(request)
    wants_body = params["attributes"] is not None or params["excludedAttributes"] is not None
    projection = _projection(request) if wants_body else None
    group_id = request.path_params["id"]
    if_match = parse_if_match(request)
    saved, version = await ctx.db.run(
        lambda conn: _patch_with_version(conn, ctx, group_id, ops, if_match, projection),
        write=True,
    )
    if saved is None:
        return Response(status_code=204, headers={"ETag": version})
    response = resource_response(saved)
    response.headers["ETag"] = version
    return response


async def delete_group(request: Request) -> Response:
    ctx = await context(request)
    group_id = request.path_params["id"]
    if_match = parse_if_match(request)
    await ctx.db.run(
        lambda conn: repo.delete_group(conn, ctx.team_pk, group_id, if_match=if_match),
        write=True,
    )
    return Response(status_code=204)


def routes_for_groups() -> list[tuple[str, Any, list[str]]]:
    return [
        ("/Groups", list_groups, ["GET"]),
        ("/Groups", create_group, ["POST"]),
        ("/Groups/.search", search_groups, ["POST"]),
        ("/Groups/{id}", get_group, ["GET"]),
        ("/Groups/{id}", replace_group, ["PUT"]),
        ("/Groups/{id}", patch_group, ["PATCH"]),
        ("/Groups/{id}", delete_group, ["DELETE"]),
    ]
