"""Bulk operations (RFC 7644 §3.7): ``POST /Bulk`` on both backends.

The request bodies follow the examples of RFC 7644 §3.7.1-§3.7.3, with real ids and
versions where the RFC shows placeholders.
"""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.conftest import ERROR, GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, new_group, new_user

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"


def bulk(client: TestClient, *operations: Any, **extra: Any) -> Any:
    body = {"schemas": [BULK_REQUEST], "Operations": list(operations), **extra}
    return client.post("/scim/v2/Bulk", json=body)


def results(client: TestClient, *operations: Any, **extra: Any) -> list[Any]:
    response = bulk(client, *operations, **extra)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [BULK_RESPONSE]
    operations_out: list[Any] = body["Operations"]
    return operations_out


def post_user(bulk_id: str, user_name: str, **attrs: Any) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/Users",
        "bulkId": bulk_id,
        "data": {"schemas": [USER_SCHEMA], "userName": user_name, **attrs},
    }


def post_group(bulk_id: str, display_name: str, *member_values: str) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/Groups",
        "bulkId": bulk_id,
        "data": {
            "schemas": [GROUP_SCHEMA],
            "displayName": display_name,
            "members": [{"type": "User", "value": v} for v in member_values],
        },
    }


def find_users(client: TestClient, user_name: str) -> list[Any]:
    response = client.get("/scim/v2/Users", params={"filter": f'userName eq "{user_name}"'})
    assert response.status_code == 200, response.text
    found: list[Any] = response.json()["Resources"]
    return found


def find_groups(client: TestClient, display_name: str) -> list[Any]:
    response = client.get("/scim/v2/Groups", params={"filter": f'displayName eq "{display_name}"'})
    assert response.status_code == 200, response.text
    found: list[Any] = response.json()["Resources"]
    return found


def member_ids(client: TestClient, group_id: str) -> set[str]:
    response = client.get(f"/scim/v2/Groups/{group_id}")
    assert response.status_code == 200, response.text
    return {m["value"] for m in response.json().get("members", [])}


def assert_error(result: dict[str, Any], status: int, scim_type: str | None = None) -> None:
    assert result["status"] == str(status), result
    error = result["response"]
    assert error["schemas"] == [ERROR]
    assert error["status"] == str(status)
    assert error["detail"]
    if scim_type is not None:
        assert error["scimType"] == scim_type


# --- §3.7.2: bulkId references ----------------------------------------------------------


def test_rfc_example_user_then_group_referencing_it(client: TestClient) -> None:
    ops = results(
        client,
        post_user("qwerty", "Alice"),
        post_group("ytrewq", "Tour Guides", "bulkId:qwerty"),
    )
    assert [op["status"] for op in ops] == ["201", "201"]
    assert [op["bulkId"] for op in ops] == ["qwerty", "ytrewq"]
    assert [op["method"] for op in ops] == ["POST", "POST"]
    alice = find_users(client, "Alice")[0]
    group = find_groups(client, "Tour Guides")[0]
    assert ops[0]["location"] == alice["meta"]["location"]
    assert ops[0]["version"] == alice["meta"]["version"]
    assert ops[1]["location"].endswith(f"/Groups/{group['id']}")
    assert "version" in ops[1]
    assert "response" not in ops[0]
    assert member_ids(client, group["id"]) == {alice["id"]}


def test_group_before_its_members_in_request_order(client: TestClient) -> None:
    """The group refers to users created later in the request: it waits for them."""
    ops = results(
        client,
        post_group("ytrewq", "Tour Guides", "bulkId:qwerty", "bulkId:asdfgh"),
        post_user("qwerty", "Alice"),
        post_user("asdfgh", "Bob"),
    )
    # Results come in the order the operations ran: the users first.
    assert [op["bulkId"] for op in ops] == ["qwerty", "asdfgh", "ytrewq"]
    assert [op["status"] for op in ops] == ["201", "201", "201"]
    group = find_groups(client, "Tour Guides")[0]
    alice, bob = find_users(client, "Alice")[0], find_users(client, "Bob")[0]
    assert member_ids(client, group["id"]) == {alice["id"], bob["id"]}


