"""Team roles: the ``role`` column of ``scim_user`` follows the user's groups.

With ``roles = {"Admins" = "admin", "Engineering" = "developer"}``,
``role_order = ["admin", "developer", "viewer"]`` and ``default_role = "viewer"``,
the application reads one role per user, recomputed on every change to the user's
groups: membership, rename and delete.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.config import Settings
from gateway.store.tables import Team, User
from tests.conftest import GROUP_SCHEMA, SCIM, USER_SCHEMA, new_group, new_user, patch
from tests.support import provision

USERS = User.__table__  # type: ignore[attr-defined]
TEAMS = Team.__table__  # type: ignore[attr-defined]
GROUPS = "/scim/v2/Groups"
ROLES = {
    "roles": {"Admins": "admin", "Engineering": "developer"},
    "role_order": ["admin", "developer", "viewer"],
    "default_role": "viewer",
}


def _client(settings: Settings, options: dict[str, Any] | None) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", headers={"Content-Type": SCIM}) as c:
        gateway: Gateway = app.state.gateway
        slug = "team-" + uuid.uuid4().hex[:12]
        c.headers["Authorization"] = "Bearer " + provision(gateway, slug, adapter="generic")
        if options is not None:
            with gateway.db.engine.begin() as conn:
                conn.execute(update(TEAMS).where(TEAMS.c.slug == slug).values(options=options))
        yield c


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of a team with the group-to-role mapping above."""
    yield from _client(settings, ROLES)


@pytest.fixture
def plain(settings: Settings) -> Iterator[TestClient]:
    """A client of a team without roles."""
    yield from _client(settings, None)


def role_of(client: TestClient, user_id: str) -> str | None:
    """The role the application reads for the user."""
    gateway: Gateway = client.app.state.gateway  # type: ignore[attr-defined]
    with gateway.db.engine.connect() as conn:
        role: str | None = conn.execute(
            select(USERS.c.role).where(USERS.c.id == user_id)
        ).scalar_one()
    return role


def add(client: TestClient, group_id: str, *user_ids: str) -> None:
    op = {"op": "add", "path": "members", "value": [{"value": u} for u in user_ids]}
    response = patch(client, f"{GROUPS}/{group_id}", op)
    assert response.status_code in (200, 204), response.text


def remove(client: TestClient, group_id: str, user_id: str) -> None:
    op = {"op": "remove", "path": f'members[value eq "{user_id}"]'}
    response = patch(client, f"{GROUPS}/{group_id}", op)
    assert response.status_code in (200, 204), response.text


def rename(client: TestClient, group_id: str, name: str) -> None:
    op = {"op": "replace", "path": "displayName", "value": name}
    response = patch(client, f"{GROUPS}/{group_id}", op)
    assert response.status_code in (200, 204), response.text


def test_a_new_user_gets_the_default_role(client: TestClient) -> None:
    user = new_user(client, "bjensen")

    assert role_of(client, user["id"]) == "viewer"


