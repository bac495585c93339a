"""``/Groups`` (RFC 7644 §3.3-§3.6), with membership changes as row-level deltas."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from .. import service
from ..http import parse_if_match
from ..scim.projection import Projection
from ..scim.schemas import GROUP
from ..store import groups as repo
from .common import Ctx, body, context, list_query, list_response, query_params
from .users import resource_response, search_body, search_params

__all__ = ["patch_with_version", "routes_for_groups"]


def _projection(request: Request) -> Projection:
    params = query_params(request)
    return Projection.parse(GROUP, params["attributes"], params["excludedAttributes"])


async def list_groups(request: Request) -> Response:
    ctx = await context(request)
    return await _search(ctx, search_params(ctx, GROUP, query_params(request), "GET"))


async def search_groups(request: Request) -> Response:
    ctx = await context(request)
    params = search_body(await body(request, ctx))
    return await _search(ctx, search_params(ctx, GROUP, params, "POST"))


async def _search(ctx: Ctx, params: dict[str, Any]) -> Response:
    query = list_query(ctx, params)
    projection = Projection.parse(GROUP, params["attributes"], params["excludedAttributes"])
    page = await ctx.db.run(
        lambda conn: repo.list_groups(
            conn, ctx.team_pk, query, base_url=ctx.base_url, projection=projection
        )
    )
    page.resources[:] = ctx.render_all(GROUP, page.resources)
    return list_response(page)


async def create_group(request: Request) -> Response:
    ctx = await context(request)
    data = await body(request, ctx)
    created = await ctx.write(lambda conn: service.create(conn, ctx, GROUP, data))
    return resource_response(
        ctx.render(GROUP, created), status=201, created=True, projection=_projection(request)
    )


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
    return resource_response(ctx.render(GROUP, resource), projection=projection)


async def replace_group(request: Request) -> Response:
    ctx = await context(request)
    data = await body(request, ctx)
    group_id = request.path_params["id"]
    if_match = parse_if_match(request)
    saved = await ctx.write(
        lambda conn: service.replace(conn, ctx, GROUP, group_id, data, if_match)
    )
    return resource_response(ctx.render(GROUP, saved), projection=_projection(request))


def patch_with_version(
    conn: Connection,
    ctx: Ctx,
    group_id: str,
    data: Any,
    if_match: set[str] | None,
    projection: Projection | None,
) -> tuple[dict[str, Any] | None, str]:
    """The PATCH, and the group's new version for the ETag header (RFC 7644 §3.14),
    which a 204 answer or a projection without ``meta`` would otherwise lack."""
    saved = service.patch(conn, ctx, GROUP, group_id, data, if_match, projection)
    return saved, repo.current_version(conn, ctx.team_pk, group_id)


async def patch_group(request: Request) -> Response:
    """PATCH answers 204, or 200 with the group when ``attributes`` or
    ``excludedAttributes`` asks for it (RFC 7644 §3.5.2 allows both): a group's
    full member list is never reloaded just to answer a membership change."""
    ctx = await context(request)
    data = await body(request, ctx)
    params = query_params(request)
    wants_body = params["attributes"] is not None or params["excludedAttributes"] is not None
    projection = _projection(request) if wants_body else None
    group_id = request.path_params["id"]
    if_match = parse_if_match(request)
    saved, version = await ctx.write(
        lambda conn: patch_with_version(conn, ctx, group_id, data, if_match, projection)
    )
    if saved is None:
        return Response(status_code=204, headers={"ETag": version})
    response = resource_response(ctx.render(GROUP, saved))
    response.headers["ETag"] = version
    return response


async def delete_group(request: Request) -> Response:
    ctx = await context(request)
    group_id = request.path_params["id"]
    if_match = parse_if_match(request)
    await ctx.write(lambda conn: service.delete(conn, ctx, GROUP, group_id, if_match))
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