def test_reference_in_path_and_in_patch_value(client: TestClient) -> None:
    ops = results(
        client,
        {
            "method": "PATCH",
            "path": "/Groups/bulkId:grp",
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": "bulkId:usr"}]}
                ],
            },
        },
        post_group("grp", "Admins"),
        post_user("usr", "carol"),
    )
    assert [op["method"] for op in ops] == ["POST", "POST", "PATCH"]
    assert [op["status"] for op in ops] == ["201", "201", "200"]
    group = find_groups(client, "Admins")[0]
    carol = find_users(client, "carol")[0]
    assert ops[2]["location"].endswith(f"/Groups/{group['id']}")
    assert ops[2]["version"] == group["meta"]["version"]
    assert member_ids(client, group["id"]) == {carol["id"]}


def test_reference_inside_a_patch_value_filter(client: TestClient) -> None:
    dave = new_user(client, "dave")
    group = new_group(client, "Crew", [dave["id"]])
    ops = results(
        client,
        post_user("erin", "erin"),
        {
            "method": "PATCH",
            "path": f"/Groups/{group['id']}",
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": "bulkId:erin"}]},
                    {"op": "remove", "path": 'members[value eq "bulkId:erin"]'},
                ],
            },
        },
    )
    assert [op["status"] for op in ops] == ["201", "200"]
    assert member_ids(client, group["id"]) == {dave["id"]}


def test_unknown_bulk_id_fails_that_operation_with_409(client: TestClient) -> None:
    ops = results(
        client,
        post_group("grp", "Orphans", "bulkId:nobody"),
        post_user("usr", "frank"),
    )
    assert [op["bulkId"] for op in ops] == ["grp", "usr"]
    assert_error(ops[0], 409, "invalidValue")
    assert "nobody" in ops[0]["response"]["detail"]
    assert "location" not in ops[0]
    assert ops[1]["status"] == "201"
    assert find_groups(client, "Orphans") == []


def test_reference_to_a_failed_post_fails_with_409(client: TestClient) -> None:
    new_user(client, "grace")
    ops = results(
        client,
        post_user("dup", "grace"),
        post_group("grp", "Graces", "bulkId:dup"),
    )
    assert_error(ops[0], 409, "uniqueness")
    assert_error(ops[1], 409, "invalidValue")
    assert find_groups(client, "Graces") == []


def test_rfc_circular_reference_example_answers_409(client: TestClient) -> None:
    """RFC 7644 §3.7.1: a server MAY refuse circular references with 409."""
    ops = results(
        client,
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "qwerty",
            "data": {
                "schemas": [GROUP_SCHEMA],
                "displayName": "Group A",
                "members": [{"type": "Group", "value": "bulkId:ytrewq"}],
            },
        },
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "ytrewq",
            "data": {
                "schemas": [GROUP_SCHEMA],
                "displayName": "Group B",
                "members": [{"type": "Group", "value": "bulkId:qwerty"}],
            },
        },
        post_user("ok", "heidi"),
    )
    # The user does not wait for anything and runs first; the cycle is then refused.
    assert [op["bulkId"] for op in ops] == ["ok", "qwerty", "ytrewq"]
    assert ops[0]["status"] == "201"
    assert_error(ops[1], 409)
    assert_error(ops[2], 409)
    assert "circular" in ops[1]["response"]["detail"]
    assert find_groups(client, "Group A") == []
    assert find_groups(client, "Group B") == []


def test_self_reference_is_circular(client: TestClient) -> None:
    ops = results(client, post_group("me", "Narcissus", "bulkId:me"))
    assert_error(ops[0], 409)
    assert "circular" in ops[0]["response"]["detail"]


