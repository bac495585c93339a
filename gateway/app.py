"""The Starlette application: ``create_app(settings)``; no import-time state."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import Connection
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from plugins import Adapter, GatewayPlugins, ProvisioningEvent

from .audit import WRITE_TEAMS, purge_audit, record_audit
from .auth import KeyAuthenticator, Principal, bearer_token, load_hasher
from .config import Settings
from .http import ScimResponse
from .keys import KeyHasher, redact
from .observability import install as install_observability
from .outbox import DeliveryWorker, outbox_recorder, purge_outbox
from .policy import TeamPolicy
from .routes.admin import admin_mount
from .routes.bulk import routes_for_bulk
from .routes.discovery import routes_for_discovery
from .routes.groups import routes_for_groups
from .routes.router import ScimDispatch
from .routes.search import routes_for_root_search
from .routes.users import routes_for_users
from .scim.errors import Forbidden, ScimError
from .store.bootstrap import prepare_database
from .store.db import Database, make_engine, scratch
from .team_config import apply_config_teams

__all__ = ["Gateway", "app_factory", "create_app"]

log = logging.getLogger("scim_gateway")

DEFAULT_POLICY = TeamPolicy()

_STATUS_DETAIL = {
    404: "No such endpoint. SCIM resources live under /scim/v2 (Users, Groups, ...).",
    405: "This endpoint does not support that method.",
}


class Gateway:
    """Everything a request needs, built once per process from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(
            make_engine(
                settings.database.url,
                pool_size=settings.database.pool_size,
                echo=settings.database.echo,
            )
        )
        self.hasher: KeyHasher
        self.keys: KeyAuthenticator
        blocked = [*settings.plugins.block]
        blocked += os.environ.get("SCIM_GATEWAY_BLOCK_PLUGINS", "").split(",")
        self.plugins = GatewayPlugins(blocked=blocked)
        self._policies: dict[str, TeamPolicy] = {}
        self._recorders: list[Callable[[Connection, list[ProvisioningEvent]], None]] = []
        self.delivery: DeliveryWorker | None = None

    def start(self) -> None:
        prepare_database(self.db)
        security = self.settings.security
        secret = None
        if security.key_secret is not None:
            secret = security.key_secret.resolve(
                where=f"{self.settings.source}: security.key_secret"
            )
        self.hasher = load_hasher(self.db, secret)
        self.keys = KeyAuthenticator(self.db, self.hasher)
        loaded = {
            name.lower()
            for cls in self.plugins.registry.classes()
            for name in (cls.name, *cls.aliases)
        }
        apply_config_teams(self.db, self.settings, adapters=loaded)
        # The audit log and the outbox: written in each write's own transaction.
        self.add_recorder(record_audit)
        self.add_recorder(outbox_recorder(self.settings))
        purge_audit(self.db, self.settings.audit.retention_days)
        purge_outbox(self.db, self.settings.webhooks.retention_days)

    def add_recorder(self, recorder: Callable[[Connection, list[ProvisioningEvent]], None]) -> None:
        """Register a function that stores a write's events inside its transaction."""
        self._recorders.append(recorder)

    def record(
        self, conn: Connection, events: list[ProvisioningEvent], team: tuple[str, int] | None = None
    ) -> None:
        """Hand a write's events to every recorder, in the write's own transaction.

        ``team`` is the (slug, pk) of the team that wrote, when the caller knows it:
        recorders find it in the transaction's scratch instead of looking it up."""
        if not events:
            return
        if team is not None:
            scratch(conn)[WRITE_TEAMS] = {team[0]: team[1]}
        for recorder in self._recorders:
            recorder(conn, events)

    def adapter_for(self, principal: Principal) -> Adapter:
        """The adapter bound to the caller's key (or its team's default)."""
        adapter = self.plugins.adapter(principal.adapter)
        if adapter is None:
            raise Forbidden(
                f"The adapter {principal.adapter!r} that this key is bound to is not loaded on "
                "this gateway (not installed, or blocked). Ask the gateway's operator."
            )
        return adapter

    def policy_for(self, principal: Principal) -> TeamPolicy:
        """The team's provisioning policy (options were validated when saved)."""
        options = principal.team_options
        if not options:
            return DEFAULT_POLICY
        cache_key = json.dumps(options, sort_keys=True, default=str)
        policy = self._policies.get(cache_key)
        if policy is None:
            policy = self._policies[cache_key] = TeamPolicy.from_options(options)
        return policy

    async def authenticate(self, request: Request) -> Principal:
        token = bearer_token(request)
        return await self.db.run_sync(lambda: self.keys.verify(token))

    def stop(self) -> None:
        self.db.dispose()


