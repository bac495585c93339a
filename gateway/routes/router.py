"""The SCIM routes' direct dispatch: one dict lookup instead of Starlette's route walk.

Every SCIM request would otherwise pass the exception middleware, the top router's
walk (a regular expression per route), the ``/scim/v2`` mount, the mount's own walk
and Starlette's request wrapper, which catches exceptions a second time. Together
they cost about a tenth of an authenticated request. :class:`ScimDispatch` sits
inside the observability middleware and answers the requests whose route it can
name from a dict:

- the path is ``/scim/v2`` plus one of the SCIM routes' paths: a fixed one
  (``/Users``, ``/Users/.search``, ``/Bulk``, ...) or a ``{id}`` route whose last
  segment is the id (``/Users/2819c223``);
- the method is one that route serves.

It sets the scope as the mount and route would (``root_path``, ``route``,
``path_params``, ...), calls the same endpoint, and turns a :class:`ScimError` or an
``HTTPException`` into the same answer through the application's own handlers. Any
other exception goes on to the server-error handler, as before.

Everything else goes the usual way through Starlette, unchanged: other paths, a
method the route does not serve (``405`` with its ``Allow``), ``HEAD``, a trailing
slash (Starlette's redirect), a path that a fixed route shares with an ``{id}``
route of another method (``GET /Users/.search`` reads the user with that id), an
application served under a ``root_path``. Which requests take which way changes no
answer, only its cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.convertors import StringConvertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..scim.errors import ScimError

__all__ = ["ScimDispatch"]

_Target = tuple[Route, frozenset[str]]


class ScimDispatch:
    """ASGI middleware answering the SCIM routes under ``prefix`` directly."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str,
        routes: list[Route],
        router: Any,
        handlers: Mapping[Any, Any],
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.router = router
        self.handlers = handlers
        self.fixed: dict[str, _Target] = {}
        self.by_id: dict[str, _Target] = {}
        for route in routes:
            methods = frozenset((route.methods or set()) - {"HEAD"})
            names = list(route.param_convertors)
            if not names:
                self.fixed[route.path] = (route, methods)
            elif (
                len(names) == 1
                and isinstance(route.param_convertors[names[0]], StringConvertor)
                and route.path.endswith("/{" + names[0] + "}")
            ):
                head = route.path[: -len(names[0]) - 2]
                if "{" not in head:
                    self.by_id[head] = (route, methods)

    def _target(self, scope: Scope) -> tuple[Route, dict[str, str]] | None:
        if scope["type"] != "http" or scope.get("root_path"):
            return None
        path: str = scope["path"]
        prefix = self.prefix
        if not path.startswith(prefix):
            return None
        rest = path[len(prefix) :]
        method = scope["method"]
        found = self.fixed.get(rest)
        if found is not None:
            # A fixed path the method does not serve may still be an {id} route's
            # (GET /Users/.search): Starlette's walk decides.
            return (found[0], {}) if method in found[1] else None
        cut = rest.rfind("/") + 1
        if cut <= 1 or cut == len(rest):
            return None
        found = self.by_id.get(rest[:cut])
        if found is None or method not in found[1]:
            return None
        route = found[0]
        return route, {next(iter(route.param_convertors)): rest[cut:]}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._target(scope)
        if target is None:
            await self.app(scope, receive, send)
            return
        route, path_params = target
        # What the mount and the route would have put in the scope.
        scope["router"] = self.router
        scope["app_root_path"] = ""
        scope["root_path"] = self.prefix
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = path_params
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except (ScimError, HTTPException) as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Any:
        """The application's handler for ``exc``, found as Starlette finds it: by
        status code for an ``HTTPException``, else by the exception's classes."""
        handlers = self.handlers
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in handlers and cls is not Exception:  # that one is the 500 handler's
                return handlers[cls]
        return None