def test_dependent_of_a_cycle_fails_too(client: TestClient) -> None:
    ops = results(
        client,
        post_group("c", "Depends", "bulkId:a"),
        post_group("a", "Cycle A", "bulkId:b"),
        post_group("b", "Cycle B", "bulkId:a"),
    )
    assert sorted(op["bulkId"] for op in ops) == ["a", "b", "c"]
    for op in ops:
        assert_error(op, 409)
    by_id = {op["bulkId"]: op for op in ops}
    assert "circular" not in by_id["c"]["response"]["detail"]
    assert "failed" in by_id["c"]["response"]["detail"]


def test_duplicate_bulk_ids_reject_the_request(client: TestClient) -> None:
    response = bulk(client, post_user("x", "ivan"), post_user("x", "judy"))
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert find_users(client, "ivan") == []


# --- §3.7.3: add, update, remove; errors; failOnErrors ----------------------------------


def test_rfc_example_add_replace_patch_delete(client: TestClient) -> None:
    bob = new_user(client, "Bob")
    dave = new_user(client, "Dave-old", nickName="Davey")
    eve = new_user(client, "Eve")
    ops = results(
        client,
        post_user("qwerty", "Alice"),
        {
            "method": "PUT",
            "path": f"/Users/{bob['id']}",
            "version": bob["meta"]["version"],
            "data": {"schemas": [USER_SCHEMA], "id": bob["id"], "userName": "Bob", "title": "x"},
        },
        {
            "method": "PATCH",
            "path": f"/Users/{dave['id']}",
            "version": dave["meta"]["version"],
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "remove", "path": "nickName"},
                    {"op": "replace", "path": "userName", "value": "Dave"},
                ],
            },
        },
        {"method": "DELETE", "path": f"/Users/{eve['id']}", "version": eve["meta"]["version"]},
        failOnErrors=1,
    )
    assert [op["method"] for op in ops] == ["POST", "PUT", "PATCH", "DELETE"]
    assert [op["status"] for op in ops] == ["201", "200", "200", "204"]
    assert ops[1]["location"] == bob["meta"]["location"]
    assert ops[1]["version"] != bob["meta"]["version"]
    assert ops[3]["location"] == eve["meta"]["location"]
    assert "version" not in ops[3]
    assert client.get(f"/scim/v2/Users/{bob['id']}").json()["title"] == "x"
    patched = client.get(f"/scim/v2/Users/{dave['id']}").json()
    assert patched["userName"] == "Dave"
    assert "nickName" not in patched
    assert ops[2]["version"] == patched["meta"]["version"]
    assert client.get(f"/scim/v2/Users/{eve['id']}").status_code == 404


def test_methods_are_case_insensitive(client: TestClient) -> None:
    user = new_user(client, "kim")
    ops = results(
        client,
        {
            "method": "post",
            "path": "/Users",
            "bulkId": "a",
            "data": {"schemas": [USER_SCHEMA], "userName": "lee"},
        },
        {"method": "Delete", "path": f"/Users/{user['id']}"},
    )
    assert [op["method"] for op in ops] == ["POST", "DELETE"]
    assert [op["status"] for op in ops] == ["201", "204"]


def test_bulk_patch_and_delete_groups(client: TestClient) -> None:
    mia = new_user(client, "mia")
    keep = new_group(client, "Keep")
    drop = new_group(client, "Drop", [mia["id"]])
    ops = results(
        client,
        {
            "method": "PATCH",
            "path": f"/Groups/{keep['id']}",
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": mia["id"]}]},
                    {"op": "replace", "path": "displayName", "value": "Kept"},
                ],
            },
        },
        {"method": "DELETE", "path": f"/Groups/{drop['id']}"},
    )
    assert [op["status"] for op in ops] == ["200", "204"]
    kept = client.get(f"/scim/v2/Groups/{keep['id']}").json()
    assert kept["displayName"] == "Kept"
    assert ops[0]["version"] == kept["meta"]["version"]
    assert member_ids(client, keep["id"]) == {mia["id"]}
    assert client.get(f"/scim/v2/Groups/{drop['id']}").status_code == 404


