"""HTTP details of RFC 7644 §3.1/§3.8: media types, bodies, ETags, query parameters.

:func:`read_json` is the one way a SCIM request body is read. Its answers to hostile
or malformed bodies, in the order it checks them:

- a body over ``max_bytes``: ``413``;
- bytes that are not UTF-8, text that is not JSON, a lone surrogate escape
  (``"\\ud800"``) or a number out of range: ``400 invalidSyntax``;
- nesting deeper than ``max_depth`` (objects and arrays, the body itself being level
  one): ``400 invalidSyntax``;
- a key repeated in one object (``{"userName": "a", "userName": "b"}``):
  ``400 invalidSyntax``, where a plain JSON parser would silently keep the last one;
- a string (value or key) longer than ``max_string_length`` characters, or holding a
  NUL character (``"\\u0000"``, which PostgreSQL cannot store in text):
  ``400 invalidValue`` naming the attribute.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn
from urllib.parse import unquote_plus

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
    "query_params_named",
    "read_json",
]

SCIM_MEDIA_TYPE = "application/scim+json"
_ACCEPTED = ("application/scim+json", "application/json")

# Every object key ends with a quote and a colon, usually adjacent ('"key":'); a string
# value holds '":' only after an escaped quote. So when no quote is followed by
# whitespace and a colon, the count of '":' bounds the number of keys in the text.
_KEY_END = b'":'
_SPACED_KEY_END = re.compile(rb'"[ \t\r\n]+:')
_NUL_ESCAPE = b"\\u0000"
_CONTAINERS = (dict, list)

Trail = tuple[str | int, ...]


class ScimResponse(Response):
    """A JSON body served as ``application/scim+json`` (RFC 7644 §8.1)."""

    media_type = SCIM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _too_deep(limit: int) -> InvalidSyntax:
    return InvalidSyntax(f"The JSON body is nested deeper than {limit} levels.")


def check_depth(value: Any, limit: int) -> None:
    """Reject JSON nested deeper than ``limit`` (a cheap guard against hostile input)."""
    _count_keys(value, max_depth=limit)


def _count_keys(value: Any, *, max_depth: int) -> int:
    """:func:`_inspect` without its string checks, level by level: check the depth of a
    parsed body and return how many object keys it holds."""
    keys = 0
    level = [value]
    depth = 1
    while level:
        if depth > max_depth:
            raise _too_deep(max_depth)
        children: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                keys += len(node)
                node = node.values()
            elif not isinstance(node, list):
                continue
            for item in node:
                if isinstance(item, _CONTAINERS):
                    children.append(item)
        level = children
        depth += 1
    return keys


def _inspect(value: Any, *, max_depth: int, max_chars: int | None, nul: bool) -> int:
    """Walk a parsed body once: check depth, string lengths and (with ``nul``) NUL
    characters; return how many object keys it holds."""
    keys = 0
    limit = max_chars if max_chars is not None else -1
    stack: list[tuple[Any, int, Trail]] = [(value, 1, ())]
    while stack:
        node, depth, trail = stack.pop()
        if depth > max_depth:
            raise _too_deep(max_depth)
        if isinstance(node, dict):
            keys += len(node)
            for key, item in node.items():
                if (limit >= 0 and len(key) > limit) or (nul and "\x00" in key):
                    _bad_key(value, trail, key, limit)
                if isinstance(item, str):
                    if (limit >= 0 and len(item) > limit and (trail or key != "filter")) or (
                        nul and "\x00" in item
                    ):
                        _bad_string(value, (*trail, key), item, limit)
                elif isinstance(item, dict | list):
                    stack.append((item, depth + 1, (*trail, key)))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, str):
                    if (limit >= 0 and len(item) > limit) or (nul and "\x00" in item):
                        _bad_string(value, (*trail, index), item, limit)
                elif isinstance(item, dict | list):
                    stack.append((item, depth + 1, (*trail, index)))
    return keys


def _render(trail: Trail) -> str:
    text = ""
    for part in trail:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _where(body: Any, trail: Trail) -> str:
    """Where ``trail`` points, for an error message: the attribute, named by the PATCH
    path when it is inside the ``value`` of a PATCH operation that has one."""
    if len(trail) >= 3 and trail[0] == "Operations" and trail[2] == "value":
        operations = body.get("Operations") if isinstance(body, dict) else None
        index = trail[1]
        if isinstance(operations, list) and isinstance(index, int):
            operation = operations[index]
            path = operation.get("path") if isinstance(operation, dict) else None
            if isinstance(path, str) and path.strip():
                rest = _render(trail[3:])
                joined = path.strip() + (rest if rest.startswith("[") or not rest else "." + rest)
                return f"'{joined}' in operation {index + 1}"
    return f"'{_render(trail)}'" if trail else "the body"


def _bad_string(body: Any, trail: Trail, text: str, limit: int) -> NoReturn:
    where = _where(body, trail)
    if "\x00" in text:
        raise InvalidValue(
            f"{where} contains a NUL character (\\u0000), which text values cannot hold."
        )
    raise InvalidValue(f"{where} is {len(text)} characters long; the limit is {limit} characters.")


def _bad_key(body: Any, trail: Trail, key: str, limit: int) -> NoReturn:
    where = f"in {_where(body, trail)}" if trail else "at the top level"
    if "\x00" in key:
        raise InvalidValue(f"An attribute name {where} contains a NUL character (\\u0000).")
    raise InvalidValue(
        f"An attribute name {where} is {len(key)} characters long; the limit is {limit}."
    )


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> None:
    seen: set[str] = set()
    for key, _value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)


def _check_duplicate_keys(body: bytes, keys: int) -> None:
    """Reject a body in which one object repeats a key.

    The fast parser keeps the last of repeated keys, so then the parsed body holds
    fewer keys than the text has key ends. Only when the count differs (or cannot be
    taken cheaply) is the body parsed again, by a parser that sees every key.
    """
    if body.count(_KEY_END) == keys and _SPACED_KEY_END.search(body) is None:
        return
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except ValueError:  # pragma: no cover - the fast parser accepted the body already
        return
    except _DuplicateKey as exc:
        key = exc.key if len(exc.key) <= 60 else exc.key[:57] + "..."
        raise InvalidSyntax(
            f"The key {key!r} appears twice in one JSON object; send each attribute once."
        ) from None


async def read_json(
    request: Request,
    *,
    max_bytes: int,
    max_depth: int,
    max_string_length: int | None = None,
) -> Any:
    """The request's JSON body, after media-type, size, syntax and content checks.

    ``max_string_length`` defaults to the gateway's ``limits.max_string_length``; a
    top-level ``filter`` (a SearchRequest's) is exempt: ``limits.max_filter_length``
    governs it.
    """
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
        if "depth limit exceeded" in str(exc):
            raise _too_deep(max_depth) from None
        raise InvalidSyntax(f"The request body is not valid JSON: {exc}.") from None
    if max_string_length is None:
        max_string_length = _configured_string_limit(request)
    # A string holds no more characters than the body has bytes, and holds a NUL
    # character only if the body has the escape \u0000 (JSON text cannot hold a raw
    # control character; the parser refuses one): often the strings need no check.
    if max_string_length is not None and len(body) <= max_string_length:
        max_string_length = None
    nul = _NUL_ESCAPE in body
    if max_string_length is None and not nul:
        keys = _count_keys(value, max_depth=max_depth)
    else:
        keys = _inspect(value, max_depth=max_depth, max_chars=max_string_length, nul=nul)
    _check_duplicate_keys(body, keys)
    return value


def _configured_string_limit(request: Request) -> int | None:
    gateway = getattr(request.app.state, "gateway", None)
    limits = getattr(getattr(gateway, "settings", None), "limits", None)
    limit = getattr(limits, "max_string_length", None)
    return limit if isinstance(limit, int) else None


def parse_if_match(request: Request, header: str = "if-match") -> set[str] | None:
    raw = request.headers.get(header)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def query_params_named(request: Request, names: tuple[str, ...]) -> dict[str, str | None]:
    """The query parameters ``names``, matched case-insensitively, in one pass over the
    query string; the first non-empty value of each counts, an empty one is absent."""
    found: dict[str, str | None] = dict.fromkeys(names)
    raw: bytes = request.scope.get("query_string", b"")
    if not raw:
        return found
    wanted = {name.lower(): name for name in names}
    # As Starlette's query_params reads it (parse_qsl of the Latin-1 text, blank values
    # kept), without the multi-dict: only the wanted values are decoded.
    for piece in raw.decode("latin-1").split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        name = wanted.get(_unquote(key).lower())
        if name is not None and value != "" and found[name] is None:
            found[name] = _unquote(value)
    return found


def _unquote(text: str) -> str:
    """``unquote_plus``, skipped for text with nothing to decode (a parameter's name)."""
    return unquote_plus(text) if "%" in text or "+" in text else text


def query_param(request: Request, name: str) -> str | None:
    """A query parameter by case-insensitive name; empty values count as absent."""
    return query_params_named(request, (name,))[name]
