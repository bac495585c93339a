"""A team's lifecycle policy (``[teams.<slug>.options]``), seen where the application
reads it: the ``state``, ``active``, ``role`` and ``deleted_at`` columns of
``scim_user`` and the rows of ``scim_membership``.

- deprovision: what ``active: false`` does ("deactivate" keeps the user, inactive,
  with its memberships, as Entra expects; "delete" deletes it);
- delete_mode: what DELETE does ("hard": gone, RFC 7644 §3.6; "tombstone": hidden,
  restorable by a re-POST, purged after tombstone_days);
- reprovision: a POST matching an inactive or deleted user restores it, same id
  (Okta re-provisions a deactivated account with a POST carrying its externalId);
- group_delete_deactivates_sole_members.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.config import ConfigError, Settings, load_settings
from gateway.store.tables import Membership, Team, User
from tests.conftest import ERROR, LIST_RESPONSE, SCIM, USER_SCHEMA, new_group, patch
from tests.support import provision

USERS = User.__table__  # type: ignore[attr-defined]
MEMBERSHIPS = Membership.__table__  # type: ignore[attr-defined]
TEAMS = Team.__table__  # type: ignore[attr-defined]
GROUPS = "/scim/v2/Groups"


@dataclass
class TeamUnderTest:
    """A SCIM client of one fresh team (generic adapter), and the team's tables."""

    client: TestClient
    gateway: Gateway
    slug: str

    def configure(self, **options: Any) -> None:
        """Set the team's options, as ``[teams.<slug>.options]`` would."""
        with self.gateway.db.engine.begin() as conn:
            conn.execute(update(TEAMS).where(TEAMS.c.slug == self.slug).values(options=options))

    def row(self, user_id: str) -> Any:
        """The user's ``scim_user`` row, or ``None`` when there is none."""
        with self.gateway.db.engine.connect() as conn:
            return conn.execute(select(USERS).where(USERS.c.id == user_id)).first()

    def memberships(self, user_id: str) -> int:
        """How many ``scim_membership`` rows the user has."""
        stmt = (
            select(MEMBERSHIPS.c.pk)
            .join(USERS, USERS.c.pk == MEMBERSHIPS.c.user_pk)
            .where(USERS.c.id == user_id)
        )
        with self.gateway.db.engine.connect() as conn:
            return len(conn.execute(stmt).all())

    def backdate_tombstone(self, user_id: str, days: int) -> None:
        when = datetime.now(UTC) - timedelta(days=days)
        with self.gateway.db.engine.begin() as conn:
            conn.execute(update(USERS).where(USERS.c.id == user_id).values(deleted_at=when))


@pytest.fixture
def team(settings: Settings) -> Iterator[TeamUnderTest]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", headers={"Content-Type": SCIM}) as c:
        gateway: Gateway = app.state.gateway
        slug = "team-" + uuid.uuid4().hex[:12]
        c.headers["Authorization"] = "Bearer " + provision(gateway, slug, adapter="generic")
        yield TeamUnderTest(c, gateway, slug)


def post_user(client: TestClient, user_name: str, **attrs: Any) -> Any:
    return client.post(
        "/scim/v2/Users", json={"schemas": [USER_SCHEMA], "userName": user_name, **attrs}
    )


def create_user(client: TestClient, user_name: str, **attrs: Any) -> dict[str, Any]:
    response = post_user(client, user_name, **attrs)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def set_active(client: TestClient, user_id: str, active: bool) -> Any:
    op = {"op": "replace", "path": "active", "value": active}
    return patch(client, f"/scim/v2/Users/{user_id}", op)


