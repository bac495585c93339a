"""``POST /.search`` at the service root (RFC 7644 §3.4.3): Users, then Groups.

One result set spans both resource types: users first, then groups, each in
their stable order, paged as one list. A filter naming an attribute that one
resource type does not have matches nothing of that type.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from ..scim.errors import InvalidFilter
from ..scim.projection import Projection
from ..scim.schemas import GROUP, USER
from ..store import groups as group_repo
from ..store import users as user_repo
from ..store.common import ListQuery, Page
from .common import Ctx, body, context, list_query, list_response
from .users import search_body

__all__ = ["routes_for_root_search"]


def _run(conn: Connection, ctx: Ctx, query: ListQuery, params: dict[str, Any]) -> Page:
    listers = [
        (USER, user_repo.list_users),
        (GROUP, group_repo.list_groups),
    ]
    resources: list[dict[str, Any]] = []
    total = 0
    skip = query.start_index - 1
    want = query.count
    for rt, lister in listers:
        projection = Projection.parse(rt, params["attributes"], params["excludedAttributes"])
        counting = replace(query, count=0)
        try:
            count = lister(
                conn, ctx.team_pk, counting, base_url=ctx.base_url, projection=projection
            ).total
        except InvalidFilter:
            continue
        total += count
        if want > len(resources) and skip < count:
            take = want - len(resources)
            page = lister(
                conn,
                ctx.team_pk,
                replace(query, start_index=skip + 1, count=take),
                base_url=ctx.base_url,
                projection=projection,
            )
            resources.extend(page.resources)
        skip = max(0, skip - count)
    return Page(total=total, resources=resources, start_index=query.start_index)


async def root_search(request: Request) -> Response:
    ctx = await context(request)
    params = search_body(await body(request, ctx))
    query = list_query(ctx, params)
    if query.sort_by is not None:
        # Sorting across resource types has no common key; each type keeps its order.
        query = replace(query, sort_by=None)
    page = await ctx.db.run(lambda conn: _run(conn, ctx, query, params))
    return list_response(page)


def routes_for_root_search() -> list[tuple[str, Any, list[str]]]:
    return [("/.search", root_search, ["POST"])]
