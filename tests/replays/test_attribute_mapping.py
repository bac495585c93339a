"""A team's ``attribute_map`` puts IdP-specific attributes on the common model.

Each IdP carries what the standard schemas lack in its own place: Okta in a custom
extension named after the app (``urn:okta:acme:1.0:user``), Entra in an extension an
admin adds to the attribute list (``urn:ietf:params:scim:schemas:extension:
CustomExtensionName:2.0:User:...``, from Microsoft's "Tutorial: Develop and plan
provisioning for a SCIM endpoint"), OneLogin at the top level of its SCIM JSON
template (``department``, ``title``, ``external_manager_id``; KB0013904). The team
option maps those sources onto the columns of ``scim_user`` the application reads;
the sources themselves, and every attribute nobody mapped, come back as sent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import Settings
from gateway.policy import TeamPolicy
from gateway.store.query import users
from gateway.store.tables import Team
from tests.support import provision

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OKTA_EXT = "urn:okta:acme:1.0:user"
ENTRA_EXT = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
COLUMNS = ("department", "cost_center", "division", "title", "manager_id")


class IdpTeam:
    """One team's IdP connection: a key bound to ``adapter``, and the team's options."""

    def __init__(self, client: TestClient, adapter: str) -> None:
        self.client = client
        self.slug = f"{adapter}-{uuid.uuid4().hex[:12]}"
        gateway = client.app.state.gateway  # type: ignore[attr-defined]
        self.token = provision(gateway, self.slug, adapter=adapter)

    def send(self, method: str, url: str, body: Any = None) -> httpx2.Response:
        return self.client.request(
            method,
            f"/scim/v2{url}",
            content=None if body is None else json.dumps(body),
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def ok(self, method: str, url: str, body: Any = None, status: int = 200) -> Any:
        response = self.send(method, url, body)
        assert response.status_code == status, response.text
        return response.json()

    def map(self, attribute_map: dict[str, str]) -> None:
        """Set the team's ``attribute_map``, as an admin would in the config."""
        options = {"attribute_map": attribute_map}
        TeamPolicy.from_options(options)  # what the config loader accepts
        gateway = self.client.app.state.gateway  # type: ignore[attr-defined]
        teams = Team.__table__  # type: ignore[attr-defined]
        with gateway.db.engine.begin() as conn:
            conn.execute(update(teams).where(teams.c.slug == self.slug).values(options=options))

    def columns(self, user_id: str) -> dict[str, Any]:
        """The common-model columns the application reads for this user."""
        gateway = self.client.app.state.gateway  # type: ignore[attr-defined]
        with gateway.db.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).one()
        return {column: row._mapping[column] for column in COLUMNS}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    headers = {"Content-Type": "application/json"}
    with TestClient(app, base_url="http://testserver", headers=headers) as test_client:
        yield test_client


def okta_user(cost_code: str) -> dict[str, Any]:
    """Okta's create body with the app's custom profile attributes in its extension."""
    return {
        "schemas": [USER_SCHEMA, OKTA_EXT],
        "userName": "dana.kim@acme.example",
        "name": {"givenName": "Dana", "familyName": "Kim"},
        "emails": [{"primary": True, "value": "dana.kim@acme.example", "type": "work"}],
        "displayName": "Dana Kim",
        "externalId": "00u1a2b3c4d5e6f7g8h9",
        "groups": [],
        "active": True,
        OKTA_EXT: {"costCode": cost_code, "badgeColour": "teal"},
    }


def entra_user(division: str) -> dict[str, Any]:
    """Entra's create body with an admin-added extension attribute."""
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE, ENTRA_EXT],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c03d4846",
        "userName": "Test_User_dfeef4c5@contoso.com",
        "active": True,
        "displayName": "Test User",
        "emails": [{"primary": True, "type": "work", "value": "Test_User@contoso.com"}],
        "name": {"givenName": "Test", "familyName": "User"},
        ENTERPRISE: {"department": "Sales", "employeeNumber": "E-77"},
        ENTRA_EXT: {"employeeDivision": division, "buildingCode": "B-12"},
    }


def onelogin_user(department: str) -> dict[str, Any]:
    """OneLogin's template with its fields at the top level (authentik#11249's URNs)."""
    return {
        "schemas": ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"],
        "userName": "onelogin-test-user01",
        "name": {"givenName": "OneLogin", "familyName": "Test User"},
        "department": department,
        "title": "Analyst",
        "external_manager_id": "ol-manager-4410",
        "location_code": "BER-3",
    }


