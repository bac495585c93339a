"""The admin API under ``/admin/v1``: teams, SSO, SCIM provisioning and SCIM API keys,
and each team's audit log and webhook redelivery.

It does over HTTP what the ``scim-gateway`` commands do, through the same service
layer (:mod:`gateway.teams`), so the same rules hold: SSO first, SCIM on only with
SSO, keys only while SCIM is on, and removing SSO turns SCIM off.

Authentication: ``Authorization: Bearer <operator token>``. The gateway keeps only
the token's SHA-256 (``[admin] token_sha256``, printed by ``scim-gateway admin
new-token``) and compares digests in constant time. A missing or wrong token, and
any SCIM API key, get 401 with ``WWW-Authenticate: Bearer realm="admin"``.

**When ``admin.token_sha256`` is empty the admin API is disabled: every request
under /admin/v1, the OpenAPI document included, answers 404.**

Bodies are JSON (``application/json``, else 415), at most ``limits.max_body_bytes``
(else 413), and are checked against the request schemas of the OpenAPI document
(:mod:`gateway.openapi`): a missing, unknown or wrongly typed field answers 422.
Every answer, errors included, is ``{"error": {"status": ..., "message": ...}}`` on
failure and carries headers that keep it out of caches and frames. A key's token
appears only in the answer that creates it.

``GET /admin/v1/openapi.json`` serves the OpenAPI 3.1 document of the admin and
SCIM APIs without authentication.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import orjson
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Receive, Scope, Send

from ..audit import list_audit, parse_since
from ..auth import bearer_token
from ..keys import parse_key
from ..openapi import ADMIN_PREFIX, admin_body_schemas, openapi_document
from ..outbox import redeliver
from ..scim.errors import ScimError
from ..sso import SsoError, validate_oidc, validate_saml
from ..teams import (
    TeamError,
    TeamInfo,
    check_slug,
    clear_sso,
    create_key,
    create_team,
    disable_scim,
    enable_scim,
    get_team,
    list_keys,
    list_teams,
    regenerate_key,
    revoke_key,
    set_sso,
    sso_problem,
)
from .common import MAX_START_INDEX

if TYPE_CHECKING:
    from ..app import Gateway
    from ..store.db import Database

__all__ = [
    "SECURITY_HEADERS",
    "AdminError",
    "admin_mount",
    "routes_for_admin",
    "validate_body",
]

log = logging.getLogger("scim_gateway.admin")

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="admin"'}
_KEY_ID = re.compile(r"^[a-z0-9]{1,16}$")
_SCHEMAS = admin_body_schemas()
T = TypeVar("T")


class AdminError(Exception):
    """A refused admin request: the status and a message that says what to do."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class AdminResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return AdminResponse(
        {"error": {"status": status, "message": message}}, status_code=status, headers=headers
    )


# --- body validation (a subset of JSON Schema, enough for the admin bodies) ------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if math.isfinite(value) and value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


_TYPE_NAMES = {
    "null": "null",
    "boolean": "true or false",
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "an array",
    "object": "an object",
}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _SCHEMAS[ref.rsplit("/", 1)[-1]]
    return schema


def _check_value(value: Any, schema: dict[str, Any], name: str, problems: list[str]) -> Any:
    """``value`` converted to its Python form, or the problems appended to ``problems``."""
    kinds = schema.get("type")
    allowed = [kinds] if isinstance(kinds, str) else list(kinds or [])
    actual = _json_type(value)
    if allowed and actual not in allowed:
        wanted = " or ".join(_TYPE_NAMES[k] for k in allowed)
        problems.append(f"'{name}' must be {wanted}, not {_TYPE_NAMES[actual]}.")
        return value
    if "const" in schema and value != schema["const"]:
        problems.append(f"'{name}' must be {schema['const']!r}.")
    if actual == "integer":
        value = int(value)
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"'{name}' must be at least {schema['minimum']}.")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"'{name}' must be at most {schema['maximum']}.")
    elif actual == "string":
        if len(value) < schema.get("minLength", 0):
            problems.append(f"'{name}' must not be empty.")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"'{name}' must be at most {schema['maxLength']} characters.")
        pattern = schema.get("pattern")
        if "\x00" in value or (pattern and re.search(pattern, value) is None):
            hint = schema.get("x-pattern-message", "it has characters that are not allowed here")
            problems.append(f"'{name}' is not valid: {hint}.")
    return value


