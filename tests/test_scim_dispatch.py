"""SCIM requests answered by the direct dispatch (gateway/routes/router.py) get the
same answers as through Starlette's routing, which still serves every other request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import DatabaseSettings, Settings
from gateway.routes.router import ScimDispatch
from tests.conftest import PATCH_OP, USER_SCHEMA, new_group, new_user

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# Headers that may differ between two answers to the same request.
_VARYING = {"x-request-id", "date"}


def _dispatch(app: Any) -> ScimDispatch:
    layer: Any = app.build_middleware_stack()
    while not isinstance(layer, ScimDispatch):
        layer = layer.app
    return layer


def _requests(user_id: str, group_id: str) -> list[tuple[str, str, Any]]:
    patch_body = {"schemas": [PATCH_OP], "Operations": [{"op": "bogus"}]}
    return [
        ("GET", f"/scim/v2/Users/{user_id}", None),
        ("GET", f"/scim/v2/Users/{user_id}?attributes=userName", None),
        ("GET", "/scim/v2/Users?filter=userName%20eq%20%22bjensen%22", None),
        ("GET", "/scim/v2/Users?filter=userName%20eq", None),
        ("GET", "/scim/v2/Users?startIndex=1&count=1", None),
        ("GET", f"/scim/v2/Groups/{group_id}", None),
        ("GET", f"/scim/v2/Groups/{group_id}?excludedAttributes=members", None),
        ("GET", "/scim/v2/Users/2819c223-7f76-453a-919d-413861904646", None),
        ("GET", "/scim/v2/Users/.search", None),  # the user whose id is '.search'
        ("GET", "/scim/v2/Users/a%2Fb", None),  # no such endpoint
        ("GET", "/scim/v2/Users/", None),  # Starlette's trailing-slash redirect
        ("PUT", "/scim/v2/Users", {}),  # 405 with Allow
        ("DELETE", "/scim/v2/Bulk", None),
        ("POST", "/scim/v2/Users", {"schemas": [USER_SCHEMA]}),  # userName missing
        ("POST", "/scim/v2/Users", {"schemas": [USER_SCHEMA], "userName": "bjensen"}),
        ("POST", "/scim/v2/Users/.search", {"filter": 'userName sw "bj"'}),
        ("POST", "/scim/v2/.search", {"filter": "userName eq"}),
        ("PATCH", f"/scim/v2/Users/{user_id}", patch_body),
        ("PATCH", "/scim/v2/Users/2819c223-7f76-453a-919d-413861904646", patch_body),
        ("DELETE", "/scim/v2/Groups/2819c223-7f76-453a-919d-413861904646", None),
        ("GET", "/scim/v2/ServiceProviderConfig", None),
        ("GET", "/scim/v2/ResourceTypes/User", None),
        ("GET", f"/scim/v2/Schemas/{ENTERPRISE}", None),
        ("GET", "/scim/v2/Nothing/here", None),
    ]


def _answer(client: TestClient, method: str, path: str, body: Any, **kw: Any) -> Any:
    response = client.request(method, path, json=body, follow_redirects=False, **kw)
    headers = {k: v for k, v in response.headers.items() if k not in _VARYING}
    return response.status_code, headers, response.content


def test_dispatched_and_routed_answers_are_the_same(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = new_user(client, "bjensen", name={"givenName": "Barbara"})
    group = new_group(client, "Admins", members=[user["id"]])
    requests = _requests(user["id"], group["id"])

    direct = [_answer(client, *request) for request in requests]
    monkeypatch.setattr(ScimDispatch, "_target", lambda self, scope: None)
    routed = [_answer(client, *request) for request in requests]

    for request, one, other in zip(requests, direct, routed, strict=True):
        assert one == other, request
    statuses = {request[:2]: answer[0] for request, answer in zip(requests, direct, strict=True)}
    assert statuses["GET", f"/scim/v2/Users/{user['id']}"] == 200
    assert statuses["GET", "/scim/v2/Users/.search"] == 404
    assert statuses["GET", "/scim/v2/Users/"] == 307
    assert statuses["PUT", "/scim/v2/Users"] == 405
    assert statuses["POST", "/scim/v2/Users"] in (400, 409)


def test_a_request_without_a_key_is_refused_the_same_way(
    anon: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = _answer(anon, "GET", "/scim/v2/Users", None)
    monkeypatch.setattr(ScimDispatch, "_target", lambda self, scope: None)
    assert direct == _answer(anon, "GET", "/scim/v2/Users", None)
    assert direct[0] == 401


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("GET", "/scim/v2/Users", "/Users"),
        ("POST", "/scim/v2/Users", "/Users"),
        ("GET", "/scim/v2/Users/2819c223", "/Users/{id}"),
        ("PATCH", "/scim/v2/Groups/2819c223", "/Groups/{id}"),
        ("DELETE", "/scim/v2/Users/2819c223", "/Users/{id}"),
        ("POST", "/scim/v2/Users/.search", "/Users/.search"),
        ("POST", "/scim/v2/Bulk", "/Bulk"),
        ("GET", "/scim/v2/Users/.search", None),  # a fixed path the method does not serve
        ("HEAD", "/scim/v2/Users", None),
        ("PUT", "/scim/v2/Users", None),
        ("GET", "/scim/v2/Users/", None),
        ("GET", "/scim/v2/Users/a/b", None),
        ("GET", f"/scim/v2/Schemas/{ENTERPRISE}", None),  # a {id:path} route
        ("GET", "/metrics", None),
    ],
)
def test_which_requests_are_dispatched_directly(
    tmp_path: Path, method: str, path: str, template: str | None
) -> None:
    """The IdPs' hot paths skip Starlette's route walk; the rest take it."""
    app = create_app(Settings(database=DatabaseSettings(url=f"sqlite:///{tmp_path}/g.db")))
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    target = _dispatch(app)._target(scope)
    assert (target[0].path if target else None) == template


def test_the_access_log_names_the_route_of_a_dispatched_request(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    user = new_user(client, "bjensen")
    with caplog.at_level("INFO", logger="scim_gateway.access"):
        # The create above is logged too when an earlier test in the worker left the
        # access logger at INFO: only the two requests below count.
        caplog.clear()
        client.get(f"/scim/v2/Users/{user['id']}")
        client.patch(
            f"/scim/v2/Users/{user['id']}",
            json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {}}]},
        )
    # Only the access log's records: the test client's HTTP library logs each request
    # at INFO too, when no earlier test in the process has quietened it.
    access = [r for r in caplog.records if r.name == "scim_gateway.access"]
    routes = [(r.method, r.route, r.status) for r in access]  # type: ignore[attr-defined]
    assert routes == [
        ("GET", "/scim/v2/Users/{id}", 200),
        ("PATCH", "/scim/v2/Users/{id}", 200),
    ]
