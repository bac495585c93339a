"""Discovery (RFC 7644 §4): ServiceProviderConfig, ResourceTypes and Schemas.

These describe exactly what the gateway supports. They are the same for every
team and carry nothing secret, so they answer without a key, as IdPs' connection
tests expect. Any method but GET answers 405.

RFC 7644 §4: query parameters such as paging and sorting are ignored here, and a
``filter`` is refused with 403 so that no client can believe its conditions held.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..http import ScimResponse, query_param
from ..scim.errors import Forbidden, NotFound
from ..scim.schemas import (
    LIST_RESPONSE,
    RESOURCE_TYPES,
    schema_definitions_for_discovery,
    service_provider_config,
)
from .common import base_url

__all__ = ["routes_for_discovery"]


def _refuse_filter(request: Request) -> None:
    if query_param(request, "filter") is not None:
        raise Forbidden(
            "Discovery endpoints cannot be filtered (RFC 7644 §4); "
            "request them without 'filter' and select on the client."
        )


def _list(resources: list[dict[str, Any]]) -> ScimResponse:
    return ScimResponse(
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": len(resources),
            "itemsPerPage": len(resources),
            "startIndex": 1,
            "Resources": resources,
        }
    )


async def get_service_provider_config(request: Request) -> Response:
    _refuse_filter(request)
    gateway = request.app.state.gateway
    limits = gateway.settings.limits
    return ScimResponse(
        service_provider_config(
            base_url=base_url(request, gateway),
            max_results=limits.max_results,
            bulk_max_operations=limits.bulk_max_operations,
            bulk_max_payload_size=limits.bulk_max_payload_bytes,
        )
    )


async def list_resource_types(request: Request) -> Response:
    _refuse_filter(request)
    url = base_url(request, request.app.state.gateway)
    return _list([rt.to_dict(url) for rt in RESOURCE_TYPES.values()])


async def get_resource_type(request: Request) -> Response:
    _refuse_filter(request)
    url = base_url(request, request.app.state.gateway)
    wanted = request.path_params["id"]
    for rt in RESOURCE_TYPES.values():
        if rt.id.lower() == wanted.lower():
            return ScimResponse(rt.to_dict(url))
    raise NotFound(f"Resource type {wanted!r} is not served here; see /ResourceTypes.")


async def list_schemas(request: Request) -> Response:
    _refuse_filter(request)
    url = base_url(request, request.app.state.gateway)
    return _list([schema.to_dict(url) for schema in schema_definitions_for_discovery()])


async def get_schema(request: Request) -> Response:
    _refuse_filter(request)
    url = base_url(request, request.app.state.gateway)
    wanted = request.path_params["id"]
    for schema in schema_definitions_for_discovery():
        if schema.id.lower() == wanted.lower():
            return ScimResponse(schema.to_dict(url))
    raise NotFound(f"Schema {wanted!r} is not served here; see /Schemas.")


def routes_for_discovery() -> list[tuple[str, Any, list[str]]]:
    return [
        ("/ServiceProviderConfig", get_service_provider_config, ["GET"]),
        ("/ResourceTypes", list_resource_types, ["GET"]),
        ("/ResourceTypes/{id}", get_resource_type, ["GET"]),
        ("/Schemas", list_schemas, ["GET"]),
        ("/Schemas/{id:path}", get_schema, ["GET"]),
    ]
