"""RFC 7644 §3.4.2.3 sorting and §3.4.2.4 pagination of ``GET /Users`` and ``/Groups``."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ERROR, LIST_RESPONSE, new_group, new_user

USERS = "/scim/v2/Users"
GROUPS = "/scim/v2/Groups"


def seed_users(client: TestClient, n: int) -> list[str]:
    names = [f"user{i:02d}" for i in range(n)]
    for name in names:
        new_user(client, name)
    return names


def page(client: TestClient, path: str = USERS, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [LIST_RESPONSE]
    return body


def user_names(body: dict[str, Any]) -> list[str]:
    return [r["userName"] for r in body.get("Resources", [])]


def bad_request(client: TestClient, path: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "400"
    return body


# --- pagination (RFC 7644 §3.4.2.4) ----------------------------------------------------


def test_start_index_is_one_based(client: TestClient) -> None:
    names = seed_users(client, 12)
    first = page(client, startIndex=1, count=5)
    assert first["totalResults"] == 12
    assert first["startIndex"] == 1
    assert first["itemsPerPage"] == 5
    assert user_names(first) == names[:5]
    third = page(client, startIndex=11, count=5)
    assert third["startIndex"] == 11
    assert third["itemsPerPage"] == 2
    assert user_names(third) == names[10:]
    one = page(client, startIndex=2, count=1)
    assert user_names(one) == [names[1]]


def test_paging_visits_every_user_once_in_a_stable_order(client: TestClient) -> None:
    names = seed_users(client, 12)

    def walk() -> list[str]:
        seen: list[str] = []
        start = 1
        while True:
            body = page(client, startIndex=start, count=5)
            assert body["totalResults"] == 12
            assert body["itemsPerPage"] == len(body.get("Resources", []))
            if not body.get("Resources"):
                return seen
            seen += user_names(body)
            start += body["itemsPerPage"]

    first = walk()
    assert sorted(first) == sorted(names)
    assert len(first) == len(set(first)) == 12
    assert walk() == first


def test_paging_a_filtered_and_sorted_list(client: TestClient) -> None:
    seed_users(client, 12)
    query = {"filter": 'userName sw "user0"', "sortBy": "userName", "sortOrder": "descending"}
    first = page(client, startIndex=1, count=4, **query)
    second = page(client, startIndex=5, count=4, **query)
    third = page(client, startIndex=9, count=4, **query)
    assert first["totalResults"] == second["totalResults"] == third["totalResults"] == 10
    assert user_names(first) + user_names(second) + user_names(third) == [
        f"user0{i}" for i in range(9, -1, -1)
    ]


def test_count_zero_returns_only_the_total(client: TestClient) -> None:
    seed_users(client, 3)
    body = page(client, count=0)
    assert body["totalResults"] == 3
    assert body["itemsPerPage"] == 0
    assert body.get("Resources", []) == []
    filtered = page(client, count=0, filter='userName eq "user01"')
    assert filtered["totalResults"] == 1
    assert filtered.get("Resources", []) == []


def test_negative_count_is_zero(client: TestClient) -> None:
    seed_users(client, 3)
    body = page(client, count=-1)
    assert body["totalResults"] == 3
    assert body["itemsPerPage"] == 0
    assert body.get("Resources", []) == []


@pytest.mark.parametrize("start", [0, -1, -100])
def test_start_index_below_one_is_one(client: TestClient, start: int) -> None:
    names = seed_users(client, 3)
    body = page(client, startIndex=start, count=2)
    assert body["startIndex"] == 1
    assert user_names(body) == names[:2]


def test_start_index_beyond_the_total_is_empty(client: TestClient) -> None:
    seed_users(client, 3)
    for start in (4, 50):
        body = page(client, startIndex=start, count=10)
        assert body["totalResults"] == 3
        assert body["itemsPerPage"] == 0
        assert body.get("Resources", []) == []


def test_count_above_the_maximum_is_clamped(limited: TestClient) -> None:
    seed_users(limited, 8)
    config = limited.get("/scim/v2/ServiceProviderConfig").json()
    assert config["filter"]["supported"] is True
    assert config["filter"]["maxResults"] == 5
    body = page(limited, count=100)
    assert body["totalResults"] == 8
    assert body["itemsPerPage"] == 5
    assert len(body["Resources"]) == 5
    rest = page(limited, startIndex=6, count=1000)
    assert rest["itemsPerPage"] == 3


def test_default_count_applies_without_count(limited: TestClient) -> None:
    seed_users(limited, 8)
    body = page(limited)
    assert body["totalResults"] == 8
    assert body["itemsPerPage"] == 5


def test_groups_are_paged_too(limited: TestClient) -> None:
    for i in range(7):
        new_group(limited, f"group{i}")
    first = page(limited, GROUPS, count=50)
    second = page(limited, GROUPS, startIndex=6, count=50)
    assert first["totalResults"] == second["totalResults"] == 7
    assert first["itemsPerPage"] == 5
    assert second["itemsPerPage"] == 2
    names = [g["displayName"] for g in first["Resources"] + second["Resources"]]
    assert sorted(names) == [f"group{i}" for i in range(7)]


@pytest.mark.parametrize(
    "params",
    [{"count": "ten"}, {"count": "1.5"}, {"startIndex": "first"}, {"startIndex": "2x"}],
)
def test_non_integer_paging_is_invalid_value(client: TestClient, params: dict[str, str]) -> None:
    assert bad_request(client, USERS, params)["scimType"] == "invalidValue"
    assert bad_request(client, GROUPS, params)["scimType"] == "invalidValue"


def test_numbers_are_json_integers(client: TestClient) -> None:
    seed_users(client, 3)
    response = client.get(USERS, params={"startIndex": "2", "count": "1"})
    assert response.status_code == 200
    body = response.json()
    for key, value in (("totalResults", 3), ("itemsPerPage", 1), ("startIndex", 2)):
        assert type(body[key]) is int
        assert body[key] == value
        # Integers on the wire, never strings or floats such as "3" or 3.0.
        assert re.search(rf'"{key}"\s*:\s*{value}\s*[,}}]', response.text), response.text


def test_empty_query_parameters_are_ignored(client: TestClient) -> None:
    """Some IdPs send ``?filter=...&`` or empty parameters; they mean "absent"."""
    seed_users(client, 3)
    response = client.get(USERS + '?filter=userName+eq+"user01"&')
    assert response.status_code == 200, response.text
    assert user_names(response.json()) == ["user01"]
    response = client.get(USERS + "?filter=&startIndex=&count=&sortBy=&sortOrder=&attributes=")
    assert response.status_code == 200, response.text
    assert response.json()["totalResults"] == 3
    response = client.get(USERS + "?startIndex=2&&count=1&")
    assert response.status_code == 200, response.text
    assert user_names(response.json()) == ["user01"]


# --- sorting (RFC 7644 §3.4.2.3) -------------------------------------------------------


def test_sort_by_user_name(client: TestClient) -> None:
    for name in ("carol", "Alice", "dave", "bob"):
        new_user(client, name)
    ascending = user_names(page(client, sortBy="userName"))
    # userName is caseExact=false: "Alice" sorts with the a's, not before all lowercase.
    assert ascending == ["Alice", "bob", "carol", "dave"]
    assert user_names(page(client, sortBy="userName", sortOrder="ascending")) == ascending
    assert user_names(page(client, sortBy="userName", sortOrder="descending")) == ascending[::-1]
    assert user_names(page(client, sortBy="USERNAME", sortOrder="DESCENDING")) == ascending[::-1]
    urn = "urn:ietf:params:scim:schemas:core:2.0:User:userName"
    assert user_names(page(client, sortBy=urn)) == ascending


def test_sort_by_family_name(client: TestClient) -> None:
    new_user(client, "u1", name={"familyName": "Mendez", "givenName": "Ana"})
    new_user(client, "u2", name={"familyName": "adams", "givenName": "Ben"})
    new_user(client, "u3", name={"familyName": "Zhou", "givenName": "Chen"})
    new_user(client, "u4")
    new_user(client, "u5", name={"familyName": "Brown"})
    ascending = user_names(page(client, sortBy="name.familyName"))
    assert ascending[:4] == ["u2", "u5", "u1", "u3"]
    assert ascending[4] == "u4"  # no family name
    descending = user_names(page(client, sortBy="name.familyName", sortOrder="descending"))
    assert descending[:4] == ["u3", "u1", "u5", "u2"]


def test_sort_users_by_display_name(client: TestClient) -> None:
    new_user(client, "u1", displayName="carol")
    new_user(client, "u2", displayName="Bob")
    new_user(client, "u3")
    new_user(client, "u4", displayName="alice")
    assert user_names(page(client, sortBy="displayName")) == ["u4", "u2", "u1", "u3"]
    descending = user_names(page(client, sortBy="displayName", sortOrder="descending"))
    assert descending == ["u1", "u2", "u4", "u3"]


def test_sort_by_emails_uses_the_primary_value(client: TestClient) -> None:
    """RFC 7644 §3.4.2.3: a multi-valued attribute sorts by its primary value, if any."""
    new_user(
        client,
        "primary-last",
        emails=[
            {"value": "zzz@example.com", "type": "home"},
            {"value": "aaa@example.com", "type": "work", "primary": True},
        ],
    )
    new_user(client, "only-one", emails=[{"value": "mmm@example.com", "type": "work"}])
    new_user(
        client,
        "no-primary",
        emails=[{"value": "bbb@example.com"}, {"value": "yyy@example.com"}],
    )
    new_user(client, "none")
    ascending = user_names(page(client, sortBy="emails"))
    assert ascending == ["primary-last", "no-primary", "only-one", "none"]
    assert user_names(page(client, sortBy="emails.value")) == ascending
    descending = user_names(page(client, sortBy="emails", sortOrder="descending"))
    assert descending[:3] == ["only-one", "no-primary", "primary-last"]


def test_sort_by_meta_created(client: TestClient) -> None:
    names = ["mid", "alpha", "zulu"]
    for name in names:
        new_user(client, name)
        time.sleep(0.01)
    assert user_names(page(client, sortBy="meta.created")) == names
    assert user_names(page(client, sortBy="meta.created", sortOrder="descending")) == names[::-1]


def test_sort_by_meta_last_modified(client: TestClient) -> None:
    first = new_user(client, "first")
    time.sleep(0.01)
    new_user(client, "second")
    time.sleep(0.01)
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "first"}
    assert client.put(f"{USERS}/{first['id']}", json=body).status_code == 200
    assert user_names(page(client, sortBy="meta.lastModified")) == ["second", "first"]


def test_sort_order_defaults_to_ascending(client: TestClient) -> None:
    for name in ("b", "c", "a"):
        new_user(client, name)
    assert user_names(page(client, sortBy="userName")) == ["a", "b", "c"]


def test_sort_applies_before_paging(client: TestClient) -> None:
    for name in ("e", "b", "d", "a", "c"):
        new_user(client, name)
    first = page(client, sortBy="userName", count=2)
    second = page(client, sortBy="userName", count=2, startIndex=3)
    third = page(client, sortBy="userName", count=2, startIndex=5)
    assert user_names(first) + user_names(second) + user_names(third) == ["a", "b", "c", "d", "e"]


def test_sort_groups_by_display_name(client: TestClient) -> None:
    for name in ("Sales", "engineering", "Admins", "marketing"):
        new_group(client, name)
    body = page(client, GROUPS, sortBy="displayName")
    ascending = [g["displayName"] for g in body["Resources"]]
    assert ascending == ["Admins", "engineering", "marketing", "Sales"]
    body = page(client, GROUPS, sortBy="displayName", sortOrder="descending")
    assert [g["displayName"] for g in body["Resources"]] == ascending[::-1]


@pytest.mark.parametrize("order", ["sideways", "asc", "desc", "1"])
def test_bad_sort_order_is_400(client: TestClient, order: str) -> None:
    bad_request(client, USERS, {"sortBy": "userName", "sortOrder": order})
    bad_request(client, GROUPS, {"sortBy": "displayName", "sortOrder": order})


def test_sort_by_unknown_attribute_is_400(client: TestClient) -> None:
    new_user(client, "someone")
    new_group(client, "somegroup")
    bad_request(client, USERS, {"sortBy": "nosuch"})
    bad_request(client, GROUPS, {"sortBy": "userName"})


def test_sort_by_unknown_attribute_is_400_on_an_empty_team(client: TestClient) -> None:
    """The answer to a bad sortBy must not depend on whether the team has data."""
    bad_request(client, USERS, {"sortBy": "nosuch"})
    bad_request(client, GROUPS, {"sortBy": "userName"})
