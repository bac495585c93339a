"""``/Bulk`` (RFC 7644 §3.7): many operations in one request.

A bulk request is not atomic: each operation runs in its own transaction, so an
operation either happens completely or not at all, and a failure never undoes the
operations before it. A failed operation becomes that operation's result in the
BulkResponse; the request as a whole still answers 200.

A POST names the resource it creates with a ``bulkId``; any other operation of the
same request refers to that resource with the string ``"bulkId:<bulkId>"``, in its
``path`` or anywhere in its ``data`` (RFC 7644 §3.7.2). Operations run in request
order, except that an operation waits until the POSTs it refers to have run. A
reference that cannot be resolved (no POST has that ``bulkId``, that POST failed, or
the references form a cycle, which RFC 7644 §3.7.1 allows a server to refuse) fails
the operation with 409.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from .. import service
from ..config import LimitSettings
from ..http import ScimResponse, read_json
from ..scim.errors import (
    ERROR_SCHEMA,
    InvalidSyntax,
    InvalidValue,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ScimError,
)
from ..scim.projection import Projection
from ..scim.schemas import BULK_REQUEST, BULK_RESPONSE, GROUP, USER, ResourceType
from .common import Ctx, context

__all__ = ["BULK_ID_PREFIX", "UnresolvedReference", "routes_for_bulk"]

log = logging.getLogger("scim_gateway")

BULK_ID_PREFIX = "bulkId:"
_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_ENDPOINTS: dict[str, ResourceType] = {"users": USER, "groups": GROUP}
# A reference inside a PATCH path filter, e.g. members[value eq "bulkId:qwerty"].
_QUOTED_REFERENCE = re.compile(r'"bulkId:([^"]+)"')
# The BulkRequest wraps each operation's data three levels deep.
_ENVELOPE_DEPTH = 3


class UnresolvedReference(ScimError):
    """An operation refers to a ``bulkId`` whose resource does not exist (409)."""

    status = 409
    scim_type = "invalidValue"


# --- reading the request ---------------------------------------------------------------


def _get(mapping: dict[str, Any], name: str) -> Any:
    """The value of ``name`` in a JSON object; SCIM attribute names ignore case."""
    if name in mapping:
        return mapping[name]
    lower = name.lower()
    for key, value in mapping.items():
        if isinstance(key, str) and key.lower() == lower:
            return value
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


async def _read_body(request: Request, limits: LimitSettings) -> Any:
    limit = limits.bulk_max_payload_bytes
    try:
        return await read_json(
            request, max_bytes=limit, max_depth=limits.max_json_depth + _ENVELOPE_DEPTH
        )
    except PayloadTooLarge:
        raise PayloadTooLarge(
            f"The size of the bulk request exceeds maxPayloadSize ({limit} bytes). "
            "Split it into smaller bulk requests."
        ) from None


def _parse_request(body: Any, limits: LimitSettings) -> tuple[int | None, list[Any]]:
    """``failOnErrors`` and the raw ``Operations`` of a BulkRequest message."""
    if not isinstance(body, dict):
        raise InvalidSyntax("The body of a bulk request must be a JSON object.")
    schemas = _get(body, "schemas")
    if not isinstance(schemas, list) or not any(
        isinstance(urn, str) and urn.lower() == BULK_REQUEST.lower() for urn in schemas
    ):
        raise InvalidSyntax(f"A bulk request must have 'schemas' with '{BULK_REQUEST}'.")
    operations = _get(body, "Operations")
    if not isinstance(operations, list):
        raise InvalidSyntax("A bulk request needs 'Operations', an array of operations.")
    limit = limits.bulk_max_operations
    if len(operations) > limit:
        raise PayloadTooLarge(
            f"The bulk request has {len(operations)} operations, more than maxOperations "
            f"({limit}). Split it into smaller bulk requests."
        )
    fail_on_errors = _get(body, "failOnErrors")
    if fail_on_errors is not None and (
        not isinstance(fail_on_errors, int)
        or isinstance(fail_on_errors, bool)
        or fail_on_errors < 1
    ):
        raise InvalidValue(
            f"'failOnErrors' must be a positive integer, not {_show(fail_on_errors)}."
        )
    return fail_on_errors, operations


@dataclass
class _Operation:
    """One operation of the request, as read before anything runs."""

    number: int
    """Position in the request, from 1."""
    method: str | None = None
    """Upper-cased; ``None`` when the client sent no string."""
    bulk_id: str | None = None
    endpoint: str = ""
    """``"Users"`` or ``"Groups"``."""
    resource_type: ResourceType = USER
    target: str | None = None
    """The id (or ``bulkId:`` reference) in the path; ``None`` for a POST."""
    version: str | None = None
    data: Any = None
    references: tuple[str, ...] = ()
    """The bulkIds this operation refers to, in order of first appearance."""
    error: ScimError | None = None
    """Why the operation cannot run, found while reading it."""


def _read_operation(number: int, raw: Any) -> _Operation:
    op = _Operation(number)
    try:
        _fill_operation(op, raw)
    except ScimError as exc:
        op.error = exc
        op.references = ()
    return op


def _fill_operation(op: _Operation, raw: Any) -> None:
    where = f"Operation {op.number}"
    if not isinstance(raw, dict):
        raise InvalidSyntax(f"{where} must be a JSON object.")
    method = _get(raw, "method")
    if isinstance(method, str):
        op.method = method.upper()
    bulk_id = _get(raw, "bulkId")
    if isinstance(bulk_id, str) and bulk_id:
        op.bulk_id = bulk_id
    if op.method not in _METHODS:
        raise InvalidSyntax(
            f"{where} has 'method' {_show(method)}; expected POST, PUT, PATCH or DELETE."
        )
    if bulk_id is not None and op.bulk_id is None:
        raise InvalidSyntax(f"{where}: 'bulkId' must be a non-empty string.")
    if op.method == "POST" and op.bulk_id is None:
        raise InvalidSyntax(f"{where}: 'bulkId' is required for a POST.")
    version = _get(raw, "version")
    if version is not None and not isinstance(version, str):
        raise InvalidSyntax(f"{where}: 'version' must be a string (an ETag).")
    op.version = version
    _read_path(op, _get(raw, "path"), where)
    data = _get(raw, "data")
    if op.method != "DELETE":
        if not isinstance(data, dict):
            raise InvalidSyntax(f"{where}: a {op.method} needs 'data', a JSON object.")
        op.data = data
    refs: list[str] = []
    if op.target is not None and op.target.startswith(BULK_ID_PREFIX):
        refs.append(op.target[len(BULK_ID_PREFIX) :])
    _collect_references(op.data, refs, filters=False)
    op.references = tuple(dict.fromkeys(refs))


def _read_path(op: _Operation, path: Any, where: str) -> None:
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidSyntax(
            f"{where}: 'path' must be a resource path such as /Users or /Users/{{id}}, "
            f"not {_show(path)}."
        )
    parts = path.strip("/").split("/")
    resource_type = _ENDPOINTS.get(parts[0].lower())
    if resource_type is None or len(parts) > 2:
        raise NotFound(f"{where}: {path} is not a resource endpoint; use /Users or /Groups.")
    op.resource_type = resource_type
    op.endpoint = resource_type.endpoint.lstrip("/")
    target = parts[1] if len(parts) == 2 else None
    if target == "":
        target = None
    if op.method == "POST" and target is not None:
        raise MethodNotAllowed(f"{where}: a POST goes to /{op.endpoint}, not to one resource.")
    if op.method != "POST" and target is None:
        raise MethodNotAllowed(
            f"{where}: a {op.method} needs the path of one resource, /{op.endpoint}/{{id}}."
        )
    op.target = target


def _collect_references(value: Any, out: list[str], *, filters: bool) -> None:
    if isinstance(value, str):
        if value.startswith(BULK_ID_PREFIX):
            out.append(value[len(BULK_ID_PREFIX) :])
        elif filters:
            out.extend(_QUOTED_REFERENCE.findall(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect_references(item, out, filters=_is_path_key(key))
    elif isinstance(value, list):
        for item in value:
            _collect_references(item, out, filters=False)


def _substitute(value: Any, ids: dict[str, str], *, filters: bool = False) -> Any:
    """A copy of ``value`` with every ``bulkId:`` reference replaced by the id."""
    if isinstance(value, str):
        if value.startswith(BULK_ID_PREFIX):
            return ids[value[len(BULK_ID_PREFIX) :]]
        if filters:
            return _QUOTED_REFERENCE.sub(lambda m: f'"{ids[m.group(1)]}"', value)
        return value
    if isinstance(value, dict):
        return {
            key: _substitute(item, ids, filters=_is_path_key(key)) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_substitute(item, ids) for item in value]
    return value


def _is_path_key(key: Any) -> bool:
    """A PATCH operation's ``path`` may hold references inside a value filter."""
    return isinstance(key, str) and key.lower() == "path"


