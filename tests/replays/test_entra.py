"""Replays of Microsoft Entra ID's provisioning traffic against the ``entra`` adapter.

Every request is one Microsoft documents or one captured from Entra, sent over HTTP
with a key bound to the ``entra`` adapter, on each database backend. The bodies are
in ``entra/`` as published (ids Entra would know are swapped for the gateway's):

* [KNOWN] "Known issues and resolutions with SCIM 2.0 protocol compliance of the
  Microsoft Entra user provisioning service" (learn.microsoft.com/entra/identity/
  app-provisioning/application-provisioning-config-problem-scim-compatibility):
  ``disable_user_with{,out}_flag``, ``add_single_value_attribute_without_flag``,
  ``replace_multiple_attributes_with{,out}_flag``, ``remove_member_with{,out}_flag``.
* [TUTORIAL] "Tutorial: Develop and plan provisioning for a SCIM endpoint in
  Microsoft Entra ID" (…/use-scim-to-provision-users-and-groups): ``create_user``,
  ``provision_user_with_nulls`` (Example 2), ``update_user_multi_valued``,
  ``update_user_single_valued``, ``add_manager_as_reference_list`` (Example 5),
  ``create_group``, ``update_group_display_name``, ``add_members``,
  ``remove_members``; the Test Connection, matching and group queries.
* Captured from Entra: ``add_manager_as_string`` (Captain-P-Goldfish/SCIM-SDK#686).
* Built from those documents: ``create_user_active_as_string`` ("active": "True",
  AzureAD/SCIMReferenceCode#21), ``enable_user_without_flag`` (the mapping
  ``Switch([IsSoftDeleted], , "False", "True", "True", "False")`` sends "True" to
  reactivate), ``add_phone_and_work_address`` (the tutorial's
  attribute table: ``phoneNumbers[type eq "mobile"].value``,
  ``addresses[type eq "work"].postalCode``...), ``patch_with_stray_id_and_name``
  (an ``id`` in the body and a ``name`` in an operation, which Entra sometimes sends).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import Settings
from tests.conftest import ENTERPRISE, ERROR, GROUP_SCHEMA, LIST_RESPONSE, SCIM, USER_SCHEMA
from tests.support import provision

SAMPLES = Path(__file__).parent / "entra"
MICROSOFT_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def sample(name: str, ids: dict[str, str] | None = None) -> Any:
    """The body ``name`` as Entra sends it, with the ids in ``ids`` swapped in."""
    swap = ids or {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, str):
            for old, new in swap.items():
                node = node.replace(old, new)
        return node

    return walk(json.loads((SAMPLES / name).read_text(encoding="utf-8")))


def _client(settings: Settings, adapter: str) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", headers={"Content-Type": SCIM}) as c:
        slug = "team-" + uuid.uuid4().hex[:12]
        c.headers["Authorization"] = "Bearer " + provision(app.state.gateway, slug, adapter=adapter)
        yield c


@pytest.fixture
def entra(settings: Settings) -> Iterator[TestClient]:
    """Entra's provisioning service: a key bound to the ``entra`` adapter."""
    yield from _client(settings, "entra")


@pytest.fixture
def azure_ad(settings: Settings) -> Iterator[TestClient]:
    """A key bound to ``azure-ad``, the adapter's other name."""
    yield from _client(settings, "azure-ad")


@pytest.fixture
def generic(settings: Settings) -> Iterator[TestClient]:
    """A strict RFC 7644 client: a key bound to the ``generic`` adapter."""
    yield from _client(settings, "generic")


def users_where(client: TestClient, text: str, **params: Any) -> dict[str, Any]:
    response = client.get("/scim/v2/Users", params={"filter": text, **params})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def create(client: TestClient, kind: str, body: Any) -> dict[str, Any]:
    response = client.post(f"/scim/v2/{kind}", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def user(client: TestClient, user_name: str, **attrs: Any) -> dict[str, Any]:
    return create(client, "Users", {"schemas": [USER_SCHEMA], "userName": user_name, **attrs})


def group(client: TestClient, name: str, members: list[str]) -> dict[str, Any]:
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "members": [{"value": m} for m in members],
    }
    return create(client, "Groups", body)


