"""HTTP details of RFC 7644 §3.1/§3.8: media types, bodies, ETags, query parameters."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .scim.errors import (
    InvalidSyntax,
    InvalidValue,
    PayloadTooLarge,
    UnsupportedMediaType,
)

__all__ = [
    "SCIM_MEDIA_TYPE",
    "ScimResponse",
    "check_depth",
    "parse_if_match",
    "query_param",
    "read_json",
]

SCIM_MEDIA_TYPE = "application/scim+json"
_ACCEPTED = ("application/scim+json", "application/json")


class ScimResponse(Response):
    """A JSON body served as ``application/scim+json`` (RFC 7644 §8.1)."""

    media_type = SCIM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def check_depth(value: Any, limit: int) -> None:
    """Reject JSON nested deeper than ``limit`` (a cheap guard against hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise InvalidValue(f"The JSON body is nested deeper than {limit} levels.")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))


async def read_json(request: Request, *, max_bytes: int, max_depth: int) -> Any:
    """The request's JSON body, after media-type, size and syntax checks."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in _ACCEPTED:
        raise UnsupportedMediaType(
            f"Send the body as {SCIM_MEDIA_TYPE} or application/json"
            + (f", not {media}." if media else "; the Content-Type header is missing.")
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than the limit of {max_bytes} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"The body is larger than the limit of {max_bytes} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise InvalidSyntax("The request body is empty; a JSON object is required.")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidSyntax(f"The request body is not valid JSON: {exc}.") from exc
    check_depth(value, max_depth)
    return value


def parse_if_match(request: Request, header: str = "if-match") -> set[str] | None:
    raw = request.headers.get(header)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def query_param(request: Request, name: str) -> str | None:
    """A query parameter by case-insensitive name; empty values count as absent."""
    for key, value in request.query_params.multi_items():
        if key.lower() == name.lower() and value != "":
            return value
    return None