def _dispatch(by_method: dict[str, Any]) -> Any:
    """One endpoint serving several methods of one path (so 405 lists them all)."""

    async def endpoint(request: Request) -> Response:
        handler = by_method.get(request.method) or by_method["GET"]
        response: Response = await handler(request)
        return response

    return endpoint


def _routes(builders: list[Callable[[], list[tuple[str, Any, list[str]]]]]) -> list[Route]:
    paths: dict[str, dict[str, Any]] = {}
    for builder in builders:
        for path, endpoint, methods in builder():
            for method in methods:
                paths.setdefault(path, {})[method] = endpoint
    return [
        Route(path, _dispatch(by_method), methods=list(by_method))
        for path, by_method in paths.items()
    ]


async def _scim_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ScimError)
    body = exc.to_dict()
    body["detail"] = redact(body["detail"])  # a key pasted into a URL or filter is not echoed
    return ScimResponse(body, status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = _STATUS_DETAIL.get(exc.status_code, str(exc.detail))
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(exc.status_code),
        "detail": detail,
    }
    return ScimResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, redact(request.url.path))
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "500",
        "detail": "Internal error; the request changed nothing. Retry, and report it if it "
        "persists.",
    }
    return ScimResponse(body, status_code=500)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    gateway = Gateway(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway.start()
        gateway.delivery = DeliveryWorker(settings, gateway.db)
        try:
            await gateway.delivery.start()
            yield
        finally:
            await gateway.delivery.stop()
            gateway.stop()

    # The routes IdPs call thousands of times come first: Starlette tries them in order.
    scim_routes = _routes(
        [
            routes_for_users,
            routes_for_groups,
            routes_for_root_search,
            routes_for_bulk,
            routes_for_discovery,
        ]
    )
    app = Starlette(
        routes=[Mount("/scim/v2", routes=scim_routes), admin_mount()],
        exception_handlers={
            ScimError: _scim_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    # Inside the observability middleware: SCIM requests skip Starlette's route walk.
    app.add_middleware(
        ScimDispatch,
        prefix="/scim/v2",
        routes=scim_routes,
        router=app.router,
        handlers=app.exception_handlers,
    )
    install_observability(app)  # request ids, access log, /metrics, /healthz, /readyz
    return app


GC_YOUNG_THRESHOLD = 10_000
"""Allocations (less deallocations) of container objects between two collections of
the youngest generation; Python's default is 700."""


def tune_gc() -> None:
    """Collect cyclic garbage less often than Python's default does: a create allocates
    hundreds of dicts and lists, almost all freed by their reference counts as it
    ends, and at the default threshold the collector ran every three creates to find
    next to nothing (about 1 % of a create's instructions). Garbage in cycles lives
    a little longer; the gateway's memory stays flat (``bench --rss``)."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def app_factory() -> Starlette:
    """Entry point for ``uvicorn --factory``: settings from SCIM_GATEWAY_CONFIG."""
    from .cli import effective_settings

    tune_gc()
    return create_app(effective_settings(os.environ.get("SCIM_GATEWAY_CONFIG") or None))
