"""``POST /.search`` at the service root (RFC 7644 §3.4.3): Users, then Groups.

One result set spans both resource types: users first, then groups, each in
their stable order, paged as one list. An attribute that one resource type does
not have has no value there (RFC 7644 §3.4.2.2): ``userName eq "x"`` matches no
group, and ``not (userName eq "x")`` every group. An attribute that no resource
type has makes the filter invalid.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from ..scim.errors import InvalidFilter
from ..scim.filter import And, AttrPath, Compare, Node, Not, Or, Present
from ..scim.projection import Projection
from ..scim.schemas import GROUP, USER, ResourceType
from ..store import groups as group_repo
from ..store import users as user_repo
from ..store.common import ListQuery, Page
from .common import Ctx, body, context, list_query, list_response
from .users import search_body

__all__ = ["routes_for_root_search"]


_ALWAYS: Node = Present(AttrPath(None, "id"))
_NEVER: Node = Not(_ALWAYS)


def _defined(rt: ResourceType, path: AttrPath) -> bool:
    if path.urn is None and path.sub is None and path.attr.lower() == "schemas":
        return True
    return rt.resolve(path.urn, path.attr, path.sub) is not None


def _paths(node: Node) -> list[AttrPath]:
    """The attribute paths of ``node`` outside value filters."""
    if isinstance(node, And | Or):
        return _paths(node.left) + _paths(node.right)
    if isinstance(node, Not):
        return _paths(node.expr)
    return [node.path]


def _localize(rt: ResourceType, node: Node) -> Node:
    """``node`` for ``rt``, with each comparison on an attribute ``rt`` lacks replaced
    by its outcome on a missing value: only ``ne <value>`` and ``eq null`` hold."""
    if isinstance(node, And):
        return And(_localize(rt, node.left), _localize(rt, node.right))
    if isinstance(node, Or):
        return Or(_localize(rt, node.left), _localize(rt, node.right))
    if isinstance(node, Not):
        return Not(_localize(rt, node.expr))
    if _defined(rt, node.path):
        return node
    if isinstance(node, Compare):
        holds = node.op == "eq" if node.value is None else node.op == "ne"
        return _ALWAYS if holds else _NEVER
    return _NEVER  # ``pr`` and value filters


def _check_defined(node: Node | None, types: list[ResourceType]) -> None:
    for path in _paths(node) if node is not None else []:
        if not any(_defined(rt, path) for rt in types):
            raise InvalidFilter(f"'{path}' is not an attribute of any resource type.")


def _run(conn: Connection, ctx: Ctx, query: ListQuery, params: dict[str, Any]) -> Page:
    listers = [
        (USER, user_repo.list_users),
        (GROUP, group_repo.list_groups),
    ]
    _check_defined(query.filter, [rt for rt, _ in listers])
    resources: list[dict[str, Any]] = []
    total = 0
    skip = query.start_index - 1
    want = query.count
    for rt, lister in listers:
        projection = Projection.parse(rt, params["attributes"], params["excludedAttributes"])
        local = replace(query, filter=_localize(rt, query.filter) if query.filter else None)
        counting = replace(local, count=0)
        count = lister(
            conn, ctx.team_pk, counting, base_url=ctx.base_url, projection=projection
        ).total
        total += count
        if want > len(resources) and skip < count:
            take = want - len(resources)
            page = lister(
                conn,
                ctx.team_pk,
                replace(local, start_index=skip + 1, count=take),
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
