"""Operations: request ids, the access log, Prometheus metrics and health checks.

:func:`install` puts all of it on the application:

- every answer carries ``X-Request-Id`` (the caller's when it is sane, else a new
  one; the provisioning events of the request carry the same id);
- one log record per request on ``scim_gateway.access``: request id, team, key
  id, adapter, method, route template, path (keys redacted), status, duration;
- ``GET /metrics``: the Prometheus text format. It needs no key: it holds no
  secrets and no user data, only route templates, team slugs and counts.
  Operators who do not want it public restrict it at their reverse proxy;
  ``[metrics] enabled = false`` removes it;
- ``GET /healthz``: the process answers (no database access);
- ``GET /readyz``: the database answers and has the schema this version needs.

With several worker processes, each process writes its metrics to files in
``PROMETHEUS_MULTIPROC_DIR`` (``scim-gateway serve --workers N`` makes a fresh
directory when the variable is unset) and ``/metrics`` adds them up, so every
worker answers with the same totals.

Provisioning actions are counted by an observer of committed events (registered
on the gateway's plugin manager), not by an in-transaction recorder: a write that
rolls back after its recorders ran is never counted.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Connection, func, select, text
from sqlalchemy import inspect as sa_inspect
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plugins import ProvisioningEvent, hookimpl

from .logging_setup import request_fields, scrub, write_direct
from .store.tables import metadata

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from .app import Gateway

__all__ = [
    "ACTIONS",
    "AUTH_FAILURES",
    "DELIVERY_FAILURES",
    "LATENCY",
    "LATENCY_BUCKETS",
    "OUTBOX_PENDING",
    "REQUESTS",
    "ObservabilityMiddleware",
    "delivery_failed",
    "install",
    "readiness",
]

access_log = logging.getLogger("scim_gateway.access")
log = logging.getLogger("scim_gateway.observability")

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
"""Decided when prometheus_client is imported: each process writes to its own files."""
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic Prometheus text format, which every Prometheus version reads."""

# The ``*_created`` series double the output and do not exist in multiprocess mode.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Counter(
    "scim_gateway_requests_total",
    "HTTP requests answered, by route template, method, status, and the team and "
    "adapter of the key that made them (empty without a valid key).",
    ["endpoint", "method", "status", "team", "adapter"],
)
LATENCY = Histogram(
    "scim_gateway_request_duration_seconds",
    "Time from receiving a request to finishing its answer, by route template and method.",
    ["endpoint", "method"],
    buckets=LATENCY_BUCKETS,
)
ACTIONS = Counter(
    "scim_gateway_provisioning_actions_total",
    "Committed provisioning events (user.created, user.deactivated, member.added, ...), "
    "by kind, team and adapter.",
    ["kind", "team", "adapter"],
)
AUTH_FAILURES = Counter(
    "scim_gateway_auth_failures_total",
    "Requests refused with 401: a missing, unknown, expired or revoked credential "
    "(api is scim or admin).",
    ["api"],
)
DELIVERY_FAILURES = Counter(
    "scim_gateway_webhook_delivery_failures_total",
    "Failed attempts to deliver a provisioning event to a team's webhook.",
    ["team"],
)
OUTBOX_PENDING = Gauge(
    "scim_gateway_outbox_pending",
    "Webhook deliveries waiting to be sent (read from the database at each scrape).",
    multiprocess_mode="mostrecent",
)

_ACCESS_FORMAT = "%s %s %s %.1fms"
"""An access line's message: method, route template, status, milliseconds."""
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
"""The endpoint label of a request that matched no route (never the raw path)."""

OBSERVER_NAME = "scim_gateway.metrics"
READY_TIMEOUT = 2.0
"""Seconds /readyz waits for the database before answering 503."""

MIGRATION_DIRS = (
    Path(__file__).parent / "migrations",
    Path(__file__).parent / "store" / "migrations",
)
"""Where an Alembic script directory is looked for, to read the head revision."""


def delivery_failed(team: str) -> None:
    """Count one failed webhook delivery attempt for ``team`` (the outbox calls this)."""
    DELIVERY_FAILURES.labels(team).inc()


# --- request ids, access log and request metrics --------------------------------------


