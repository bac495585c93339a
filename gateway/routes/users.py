"""``/Users`` (RFC 7644 §3.3-§3.6). Thin handlers: parse, one transaction, render."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import service
from ..http import ScimResponse, parse_if_match
from ..scim.errors import InvalidSyntax
from ..scim.projection import Projection
from ..scim.schemas import SEARCH_REQUEST, USER, ResourceType
from ..store import users as repo
from .common import Ctx, body, context, list_query, list_response, query_params

__all__ = ["resource_response", "routes_for_users", "search_body", "search_params"]


def resource_response(
    resource: dict[str, Any],
    *,
    status: int = 200,
    created: bool = False,
    projection: Projection | None = None,
) -> ScimResponse:
    meta = resource.get("meta") or {}
    headers = {"ETag": meta["version"]} if "version" in meta else {}
    if created and "location" in meta:
        headers["Location"] = meta["location"]
    content = projection.apply(resource) if projection is not None else resource
    return ScimResponse(content, status_code=status, headers=headers)


def projection_of(request: Request, rt: ResourceType) -> Projection:
    params = query_params(request)
    return Projection.parse(rt, params["attributes"], params["excludedAttributes"])


def search_body(data: Any) -> dict[str, Any]:
    """The parameters of a SearchRequest body (RFC 7644 §3.4.3)."""
    if not isinstance(data, dict):
        raise InvalidSyntax("The SearchRequest body must be a JSON object.")
    schemas = data.get("schemas")
    if not isinstance(schemas, list) or SEARCH_REQUEST not in schemas:
        raise InvalidSyntax(f"A SearchRequest must list the schema {SEARCH_REQUEST}.")
    params = {k: data.get(k) for k in ("filter", "startIndex", "count", "sortBy", "sortOrder")}
    for key in ("attributes", "excludedAttributes"):
        value = data.get(key)
        if isinstance(value, str):
            value = [value]
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise InvalidSyntax(f"'{key}' must be an array of attribute names.")
        params[key] = value
    return params


def search_params(
    ctx: Ctx, rt: ResourceType, params: dict[str, Any], method: str
) -> dict[str, Any]:
    """List/search parameters after the key's adapter has normalised them."""
    return ctx.adapter.normalize_query(dict(params), ctx.inbound(rt, method))


async def list_users(request: Request) -> Response:
    ctx = await context(request)
    return await _search(ctx, search_params(ctx, USER, query_params(request), "GET"))


async def search_users(request: Request) -> Response:
    ctx = await context(request)
    params = search_body(await body(request, ctx))
    return await _search(ctx, search_params(ctx, USER, params, "POST"))


async def _search(ctx: Ctx, params: dict[str, Any]) -> Response:
    query = list_query(ctx, params)
    projection = Projection.parse(USER, params["attributes"], params["excludedAttributes"])
    # Users the core renders as they will be sent can be spliced as JSON (render_users).
    as_json = not projection.include and not projection.exclude and ctx.renders_as_is
    page = await ctx.db.run(
        lambda conn: repo.list_users(
            conn,
            ctx.team_pk,
            query,
            base_url=ctx.base_url,
            projection=projection,
            as_json=as_json,
        )
    )
    if not as_json:
        page.resources[:] = ctx.render_all(USER, page.resources)
    return list_response(page)


async def create_user(request: Request) -> Response:
    ctx = await context(request)
    data = await body(request, ctx)
    created = await ctx.write(lambda conn: service.create(conn, ctx, USER, data))
    return resource_response(
        ctx.render(USER, created),
        status=201,
        created=True,
        projection=projection_of(request, USER),
    )


async def get_user(request: Request) -> Response:
    ctx = await context(request)
    projection = projection_of(request, USER)
    user_id = request.path_params["id"]
    resource = await ctx.db.run(
        lambda conn: repo.get_user(
            conn,
            ctx.team_pk,
            user_id,
            base_url=ctx.base_url,
            projection=projection,
            apply_projection=False,  # meta.version is needed below, whatever is asked for
        )
    )
    none_match = parse_if_match(request, "if-none-match")
    if none_match and (resource["meta"]["version"] in none_match or "*" in none_match):
        return Response(status_code=304, headers={"ETag": resource["meta"]["version"]})
    return resource_response(ctx.render(USER, resource), projection=projection)


async def replace_user(request: Request) -> Response:
    ctx = await context(request)
    data = await body(request, ctx)
    user_id = request.path_params["id"]
    if_match = parse_if_match(request)
    saved = await ctx.write(lambda conn: service.replace(conn, ctx, USER, user_id, data, if_match))
    return resource_response(ctx.render(USER, saved), projection=projection_of(request, USER))


async def patch_user(request: Request) -> Response:
    ctx = await context(request)
    data = await body(request, ctx)
    user_id = request.path_params["id"]
    if_match = parse_if_match(request)
    saved = await ctx.write(lambda conn: service.patch(conn, ctx, USER, user_id, data, if_match))
    assert saved is not None
    return resource_response(ctx.render(USER, saved), projection=projection_of(request, USER))


async def delete_user(request: Request) -> Response:
    ctx = await context(request)
    user_id = request.path_params["id"]
    if_match = parse_if_match(request)
    await ctx.write(lambda conn: service.delete(conn, ctx, USER, user_id, if_match))
    return Response(status_code=204)


def routes_for_users() -> list[tuple[str, Any, list[str]]]:
    return [
        ("/Users", list_users, ["GET"]),
        ("/Users", create_user, ["POST"]),
        ("/Users/.search", search_users, ["POST"]),
        ("/Users/{id}", get_user, ["GET"]),
        ("/Users/{id}", replace_user, ["PUT"]),
        ("/Users/{id}", patch_user, ["PATCH"]),
        ("/Users/{id}", delete_user, ["DELETE"]),
    ]
