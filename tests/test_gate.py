"""The SCIM enablement gate, observed over HTTP.

A team configures SSO first; SCIM provisioning can be turned on only then; keys
can be generated only while it is on; removing SSO (or turning SCIM off) refuses
every request made with the team's keys at once, with a SCIM 403, and keeps the
team's data for when SCIM is turned on again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.config import DatabaseSettings, Settings
from gateway.sso import SamlConnection, validate_saml
from gateway.store.tables import Team, User
from gateway.teams import (
    TeamError,
    clear_sso,
    create_key,
    create_team,
    disable_scim,
    enable_scim,
    get_team,
    list_keys,
    set_sso,
)
from tests.conftest import ERROR, PATCH_OP, SCIM, USER_SCHEMA
from tests.support import ENTITY_ID, SSO_URL, saml_certificate


@dataclass
class Env:
    client: TestClient
    gateway: Gateway
    slug: str

    def request(self, method: str, path: str, token: str, **kw: Any) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM}
        return self.client.request(method, f"/scim/v2{path}", headers=headers, **kw)


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.delenv("SCIM_GATEWAY_TOKEN", raising=False)
    app = create_app(Settings(database=DatabaseSettings(url=database_url)))
    with TestClient(app, base_url="http://testserver") as client:
        gateway: Gateway = app.state.gateway
        yield Env(client, gateway, "gate-" + uuid.uuid4().hex[:12])


def saml() -> SamlConnection:
    return validate_saml(ENTITY_ID, SSO_URL, saml_certificate())


def expired_saml() -> SamlConnection:
    """What a SAML connection looks like once its certificate has run out.

    ``validate_saml`` refuses such a certificate, so it is built directly: this is
    the state a team reaches when a certificate that was valid when saved expires.
    """
    return SamlConnection(
        entity_id=ENTITY_ID,
        sso_url=SSO_URL,
        certificate=saml_certificate(expired=True),
        not_after=datetime.now(UTC) - timedelta(days=1),
        subject="CN=idp.example.com",
    )


def user_body(user_name: str) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name}


def assert_scim_disabled(response: httpx2.Response, slug: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].split(";")[0] == SCIM
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "403"
    assert "SCIM provisioning is disabled for team" in body["detail"]
    assert slug in body["detail"]


def assert_refused_everywhere(env: Env, token: str, user_id: str) -> None:
    """Every kind of SCIM request made with ``token`` is refused with 403."""
    patch_body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Changed"}],
    }
    attempts = [
        ("GET", "/Users", {}),
        ("GET", f"/Users/{user_id}", {}),
        ("POST", "/Users", {"json": user_body("newcomer")}),
        ("PUT", f"/Users/{user_id}", {"json": user_body("renamed")}),
        ("PATCH", f"/Users/{user_id}", {"json": patch_body}),
        ("DELETE", f"/Users/{user_id}", {}),
        ("GET", "/Groups", {}),
        ("POST", "/Groups", {"json": {"displayName": "Admins"}}),
    ]
    for method, path, kw in attempts:
        assert_scim_disabled(env.request(method, path, token, **kw), env.slug)


def team_user_names(env: Env) -> list[str]:
    """The team's users, read straight from the database (SCIM itself may be off)."""
    users = User.__table__  # type: ignore[attr-defined]
    teams = Team.__table__  # type: ignore[attr-defined]
    stmt = (
        select(users.c.user_name)
        .join(teams, teams.c.pk == users.c.team_pk)
        .where(teams.c.slug == env.slug)
        .order_by(users.c.user_name)
    )
    return env.gateway.db.call(lambda conn: list(conn.execute(stmt).scalars()))


def test_scim_and_keys_are_refused_until_sso_is_configured(env: Env) -> None:
    db, hasher = env.gateway.db, env.gateway.hasher
    create_team(db, env.slug)
    assert get_team(db, env.slug).scim_enabled is False

    with pytest.raises(TeamError) as refused:
        enable_scim(db, env.slug)
    assert "Configure SSO" in str(refused.value)
    assert "no SSO connection" in str(refused.value)
    assert get_team(db, env.slug).scim_enabled is False

    with pytest.raises(TeamError) as no_key:
        create_key(db, hasher, env.slug, "okta")
    assert "SCIM provisioning is off" in str(no_key.value)
    assert list_keys(db, env.slug) == []

    # SSO alone does not turn SCIM on, and keys are still refused.
    set_sso(db, env.slug, saml())
    team = get_team(db, env.slug)
    assert team.sso_method == "saml"
    assert team.scim_enabled is False
    with pytest.raises(TeamError):
        create_key(db, hasher, env.slug, "okta")
    assert list_keys(db, env.slug) == []

    # Turned on, a key can be made, and it provisions.
    assert enable_scim(db, env.slug).scim_enabled is True
    _info, token = create_key(db, hasher, env.slug, "okta")
    response = env.request("POST", "/Users", token, json=user_body("bjensen"))
    assert response.status_code == 201, response.text
    assert response.json()["userName"] == "bjensen"