def member_ids(client: TestClient, group_id: str) -> list[str]:
    response = client.get(f"/scim/v2/Groups/{group_id}")
    assert response.status_code == 200, response.text
    return sorted(m["value"] for m in response.json().get("members", []))


# --- pushing new users --------------------------------------------------------------


def test_test_connection_queries_a_random_guid_and_gets_an_empty_list(
    entra: TestClient,
) -> None:
    # "Test Connection queries the SCIM endpoint for a user that doesn't exist, using a
    # random GUID ... The expected correct response is HTTP 200 OK with an empty SCIM
    # ListResponse message." [TUTORIAL]
    user(entra, "someone@contoso.com")
    listed = users_where(entra, f'userName eq "{uuid.uuid4()}"')
    assert listed["schemas"] == [LIST_RESPONSE]
    assert listed["totalResults"] == 0
    assert listed["Resources"] == []


def test_a_new_user_is_matched_then_created(entra: TestClient) -> None:
    body = sample("create_user.json")
    matching = f'userName eq "{body["userName"]}"'
    assert users_where(entra, matching)["totalResults"] == 0

    created = create(entra, "Users", body)

    assert created["active"] is True
    assert created["emails"] == [
        {"value": body["emails"][0]["value"], "type": "work", "primary": True}
    ]
    assert created["name"]["givenName"] == "givenName"
    found = users_where(entra, matching)
    assert [r["id"] for r in found["Resources"]] == [created["id"]]


def test_active_sent_as_the_string_true_creates_an_active_user(entra: TestClient) -> None:
    created = create(entra, "Users", sample("create_user_active_as_string.json"))

    assert created["active"] is True
    assert entra.get(f"/scim/v2/Users/{created['id']}").json()["active"] is True
    # Stored as a boolean, so the standard filter finds the user.
    assert users_where(entra, "active eq true")["totalResults"] == 1


def test_active_sent_as_the_string_false_creates_an_inactive_user(entra: TestClient) -> None:
    body = sample("create_user_active_as_string.json")
    body["active"] = "false"
    created = create(entra, "Users", body)
    assert created["active"] is False


def test_a_user_provisioned_with_null_attributes_keeps_none_of_them(entra: TestClient) -> None:
    created = create(entra, "Users", sample("provision_user_with_nulls.json"))

    stored = entra.get(f"/scim/v2/Users/{created['id']}").json()
    for unassigned in ("addresses", "phoneNumbers", "preferredLanguage", "title"):
        assert unassigned not in stored
    # "department" and "manager" were sent at the top level, where no schema has them;
    # as nulls they are not kept as unknown attributes either.
    assert "department" not in stored
    assert "manager" not in stored
    assert stored["displayName"] == "Joy Young"


def test_users_are_matched_by_work_email(entra: TestClient) -> None:
    # [TUTORIAL] "/Users": with emails[type eq "work"] as a matching attribute, Entra
    # queries emails[type eq "work"].value eq "user@contoso.com".
    match = user(entra, "mpepperidge", emails=[{"type": "work", "value": "user@contoso.com"}])
    user(entra, "bjensen", emails=[{"type": "home", "value": "user@contoso.com"}])

    found = users_where(entra, 'emails[type eq "work"].value eq "user@contoso.com"')

    assert [r["id"] for r in found["Resources"]] == [match["id"]]
    none = users_where(entra, 'emails[type eq "work"].value eq "nobody@contoso.com"')
    assert none["totalResults"] == 0


def test_the_work_email_query_also_works_as_a_search_request(entra: TestClient) -> None:
    match = user(entra, "mpepperidge", emails=[{"type": "work", "value": "user@contoso.com"}])
    response = entra.post(
        "/scim/v2/Users/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'emails[type eq "work"].value eq "user@contoso.com"',
        },
    )
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()["Resources"]] == [match["id"]]


def test_the_unquoted_value_of_the_tutorials_query_is_tolerated(entra: TestClient) -> None:
    # [TUTORIAL] Example 1: GET /scim/Users?filter=externalId eq jyoung
    joy = create(entra, "Users", sample("provision_user_with_nulls.json"))
    user(entra, "someone-else", externalId="jyoung2")

    found = users_where(entra, "externalId eq jyoung")

    assert [r["id"] for r in found["Resources"]] == [joy["id"]]


