"""RFC 7644 §3.4.3: querying with POST ``/.search`` on a resource type and at the root."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ERROR, LIST_RESPONSE, new_group, new_user

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def search(client: TestClient, path: str, **fields: Any) -> dict[str, Any]:
    response = client.post(path, json={"schemas": [SEARCH_REQUEST], **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [LIST_RESPONSE]
    assert body["itemsPerPage"] == len(body.get("Resources", []))
    return body


def names(body: dict[str, Any]) -> list[str]:
    return [r.get("userName") or r.get("displayName") for r in body.get("Resources", [])]


def seed(client: TestClient) -> dict[str, dict[str, Any]]:
    made = {
        "smith": new_user(client, "jsmith", displayName="Smith, John", externalId="e-1"),
        "smithers": new_user(client, "wsmithers", displayName="smithers", title="Assistant"),
        "jensen": new_user(client, "bjensen", displayName="Babs Jensen", externalId="e-2"),
    }
    made["guides"] = new_group(
        client, "Tour Guides", [made["jensen"]["id"], made["smith"]["id"]], externalId="e-3"
    )
    made["smiths"] = new_group(client, "Smith Family", [made["smith"]["id"]])
    return made


# --- /Users/.search and /Groups/.search ------------------------------------------------


def test_rfc_search_request_example(client: TestClient) -> None:
    """The SearchRequest of RFC 7644 §3.4.3, Figure 5."""
    seed(client)
    body = search(
        client,
        "/scim/v2/Users/.search",
        attributes=["displayName", "userName"],
        filter='displayName sw "smith"',
        startIndex=1,
        count=10,
    )
    assert body["totalResults"] == 2
    assert body["startIndex"] == 1
    assert sorted(names(body)) == ["jsmith", "wsmithers"]
    for resource in body["Resources"]:
        assert set(resource) - {"meta"} == {"schemas", "id", "displayName", "userName"}


def test_search_sorts_and_pages(client: TestClient) -> None:
    seed(client)
    first = search(client, "/scim/v2/Users/.search", sortBy="userName", startIndex=1, count=2)
    second = search(client, "/scim/v2/Users/.search", sortBy="userName", startIndex=3, count=2)
    assert first["totalResults"] == second["totalResults"] == 3
    assert names(first) + names(second) == ["bjensen", "jsmith", "wsmithers"]
    assert second["startIndex"] == 3
    descending = search(client, "/scim/v2/Users/.search", sortBy="userName", sortOrder="descending")
    assert names(descending) == ["wsmithers", "jsmith", "bjensen"]


def test_search_excluded_attributes(client: TestClient) -> None:
    seed(client)
    body = search(
        client,
        "/scim/v2/Users/.search",
        filter='userName eq "wsmithers"',
        excludedAttributes=["title", "displayName"],
    )
    resource = body["Resources"][0]
    assert resource["userName"] == "wsmithers"
    assert "title" not in resource
    assert "displayName" not in resource


def test_search_count_zero(client: TestClient) -> None:
    seed(client)
    body = search(client, "/scim/v2/Users/.search", count=0)
    assert body["totalResults"] == 3
    assert body.get("Resources", []) == []


def test_search_groups(client: TestClient) -> None:
    made = seed(client)
    body = search(
        client,
        "/scim/v2/Groups/.search",
        filter=f'members[value eq "{made["jensen"]["id"]}"]',
        attributes=["displayName"],
    )
    assert names(body) == ["Tour Guides"]
    assert set(body["Resources"][0]) - {"meta"} == {"schemas", "id", "displayName"}
    body = search(client, "/scim/v2/Groups/.search", sortBy="displayName", sortOrder="descending")
    assert names(body) == ["Tour Guides", "Smith Family"]


def test_search_with_a_bad_filter_is_invalid_filter(client: TestClient) -> None:
    for path in ("/scim/v2/Users/.search", "/scim/v2/Groups/.search", "/scim/v2/.search"):
        response = client.post(path, json={"schemas": [SEARCH_REQUEST], "filter": "userName eq"})
        assert response.status_code == 400, response.text
        assert response.json()["scimType"] == "invalidFilter"


@pytest.mark.parametrize(
    "payload",
    [
        {"filter": 'userName eq "jsmith"'},
        {"schemas": [], "filter": 'userName eq "jsmith"'},
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]},
        {"schemas": SEARCH_REQUEST},
        [SEARCH_REQUEST],
    ],
)
def test_body_without_the_search_request_schema_is_invalid_syntax(
    client: TestClient, payload: Any
) -> None:
    for path in ("/scim/v2/Users/.search", "/scim/v2/Groups/.search", "/scim/v2/.search"):
        response = client.post(path, json=payload)
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["schemas"] == [ERROR]
        assert body["scimType"] == "invalidSyntax"


def test_attributes_must_be_an_array_of_names(client: TestClient) -> None:
    response = client.post(
        "/scim/v2/Users/.search", json={"schemas": [SEARCH_REQUEST], "attributes": [1, 2]}
    )
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("value", ["ten", 1.5, True, [1], {"n": 1}])
def test_search_paging_values_must_be_integers(client: TestClient, value: Any) -> None:
    for field in ("count", "startIndex"):
        response = client.post(
            "/scim/v2/Users/.search", json={"schemas": [SEARCH_REQUEST], field: value}
        )
        assert response.status_code == 400, response.text
        assert response.json()["scimType"] == "invalidValue"


def test_search_filter_longer_than_the_limit_is_400(limited: TestClient) -> None:
    long = 'userName eq "' + "x" * 200 + '"'
    for path in ("/scim/v2/Users/.search", "/scim/v2/Groups/.search", "/scim/v2/.search"):
        response = limited.post(path, json={"schemas": [SEARCH_REQUEST], "filter": long})
        assert response.status_code == 400, response.text
        assert response.json()["scimType"] == "invalidFilter"


def test_search_count_is_clamped(limited: TestClient) -> None:
    for i in range(7):
        new_user(limited, f"u{i}")
    body = search(limited, "/scim/v2/Users/.search", count=1000)
    assert body["totalResults"] == 7
    assert body["itemsPerPage"] == 5


# --- the root: /.search ----------------------------------------------------------------


def resource_types(body: dict[str, Any]) -> list[str]:
    return [r["meta"]["resourceType"] for r in body.get("Resources", [])]


def test_root_search_returns_users_and_groups(client: TestClient) -> None:
    seed(client)
    body = search(client, "/scim/v2/.search")
    assert body["totalResults"] == 5
    assert sorted(resource_types(body)) == ["Group", "Group", "User", "User", "User"]
    assert sorted(names(body)) == sorted(
        ["jsmith", "wsmithers", "bjensen", "Tour Guides", "Smith Family"]
    )


def test_root_search_pages_across_resource_types(client: TestClient) -> None:
    seed(client)
    everything = search(client, "/scim/v2/.search", count=100)
    ids = [r["id"] for r in everything["Resources"]]
    pages = []
    for start in (1, 3, 5):
        body = search(client, "/scim/v2/.search", startIndex=start, count=2)
        assert body["totalResults"] == 5
        assert body["startIndex"] == start
        pages.append([r["id"] for r in body["Resources"]])
    assert [len(p) for p in pages] == [2, 2, 1]
    # One list: every resource exactly once, in the same order as unpaged.
    assert pages[0] + pages[1] + pages[2] == ids
    # The middle page straddles the two resource types.
    middle = search(client, "/scim/v2/.search", startIndex=3, count=2)
    assert sorted(resource_types(middle)) == ["Group", "User"]
    beyond = search(client, "/scim/v2/.search", startIndex=6, count=2)
    assert beyond["totalResults"] == 5
    assert beyond.get("Resources", []) == []


def test_root_search_count_zero_totals_both_types(client: TestClient) -> None:
    seed(client)
    body = search(client, "/scim/v2/.search", count=0)
    assert body["totalResults"] == 5
    assert body.get("Resources", []) == []


def test_root_search_filter_on_a_common_attribute(client: TestClient) -> None:
    seed(client)
    body = search(client, "/scim/v2/.search", filter='externalId sw "e-"')
    assert body["totalResults"] == 3
    assert sorted(names(body)) == ["Tour Guides", "bjensen", "jsmith"]
    body = search(client, "/scim/v2/.search", filter='displayName co "smith"')
    assert sorted(names(body)) == ["Smith Family", "jsmith", "wsmithers"]


def test_root_search_filter_on_resource_type(client: TestClient) -> None:
    seed(client)
    body = search(client, "/scim/v2/.search", filter='meta.resourceType eq "Group"')
    assert body["totalResults"] == 2
    assert resource_types(body) == ["Group", "Group"]


def test_root_search_filter_on_an_attribute_of_one_type(client: TestClient) -> None:
    """RFC 7644 §3.4.2.2: an attribute a resource type lacks has no value there."""
    made = seed(client)
    body = search(client, "/scim/v2/.search", filter='userName sw "j"')
    assert names(body) == ["jsmith"]
    body = search(client, "/scim/v2/.search", filter=f'members.value eq "{made["smith"]["id"]}"')
    assert sorted(names(body)) == ["Smith Family", "Tour Guides"]
    assert body["totalResults"] == 2


def test_root_search_attribute_of_one_type_has_no_value_in_the_other(client: TestClient) -> None:
    """Groups have no userName: ``userName eq`` is false for them, so ``not`` is true."""
    seed(client)
    body = search(client, "/scim/v2/.search", filter='not (userName eq "jsmith")')
    assert body["totalResults"] == 4
    assert sorted(names(body)) == ["Smith Family", "Tour Guides", "bjensen", "wsmithers"]
    body = search(client, "/scim/v2/.search", filter='userName ne "jsmith"')
    assert sorted(names(body)) == ["Smith Family", "Tour Guides", "bjensen", "wsmithers"]
    body = search(client, "/scim/v2/.search", filter="title eq null")
    assert sorted(names(body)) == ["Smith Family", "Tour Guides", "bjensen", "jsmith"]
    body = search(client, "/scim/v2/.search", filter='members pr or title eq "Assistant"')
    assert sorted(names(body)) == ["Smith Family", "Tour Guides", "wsmithers"]


@pytest.mark.parametrize(
    "filter_text",
    [
        'nosuch eq "x"',  # an attribute of no resource type
        'active eq "yes"',  # a User attribute, compared with the wrong type
        'userName eq "x" or members.nosuch eq "y"',
    ],
)
def test_root_search_invalid_filter_is_400(client: TestClient, filter_text: str) -> None:
    seed(client)
    response = client.post(
        "/scim/v2/.search", json={"schemas": [SEARCH_REQUEST], "filter": filter_text}
    )
    assert response.status_code == 400, response.text
    assert response.json()["scimType"] == "invalidFilter"


def test_root_search_attributes(client: TestClient) -> None:
    seed(client)
    body = search(client, "/scim/v2/.search", attributes=["displayName"])
    assert body["totalResults"] == 5
    for resource in body["Resources"]:
        assert set(resource) - {"meta"} == {"schemas", "id", "displayName"}


def test_root_search_count_is_clamped(limited: TestClient) -> None:
    for i in range(4):
        new_user(limited, f"u{i}")
    for i in range(4):
        new_group(limited, f"g{i}")
    body = search(limited, "/scim/v2/.search", count=100)
    assert body["totalResults"] == 8
    assert body["itemsPerPage"] == 5
    rest = search(limited, "/scim/v2/.search", startIndex=6, count=100)
    assert rest["itemsPerPage"] == 3
    assert resource_types(rest) == ["Group", "Group", "Group"]


def test_root_search_is_post_only(client: TestClient) -> None:
    assert client.get("/scim/v2/.search").status_code == 405
