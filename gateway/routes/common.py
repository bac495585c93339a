"""What every SCIM route needs: the caller's team, the database and the limits."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection
from starlette.requests import Request

from plugins import Adapter, Inbound, Outbound, ProvisioningEvent

from ..auth import Principal, request_header
from ..config import LimitSettings
from ..forwarded import public_origin
from ..http import ScimResponse, query_params_named, read_json
from ..observability import new_request_id
from ..policy import TeamPolicy
from ..ratelimit import enforce_rate_limits
from ..scim.errors import InvalidFilter, InvalidValue, NotFound
from ..scim.filter import AttrPath, check_storable, parse_filter, unstorable
from ..scim.schemas import LIST_RESPONSE, ResourceType
from ..store.common import ListQuery, Page
from ..store.db import Database

if TYPE_CHECKING:
    from ..app import Gateway

T = TypeVar("T")

__all__ = ["Ctx", "body", "context", "list_query", "list_response", "parse_sort_by"]


_EVENT_FIELDS = (
    "kind",
    "team",
    "resource_type",
    "resource_id",
    "display",
    "changes",
    "occurred_at",
    "key_id",
    "key_name",
    "adapter",
    "request_id",
)
if tuple(f.name for f in fields(ProvisioningEvent)) != _EVENT_FIELDS:  # pragma: no cover
    raise ImportError("ProvisioningEvent's fields changed: update Ctx.events_of")


@dataclass(frozen=True, slots=True)
class Ctx:
    """One SCIM request: who made it, through which adapter, under which policy.

    ``events`` collects the provisioning events of the request's transaction; they
    are delivered to observers only after that transaction has committed.
    """

    gateway: Gateway
    principal: Principal
    base_url: str
    adapter: Adapter
    policy: TeamPolicy
    request_id: str
    user_agent: str | None = None
    events: list[ProvisioningEvent] = field(default_factory=list)

    def fresh(self) -> Ctx:
        """The same request context with an empty event list (one per transaction)."""
        return replace(self, events=[])

    def inbound(self, rt: ResourceType, method: str) -> Inbound:
        return Inbound(
            team=self.principal.team_slug,
            adapter=self.adapter.name,
            resource_type=rt.name,
            method=method,
            options=self.principal.team_options,
            user_agent=self.user_agent,
        )

    def outbound(self, rt: ResourceType) -> Outbound:
        return Outbound(
            team=self.principal.team_slug,
            adapter=self.adapter.name,
            resource_type=rt.name,
            base_url=self.base_url,
            options=self.principal.team_options,
        )

    def render(self, rt: ResourceType, resource: dict[str, Any]) -> dict[str, Any]:
        return self.adapter.render(resource, self.outbound(rt))

    def render_all(self, rt: ResourceType, resources: list[Any]) -> list[Any]:
        """:meth:`render` for a page of resources, with one :class:`Outbound`."""
        outbound = self.outbound(rt)
        render = self.adapter.render
        return [render(resource, outbound) for resource in resources]

    @property
    def renders_as_is(self) -> bool:
        """Whether the key's adapter leaves every response as the core renders it (it
        does not override :meth:`plugins.Adapter.render`)."""
        return type(self.adapter).render is Adapter.render

    def event(
        self,
        kind: str,
        rt: ResourceType,
        resource_id: str,
        display: str | None,
        changes: dict[str, Any],
    ) -> None:
        self.events_of(kind, rt, resource_id, display, [changes])

    def events_of(
        self,
        kind: str,
        rt: ResourceType,
        resource_id: str,
        display: str | None,
        changes: Iterable[dict[str, Any]],
    ) -> None:
        """One event of ``kind`` on the resource per item of ``changes`` (a membership
        change records one per member: a 100-member add, 100)."""
        events = self.events
        # The events of one transaction commit together: they share its first one's time.
        occurred_at = events[0].occurred_at if events else datetime.now(UTC)
        principal = self.principal
        team, key_id, key_name = principal.team_slug, principal.key_id, principal.key_name
        adapter, request_id, rt_name = self.adapter.name, self.request_id, rt.name
        make = ProvisioningEvent
        # Positional (cheaper than by keyword): _EVENT_FIELDS pins the fields' order.
        events.extend(
            [
                make(
                    kind,
                    team,
                    rt_name,
                    resource_id,
                    display,
                    change,
                    occurred_at,
                    key_id,
                    key_name,
                    adapter,
                    request_id,
                )
                for change in changes
            ]
        )

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run one provisioning write in one transaction.

        The events it records are handed, inside that same transaction, to the
        gateway's recorders (the audit log and the outbox: no change without its
        record, no record without its change), then delivered to observers once the
        transaction has committed. A write that fails records and delivers nothing.
        """

        def tx(conn: Connection) -> T:
            self.events.clear()
            result = fn(conn)
            principal = self.principal
            self.gateway.record(conn, self.events, (principal.team_slug, principal.team_pk))
            return result

        try:
            result = await self.db.run(tx, write=True)
        except BaseException:
            self.events.clear()
            raise
        self.emit()
        return result

    def emit(self) -> None:
        """Deliver this transaction's events; call only after it committed."""
        if self.events:
            self.gateway.plugins.emit(self.events)
            self.events.clear()

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
    scheme, netloc = public_origin(request, gateway.settings.server.trusted_proxies)
    return f"{scheme}://{netloc}/scim/v2"