# --- pushing profile updates --------------------------------------------------------


def test_capitalized_ops_update_a_user(entra: TestClient) -> None:
    created = create(entra, "Users", sample("create_user.json"))
    path = f"/scim/v2/Users/{created['id']}"

    multi = entra.patch(path, json=sample("update_user_multi_valued.json"))
    assert multi.status_code == 200, multi.text
    assert multi.json()["emails"] == [
        {"value": "updatedEmail@microsoft.com", "type": "work", "primary": True}
    ]
    assert multi.json()["name"]["familyName"] == "updatedFamilyName"

    single = entra.patch(path, json=sample("update_user_single_valued.json"))
    assert single.status_code == 200, single.text
    assert single.json()["userName"] == "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"

    nick = entra.patch(path, json=sample("add_single_value_attribute_without_flag.json"))
    assert nick.status_code == 200, nick.text
    assert entra.get(path).json()["nickName"] == "Babs"


def test_the_multi_op_profile_update_creates_the_missing_work_email(entra: TestClient) -> None:
    # The user has no email yet: Entra still replaces emails[type eq "work"].value.
    created = user(entra, "Test_User_00aa00aa", name={"givenName": "A", "familyName": "B"})
    path = f"/scim/v2/Users/{created['id']}"

    response = entra.patch(path, json=sample("replace_multiple_attributes_without_flag.json"))

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["displayName"] == "Pvlo"
    assert updated["emails"] == [{"type": "work", "value": "TestBcwqnm@test.microsoft.com"}]
    assert updated["name"] == {"givenName": "Gtfd", "familyName": "Pkqf"}
    assert updated["externalId"] == "Eqpj"
    assert updated[ENTERPRISE] == {"employeeNumber": "Eqpj"}
    assert entra.get(path).json()["emails"] == updated["emails"]


def test_the_flagged_profile_update_expands_dotted_keys(entra: TestClient) -> None:
    created = user(entra, "Test_User_00aa00aa", emails=[{"type": "work", "value": "a@b.c"}])
    path = f"/scim/v2/Users/{created['id']}"

    response = entra.patch(path, json=sample("replace_multiple_attributes_with_flag.json"))

    assert response.status_code == 200, response.text
    updated = entra.get(path).json()
    assert updated["displayName"] == "Bjfe"
    assert updated["name"] == {"givenName": "Kkom", "familyName": "Unua"}
    assert updated[ENTERPRISE] == {"employeeNumber": "Aklq"}
    # The existing work email is updated, not repeated.
    assert updated["emails"] == [{"type": "work", "value": "TestMhvaes@test.microsoft.com"}]
    assert "name.givenName" not in updated
    assert "name.familyName" not in updated


def test_phone_and_address_paths_create_the_typed_values(entra: TestClient) -> None:
    created = user(
        entra, "bjensen", addresses=[{"type": "home", "locality": "Redmond", "postalCode": "1"}]
    )
    path = f"/scim/v2/Users/{created['id']}"

    response = entra.patch(path, json=sample("add_phone_and_work_address.json"))

    assert response.status_code == 200, response.text
    stored = entra.get(path).json()
    assert stored["phoneNumbers"] == [{"type": "mobile", "value": "+1 425 555 0100"}]
    # One work address, with both sub-attributes: the second operation finds the
    # address the first one created.
    assert stored["addresses"] == [
        {"type": "home", "locality": "Redmond", "postalCode": "1"},
        {"type": "work", "streetAddress": "1 Microsoft Way", "postalCode": "98052"},
    ]


def test_clearing_a_typed_value_that_does_not_exist_changes_nothing(entra: TestClient) -> None:
    created = user(entra, "bjensen", emails=[{"type": "home", "value": "b@home"}])
    path = f"/scim/v2/Users/{created['id']}"
    op = {"op": "Replace", "path": 'emails[type eq "work"].value', "value": None}

    response = entra.patch(
        path,
        json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]},
    )

    assert response.status_code == 200, response.text
    assert entra.get(path).json()["emails"] == [{"type": "home", "value": "b@home"}]


