"""Tests for the schema definitions and look-ups in :mod:`gateway.scim.schemas`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.scim import schemas
from gateway.scim.schemas import (
    COMMON_ATTRIBUTES,
    ENTERPRISE_USER_SCHEMA,
    GROUP,
    GROUP_SCHEMA,
    RESOURCE_TYPE_SCHEMA,
    RESOURCE_TYPES,
    SCHEMA_SCHEMA,
    SCHEMAS,
    SPC_SCHEMA,
    USER,
    USER_SCHEMA,
    Attribute,
    Schema,
    schema_definitions_for_discovery,
    service_provider_config,
)

BASE = "https://gateway.example.com/scim/v2"

CHARACTERISTICS = (
    "name",
    "type",
    "multiValued",
    "description",
    "required",
    "caseExact",
    "mutability",
    "returned",
    "uniqueness",
)
ALLOWED_KEYS = {*CHARACTERISTICS, "canonicalValues", "referenceTypes", "subAttributes"}


def _walk(attributes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for attribute in attributes:
        yield attribute
        yield from _walk(attribute.get("subAttributes", []))


def _user(name: str) -> Attribute:
    attribute = USER.schema.attribute(name)
    assert attribute is not None, name
    return attribute


# --- constants and registries ----------------------------------------------------------


def test_urns() -> None:
    assert USER_SCHEMA == "urn:ietf:params:scim:schemas:core:2.0:User"
    assert GROUP_SCHEMA == "urn:ietf:params:scim:schemas:core:2.0:Group"
    assert ENTERPRISE_USER_SCHEMA == "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert schemas.PATCH_OP == "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    assert schemas.LIST_RESPONSE == "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    assert schemas.SEARCH_REQUEST == "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
    assert schemas.BULK_REQUEST == "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
    assert schemas.BULK_RESPONSE == "urn:ietf:params:scim:api:messages:2.0:BulkResponse"


def test_registries() -> None:
    assert RESOURCE_TYPES == {"User": USER, "Group": GROUP}
    assert set(SCHEMAS) == {USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA}
    for urn, schema in SCHEMAS.items():
        assert schema.id == urn
    assert [s.id for s in schema_definitions_for_discovery()] == [
        USER_SCHEMA,
        GROUP_SCHEMA,
        ENTERPRISE_USER_SCHEMA,
    ]
    assert USER.schema is SCHEMAS[USER_SCHEMA]
    assert GROUP.schema is SCHEMAS[GROUP_SCHEMA]
    assert USER.extensions == ((SCHEMAS[ENTERPRISE_USER_SCHEMA], False),)
    assert GROUP.extensions == ()
    assert (USER.endpoint, GROUP.endpoint) == ("/Users", "/Groups")


# --- the User schema ---------------------------------------------------------------------


def test_user_attribute_names_follow_rfc_order_without_password() -> None:
    assert [a.name for a in USER.schema.attributes] == [
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


def test_user_name() -> None:
    user_name = _user("userName")
    assert user_name.type == "string"
    assert user_name.required is True
    assert user_name.case_exact is False
    assert user_name.uniqueness == "server"
    assert user_name.mutability == "readWrite"
    assert user_name.multi_valued is False


def test_password_is_not_advertised() -> None:
    assert USER.schema.attribute("password") is None
    assert USER.resolve(None, "password") is None
    assert USER.resolve(USER_SCHEMA, "PASSWORD") is None
    for schema in schema_definitions_for_discovery():
        names = {a["name"] for a in _walk(schema.to_dict(BASE)["attributes"])}
        assert "password" not in names


def test_emails() -> None:
    emails = _user("emails")
    assert emails.type == "complex"
    assert emails.multi_valued is True
    assert [s.name for s in emails.sub_attributes] == ["value", "display", "type", "primary"]
    email_type = emails.sub("type")
    assert email_type is not None
    assert email_type.canonical_values == ("work", "home", "other")
    primary = emails.sub("PRIMARY")
    assert primary is not None
    assert primary.type == "boolean"
    assert emails.sub("nope") is None


def test_name_sub_attributes() -> None:
    name = _user("name")
    assert name.type == "complex"
    assert name.multi_valued is False
    assert [s.name for s in name.sub_attributes] == [
        "formatted",
        "familyName",
        "givenName",
        "middleName",
        "honorificPrefix",
        "honorificSuffix",
    ]


@pytest.mark.parametrize(
    ("attribute", "canonical"),
    [
        ("phoneNumbers", ("work", "home", "mobile", "fax", "pager", "other")),
        ("ims", ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")),
        ("photos", ("photo", "thumbnail")),
        ("addresses", ("work", "home", "other")),
        ("groups", ("direct", "indirect")),
        ("entitlements", ()),
        ("roles", ()),
        ("x509Certificates", ()),
    ],
)
def test_multi_valued_type_canonical_values(attribute: str, canonical: tuple[str, ...]) -> None:
    parent = _user(attribute)
    assert parent.multi_valued is True
    sub = parent.sub("type")
    assert sub is not None
    assert sub.canonical_values == canonical


def test_addresses_sub_attributes() -> None:
    assert [s.name for s in _user("addresses").sub_attributes] == [
        "formatted",
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
        "type",
        "primary",
    ]


def test_references_and_binary() -> None:
    profile = _user("profileUrl")
    assert (profile.type, profile.reference_types) == ("reference", ("external",))
    photo = _user("photos").sub("value")
    assert photo is not None
    assert (photo.type, photo.reference_types) == ("reference", ("external",))
    certificate = _user("x509Certificates").sub("value")
    assert certificate is not None
    assert certificate.type == "binary"
    assert _user("active").type == "boolean"


def test_user_groups_is_read_only() -> None:
    groups = _user("groups")
    assert groups.mutability == "readOnly"
    assert {s.name for s in groups.sub_attributes} == {"value", "$ref", "display", "type"}
    assert all(s.mutability == "readOnly" for s in groups.sub_attributes)
    ref = groups.sub("$REF")
    assert ref is not None
    assert ref.reference_types == ("User", "Group")


# --- the Group schema and the Enterprise User extension --------------------------------


def test_group_schema() -> None:
    assert [a.name for a in GROUP.schema.attributes] == ["displayName", "members"]
    display_name = GROUP.schema.attribute("displayname")
    assert display_name is not None
    assert display_name.type == "string"
    members = GROUP.schema.attribute("MEMBERS")
    assert members is not None
    assert (members.type, members.multi_valued) == ("complex", True)
    by_name = {s.name: s for s in members.sub_attributes}
    assert set(by_name) == {"value", "$ref", "type", "display"}
    # display is computed by the gateway and returned only when asked for.
    assert by_name["display"].mutability == "readOnly"
    assert by_name["display"].returned == "request"
    assert by_name["value"].mutability == "immutable"
    assert by_name["$ref"].mutability == "immutable"
    assert by_name["$ref"].type == "reference"
    assert by_name["$ref"].reference_types == ("User", "Group")
    assert by_name["type"].mutability == "immutable"
    assert by_name["type"].canonical_values == ("User", "Group")


def test_enterprise_user_schema() -> None:
    enterprise = SCHEMAS[ENTERPRISE_USER_SCHEMA]
    assert enterprise.name == "EnterpriseUser"
    assert [a.name for a in enterprise.attributes] == [
        "employeeNumber",
        "costCenter",
        "organization",
        "division",
        "department",
        "manager",
    ]
    manager = enterprise.attribute("manager")
    assert manager is not None
    assert (manager.type, manager.multi_valued) == ("complex", False)
    assert [s.name for s in manager.sub_attributes] == ["value", "$ref", "displayName"]
    ref = manager.sub("$ref")
    assert ref is not None
    assert ref.reference_types == ("User",)
    display_name = manager.sub("displayname")
    assert display_name is not None
    assert display_name.mutability == "readOnly"


# --- common attributes -------------------------------------------------------------------


def test_common_attributes() -> None:
    by_name = {a.name: a for a in COMMON_ATTRIBUTES}
    assert set(by_name) == {"id", "externalId", "meta"}
    id_ = by_name["id"]
    assert (id_.mutability, id_.returned, id_.case_exact, id_.uniqueness) == (
        "readOnly",
        "always",
        True,
        "server",
    )
    external_id = by_name["externalId"]
    assert (external_id.mutability, external_id.case_exact) == ("readWrite", True)
    meta = by_name["meta"]
    assert (meta.type, meta.mutability) == ("complex", "readOnly")
    subs = {s.name: s for s in meta.sub_attributes}
    assert set(subs) == {"resourceType", "created", "lastModified", "location", "version"}
    assert subs["created"].type == "dateTime"
    assert subs["lastModified"].type == "dateTime"
    assert (subs["location"].type, subs["location"].reference_types) == ("reference", ("uri",))


@pytest.mark.parametrize("resource_type", [USER, GROUP], ids=["User", "Group"])
def test_common_attributes_resolve_on_every_resource_type(
    resource_type: schemas.ResourceType,
) -> None:
    resolved = resource_type.resolve(None, "id")
    assert resolved is not None
    assert resolved.schema is None
    assert resolved.sub_attribute is None
    assert resolved.target.name == "id"

    external_id = resource_type.resolve(None, "EXTERNALID")
    assert external_id is not None
    assert external_id.target.name == "externalId"

    meta = resource_type.resolve(None, "meta", "LastModified")
    assert meta is not None
    assert meta.schema is None
    assert meta.attribute.name == "meta"
    assert meta.target.name == "lastModified"
    assert meta.target.type == "dateTime"

    qualified = resource_type.resolve(resource_type.schema.id, "meta", "created")
    assert qualified is not None
    assert qualified.target.name == "created"


# --- resolution ----------------------------------------------------------------------------


def test_resolve_core_unqualified_and_case_insensitive() -> None:
    resolved = USER.resolve(None, "USERNAME")
    assert resolved is not None
    assert resolved.schema is USER.schema
    assert resolved.attribute.name == "userName"
    assert resolved.sub_attribute is None
    assert resolved.target is resolved.attribute

    given = USER.resolve(None, "Name", "GIVENNAME")
    assert given is not None
    assert given.attribute.name == "name"
    assert given.sub_attribute is not None
    assert given.target is given.sub_attribute
    assert given.target.name == "givenName"


def test_resolve_qualified() -> None:
    core = USER.resolve(USER_SCHEMA.upper(), "emails", "value")
    assert core is not None
    assert core.schema is USER.schema
    assert core.target.name == "value"

    manager = USER.resolve(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user", "MANAGER", "value"
    )
    assert manager is not None
    assert manager.schema is SCHEMAS[ENTERPRISE_USER_SCHEMA]
    assert manager.attribute.name == "manager"
    assert manager.target.name == "value"

    employee = USER.resolve(ENTERPRISE_USER_SCHEMA, "employeenumber")
    assert employee is not None
    assert employee.target.name == "employeeNumber"

    members = GROUP.resolve(GROUP_SCHEMA, "members", "value")
    assert members is not None
    assert members.target.mutability == "immutable"


def test_resolve_returns_none() -> None:
    # unknown names
    assert USER.resolve(None, "nope") is None
    assert USER.resolve(None, "emails", "nope") is None
    assert GROUP.resolve(None, "userName") is None
    # a sub-attribute of a non-complex attribute
    assert USER.resolve(None, "userName", "value") is None
    assert USER.resolve(None, "id", "value") is None
    assert USER.resolve(ENTERPRISE_USER_SCHEMA, "employeeNumber", "value") is None
    # extension attributes need their URN
    assert USER.resolve(None, "employeeNumber") is None
    assert USER.resolve(None, "manager") is None
    # a URN that is not one of the resource type's schemas
    assert USER.resolve(GROUP_SCHEMA, "displayName") is None
    assert GROUP.resolve(ENTERPRISE_USER_SCHEMA, "manager") is None
    assert USER.resolve("urn:example:unknown", "userName") is None
    # common attributes belong to no extension
    assert USER.resolve(ENTERPRISE_USER_SCHEMA, "id") is None


def test_schema_for() -> None:
    assert USER.schema_for(USER_SCHEMA.lower()) is USER.schema
    assert USER.schema_for(ENTERPRISE_USER_SCHEMA.upper()) is SCHEMAS[ENTERPRISE_USER_SCHEMA]
    assert USER.schema_for(GROUP_SCHEMA) is None
    assert GROUP.schema_for(GROUP_SCHEMA) is GROUP.schema
    assert GROUP.schema_for(ENTERPRISE_USER_SCHEMA) is None


# --- discovery representations -----------------------------------------------------------


@pytest.mark.parametrize("schema", schema_definitions_for_discovery(), ids=lambda s: s.name)
def test_schema_to_dict(schema: Schema) -> None:
    body = schema.to_dict(BASE)
    assert json.loads(json.dumps(body)) == body
    assert body["schemas"] == [SCHEMA_SCHEMA]
    assert (body["id"], body["name"], body["description"]) == (
        schema.id,
        schema.name,
        schema.description,
    )
    assert body["meta"] == {"resourceType": "Schema", "location": f"{BASE}/Schemas/{schema.id}"}
    assert len(body["attributes"]) == len(schema.attributes)
    for attribute in _walk(body["attributes"]):
        assert set(CHARACTERISTICS) <= set(attribute), attribute["name"]
        assert set(attribute) <= ALLOWED_KEYS, attribute["name"]
        assert isinstance(attribute["multiValued"], bool)
        assert isinstance(attribute["required"], bool)
        assert isinstance(attribute["caseExact"], bool)
        assert ("subAttributes" in attribute) == (attribute["type"] == "complex")
        if "canonicalValues" in attribute:
            assert attribute["canonicalValues"]
        if "referenceTypes" in attribute:
            assert attribute["referenceTypes"]
            assert attribute["type"] == "reference"


def test_attribute_to_dict_camel_case() -> None:
    emails = _user("emails").to_dict()
    assert emails["multiValued"] is True
    assert emails["caseExact"] is False
    assert [s["name"] for s in emails["subAttributes"]] == ["value", "display", "type", "primary"]
    type_ = emails["subAttributes"][2]
    assert type_["canonicalValues"] == ["work", "home", "other"]
    assert "referenceTypes" not in type_
    assert "subAttributes" not in type_
    assert "multi_valued" not in emails

    ref = Attribute("$ref", type="reference", reference_types=("User",)).to_dict()
    assert ref["referenceTypes"] == ["User"]
    assert "canonicalValues" not in ref


def test_base_url_trailing_slash() -> None:
    body = USER.schema.to_dict(BASE + "/")
    assert body["meta"]["location"] == f"{BASE}/Schemas/{USER_SCHEMA}"


def test_resource_type_to_dict() -> None:
    user = USER.to_dict(BASE)
    assert json.loads(json.dumps(user)) == user
    assert user == {
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER_SCHEMA,
        "schemaExtensions": [{"schema": ENTERPRISE_USER_SCHEMA, "required": False}],
        "meta": {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/User"},
    }
    group = GROUP.to_dict(BASE)
    assert group["schema"] == GROUP_SCHEMA
    assert group["endpoint"] == "/Groups"
    assert "schemaExtensions" not in group
    assert group["meta"] == {
        "resourceType": "ResourceType",
        "location": f"{BASE}/ResourceTypes/Group",
    }


def test_service_provider_config() -> None:
    body = service_provider_config(
        base_url=BASE, max_results=200, bulk_max_operations=1000, bulk_max_payload_size=1048576
    )
    assert json.loads(json.dumps(body)) == body
    assert body["schemas"] == [SPC_SCHEMA]
    assert "documentationUri" not in body
    assert body["patch"] == {"supported": True}
    assert body["bulk"] == {"supported": True, "maxOperations": 1000, "maxPayloadSize": 1048576}
    assert body["filter"] == {"supported": True, "maxResults": 200}
    assert body["changePassword"] == {"supported": False}
    assert body["sort"] == {"supported": True}
    assert body["etag"] == {"supported": True}
    (scheme,) = body["authenticationSchemes"]
    assert scheme["type"] == "oauthbearertoken"
    assert scheme["name"] == "OAuth Bearer Token"
    assert scheme["specUri"] == "https://www.rfc-editor.org/info/rfc6750"
    assert scheme["primary"] is True
    assert body["meta"] == {
        "resourceType": "ServiceProviderConfig",
        "location": f"{BASE}/ServiceProviderConfig",
    }

    documented = service_provider_config(
        base_url=BASE,
        max_results=1,
        bulk_max_operations=1,
        bulk_max_payload_size=1,
        documentation_uri="https://docs.example.com/scim",
    )
    assert documented["documentationUri"] == "https://docs.example.com/scim"


def test_attribute_rejects_unknown_characteristics() -> None:
    with pytest.raises(ValueError):
        Attribute("x", type="text")
    with pytest.raises(ValueError):
        Attribute("x", mutability="readonly")
    with pytest.raises(ValueError):
        Attribute("x", returned="sometimes")
    with pytest.raises(ValueError):
        Attribute("x", uniqueness="team")
    with pytest.raises(ValueError):
        Attribute("x", sub_attributes=(Attribute("y"),))


def test_representations_validate_against_scim2_models() -> None:
    models = pytest.importorskip("scim2_models")
    context = models.Context.RESOURCE_QUERY_RESPONSE
    for schema in schema_definitions_for_discovery():
        parsed = models.Schema.model_validate(schema.to_dict(BASE), scim_ctx=context)
        assert parsed.id == schema.id
    for resource_type in RESOURCE_TYPES.values():
        parsed = models.ResourceType.model_validate(resource_type.to_dict(BASE), scim_ctx=context)
        assert parsed.id == resource_type.id
    config = service_provider_config(
        base_url=BASE, max_results=200, bulk_max_operations=1000, bulk_max_payload_size=1048576
    )
    parsed = models.ServiceProviderConfig.model_validate(config, scim_ctx=context)
    assert parsed.bulk.max_operations == 1000