def new_request_id() -> str:
    """32 random hex digits (a uuid4's length; ``os.urandom`` is a third of its cost)."""
    return os.urandom(16).hex()


def _request_id(scope: Scope) -> str:
    """The caller's X-Request-Id when it is sane (the rule of
    :func:`gateway.routes.common.request_id`), else a new one. The scope's headers
    are made to carry it, so every reader of the request sees the same id."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    given = [v for k, v in headers if k == b"x-request-id"]
    if given:
        rid = given[0].decode("latin-1")
        if len(given) == 1 and 0 < len(rid) <= 128 and rid.isascii() and rid.isprintable():
            return rid
    rid = new_request_id()
    kept = [(k, v) for k, v in headers if k != b"x-request-id"]
    scope["headers"] = [*kept, (b"x-request-id", rid.encode("ascii"))]
    return rid


def route_template(scope: Scope, app_root: str) -> str:
    """``/scim/v2/Users/{id}`` for ``/scim/v2/Users/2819c223``: the route that served
    the request, with the prefixes of the mounts it went through."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if route is None or not isinstance(path, str):
        return UNMATCHED
    root: str = scope.get("root_path", "")
    prefix = root[len(app_root) :] if root.startswith(app_root) else root
    if isinstance(route, Mount):  # a mounted application with no routes of its own
        return prefix + "/{path}"
    return prefix + path


class _Labels:
    """Who made the request, read from the principal the SCIM routes put on
    ``request.state`` once the key was verified."""

    def __init__(self, scope: Scope, gateway: Gateway) -> None:
        self.state: dict[str, Any] = scope.setdefault("state", {})
        self.gateway = gateway

    def fields(self) -> dict[str, str | None]:
        principal = self.state.get("principal")
        if principal is None:
            return {"request_id": self.state.get("request_id")}
        adapter = self.gateway.plugins.adapter(principal.adapter)
        return {
            "request_id": self.state.get("request_id"),
            "team": principal.team_slug,
            "key_id": principal.key_id,
            "adapter": adapter.name if adapter is not None else principal.adapter,
        }


class ObservabilityMiddleware:
    """Request id, access log line and metrics for every HTTP request."""

    def __init__(self, app: ASGIApp, *, gateway: Gateway, metrics: bool = True) -> None:
        self.app = app
        self.gateway = gateway
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = _request_id(scope)
        labels = _Labels(scope, self.gateway)
        labels.state["request_id"] = rid
        app_root: str = scope.get("root_path", "")
        path: str = scope.get("path", "")
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                MutableHeaders(scope=message)["X-Request-Id"] = rid
            await send(message)

        token = request_fields.set(labels.fields)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The error handler outside answers 500 and logs the error; its records
            # still carry this request's fields, so the context is left set.
            self._observe(scope, app_root, path, 500 if not started else status, start, labels)
            raise
        self._observe(scope, app_root, path, status, start, labels)
        request_fields.reset(token)

    def _observe(
        self, scope: Scope, app_root: str, path: str, status: int, start: float, labels: _Labels
    ) -> None:
        seconds = time.perf_counter() - start
        endpoint = route_template(scope, app_root)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        fields = labels.fields()
        if self.metrics:
            team, adapter = fields.get("team") or "", fields.get("adapter") or ""
            requests, latency = _request_series(endpoint, method, status, team, adapter)
            requests.inc()
            latency.observe(seconds)
            if status == 401:
                AUTH_FAILURES.labels("admin" if endpoint.startswith("/admin/") else "scim").inc()
        level = logging.ERROR if status >= 500 else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        duration_ms = round(seconds * 1000, 3)
        # A method of _METHODS holds no secret; any other is the client's text.
        shown = scope["method"] if method != "OTHER" else scrub(scope["method"])
        args = (shown, endpoint, status, duration_ms)
        extra = {
            # Every value below is scrubbed here or holds no secret by its format
            # (slugs, key ids, adapter and route names), so the scrubbing filter
            # passes this record straight through.
            "_scrubbed": True,
            "request_id": scrub(str(fields.get("request_id") or "")) or None,
            "team": fields.get("team"),
            "key_id": fields.get("key_id"),
            "adapter": fields.get("adapter"),
            "method": shown,
            "route": endpoint,
            "path": scrub(path),
            "status": status,
            "duration_ms": duration_ms,
        }

        # The record is made here rather than through ``access_log.log``: that would
        # walk the stack to find this line, once per request, for a field no access
        # line shows. Handlers, filters and propagation are the logger's as usual.
        def record() -> logging.LogRecord:
            return access_log.makeRecord(
                access_log.name, level, __file__, 0, _ACCESS_FORMAT, args, None, "_observe", extra
            )

        # Where the record would only reach the handler `serve` installs, its line is
        # written without the record (a record costs more than the rest of the line).
        # The context filter adds nothing to it: the fields it would add are this
        # request's (``labels.fields``), which ``extra`` holds already.
        context = request_fields.get()
        if (context is None or context == labels.fields) and write_direct(
            access_log, level, _ACCESS_FORMAT % args, extra, record
        ):
            return
        access_log.handle(record())