def test_the_manager_sent_as_a_string_is_stored_and_returned_as_an_object(
    entra: TestClient,
) -> None:
    boss = user(entra, "boss")
    report = user(entra, "report")
    path = f"/scim/v2/Users/{report['id']}"
    body = sample(
        "add_manager_as_string.json", {"2c2f6fb8-254f-492e-b7fe-c09c5a61c8a2": boss["id"]}
    )

    response = entra.patch(path, json=body)

    assert response.status_code == 200, response.text
    assert response.json()[ENTERPRISE]["manager"]["value"] == boss["id"]
    assert entra.get(path).json()[ENTERPRISE]["manager"]["value"] == boss["id"]
    listed = users_where(entra, 'userName eq "report"')["Resources"][0]
    assert listed[ENTERPRISE]["manager"]["value"] == boss["id"]


def test_the_manager_path_of_example_5_sets_the_enterprise_manager(entra: TestClient) -> None:
    boss = user(entra, "boss")
    report = user(entra, "report")
    path = f"/scim/v2/Users/{report['id']}"
    body = sample(
        "add_manager_as_reference_list.json", {"00aa00aa-bb11-cc22-dd33-44ee44ee44ee": boss["id"]}
    )

    response = entra.patch(path, json=body)

    assert response.status_code == 200, response.text
    assert entra.get(path).json()[ENTERPRISE]["manager"]["value"] == boss["id"]


def test_a_manager_string_in_a_created_user_is_stored_as_an_object(entra: TestClient) -> None:
    # [TUTORIAL] schema example: "urn:...:enterprise:2.0:User": {"manager": "123456"}
    created = user(entra, "bjensen@testuser.com", **{ENTERPRISE: {"manager": "123456"}})
    assert created[ENTERPRISE]["manager"]["value"] == "123456"
    stored = entra.get(f"/scim/v2/Users/{created['id']}").json()
    assert stored[ENTERPRISE]["manager"] == {
        "value": "123456",
        "$ref": "http://testserver/scim/v2/Users/123456",
    }


def test_a_stray_id_and_operation_name_are_ignored(entra: TestClient) -> None:
    created = user(entra, "bjensen")
    path = f"/scim/v2/Users/{created['id']}"

    response = entra.patch(path, json=sample("patch_with_stray_id_and_name.json"))

    assert response.status_code == 200, response.text
    stored = entra.get(path).json()
    assert stored["displayName"] == "Pvlo"
    assert stored["id"] == created["id"]
    assert "name" not in stored


# --- deactivating, reactivating, deleting -------------------------------------------


def test_deactivate_with_the_string_false_then_reactivate(entra: TestClient) -> None:
    created = create(entra, "Users", sample("create_user.json"))
    path = f"/scim/v2/Users/{created['id']}"

    off = entra.patch(path, json=sample("disable_user_without_flag.json"))
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    assert entra.get(path).json()["active"] is False
    assert users_where(entra, "active eq false")["totalResults"] == 1

    on = entra.patch(path, json=sample("enable_user_without_flag.json"))
    assert on.status_code == 200, on.text
    assert entra.get(path).json()["active"] is True

    flagged = entra.patch(path, json=sample("disable_user_with_flag.json"))
    assert flagged.status_code == 200, flagged.text
    assert entra.get(path).json()["active"] is False


def test_active_as_a_string_in_a_value_without_a_path(entra: TestClient) -> None:
    created = user(entra, "bjensen")
    path = f"/scim/v2/Users/{created['id']}"
    op = {"op": "Replace", "value": {"active": "FALSE", "displayName": "Babs"}}

    response = entra.patch(
        path,
        json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]},
    )

    assert response.status_code == 200, response.text
    stored = entra.get(path).json()
    assert stored["active"] is False
    assert stored["displayName"] == "Babs"


def test_a_disabled_user_is_still_returned_with_its_groups(entra: TestClient) -> None:
    # [TUTORIAL] "The user object should be returned in a request whether or not the
    # user is active"; [HOW] reactivation "doesn't automatically restore the dynamic
    # membership group": memberships must survive the inactive period.
    created = create(entra, "Users", sample("create_user.json"))
    team = group(entra, "Engineering", [created["id"]])
    path = f"/scim/v2/Users/{created['id']}"

    assert entra.patch(path, json=sample("disable_user_without_flag.json")).status_code == 200

    disabled = entra.get(path)
    assert disabled.status_code == 200
    assert disabled.json()["active"] is False
    assert [g["value"] for g in disabled.json()["groups"]] == [team["id"]]
    assert member_ids(entra, team["id"]) == [created["id"]]
    matching = users_where(entra, f'userName eq "{created["userName"]}"')
    assert [r["id"] for r in matching["Resources"]] == [created["id"]]

    assert entra.patch(path, json=sample("enable_user_without_flag.json")).status_code == 200
    assert [g["value"] for g in entra.get(path).json()["groups"]] == [team["id"]]