def test_the_role_follows_the_users_groups(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    admins = new_group(client, "Admins")
    engineering = new_group(client, "Engineering")

    add(client, engineering["id"], user["id"])
    assert role_of(client, user["id"]) == "developer"

    add(client, admins["id"], user["id"])
    assert role_of(client, user["id"]) == "admin"

    remove(client, admins["id"], user["id"])
    assert role_of(client, user["id"]) == "developer"

    remove(client, engineering["id"], user["id"])
    assert role_of(client, user["id"]) == "viewer"


def test_role_order_decides_whatever_the_order_of_joining(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    admins = new_group(client, "Admins", members=[user["id"]])
    assert role_of(client, user["id"]) == "admin"

    add(client, new_group(client, "Engineering")["id"], user["id"])

    assert role_of(client, user["id"]) == "admin"
    remove(client, admins["id"], user["id"])
    assert role_of(client, user["id"]) == "developer"


def test_an_unmapped_group_leaves_the_role_alone(client: TestClient) -> None:
    user = new_user(client, "bjensen")

    new_group(client, "Tour Guides", members=[user["id"]])

    assert role_of(client, user["id"]) == "viewer"


def test_renaming_a_mapped_group_away_drops_its_members_back(client: TestClient) -> None:
    both = new_user(client, "both")
    admin_only = new_user(client, "admin-only")
    admins = new_group(client, "Admins", members=[both["id"], admin_only["id"]])
    new_group(client, "Engineering", members=[both["id"]])
    assert (role_of(client, both["id"]), role_of(client, admin_only["id"])) == ("admin", "admin")

    rename(client, admins["id"], "Former Admins")

    assert role_of(client, both["id"]) == "developer"
    assert role_of(client, admin_only["id"]) == "viewer"


def test_renaming_a_group_to_a_mapped_name_raises_its_members(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    group = new_group(client, "Platform", members=[user["id"]])

    rename(client, group["id"], "Engineering")

    assert role_of(client, user["id"]) == "developer"


def test_a_put_renaming_and_replacing_members_recomputes(client: TestClient) -> None:
    stays = new_user(client, "stays")
    leaves = new_user(client, "leaves")
    group = new_group(client, "Engineering", members=[stays["id"], leaves["id"]])

    body = {"schemas": [GROUP_SCHEMA], "displayName": "Admins", "members": [{"value": stays["id"]}]}
    response = client.put(f"{GROUPS}/{group['id']}", json=body)

    assert response.status_code == 200, response.text
    assert role_of(client, stays["id"]) == "admin"
    assert role_of(client, leaves["id"]) == "viewer"


def test_deleting_a_group_recomputes_its_members(client: TestClient) -> None:
    both = new_user(client, "both")
    admin_only = new_user(client, "admin-only")
    admins = new_group(client, "Admins", members=[both["id"], admin_only["id"]])
    new_group(client, "Engineering", members=[both["id"]])

    assert client.delete(f"{GROUPS}/{admins['id']}").status_code == 204

    assert role_of(client, both["id"]) == "developer"
    assert role_of(client, admin_only["id"]) == "viewer"


def test_group_names_match_case_insensitively(client: TestClient) -> None:
    user = new_user(client, "bjensen")

    new_group(client, "ADMINS", members=[user["id"]])

    assert role_of(client, user["id"]) == "admin"


def test_emptying_a_group_drops_its_members_back(client: TestClient) -> None:
    """Okta's "Push now" of an empty group: replace members with []."""
    user = new_user(client, "bjensen")
    admins = new_group(client, "Admins", members=[user["id"]])

    op = {"op": "replace", "path": "members", "value": []}
    assert patch(client, f"{GROUPS}/{admins['id']}", op).status_code in (200, 204)

    assert role_of(client, user["id"]) == "viewer"


def test_a_user_restored_by_a_re_post_gets_the_role_of_its_groups(client: TestClient) -> None:
    user = new_user(client, "bjensen", externalId="00u1")
    new_group(client, "Admins", members=[user["id"]])
    op = {"op": "replace", "path": "active", "value": False}
    assert patch(client, f"/scim/v2/Users/{user['id']}", op).status_code == 200

    body = {"schemas": [USER_SCHEMA], "userName": "bjensen", "externalId": "00u1"}
    response = client.post("/scim/v2/Users", json=body)

    assert response.status_code == 201, response.text
    assert response.json()["id"] == user["id"]
    assert role_of(client, user["id"]) == "admin"


def test_bulk_memberships_set_roles(client: TestClient) -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u",
                "data": {"schemas": [USER_SCHEMA], "userName": "bjensen"},
            },
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g",
                "data": {
                    "schemas": [GROUP_SCHEMA],
                    "displayName": "Engineering",
                    "members": [{"value": "bulkId:u"}],
                },
            },
        ],
    }

    response = client.post("/scim/v2/Bulk", json=body)

    assert response.status_code == 200, response.text
    statuses = [op["status"] for op in response.json()["Operations"]]
    assert statuses == ["201", "201"]
    user_id = response.json()["Operations"][0]["location"].rsplit("/", 1)[1]
    assert role_of(client, user_id) == "developer"


def test_a_team_without_roles_leaves_role_null(plain: TestClient) -> None:
    user = new_user(plain, "bjensen")
    assert role_of(plain, user["id"]) is None

    new_group(plain, "Admins", members=[user["id"]])

    assert role_of(plain, user["id"]) is None
