"""RFC 7644 §3.6: deleting a resource."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conftest import ERROR, new_group, new_user


def test_delete_user(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    path = f"/scim/v2/Users/{user['id']}"

    response = client.delete(path)
    assert response.status_code == 204
    assert response.content == b""

    gone = client.get(path)
    assert gone.status_code == 404
    assert gone.json()["schemas"] == [ERROR]
    assert client.get("/scim/v2/Users").json()["totalResults"] == 0


def test_delete_group(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides", members=[user["id"]])
    path = f"/scim/v2/Groups/{group['id']}"

    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404
    # The members themselves stay; they just no longer belong to it.
    assert "groups" not in client.get(f"/scim/v2/Users/{user['id']}").json()


def test_deleting_a_user_removes_its_memberships(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    mandy = new_user(client, "mpepperidge")
    group = new_group(client, "Tour Guides", members=[babs["id"], mandy["id"]])

    assert client.delete(f"/scim/v2/Users/{babs['id']}").status_code == 204

    members = client.get(f"/scim/v2/Groups/{group['id']}").json()["members"]
    assert [m["value"] for m in members] == [mandy["id"]]


def test_deleting_a_group_removes_it_from_its_parents(client: TestClient) -> None:
    inner = new_group(client, "US Employees")
    outer = new_group(client, "Employees", members=[inner["id"]])

    assert client.delete(f"/scim/v2/Groups/{inner['id']}").status_code == 204

    assert client.get(f"/scim/v2/Groups/{outer['id']}").json()["members"] == []


def test_deleting_a_parent_group_keeps_its_child_groups(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    inner = new_group(client, "US Employees", members=[babs["id"]])
    outer = new_group(client, "Employees", members=[inner["id"]])

    assert client.delete(f"/scim/v2/Groups/{outer['id']}").status_code == 204

    kept = client.get(f"/scim/v2/Groups/{inner['id']}")
    assert kept.status_code == 200
    assert [m["value"] for m in kept.json()["members"]] == [babs["id"]]


@pytest.mark.parametrize("endpoint", ["Users", "Groups"])
def test_deleting_twice_is_404(client: TestClient, endpoint: str) -> None:
    created = (
        new_user(client, "bjensen") if endpoint == "Users" else new_group(client, "Tour Guides")
    )
    path = f"/scim/v2/{endpoint}/{created['id']}"

    assert client.delete(path).status_code == 204
    response = client.delete(path)
    assert response.status_code == 404
    assert response.json()["status"] == "404"


def test_a_deleted_user_name_can_be_reused_with_a_new_id(client: TestClient) -> None:
    first = new_user(client, "bjensen")
    client.delete(f"/scim/v2/Users/{first['id']}")

    second = new_user(client, "bjensen")
    assert second["id"] != first["id"]
