"""The admin API (/admin/v1): teams, SSO, SCIM provisioning and keys over HTTP.

Each test runs on SQLite and on PostgreSQL, through a real app with the admin API
mounted, and uses the keys it creates against /scim/v2 to check that what the
admin API reports is what the SCIM API enforces.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import AdminSettings, DatabaseSettings, LimitSettings, Settings
from gateway.openapi import openapi_document
from gateway.routes.admin import SECURITY_HEADERS, admin_mount
from gateway.scim.errors import ServiceUnavailable
from tests.conftest import ERROR, USER_SCHEMA
from tests.support import ENTITY_ID, SSO_URL, saml_certificate

A = "/admin/v1"
MAX_BODY = 16_384
RETRY = {"Retry-After": "5"}


def make_app(database_url: str, op_token: str | None) -> Starlette:
    digest = hashlib.sha256(op_token.encode()).hexdigest() if op_token else ""
    settings = Settings(
        database=DatabaseSettings(url=database_url),
        limits=replace(LimitSettings(), max_body_bytes=MAX_BODY),
        admin=AdminSettings(token_sha256=digest),
        source="<tests>",
    )
    app = create_app(settings)
    if not any(isinstance(r, Mount) and r.path == A for r in app.routes):
        app.router.routes.append(admin_mount())
    return app


@pytest.fixture
def op_token() -> str:
    return "scimgw_admin_" + secrets.token_urlsafe(32)


@pytest.fixture
def app(database_url: str, op_token: str) -> Starlette:
    return make_app(database_url, op_token)


@pytest.fixture
def admin(app: Starlette, op_token: str) -> Iterator[TestClient]:
    """A client that sends the operator token."""
    with TestClient(app, headers={"Authorization": f"Bearer {op_token}"}) as client:
        yield client


@pytest.fixture
def anon(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def scim_get(client: TestClient, key: str, path: str = "/scim/v2/Users") -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {key}"})


def saml() -> dict[str, Any]:
    return {
        "method": "saml",
        "entity_id": ENTITY_ID,
        "sso_url": SSO_URL,
        "certificate": saml_certificate(),
    }


def new_team(admin: TestClient, **fields: Any) -> str:
    slug = "t-" + uuid.uuid4().hex[:12]
    response = admin.post(f"{A}/teams", json={"slug": slug, **fields})
    assert response.status_code == 201, response.text
    return slug


def ready_team(admin: TestClient) -> str:
    """A team with SAML SSO and SCIM provisioning on."""
    slug = new_team(admin)
    assert admin.put(f"{A}/teams/{slug}/sso", json=saml()).status_code == 200
    assert admin.post(f"{A}/teams/{slug}/scim/enable").status_code == 200
    return slug


def new_key(admin: TestClient, slug: str, **fields: Any) -> dict[str, Any]:
    response = admin.post(f"{A}/teams/{slug}/keys", json={"name": "okta", **fields})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == status
    message: str = body["error"]["message"]
    assert message
    return message


def assert_secure(response: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code)


# --- the whole flow ----------------------------------------------------------------------


def test_full_flow_from_new_team_to_revoked_key(admin: TestClient) -> None:
    slug = "t-" + uuid.uuid4().hex[:12]
    response = admin.post(f"{A}/teams", json={"slug": slug, "name": "Acme Corp"})
    assert response.status_code == 201
    assert response.headers["location"] == f"{A}/teams/{slug}"
    team = response.json()
    assert team["slug"] == slug
    assert team["name"] == "Acme Corp"
    assert team["scim_enabled"] is False
    assert team["sso"] is None
    assert team["default_adapter"] == "generic"

    listed = admin.get(f"{A}/teams").json()["teams"]
    assert slug in [t["slug"] for t in listed]
    assert admin.get(f"{A}/teams/{slug}").json()["name"] == "Acme Corp"

    response = admin.put(f"{A}/teams/{slug}/sso", json=saml())
    assert response.status_code == 200, response.text
    sso = response.json()["sso"]
    assert sso["method"] == "saml"
    assert sso["entity_id"] == ENTITY_ID
    assert "certificate" not in sso

    response = admin.post(f"{A}/teams/{slug}/scim/enable")
    assert response.status_code == 200, response.text
    assert response.json()["scim_enabled"] is True
    assert response.json()["sso"] == "saml"

    response = admin.post(f"{A}/teams/{slug}/keys", json={"name": "okta-production"})
    assert response.status_code == 201, response.text
    key = response.json()
    for name in ("id", "name", "adapter", "prefix", "created", "expires", "status", "token"):
        assert name in key, name
    assert key["name"] == "okta-production"
    assert key["adapter"] == "generic"
    assert key["status"] == "active"
    assert key["expires"] is None
    assert key["token"].startswith(f"scimgw_{key['id']}_")
    assert key["token"] not in key["prefix"]
    assert response.headers["cache-control"] == "no-store"

    response = scim_get(admin, key["token"])
    assert response.status_code == 200, response.text
    created = admin.post(
        "/scim/v2/Users",
        json={"schemas": [USER_SCHEMA], "userName": "bjensen"},
        headers={"Authorization": f"Bearer {key['token']}"},
    )
    assert created.status_code == 201, created.text

    listing = admin.get(f"{A}/teams/{slug}/keys")
    assert listing.status_code == 200
    assert key["token"] not in listing.text
    secret = key["token"].removeprefix(f"scimgw_{key['id']}_")  # may itself hold a '_'
    assert len(secret) == 43
    assert secret not in listing.text
    (listed_key,) = listing.json()["keys"]
    assert "token" not in listed_key
    assert listed_key["id"] == key["id"]
    assert listed_key["last_used"] is not None

    status = admin.get(f"{A}/teams/{slug}/scim").json()
    assert status == {
        "team": slug,
        "scim_enabled": True,
        "sso": "saml",
        "sso_problem": None,
        "active_keys": 1,
        "keys": {"total": 1, "active": 1, "retiring": 0, "revoked": 0, "expired": 0},
    }

    response = admin.post(f"{A}/teams/{slug}/keys/{key['id']}/revoke")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "revoked"
    assert key["token"] not in response.text
    assert scim_get(admin, key["token"]).status_code == 401
    assert admin.get(f"{A}/teams/{slug}/scim").json()["keys"]["revoked"] == 1


def test_key_options_are_kept(admin: TestClient) -> None:
    slug = ready_team(admin)
    key = new_key(admin, slug, adapter="entra", expires_in_days=30)
    assert key["adapter"] == "entra"
    assert key["expires"] is not None
    assert scim_get(admin, key["token"]).status_code == 200


def test_regenerate_with_overlap_keeps_the_old_key_working(admin: TestClient) -> None:
    slug = ready_team(admin)
    old = new_key(admin, slug)
    response = admin.post(
        f"{A}/teams/{slug}/keys/{old['id']}/regenerate", json={"keep_old_for_minutes": 10}
    )
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["replaces"] == old["id"]
    assert new["name"] == old["name"]
    assert new["token"] != old["token"]
    assert scim_get(admin, old["token"]).status_code == 200
    assert scim_get(admin, new["token"]).status_code == 200
    keys = {k["id"]: k for k in admin.get(f"{A}/teams/{slug}/keys").json()["keys"]}
    assert keys[old["id"]]["status"] == "retiring"
    assert keys[old["id"]]["replaced_by"] == new["id"]
    assert keys[new["id"]]["status"] == "active"


@pytest.mark.parametrize("body", [None, {"keep_old_for_minutes": 0}, {}])
def test_regenerate_without_overlap_stops_the_old_key_at_once(
    admin: TestClient, body: dict[str, Any] | None
) -> None:
    slug = ready_team(admin)
    old = new_key(admin, slug)
    url = f"{A}/teams/{slug}/keys/{old['id']}/regenerate"
    response = admin.post(url) if body is None else admin.post(url, json=body)
    assert response.status_code == 201, response.text
    new = response.json()
    assert scim_get(admin, old["token"]).status_code == 401
    assert scim_get(admin, new["token"]).status_code == 200
    # A revoked key cannot be regenerated again.
    assert error_of(admin.post(url), 409)


# --- the rules ---------------------------------------------------------------------------


def test_scim_cannot_be_enabled_without_sso(admin: TestClient) -> None:
    slug = new_team(admin)
    message = error_of(admin.post(f"{A}/teams/{slug}/scim/enable"), 409)
    assert "SSO" in message
    assert "no SSO connection" in message
    status = admin.get(f"{A}/teams/{slug}/scim").json()
    assert status["scim_enabled"] is False
    assert status["sso"] is None
    assert status["sso_problem"]


def test_keys_are_refused_while_scim_is_off(admin: TestClient) -> None:
    slug = new_team(admin)
    message = error_of(admin.post(f"{A}/teams/{slug}/keys", json={"name": "okta"}), 409)
    assert "SCIM provisioning is off" in message
    assert admin.put(f"{A}/teams/{slug}/sso", json=saml()).status_code == 200
    error_of(admin.post(f"{A}/teams/{slug}/keys", json={"name": "okta"}), 409)

    assert admin.post(f"{A}/teams/{slug}/scim/enable").status_code == 200
    key = new_key(admin, slug)
    response = admin.post(f"{A}/teams/{slug}/scim/disable")
    assert response.status_code == 200
    assert response.json()["scim_enabled"] is False
    error_of(admin.post(f"{A}/teams/{slug}/keys", json={"name": "other"}), 409)
    error_of(admin.post(f"{A}/teams/{slug}/keys/{key['id']}/regenerate"), 409)
    assert scim_get(admin, key["token"]).status_code == 403


def test_clearing_sso_turns_scim_off_and_the_keys_get_403(admin: TestClient) -> None:
    slug = ready_team(admin)
    key = new_key(admin, slug)
    assert scim_get(admin, key["token"]).status_code == 200

    response = admin.delete(f"{A}/teams/{slug}/sso")
    assert response.status_code == 200, response.text
    assert response.json()["sso"] is None
    assert response.json()["scim_enabled"] is False

    for path in ("/scim/v2/Users", "/scim/v2/Groups"):
        response = scim_get(admin, key["token"], path)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/scim+json")
        body = response.json()
        assert body["schemas"] == [ERROR]
        assert body["status"] == "403"
        assert "disabled" in body["detail"]

    error_of(admin.post(f"{A}/teams/{slug}/scim/enable"), 409)
    # Configuring SSO again and turning SCIM on brings the same key back.
    assert admin.put(f"{A}/teams/{slug}/sso", json=saml()).status_code == 200
    assert admin.post(f"{A}/teams/{slug}/scim/enable").status_code == 200
    assert scim_get(admin, key["token"]).status_code == 200


def test_sso_connection_is_validated(admin: TestClient) -> None:
    slug = new_team(admin)
    url = f"{A}/teams/{slug}/sso"
    expired = {**saml(), "certificate": saml_certificate(expired=True)}
    assert "expired" in error_of(admin.put(url, json=expired), 400)
    plain = {**saml(), "sso_url": "http://idp.example.com/sso"}
    assert "https://" in error_of(admin.put(url, json=plain), 400)
    garbage = {**saml(), "certificate": "not a certificate"}
    assert "PEM" in error_of(admin.put(url, json=garbage), 400)
    assert admin.get(f"{A}/teams/{slug}").json()["sso"] is None


def test_oidc_issuer_unreachable(admin: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    slug = new_team(admin)
    body = {
        "method": "oidc",
        "issuer": "http://127.0.0.1:1",
        "client_id": "gateway",
        "client_secret_env": "ADMIN_TEST_OIDC_SECRET",
    }
    monkeypatch.delenv("ADMIN_TEST_OIDC_SECRET", raising=False)
    assert "ADMIN_TEST_OIDC_SECRET" in error_of(admin.put(f"{A}/teams/{slug}/sso", json=body), 400)

    monkeypatch.setenv("ADMIN_TEST_OIDC_SECRET", "s3cret")
    message = error_of(admin.put(f"{A}/teams/{slug}/sso", json=body), 400)
    assert "http://127.0.0.1:1" in message
    assert "s3cret" not in message
    assert admin.get(f"{A}/teams/{slug}").json()["sso"] is None


# --- errors ------------------------------------------------------------------------------


def test_unknown_team_and_key_are_404(admin: TestClient) -> None:
    missing = "t-" + uuid.uuid4().hex[:12]
    for method, path in [
        ("GET", f"/teams/{missing}"),
        ("DELETE", f"/teams/{missing}/sso"),
        ("GET", f"/teams/{missing}/scim"),
        ("POST", f"/teams/{missing}/scim/enable"),
        ("POST", f"/teams/{missing}/scim/disable"),
        ("GET", f"/teams/{missing}/keys"),
        ("POST", f"/teams/{missing}/keys/abcdefghijkl/revoke"),
    ]:
        response = admin.request(method, A + path)
        assert missing in error_of(response, 404)
        assert_secure(response)
    for path in ("/teams/Not%20A%20Slug", "/teams/x%00y/keys", "/teams/%C3%A9t%C3%A9"):
        error_of(admin.get(A + path), 404)
    assert missing in error_of(admin.put(f"{A}/teams/{missing}/sso", json=saml()), 404)
    assert missing in error_of(admin.post(f"{A}/teams/{missing}/keys", json={"name": "k"}), 404)

    slug = ready_team(admin)
    for key_id in ("abcdefghijkl", "NOT-A-KEY", "x" * 40):
        error_of(admin.post(f"{A}/teams/{slug}/keys/{key_id}/revoke"), 404)
        error_of(admin.post(f"{A}/teams/{slug}/keys/{key_id}/regenerate"), 404)
    error_of(admin.get(f"{A}/nothing-here"), 404)


def test_a_key_of_another_team_is_not_found(admin: TestClient) -> None:
    one, two = ready_team(admin), ready_team(admin)
    key = new_key(admin, one)
    error_of(admin.post(f"{A}/teams/{two}/keys/{key['id']}/revoke"), 404)
    assert scim_get(admin, key["token"]).status_code == 200


def test_team_creation_refusals(admin: TestClient) -> None:
    slug = new_team(admin)
    assert "already exists" in error_of(admin.post(f"{A}/teams", json={"slug": slug}), 409)
    for bad in ("Upper", "-dash", "with space", "under_score", "a" * 64, ""):
        assert "'slug'" in error_of(admin.post(f"{A}/teams", json={"slug": bad}), 422)


@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("/teams", {}, "'slug' is required"),
        ("/teams", {"slug": 5}, "'slug' must be a string"),
        ("/teams", {"slug": "ok", "nmae": "typo"}, "Unknown field 'nmae'"),
        ("/teams", {"slug": "ok", "name": "x" * 201}, "at most 200"),
        ("/teams", {"slug": "ok", "name": "a\nb"}, "'name' is not valid"),
        ("/teams", {"slug": "ok", "default_adapter": "no spaces"}, "'default_adapter'"),
        ("/teams", [], "must be a JSON object"),
        ("/teams", "acme", "must be a JSON object"),
        ("/teams/{slug}/sso", {"method": "ldap"}, "'method' must be"),
        ("/teams/{slug}/sso", {"entity_id": "x"}, "'method' must be"),
        ("/teams/{slug}/sso", {**saml(), "certificate": None}, "'certificate' must be"),
        ("/teams/{slug}/sso", {"method": "saml", "entity_id": "e"}, "'sso_url' is required"),
        (
            "/teams/{slug}/sso",
            {"method": "oidc", "issuer": "https://i", "client_id": "c", "client_secret": "s"},
            "Unknown field 'client_secret'",
        ),
        (
            "/teams/{slug}/sso",
            {"method": "oidc", "issuer": "https://i", "client_id": "c", "client_secret_env": "1"},
            "'client_secret_env'",
        ),
        ("/teams/{slug}/keys", {}, "'name' is required"),
        ("/teams/{slug}/keys", {"name": ""}, "'name' must not be empty"),
        ("/teams/{slug}/keys", {"name": "k", "expires_in_days": "7"}, "must be an integer"),
        ("/teams/{slug}/keys", {"name": "k", "expires_in_days": True}, "must be an integer"),
        ("/teams/{slug}/keys", {"name": "k", "expires_in_days": 0}, "at least 1"),
        ("/teams/{slug}/keys", {"name": "k", "expires_in_days": 10**9}, "at most"),
        ("/teams/{slug}/keys", {"name": "k", "expires_in_days": 1.5}, "must be an integer"),
        ("/teams/{slug}/keys", {"name": "k\x00"}, "'name' is not valid"),
        ("/teams/{slug}/keys", {"name": "   "}, "not only spaces"),
        ("/teams/{slug}/keys/{key}/regenerate", {"keep_old_for_minutes": -1}, "at least 0"),
        ("/teams/{slug}/keys/{key}/regenerate", {"keep_old_for_minutes": 10**12}, "at most"),
        ("/teams/{slug}/keys/{key}/regenerate", {"keep": 5}, "Unknown field 'keep'"),
    ],
)
def test_invalid_bodies_are_422(admin: TestClient, path: str, body: Any, fragment: str) -> None:
    slug = ready_team(admin)
    key = new_key(admin, slug)
    url = A + path.format(slug=slug, key=key["id"])
    method = "PUT" if path.endswith("/sso") else "POST"
    response = admin.request(method, url, json=body)
    assert fragment in error_of(response, 422)
    assert_secure(response)
    # Nothing changed.
    assert scim_get(admin, key["token"]).status_code == 200


def test_all_problems_are_reported_at_once(admin: TestClient) -> None:
    slug = ready_team(admin)
    body = {"adapter": 5, "expires_in_days": "x", "extra": 1}
    message = error_of(admin.post(f"{A}/teams/{slug}/keys", json=body), 422)
    for fragment in ("'name' is required", "'adapter'", "'expires_in_days'", "'extra'"):
        assert fragment in message


def test_integral_numbers_are_integers(admin: TestClient) -> None:
    slug = ready_team(admin)
    response = admin.post(
        f"{A}/teams/{slug}/keys",
        content=b'{"name": "k", "expires_in_days": 7.0}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


def test_body_media_type_syntax_and_size(admin: TestClient) -> None:
    url = f"{A}/teams"
    response = admin.post(url, content=b'{"slug": "x"}', headers={"Content-Type": "text/plain"})
    assert "application/json" in error_of(response, 415)
    assert_secure(response)
    error_of(admin.post(url, content=b'{"slug": "x"}'), 415)
    scim_type = {"Content-Type": "application/scim+json"}
    error_of(admin.post(url, content=b'{"slug": "x"}', headers=scim_type), 415)
    json_type = {"Content-Type": "application/json; charset=utf-8"}
    assert "not valid JSON" in error_of(admin.post(url, content=b"{", headers=json_type), 400)
    assert "empty" in error_of(admin.post(url, content=b"", headers=json_type), 400)
    big = {"slug": "x", "name": "n" * (MAX_BODY + 1)}
    response = admin.post(url, json=big)
    assert str(MAX_BODY) in error_of(response, 413)
    assert_secure(response)


def test_odd_paths_get_admin_answers(admin: TestClient, anon: TestClient) -> None:
    for path in ("/teams%0A", "/teams/acme%0A/keys", "/x%0Ay", "/teams/acme/keys/a%0A/revoke"):
        response = admin.post(A + path)
        assert 400 <= response.status_code < 500, path
        error_of(response, response.status_code)
        assert_secure(response)
        assert_secure(anon.get(A + path))


def test_wrong_method_is_405_with_allow(admin: TestClient) -> None:
    response = admin.delete(f"{A}/teams")
    error_of(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert_secure(response)
    error_of(admin.get(f"{A}/teams/acme/scim/enable"), 405)
    error_of(admin.post(f"{A}/openapi.json"), 405)


def test_database_outage_is_503_in_the_admin_shape(
    admin: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(db: Any) -> Any:
        raise ServiceUnavailable("The database is unavailable; retry shortly.", headers=RETRY)

    monkeypatch.setattr("gateway.routes.admin.list_teams", unavailable)
    response = admin.get(f"{A}/teams")
    assert "unavailable" in error_of(response, 503)
    assert response.headers["retry-after"] == "5"
    assert_secure(response)


def test_unexpected_failure_is_500_in_the_admin_shape(
    admin: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(db: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("gateway.routes.admin.list_teams", broken)
    response = admin.get(f"{A}/teams")
    message = error_of(response, 500)
    assert "boom" not in message
    assert_secure(response)


# --- authentication and headers ------------------------------------------------------------


def test_operator_token_is_required(anon: TestClient, admin: TestClient, op_token: str) -> None:
    slug = ready_team(admin)
    key = new_key(admin, slug)
    cases: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {op_token}x"},
        {"Authorization": f"Basic {op_token}"},
        {"Authorization": op_token},
        {"Authorization": f"Bearer {key['token']}"},
        {"Authorization": f"Bearer {hashlib.sha256(op_token.encode()).hexdigest()}"},
    ]
    for headers in cases:
        for method, path in [
            ("GET", f"{A}/teams"),
            ("POST", f"{A}/teams/{slug}/keys"),
            ("GET", f"{A}/teams/no-such-team"),
            ("GET", f"{A}/no-such-endpoint"),
            ("DELETE", f"{A}/teams"),
        ]:
            response = anon.request(method, path, headers=headers, json={"name": "x"})
            error_of(response, 401)
            assert response.headers["www-authenticate"] == 'Bearer realm="admin"'
            assert_secure(response)
    response = anon.get(f"{A}/teams", headers={"Authorization": f"Bearer {key['token']}"})
    assert "SCIM API key" in error_of(response, 401)
    # The operator token is not a SCIM credential either.
    assert scim_get(anon, op_token).status_code == 401
    assert len(admin.get(f"{A}/teams/{slug}/keys").json()["keys"]) == 1


def test_security_headers_on_every_answer(admin: TestClient, anon: TestClient) -> None:
    slug = ready_team(admin)
    responses = [
        admin.get(f"{A}/teams"),
        admin.post(f"{A}/teams/{slug}/keys", json={"name": "k"}),
        admin.get(f"{A}/teams/{slug}/scim"),
        admin.get(f"{A}/teams/nope"),
        admin.post(f"{A}/teams", json={}),
        admin.post(f"{A}/teams/{slug}/scim/enable"),
        anon.get(f"{A}/teams"),
        anon.get(f"{A}/openapi.json"),
    ]
    for response in responses:
        assert_secure(response)
        assert response.headers["content-type"] == "application/json"


def test_disabled_admin_api_answers_404(database_url: str, op_token: str) -> None:
    app = make_app(database_url, None)
    with TestClient(app, headers={"Authorization": f"Bearer {op_token}"}) as client:
        for method, path in [
            ("GET", f"{A}/teams"),
            ("POST", f"{A}/teams"),
            ("GET", f"{A}/openapi.json"),
            ("GET", f"{A}/teams/acme/keys"),
            ("GET", f"{A}/elsewhere"),
            ("DELETE", f"{A}/teams"),
        ]:
            response = client.request(method, path, json={"slug": "acme"})
            assert "not enabled" in error_of(response, 404)
            assert_secure(response)
        client.headers.pop("Authorization")
        error_of(client.get(f"{A}/teams"), 404)


# --- the OpenAPI document ------------------------------------------------------------------


def _mounted(app: Starlette, prefix: str) -> list[Route]:
    (mount,) = [r for r in app.routes if isinstance(r, Mount) and r.path == prefix]
    return [r for r in mount.routes if isinstance(r, Route) and r.name != "admin_fallback"]


def _document_path(prefix: str, route: Route) -> str:
    return prefix + re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)


def test_openapi_document_is_served_without_a_token(anon: TestClient) -> None:
    response = anon.get(f"{A}/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert document == openapi_document()
    paths = document["paths"]
    for path, methods in {
        "/teams": {"get", "post"},
        "/teams/{slug}": {"get"},
        "/teams/{slug}/sso": {"put", "delete"},
        "/teams/{slug}/scim": {"get"},
        "/teams/{slug}/scim/enable": {"post"},
        "/teams/{slug}/scim/disable": {"post"},
        "/teams/{slug}/keys": {"get", "post"},
        "/teams/{slug}/keys/{key_id}/revoke": {"post"},
        "/teams/{slug}/keys/{key_id}/regenerate": {"post"},
        "/openapi.json": {"get"},
    }.items():
        assert methods <= set(paths[A + path]), path
    for path in (
        "/Users",
        "/Users/{id}",
        "/Users/.search",
        "/Groups",
        "/Groups/{id}",
        "/Groups/.search",
        "/.search",
        "/Bulk",
        "/ServiceProviderConfig",
        "/ResourceTypes",
        "/Schemas",
    ):
        assert "/scim/v2" + path in paths, path
    schemes = document["components"]["securitySchemes"]
    assert schemes["operatorToken"] == {**schemes["operatorToken"], "scheme": "bearer"}


@pytest.mark.parametrize("prefix", [A, "/scim/v2"])
def test_every_mounted_route_is_documented(app: Starlette, prefix: str) -> None:
    paths = openapi_document()["paths"]
    routes = _mounted(app, prefix)
    assert routes
    routed: set[tuple[str, str]] = set()
    for route in routes:
        path = _document_path(prefix, route)
        assert path in paths, f"{path} is routed but not in the OpenAPI document"
        for method in (route.methods or set()) - {"HEAD"}:
            assert method.lower() in paths[path], f"{method} {path} is not documented"
            routed.add((path, method.lower()))
    documented = {
        (path, method)
        for path, item in paths.items()
        if path.startswith(prefix + "/")
        for method in item
        if method != "parameters"
    }
    assert documented == routed


def test_openapi_document_is_consistent() -> None:
    document = openapi_document()
    components = document["components"]

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        root, section, kind, name = ref.split("/")
        assert (root, section) == ("#", "components"), ref
        assert name in components[kind], ref
    ids = []
    for path, item in document["paths"].items():
        declared = set(re.findall(r"\{(\w+)\}", path))
        for method, op in item.items():
            if method == "parameters":
                continue
            ids.append(op["operationId"])
            assert op["responses"], (method, path)
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == declared, (method, path)
            for scheme in op["security"]:
                assert set(scheme) <= set(components["securitySchemes"])
            if path.startswith("/scim/v2") and "requestBody" in op:
                assert set(op["requestBody"]["content"]) == {
                    "application/scim+json",
                    "application/json",
                }
    assert len(ids) == len(set(ids))
    scim_list = document["paths"]["/scim/v2/Users"]["get"]
    names = {p["name"] for p in scim_list["parameters"]}
    assert names == {
        "filter",
        "startIndex",
        "count",
        "sortBy",
        "sortOrder",
        "attributes",
        "excludedAttributes",
    }
    codes = {
        code
        for item in document["paths"].values()
        for method, op in item.items()
        if method != "parameters"
        for code in op["responses"]
    }
    assert {"400", "401", "403", "404", "409", "412", "413", "415", "422"} <= codes
