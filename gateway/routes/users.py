"""``/Users`` (RFC 7644 §3.3-§3.6). Thin handlers: parse, one transaction, render."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from ..http import ScimResponse, parse_if_match
from ..scim.errors import InvalidSyntax, Mutability
from ..scim.patch import apply_patch, parse_patch_request
from ..scim.projection import Projection
from ..scim.resource import canonicalize, check_required
from ..scim.schemas import SEARCH_REQUEST, USER, ResourceType
from ..store import users as repo
from .common import Ctx, body, context, list_query, list_response, query_params

__all__ = ["check_immutable", "resource_response", "routes_for_users", "search_body"]


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


def check_immutable(rt: ResourceType, before: dict[str, Any], after: dict[str, Any]) -> None:
    """RFC 7644 §3.5.1: an immutable attribute with a value must not change."""
    for attr in rt.schema.attributes:
        old = before.get(attr.name)
        if attr.mutability == "immutable" and old is not None and after.get(attr.name) != old:
            raise Mutability(f"'{attr.name}' is immutable and cannot be changed.")


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


async def list_users(request: Request) -> Response:
    ctx = await context(request)
    return await _search(ctx, query_params(request))


async def search_users(request: Request) -> Response:
    ctx = await context(request)
    return await _search(ctx, search_body(await body(request, ctx)))


async def _search(ctx: Ctx, params: dict[str, Any]) -> Response:
    query = list_query(ctx, params)
    projection = Projection.parse(USER, params["attributes"], params["excludedAttributes"])
    page = await ctx.db.run(
        lambda conn: repo.list_users(
            conn, ctx.team_pk, query, base_url=ctx.base_url, projection=projection
        )
    )
    return list_response(page)


async def create_user(request: Request) -> Response:
    ctx = await context(request)
    resource = canonicalize(USER, await body(request, ctx))
    check_required(USER, resource)
    created = await ctx.db.run(
        lambda conn: repo.create_user(conn, ctx.team_pk, resource, base_url=ctx.base_url),
        write=True,
    )
    return resource_response(
        created, status=201, created=True, projection=projection_of(request, USER)
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
    return resource_response(resource, projection=projection)


def replace_tx(
    conn: Connection, ctx: Ctx, user_id: str, new: dict[str, Any], if_match: set[str] | None
) -> dict[str, Any]:
    row, current = repo.load_user(
        conn, ctx.team_pk, user_id, base_url=ctx.base_url, if_match=if_match
    )
    check_immutable(USER, current, new)
    if "active" not in new:
        # A PUT that omits ``active`` keeps the current state: some IdPs send
        # partial PUTs, and suspending a user by omission would lock them out.
        new = {**new, "active": current.get("active", True)}
    return repo.save_user(conn, ctx.team_pk, row, new, base_url=ctx.base_url)


async def replace_user(request: Request) -> Response:
    ctx = await context(request)
    new = canonicalize(USER, await body(request, ctx))
    check_required(USER, new)
    user_id = request.path_params["id"]
    if_match = parse_if_match(request)
    saved = await ctx.db.run(lambda conn: replace_tx(conn, ctx, user_id, new, if_match), write=True)
    return resource_response(saved, projection=projection_of(request, USER))


def patch_tx(
    conn: Connection, ctx: Ctx, user_id: str, ops: list[Any], if_match: set[str] | None
) -> dict[str, Any]:
    row, current = repo.load_user(
        conn, ctx.team_pk, user_id, base_url=ctx.base_url, if_match=if_match
    )
    patched = apply_patch(current, ops, USER)
    new = canonicalize(USER, patched)
    check_required(USER, new)
    check_immutable(USER, current, new)
    return repo.save_user(conn, ctx.team_pk, row, new, base_url=ctx.base_url)


async def patch_user(request: Request) -> Response:
    ctx = await context(request)
    ops = parse_patch_request(
        await body(request, ctx), max_operations=ctx.limits.max_patch_operations
    )
    user_id = request.path_params["id"]
    if_match = parse_if_match(request)
    saved = await ctx.db.run(lambda conn: patch_tx(conn, ctx, user_id, ops, if_match), write=True)
    return resource_response(saved, projection=projection_of(request, USER))


async def delete_user(request: Request) -> Response:
    ctx = await context(request)
    user_id = request.path_params["id"]
    if_match = parse_if_match(request)
    await ctx.db.run(
        lambda conn: repo.delete_user(conn, ctx.team_pk, user_id, if_match=if_match), write=True
    )
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