_SERIES: dict[tuple[str, str, int, str, str], tuple[Any, Any]] = {}
_SERIES_MAX = 10_000


def _kept(cache: dict[Any, Any], key: Any, make: Callable[[], Any]) -> Any:
    """``cache[key]``, made on first use; the cache is bounded (many teams, like the
    registry's own use) by clearing it when full."""
    found = cache.get(key)
    if found is None:
        if len(cache) >= _SERIES_MAX:
            cache.clear()
        found = cache[key] = make()
    return found


def _request_series(
    endpoint: str, method: str, status: int, team: str, adapter: str
) -> tuple[Any, Any]:
    """The request counter's and latency histogram's children for these labels, kept
    so that each request skips prometheus_client's label validation and locking."""
    series: tuple[Any, Any] = _kept(
        _SERIES,
        (endpoint, method, status, team, adapter),
        lambda: (
            REQUESTS.labels(endpoint, method, str(status), team, adapter),
            LATENCY.labels(endpoint, method),
        ),
    )
    return series


def _with_request_id(handler: Callable[[Request, Exception], Any]) -> Any:
    """The 500 handler runs outside the middleware: it adds X-Request-Id itself."""

    async def answer(request: Request, exc: Exception) -> Response:
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        assert isinstance(response, Response)
        rid = request.scope.get("state", {}).get("request_id") or new_request_id()
        response.headers["X-Request-Id"] = rid
        return response

    return answer


class _ActionCounter:
    """Counts committed provisioning events by kind, team and adapter."""

    def __init__(self) -> None:
        # The counter's child per label set, kept as _request_series keeps its own: a
        # 100-member add counts 100 events.
        self._children: dict[tuple[str, str, str], Any] = {}

    @hookimpl
    def scim_gateway_provisioning_event(self, event: ProvisioningEvent) -> None:
        key = (event.kind, event.team, event.adapter or "")
        _kept(self._children, key, lambda: ACTIONS.labels(*key)).inc()


# --- /metrics ----------------------------------------------------------------------


def _outbox_pending(conn: Connection) -> int | None:
    deliveries = metadata.tables.get("webhook_delivery")
    if deliveries is None or "state" not in deliveries.c:
        return None
    if not sa_inspect(conn).has_table(deliveries.name):
        return None
    stmt = select(func.count()).select_from(deliveries).where(deliveries.c.state == "pending")
    return int(conn.execute(stmt).scalar_one())


def _registry() -> CollectorRegistry:
    if not MULTIPROCESS:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


