"""RFC 7643 §4.1.2 (User ``groups``) and §4.2 (Group ``members``).

``groups`` is readOnly and computed from memberships; ``members`` may be Users or
Groups, each shown with ``value``, ``display``, ``type`` and ``$ref``.
"""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import PATCH_OP, USER_SCHEMA, new_group, new_user

BASE = "http://testserver/scim/v2"


def _get(client: TestClient, path: str) -> dict[str, object]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_user_groups_are_computed_from_memberships(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    guides = new_group(client, "Tour Guides", members=[babs["id"]])
    employees = new_group(client, "Employees", members=[babs["id"]])

    user = _get(client, f"/scim/v2/Users/{babs['id']}")

    assert sorted(user["groups"], key=lambda g: g["display"]) == [  # type: ignore[arg-type,index]
        {
            "value": employees["id"],
            "display": "Employees",
            "$ref": f"{BASE}/Groups/{employees['id']}",
            "type": "direct",
        },
        {
            "value": guides["id"],
            "display": "Tour Guides",
            "$ref": f"{BASE}/Groups/{guides['id']}",
            "type": "direct",
        },
    ]


def test_user_groups_follow_membership_changes(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides")
    assert "groups" not in _get(client, f"/scim/v2/Users/{babs['id']}")

    response = client.patch(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": babs["id"]}]}],
        },
    )
    assert response.status_code in (200, 204), response.text
    groups = _get(client, f"/scim/v2/Users/{babs['id']}")["groups"]
    assert [g["value"] for g in groups] == [group["id"]]  # type: ignore[attr-defined,index]

    client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={"schemas": group["schemas"], "displayName": "Guides"},
    )
    assert "groups" not in _get(client, f"/scim/v2/Users/{babs['id']}")


def test_user_groups_display_follows_a_group_rename(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides", members=[babs["id"]])
    client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={"schemas": group["schemas"], "displayName": "Guides", "members": group["members"]},
    )

    groups = _get(client, f"/scim/v2/Users/{babs['id']}")["groups"]
    assert [g["display"] for g in groups] == ["Guides"]  # type: ignore[attr-defined,index]


def test_user_groups_cannot_be_written_with_put_or_patch(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides")

    client.put(
        f"/scim/v2/Users/{babs['id']}",
        json={
            "schemas": [USER_SCHEMA],
            "userName": "bjensen",
            "groups": [{"value": group["id"]}],
        },
    )
    assert "groups" not in _get(client, f"/scim/v2/Users/{babs['id']}")
    assert _get(client, f"/scim/v2/Groups/{group['id']}")["members"] == []


def test_members_show_value_display_type_and_ref(client: TestClient) -> None:
    babs = new_user(client, "bjensen", displayName="Babs Jensen")
    mandy = new_user(client, "mpepperidge")
    group = new_group(client, "Tour Guides", members=[babs["id"], mandy["id"]])
    # display is computed and returned on request (attributes=members.display)
    assert all("display" not in m for m in group["members"])
    group = _get(client, f"/scim/v2/Groups/{group['id']}?attributes=members,members.display")

    members = sorted(group["members"], key=lambda m: m["display"])
    assert members == [
        {
            "value": babs["id"],
            "display": "Babs Jensen",
            "type": "User",
            "$ref": f"{BASE}/Users/{babs['id']}",
        },
        {
            # Without a displayName, a user is shown by its userName.
            "value": mandy["id"],
            "display": "mpepperidge",
            "type": "User",
            "$ref": f"{BASE}/Users/{mandy['id']}",
        },
    ]


def test_nested_group_member(client: TestClient) -> None:
    babs = new_user(client, "bjensen", displayName="Babs Jensen")
    us_employees = new_group(client, "US Employees", members=[babs["id"]])
    employees = new_group(client, "Employees", members=[us_employees["id"], babs["id"]])

    fetched = _get(client, f"/scim/v2/Groups/{employees['id']}?attributes=members,members.display")
    members = sorted(fetched["members"], key=lambda m: m["type"])  # type: ignore[arg-type]
    assert members == [
        {
            "value": us_employees["id"],
            "display": "US Employees",
            "type": "Group",
            "$ref": f"{BASE}/Groups/{us_employees['id']}",
        },
        {
            "value": babs["id"],
            "display": "Babs Jensen",
            "type": "User",
            "$ref": f"{BASE}/Users/{babs['id']}",
        },
    ]
    # The inner group keeps its own members.
    inner = _get(client, f"/scim/v2/Groups/{us_employees['id']}")
    assert [m["value"] for m in inner["members"]] == [babs["id"]]  # type: ignore[attr-defined]


def test_member_display_sent_by_the_client_is_ignored(client: TestClient) -> None:
    babs = new_user(client, "bjensen", displayName="Babs Jensen")
    response = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Tour Guides",
            "members": [{"value": babs["id"], "display": "Somebody Else", "type": "User"}],
        },
    )

    assert response.status_code == 201, response.text
    group = _get(client, f"/scim/v2/Groups/{response.json()['id']}?attributes=members.display")
    assert [m["display"] for m in group["members"]] == ["Babs Jensen"]


def test_a_member_listed_twice_is_one_member(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides", members=[babs["id"], babs["id"]])

    assert [m["value"] for m in group["members"]] == [babs["id"]]


def test_a_group_cannot_contain_itself(client: TestClient) -> None:
    group = new_group(client, "Tour Guides")
    response = client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": group["schemas"],
            "displayName": "Tour Guides",
            "members": [{"value": group["id"]}],
        },
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert _get(client, f"/scim/v2/Groups/{group['id']}")["members"] == []


def test_a_patched_user_is_answered_with_its_groups(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    guides = new_group(client, "Tour Guides", members=[babs["id"]])
    employees = new_group(client, "Employees", members=[babs["id"]])

    for ops in (
        [{"op": "replace", "path": "displayName", "value": "Babs"}],
        [{"op": "replace", "value": {"active": False}}],  # Okta's deactivation
    ):
        response = client.patch(
            f"/scim/v2/Users/{babs['id']}", json={"schemas": [PATCH_OP], "Operations": ops}
        )
        assert response.status_code == 200, response.text
        answered = response.json()["groups"]
        assert {g["value"] for g in answered} == {guides["id"], employees["id"]}
        # The answer is what a GET right after shows.
        assert answered == _get(client, f"/scim/v2/Users/{babs['id']}")["groups"]