def test_soft_delete_then_hard_delete(entra: TestClient) -> None:
    created = create(entra, "Users", sample("create_user.json"))
    team = group(entra, "Engineering", [created["id"]])
    path = f"/scim/v2/Users/{created['id']}"

    assert entra.patch(path, json=sample("disable_user_without_flag.json")).status_code == 200
    assert entra.get(path).status_code == 200

    deleted = entra.delete(path)
    assert deleted.status_code == 204
    assert deleted.content == b""
    gone = entra.get(path)
    assert gone.status_code == 404
    assert gone.json()["schemas"] == [ERROR]
    assert users_where(entra, f'userName eq "{created["userName"]}"')["totalResults"] == 0
    assert member_ids(entra, team["id"]) == []
    assert entra.delete(path).status_code == 404


# --- importing users page by page ---------------------------------------------------


def test_users_are_imported_page_by_page(entra: TestClient) -> None:
    ids = {user(entra, f"user{i}@contoso.com")["id"] for i in range(5)}
    entra.patch(f"/scim/v2/Users/{next(iter(ids))}", json=sample("disable_user_without_flag.json"))

    seen: list[str] = []
    start = 1
    while True:
        page = entra.get("/scim/v2/Users", params={"startIndex": start, "count": 2}).json()
        assert page["totalResults"] == 5
        assert page["startIndex"] == start
        seen += [r["id"] for r in page["Resources"]]
        if not page["Resources"]:
            break
        start += page["itemsPerPage"]

    assert sorted(seen) == sorted(ids)
    assert len(seen) == 5


# --- pushing groups and their members -----------------------------------------------


def test_a_group_is_created_with_the_microsoft_schema_urn(entra: TestClient) -> None:
    body = sample("create_group.json")
    assert MICROSOFT_GROUP_SCHEMA in body["schemas"]

    response = entra.post("/scim/v2/Groups", json=body)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["members"] == []
    assert created["schemas"] == [GROUP_SCHEMA]
    assert created["externalId"] == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"
    assert created["meta"]["resourceType"] == "Group"
    assert "created" in created["meta"]
    stored = entra.get(f"/scim/v2/Groups/{created['id']}").json()
    assert stored["schemas"] == [GROUP_SCHEMA]
    assert MICROSOFT_GROUP_SCHEMA not in stored


def test_group_reads_exclude_members_and_patches_answer_204(entra: TestClient) -> None:
    member = user(entra, "bjensen")
    created = create(entra, "Groups", sample("create_group.json"))
    path = f"/scim/v2/Groups/{created['id']}"
    add = sample("add_members.json", {"f648f8d5ea4e4cd38e9c": member["id"]})
    assert entra.patch(path, json=add).status_code == 204

    one = entra.get(path, params={"excludedAttributes": "members"})
    assert one.status_code == 200
    assert "members" not in one.json()
    assert one.json()["displayName"] == "displayName"

    by_name = entra.get(
        "/scim/v2/Groups",
        params={"excludedAttributes": "members", "filter": 'displayName eq "displayName"'},
    ).json()
    assert [r["id"] for r in by_name["Resources"]] == [created["id"]]
    assert "members" not in by_name["Resources"][0]

    renamed = entra.patch(path, json=sample("update_group_display_name.json"))
    assert renamed.status_code == 204
    assert renamed.content == b""
    assert entra.get(path).json()["displayName"] == (
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    )
    assert member_ids(entra, created["id"]) == [member["id"]]