def test_version_mismatch_fails_that_operation_with_412(client: TestClient) -> None:
    nina = new_user(client, "nina")
    omar = new_user(client, "omar")
    ops = results(
        client,
        {
            "method": "PATCH",
            "path": f"/Users/{nina['id']}",
            "version": 'W/"999"',
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "displayName", "value": "N"}],
            },
        },
        {"method": "DELETE", "path": f"/Users/{omar['id']}", "version": 'W/"999"'},
        {
            "method": "PUT",
            "path": f"/Users/{omar['id']}",
            "version": omar["meta"]["version"],
            "data": {"schemas": [USER_SCHEMA], "userName": "omar", "displayName": "O"},
        },
    )
    assert_error(ops[0], 412)
    assert_error(ops[1], 412)
    assert ops[0]["location"].endswith(f"/Users/{nina['id']}")
    assert ops[2]["status"] == "200"
    assert "displayName" not in client.get(f"/scim/v2/Users/{nina['id']}").json()
    assert client.get(f"/scim/v2/Users/{omar['id']}").json()["displayName"] == "O"


def test_errors_do_not_stop_processing_without_fail_on_errors(client: TestClient) -> None:
    new_user(client, "pat")
    ops = results(
        client,
        post_user("a", "pat"),
        {"method": "DELETE", "path": "/Users/no-such-user"},
        post_user("b", "quinn"),
    )
    assert [op["status"] for op in ops] == ["409", "404", "201"]
    assert ops[1]["location"].endswith("/Users/no-such-user")
    assert len(find_users(client, "quinn")) == 1


def test_fail_on_errors_stops_after_that_many_errors(client: TestClient) -> None:
    new_user(client, "rita")
    ops = results(
        client,
        post_user("a", "sam"),
        post_user("b", "rita"),
        post_user("c", "tess"),
        failOnErrors=1,
    )
    assert [op["bulkId"] for op in ops] == ["a", "b"]
    assert_error(ops[1], 409, "uniqueness")
    assert find_users(client, "tess") == []


def test_fail_on_errors_counts_errors(client: TestClient) -> None:
    ops = results(
        client,
        {"method": "DELETE", "path": "/Users/gone-1"},
        post_user("a", "uma"),
        {"method": "DELETE", "path": "/Users/gone-2"},
        post_user("b", "vic"),
        failOnErrors=2,
    )
    assert [op["status"] for op in ops] == ["404", "201", "404"]
    assert find_users(client, "vic") == []


def test_fail_on_errors_must_be_a_positive_integer(client: TestClient) -> None:
    for value in (0, "1", True):
        response = bulk(client, post_user("a", "walt"), failOnErrors=value)
        assert response.status_code == 400, value
        assert response.json()["scimType"] == "invalidValue"
    assert find_users(client, "walt") == []


def test_failed_operation_leaves_nothing_half_written(client: TestClient) -> None:
    xena = new_user(client, "xena")
    ops = results(
        client,
        post_user("dup", "XENA"),
        # The group row is inserted before its members are checked: the unknown member
        # must roll the whole operation back.
        post_group("grp", "Half", xena["id"], "not-a-member-id"),
    )
    assert_error(ops[0], 409, "uniqueness")
    assert_error(ops[1], 400, "invalidValue")
    everyone = client.get("/scim/v2/Users").json()
    assert everyone["totalResults"] == 1
    assert find_groups(client, "Half") == []