def user_ids(client: TestClient, filter_text: str | None = None) -> list[str]:
    params = {"filter": filter_text} if filter_text is not None else {}
    response = client.get("/scim/v2/Users", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["schemas"] == [LIST_RESPONSE]
    return [r["id"] for r in response.json()["Resources"]]


def member_ids(client: TestClient, group_id: str) -> list[str]:
    response = client.get(f"{GROUPS}/{group_id}")
    assert response.status_code == 200, response.text
    return [m["value"] for m in response.json().get("members", [])]


def add_member(client: TestClient, group_id: str, user_id: str) -> None:
    op = {"op": "add", "path": "members", "value": [{"value": user_id}]}
    response = patch(client, f"{GROUPS}/{group_id}", op)
    assert response.status_code in (200, 204), response.text


# --- deprovision = "deactivate" (the default) -----------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "active", "value": False},
        {"op": "replace", "value": {"active": False}},  # Okta's path-less form
    ],
    ids=["path", "pathless"],
)
def test_deactivate_keeps_the_user_inactive_with_its_memberships(
    team: TeamUnderTest, operation: dict[str, Any]
) -> None:
    client = team.client
    user = create_user(client, "bjensen", externalId="00u1")
    other = create_user(client, "mpepperidge")
    group = new_group(client, "Tour Guides", members=[user["id"]])

    response = patch(client, f"/scim/v2/Users/{user['id']}", operation)

    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    row = team.row(user["id"])
    assert (row.state, row.active, row.deleted_at) == ("inactive", False, None)
    # Entra: "The only time the user shouldn't be returned is when it's hard deleted".
    fetched = client.get(f"/scim/v2/Users/{user['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["active"] is False
    assert user["id"] in user_ids(client)
    assert user_ids(client, "active eq false") == [user["id"]]
    assert user_ids(client, "active eq true") == [other["id"]]
    # Entra does not re-push memberships on reactivation: they are kept meanwhile.
    assert team.memberships(user["id"]) == 1
    assert member_ids(client, group["id"]) == [user["id"]]
    assert [g["value"] for g in fetched.json()["groups"]] == [group["id"]]


def test_reactivate_makes_the_user_active_again(team: TeamUnderTest) -> None:
    client = team.client
    user = create_user(client, "bjensen")
    group = new_group(client, "Tour Guides", members=[user["id"]])
    assert set_active(client, user["id"], False).status_code == 200

    response = set_active(client, user["id"], True)

    assert response.status_code == 200, response.text
    assert response.json()["active"] is True
    row = team.row(user["id"])
    assert (row.state, row.active) == ("active", True)
    assert user_ids(client, "active eq true") == [user["id"]]
    assert member_ids(client, group["id"]) == [user["id"]]


def test_a_put_with_active_false_deactivates(team: TeamUnderTest) -> None:
    """Okta AIW apps and OneLogin deprovision with a full PUT."""
    client = team.client
    user = create_user(client, "bjensen", displayName="Babs")
    body = {"schemas": [USER_SCHEMA], "userName": "bjensen", "displayName": "Babs", "active": False}

    response = client.put(f"/scim/v2/Users/{user['id']}", json=body)

    assert response.status_code == 200, response.text
    assert team.row(user["id"]).state == "inactive"
    assert client.get(f"/scim/v2/Users/{user['id']}").status_code == 200


# --- deprovision = "delete" -----------------------------------------------------------


@pytest.mark.parametrize("delete_mode", ["hard", "tombstone"])
def test_deprovision_delete_turns_a_deactivation_into_a_delete(
    team: TeamUnderTest, delete_mode: str
) -> None:
    team.configure(deprovision="delete", delete_mode=delete_mode)
    client = team.client
    user = create_user(client, "bjensen")
    group = new_group(client, "Tour Guides", members=[user["id"]])

    response = set_active(client, user["id"], False)

    # The IdP asked for a deactivation and gets its answer; the user is gone.
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user["id"]
    assert response.json()["active"] is False
    assert client.get(f"/scim/v2/Users/{user['id']}").status_code == 404
    assert user_ids(client) == []
    assert member_ids(client, group["id"]) == []
    row = team.row(user["id"])
    if delete_mode == "hard":
        assert row is None
    else:
        assert row.state == "deleted"
        assert row.deleted_at is not None


def test_deprovision_delete_leaves_other_updates_alone(team: TeamUnderTest) -> None:
    team.configure(deprovision="delete")
    client = team.client
    user = create_user(client, "bjensen")

    op = {"op": "replace", "path": "displayName", "value": "Babs"}
    response = patch(client, f"/scim/v2/Users/{user['id']}", op)

    assert response.status_code == 200, response.text
    assert client.get(f"/scim/v2/Users/{user['id']}").json()["displayName"] == "Babs"
    assert team.row(user["id"]).state == "active"


# --- delete_mode = "hard" (the default) -----------------------------------------------


def test_hard_delete_removes_the_row_and_a_re_post_gets_a_new_id(team: TeamUnderTest) -> None:
    client = team.client
    user = create_user(client, "bjensen", externalId="00u1")
    group = new_group(client, "Tour Guides", members=[user["id"]])

    response = client.delete(f"/scim/v2/Users/{user['id']}")

    assert response.status_code == 204
    assert client.get(f"/scim/v2/Users/{user['id']}").status_code == 404
    assert team.row(user["id"]) is None
    assert member_ids(client, group["id"]) == []
    # RFC 7644 §3.6: a deleted resource's id is not reused.
    again = create_user(client, "bjensen", externalId="00u1")
    assert again["id"] != user["id"]
    assert team.row(again["id"]).state == "active"


# --- delete_mode = "tombstone" --------------------------------------------------------


def test_tombstone_hides_the_user_and_keeps_its_row(team: TeamUnderTest) -> None:
    team.configure(delete_mode="tombstone")
    client = team.client
    user = create_user(client, "bjensen", emails=[{"value": "bjensen@example.com"}])
    kept = create_user(client, "mpepperidge")
    group = new_group(client, "Tour Guides", members=[user["id"], kept["id"]])
    path = f"/scim/v2/Users/{user['id']}"

    assert client.delete(path).status_code == 204

    gone = client.get(path)
    assert gone.status_code == 404
    assert gone.json()["schemas"] == [ERROR]
    assert user_ids(client) == [kept["id"]]
    assert user_ids(client, 'userName eq "bjensen"') == []
    assert user_ids(client, 'emails.value eq "bjensen@example.com"') == []
    assert user_ids(client, "active eq false") == []
    assert member_ids(client, group["id"]) == [kept["id"]]
    assert team.memberships(user["id"]) == 0
    row = team.row(user["id"])
    assert (row.state, row.active) == ("deleted", False)
    assert row.deleted_at is not None
    # A tombstone cannot be written to, deleted again, or made a member.
    assert set_active(client, user["id"], True).status_code == 404
    assert client.delete(path).status_code == 404
    add = {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
    assert patch(client, f"{GROUPS}/{group['id']}", add).status_code == 400


def test_tombstone_is_restored_by_a_re_post_with_the_same_id(team: TeamUnderTest) -> None:
    team.configure(delete_mode="tombstone")
    client = team.client
    user = create_user(client, "bjensen", displayName="Babs")
    assert client.delete(f"/scim/v2/Users/{user['id']}").status_code == 204

    response = post_user(client, "BJensen", displayName="Barbara")

    assert response.status_code == 201, response.text
    restored = response.json()
    assert restored["id"] == user["id"]
    assert restored["userName"] == "BJensen"
    assert restored["displayName"] == "Barbara"
    assert restored["active"] is True
    assert response.headers["Location"].endswith(f"/Users/{user['id']}")
    row = team.row(user["id"])
    assert (row.state, row.active, row.deleted_at) == ("active", True, None)
    assert user_ids(client) == [user["id"]]


def test_tombstones_past_tombstone_days_are_purged_on_a_later_delete(
    team: TeamUnderTest,
) -> None:
    team.configure(delete_mode="tombstone", tombstone_days=30)
    client = team.client
    old = create_user(client, "old")
    recent = create_user(client, "recent")
    trigger = create_user(client, "trigger")
    for user in (old, recent):
        assert client.delete(f"/scim/v2/Users/{user['id']}").status_code == 204
    team.backdate_tombstone(old["id"], days=31)
    team.backdate_tombstone(recent["id"], days=29)

    assert client.delete(f"/scim/v2/Users/{trigger['id']}").status_code == 204

    assert team.row(old["id"]) is None
    assert team.row(recent["id"]).state == "deleted"
    assert team.row(trigger["id"]).state == "deleted"
    # A purged tombstone is gone for good: its userName now gets a new user.
    assert create_user(client, "old")["id"] != old["id"]


def test_with_tombstone_days_0_a_tombstone_lasts_until_the_next_delete(
    team: TeamUnderTest,
) -> None:
    team.configure(delete_mode="tombstone", tombstone_days=0)
    client = team.client
    first, second = create_user(client, "first"), create_user(client, "second")

    assert client.delete(f"/scim/v2/Users/{first['id']}").status_code == 204
    assert team.row(first["id"]).state == "deleted"

    assert client.delete(f"/scim/v2/Users/{second['id']}").status_code == 204
    assert team.row(first["id"]) is None
    assert team.row(second["id"]).state == "deleted"


def test_renaming_a_user_to_a_tombstoned_user_name_succeeds(team: TeamUnderTest) -> None:
    team.configure(delete_mode="tombstone")
    client = team.client
    gone = create_user(client, "bjensen")
    other = create_user(client, "mpepperidge")
    assert client.delete(f"/scim/v2/Users/{gone['id']}").status_code == 204

    body = {"schemas": [USER_SCHEMA], "userName": "bjensen"}
    response = client.put(f"/scim/v2/Users/{other['id']}", json=body)

    assert response.status_code == 200, response.text
    assert response.json()["userName"] == "bjensen"
    assert user_ids(client, 'userName eq "bjensen"') == [other["id"]]
    # The tombstone yielded its name; it can no longer be restored.
    assert team.row(gone["id"]) is None


def test_without_reprovision_a_re_post_replaces_a_tombstone(team: TeamUnderTest) -> None:
    team.configure(delete_mode="tombstone", reprovision=False)
    client = team.client
    user = create_user(client, "bjensen")
    assert client.delete(f"/scim/v2/Users/{user['id']}").status_code == 204

    again = create_user(client, "bjensen")

    assert again["id"] != user["id"]
    assert team.row(user["id"]) is None


# --- reprovision (default true) -------------------------------------------------------


def test_a_post_with_an_inactive_users_external_id_restores_it(team: TeamUnderTest) -> None:
    """Okta re-provisions a deactivated account with a POST carrying the same externalId."""
    client = team.client
    user = create_user(client, "bjensen@example.com", externalId="00u1", title="Tour Guide")
    group = new_group(client, "Tour Guides", members=[user["id"]])
    assert set_active(client, user["id"], False).status_code == 200

    response = post_user(
        client, "barbara.jensen@example.com", externalId="00u1", displayName="Barbara"
    )

    assert response.status_code == 201, response.text
    restored = response.json()
    assert restored["id"] == user["id"]
    assert restored["active"] is True
    assert restored["userName"] == "barbara.jensen@example.com"
    assert restored["displayName"] == "Barbara"
    assert "title" not in restored  # the POST is the whole new user
    fetched = client.get(f"/scim/v2/Users/{user['id']}").json()
    assert fetched["displayName"] == "Barbara"
    assert fetched["active"] is True
    assert (team.row(user["id"]).state, team.row(user["id"]).active) == ("active", True)
    assert user_ids(client) == [user["id"]]
    # Memberships were kept while inactive, so the restored user has them back.
    assert member_ids(client, group["id"]) == [user["id"]]


def test_a_post_with_an_inactive_users_user_name_restores_it(team: TeamUnderTest) -> None:
    client = team.client
    user = create_user(client, "bjensen")
    assert set_active(client, user["id"], False).status_code == 200

    response = post_user(client, "BJENSEN", displayName="Babs")

    assert response.status_code == 201, response.text
    assert response.json()["id"] == user["id"]
    assert response.json()["displayName"] == "Babs"
    assert team.row(user["id"]).state == "active"


def test_a_recycled_user_name_does_not_take_over_an_inactive_user(team: TeamUnderTest) -> None:
    """Same userName, another externalId: another person, who must not inherit the
    old account's id, memberships and role."""
    client = team.client
    user = create_user(client, "bjensen@example.com", externalId="00u1")
    group = new_group(client, "Admins", members=[user["id"]])
    assert set_active(client, user["id"], False).status_code == 200

    response = post_user(client, "bjensen@example.com", externalId="00u9")

    assert response.status_code == 409, response.text
    assert response.json()["scimType"] == "uniqueness"
    row = team.row(user["id"])
    assert (row.state, row.external_id) == ("inactive", "00u1")
    assert member_ids(client, group["id"]) == [user["id"]]


def test_a_recycled_user_name_replaces_a_tombstone(team: TeamUnderTest) -> None:
    team.configure(delete_mode="tombstone")
    client = team.client
    user = create_user(client, "bjensen@example.com", externalId="00u1")
    assert client.delete(f"/scim/v2/Users/{user['id']}").status_code == 204

    newcomer = create_user(client, "bjensen@example.com", externalId="00u9")

    assert newcomer["id"] != user["id"]
    assert team.row(user["id"]) is None


def test_a_post_matching_an_active_user_is_still_a_conflict(team: TeamUnderTest) -> None:
    client = team.client
    create_user(client, "bjensen", externalId="00u1")

    response = post_user(client, "bjensen", externalId="00u1")

    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"


def test_without_reprovision_an_inactive_user_name_is_a_conflict(team: TeamUnderTest) -> None:
    team.configure(reprovision=False)
    client = team.client
    user = create_user(client, "bjensen", externalId="00u1")
    assert set_active(client, user["id"], False).status_code == 200

    response = post_user(client, "bjensen", externalId="00u1")

    assert response.status_code == 409, response.text
    assert response.json()["scimType"] == "uniqueness"
    assert team.row(user["id"]).state == "inactive"


# --- group_delete_deactivates_sole_members ---------------------------------------------


@pytest.mark.parametrize("enabled", [True, False], ids=["on", "off"])
def test_group_delete_and_its_sole_members(team: TeamUnderTest, enabled: bool) -> None:
    if enabled:
        team.configure(group_delete_deactivates_sole_members=True)
    client = team.client
    sole = create_user(client, "sole")
    shared = create_user(client, "shared")
    elsewhere = create_user(client, "elsewhere")
    doomed = new_group(client, "Contractors", members=[sole["id"], shared["id"]])
    new_group(client, "Employees", members=[shared["id"], elsewhere["id"]])

    assert client.delete(f"{GROUPS}/{doomed['id']}").status_code == 204

    sole_row = team.row(sole["id"])
    if enabled:
        assert (sole_row.state, sole_row.active) == ("inactive", False)
        assert client.get(f"/scim/v2/Users/{sole['id']}").json()["active"] is False
    else:
        assert (sole_row.state, sole_row.active) == ("active", True)
    for user in (shared, elsewhere):
        row = team.row(user["id"])
        assert (row.state, row.active) == ("active", True)
        assert client.get(f"/scim/v2/Users/{user['id']}").json()["active"] is True


def test_group_delete_leaves_already_inactive_sole_members_alone(team: TeamUnderTest) -> None:
    team.configure(group_delete_deactivates_sole_members=True)
    client = team.client
    user = create_user(client, "sole")
    group = new_group(client, "Contractors", members=[user["id"]])
    assert set_active(client, user["id"], False).status_code == 200
    version = client.get(f"/scim/v2/Users/{user['id']}").json()["meta"]["version"]

    assert client.delete(f"{GROUPS}/{group['id']}").status_code == 204

    after = client.get(f"/scim/v2/Users/{user['id']}").json()
    assert after["active"] is False
    assert after["meta"]["version"] == version


# --- policy validation ----------------------------------------------------------------


BAD_OPTIONS = {
    "deprovision": ('deprovision = "archive"', "deprovision", "deactivate, delete"),
    "delete_mode": ('delete_mode = "soft"', "delete_mode", "hard"),
    "tombstone_days-negative": ("tombstone_days = -1", "tombstone_days", "0 or more"),
    "tombstone_days-string": ('tombstone_days = "30"', "tombstone_days", "0 or more"),
    "tombstone_days-boolean": ("tombstone_days = true", "tombstone_days", "0 or more"),
    "reprovision": ('reprovision = "yes"', "reprovision", "true or false"),
    "sole-members": (
        "group_delete_deactivates_sole_members = 1",
        "group_delete_deactivates_sole_members",
        "true or false",
    ),
    "default_role": ('default_role = ""', "default_role", "role name"),
    "roles-number": ("roles = 5", "roles", '{ "Admins" = "admin" }'),
    "roles-value": ('roles = { "Admins" = 1 }', "roles", '{ "Admins" = "admin" }'),
    "role_order": ('role_order = "admin"', "role_order", '["admin", "viewer"]'),
    "attribute_map-target": (
        'attribute_map = { "urn:okta:acme:1.0:user:costCode" = "cost_centre" }',
        "attribute_map",
        "cost_center",
    ),
    "unknown": ("deprovison = true", "deprovison", "known options: attribute_map"),
    "role-not-in-order": (
        'roles = { "Admins" = "admn" }\nrole_order = ["admin", "viewer"]',
        "roles: 'Admins' maps to 'admn'",
        "role_order does not list",
    ),
    "default-role-not-in-order": (
        'default_role = "guest"\nrole_order = ["admin", "viewer"]',
        "default_role is 'guest'",
        "role_order does not list",
    ),
    "roles-twice": (
        'roles = { "Admins" = "admin", "ADMINS" = "viewer" }',
        "roles: 'ADMINS'",
        "listed twice",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_a_bad_option_stops_startup_naming_it(tmp_path: Path, case: str) -> None:
    line, option, fix = BAD_OPTIONS[case]
    path = tmp_path / "gateway.toml"
    path.write_text(f"[teams.acme]\n\n[teams.acme.options]\n{line}\n", encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_settings(path)

    message = str(info.value)
    assert str(path) in message
    assert "teams.acme.options" in message
    assert option in message
    assert fix in message


def test_the_documented_options_load(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        "[teams.acme.options]\n"
        'deprovision = "delete"\n'
        'delete_mode = "tombstone"\n'
        "tombstone_days = 0\n"
        "reprovision = false\n"
        "group_delete_deactivates_sole_members = true\n"
        'default_role = "viewer"\n'
        'roles = { "Admins" = "admin" }\n'
        'role_order = ["admin", "viewer"]\n'
        'attribute_map = { "urn:okta:acme:1.0:user:costCode" = "cost_center" }\n',
        encoding="utf-8",
    )

    (acme,) = load_settings(path).teams

    assert acme.options["deprovision"] == "delete"
    assert acme.options["roles"] == {"Admins": "admin"}