def _check_unique_bulk_ids(ops: list[_Operation]) -> dict[str, _Operation]:
    creators: dict[str, _Operation] = {}
    for op in ops:
        if op.method != "POST" or op.bulk_id is None:
            continue
        first = creators.get(op.bulk_id)
        if first is not None:
            raise InvalidValue(
                f"Operations {first.number} and {op.number} both have bulkId "
                f"{op.bulk_id!r}; a bulkId must be unique within a bulk request."
            )
        creators[op.bulk_id] = op
    return creators


# --- running the operations -----------------------------------------------------------


@dataclass
class _Outcome:
    status: int
    resource: dict[str, Any] | None = None


@dataclass
class _BulkRun:
    ctx: Ctx
    operations: list[_Operation]
    fail_on_errors: int | None
    creators: dict[str, _Operation]
    created: dict[str, str] = field(default_factory=dict)
    """bulkId -> id of the resource its POST created."""
    failed: set[str] = field(default_factory=set)
    """bulkIds whose POST ran and created nothing."""
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: int = 0

    @property
    def stopped(self) -> bool:
        return self.fail_on_errors is not None and self.errors >= self.fail_on_errors

    def _settled(self, ref: str) -> bool:
        return ref in self.created or ref in self.failed or ref not in self.creators

    def _ready(self, op: _Operation) -> bool:
        return all(self._settled(ref) for ref in op.references)

    async def run(self) -> list[dict[str, Any]]:
        pending = list(self.operations)
        while pending and not self.stopped:
            op = next((o for o in pending if self._ready(o)), None)
            if op is not None:
                pending.remove(op)
                self._record(op, *await self._execute(op))
                continue
            # Every pending operation waits for another: the references form a cycle.
            cycle = self._find_cycle(pending)
            chain = " -> ".join(f"bulkId {o.bulk_id!r}" for o in cycle)
            for op in cycle:
                pending.remove(op)
                error = UnresolvedReference(
                    f"Operation {op.number} is part of a circular bulkId reference "
                    f"({chain} -> bulkId {cycle[0].bulk_id!r}), which this server does not "
                    "resolve. Create the resources first, then link them in a later operation."
                )
                self._record(op, self._failure(op, error), None)
                if self.stopped:
                    break
        return self.results

    def _find_cycle(self, pending: list[_Operation]) -> list[_Operation]:
        """Operations that wait for each other in a cycle, in the order they wait."""
        op = pending[0]
        seen: dict[int, int] = {}
        walk: list[_Operation] = []
        while op.number not in seen:
            seen[op.number] = len(walk)
            walk.append(op)
            ref = next(r for r in op.references if not self._settled(r))
            op = self.creators[ref]
        return walk[seen[op.number] :]

    def _record(self, op: _Operation, result: dict[str, Any], created_id: str | None) -> None:
        self.results.append(result)
        if int(result["status"]) >= 400:
            self.errors += 1
        if op.method == "POST" and op.bulk_id is not None:
            if created_id is not None:
                self.created[op.bulk_id] = created_id
            else:
                self.failed.add(op.bulk_id)

    def _resolve(self, op: _Operation) -> dict[str, str]:
        for ref in op.references:
            if ref in self.created:
                continue
            if ref in self.failed:
                raise UnresolvedReference(
                    f"Operation {op.number} refers to bulkId {ref!r}, but the POST with that "
                    "bulkId failed, so there is no resource to refer to."
                )
            raise UnresolvedReference(
                f"Operation {op.number} refers to bulkId {ref!r}, but no POST in this bulk "
                "request has that bulkId."
            )
        return self.created

    def _location(self, op: _Operation, resource_id: str | None) -> str | None:
        if resource_id is None:
            return None
        return f"{self.ctx.base_url}/{op.endpoint}/{resource_id}"

    def _entry(self, op: _Operation) -> dict[str, Any]:
        entry: dict[str, Any] = {}
        if op.method is not None:
            entry["method"] = op.method
        if op.bulk_id is not None:
            entry["bulkId"] = op.bulk_id
        return entry

    def _failure(
        self, op: _Operation, error: ScimError, resource_id: str | None = None
    ) -> dict[str, Any]:
        entry = self._entry(op)
        location = self._location(op, resource_id) if op.method != "POST" else None
        if location is not None:
            entry["location"] = location
        entry["status"] = str(error.status)
        entry["response"] = error.to_dict()
        return entry

    async def _execute(self, op: _Operation) -> tuple[dict[str, Any], str | None]:
        """The operation's result entry, and the id of the resource a POST created."""
        resource_id: str | None = None
        try:
            if op.error is not None:
                raise op.error
            ids = self._resolve(op)
            target = op.target
            if target is not None:
                resource_id = _substitute(target, ids)
            data = _substitute(op.data, ids)
            outcome = await self._apply(op, resource_id, data)
        except ScimError as exc:
            return self._failure(op, exc, resource_id), None
        except Exception:
            log.exception("bulk operation %d (%s /%s) failed", op.number, op.method, op.endpoint)
            entry = self._entry(op)
            entry["status"] = "500"
            entry["response"] = {
                "schemas": [ERROR_SCHEMA],
                "status": "500",
                "detail": "Internal error; this operation changed nothing. Retry it, and "
                "report it if it persists.",
            }
            return entry, None
        resource = outcome.resource or {}
        meta = resource.get("meta") or {}
        if op.method == "POST":
            resource_id = resource.get("id")
        entry = self._entry(op)
        location = meta.get("location") or self._location(op, resource_id)
        if location is not None:
            entry["location"] = location
        if "version" in meta:
            entry["version"] = meta["version"]
        entry["status"] = str(outcome.status)
        return entry, resource_id if op.method == "POST" else None

    async def _apply(self, op: _Operation, resource_id: str | None, data: Any) -> _Outcome:
        if op.method == "POST":
            return await self._post(op.resource_type, data)
        assert resource_id is not None
        if_match = {op.version} if op.version else None
        if op.method == "PUT":
            return await self._put(op.resource_type, resource_id, data, if_match)
        if op.method == "PATCH":
            return await self._patch(op.resource_type, resource_id, data, if_match)
        return await self._delete(op.resource_type, resource_id, if_match)

    async def _post(self, rt: ResourceType, data: Any) -> _Outcome:
        ctx = self.ctx.fresh()
        created = await ctx.write(lambda conn: service.create(conn, ctx, rt, data))
        return _Outcome(201, ctx.render(rt, created))

    async def _put(
        self, rt: ResourceType, resource_id: str, data: Any, if_match: set[str] | None
    ) -> _Outcome:
        ctx = self.ctx.fresh()

        def tx(conn: Connection) -> dict[str, Any]:
            return service.replace(conn, ctx, rt, resource_id, data, if_match)

        saved = await ctx.write(tx)
        return _Outcome(200, ctx.render(rt, saved))

    async def _patch(
        self, rt: ResourceType, resource_id: str, data: Any, if_match: set[str] | None
    ) -> _Outcome:
        ctx = self.ctx.fresh()
        # A group comes back without its members: the new version, not the whole list.
        slim = Projection.parse(GROUP, None, ["members"])

        def tx(conn: Connection) -> dict[str, Any] | None:
            projection = slim if rt is GROUP else None
            return service.patch(conn, ctx, rt, resource_id, data, if_match, projection)

        saved = await ctx.write(tx)
        return _Outcome(200, saved)

    async def _delete(
        self, rt: ResourceType, resource_id: str, if_match: set[str] | None
    ) -> _Outcome:
        ctx = self.ctx.fresh()

        def tx(conn: Connection) -> None:
            service.delete(conn, ctx, rt, resource_id, if_match)

        await ctx.write(tx)
        return _Outcome(204)


# --- the endpoint ---------------------------------------------------------------------


async def bulk(request: Request) -> Response:
    ctx = await context(request)
    fail_on_errors, raw_operations = _parse_request(
        await _read_body(request, ctx.limits), ctx.limits
    )
    operations = [_read_operation(n, raw) for n, raw in enumerate(raw_operations, 1)]
    creators = _check_unique_bulk_ids(operations)
    run = _BulkRun(ctx, operations, fail_on_errors, creators)
    results = await run.run()
    return ScimResponse({"schemas": [BULK_RESPONSE], "Operations": results})


def routes_for_bulk() -> list[tuple[str, Any, list[str]]]:
    return [("/Bulk", bulk, ["POST"])]