def test_malformed_operations_fail_one_by_one(client: TestClient) -> None:
    user = new_user(client, "yara")
    ops = results(
        client,
        {"method": "GET", "path": f"/Users/{user['id']}"},
        {"method": "POST", "path": "/Users", "data": {"userName": "no-bulk-id"}},
        {"method": "POST", "path": "/Users", "bulkId": "a"},
        {"method": "PUT", "path": "/Users", "data": {"userName": "x"}},
        {"method": "POST", "path": "/Widgets", "bulkId": "b", "data": {}},
        {"method": "DELETE", "path": "Users/x"},
        "not an object",
        post_user("c", "zoe"),
    )
    assert [op["status"] for op in ops] == ["400", "400", "400", "405", "404", "400", "400", "201"]
    assert_error(ops[0], 400, "invalidSyntax")
    assert "bulkId" in ops[1]["response"]["detail"]
    assert ops[0]["method"] == "GET"
    assert "method" not in ops[6]
    assert find_users(client, "no-bulk-id") == []


def test_invalid_resource_data_is_that_operations_error(client: TestClient) -> None:
    ops = results(
        client,
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "a",
            "data": {"schemas": [USER_SCHEMA], "displayName": "nameless"},
        },
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "b",
            "data": {"schemas": [USER_SCHEMA], "userName": 42},
        },
        {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"userName": "noschemas"}},
    )
    assert_error(ops[0], 400, "invalidValue")
    assert_error(ops[1], 400, "invalidValue")
    assert_error(ops[2], 400, "invalidSyntax")


# --- the request itself -------------------------------------------------------------------


def test_missing_schemas_is_invalid_syntax(client: TestClient) -> None:
    response = client.post("/scim/v2/Bulk", json={"Operations": [post_user("a", "amy")]})
    assert response.status_code == 400
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["scimType"] == "invalidSyntax"
    response = client.post(
        "/scim/v2/Bulk",
        json={"schemas": [USER_SCHEMA], "Operations": [post_user("a", "amy")]},
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidSyntax"
    assert find_users(client, "amy") == []


def test_missing_operations_is_invalid_syntax(client: TestClient) -> None:
    response = client.post("/scim/v2/Bulk", json={"schemas": [BULK_REQUEST]})
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidSyntax"
    response = client.post("/scim/v2/Bulk", json=[])
    assert response.status_code == 400


def test_empty_operations_answer_an_empty_response(client: TestClient) -> None:
    assert results(client) == []


def test_bulk_needs_a_key(anon: TestClient) -> None:
    response = bulk(anon, post_user("a", "ann"))
    assert response.status_code == 401


def test_only_post_is_allowed(client: TestClient) -> None:
    assert client.get("/scim/v2/Bulk").status_code == 405


# --- §3.7.4: limits -----------------------------------------------------------------------


def test_service_provider_config_advertises_the_enforced_limits(limited: TestClient) -> None:
    config = limited.get("/scim/v2/ServiceProviderConfig").json()
    assert config["bulk"] == {"supported": True, "maxOperations": 3, "maxPayloadSize": 4096}


def test_max_operations_is_enforced_with_413(limited: TestClient) -> None:
    ops = results(limited, *(post_user(f"u{i}", f"user{i}") for i in range(3)))
    assert [op["status"] for op in ops] == ["201"] * 3
    response = bulk(limited, *(post_user(f"v{i}", f"other{i}") for i in range(4)))
    assert response.status_code == 413
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "413"
    assert "maxOperations" in body["detail"]
    assert "3" in body["detail"]
    assert find_users(limited, "other0") == []


def test_max_payload_size_is_enforced_with_413(limited: TestClient) -> None:
    big = post_user("big", "big", displayName="x" * 4096)
    response = bulk(limited, big)
    assert response.status_code == 413
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "413"
    assert "maxPayloadSize" in body["detail"]
    assert "4096" in body["detail"]
    assert find_users(limited, "big") == []
    # Just under the limit is fine.
    small = post_user("small", "small", displayName="x" * 3800)
    ops = results(limited, small)
    assert ops[0]["status"] == "201"
