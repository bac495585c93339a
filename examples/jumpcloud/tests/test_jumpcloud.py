"""The JumpCloud adapter, tested with the gateway's test kit (``plugins.testing``).

The kit's pytest fixtures come with the ``scim-gateway`` distribution: no conftest
is needed. ``scim_client_factory(adapter="jumpcloud")`` gives a client holding a key
bound to this adapter, of a new team with SSO and SCIM on, on a fresh gateway.
"""

from __future__ import annotations

from typing import Any

from scim_gateway_jumpcloud import JumpCloudAdapter

from plugins import GatewayPlugins
from plugins.testing import ScimClientFactory, ScimTestClient, assert_conforms, observe_events

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# The admin types the test user's address into JumpCloud's Test Connection form. The
# guide gives the sequence, not the bodies: these are plain RFC 7643 resources.
TEST_USER = {
    "schemas": [USER],
    "userName": "scim.test@example.com",
    "name": {"givenName": "SCIM", "familyName": "Test"},
    "emails": [{"value": "scim.test@example.com", "type": "work", "primary": True}],
    "active": True,
}
TEST_GROUP = {"schemas": [GROUP], "displayName": "JumpCloud SCIM Test Group"}


def test_jumpcloud_conforms() -> None:
    assert_conforms("jumpcloud")


def test_the_adapter_is_installed_from_its_own_distribution() -> None:
    loaded = GatewayPlugins()
    assert loaded.registry.get("jumpcloud") is JumpCloudAdapter
    info = {p.name: p for p in loaded.describe()}["jumpcloud"]
    assert info.distribution == "scim-gateway-jumpcloud"
    assert info.adapters == ("jumpcloud",)


def run_test_connection(client: ScimTestClient) -> tuple[str, str]:
    """JumpCloud's Test Connection: create a test user and a test group, then
    DELETE both. Returns their ids."""
    user = client.post("/scim/v2/Users", json=TEST_USER)
    assert user.status_code == 201, user.text
    group = client.post("/scim/v2/Groups", json=TEST_GROUP)
    assert group.status_code == 201, group.text
    user_id, group_id = user.json()["id"], group.json()["id"]
    assert client.delete(f"/scim/v2/Users/{user_id}").status_code == 204
    assert client.delete(f"/scim/v2/Groups/{group_id}").status_code == 204
    return user_id, group_id


def assert_left_nothing(client: ScimTestClient, user_id: str, group_id: str) -> None:
    assert client.get(f"/scim/v2/Users/{user_id}").status_code == 404
    assert client.get(f"/scim/v2/Groups/{group_id}").status_code == 404
    users = client.get("/scim/v2/Users", params={"filter": 'userName eq "scim.test@example.com"'})
    assert users.json()["totalResults"] == 0
    groups = client.get("/scim/v2/Groups")
    assert groups.json()["totalResults"] == 0


def test_test_connection_leaves_nothing_behind(scim_client_factory: ScimClientFactory) -> None:
    client = scim_client_factory(adapter="jumpcloud")
    with observe_events(client) as events:
        user_id, group_id = run_test_connection(client)
    assert_left_nothing(client, user_id, group_id)
    assert [e.kind for e in events] == [
        "user.created",
        "group.created",
        "user.deleted",
        "group.deleted",
    ]
    assert {e.adapter for e in events} == {"jumpcloud"}
    assert events[2].changes == {"tombstone": False}
    # Pressing Test Connection again works: the test user's userName is free.
    assert_left_nothing(client, *run_test_connection(client))


def test_test_connection_twice_with_tombstones(scim_client_factory: ScimClientFactory) -> None:
    client = scim_client_factory(adapter="jumpcloud", options={"delete_mode": "tombstone"})
    user_id, group_id = run_test_connection(client)
    assert_left_nothing(client, user_id, group_id)
    again_user, again_group = run_test_connection(client)
    assert again_user == user_id  # restored from its tombstone, not duplicated
    assert_left_nothing(client, again_user, again_group)


def members_of(client: ScimTestClient, group_id: str) -> set[str]:
    group = client.get(f"/scim/v2/Groups/{group_id}")
    assert group.status_code == 200, group.text
    return {m["value"] for m in group.json().get("members", [])}


def patch_group(client: ScimTestClient, group_id: str, *ops: dict[str, Any]) -> None:
    body = {"schemas": [PATCH_OP], "Operations": list(ops)}
    response = client.patch(f"/scim/v2/Groups/{group_id}", json=body)
    assert response.status_code == 204, response.text


def test_member_patch_with_a_value_list_removes_only_those_listed(
    scim_client_factory: ScimClientFactory,
) -> None:
    client = scim_client_factory(adapter="jumpcloud")
    ids = []
    for name in ("ada", "grace", "edsger"):
        user = client.post("/scim/v2/Users", json={"schemas": [USER], "userName": name})
        assert user.status_code == 201, user.text
        ids.append(user.json()["id"])
    group = client.post("/scim/v2/Groups", json={"schemas": [GROUP], "displayName": "Eng"})
    group_id = group.json()["id"]

    patch_group(
        client, group_id, {"op": "add", "path": "members", "value": [{"value": i} for i in ids]}
    )
    assert members_of(client, group_id) == set(ids)
    patch_group(client, group_id, {"op": "remove", "path": "members", "value": [{"value": ids[0]}]})
    assert members_of(client, group_id) == {ids[1], ids[2]}
    # The RFC's filtered form works through this adapter too.
    patch_group(client, group_id, {"op": "remove", "path": f'members[value eq "{ids[1]}"]'})
    assert members_of(client, group_id) == {ids[2]}