async def context(request: Request) -> Ctx:
    gateway: Gateway = request.app.state.gateway
    principal = await gateway.authenticate(request)
    state = request.scope.setdefault("state", {})  # request.state's dict, without a State
    state["principal"] = principal  # labels the access log line and the metrics
    resource_id = request.path_params.get("id")
    if isinstance(resource_id, str) and unstorable(resource_id) is not None:
        # No resource id holds a NUL or a lone surrogate; PostgreSQL cannot even compare one.
        raise NotFound(f"No resource has the id {resource_id!r}.")
    await enforce_rate_limits(gateway, principal)
    return Ctx(
        gateway,
        principal,
        base_url(request, gateway),
        adapter=gateway.adapter_for(principal),
        policy=gateway.policy_for(principal),
        request_id=state.get("request_id") or request_id(request),
        user_agent=request_header(request, b"user-agent"),
    )


def request_id(request: Request) -> str:
    """The caller's ``X-Request-Id`` when it is sane, else a new one.

    Behind the observability middleware, :func:`context` takes the id it chose, by
    this same rule, from ``request.state`` instead."""
    given = request_header(request, b"x-request-id") or ""
    if 0 < len(given) <= 128 and given.isascii() and given.isprintable():
        return given
    return new_request_id()


async def body(request: Request, ctx: Ctx) -> Any:
    limits = ctx.limits
    return await read_json(
        request,
        max_bytes=limits.max_body_bytes,
        max_depth=limits.max_json_depth,
        max_string_length=limits.max_string_length,
    )


MAX_START_INDEX = 2**31 - 1
"""A larger ``startIndex`` is read as this one: a page past every result either way,
and a number every database and JSON encoder can hold."""


def _int(name: str, raw: Any, default: int) -> int:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise _not_an_integer(name, raw)
    try:
        return int(raw)
    except (TypeError, ValueError, OverflowError):
        raise _not_an_integer(name, raw) from None


def _not_an_integer(name: str, raw: Any) -> InvalidValue:
    shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:37] + "..."
    return InvalidValue(f"'{name}' must be an integer, not {shown}.")


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
        node = parse_filter(
            text,
            max_length=limits.max_filter_length,
            max_depth=limits.max_filter_depth,
            max_terms=limits.max_filter_terms,
        )
        check_storable(node)
    start = min(max(1, _int("startIndex", params.get("startIndex"), 1)), MAX_START_INDEX)
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


_QUERY_NAMES = (
    "filter",
    "startIndex",
    "count",
    "sortBy",
    "sortOrder",
    "attributes",
    "excludedAttributes",
)


def query_params(request: Request) -> dict[str, Any]:
    """The SCIM query parameters of a list or read request."""
    return query_params_named(request, _QUERY_NAMES)


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
