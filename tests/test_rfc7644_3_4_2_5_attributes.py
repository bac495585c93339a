"""RFC 7644 §3.4.2.5 (and §3.9): ``attributes`` and ``excludedAttributes`` on every read.

``id`` and ``schemas`` are returned always (RFC 7643 §3.1 ``returned: always``).
Excluding ``members`` or ``groups`` must spare the database the work of loading them.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, new_group, new_user, patch
from tests.statements import Statement, recorded

USERS = "/scim/v2/Users"
GROUPS = "/scim/v2/Groups"


def full_user(client: TestClient, user_name: str = "bjensen") -> dict[str, Any]:
    return new_user(
        client,
        user_name,
        externalId="ext-" + user_name,
        name={"familyName": "Jensen", "givenName": "Barbara", "formatted": "Barbara Jensen"},
        displayName="Babs Jensen",
        title="Tour Guide",
        emails=[
            {"value": f"{user_name}@example.com", "type": "work", "primary": True},
            {"value": f"{user_name}@home.example", "type": "home"},
        ],
        phoneNumbers=[{"value": "555-555-5555", "type": "work"}],
        schemas=[USER_SCHEMA, ENTERPRISE],
        **{ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"}},
    )


def get(client: TestClient, path: str, **params: str) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def only(body: dict[str, Any]) -> dict[str, Any]:
    """The single resource of a ListResponse."""
    assert body["totalResults"] == 1, body
    resource: dict[str, Any] = body["Resources"][0]
    return resource


def reads(client: TestClient, user: dict[str, Any], params: dict[str, str]) -> list[dict[str, Any]]:
    """The same user read through each read endpoint with ``params``."""
    one = get(client, f"{USERS}/{user['id']}", **params)
    listed = only(get(client, USERS, filter=f'id eq "{user["id"]}"', **params))
    search_params: dict[str, Any] = {
        k: [v.strip() for v in value.split(",")] for k, value in params.items()
    }
    response = client.post(
        f"{USERS}/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f'id eq "{user["id"]}"',
            **search_params,
        },
    )
    assert response.status_code == 200, response.text
    searched = only(response.json())
    return [one, listed, searched]


def no_membership_reads(statements: list[Statement]) -> None:
    touching = [s.sql for s in statements if s.is_select and s.touches("scim_membership")]
    assert touching == [], touching


# --- attributes ------------------------------------------------------------------------


def test_attributes_returns_only_those_plus_id_and_schemas(client: TestClient) -> None:
    user = full_user(client)
    for resource in reads(client, user, {"attributes": "userName"}):
        assert resource["id"] == user["id"]
        assert USER_SCHEMA in resource["schemas"]
        assert resource["userName"] == "bjensen"
        assert set(resource) - {"meta"} == {"id", "schemas", "userName"}


def test_attributes_lists_several_names(client: TestClient) -> None:
    user = full_user(client)
    for resource in reads(client, user, {"attributes": "userName, title,externalId"}):
        assert set(resource) - {"meta"} == {"id", "schemas", "userName", "title", "externalId"}


def test_attributes_are_case_insensitive(client: TestClient) -> None:
    user = full_user(client)
    for resource in reads(client, user, {"attributes": "USERNAME,Name.GivenName"}):
        assert resource["userName"] == "bjensen"
        assert resource["name"] == {"givenName": "Barbara"}


def test_attributes_naming_sub_attributes(client: TestClient) -> None:
    user = full_user(client)
    for resource in reads(client, user, {"attributes": "name.givenName,emails.value"}):
        assert resource["name"] == {"givenName": "Barbara"}
        assert resource["emails"] == [
            {"value": "bjensen@example.com"},
            {"value": "bjensen@home.example"},
        ]
        assert "userName" not in resource
        assert "phoneNumbers" not in resource


def test_attributes_naming_a_complex_attribute_returns_all_of_it(client: TestClient) -> None:
    user = full_user(client)
    for resource in reads(client, user, {"attributes": "name"}):
        assert resource["name"] == user["name"]


def test_attributes_with_urn_qualified_names(client: TestClient) -> None:
    user = full_user(client)
    department = f"{ENTERPRISE}:department"
    core_user_name = f"{USER_SCHEMA}:userName"
    for resource in reads(client, user, {"attributes": f"{department},{core_user_name}"}):
        assert resource[ENTERPRISE] == {"department": "Tour Operations"}
        assert resource["userName"] == "bjensen"
        assert "title" not in resource
    for resource in reads(client, user, {"attributes": ENTERPRISE}):
        assert resource[ENTERPRISE] == {"employeeNumber": "701984", "department": "Tour Operations"}
        assert "userName" not in resource
    for resource in reads(client, user, {"attributes": f"{USER_SCHEMA}:name.familyName"}):
        assert resource["name"] == {"familyName": "Jensen"}


def test_urn_qualified_sub_attributes_of_an_extension(client: TestClient) -> None:
    boss = new_user(client, "boss")
    user = new_user(
        client,
        "report",
        schemas=[USER_SCHEMA, ENTERPRISE],
        **{ENTERPRISE: {"department": "Sales", "manager": {"value": boss["id"]}}},
    )
    manager = user[ENTERPRISE]["manager"]
    assert manager["value"] == boss["id"]
    assert set(manager) > {"value"}  # the gateway adds "$ref"
    for resource in reads(client, user, {"attributes": f"{ENTERPRISE}:manager.value"}):
        assert resource[ENTERPRISE] == {"manager": {"value": boss["id"]}}
    for resource in reads(client, user, {"attributes": f"{ENTERPRISE}:manager"}):
        assert resource[ENTERPRISE] == {"manager": manager}
    for resource in reads(client, user, {"excludedAttributes": f"{ENTERPRISE}:manager.$ref"}):
        assert resource[ENTERPRISE] == {"department": "Sales", "manager": {"value": boss["id"]}}
    for resource in reads(client, user, {"excludedAttributes": f"{ENTERPRISE}:manager"}):
        assert resource[ENTERPRISE] == {"department": "Sales"}


def test_attributes_on_every_resource_of_a_list(client: TestClient) -> None:
    for name in ("a", "b", "c"):
        full_user(client, name)
    body = get(client, USERS, attributes="emails.value")
    assert body["totalResults"] == 3
    for resource in body["Resources"]:
        assert set(resource) - {"meta"} == {"id", "schemas", "emails"}
        assert all(set(email) == {"value"} for email in resource["emails"])


# --- excludedAttributes ----------------------------------------------------------------


def test_excluded_attributes_removes_those(client: TestClient) -> None:
    user = full_user(client)
    for resource in reads(client, user, {"excludedAttributes": "emails,name"}):
        assert "emails" not in resource
        assert "name" not in resource
        assert resource["userName"] == "bjensen"
        assert resource["title"] == "Tour Guide"
        assert resource["phoneNumbers"] == user["phoneNumbers"]
        assert resource[ENTERPRISE] == user[ENTERPRISE]


def test_excluded_attributes_cannot_remove_id_or_schemas(client: TestClient) -> None:
    user = full_user(client)
    for resource in reads(client, user, {"excludedAttributes": "id,schemas,userName"}):
        assert resource["id"] == user["id"]
        assert USER_SCHEMA in resource["schemas"]
        assert "userName" not in resource


def test_excluded_sub_attributes(client: TestClient) -> None:
    user = full_user(client)
    for resource in reads(client, user, {"excludedAttributes": "name.givenName,emails.type"}):
        assert resource["name"] == {"familyName": "Jensen", "formatted": "Barbara Jensen"}
        assert resource["emails"] == [
            {"value": "bjensen@example.com", "primary": True},
            {"value": "bjensen@home.example"},
        ]


def test_excluded_urn_qualified_attributes(client: TestClient) -> None:
    user = full_user(client)
    for resource in reads(client, user, {"excludedAttributes": f"{ENTERPRISE}:department"}):
        assert resource[ENTERPRISE] == {"employeeNumber": "701984"}
        assert resource["userName"] == "bjensen"
    for resource in reads(client, user, {"excludedAttributes": ENTERPRISE}):
        assert ENTERPRISE not in resource
        assert resource["userName"] == "bjensen"
    for resource in reads(client, user, {"excludedAttributes": f"{USER_SCHEMA}:title"}):
        assert "title" not in resource
        assert resource["displayName"] == "Babs Jensen"


# --- writes return the projected resource ----------------------------------------------


def test_create_honours_attributes(client: TestClient) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "new", "title": "Boss", "nickName": "N"}
    response = client.post(USERS, params={"attributes": "userName"}, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) - {"meta"} == {"id", "schemas", "userName"}
    # The whole user was stored all the same.
    assert get(client, f"{USERS}/{created['id']}")["title"] == "Boss"


def test_create_honours_excluded_attributes(client: TestClient) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "new", "title": "Boss", "nickName": "N"}
    response = client.post(USERS, params={"excludedAttributes": "title"}, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert "title" not in created
    assert created["nickName"] == "N"
    assert created["id"]


def test_replace_honours_attributes(client: TestClient) -> None:
    user = full_user(client)
    body = {"schemas": [USER_SCHEMA], "userName": "bjensen", "title": "Chief"}
    response = client.put(f"{USERS}/{user['id']}", params={"attributes": "title"}, json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()) - {"meta"} == {"id", "schemas", "title"}
    assert response.json()["title"] == "Chief"
    response = client.put(
        f"{USERS}/{user['id']}", params={"excludedAttributes": "title"}, json=body
    )
    assert response.status_code == 200, response.text
    assert "title" not in response.json()
    assert response.json()["userName"] == "bjensen"


def test_patch_honours_attributes(client: TestClient) -> None:
    user = full_user(client)
    response = patch(
        client,
        f"{USERS}/{user['id']}",
        {"op": "replace", "path": "title", "value": "Chief"},
        params={"attributes": "title"},
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) - {"meta"} == {"id", "schemas", "title"}


def test_group_create_and_replace_honour_attributes(client: TestClient) -> None:
    member = new_user(client, "member")
    body = {"schemas": [GROUP_SCHEMA], "displayName": "G", "members": [{"value": member["id"]}]}
    response = client.post(GROUPS, params={"excludedAttributes": "members"}, json=body)
    assert response.status_code == 201, response.text
    group = response.json()
    assert "members" not in group
    assert group["displayName"] == "G"
    response = client.put(
        f"{GROUPS}/{group['id']}", params={"attributes": "displayName"}, json=body
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) - {"meta"} == {"id", "schemas", "displayName"}
    # The members were stored regardless of what the response showed.
    assert get(client, f"{GROUPS}/{group['id']}")["members"][0]["value"] == member["id"]


# --- groups: members -------------------------------------------------------------------


def group_with_members(client: TestClient) -> dict[str, Any]:
    ids = [new_user(client, f"member{i}")["id"] for i in range(3)]
    return new_group(client, "Staff", ids, externalId="staff")


def test_group_attributes(client: TestClient) -> None:
    group = group_with_members(client)
    one = get(client, f"{GROUPS}/{group['id']}", attributes="displayName")
    listed = only(get(client, GROUPS, attributes="displayName"))
    for resource in (one, listed):
        assert set(resource) - {"meta"} == {"id", "schemas", "displayName"}
    one = get(client, f"{GROUPS}/{group['id']}", attributes="members.value")
    assert sorted(m["value"] for m in one["members"]) == sorted(
        m["value"] for m in group["members"]
    )
    assert all(set(m) == {"value"} for m in one["members"])


@pytest.mark.parametrize("params", [{"excludedAttributes": "members"}, {"attributes": "id"}])
def test_group_without_members_does_not_load_them(
    client: TestClient, params: dict[str, str]
) -> None:
    group = group_with_members(client)
    with recorded(client) as statements:
        one = get(client, f"{GROUPS}/{group['id']}", **params)
    assert "members" not in one
    assert one["id"] == group["id"]
    no_membership_reads(statements)

    with recorded(client) as statements:
        listed = get(client, GROUPS, **params)
    assert listed["totalResults"] == 1
    assert "members" not in listed["Resources"][0]
    no_membership_reads(statements)

    with recorded(client) as statements:
        response = client.post(
            f"{GROUPS}/.search",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                **{k: [v] for k, v in params.items()},
            },
        )
    assert response.status_code == 200, response.text
    assert "members" not in only(response.json())
    no_membership_reads(statements)


def test_group_patch_without_members_in_response_does_not_load_them(client: TestClient) -> None:
    group = group_with_members(client)
    with recorded(client) as statements:
        response = patch(
            client,
            f"{GROUPS}/{group['id']}",
            {"op": "replace", "path": "displayName", "value": "Renamed"},
            params={"excludedAttributes": "members"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["displayName"] == "Renamed"
    assert "members" not in response.json()
    no_membership_reads(statements)


def test_group_members_are_loaded_when_wanted(client: TestClient) -> None:
    """The counterpart of the tests above: the listener does see membership reads."""
    group = group_with_members(client)
    with recorded(client) as statements:
        one = get(client, f"{GROUPS}/{group['id']}")
    assert len(one["members"]) == 3
    assert any(s.is_select and s.touches("scim_membership") for s in statements)


# --- users: groups ---------------------------------------------------------------------


def test_user_list_without_groups_does_not_load_them(client: TestClient) -> None:
    user = full_user(client)
    new_group(client, "Staff", [user["id"]])
    for params in ({"excludedAttributes": "groups"}, {"attributes": "userName"}):
        with recorded(client) as statements:
            listed = only(get(client, USERS, **params))
        assert "groups" not in listed
        no_membership_reads(statements)
    listed = only(get(client, USERS))
    assert [g["display"] for g in listed["groups"]] == ["Staff"]


def test_user_without_groups_does_not_load_them(client: TestClient) -> None:
    user = full_user(client)
    new_group(client, "Staff", [user["id"]])
    for params in ({"excludedAttributes": "groups"}, {"attributes": "userName"}):
        with recorded(client) as statements:
            one = get(client, f"{USERS}/{user['id']}", **params)
        assert "groups" not in one
        assert one["id"] == user["id"]
        no_membership_reads(statements)
