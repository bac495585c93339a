"""RFC 7644 §3.5.1: replacing a resource with PUT."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ERROR, GROUP_SCHEMA, USER_SCHEMA, new_group, new_user
from tests.rfc7643_examples import full_user

SCIM = "application/scim+json"


def _put(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.put(path, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(SCIM)
    result: dict[str, Any] = response.json()
    assert response.headers["etag"] == result["meta"]["version"]
    return result


def test_rfc7644_example_replace(client: TestClient) -> None:
    created = client.post("/scim/v2/Users", json=full_user()).json()
    path = f"/scim/v2/Users/{created['id']}"
    # The request of RFC 7644 §3.5.1, with the id the gateway assigned.
    body = {
        "schemas": [USER_SCHEMA],
        "id": created["id"],
        "userName": "bjensen",
        "externalId": "bjensen",
        "name": {
            "formatted": "Ms. Barbara J Jensen III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "middleName": "Jane",
        },
        "roles": [],
        "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}],
    }
    replaced = _put(client, path, body)

    assert replaced["id"] == created["id"]
    assert replaced["userName"] == "bjensen"
    assert replaced["externalId"] == "bjensen"
    assert replaced["name"] == body["name"]
    assert replaced["emails"] == body["emails"]
    assert replaced["meta"]["created"] == created["meta"]["created"]
    assert replaced["meta"]["version"] != created["meta"]["version"]
    # Everything the PUT left out is gone (but ``active``: see below).
    for gone in (
        "displayName",
        "nickName",
        "profileUrl",
        "addresses",
        "phoneNumbers",
        "ims",
        "photos",
        "userType",
        "title",
        "preferredLanguage",
        "locale",
        "timezone",
        "x509Certificates",
        "roles",
    ):
        assert gone not in replaced, gone
    assert client.get(path).json() == replaced


def test_put_removes_omitted_attributes(client: TestClient) -> None:
    user = new_user(
        client,
        "bjensen",
        nickName="Babs",
        emails=[{"value": "bjensen@example.com", "type": "work"}],
        name={"givenName": "Barbara", "familyName": "Jensen"},
    )
    path = f"/scim/v2/Users/{user['id']}"
    replaced = _put(
        client, path, {"schemas": [USER_SCHEMA], "userName": "bjensen", "name": {"givenName": "B"}}
    )

    assert "nickName" not in replaced
    assert "emails" not in replaced
    assert replaced["name"] == {"givenName": "B"}
    assert client.get(path).json() == replaced


def test_put_ignores_read_only_attributes_the_client_echoes(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides", members=[user["id"]])
    path = f"/scim/v2/Users/{user['id']}"
    fetched = client.get(path).json()
    body = {
        **fetched,
        "id": "not-the-id",
        "displayName": "Babs",
        "groups": [],
        "meta": {
            "resourceType": "Group",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": 'W/"forged"',
            "location": "https://example.com/v2/Users/elsewhere",
        },
    }
    replaced = _put(client, path, body)

    assert replaced["id"] == user["id"]
    assert replaced["displayName"] == "Babs"
    assert replaced["meta"]["resourceType"] == "User"
    assert replaced["meta"]["created"] == user["meta"]["created"]
    assert replaced["meta"]["location"] == user["meta"]["location"]
    assert replaced["meta"]["version"] != 'W/"forged"'
    assert [g["value"] for g in replaced["groups"]] == [group["id"]]
    assert client.get("/scim/v2/Users/not-the-id").status_code == 404


def test_put_echoing_the_resource_read_changes_only_the_version(client: TestClient) -> None:
    created = client.post("/scim/v2/Users", json=full_user()).json()
    path = f"/scim/v2/Users/{created['id']}"
    replaced = _put(client, path, client.get(path).json())

    assert {k: v for k, v in replaced.items() if k != "meta"} == {
        k: v for k, v in created.items() if k != "meta"
    }
    assert replaced["meta"]["version"] != created["meta"]["version"]


def test_put_without_active_keeps_the_current_state(client: TestClient) -> None:
    user = new_user(client, "bjensen", active=False)
    path = f"/scim/v2/Users/{user['id']}"

    kept = _put(client, path, {"schemas": [USER_SCHEMA], "userName": "bjensen"})
    assert kept["active"] is False
    activated = _put(
        client, path, {"schemas": [USER_SCHEMA], "userName": "bjensen", "active": True}
    )
    assert activated["active"] is True
    kept = _put(client, path, {"schemas": [USER_SCHEMA], "userName": "bjensen", "nickName": "B"})
    assert kept["active"] is True
    assert client.get(path).json()["active"] is True


def test_put_can_change_the_user_name(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    path = f"/scim/v2/Users/{user['id']}"

    assert _put(client, path, {"schemas": [USER_SCHEMA], "userName": "BJensen"})["userName"] == (
        "BJensen"
    )
    assert _put(client, path, {"schemas": [USER_SCHEMA], "userName": "babs"})["userName"] == "babs"
    # The old name is free again.
    new_user(client, "bjensen")


def test_put_replaces_group_name_and_members(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    mandy = new_user(client, "mpepperidge")
    group = new_group(client, "Tour Guides", members=[babs["id"]], externalId="tg-1")
    path = f"/scim/v2/Groups/{group['id']}"

    replaced = _put(
        client,
        path,
        {
            "schemas": [GROUP_SCHEMA],
            "id": group["id"],
            "displayName": "Guides",
            "members": [{"value": mandy["id"], "display": "ignored"}],
            "meta": group["meta"],
        },
    )

    assert replaced["displayName"] == "Guides"
    assert "externalId" not in replaced
    assert [m["value"] for m in replaced["members"]] == [mandy["id"]]
    named = client.get(path, params={"attributes": "members.display"}).json()
    assert [m["display"] for m in named["members"]] == ["mpepperidge"]
    assert replaced["meta"]["version"] != group["meta"]["version"]
    assert replaced["meta"]["created"] == group["meta"]["created"]
    assert client.get(path).json() == replaced
    assert "groups" not in client.get(f"/scim/v2/Users/{babs['id']}").json()


def test_put_without_members_empties_the_group(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides", members=[babs["id"]])
    path = f"/scim/v2/Groups/{group['id']}"

    replaced = _put(client, path, {"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides"})

    assert replaced["members"] == []
    assert client.get(path).json()["members"] == []


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("Users", {"schemas": [USER_SCHEMA], "userName": "bjensen"}),
        ("Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides"}),
    ],
)
def test_put_to_an_unknown_id_is_404(
    client: TestClient, endpoint: str, body: dict[str, Any]
) -> None:
    response = client.put(f"/scim/v2/{endpoint}/2819c223-7f76-453a-919d-413861904646", json=body)

    assert response.status_code == 404
    assert response.json()["schemas"] == [ERROR]
    assert response.json()["status"] == "404"
    assert client.get(f"/scim/v2/{endpoint}").json()["totalResults"] == 0