def test_members_are_added_with_a_null_ref_and_removed_by_value(entra: TestClient) -> None:
    alice, bob, carol = (user(entra, name)["id"] for name in ("alice", "bob", "carol"))
    created = create(entra, "Groups", sample("create_group.json"))
    path = f"/scim/v2/Groups/{created['id']}"

    for member in (alice, bob, carol):
        add = sample("add_members.json", {"f648f8d5ea4e4cd38e9c": member})
        response = entra.patch(path, json=add)
        assert response.status_code == 204, response.text
    assert member_ids(entra, created["id"]) == sorted([alice, bob, carol])

    # Without the flag: the member to remove is listed in the value; the others stay.
    remove = sample("remove_member_without_flag.json", {"u1091": bob})
    assert entra.patch(path, json=remove).status_code == 204
    assert member_ids(entra, created["id"]) == sorted([alice, carol])

    # The tutorial's form of the same, with "$ref": null.
    remove = sample("remove_members.json", {"f648f8d5ea4e4cd38e9c": carol})
    assert entra.patch(path, json=remove).status_code == 204
    assert member_ids(entra, created["id"]) == [alice]


def test_a_member_is_removed_by_filter_and_a_valueless_remove_empties(
    entra: TestClient,
) -> None:
    alice, bob, carol = (user(entra, name)["id"] for name in ("alice", "bob", "carol"))
    created = group(entra, "Engineering", [alice, bob, carol])
    path = f"/scim/v2/Groups/{created['id']}"

    remove = sample("remove_member_with_flag.json", {"7f4bc1a3-285e-48ae-8202-5accb43efb0e": alice})
    assert entra.patch(path, json=remove).status_code == 204
    assert member_ids(entra, created["id"]) == sorted([bob, carol])

    everyone = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Remove", "path": "members"}],
    }
    assert entra.patch(path, json=everyone).status_code == 204
    assert member_ids(entra, created["id"]) == []
    # The users themselves stay.
    assert entra.get(f"/scim/v2/Users/{alice}").status_code == 200


# --- the other name -------------------------------------------------------------------


def test_the_azure_ad_name_selects_the_same_adapter(azure_ad: TestClient) -> None:
    created = create(azure_ad, "Users", sample("create_user_active_as_string.json"))
    path = f"/scim/v2/Users/{created['id']}"
    assert created["active"] is True

    off = azure_ad.patch(path, json=sample("disable_user_without_flag.json"))

    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    found = users_where(
        azure_ad, f'emails[type eq "work"].value eq "{created["emails"][0]["value"]}"'
    )
    assert [r["id"] for r in found["Resources"]] == [created["id"]]


# --- the core stays standard -----------------------------------------------------------


def test_generic_rejects_a_boolean_sent_as_a_string(generic: TestClient) -> None:
    created = user(generic, "bjensen")

    response = generic.patch(
        f"/scim/v2/Users/{created['id']}", json=sample("disable_user_without_flag.json")
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert generic.get(f"/scim/v2/Users/{created['id']}").json()["active"] is True
    posted = generic.post("/scim/v2/Users", json=sample("create_user_active_as_string.json"))
    assert posted.status_code == 400
    assert posted.json()["scimType"] == "invalidValue"


def test_generic_does_not_expand_dotted_keys(generic: TestClient) -> None:
    created = user(
        generic,
        "bjensen",
        name={"givenName": "Barbara", "familyName": "Jensen"},
        emails=[{"type": "work", "value": "a@b.c"}],
    )
    path = f"/scim/v2/Users/{created['id']}"

    response = generic.patch(path, json=sample("replace_multiple_attributes_with_flag.json"))

    assert response.status_code == 200, response.text
    assert generic.get(path).json()["name"] == {"givenName": "Barbara", "familyName": "Jensen"}


def test_generic_keeps_no_target_for_a_missing_work_email(generic: TestClient) -> None:
    created = user(generic, "bjensen")

    response = generic.patch(
        f"/scim/v2/Users/{created['id']}", json=sample("update_user_multi_valued.json")
    )

    assert response.status_code == 400
    assert response.json()["scimType"] == "noTarget"


def test_generic_rejects_the_sub_attribute_filter(generic: TestClient) -> None:
    response = generic.get(
        "/scim/v2/Users",
        params={"filter": 'emails[type eq "work"].value eq "user@contoso.com"'},
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"
    unquoted = generic.get("/scim/v2/Users", params={"filter": "externalId eq jyoung"})
    assert unquoted.status_code == 400
    assert unquoted.json()["scimType"] == "invalidFilter"