def test_clearing_sso_turns_scim_off_at_once_and_keeps_the_data(env: Env) -> None:
    db, hasher = env.gateway.db, env.gateway.hasher
    create_team(db, env.slug)
    set_sso(db, env.slug, saml())
    enable_scim(db, env.slug)
    info, token = create_key(db, hasher, env.slug, "okta")
    created = env.request("POST", "/Users", token, json=user_body("bjensen"))
    assert created.status_code == 201, created.text
    user = created.json()

    team = clear_sso(db, env.slug)
    assert team.sso is None
    assert team.scim_enabled is False
    assert get_team(db, env.slug).scim_enabled is False

    # The very next request is refused, whatever it is; nothing changes.
    assert_refused_everywhere(env, token, user["id"])
    assert team_user_names(env) == ["bjensen"]

    # The key itself is not revoked: it is the team that is switched off.
    [listed] = list_keys(db, env.slug)
    assert (listed.id, listed.status) == (info.id, "active")
    with pytest.raises(TeamError):
        create_key(db, hasher, env.slug, "another")

    # SSO back on its own is not enough: SCIM stays off until it is turned on.
    set_sso(db, env.slug, saml())
    assert get_team(db, env.slug).scim_enabled is False
    assert_scim_disabled(env.request("GET", f"/Users/{user['id']}", token), env.slug)

    # Turned on again: the same key works and the data is still there.
    enable_scim(db, env.slug)
    fetched = env.request("GET", f"/Users/{user['id']}", token)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == user
    page = env.request("GET", "/Users", token).json()
    assert page["totalResults"] == 1
    assert [r["id"] for r in page["Resources"]] == [user["id"]]


def test_disabling_scim_refuses_the_keys_and_enabling_it_restores_them(env: Env) -> None:
    db, hasher = env.gateway.db, env.gateway.hasher
    create_team(db, env.slug)
    set_sso(db, env.slug, saml())
    enable_scim(db, env.slug)
    _info, token = create_key(db, hasher, env.slug, "okta")
    created = env.request("POST", "/Users", token, json=user_body("bjensen"))
    assert created.status_code == 201, created.text
    user = created.json()

    team = disable_scim(db, env.slug)
    assert team.scim_enabled is False
    assert team.sso_method == "saml"  # turning SCIM off leaves SSO alone
    assert_refused_everywhere(env, token, user["id"])
    assert team_user_names(env) == ["bjensen"]
    with pytest.raises(TeamError):
        create_key(db, hasher, env.slug, "another")

    enable_scim(db, env.slug)
    fetched = env.request("GET", f"/Users/{user['id']}", token)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == user
    second = env.request("POST", "/Users", token, json=user_body("mpepperidge"))
    assert second.status_code == 201, second.text
    assert team_user_names(env) == ["bjensen", "mpepperidge"]


def test_a_403_is_only_for_good_keys_of_a_team_that_is_off(env: Env) -> None:
    """While SCIM is off, a bad key still gets 401: a 403 confirms a key is genuine."""
    db, hasher = env.gateway.db, env.gateway.hasher
    create_team(db, env.slug)
    set_sso(db, env.slug, saml())
    enable_scim(db, env.slug)
    _info, token = create_key(db, hasher, env.slug, "okta")
    disable_scim(db, env.slug)

    wrong_secret = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = env.request("GET", "/Users", wrong_secret)
    assert response.status_code == 401, response.text
    assert_scim_disabled(env.request("GET", "/Users", token), env.slug)


def test_an_expired_saml_certificate_cannot_back_scim(env: Env) -> None:
    db, hasher = env.gateway.db, env.gateway.hasher
    create_team(db, env.slug)
    set_sso(db, env.slug, expired_saml())
    assert get_team(db, env.slug).sso_method == "saml"

    with pytest.raises(TeamError) as refused:
        enable_scim(db, env.slug)
    assert "expired" in str(refused.value)
    assert get_team(db, env.slug).scim_enabled is False
    with pytest.raises(TeamError):
        create_key(db, hasher, env.slug, "okta")

    # A current certificate unblocks it.
    set_sso(db, env.slug, saml())
    assert enable_scim(db, env.slug).scim_enabled is True
    _info, token = create_key(db, hasher, env.slug, "okta")
    response = env.request("POST", "/Users", token, json=user_body("bjensen"))
    assert response.status_code == 201, response.text
