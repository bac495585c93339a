"""RFC 7644 §3.12: error responses, and that a request that fails changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.config import Settings
from tests.conftest import ERROR, GROUP_SCHEMA, USER_SCHEMA, make_client, new_group, new_user

SCIM = "application/scim+json"
UNKNOWN_ID = "2819c223-7f76-453a-919d-413861904646"


@pytest.fixture
def other_team(settings: Settings) -> Iterator[TestClient]:
    """A client of a second team on the same database as ``client``."""
    yield from make_client(settings)


def assert_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM)
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert isinstance(body["detail"], str) and body["detail"]
    if scim_type is None:
        assert "scimType" not in body
    else:
        assert body["scimType"] == scim_type
    return body


def _count(client: TestClient, endpoint: str) -> int:
    total: int = client.get(f"/scim/v2/{endpoint}").json()["totalResults"]
    return total


# --- 400 invalidSyntax -------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": ',
        b"{'userName': 'bjensen'}",
        b'{"userName": "bjensen"} trailing',
        b"",
    ],
    ids=["truncated", "single-quotes", "trailing-garbage", "empty"],
)
def test_malformed_json_is_invalid_syntax(client: TestClient, content: bytes) -> None:
    user = new_user(client, "bjensen")

    assert_error(client.post("/scim/v2/Users", content=content), 400, "invalidSyntax")
    assert_error(client.post("/scim/v2/Groups", content=content), 400, "invalidSyntax")
    put = client.put(f"/scim/v2/Users/{user['id']}", content=content)
    assert_error(put, 400, "invalidSyntax")
    assert client.get(f"/scim/v2/Users/{user['id']}").json() == user
    assert _count(client, "Users") == 1
    assert _count(client, "Groups") == 0


def test_a_body_that_is_not_an_object_is_invalid_syntax(client: TestClient) -> None:
    response = client.post("/scim/v2/Users", json=[{"userName": "bjensen"}])
    assert_error(response, 400, "invalidSyntax")
    assert _count(client, "Users") == 0


# --- 400 invalidValue --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"schemas": [USER_SCHEMA]},
        {"schemas": [USER_SCHEMA], "userName": ""},
        {"schemas": [USER_SCHEMA], "userName": None},
        {"schemas": [USER_SCHEMA], "displayName": "Babs Jensen"},
    ],
    ids=["absent", "empty", "null", "other-attributes-only"],
)
def test_user_without_user_name_is_invalid_value(client: TestClient, body: dict[str, Any]) -> None:
    body = assert_error(client.post("/scim/v2/Users", json=body), 400, "invalidValue")
    assert "userName" in body["detail"]
    assert _count(client, "Users") == 0


@pytest.mark.parametrize(
    "body",
    [{"schemas": [GROUP_SCHEMA]}, {"schemas": [GROUP_SCHEMA], "displayName": ""}],
    ids=["absent", "empty"],
)
def test_group_without_display_name_is_invalid_value(
    client: TestClient, body: dict[str, Any]
) -> None:
    body = assert_error(client.post("/scim/v2/Groups", json=body), 400, "invalidValue")
    assert "displayName" in body["detail"]
    assert _count(client, "Groups") == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("active", "yes"),
        ("active", 1),
        ("emails", "bjensen@example.com"),
        ("emails", [{"value": 42}]),
        ("emails", [{"value": "a@example.com", "primary": "true"}]),
        ("userName", 42),
        ("name", "Barbara Jensen"),
        ("name", {"givenName": ["Barbara"]}),
        ("nickName", ["Babs"]),
        ("externalId", 701984),
    ],
)
def test_wrong_types_are_invalid_value(client: TestClient, name: str, value: Any) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "bjensen", name: value}
    assert_error(client.post("/scim/v2/Users", json=body), 400, "invalidValue")
    assert _count(client, "Users") == 0


def test_wrong_types_on_put_leave_the_user_unchanged(client: TestClient) -> None:
    user = new_user(client, "bjensen", active=True, nickName="Babs")
    path = f"/scim/v2/Users/{user['id']}"

    body = {"schemas": [USER_SCHEMA], "userName": "bjensen", "active": "no"}
    assert_error(client.put(path, json=body), 400, "invalidValue")
    assert client.get(path).json() == user


def test_two_primary_emails_are_invalid_value(client: TestClient) -> None:
    emails = [
        {"value": "bjensen@example.com", "primary": True},
        {"value": "babs@jensen.org", "primary": True},
    ]
    body = {"schemas": [USER_SCHEMA], "userName": "bjensen", "emails": emails}
    assert_error(client.post("/scim/v2/Users", json=body), 400, "invalidValue")


# --- 409 uniqueness ----------------------------------------------------------------


@pytest.mark.parametrize("second", ["bjensen", "BJensen", "BJENSEN"])
def test_duplicate_user_name_is_uniqueness(client: TestClient, second: str) -> None:
    new_user(client, "bjensen")

    response = client.post("/scim/v2/Users", json={"schemas": [USER_SCHEMA], "userName": second})
    assert_error(response, 409, "uniqueness")
    assert _count(client, "Users") == 1


def test_put_to_a_taken_user_name_is_uniqueness_and_changes_nothing(client: TestClient) -> None:
    new_user(client, "bjensen")
    mandy = new_user(client, "mpepperidge", nickName="Mandy", emails=[{"value": "m@example.com"}])
    path = f"/scim/v2/Users/{mandy['id']}"

    body = {"schemas": [USER_SCHEMA], "userName": "BJensen", "nickName": "changed"}
    assert_error(client.put(path, json=body), 409, "uniqueness")

    assert client.get(path).json() == mandy


def test_the_same_user_name_is_allowed_in_two_teams(
    client: TestClient, other_team: TestClient
) -> None:
    ours = new_user(client, "bjensen")
    theirs = new_user(other_team, "bjensen")

    assert ours["id"] != theirs["id"]
    assert other_team.get(f"/scim/v2/Users/{ours['id']}").status_code == 404
    assert client.get(f"/scim/v2/Users/{theirs['id']}").status_code == 404
    assert _count(client, "Users") == 1
    assert _count(other_team, "Users") == 1


def test_a_team_cannot_use_another_teams_user_as_member(
    client: TestClient, other_team: TestClient
) -> None:
    theirs = new_user(other_team, "bjensen")

    response = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": "Tour Guides",
            "members": [{"value": theirs["id"]}],
        },
    )
    assert_error(response, 400, "invalidValue")
    assert _count(client, "Groups") == 0


# --- 413 ---------------------------------------------------------------------------


def test_oversized_body_is_413(limited: TestClient) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "bjensen", "nickName": "x" * 5000}

    assert_error(limited.post("/scim/v2/Users", json=body), 413)
    assert _count(limited, "Users") == 0


def test_oversized_put_is_413_and_changes_nothing(limited: TestClient) -> None:
    user = new_user(limited, "bjensen")
    path = f"/scim/v2/Users/{user['id']}"
    body = {"schemas": [USER_SCHEMA], "userName": "bjensen", "nickName": "x" * 5000}

    assert_error(limited.put(path, json=body), 413)
    assert limited.get(path).json() == user


# --- 404 ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("endpoint", ["Users", "Groups"])
def test_unknown_id_is_404_for_every_method(client: TestClient, method: str, endpoint: str) -> None:
    bodies: dict[str, Any] = {
        "PUT": {
            "schemas": [USER_SCHEMA if endpoint == "Users" else GROUP_SCHEMA],
            "userName" if endpoint == "Users" else "displayName": "x",
        },
        "PATCH": {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "x"}],
        },
    }
    response = client.request(method, f"/scim/v2/{endpoint}/{UNKNOWN_ID}", json=bodies.get(method))
    body = assert_error(response, 404)
    assert UNKNOWN_ID in body["detail"]


# --- a failed request changes nothing ----------------------------------------------


def test_group_with_an_unknown_member_is_not_created(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    response = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": "Tour Guides",
            "members": [{"value": babs["id"]}, {"value": UNKNOWN_ID}],
        },
    )

    body = assert_error(response, 400, "invalidValue")
    assert UNKNOWN_ID in body["detail"]
    assert _count(client, "Groups") == 0
    assert "groups" not in client.get(f"/scim/v2/Users/{babs['id']}").json()


def test_group_put_with_an_unknown_member_changes_nothing(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides", members=[babs["id"]])
    path = f"/scim/v2/Groups/{group['id']}"

    response = client.put(
        path,
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": "Renamed",
            "members": [{"value": UNKNOWN_ID}],
        },
    )

    assert_error(response, 400, "invalidValue")
    assert client.get(path).json() == group
