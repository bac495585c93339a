"""What every SCIM route needs: the caller's team, the database and the limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from ..auth import Principal
from ..config import LimitSettings
from ..http import ScimResponse, query_param, read_json
from ..scim.errors import InvalidFilter, InvalidValue
from ..scim.filter import AttrPath, parse_filter
from ..scim.schemas import LIST_RESPONSE
from ..store.common import ListQuery, Page
from ..store.db import Database

if TYPE_CHECKING:
    from ..app import Gateway

__all__ = ["Ctx", "body", "context", "list_query", "list_response", "parse_sort_by"]


@dataclass(frozen=True, slots=True)
class Ctx:
    gateway: Gateway
    principal: Principal
    base_url: str

    @property
    def db(self) -> Database:
        return self.gateway.db

    @property
    def limits(self) -> LimitSettings:
        return self.gateway.settings.limits

    @property
    def team_pk(self) -> int:
        return self.principal.team_pk


def base_url(request: Request, gateway: Gateway) -> str:
    configured = gateway.settings.server.base_url
    if configured:
        return configured.rstrip("/") + "/scim/v2"
    return f"{request.url.scheme}://{request.url.netloc}/scim/v2"


async def context(request: Request) -> Ctx:
    gateway: Gateway = request.app.state.gateway
    principal = await gateway.authenticate(request)
    return Ctx(gateway, principal, base_url(request, gateway))


async def body(request: Request, ctx: Ctx) -> Any:
    return await read_json(
        request, max_bytes=ctx.limits.max_body_bytes, max_depth=ctx.limits.max_json_depth
    )


def _int(name: str, raw: Any, default: int) -> int:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise InvalidValue(f"'{name}' must be an integer, not {raw!r}.")
    try:
        return int(raw)
    except (TypeError, ValueError, OverflowError):
        raise InvalidValue(f"'{name}' must be an integer, not {raw!r}.") from None


def parse_sort_by(text: str | None) -> AttrPath | None:
    if not text:
        return None
    node = parse_filter(f"{text} pr")
    path = getattr(node, "path", None)
    if not isinstance(path, AttrPath):
        raise InvalidValue(f"'{text}' is not an attribute name for sortBy.")
    return path


def list_query(ctx: Ctx, params: dict[str, Any]) -> ListQuery:
    """A :class:`ListQuery` from query parameters or a SearchRequest body."""
    limits = ctx.limits
    text = params.get("filter")
    node = None
    if text is not None:
        if not isinstance(text, str):
            raise InvalidFilter("'filter' must be a string.")
        node = parse_filter(text, max_length=limits.max_filter_length)
    start = max(1, _int("startIndex", params.get("startIndex"), 1))
    count = _int("count", params.get("count"), limits.default_count)
    count = min(max(0, count), limits.max_results)
    order = params.get("sortOrder")
    if order is not None and str(order).lower() not in ("ascending", "descending"):
        raise InvalidValue("'sortOrder' must be 'ascending' or 'descending'.")
    sort_by = params.get("sortBy")
    return ListQuery(
        filter=node,
        sort_by=parse_sort_by(sort_by if isinstance(sort_by, str) else None),
        descending=str(order).lower() == "descending",
        start_index=start,
        count=count,
    )


def query_params(request: Request) -> dict[str, Any]:
    names = (
        "filter",
        "startIndex",
        "count",
        "sortBy",
        "sortOrder",
        "attributes",
        "excludedAttributes",
    )
    return {name: query_param(request, name) for name in names}


def list_response(page: Page) -> ScimResponse:
    return ScimResponse(
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": page.total,
            "itemsPerPage": len(page.resources),
            "startIndex": page.start_index,
            "Resources": page.resources,
        }
    )
