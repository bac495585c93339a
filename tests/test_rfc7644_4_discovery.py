"""RFC 7644 §4 discovery: /ServiceProviderConfig, /ResourceTypes and /Schemas.

An IdP reads these before it provisions anything, often before it has a key, and
configures itself from what they say. They must answer GET without a key, describe
every attribute completely (RFC 7643 §7), and advertise exactly what the gateway
does: a feature advertised here and refused later breaks a provisioning run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import (
    ENTERPRISE,
    ERROR,
    GROUP_SCHEMA,
    LIST_RESPONSE,
    SCIM,
    USER_SCHEMA,
    new_group,
    new_user,
    patch,
)

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
BASE = "http://testserver/scim/v2"

DISCOVERY_PATHS = [
    "/scim/v2/ServiceProviderConfig",
    "/scim/v2/ResourceTypes",
    "/scim/v2/ResourceTypes/User",
    "/scim/v2/ResourceTypes/Group",
    "/scim/v2/Schemas",
    f"/scim/v2/Schemas/{USER_SCHEMA}",
    f"/scim/v2/Schemas/{GROUP_SCHEMA}",
    f"/scim/v2/Schemas/{ENTERPRISE}",
]

# RFC 7643 §7: the characteristics every attribute definition carries, and their values.
CHARACTERISTICS: dict[str, set[Any]] = {
    "type": {
        "string",
        "boolean",
        "decimal",
        "integer",
        "dateTime",
        "reference",
        "complex",
        "binary",
    },
    "multiValued": {True, False},
    "required": {True, False},
    "caseExact": {True, False},
    "mutability": {"readOnly", "readWrite", "immutable", "writeOnly"},
    "returned": {"always", "never", "default", "request"},
    "uniqueness": {"none", "server", "global"},
}

# RFC 7643 §4.1 and §8.7.1: the core User attributes, less ``password`` (never accepted).
USER_ATTRIBUTES = [
    "userName",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
]


def scim_json(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == SCIM
    return response.json()


def get_json(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = scim_json(client.get(path, params=params))
    return body


def by_name(attributes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    named = {attribute["name"]: attribute for attribute in attributes}
    assert len(named) == len(attributes), "duplicate attribute names"
    return named


def walk(
    attributes: list[dict[str, Any]], prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    for attribute in attributes:
        path = prefix + attribute["name"]
        yield path, attribute
        yield from walk(attribute.get("subAttributes", []), path + ".")


def schema(client: TestClient, urn: str) -> dict[str, dict[str, Any]]:
    body = get_json(client, f"/scim/v2/Schemas/{urn}")
    return by_name(body["attributes"])


def characteristics(attribute: dict[str, Any]) -> tuple[Any, ...]:
    return (
        attribute["type"],
        attribute["multiValued"],
        attribute["required"],
        attribute["caseExact"],
        attribute["mutability"],
        attribute["returned"],
        attribute["uniqueness"],
    )


# --- no key needed; GET only --------------------------------------------------------


@pytest.mark.parametrize("path", DISCOVERY_PATHS)
def test_discovery_answers_get_without_a_key(anon: TestClient, path: str) -> None:
    assert anon.get("/scim/v2/Users").status_code == 401  # this client really has no key
    body = scim_json(anon.get(path))
    assert body["schemas"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", DISCOVERY_PATHS)
def test_discovery_refuses_every_method_but_get(
    client: TestClient, anon: TestClient, path: str, method: str
) -> None:
    for caller in (client, anon):
        response = caller.request(method, path, json={"schemas": [SCHEMA_SCHEMA]})
        body = scim_json(response, 405)
        assert body["schemas"] == [ERROR]
        assert body["status"] == "405"
        assert body["detail"]
        assert "GET" in response.headers["allow"]
    # Nothing changed: the resource reads the same afterwards.
    assert scim_json(anon.get(path)) == scim_json(client.get(path))


@pytest.mark.parametrize(
    "path",
    [
        "/scim/v2/ResourceTypes/Device",
        "/scim/v2/ResourceTypes/Users",
        "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:Device",
        "/scim/v2/Schemas/urn:example:params:scim:schemas:extension:acme:2.0:User",
        "/scim/v2/Schemas/User",
    ],
)
def test_unknown_resource_type_or_schema_is_404(anon: TestClient, path: str) -> None:
    body = scim_json(anon.get(path), 404)
    assert body["schemas"] == [ERROR]
    assert body["status"] == "404"
    assert body["detail"]


@pytest.mark.parametrize(
    "path",
    ["/scim/v2/ResourceTypes", "/scim/v2/Schemas", "/scim/v2/ServiceProviderConfig"],
)
def test_a_filter_on_discovery_is_forbidden(anon: TestClient, path: str) -> None:
    """RFC 7644 §4: a filter SHOULD be answered 403, so no client trusts a match."""
    body = scim_json(anon.get(path, params={"filter": 'name eq "User"'}), 403)
    assert body["schemas"] == [ERROR]
    assert body["status"] == "403"


@pytest.mark.parametrize("path", ["/scim/v2/ResourceTypes", "/scim/v2/Schemas"])
def test_paging_and_sorting_parameters_are_ignored(anon: TestClient, path: str) -> None:
    """RFC 7644 §4: paging and sorting parameters SHALL be ignored."""
    everything = get_json(anon, path)
    assert get_json(anon, path, startIndex=2, count=1, sortBy="name") == everything


# --- ServiceProviderConfig ------------------------------------------------------------


def test_service_provider_config_advertises_what_is_supported(anon: TestClient) -> None:
    config = get_json(anon, "/scim/v2/ServiceProviderConfig")
    assert config["schemas"] == [SPC_SCHEMA]
    assert config["patch"] == {"supported": True}
    assert config["bulk"]["supported"] is True
    assert config["bulk"]["maxOperations"] == 1000
    assert config["bulk"]["maxPayloadSize"] == 1_048_576
    assert config["filter"] == {"supported": True, "maxResults": 1000}
    assert config["sort"] == {"supported": True}
    assert config["etag"] == {"supported": True}
    assert config["changePassword"] == {"supported": False}
    [scheme] = config["authenticationSchemes"]
    assert scheme["type"] == "oauthbearertoken"
    assert scheme["name"] and scheme["description"]
    assert config["meta"] == {
        "resourceType": "ServiceProviderConfig",
        "location": f"{BASE}/ServiceProviderConfig",
    }
    assert "id" not in config  # RFC 7643 §5: it has no id


def test_service_provider_config_follows_the_configured_limits(limited: TestClient) -> None:
    config = get_json(limited, "/scim/v2/ServiceProviderConfig")
    assert config["filter"]["maxResults"] == 5
    assert config["bulk"]["maxOperations"] == 3
    assert config["bulk"]["maxPayloadSize"] == 4096


def test_filter_max_results_is_what_a_page_holds_at_most(limited: TestClient) -> None:
    for n in range(7):
        new_user(limited, f"cap{n}")
    page = get_json(limited, "/scim/v2/Users", count=100)
    assert page["totalResults"] == 7
    assert len(page["Resources"]) == page["itemsPerPage"] == 5


def test_advertised_sort_works(client: TestClient) -> None:
    for name in ("bravo", "alpha", "charlie"):
        new_user(client, name)
    page = get_json(client, "/scim/v2/Users", sortBy="userName", sortOrder="descending")
    assert [u["userName"] for u in page["Resources"]] == ["charlie", "bravo", "alpha"]


def test_advertised_etag_and_patch_work(client: TestClient) -> None:
    user = new_user(client, "etagged")
    response = patch(
        client,
        f"/scim/v2/Users/{user['id']}",
        {"op": "replace", "path": "displayName", "value": "Etagged"},
        headers={"If-Match": user["meta"]["version"]},
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == response.json()["meta"]["version"] != user["meta"]["version"]
    stale = patch(
        client,
        f"/scim/v2/Users/{user['id']}",
        {"op": "replace", "path": "displayName", "value": "Stale"},
        headers={"If-Match": user["meta"]["version"]},
    )
    assert stale.status_code == 412, stale.text


def test_advertised_bulk_has_an_endpoint(client: TestClient) -> None:
    """bulk.supported is true, so /Bulk must take a BulkRequest (RFC 7644 §3.7)."""
    response = client.post(
        "/scim/v2/Bulk",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "one",
                    "data": {"schemas": [USER_SCHEMA], "userName": "bulky"},
                }
            ],
        },
    )
    body = scim_json(response, 200)
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]
    [result] = body["Operations"]
    assert (result["bulkId"], result["status"]) == ("one", "201")


def test_password_is_not_advertised_and_not_stored(client: TestClient) -> None:
    """changePassword is false and the schema has no password: one is never kept."""
    assert "password" not in schema(client, USER_SCHEMA)
    user = new_user(client, "nopass", password="t1meMa$heen")
    assert "password" not in user
    found = get_json(client, "/scim/v2/Users", filter='userName eq "nopass"')
    assert "password" not in found["Resources"][0]


# --- ResourceTypes ----------------------------------------------------------------


def test_resource_types_list_user_and_group(anon: TestClient) -> None:
    listing = get_json(anon, "/scim/v2/ResourceTypes")
    assert listing["schemas"] == [LIST_RESPONSE]
    assert listing["totalResults"] == len(listing["Resources"]) == 2
    assert listing["startIndex"] == 1
    resources = {rt["id"]: rt for rt in listing["Resources"]}
    assert resources["User"] == get_json(anon, "/scim/v2/ResourceTypes/User")
    assert resources["Group"] == get_json(anon, "/scim/v2/ResourceTypes/Group")


def test_resource_type_user(anon: TestClient) -> None:
    user = get_json(anon, "/scim/v2/ResourceTypes/User")
    assert user["schemas"] == [RESOURCE_TYPE_SCHEMA]
    assert (user["id"], user["name"], user["endpoint"]) == ("User", "User", "/Users")
    assert user["schema"] == USER_SCHEMA
    assert user["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    assert user["meta"] == {
        "resourceType": "ResourceType",
        "location": f"{BASE}/ResourceTypes/User",
    }


def test_resource_type_group(anon: TestClient) -> None:
    group = get_json(anon, "/scim/v2/ResourceTypes/Group")
    assert (group["id"], group["name"], group["endpoint"]) == ("Group", "Group", "/Groups")
    assert group["schema"] == GROUP_SCHEMA
    assert group.get("schemaExtensions", []) == []
    assert group["meta"]["location"] == f"{BASE}/ResourceTypes/Group"


def test_every_resource_type_points_at_served_schemas_and_endpoints(client: TestClient) -> None:
    for rt in get_json(client, "/scim/v2/ResourceTypes")["Resources"]:
        urns = [rt["schema"]] + [ext["schema"] for ext in rt.get("schemaExtensions", [])]
        for urn in urns:
            assert get_json(client, f"/scim/v2/Schemas/{urn}")["id"] == urn
        listing = get_json(client, f"/scim/v2{rt['endpoint']}")
        assert listing["schemas"] == [LIST_RESPONSE]


# --- Schemas ------------------------------------------------------------------------


def test_schemas_list_user_group_and_enterprise(anon: TestClient) -> None:
    listing = get_json(anon, "/scim/v2/Schemas")
    assert listing["schemas"] == [LIST_RESPONSE]
    assert listing["totalResults"] == len(listing["Resources"]) == 3
    served = {s["id"]: s for s in listing["Resources"]}
    assert set(served) == {USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE}
    for urn, body in served.items():
        assert body == get_json(anon, f"/scim/v2/Schemas/{urn}")
        assert body["schemas"] == [SCHEMA_SCHEMA]
        assert body["meta"] == {"resourceType": "Schema", "location": f"{BASE}/Schemas/{urn}"}
    assert (served[USER_SCHEMA]["name"], served[GROUP_SCHEMA]["name"]) == ("User", "Group")
    assert served[ENTERPRISE]["name"] == "EnterpriseUser"


@pytest.mark.parametrize("urn", [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE])
def test_every_attribute_is_fully_described(anon: TestClient, urn: str) -> None:
    body = get_json(anon, f"/scim/v2/Schemas/{urn}")
    for path, attribute in walk(body["attributes"]):
        for key, allowed in CHARACTERISTICS.items():
            assert attribute[key] in allowed, (path, key, attribute.get(key))
        assert isinstance(attribute["description"], str) and attribute["description"], path
        if attribute["type"] == "complex":
            assert attribute["subAttributes"], path
        else:
            assert "subAttributes" not in attribute, path
        if attribute["type"] == "reference":
            assert attribute["referenceTypes"], path
        if "." in path:
            # RFC 7643 §2.3.8: a complex attribute holds no complex sub-attribute.
            assert attribute["type"] != "complex", path


def test_user_schema_attributes(anon: TestClient) -> None:
    attrs = schema(anon, USER_SCHEMA)
    assert list(attrs) == USER_ATTRIBUTES
    assert characteristics(attrs["userName"]) == (
        "string",
        False,
        True,
        False,
        "readWrite",
        "default",
        "server",
    )
    assert characteristics(attrs["active"]) == (
        "boolean",
        False,
        False,
        False,
        "readWrite",
        "default",
        "none",
    )
    assert attrs["profileUrl"]["type"] == "reference"
    assert attrs["profileUrl"]["referenceTypes"] == ["external"]
    name = by_name(attrs["name"]["subAttributes"])
    assert set(name) == {
        "formatted",
        "familyName",
        "givenName",
        "middleName",
        "honorificPrefix",
        "honorificSuffix",
    }
    assert all(characteristics(sub)[:2] == ("string", False) for sub in name.values())


@pytest.mark.parametrize(
    ("attribute", "value_type", "canonical_types"),
    [
        ("emails", "string", ["work", "home", "other"]),
        ("phoneNumbers", "string", ["work", "home", "mobile", "fax", "pager", "other"]),
        ("ims", "string", ["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
        ("photos", "reference", ["photo", "thumbnail"]),
        ("entitlements", "string", None),
        ("roles", "string", None),
        ("x509Certificates", "binary", None),
    ],
)
def test_user_multi_valued_attributes(
    anon: TestClient, attribute: str, value_type: str, canonical_types: list[str] | None
) -> None:
    attr = schema(anon, USER_SCHEMA)[attribute]
    assert (attr["type"], attr["multiValued"], attr["mutability"]) == ("complex", True, "readWrite")
    subs = by_name(attr["subAttributes"])
    assert set(subs) == {"value", "display", "type", "primary"}
    assert subs["value"]["type"] == value_type
    assert subs["primary"]["type"] == "boolean"
    assert all(not sub["multiValued"] for sub in subs.values())
    if canonical_types is not None:
        assert subs["type"]["canonicalValues"] == canonical_types


def test_user_addresses_and_groups(anon: TestClient) -> None:
    attrs = schema(anon, USER_SCHEMA)
    addresses = by_name(attrs["addresses"]["subAttributes"])
    assert set(addresses) == {
        "formatted",
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
        "type",
        "primary",
    }
    assert addresses["type"]["canonicalValues"] == ["work", "home", "other"]

    groups = attrs["groups"]
    assert (groups["multiValued"], groups["mutability"]) == (True, "readOnly")
    subs = by_name(groups["subAttributes"])
    assert set(subs) == {"value", "$ref", "display", "type"}
    assert all(sub["mutability"] == "readOnly" for sub in subs.values())
    assert subs["$ref"]["referenceTypes"] == ["User", "Group"]
    assert subs["type"]["canonicalValues"] == ["direct", "indirect"]


def test_group_schema_attributes(anon: TestClient) -> None:
    attrs = schema(anon, GROUP_SCHEMA)
    assert list(attrs) == ["displayName", "members"]
    assert characteristics(attrs["displayName"]) == (
        "string",
        False,
        True,
        False,
        "readWrite",
        "default",
        "none",
    )
    members = attrs["members"]
    assert (members["type"], members["multiValued"], members["mutability"]) == (
        "complex",
        True,
        "readWrite",
    )
    subs = by_name(members["subAttributes"])
    assert set(subs) == {"value", "$ref", "type", "display"}
    # RFC 7643 §4.2: the sub-attributes of members are immutable; display is computed
    # and returned only when asked for.
    assert [subs[n]["mutability"] for n in ("value", "$ref", "type")] == ["immutable"] * 3
    assert subs["display"]["mutability"] == "readOnly"
    assert subs["display"]["returned"] == "request"
    assert subs["$ref"]["type"] == "reference"
    assert subs["$ref"]["referenceTypes"] == ["User", "Group"]
    assert subs["type"]["canonicalValues"] == ["User", "Group"]


def test_enterprise_user_schema_attributes(anon: TestClient) -> None:
    attrs = schema(anon, ENTERPRISE)
    assert list(attrs) == [
        "employeeNumber",
        "costCenter",
        "organization",
        "division",
        "department",
        "manager",
    ]
    for simple in ("employeeNumber", "costCenter", "organization", "division", "department"):
        assert characteristics(attrs[simple]) == (
            "string",
            False,
            False,
            False,
            "readWrite",
            "default",
            "none",
        )
    manager = attrs["manager"]
    assert (manager["type"], manager["multiValued"]) == ("complex", False)
    subs = by_name(manager["subAttributes"])
    assert set(subs) == {"value", "$ref", "displayName"}
    assert subs["$ref"]["referenceTypes"] == ["User"]
    assert subs["displayName"]["mutability"] == "readOnly"


def test_schemas_leave_out_the_common_attributes(anon: TestClient) -> None:
    """RFC 7643 §3.1: id, externalId and meta belong to every resource, not to a schema."""
    for urn in (USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE):
        assert not {"id", "externalId", "meta", "schemas"} & set(schema(anon, urn))


def test_read_only_attributes_are_what_the_server_sets(client: TestClient) -> None:
    """What the schema calls readOnly is ignored on input and filled by the gateway."""
    member = new_user(client, "member", displayName="The Member")
    group = new_group(
        client,
        "Readers",
        members=[member["id"]],
    )
    shown = get_json(client, f"/scim/v2/Users/{member['id']}")
    assert [g["value"] for g in shown["groups"]] == [group["id"]]
    named = get_json(client, f"/scim/v2/Groups/{group['id']}", attributes="members.display")
    assert [m["display"] for m in named["members"]] == ["The Member"]

    forged = new_user(
        client,
        "forger",
        groups=[{"value": group["id"], "display": "Readers"}],
    )
    assert "groups" not in forged or forged["groups"] == []
