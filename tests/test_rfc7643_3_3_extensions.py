"""RFC 7643 §3.3 (schema extensions) and §4.3/§8.3 (the Enterprise User extension).

The gateway models the core and enterprise attributes; anything else a client sends
(a custom extension, an unknown sub-attribute) is kept as sent and returned.
"""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import ENTERPRISE, USER_SCHEMA, new_user, patch
from tests.rfc7643_examples import barbara_writable, enterprise_part, enterprise_user

ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
BASE = "http://testserver/scim/v2"


def _post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/scim/v2/Users", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _get(client: TestClient, user_id: str) -> dict[str, Any]:
    response = client.get(f"/scim/v2/Users/{user_id}")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# --- Enterprise User (§8.3) --------------------------------------------------------


def test_rfc7643_enterprise_user_round_trips(client: TestClient) -> None:
    created = _post(client, enterprise_user())
    fetched = _get(client, created["id"])

    expected = enterprise_part()
    manager_id = expected["manager"]["value"]
    for got in (created, fetched):
        assert got["schemas"] == [USER_SCHEMA, ENTERPRISE]
        for name, value in barbara_writable().items():
            assert got[name] == value, name
        part = got[ENTERPRISE]
        for name in ("employeeNumber", "costCenter", "organization", "division", "department"):
            assert part[name] == expected[name], name
        assert part["manager"]["value"] == manager_id
        # $ref is computed from the value, whatever the client sent.
        assert part["manager"]["$ref"] == f"{BASE}/Users/{manager_id}"


def test_manager_ref_points_at_the_manager(client: TestClient) -> None:
    boss = new_user(client, "jsmith", displayName="John Smith")
    babs = new_user(client, "bjensen", **{ENTERPRISE: {"manager": {"value": boss["id"]}}})

    manager = _get(client, babs["id"])[ENTERPRISE]["manager"]
    assert manager["value"] == boss["id"]
    assert manager["$ref"] == boss["meta"]["location"]
    assert client.get(manager["$ref"]).json()["userName"] == "jsmith"


def test_enterprise_extension_is_removed_by_a_put_without_it(client: TestClient) -> None:
    created = _post(client, enterprise_user())
    path = f"/scim/v2/Users/{created['id']}"

    response = client.put(path, json={"schemas": [USER_SCHEMA], "userName": "bjensen@example.com"})
    assert response.status_code == 200, response.text

    for got in (response.json(), _get(client, created["id"])):
        assert ENTERPRISE not in got
        assert got["schemas"] == [USER_SCHEMA]


def test_enterprise_attribute_names_are_case_insensitive(client: TestClient) -> None:
    user = _post(
        client,
        {
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "userName": "bjensen",
            ENTERPRISE.upper(): {"EMPLOYEENUMBER": "701984", "Manager": {"VALUE": "x1"}},
        },
    )

    assert user["schemas"] == [USER_SCHEMA, ENTERPRISE]
    assert user[ENTERPRISE]["employeeNumber"] == "701984"
    assert user[ENTERPRISE]["manager"]["value"] == "x1"


# --- attributes the gateway does not model -------------------------------------------


def _acme_user() -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA, ACME],
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "pronunciation": "BAR-bra"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "verified": True}],
        ACME: {
            "costCode": "X1",
            "badge": {"color": "red", "floors": [1, 2, 7], "expires": None},
            "score": 9.5,
            "contractor": False,
        },
    }


def test_custom_extension_is_kept_and_returned(client: TestClient) -> None:
    sent = _acme_user()
    created = _post(client, sent)

    for got in (created, _get(client, created["id"])):
        assert ACME in got["schemas"]
        assert USER_SCHEMA in got["schemas"]
        assert got[ACME]["costCode"] == "X1"
        assert got[ACME]["badge"]["color"] == "red"
        assert got[ACME]["badge"]["floors"] == [1, 2, 7]
        assert got[ACME]["score"] == 9.5
        assert got[ACME]["contractor"] is False


def test_unknown_sub_attributes_are_kept_and_returned(client: TestClient) -> None:
    created = _post(client, _acme_user())

    for got in (created, _get(client, created["id"])):
        assert got["name"] == {"givenName": "Barbara", "pronunciation": "BAR-bra"}
        assert got["emails"] == [{"value": "bjensen@example.com", "type": "work", "verified": True}]


def test_unknown_attributes_of_the_enterprise_extension_are_kept(client: TestClient) -> None:
    user = _post(
        client,
        {
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "userName": "bjensen",
            ENTERPRISE: {"department": "Tour Operations", "building": "B7"},
        },
    )

    assert _get(client, user["id"])[ENTERPRISE] == {
        "department": "Tour Operations",
        "building": "B7",
    }


def test_unmodelled_attributes_survive_a_patch_of_other_attributes(client: TestClient) -> None:
    created = _post(client, _acme_user())
    response = patch(
        client,
        f"/scim/v2/Users/{created['id']}",
        {"op": "replace", "path": "displayName", "value": "Babs"},
    )
    assert response.status_code == 200, response.text

    got = _get(client, created["id"])
    assert got["displayName"] == "Babs"
    assert got[ACME] == created[ACME]
    assert got["name"] == created["name"]
    assert got["emails"] == created["emails"]
    assert ACME in got["schemas"]


def test_custom_extension_can_be_replaced_and_removed_with_put(client: TestClient) -> None:
    created = _post(client, _acme_user())
    path = f"/scim/v2/Users/{created['id']}"

    changed = client.put(
        path, json={"schemas": [USER_SCHEMA, ACME], "userName": "bjensen", ACME: {"costCode": "Y"}}
    )
    assert changed.status_code == 200, changed.text
    assert _get(client, created["id"])[ACME] == {"costCode": "Y"}

    removed = client.put(path, json={"schemas": [USER_SCHEMA], "userName": "bjensen"})
    assert removed.status_code == 200, removed.text
    got = _get(client, created["id"])
    assert ACME not in got
    assert got["schemas"] == [USER_SCHEMA]
    assert "name" not in got
