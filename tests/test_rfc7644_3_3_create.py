"""RFC 7644 §3.3: creating resources with POST to /Users and /Groups."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from starlette.testclient import TestClient

from tests.conftest import GROUP_SCHEMA, USER_SCHEMA, new_group, new_user
from tests.rfc7643_examples import barbara_writable, full_user, tour_guides

SCIM = "application/scim+json"


def test_rfc7644_example_user_is_created_with_id_meta_and_headers(client: TestClient) -> None:
    # The request of RFC 7644 §3.3.
    body = {
        "schemas": [USER_SCHEMA],
        "userName": "bjensen",
        "externalId": "bjensen",
        "name": {
            "formatted": "Ms. Barbara J Jensen III",
            "familyName": "Jensen",
            "givenName": "Barbara",
        },
    }
    response = client.post("/scim/v2/Users", json=body)

    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith(SCIM)
    user = response.json()
    assert user["id"]
    assert user["schemas"] == [USER_SCHEMA]
    assert user["userName"] == "bjensen"
    assert user["externalId"] == "bjensen"
    assert user["name"] == body["name"]
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["location"] == f"http://testserver/scim/v2/Users/{user['id']}"
    assert response.headers["location"] == user["meta"]["location"]
    assert response.headers["etag"] == user["meta"]["version"]


def test_created_user_is_what_get_returns(client: TestClient) -> None:
    created = new_user(client, "bjensen", displayName="Babs Jensen")
    fetched = client.get(created["meta"]["location"])

    assert fetched.status_code == 200
    assert fetched.json() == created


def test_full_rfc7643_user_round_trips(client: TestClient) -> None:
    response = client.post("/scim/v2/Users", json=full_user())
    assert response.status_code == 201, response.text
    created = response.json()

    fetched = client.get(f"/scim/v2/Users/{created['id']}").json()
    for got in (created, fetched):
        for name, value in barbara_writable().items():
            assert got[name] == value, name
        assert got["schemas"] == [USER_SCHEMA]


def test_server_assigned_id_and_meta_replace_the_clients(client: TestClient) -> None:
    sent = full_user()
    created = client.post("/scim/v2/Users", json=sent).json()

    assert created["id"] != sent["id"]
    assert created["meta"]["location"].startswith("http://testserver/scim/v2/Users/")
    assert created["meta"]["created"] != sent["meta"]["created"]
    assert created["meta"]["version"] != sent["meta"]["version"]


def test_each_created_user_gets_its_own_id(client: TestClient) -> None:
    ids = {new_user(client, f"user{i}")["id"] for i in range(3)}
    assert len(ids) == 3


def test_ids_are_version_7_uuids_that_begin_with_the_creation_time(client: TestClient) -> None:
    # The id's form is the service provider's choice (RFC 7643 §3.1). Ours begin with
    # the time, so that each new row lands at the end of the id indexes
    # (gateway/ids.py); they are still UUIDs, and still distinct within a millisecond.
    first = new_user(client, "first")
    time.sleep(0.002)
    later = [new_user(client, f"later{i}") for i in range(5)]
    group = new_group(client, "after them")
    made = [first, *later, group]

    parsed = [uuid.UUID(resource["id"]) for resource in made]
    assert [u.version for u in parsed] == [7] * len(made)
    assert {u.variant for u in parsed} == {uuid.RFC_4122}
    assert [str(u) for u in parsed] == [resource["id"] for resource in made]
    assert len(set(parsed)) == len(made)
    # The first 48 bits are the creation's Unix time in milliseconds: taken just after
    # meta.created (which shows milliseconds), within the same request.
    created = datetime.fromisoformat(first["meta"]["created"].replace("Z", "+00:00"))
    millis = [u.int >> 80 for u in parsed]
    assert 0 <= millis[0] - round(created.timestamp() * 1000) < 1000
    assert all(later_ms > millis[0] for later_ms in millis[1:])


def test_password_is_accepted_but_never_returned(client: TestClient) -> None:
    created = new_user(client, "bjensen", password="t1meMa$heen")
    fetched = client.get(f"/scim/v2/Users/{created['id']}")
    listed = client.get("/scim/v2/Users")

    for text in (str(created), fetched.text, listed.text):
        assert "t1meMa$heen" not in text
    assert "password" not in created
    assert "password" not in fetched.json()


def test_groups_sent_by_the_client_are_ignored(client: TestClient) -> None:
    group = new_group(client, "Tour Guides")
    created = new_user(client, "empty", groups=[])
    claimed = new_user(client, "claims", groups=[{"value": group["id"], "display": "x"}])

    assert "groups" not in created
    assert "groups" not in claimed
    assert client.get(f"/scim/v2/Groups/{group['id']}").json()["members"] == []


def test_created_user_is_active_unless_told_otherwise(client: TestClient) -> None:
    assert new_user(client, "default")["active"] is True
    assert new_user(client, "inactive", active=False)["active"] is False


def test_rfc7643_example_group_is_created_with_its_members(client: TestClient) -> None:
    babs = new_user(client, "bjensen", displayName="Babs Jensen")
    mandy = new_user(client, "mpepperidge", displayName="Mandy Pepperidge")
    response = client.post("/scim/v2/Groups", json=tour_guides([babs["id"], mandy["id"]]))

    assert response.status_code == 201, response.text
    group = response.json()
    assert group["schemas"] == [GROUP_SCHEMA]
    assert group["id"] != "e9e30dba-f08f-4109-8486-d5c6a331660a"
    assert group["displayName"] == "Tour Guides"
    assert sorted(m["value"] for m in group["members"]) == sorted([babs["id"], mandy["id"]])
    assert group["meta"]["resourceType"] == "Group"
    assert group["meta"]["location"] == f"http://testserver/scim/v2/Groups/{group['id']}"
    assert response.headers["location"] == group["meta"]["location"]
    assert response.headers["etag"] == group["meta"]["version"]
    assert response.headers["content-type"].startswith(SCIM)
    assert client.get(group["meta"]["location"]).json() == group


def test_group_without_members_has_an_empty_member_list(client: TestClient) -> None:
    group = new_group(client, "Empty")
    assert group["members"] == []
    assert client.get(f"/scim/v2/Groups/{group['id']}").json()["members"] == []


def test_attribute_names_are_case_insensitive_and_returned_canonical(client: TestClient) -> None:
    body = {
        "schemas": [USER_SCHEMA],
        "USERNAME": "bjensen",
        "displayname": "Babs",
        "Name": {"GIVENNAME": "Barbara"},
        "Emails": [{"Value": "bjensen@example.com", "TYPE": "work"}],
    }
    response = client.post("/scim/v2/Users", json=body)

    assert response.status_code == 201, response.text
    user = response.json()
    assert user["userName"] == "bjensen"
    assert user["displayName"] == "Babs"
    assert user["name"] == {"givenName": "Barbara"}
    assert user["emails"] == [{"value": "bjensen@example.com", "type": "work"}]