def _check_object(body: Any, schema: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        problems.append(f"The body must be a JSON object, not {_TYPE_NAMES[_json_type(body)]}.")
        return {}
    properties: dict[str, Any] = schema.get("properties", {})
    out: dict[str, Any] = {}
    for name in schema.get("required", []):
        if name not in body:
            problems.append(f"'{name}' is required.")
    for name, value in body.items():
        if name not in properties:
            if schema.get("additionalProperties", True) is False:
                problems.append(
                    f"Unknown field {name!r}; known fields: {', '.join(sorted(properties))}."
                )
            continue
        out[name] = _check_value(value, properties[name], name, problems)
    return out


def validate_body(body: Any, schema_name: str) -> dict[str, Any]:
    """``body`` checked against the named request schema; 422 lists every problem."""
    schema = _SCHEMAS[schema_name]
    discriminator = schema.get("discriminator")
    problems: list[str] = []
    if discriminator is not None:
        field = discriminator["propertyName"]
        mapping: dict[str, str] = discriminator["mapping"]
        choice = body.get(field) if isinstance(body, dict) else None
        if not isinstance(choice, str) or choice not in mapping:
            options = " or ".join(f'"{m}"' for m in mapping)
            raise AdminError(422, f"'{field}' must be {options}.")
        schema = _resolve({"$ref": mapping[choice]})
    out = _check_object(body, schema, problems)
    if problems:
        raise AdminError(422, " ".join(problems))
    return out


async def _read_json(request: Request, gateway: Gateway, *, optional: bool = False) -> Any:
    limit = gateway.settings.limits.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise AdminError(413, f"The body is larger than the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise AdminError(413, f"The body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if optional and not raw.strip():
        return {}
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        shown = f"not {media}" if media else "the Content-Type header is missing"
        raise AdminError(415, f"Send the body as application/json; {shown}.")
    if not raw.strip():
        raise AdminError(400, "The request body is empty; a JSON object is required.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise AdminError(400, f"The request body is not valid JSON: {exc}.") from None


# --- authentication and the endpoint wrapper --------------------------------------------


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _check_enabled(gateway: Gateway) -> None:
    if not gateway.settings.admin.token_sha256:
        raise AdminError(
            404,
            "The admin API is not enabled on this gateway: set admin.token_sha256 "
            "(scim-gateway admin new-token prints it).",
        )


def _authorize(request: Request, gateway: Gateway) -> None:
    _check_enabled(gateway)
    token = bearer_token(request)
    if token is None:
        raise AdminError(
            401, "Send the operator token: 'Authorization: Bearer <token>'.", _CHALLENGE
        )
    presented = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    expected = gateway.settings.admin.token_sha256.lower()
    if not hmac.compare_digest(presented, expected):
        if parse_key(token) is not None:
            raise AdminError(
                401,
                "A SCIM API key is not an operator credential; send the operator token.",
                _CHALLENGE,
            )
        raise AdminError(401, "The operator token is not valid.", _CHALLENGE)


Handler = Callable[[Request, "Gateway"], Awaitable[Response]]


def _secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


async def _respond(request: Request, handler: Handler, *, public: bool = False) -> Response:
    gateway = _gateway(request)
    try:
        if public:
            _check_enabled(gateway)
        else:
            _authorize(request, gateway)
        response = await handler(request, gateway)
    except AdminError as exc:
        response = _error(exc.status, exc.message, exc.headers)
    except TeamError as exc:
        response = _error(exc.status, str(exc))
    except SsoError as exc:
        response = _error(400, str(exc))
    except ScimError as exc:  # the database is unavailable (503), ...
        response = _error(exc.status, exc.detail or "The request failed.", exc.headers)
    except IntegrityError:
        response = _error(409, "The change conflicts with a concurrent one; retry.")
    except Exception:
        log.exception("admin API: unhandled error on %s %s", request.method, request.url.path)
        response = _error(500, "Internal error; retry, and report it if it persists.")
    return _secure(response)


def _endpoint(
    handler: Handler, *, public: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await _respond(request, handler, public=public)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


def _slug(request: Request) -> str:
    slug: str = request.path_params["slug"]
    try:
        check_slug(slug)
    except TeamError:
        raise AdminError(404, f"No team {slug!r}.") from None
    return slug


def _key_id(request: Request) -> str:
    key_id: str = request.path_params["key_id"]
    if not _KEY_ID.match(key_id):
        raise AdminError(404, f"Team {request.path_params['slug']!r} has no key {key_id!r}.")
    return key_id


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return AdminResponse(content, status_code=status, headers=headers)


async def _run(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)


# --- handlers --------------------------------------------------------------------------


async def _openapi(request: Request, gateway: Gateway) -> Response:
    return _json(openapi_document())


async def _list_teams(request: Request, gateway: Gateway) -> Response:
    teams = await _run(lambda: list_teams(gateway.db))
    return _json({"teams": [t.to_dict() for t in teams]})


def _check_adapter(gateway: Gateway, name: str | None) -> None:
    """An adapter name must be one this gateway has loaded."""
    if name is not None and gateway.plugins.registry.get(name) is None:
        loaded = ", ".join(gateway.plugins.registry.canonical_names())
        raise AdminError(422, f"Unknown adapter {name!r}; this gateway has loaded: {loaded}.")


async def _create_team(request: Request, gateway: Gateway) -> Response:
    body = validate_body(await _read_json(request, gateway), "TeamCreate")
    _check_adapter(gateway, body.get("default_adapter"))
    slug: str = body["slug"]
    team = await _run(
        lambda: create_team(
            gateway.db,
            slug,
            body.get("name"),
            default_adapter=body.get("default_adapter") or "generic",
        )
    )
    log.info("admin API: created team %s", team.slug)
    location = f"{ADMIN_PREFIX}/teams/{team.slug}"
    return _json(team.to_dict(), 201, {"Location": location})


async def _get_team(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)
    team = await _run(lambda: get_team(gateway.db, slug))
    return _json(team.to_dict())


def _connection(gateway: Gateway, body: dict[str, Any]) -> Any:
    if body["method"] == "saml":
        return validate_saml(body["entity_id"], body["sso_url"], body["certificate"])
    variable: str = body["client_secret_env"]
    if not os.environ.get(variable):
        raise AdminError(
            400,
            f"Environment variable {variable} is not set on the gateway; export the client "
            "secret in it and restart (the gateway stores only the variable's name).",
        )
    verify: bool | str = gateway.settings.security.sso_ca_bundle or True
    return validate_oidc(body["issuer"], body["client_id"], {"env": variable}, verify=verify)


async def _set_sso(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)
    body = validate_body(await _read_json(request, gateway), "SsoConnection")

    def work() -> TeamInfo:
        get_team(gateway.db, slug)  # 404 before any fetch from the identity provider
        return set_sso(gateway.db, slug, _connection(gateway, body))

    team = await _run(work)
    log.info("admin API: %s SSO set for team %s", body["method"], slug)
    return _json(team.to_dict())


async def _clear_sso(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)
    team = await _run(lambda: clear_sso(gateway.db, slug))
    log.info("admin API: SSO removed for team %s; SCIM provisioning is off", slug)
    return _json(team.to_dict())


def _scim_status(db: Database, slug: str) -> dict[str, Any]:
    team = get_team(db, slug)
    counts = {"active": 0, "retiring": 0, "revoked": 0, "expired": 0}
    keys = list_keys(db, slug)
    for key in keys:
        counts[key.status] = counts.get(key.status, 0) + 1
    return {
        "team": team.slug,
        "scim_enabled": team.scim_enabled,
        "sso": team.sso_method,
        "sso_problem": sso_problem(team.sso, datetime.now(UTC)),
        "active_keys": counts["active"] + counts["retiring"],
        "keys": {"total": len(keys), **counts},
    }


async def _get_scim(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)
    return _json(await _run(lambda: _scim_status(gateway.db, slug)))


async def _enable_scim(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)

    def work() -> dict[str, Any]:
        enable_scim(gateway.db, slug)
        return _scim_status(gateway.db, slug)

    status = await _run(work)
    log.info("admin API: SCIM provisioning turned on for team %s", slug)
    return _json(status)


async def _disable_scim(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)

    def work() -> dict[str, Any]:
        disable_scim(gateway.db, slug)
        return _scim_status(gateway.db, slug)

    status = await _run(work)
    log.info("admin API: SCIM provisioning turned off for team %s", slug)
    return _json(status)


async def _list_keys(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)
    keys = await _run(lambda: list_keys(gateway.db, slug))
    return _json({"keys": [k.to_dict() for k in keys]})


async def _create_key(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)
    body = validate_body(await _read_json(request, gateway), "KeyCreate")
    _check_adapter(gateway, body.get("adapter"))
    key, token = await _run(
        lambda: create_key(
            gateway.db,
            gateway.hasher,
            slug,
            body["name"],
            adapter=body.get("adapter"),
            expires_in_days=body.get("expires_in_days"),
        )
    )
    log.info("admin API: created key %s (%r) for team %s", key.id, key.name, slug)
    return _json({**key.to_dict(), "token": token}, 201)


async def _revoke_key(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)
    key_id = _key_id(request)
    key = await _run(lambda: revoke_key(gateway.db, slug, key_id))
    log.info("admin API: revoked key %s of team %s", key.id, slug)
    return _json(key.to_dict())


async def _regenerate_key(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)
    key_id = _key_id(request)
    body = validate_body(await _read_json(request, gateway, optional=True), "KeyRegenerate")
    minutes: int = body.get("keep_old_for_minutes", 0)
    key, token = await _run(
        lambda: regenerate_key(
            gateway.db, gateway.hasher, slug, key_id, keep_old_for_minutes=minutes
        )
    )
    log.info(
        "admin API: key %s of team %s replaced by %s; the old one stops in %d minute(s)",
        key_id,
        slug,
        key.id,
        minutes,
    )
    return _json({**key.to_dict(), "token": token, "replaces": key_id}, 201)


def _query_int(request: Request, name: str, default: int, minimum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AdminError(400, f"'{name}' must be an integer, not {raw!r}.") from None
    if value < minimum:
        raise AdminError(400, f"'{name}' must be at least {minimum}.")
    return value


async def _audit(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)
    params = request.query_params
    since = None
    if params.get("since"):
        try:
            since = parse_since(params["since"])
        except ValueError as exc:
            raise AdminError(400, f"'since': {exc}") from None
    limits = gateway.settings.limits
    start = min(_query_int(request, "startIndex", 1, 1), MAX_START_INDEX)
    count = min(_query_int(request, "count", limits.default_count, 0), limits.max_results)
    user = params.get("user") or None
    page = await _run(
        lambda: list_audit(
            gateway.db, slug, user_id=user, since=since, start_index=start, count=count
        )
    )
    return _json(page.to_dict())


async def _redeliver(request: Request, gateway: Gateway) -> Response:
    slug = _slug(request)
    body = validate_body(await _read_json(request, gateway), "EventRedeliver")
    event_id: str | None = body.get("event_id")
    dead = bool(body.get("dead"))
    if (event_id is None) == (not dead):
        raise AdminError(422, 'Send either {"event_id": "<id>"} or {"dead": true}.')
    count = await _run(lambda: redeliver(gateway.db, slug, event_id=event_id, dead=dead))
    log.info("admin API: queued %d webhook delivery(ies) again for team %s", count, slug)
    return _json({"team": slug, "redelivered": count})


# --- routing -----------------------------------------------------------------------------


class _Fallback:
    """Answers what no admin route does: 404, or 405 with ``Allow`` for a known path.

    It answers with the admin API's error body and headers (and, as everywhere,
    only after authentication, so unknown paths reveal nothing).
    """

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        matching = [r for r in self.routes if r.matches(scope)[0] is not Match.NONE]
        allowed: set[str] = set().union(*(r.methods or set() for r in matching))

        async def handler(request: Request, gateway: Gateway) -> Response:
            if allowed:
                methods = ", ".join(sorted(allowed))
                raise AdminError(
                    405,
                    f"{request.method} is not supported here; use {methods}.",
                    {"Allow": methods},
                )
            raise AdminError(404, "No such admin endpoint; see /admin/v1/openapi.json.")

        public = bool(matching) and all(r.path == "/openapi.json" for r in matching)
        response = await _respond(request, handler, public=public)
        await response(scope, receive, send)


def routes_for_admin() -> list[BaseRoute]:
    """The admin routes; :func:`admin_mount` mounts them at /admin/v1."""
    table: list[tuple[str, Handler, str]] = [
        ("/teams", _list_teams, "GET"),
        ("/teams", _create_team, "POST"),
        ("/teams/{slug}", _get_team, "GET"),
        ("/teams/{slug}/sso", _set_sso, "PUT"),
        ("/teams/{slug}/sso", _clear_sso, "DELETE"),
        ("/teams/{slug}/scim", _get_scim, "GET"),
        ("/teams/{slug}/scim/enable", _enable_scim, "POST"),
        ("/teams/{slug}/scim/disable", _disable_scim, "POST"),
        ("/teams/{slug}/keys", _list_keys, "GET"),
        ("/teams/{slug}/keys", _create_key, "POST"),
        ("/teams/{slug}/keys/{key_id}/revoke", _revoke_key, "POST"),
        ("/teams/{slug}/keys/{key_id}/regenerate", _regenerate_key, "POST"),
        ("/teams/{slug}/audit", _audit, "GET"),
        ("/teams/{slug}/events/redeliver", _redeliver, "POST"),
    ]
    routes = [Route("/openapi.json", _endpoint(_openapi, public=True), methods=["GET"])]
    routes += [
        Route(path, _endpoint(handler), methods=[method], name=handler.__name__.lstrip("_"))
        for path, handler, method in table
    ]
    fallback = Route("/{path:path}", _Fallback(routes), name="admin_fallback")
    _match_any_character(fallback)
    return [*routes, fallback]


def _match_any_character(route: Route | Mount) -> None:
    """Let ``{path:path}`` match paths with a (percent-encoded) line break too."""
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)


def admin_mount() -> Mount:
    """The admin API mounted at /admin/v1: put it in the application's routes.

    Unlike a plain ``Mount``, it also takes paths holding a line break, so that
    every request under /admin/v1 gets the admin API's answers and headers.
    """
    mount = Mount(ADMIN_PREFIX, routes=routes_for_admin(), name="admin")
    _match_any_character(mount)
    return mount
