"""Tests for the PATCH engine in :mod:`gateway.scim.patch` (RFC 7644 §3.5.2)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.scim.errors import (
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    PayloadTooLarge,
    ScimError,
)
from gateway.scim.filter import AttrPath, Compare, PatchPath
from gateway.scim.patch import (
    MemberChange,
    PatchOperation,
    apply_patch,
    parse_patch_request,
    split_member_operations,
)
from gateway.scim.schemas import (
    ENTERPRISE_USER_SCHEMA,
    GROUP,
    GROUP_SCHEMA,
    PATCH_OP,
    USER,
    USER_SCHEMA,
    ResourceType,
)

BABS_ID = "2819c223-7f76-453a-919d-413861904646"
JAMES_ID = "08e1d05d-121c-4561-8b96-473d93df9210"
BABS = {
    "display": "Babs Jensen",
    "$ref": f"https://example.com/v2/Users/{BABS_ID}",
    "value": BABS_ID,
}
JAMES = {
    "display": "James Smith",
    "$ref": f"https://example.com/v2/Users/{JAMES_ID}",
    "value": JAMES_ID,
}
ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"


def request(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def patch(
    resource: dict[str, Any], *operations: dict[str, Any], rt: ResourceType = USER
) -> dict[str, Any]:
    return apply_patch(resource, parse_patch_request(request(*operations)), rt)


@pytest.fixture
def user() -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
        "id": "2819c223",
        "externalId": "701984",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        "addresses": [
            {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood"},
            {"type": "home", "streetAddress": "456 Hollywood Blvd"},
        ],
        "active": True,
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "701984", "manager": {"value": "26118915"}},
        "meta": {"resourceType": "User", "version": 'W/"1"'},
    }


@pytest.fixture
def group() -> dict[str, Any]:
    return {
        "schemas": [GROUP_SCHEMA],
        "id": "acbf3ae7-8463-4692-b4fd-9b4da3f908ce",
        "displayName": "Tour Guides",
        "members": [copy.deepcopy(BABS), copy.deepcopy(JAMES)],
        "meta": {"resourceType": "Group"},
    }


def values(items: list[dict[str, Any]]) -> list[str]:
    return [item["value"] for item in items]


# --- parse_patch_request ----------------------------------------------------------------


class TestParse:
    def test_parses_operations(self) -> None:
        ops = parse_patch_request(
            request(
                {"op": "add", "path": "members", "value": [BABS]},
                {"op": "remove", "path": f'members[value eq "{BABS_ID}"]'},
                {"op": "replace", "value": {"displayName": "Guides"}},
            )
        )
        assert [op.op for op in ops] == ["add", "remove", "replace"]
        assert ops[0].path == PatchPath(AttrPath(None, "members"))
        assert ops[0].value == [BABS]
        assert ops[0].raw_path == "members"
        assert ops[1].path == PatchPath(
            AttrPath(None, "members"), Compare(AttrPath(None, "value"), "eq", BABS_ID)
        )
        assert ops[1].value is None
        assert ops[2].path is None and ops[2].raw_path is None

    @pytest.mark.parametrize("name", ["Add", "ADD", "Replace", "REPLACE", "Remove", "rEmOvE"])
    def test_op_name_is_case_insensitive(self, name: str) -> None:
        [op] = parse_patch_request(request({"op": name, "path": "nickName", "value": "Babs"}))
        assert op.op == name.lower()

    def test_member_names_are_case_insensitive(self) -> None:
        body = {
            "SCHEMAS": [PATCH_OP.upper()],
            "operations": [{"OP": "add", "Path": "nickName", "VALUE": "Babs"}],
        }
        [op] = parse_patch_request(body)
        assert (op.op, op.raw_path, op.value) == ("add", "nickName", "Babs")

    @pytest.mark.parametrize(
        "body",
        [
            None,
            [],
            "add",
            {"Operations": [{"op": "add", "value": {}}]},
            {"schemas": [USER_SCHEMA], "Operations": [{"op": "add", "value": {}}]},
            {"schemas": PATCH_OP, "Operations": [{"op": "add", "value": {}}]},
            {"schemas": [PATCH_OP]},
            {"schemas": [PATCH_OP], "Operations": []},
            {"schemas": [PATCH_OP], "Operations": {"op": "add", "value": {}}},
            {"schemas": [PATCH_OP], "Operations": ["add"]},
        ],
    )
    def test_malformed_request_is_invalid_syntax(self, body: Any) -> None:
        with pytest.raises(InvalidSyntax):
            parse_patch_request(body)

    @pytest.mark.parametrize("name", ["copy", "move", "test", "", None, 1, "add "])
    def test_unknown_op_is_invalid_syntax(self, name: Any) -> None:
        with pytest.raises(InvalidSyntax, match="Operation 1"):
            parse_patch_request(request({"op": name, "path": "nickName", "value": "x"}))

    def test_missing_op_is_invalid_syntax(self) -> None:
        with pytest.raises(InvalidSyntax):
            parse_patch_request(request({"path": "nickName", "value": "x"}))

    def test_too_many_operations(self) -> None:
        ops = [{"op": "add", "path": "nickName", "value": str(i)} for i in range(3)]
        assert len(parse_patch_request(request(*ops), max_operations=3)) == 3
        with pytest.raises(PayloadTooLarge):
            parse_patch_request(request(*ops), max_operations=2)

    def test_remove_without_path_is_no_target(self) -> None:
        # RFC 7644 §3.5.2.2: "If 'path' is unspecified, the operation fails with HTTP
        # status code 400 and a 'scimType' error code of 'noTarget'."
        with pytest.raises(NoTarget) as info:
            parse_patch_request(request({"op": "remove"}))
        assert info.value.to_dict()["scimType"] == "noTarget"

    @pytest.mark.parametrize("op", ["add", "replace"])
    def test_add_or_replace_without_value_is_invalid_value(self, op: str) -> None:
        with pytest.raises(InvalidValue, match="Operation 2 has no value"):
            parse_patch_request(
                request(
                    {"op": "add", "path": "nickName", "value": "x"}, {"op": op, "path": "title"}
                )
            )

    def test_explicit_null_value_is_kept(self) -> None:
        [op] = parse_patch_request(request({"op": "replace", "path": "title", "value": None}))
        assert op.value is None

    @pytest.mark.parametrize(
        "path", ["emails[type eq]", 'emails[type eq "work"', "name..givenName", "a b", 5]
    )
    def test_bad_path_is_invalid_path(self, path: Any) -> None:
        with pytest.raises(InvalidPath):
            parse_patch_request(request({"op": "remove", "path": path}))

    def test_operation_must_be_an_object(self) -> None:
        with pytest.raises(InvalidSyntax):
            parse_patch_request(request("add"))  # type: ignore[arg-type]


# --- apply_patch: add (RFC 7644 §3.5.2.1) ----------------------------------------------


class TestAdd:
    def test_rfc_add_member_to_group(self, group: dict[str, Any]) -> None:
        group["members"] = [copy.deepcopy(JAMES)]
        out = patch(group, {"op": "add", "path": "members", "value": [BABS]}, rt=GROUP)
        assert values(out["members"]) == [JAMES_ID, BABS_ID]
        added = out["members"][1]
        assert added["$ref"] == BABS["$ref"]

    def test_rfc_add_without_path(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {
                "op": "add",
                "value": {
                    "emails": [{"value": "babs@jensen.org", "type": "home"}],
                    "nickname": "Babs",
                },
            },
        )
        # The e-mail is already there: it is not added twice.
        assert out["emails"] == user["emails"]
        # "nickname" maps to the canonical "nickName".
        assert out["nickName"] == "Babs"
        assert "nickname" not in out

    def test_add_appends_to_multi_valued(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {"op": "add", "path": "emails", "value": [{"value": "b@x.org", "type": "other"}]},
            {"op": "add", "path": "ims", "value": {"value": "babs", "type": "xmpp"}},
        )
        assert values(out["emails"]) == ["bjensen@example.com", "babs@jensen.org", "b@x.org"]
        assert out["ims"] == [{"value": "babs", "type": "xmpp"}]

    def test_add_identical_value_is_not_duplicated(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {
                "op": "add",
                "path": "emails",
                "value": [{"value": "BJENSEN@example.com", "type": "work"}],
            },
        )
        assert out["emails"] == user["emails"]

    def test_add_to_single_valued_replaces(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "add", "path": "userName", "value": "babs"})
        assert out["userName"] == "babs"

    def test_add_to_complex_merges_sub_attributes(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {"op": "add", "path": "name", "value": {"middleName": "Jane", "GIVENNAME": "Babs"}},
        )
        assert out["name"] == {"givenName": "Babs", "familyName": "Jensen", "middleName": "Jane"}

    def test_add_sub_attribute_creates_the_complex_attribute(self, user: dict[str, Any]) -> None:
        del user["name"]
        out = patch(user, {"op": "add", "path": "name.givenName", "value": "Barbara"})
        assert out["name"] == {"givenName": "Barbara"}

    def test_add_sub_attribute_with_filter_sets_every_match(self, user: dict[str, Any]) -> None:
        user["emails"].append({"value": "bj@example.com", "type": "work"})
        out = patch(user, {"op": "add", "path": 'emails[type eq "work"].display', "value": "Work"})
        assert [e.get("display") for e in out["emails"]] == ["Work", None, "Work"]

    def test_add_with_filter_that_matches_nothing_is_no_target(self, user: dict[str, Any]) -> None:
        with pytest.raises(NoTarget):
            patch(user, {"op": "add", "path": 'emails[type eq "other"].display', "value": "x"})

    def test_add_null_adds_nothing(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "add", "path": "title", "value": None})
        assert "title" not in out

    def test_add_immutable_when_absent_then_not_changed(self, group: dict[str, Any]) -> None:
        group["members"] = [{"value": BABS_ID}]
        out = patch(
            group,
            {"op": "add", "path": f'members[value eq "{BABS_ID}"].type', "value": "User"},
            rt=GROUP,
        )
        assert out["members"] == [{"value": BABS_ID, "type": "User"}]
        with pytest.raises(Mutability):
            patch(
                out,
                {"op": "add", "path": f'members[value eq "{BABS_ID}"].type', "value": "Group"},
                rt=GROUP,
            )


# --- apply_patch: remove (RFC 7644 §3.5.2.2) ---------------------------------------------


class TestRemove:
    def test_rfc_remove_single_member(self, group: dict[str, Any]) -> None:
        out = patch(group, {"op": "remove", "path": f'members[value eq "{BABS_ID}"]'}, rt=GROUP)
        assert values(out["members"]) == [JAMES_ID]

    def test_rfc_remove_all_members(self, group: dict[str, Any]) -> None:
        out = patch(group, {"op": "remove", "path": "members"}, rt=GROUP)
        assert "members" not in out

    def test_rfc_remove_by_complex_filter(self, user: dict[str, Any]) -> None:
        out = patch(
            user, {"op": "remove", "path": 'emails[type eq "work" and value ew "example.com"]'}
        )
        assert values(out["emails"]) == ["babs@jensen.org"]

    def test_rfc_remove_and_add_members(self, group: dict[str, Any]) -> None:
        group["members"] = [{"value": "someone-else"}]
        out = patch(
            group,
            {"op": "remove", "path": "members"},
            {"op": "add", "path": "members", "value": [BABS, JAMES]},
            rt=GROUP,
        )
        assert values(out["members"]) == [BABS_ID, JAMES_ID]

    def test_remove_by_value_list(self, group: dict[str, Any]) -> None:
        out = patch(
            group, {"op": "remove", "path": "members", "value": [{"value": BABS_ID}]}, rt=GROUP
        )
        assert values(out["members"]) == [JAMES_ID]

    def test_remove_last_value_unassigns(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {"op": "remove", "path": 'emails[type eq "work"]'},
            {"op": "remove", "path": 'emails[type eq "home"]'},
        )
        assert "emails" not in out

    def test_remove_with_filter_that_matches_nothing_changes_nothing(
        self, user: dict[str, Any]
    ) -> None:
        # §3.5.2.2 names noTarget only for a missing path; an idempotent remove succeeds.
        out = patch(user, {"op": "remove", "path": 'emails[type eq "other"]'})
        assert out == user

    def test_remove_sub_attribute(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "remove", "path": "name.givenName"})
        assert out["name"] == {"familyName": "Jensen"}
        out = patch(out, {"op": "remove", "path": "name.familyName"})
        assert "name" not in out

    def test_remove_sub_attribute_of_matching_values(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "remove", "path": 'emails[type eq "work"].primary'})
        assert out["emails"][0] == {"value": "bjensen@example.com", "type": "work"}

    def test_remove_single_valued(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "remove", "path": "externalId"}, {"op": "remove", "path": "name"})
        assert "externalId" not in out and "name" not in out

    def test_remove_absent_attribute_is_a_no_op(self, user: dict[str, Any]) -> None:
        assert patch(user, {"op": "remove", "path": "title"}) == user

    @pytest.mark.parametrize(
        ("path", "rt"),
        [("userName", USER), ("USERNAME", USER), (f"{USER_SCHEMA}:userName", USER)],
    )
    def test_remove_required_is_mutability(
        self, user: dict[str, Any], path: str, rt: ResourceType
    ) -> None:
        with pytest.raises(Mutability):
            patch(user, {"op": "remove", "path": path}, rt=rt)

    def test_remove_group_display_name_is_mutability(self, group: dict[str, Any]) -> None:
        with pytest.raises(Mutability):
            patch(group, {"op": "remove", "path": "displayName"}, rt=GROUP)

    def test_replace_required_with_null_is_mutability(self, user: dict[str, Any]) -> None:
        with pytest.raises(Mutability):
            patch(user, {"op": "replace", "path": "userName", "value": None})

    def test_remove_immutable_with_value_is_mutability(self, group: dict[str, Any]) -> None:
        with pytest.raises(Mutability):
            patch(group, {"op": "remove", "path": f'members[value eq "{BABS_ID}"].value'}, rt=GROUP)


# --- apply_patch: replace (RFC 7644 §3.5.2.3) ---------------------------------------------


class TestReplace:
    def test_rfc_replace_members(self, group: dict[str, Any]) -> None:
        group["members"] = [{"value": "someone-else"}]
        out = patch(group, {"op": "replace", "path": "members", "value": [BABS, JAMES]}, rt=GROUP)
        assert values(out["members"]) == [BABS_ID, JAMES_ID]

    def test_rfc_replace_work_address(self, user: dict[str, Any]) -> None:
        new = {
            "type": "work",
            "streetAddress": "911 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "US",
            "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
            "primary": True,
        }
        out = patch(user, {"op": "replace", "path": 'addresses[type eq "work"]', "value": new})
        assert out["addresses"] == [new, user["addresses"][1]]

    def test_rfc_replace_street_address(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {
                "op": "replace",
                "path": 'addresses[type eq "work"].streetAddress',
                "value": "1010 Broadway Ave",
            },
        )
        assert out["addresses"][0] == {
            "type": "work",
            "streetAddress": "1010 Broadway Ave",
            "locality": "Hollywood",
        }
        assert out["addresses"][1] == user["addresses"][1]

    def test_rfc_replace_without_path(self, user: dict[str, Any]) -> None:
        emails = [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ]
        user["emails"] = [{"value": "old@example.com", "type": "other"}]
        out = patch(user, {"op": "replace", "value": {"emails": emails, "nickname": "Babs"}})
        assert out["emails"] == emails
        assert out["nickName"] == "Babs"

    def test_replace_email_value_element(self, user: dict[str, Any]) -> None:
        new = {"value": "babs@example.com", "type": "work", "primary": True}
        out = patch(user, {"op": "replace", "path": 'emails[type eq "work"]', "value": new})
        assert out["emails"] == [new, user["emails"][1]]

    def test_replace_email_sub_attribute(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "babs@example.com"},
        )
        # The sub-attribute keeps its place in the value.
        assert out["emails"][0] == {"value": "babs@example.com", "type": "work", "primary": True}

    def test_replace_family_name_by_path(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "replace", "path": "name.familyName", "value": "Jensen-Smith"})
        assert out["name"] == {"givenName": "Barbara", "familyName": "Jensen-Smith"}

    def test_replace_complex_keeps_unmentioned_sub_attributes(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "replace", "value": {"name": {"familyName": "Smith"}}})
        assert out["name"] == {"givenName": "Barbara", "familyName": "Smith"}

    def test_replace_complex_sub_attribute_with_null_unassigns_it(
        self, user: dict[str, Any]
    ) -> None:
        out = patch(user, {"op": "replace", "path": "name", "value": {"givenName": None}})
        assert out["name"] == {"familyName": "Jensen"}

    def test_replace_missing_attribute_adds_it(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "replace", "path": "title", "value": "Tour Guide"})
        assert out["title"] == "Tour Guide"

    def test_replace_multi_valued_with_empty_list_clears(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "replace", "path": "emails", "value": []})
        assert "emails" not in out

    def test_replace_with_null_unassigns(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "replace", "path": "externalId", "value": None})
        assert "externalId" not in out

    def test_replace_with_filter_that_matches_nothing_is_no_target(
        self, user: dict[str, Any]
    ) -> None:
        for path in ('emails[type eq "other"]', 'emails[type eq "other"].value', "ims[value pr]"):
            with pytest.raises(NoTarget):
                patch(user, {"op": "replace", "path": path, "value": {"value": "x"}})

    def test_replace_single_object_for_multi_valued_is_wrapped(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "replace", "path": "emails", "value": {"value": "a@b.c"}})
        assert out["emails"] == [{"value": "a@b.c"}]

    def test_replace_immutable_member_value_is_mutability(self, group: dict[str, Any]) -> None:
        with pytest.raises(Mutability):
            patch(
                group,
                {"op": "replace", "path": f'members[value eq "{BABS_ID}"].value', "value": "x"},
                rt=GROUP,
            )


# --- paths, case and unknown attributes ------------------------------------------------


class TestPaths:
    def test_paths_are_case_insensitive(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {"op": "replace", "path": 'EMAILS[TYPE eq "WORK"].VALUE', "value": "b@x.org"},
            {"op": "replace", "path": "Name.GivenName", "value": "Babs"},
            {"op": "add", "path": "NICKNAME", "value": "Babs"},
        )
        assert out["emails"][0]["value"] == "b@x.org"
        assert out["name"]["givenName"] == "Babs"
        assert out["nickName"] == "Babs"
        assert "NICKNAME" not in out

    def test_unknown_attribute_path_is_invalid_path(self, user: dict[str, Any]) -> None:
        for path in ("nosuchattr", "name.nosuch", f"{ENTERPRISE_USER_SCHEMA}:nosuch"):
            with pytest.raises(InvalidPath):
                patch(user, {"op": "add", "path": path, "value": "x"})

    def test_filter_on_single_valued_is_invalid_path(self, user: dict[str, Any]) -> None:
        with pytest.raises(InvalidPath):
            patch(user, {"op": "replace", "path": 'name[givenName eq "x"]', "value": {}})

    def test_enterprise_attribute_by_urn_path(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {"op": "replace", "path": f"{ENTERPRISE_USER_SCHEMA}:department", "value": "Tours"},
            {"op": "add", "path": f"{ENTERPRISE_USER_SCHEMA}:manager.value", "value": "42"},
        )
        assert out[ENTERPRISE_USER_SCHEMA] == {
            "employeeNumber": "701984",
            "manager": {"value": "42"},
            "department": "Tours",
        }

    def test_extension_urn_as_path(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {
                "op": "add",
                "path": ENTERPRISE_USER_SCHEMA,
                "value": {"costCenter": "4130", "Manager": {"value": "7"}},
            },
        )
        assert out[ENTERPRISE_USER_SCHEMA] == {
            "employeeNumber": "701984",
            "manager": {"value": "7"},
            "costCenter": "4130",
        }

    def test_extension_is_added_to_schemas(self, user: dict[str, Any]) -> None:
        del user[ENTERPRISE_USER_SCHEMA]
        user["schemas"] = [USER_SCHEMA]
        out = patch(
            user,
            {"op": "add", "value": {f"{ENTERPRISE_USER_SCHEMA}:employeeNumber": "1"}},
        )
        assert out["schemas"] == [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]
        assert out[ENTERPRISE_USER_SCHEMA] == {"employeeNumber": "1"}

    def test_emptied_extension_leaves_schemas(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {"op": "remove", "path": f"{ENTERPRISE_USER_SCHEMA}:employeeNumber"},
            {"op": "remove", "path": f"{ENTERPRISE_USER_SCHEMA}:manager"},
        )
        assert ENTERPRISE_USER_SCHEMA not in out
        assert out["schemas"] == [USER_SCHEMA]

    def test_remove_whole_extension(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "remove", "path": ENTERPRISE_USER_SCHEMA})
        assert ENTERPRISE_USER_SCHEMA not in out
        assert out["schemas"] == [USER_SCHEMA]

    def test_pathless_value_with_extension_object(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {
                "op": "replace",
                "value": {
                    ENTERPRISE_USER_SCHEMA.upper(): {"division": "West"},
                    f"{ENTERPRISE_USER_SCHEMA}:manager": {"value": "9"},
                },
            },
        )
        assert out[ENTERPRISE_USER_SCHEMA] == {
            "employeeNumber": "701984",
            "manager": {"value": "9"},
            "division": "West",
        }

    def test_pathless_value_with_urn_qualified_names(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {
                "op": "add",
                "value": {
                    f"{USER_SCHEMA}:nickName": "Babs",
                    USER_SCHEMA: {"title": "Guide"},
                    f"{ENTERPRISE_USER_SCHEMA}:costCenter": "4130",
                },
            },
        )
        assert (out["nickName"], out["title"]) == ("Babs", "Guide")
        assert out[ENTERPRISE_USER_SCHEMA]["costCenter"] == "4130"
        assert USER_SCHEMA not in out and f"{USER_SCHEMA}:nickName" not in out

    def test_sub_attribute_of_multi_valued_without_filter_means_every_value(
        self, user: dict[str, Any]
    ) -> None:
        out = patch(user, {"op": "remove", "path": "emails.primary"})
        assert all("primary" not in e for e in out["emails"])

    def test_custom_extension_path_is_kept(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {"op": "add", "path": f"{ACME}:costCode", "value": "CC-7"},
            {"op": "add", "path": f"{ACME}:badge.color", "value": "blue"},
        )
        assert out[ACME] == {"costCode": "CC-7", "badge": {"color": "blue"}}
        assert out["schemas"] == [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, ACME]
        out = patch(
            out,
            {"op": "remove", "path": f"{ACME}:costCode"},
            {"op": "remove", "path": f"{ACME}:badge"},
        )
        assert ACME not in out
        assert out["schemas"] == [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]

    def test_custom_extension_urn_as_path(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "add", "path": ACME, "value": {"costCode": "CC-1"}})
        assert out[ACME] == {"costCode": "CC-1"}
        out = patch(out, {"op": "replace", "path": ACME, "value": {"site": "LA"}})
        assert out[ACME] == {"costCode": "CC-1", "site": "LA"}
        out = patch(out, {"op": "remove", "path": ACME})
        assert ACME not in out and ACME not in out["schemas"]

    def test_unknown_attribute_in_pathless_value_is_kept(self, user: dict[str, Any]) -> None:
        out = patch(user, {"op": "add", "value": {"favouriteColour": "teal", ACME: {"a": 1}}})
        assert out["favouriteColour"] == "teal"
        assert out[ACME] == {"a": 1}
        assert ACME in out["schemas"]

    def test_password_is_ignored(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {"op": "replace", "path": "password", "value": "t1meMa$heen"},
            {"op": "replace", "value": {"password": "t1meMa$heen"}},
        )
        assert out == user


# --- mutability and types -----------------------------------------------------------------


class TestChecks:
    @pytest.mark.parametrize(
        ("op", "path"),
        [
            ("replace", "id"),
            ("remove", "id"),
            ("replace", "meta"),
            ("remove", "meta.version"),
            ("add", "groups"),
            ("remove", "groups"),
            ("replace", f"{ENTERPRISE_USER_SCHEMA}:manager.displayName"),
        ],
    )
    def test_read_only_target_is_mutability(self, user: dict[str, Any], op: str, path: str) -> None:
        operation: dict[str, Any] = {"op": op, "path": path}
        if op != "remove":
            operation["value"] = [{"value": "x"}] if path == "groups" else "x"
        with pytest.raises(Mutability):
            patch(user, operation)

    def test_member_display_is_read_only(self, group: dict[str, Any]) -> None:
        with pytest.raises(Mutability):
            patch(
                group,
                {"op": "replace", "path": f'members[value eq "{BABS_ID}"].display', "value": "B"},
                rt=GROUP,
            )

    def test_pathless_echo_of_read_only_attributes_is_ignored(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {
                "op": "replace",
                "value": {
                    "schemas": [USER_SCHEMA],
                    "id": "other",
                    "meta": {"version": 'W/"9"'},
                    "groups": [{"value": "g1"}],
                    "displayName": "Babs",
                },
            },
        )
        assert out == {**user, "displayName": "Babs"}

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            ("active", "False"),
            ("active", 1),
            ("userName", 5),
            ("userName", ["bjensen"]),
            ("name", "Barbara Jensen"),
            ("name.givenName", True),
            ("emails", ["b@x.org"]),
            ("emails", [None]),
            ('emails[type eq "work"].primary', "true"),
            ('emails[type eq "work"]', "b@x.org"),
            (f"{ENTERPRISE_USER_SCHEMA}:manager", "26118915"),
            ("externalId", 701984),
        ],
    )
    def test_wrong_type_is_invalid_value(self, user: dict[str, Any], path: str, value: Any) -> None:
        with pytest.raises(InvalidValue):
            patch(user, {"op": "replace", "path": path, "value": value})

    @pytest.mark.parametrize("value", ["x", ["x"], 1, True])
    def test_pathless_value_must_be_an_object(self, user: dict[str, Any], value: Any) -> None:
        with pytest.raises(InvalidValue):
            patch(user, {"op": "add", "value": value})

    def test_input_is_not_modified(self, user: dict[str, Any]) -> None:
        before = copy.deepcopy(user)
        out = patch(
            user,
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "n@x.org"},
            {"op": "remove", "path": "name.givenName"},
            {"op": "add", "path": f"{ENTERPRISE_USER_SCHEMA}:manager.value", "value": "7"},
        )
        assert user == before
        assert out is not user
        assert out["emails"][0]["value"] == "n@x.org"

    def test_failing_operation_applies_nothing(self, user: dict[str, Any]) -> None:
        before = copy.deepcopy(user)
        with pytest.raises(Mutability, match="Operation 2") as info:
            patch(
                user,
                {"op": "replace", "path": "userName", "value": "babs"},
                {"op": "remove", "path": "id"},
                {"op": "add", "path": "title", "value": "x"},
            )
        assert isinstance(info.value, ScimError)
        assert user == before

    def test_operations_apply_in_order(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {"op": "replace", "path": "title", "value": "one"},
            {"op": "replace", "path": "title", "value": "two"},
            {"op": "remove", "path": "nickName"},
            {"op": "add", "path": "nickName", "value": "Babs"},
        )
        assert (out["title"], out["nickName"]) == ("two", "Babs")

    def test_constructed_operation_with_unparsed_case(self, user: dict[str, Any]) -> None:
        path = PatchPath(AttrPath(None, "title"))
        out = apply_patch(user, [PatchOperation("Replace", path, "Guide", "title")], USER)
        assert out["title"] == "Guide"


# --- primary ---------------------------------------------------------------------------


class TestPrimary:
    def test_new_primary_clears_the_old_one(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {
                "op": "add",
                "path": "emails",
                "value": [{"value": "new@x.org", "type": "other", "primary": True}],
            },
        )
        assert [e.get("primary") for e in out["emails"]] == [False, None, True]

    def test_primary_set_by_filter_path(self, user: dict[str, Any]) -> None:
        out = patch(
            user, {"op": "replace", "path": 'emails[type eq "home"].primary', "value": True}
        )
        assert [e.get("primary") for e in out["emails"]] == [False, True]

    def test_replaced_value_with_primary(self, user: dict[str, Any]) -> None:
        out = patch(
            user,
            {
                "op": "replace",
                "path": 'emails[type eq "home"]',
                "value": {"value": "babs@jensen.org", "type": "home", "primary": True},
            },
        )
        assert [e.get("primary") for e in out["emails"]] == [False, True]

    def test_two_primaries_in_one_value_is_invalid_value(self, user: dict[str, Any]) -> None:
        with pytest.raises(InvalidValue):
            patch(
                user,
                {
                    "op": "replace",
                    "path": "emails",
                    "value": [
                        {"value": "a@x.org", "primary": True},
                        {"value": "b@x.org", "primary": True},
                    ],
                },
            )

    def test_stored_duplicates_are_repaired(self, user: dict[str, Any]) -> None:
        user["emails"][1]["primary"] = True
        out = patch(user, {"op": "replace", "path": "title", "value": "x"})
        assert [e.get("primary") for e in out["emails"]] == [True, False]


# --- split_member_operations -------------------------------------------------------------


def split(*operations: dict[str, Any]) -> tuple[list[PatchOperation], list[MemberChange]]:
    return split_member_operations(parse_patch_request(request(*operations)))


class TestSplitMembers:
    def test_add_members(self) -> None:
        rest, changes = split({"op": "add", "path": "members", "value": [BABS, JAMES]})
        assert rest == []
        assert changes == [MemberChange("add", (BABS, JAMES))]

    def test_add_single_member_object(self) -> None:
        _, changes = split({"op": "Add", "path": "Members", "value": {"Value": BABS_ID}})
        assert changes == [MemberChange("add", ({"value": BABS_ID},))]

    def test_replace_members(self) -> None:
        _, changes = split({"op": "replace", "path": "members", "value": [BABS]})
        assert changes == [MemberChange("replace", (BABS,))]

    @pytest.mark.parametrize("value", [[], None])
    def test_replace_with_nothing_clears(self, value: Any) -> None:
        _, changes = split({"op": "replace", "path": "members", "value": value})
        assert changes == [MemberChange("clear")]

    def test_remove_all_members(self) -> None:
        _, changes = split({"op": "remove", "path": "members"})
        assert changes == [MemberChange("clear")]

    def test_remove_members_by_value_list(self) -> None:
        _, changes = split(
            {"op": "Remove", "path": "members", "value": [{"value": BABS_ID, "$ref": None}]}
        )
        assert changes == [MemberChange("remove", ({"value": BABS_ID},))]

    def test_remove_members_by_filter(self) -> None:
        _, changes = split({"op": "remove", "path": f'members[value eq "{BABS_ID}"]'})
        assert changes == [
            MemberChange("remove", filter=Compare(AttrPath(None, "value"), "eq", BABS_ID))
        ]

    def test_urn_qualified_members_path(self) -> None:
        rest, changes = split(
            {"op": "add", "path": f"{GROUP_SCHEMA}:members", "value": [{"value": "m1"}]}
        )
        assert rest == [] and changes == [MemberChange("add", ({"value": "m1"},))]

    def test_pathless_value_with_members_is_split(self) -> None:
        rest, changes = split(
            {
                "op": "replace",
                "value": {"displayName": "Guides", "members": [{"value": "m1"}], "id": "x"},
            }
        )
        assert rest == [PatchOperation("replace", None, {"displayName": "Guides", "id": "x"}, None)]
        assert changes == [MemberChange("replace", ({"value": "m1"},))]

    def test_pathless_value_with_only_members(self) -> None:
        rest, changes = split({"op": "add", "value": {"Members": [{"value": "m1"}]}})
        assert rest == []
        assert changes == [MemberChange("add", ({"value": "m1"},))]

    def test_other_operations_and_order_are_kept(self) -> None:
        rest, changes = split(
            {"op": "replace", "path": "displayName", "value": "Guides"},
            {"op": "remove", "path": "members"},
            {"op": "add", "path": "externalId", "value": "e1"},
            {"op": "add", "path": "members", "value": [{"value": "m1"}]},
            {"op": "remove", "path": 'members[value eq "m2"]'},
        )
        assert [op.raw_path for op in rest] == ["displayName", "externalId"]
        assert [change.kind for change in changes] == ["clear", "add", "remove"]

    def test_rest_applies_to_group(self, group: dict[str, Any]) -> None:
        rest, _ = split(
            {"op": "replace", "value": {"displayName": "Guides", "members": []}},
        )
        out = apply_patch(group, rest, GROUP)
        assert out["displayName"] == "Guides"
        assert values(out["members"]) == [BABS_ID, JAMES_ID]

    @pytest.mark.parametrize(
        ("op", "path", "error"),
        [
            ("replace", 'members[value eq "m1"].display', Mutability),
            ("replace", 'members[value eq "m1"].value', Mutability),
            ("remove", 'members[value eq "m1"].type', Mutability),
            ("add", "members.value", Mutability),
            ("replace", 'members[value eq "m1"]', Mutability),
            ("replace", 'members[value eq "m1"].nosuch', InvalidPath),
        ],
    )
    def test_member_sub_attributes_cannot_be_patched(
        self, op: str, path: str, error: type[ScimError]
    ) -> None:
        operation: dict[str, Any] = {"op": op, "path": path}
        if op != "remove":
            operation["value"] = {"value": "m9"} if path.endswith("]") else "m9"
        with pytest.raises(error):
            split(operation)

    @pytest.mark.parametrize(
        "value",
        ["m1", ["m1"], [{"display": "Babs"}], [{"value": ""}], [{"value": 7}], [{"value": None}]],
    )
    def test_member_value_must_be_an_object_with_a_value(self, value: Any) -> None:
        with pytest.raises(InvalidValue):
            split({"op": "add", "path": "members", "value": value})