async def metrics_endpoint(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    try:
        pending = await gateway.db.run(_outbox_pending)
    except Exception as exc:  # the scrape still answers; the gauge keeps its last value
        log.warning("cannot read the outbox depth: %s", type(exc).__name__)
    else:
        if pending is not None:
            OUTBOX_PENDING.set(pending)
    return Response(generate_latest(_registry()), headers={"Content-Type": CONTENT_TYPE})


# --- /healthz and /readyz ------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _alembic_heads() -> set[str] | None:
    """The head revisions of the gateway's migrations; ``None`` when unknown."""
    try:
        script = importlib.import_module("alembic.script")
    except ImportError:
        return None
    for directory in MIGRATION_DIRS:
        if (directory / "env.py").is_file():
            return set(script.ScriptDirectory(str(directory)).get_heads())
    return None


def _schema_checks(conn: Connection) -> dict[str, Any]:
    conn.execute(text("SELECT 1"))
    checks: dict[str, Any] = {"database": "ok"}
    present = set(sa_inspect(conn).get_table_names())
    missing = sorted(set(metadata.tables) - present)
    checks["schema"] = "ok" if not missing else {"missing_tables": missing}
    if "alembic_version" not in present:
        checks["migrations"] = "not tracked"
        return checks
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
    stored = {str(v) for v in rows}
    heads = _alembic_heads()
    if heads is None:
        checks["migrations"] = "skipped"
    elif stored == heads:
        checks["migrations"] = "ok"
    else:
        checks["migrations"] = {"database": sorted(stored), "expected": sorted(heads)}
    return checks


@dataclass
class _Ticket:
    started: bool = False
    done: bool = False


class _Probes:
    """Readiness checks still running on threads: a database that hangs keeps at
    most ``limit`` of them waiting, never the whole thread pool."""

    limit = 4

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0

    def enter(self) -> _Ticket | None:
        """A ticket for one more check, or ``None`` when too many are waiting."""
        with self._lock:
            if self.running >= self.limit:
                return None
            self.running += 1
            return _Ticket()

    def start(self, ticket: _Ticket) -> bool:
        """On the thread: whether the check may still run (nobody gave it up)."""
        with self._lock:
            ticket.started = not ticket.done
            return ticket.started

    def finish(self, ticket: _Ticket) -> None:
        """On the thread, when a started check ends."""
        with self._lock:
            if not ticket.done:
                ticket.done = True
                self.running -= 1

    def abandon(self, ticket: _Ticket) -> None:
        """By the caller: a check no thread has started never will."""
        with self._lock:
            if not ticket.started and not ticket.done:
                ticket.done = True
                self.running -= 1


_PROBES = _Probes()


async def readiness(gateway: Gateway, timeout: float | None = None) -> tuple[bool, dict[str, Any]]:
    """Whether the gateway can serve: the database answers within ``timeout`` and has
    every table the models declare (and, when Alembic tracks it, the head revision)."""
    unknown = {"schema": "unknown", "migrations": "unknown"}
    ticket = _PROBES.enter()
    if ticket is None:
        log.warning("readiness: earlier checks are still waiting for the database")
        return False, {"database": "timeout", **unknown}

    def check() -> dict[str, Any]:
        if not _PROBES.start(ticket):
            return {}
        try:
            with gateway.db.engine.connect() as conn, conn.begin():
                return _schema_checks(conn)
        finally:
            _PROBES.finish(ticket)

    try:
        with anyio.fail_after(READY_TIMEOUT if timeout is None else timeout):
            checks = await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
    except TimeoutError:
        log.warning("readiness: the database did not answer in time")
        return False, {"database": "timeout", **unknown}
    except Exception as exc:
        log.warning("readiness: the database is unreachable: %s", exc)
        return False, {"database": "unreachable", **unknown}
    finally:
        _PROBES.abandon(ticket)
    ready = all(checks[name] in ("ok", "not tracked", "skipped") for name in checks)
    return ready, checks


async def readyz(request: Request) -> Response:
    ready, checks = await readiness(request.app.state.gateway)
    if ready:
        return JSONResponse({"status": "ok", "checks": checks})
    return JSONResponse(
        {"status": "unavailable", "checks": checks},
        status_code=503,
        headers={"Retry-After": "5", "Cache-Control": "no-store"},
    )


def routes(*, metrics: bool = True) -> list[Route]:
    out = [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
    if metrics:
        out.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    return out


def install(app: Starlette) -> None:
    """Add the middleware, /metrics, /healthz, /readyz and the action counter to
    ``app`` (built by :func:`gateway.app.create_app`)."""
    gateway: Gateway = app.state.gateway
    enabled = gateway.settings.metrics.enabled
    app.add_middleware(ObservabilityMiddleware, gateway=gateway, metrics=enabled)
    handler = app.exception_handlers.get(Exception)
    if handler is not None:
        app.exception_handlers[Exception] = _with_request_id(handler)
    app.router.routes.extend(routes(metrics=enabled))
    if enabled:
        with contextlib.suppress(ValueError):  # already registered
            gateway.plugins.pm.register(_ActionCounter(), name=OBSERVER_NAME)