def test_okta_custom_extension_attribute_maps_to_cost_center(client: TestClient) -> None:
    okta = IdpTeam(client, "okta")
    okta.map({f"{OKTA_EXT}:costCode": "cost_center"})

    user = okta.ok("POST", "/Users", okta_user("CC-1234"), status=201)

    assert okta.columns(user["id"])["cost_center"] == "CC-1234"
    assert user[ENTERPRISE]["costCenter"] == "CC-1234"
    assert user[OKTA_EXT] == {"costCode": "CC-1234", "badgeColour": "teal"}  # kept, as sent
    assert set(user["schemas"]) == {USER_SCHEMA, OKTA_EXT, ENTERPRISE}
    assert okta.ok("GET", f"/Users/{user['id']}") == user

    # Okta's profile update is a PUT of the whole user: the column follows the source.
    updated = okta.ok("PUT", f"/Users/{user['id']}", okta_user("CC-5678") | {"id": user["id"]})

    assert okta.columns(user["id"])["cost_center"] == "CC-5678"
    assert updated[OKTA_EXT] == {"costCode": "CC-5678", "badgeColour": "teal"}


def test_without_a_mapping_custom_attributes_are_only_kept(client: TestClient) -> None:
    okta = IdpTeam(client, "okta")

    user = okta.ok("POST", "/Users", okta_user("CC-1234"), status=201)

    assert okta.columns(user["id"])["cost_center"] is None
    assert ENTERPRISE not in user
    assert user[OKTA_EXT] == {"costCode": "CC-1234", "badgeColour": "teal"}


def test_entra_extension_attribute_maps_to_division(client: TestClient) -> None:
    entra = IdpTeam(client, "entra")
    entra.map({f"{ENTRA_EXT}:employeeDivision": "division"})

    user = entra.ok("POST", "/Users", entra_user("Wholesale"), status=201)

    assert entra.columns(user["id"]) == {
        "department": "Sales",
        "cost_center": None,
        "division": "Wholesale",
        "title": None,
        "manager_id": None,
    }
    assert user[ENTRA_EXT] == {"employeeDivision": "Wholesale", "buildingCode": "B-12"}
    assert user[ENTERPRISE]["division"] == "Wholesale"

    # Entra updates one attribute at a time, by its full path.
    body = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Replace", "path": f"{ENTRA_EXT}:employeeDivision", "value": "Retail"}
        ],
    }
    patched = entra.ok("PATCH", f"/Users/{user['id']}", body)

    assert entra.columns(user["id"])["division"] == "Retail"
    assert patched[ENTRA_EXT] == {"employeeDivision": "Retail", "buildingCode": "B-12"}
    assert entra.ok("GET", f"/Users/{user['id']}") == patched


def test_onelogin_template_fields_map_to_department_title_and_manager(
    client: TestClient,
) -> None:
    onelogin = IdpTeam(client, "onelogin")
    onelogin.map({"department": "department", "title": "title", "external_manager_id": "manager"})

    user = onelogin.ok("POST", "/Users", onelogin_user("Finance"), status=201)

    assert onelogin.columns(user["id"]) == {
        "department": "Finance",
        "cost_center": None,
        "division": None,
        "title": "Analyst",
        "manager_id": "ol-manager-4410",
    }
    # The template's attributes, mapped or not, come back as sent.
    assert user["department"] == "Finance"
    assert user["external_manager_id"] == "ol-manager-4410"
    assert user["location_code"] == "BER-3"
    assert user["title"] == "Analyst"

    # OneLogin's update is `PUT /Users/{id}?` with the whole template again.
    updated = onelogin.ok("PUT", f"/Users/{user['id']}?", onelogin_user("Treasury"))

    assert onelogin.columns(user["id"])["department"] == "Treasury"
    assert updated[ENTERPRISE]["department"] == "Treasury"
    assert updated["department"] == "Treasury"
    assert updated["location_code"] == "BER-3"


def test_one_team_maps_each_of_its_idps_own_attributes(client: TestClient) -> None:
    # A team can move IdPs (or run two for a while): one table covers every source,
    # and a source a key's IdP never sends maps nothing.
    okta = IdpTeam(client, "okta")
    okta.map(
        {
            f"{OKTA_EXT}:costCode": "cost_center",
            f"{ENTRA_EXT}:employeeDivision": "division",
            "department": "department",
        }
    )

    user = okta.ok("POST", "/Users", okta_user("CC-9"), status=201)

    assert okta.columns(user["id"]) == {
        "department": None,
        "cost_center": "CC-9",
        "division": None,
        "title": None,
        "manager_id": None,
    }
