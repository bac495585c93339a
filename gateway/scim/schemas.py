"""The SCIM schemas and resource types the gateway serves (RFC 7643).

Pure data and look-ups, no framework code. The attribute definitions follow the schema
representations of RFC 7643 §8.7.1 for the core User, the core Group and the Enterprise
User extension, with the product's deliberate deviations:

* User ``password`` is not advertised: the gateway is for single sign-on and never stores
  or accepts passwords.
* User ``addresses`` gains the ``primary`` sub-attribute, which §4.1.2 and §2.4 define for
  it but the §8.7.1 listing leaves out.
* Group ``members`` gains the ``display`` sub-attribute (§4.2, §8.4), read-only.

The common attributes ``id``, ``externalId`` and ``meta`` (§3.1) belong to every resource
and to no schema; :data:`COMMON_ATTRIBUTES` describes them and :meth:`ResourceType.resolve`
finds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BULK_REQUEST",
    "BULK_RESPONSE",
    "COMMON_ATTRIBUTES",
    "ENTERPRISE_USER",
    "ENTERPRISE_USER_SCHEMA",
    "GROUP",
    "GROUP_CORE",
    "GROUP_SCHEMA",
    "LIST_RESPONSE",
    "PATCH_OP",
    "RESOURCE_TYPES",
    "RESOURCE_TYPE_SCHEMA",
    "SCHEMAS",
    "SCHEMA_SCHEMA",
    "SEARCH_REQUEST",
    "SPC_SCHEMA",
    "USER",
    "USER_CORE",
    "USER_SCHEMA",
    "Attribute",
    "Resolved",
    "ResourceType",
    "Schema",
    "schema_definitions_for_discovery",
    "service_provider_config",
]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

_TYPES = frozenset(
    {"string", "boolean", "decimal", "integer", "dateTime", "reference", "complex", "binary"}
)
_MUTABILITIES = frozenset({"readOnly", "readWrite", "immutable", "writeOnly"})
_RETURNED = frozenset({"always", "never", "default", "request"})
_UNIQUENESS = frozenset({"none", "server", "global"})


def _name_index(attributes: tuple[Attribute, ...]) -> dict[str, Attribute]:
    """The look-up table of :func:`_find`: each attribute under its lowercased name and
    under its canonical spelling, so the names clients usually send are found without
    lowercasing them. Where two names differ only in case the first attribute wins."""
    index: dict[str, Attribute] = {}
    for attribute in attributes:
        index.setdefault(attribute.name.lower(), attribute)
    for attribute in attributes:
        index.setdefault(attribute.name, index[attribute.name.lower()])
    return index


def _find(index: dict[str, Attribute], name: str) -> Attribute | None:
    """The attribute called ``name`` (case-insensitive) in a :func:`_name_index` table."""
    found = index.get(name)
    return found if found is not None else index.get(name.lower())


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute or sub-attribute definition with its RFC 7643 §7 characteristics."""

    name: str
    type: str = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    description: str = ""
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attribute, ...] = ()
    sub_attributes_by_name: dict[str, Attribute] = field(init=False, repr=False, compare=False)
    """The sub-attributes under their canonical and their lowercased names (read-only);
    :meth:`sub` finds any spelling."""

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"attribute {self.name!r}: unknown type {self.type!r}")
        if self.mutability not in _MUTABILITIES:
            raise ValueError(f"attribute {self.name!r}: unknown mutability {self.mutability!r}")
        if self.returned not in _RETURNED:
            raise ValueError(f"attribute {self.name!r}: unknown returned {self.returned!r}")
        if self.uniqueness not in _UNIQUENESS:
            raise ValueError(f"attribute {self.name!r}: unknown uniqueness {self.uniqueness!r}")
        if self.sub_attributes and self.type != "complex":
            raise ValueError(
                f"attribute {self.name!r}: only complex attributes have sub-attributes"
            )
        if self.reference_types and self.type != "reference":
            raise ValueError(f"attribute {self.name!r}: only references have referenceTypes")
        object.__setattr__(self, "sub_attributes_by_name", _name_index(self.sub_attributes))

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name`` (case-insensitive), or ``None``."""
        return _find(self.sub_attributes_by_name, name)

    def to_dict(self) -> dict[str, Any]:
        """The attribute as RFC 7643 §7 represents it in a Schema resource."""
        body: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical_values:
            body["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            body["referenceTypes"] = list(self.reference_types)
        if self.is_complex:
            body["subAttributes"] = [sub.to_dict() for sub in self.sub_attributes]
        return body


@dataclass(frozen=True, slots=True)
class Schema:
    """A schema (RFC 7643 §7): its URN, name, description and attributes."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]
    attributes_by_name: dict[str, Attribute] = field(init=False, repr=False, compare=False)
    """The attributes under their canonical and their lowercased names (read-only);
    :meth:`attribute` finds any spelling."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "attributes_by_name", _name_index(self.attributes))

    def attribute(self, name: str) -> Attribute | None:
        """The top-level attribute called ``name`` (case-insensitive), or ``None``."""
        return _find(self.attributes_by_name, name)

    def to_dict(self, base_url: str) -> dict[str, Any]:
        """The Schema resource served at ``/Schemas/{id}``."""
        return {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [attribute.to_dict() for attribute in self.attributes],
            "meta": {
                "resourceType": "Schema",
                "location": f"{base_url.rstrip('/')}/Schemas/{self.id}",
            },
        }


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where an attribute path points: the schema, the attribute and maybe a sub-attribute."""

    schema: Schema | None
    attribute: Attribute
    sub_attribute: Attribute | None

    @property
    def target(self) -> Attribute:
        """The attribute the path finally names: the sub-attribute if any, else the attribute."""
        return self.sub_attribute if self.sub_attribute is not None else self.attribute


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A resource type (RFC 7643 §6): endpoint, core schema and schema extensions."""

    id: str
    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...]
    extensions_by_urn: dict[str, Schema] = field(init=False, repr=False, compare=False)
    """The extension schemas by lowercased URN (read-only)."""
    _schemas_by_urn: dict[str, Schema] = field(init=False, repr=False, compare=False)
    """The core and extension schemas by lowercased URN, for :meth:`schema_for`."""

    def __post_init__(self) -> None:
        extensions = {schema.id.lower(): schema for schema, _required in self.extensions}
        object.__setattr__(self, "extensions_by_urn", extensions)
        schemas = {self.schema.id.lower(): self.schema}
        for extension, _required in self.extensions:
            schemas.setdefault(extension.id.lower(), extension)
        object.__setattr__(self, "_schemas_by_urn", schemas)

    def schema_for(self, urn: str) -> Schema | None:
        """The core or extension schema with this URN (case-insensitive), or ``None``."""
        return self._schemas_by_urn.get(urn.lower())

    def resolve(self, urn: str | None, attr: str, sub: str | None = None) -> Resolved | None:
        """Resolve an attribute path against this resource type, case-insensitively.

        Without a URN the name refers to the core schema (RFC 7644 §3.10) or to one of the
        common attributes ``id``, ``externalId`` and ``meta``. With a URN only that schema
        is searched; the core schema's URN also reaches the common attributes. With ``sub``
        the attribute must be complex and have that sub-attribute. ``None`` when the path
        names nothing.
        """
        schema: Schema | None
        if urn is None:
            schema = self.schema
        else:
            schema = self.schema_for(urn)
            if schema is None:
                return None
        attribute = schema.attribute(attr)
        if attribute is None and schema is self.schema:
            attribute = _find(_COMMON_INDEX, attr)
            schema = None
        if attribute is None:
            return None
        if sub is None:
            return Resolved(schema, attribute, None)
        sub_attribute = attribute.sub(sub)
        if sub_attribute is None:
            return None
        return Resolved(schema, attribute, sub_attribute)

    def to_dict(self, base_url: str) -> dict[str, Any]:
        """The ResourceType resource served at ``/ResourceTypes/{id}``."""
        body: dict[str, Any] = {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
        }
        if self.extensions:
            body["schemaExtensions"] = [
                {"schema": extension.id, "required": required}
                for extension, required in self.extensions
            ]
        body["meta"] = {
            "resourceType": "ResourceType",
            "location": f"{base_url.rstrip('/')}/ResourceTypes/{self.id}",
        }
        return body


# Shared sub-attribute shapes of multi-valued attributes (RFC 7643 §2.4, §8.7.1).

_DISPLAY_DESCRIPTION = "A human-readable name, primarily used for display purposes.  READ-ONLY."
_PRIMARY_TEMPLATE = (
    "A Boolean value indicating the 'primary' or preferred attribute value for this "
    "attribute{example}.  The primary attribute value 'true' MUST appear no more than once."
)


def _display(mutability: str = "readWrite") -> Attribute:
    return Attribute("display", description=_DISPLAY_DESCRIPTION, mutability=mutability)


def _primary(example: str = "") -> Attribute:
    return Attribute(
        "primary",
        type="boolean",
        description=_PRIMARY_TEMPLATE.format(example=f", e.g., {example}" if example else ""),
    )


def _type(description: str, *canonical: str, mutability: str = "readWrite") -> Attribute:
    return Attribute(
        "type", description=description, canonical_values=canonical, mutability=mutability
    )


def _string(
    name: str, description: str, *, mutability: str = "readWrite", returned: str = "default"
) -> Attribute:
    return Attribute(name, description=description, mutability=mutability, returned=returned)


# Common attributes (RFC 7643 §3.1).

COMMON_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "id",
        case_exact=True,
        mutability="readOnly",
        returned="always",
        uniqueness="server",
        description=(
            "A unique identifier for a SCIM resource as defined by the service provider.  "
            "It is stable, never reassigned, and issued by the service provider only."
        ),
    ),
    Attribute(
        "externalId",
        case_exact=True,
        description=(
            "A String that is an identifier for the resource as defined by the provisioning client."
        ),
    ),
    Attribute(
        "meta",
        type="complex",
        mutability="readOnly",
        description="A complex attribute containing resource metadata.",
        sub_attributes=(
            Attribute(
                "resourceType",
                case_exact=True,
                mutability="readOnly",
                description="The name of the resource type of the resource.",
            ),
            Attribute(
                "created",
                type="dateTime",
                mutability="readOnly",
                description='The "DateTime" that the resource was added to the service provider.',
            ),
            Attribute(
                "lastModified",
                type="dateTime",
                mutability="readOnly",
                description=(
                    "The most recent DateTime that the details of this resource were updated "
                    "at the service provider."
                ),
            ),
            Attribute(
                "location",
                type="reference",
                reference_types=("uri",),
                case_exact=True,
                mutability="readOnly",
                description="The URI of the resource being returned.",
            ),
            Attribute(
                "version",
                case_exact=True,
                mutability="readOnly",
                description="The version of the resource being returned, as an entity tag.",
            ),
        ),
    ),
)

_COMMON_INDEX = _name_index(COMMON_ATTRIBUTES)


# User (RFC 7643 §4.1, §8.7.1).

_EMAIL_DESCRIPTION = (
    "Email addresses for the user.  The value SHOULD be canonicalized by the service "
    "provider, e.g., 'bjensen@example.com' instead of 'bjensen@EXAMPLE.COM'.  Canonical "
    "type values of 'work', 'home', and 'other'."
)

USER_CORE = Schema(
    id=USER_SCHEMA,
    name="User",
    description="User Account",
    attributes=(
        Attribute(
            "userName",
            required=True,
            uniqueness="server",
            description=(
                "Unique identifier for the User, typically used by the user to directly "
                "authenticate to the service provider.  Each User MUST include a non-empty "
                "userName value.  This identifier MUST be unique across the service "
                "provider's entire set of Users.  REQUIRED."
            ),
        ),
        Attribute(
            "name",
            type="complex",
            description=(
                "The components of the user's real name.  Providers MAY return just the full "
                "name as a single string in the formatted sub-attribute, or they MAY return "
                "just the individual component attributes using the other sub-attributes, or "
                "they MAY return both.  If both variants are returned, they SHOULD be "
                "describing the same name, with the formatted name indicating how the "
                "component attributes should be combined."
            ),
            sub_attributes=(
                _string(
                    "formatted",
                    "The full name, including all middle names, titles, and suffixes as "
                    "appropriate, formatted for display (e.g., 'Ms. Barbara J Jensen, III').",
                ),
                _string(
                    "familyName",
                    "The family name of the User, or last name in most Western languages "
                    "(e.g., 'Jensen' given the full name 'Ms. Barbara J Jensen, III').",
                ),
                _string(
                    "givenName",
                    "The given name of the User, or first name in most Western languages "
                    "(e.g., 'Barbara' given the full name 'Ms. Barbara J Jensen, III').",
                ),
                _string(
                    "middleName",
                    "The middle name(s) of the User (e.g., 'Jane' given the full name "
                    "'Ms. Barbara J Jensen, III').",
                ),
                _string(
                    "honorificPrefix",
                    "The honorific prefix(es) of the User, or title in most Western languages "
                    "(e.g., 'Ms.' given the full name 'Ms. Barbara J Jensen, III').",
                ),
                _string(
                    "honorificSuffix",
                    "The honorific suffix(es) of the User, or suffix in most Western languages "
                    "(e.g., 'III' given the full name 'Ms. Barbara J Jensen, III').",
                ),
            ),
        ),
        _string(
            "displayName",
            "The name of the User, suitable for display to end-users.  The name SHOULD be the "
            "full name of the User being described, if known.",
        ),
        _string(
            "nickName",
            "The casual way to address the user in real life, e.g., 'Bob' or 'Bobby' instead "
            "of 'Robert'.  This attribute SHOULD NOT be used to represent a User's username "
            "(e.g., 'bjensen' or 'mpepperidge').",
        ),
        Attribute(
            "profileUrl",
            type="reference",
            reference_types=("external",),
            description=(
                "A fully qualified URL pointing to a page representing the User's online profile."
            ),
        ),
        _string("title", 'The user\'s title, such as "Vice President."'),
        _string(
            "userType",
            "Used to identify the relationship between the organization and the user.  "
            "Typical values used might be 'Contractor', 'Employee', 'Intern', 'Temp', "
            "'External', and 'Unknown', but any value may be used.",
        ),
        _string(
            "preferredLanguage",
            "Indicates the User's preferred written or spoken language.  Generally used for "
            "selecting a localized user interface; e.g., 'en_US' specifies the language "
            "English and country US.",
        ),
        _string(
            "locale",
            "Used to indicate the User's default location for purposes of localizing items "
            "such as currency, date time format, or numerical representations.",
        ),
        _string(
            "timezone",
            "The User's time zone in the 'Olson' time zone database format, e.g., "
            "'America/Los_Angeles'.",
        ),
        Attribute(
            "active",
            type="boolean",
            description="A Boolean value indicating the User's administrative status.",
        ),
        Attribute(
            "emails",
            type="complex",
            multi_valued=True,
            description=_EMAIL_DESCRIPTION,
            sub_attributes=(
                _string("value", _EMAIL_DESCRIPTION),
                _display(),
                _type(
                    "A label indicating the attribute's function, e.g., 'work' or 'home'.",
                    "work",
                    "home",
                    "other",
                ),
                _primary("the preferred mailing address or primary email address"),
            ),
        ),
        Attribute(
            "phoneNumbers",
            type="complex",
            multi_valued=True,
            description=(
                "Phone numbers for the User.  The value SHOULD be canonicalized by the service "
                "provider according to the format specified in RFC 3966, e.g., "
                "'tel:+1-201-555-0123'.  Canonical type values of 'work', 'home', 'mobile', "
                "'fax', 'pager', and 'other'."
            ),
            sub_attributes=(
                _string("value", "Phone number of the User."),
                _display(),
                _type(
                    "A label indicating the attribute's function, e.g., 'work', 'home', 'mobile'.",
                    "work",
                    "home",
                    "mobile",
                    "fax",
                    "pager",
                    "other",
                ),
                _primary("the preferred phone number or primary phone number"),
            ),
        ),
        Attribute(
            "ims",
            type="complex",
            multi_valued=True,
            description="Instant messaging addresses for the User.",
            sub_attributes=(
                _string("value", "Instant messaging address for the User."),
                _display(),
                _type(
                    "A label indicating the attribute's function, e.g., 'aim', 'gtalk', 'xmpp'.",
                    "aim",
                    "gtalk",
                    "icq",
                    "xmpp",
                    "msn",
                    "skype",
                    "qq",
                    "yahoo",
                ),
                _primary("the preferred messenger or primary messenger"),
            ),
        ),
        Attribute(
            "photos",
            type="complex",
            multi_valued=True,
            description="URLs of photos of the User.",
            sub_attributes=(
                Attribute(
                    "value",
                    type="reference",
                    reference_types=("external",),
                    description="URL of a photo of the User.",
                ),
                _display(),
                _type(
                    "A label indicating the attribute's function, i.e., 'photo' or 'thumbnail'.",
                    "photo",
                    "thumbnail",
                ),
                _primary("the preferred photo or thumbnail"),
            ),
        ),
        Attribute(
            "addresses",
            type="complex",
            multi_valued=True,
            description=(
                "A physical mailing address for this User.  Canonical type values of 'work', "
                "'home', and 'other'.  This attribute is a complex type with the following "
                "sub-attributes."
            ),
            sub_attributes=(
                _string(
                    "formatted",
                    "The full mailing address, formatted for display or use with a mailing "
                    "label.  This attribute MAY contain newlines.",
                ),
                _string(
                    "streetAddress",
                    "The full street address component, which may include house number, "
                    "street name, P.O. box, and multi-line extended street address "
                    "information.  This attribute MAY contain newlines.",
                ),
                _string("locality", "The city or locality component."),
                _string("region", "The state or region component."),
                _string("postalCode", "The zip code or postal code component."),
                _string("country", "The country name component."),
                _type(
                    "A label indicating the attribute's function, e.g., 'work' or 'home'.",
                    "work",
                    "home",
                    "other",
                ),
                # Listed in §4.1.2 and §2.4, missing from the §8.7.1 representation.
                _primary("the preferred mailing address"),
            ),
        ),
        Attribute(
            "groups",
            type="complex",
            multi_valued=True,
            mutability="readOnly",
            description=(
                "A list of groups to which the user belongs, either through direct "
                "membership, through nested groups, or dynamically calculated."
            ),
            sub_attributes=(
                _string("value", "The identifier of the User's group.", mutability="readOnly"),
                Attribute(
                    "$ref",
                    type="reference",
                    reference_types=("User", "Group"),
                    mutability="readOnly",
                    description=(
                        "The URI of the corresponding 'Group' resource to which the user belongs."
                    ),
                ),
                _display("readOnly"),
                _type(
                    "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.",
                    "direct",
                    "indirect",
                    mutability="readOnly",
                ),
            ),
        ),
        Attribute(
            "entitlements",
            type="complex",
            multi_valued=True,
            description="A list of entitlements for the User that represent a thing the User has.",
            sub_attributes=(
                _string("value", "The value of an entitlement."),
                _display(),
                _type("A label indicating the attribute's function."),
                _primary(),
            ),
        ),
        Attribute(
            "roles",
            type="complex",
            multi_valued=True,
            description=(
                "A list of roles for the User that collectively represent who the User is, "
                "e.g., 'Student', 'Faculty'."
            ),
            sub_attributes=(
                _string("value", "The value of a role."),
                _display(),
                _type("A label indicating the attribute's function."),
                _primary(),
            ),
        ),
        Attribute(
            "x509Certificates",
            type="complex",
            multi_valued=True,
            description="A list of certificates issued to the User.",
            sub_attributes=(
                Attribute("value", type="binary", description="The value of an X.509 certificate."),
                _display(),
                _type("A label indicating the attribute's function."),
                _primary(),
            ),
        ),
    ),
)


# Group (RFC 7643 §4.2, §8.7.1).

GROUP_CORE = Schema(
    id=GROUP_SCHEMA,
    name="Group",
    description="Group",
    attributes=(
        # §4.2 calls displayName REQUIRED (the §8.7.1 representation says "required": false);
        # the gateway enforces and advertises §4.2.
        Attribute(
            "displayName",
            required=True,
            description="A human-readable name for the Group. REQUIRED.",
        ),
        Attribute(
            "members",
            type="complex",
            multi_valued=True,
            description="A list of members of the Group.",
            sub_attributes=(
                _string("value", "Identifier of the member of this Group.", mutability="immutable"),
                Attribute(
                    "$ref",
                    type="reference",
                    reference_types=("User", "Group"),
                    mutability="immutable",
                    description=(
                        "The URI corresponding to a SCIM resource that is a member of this Group."
                    ),
                ),
                _type(
                    "A label indicating the type of resource, e.g., 'User' or 'Group'.",
                    "User",
                    "Group",
                    mutability="immutable",
                ),
                # "display" (RFC 7643 §4.2) is computed when read: the user's displayName
                # or userName, the group's displayName. It is returned only when asked
                # for (attributes=members.display): member lists are large, IdPs do not
                # read it, and a client comparing the members it sent gets them back as sent.
                _string(
                    "display",
                    "A human-readable name for the member, primarily used for display "
                    "purposes.  READ-ONLY.",
                    mutability="readOnly",
                    returned="request",
                ),
            ),
        ),
    ),
)


# Enterprise User extension (RFC 7643 §4.3, §8.7.1).

ENTERPRISE_USER = Schema(
    id=ENTERPRISE_USER_SCHEMA,
    name="EnterpriseUser",
    description="Enterprise User",
    attributes=(
        _string(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person, typically based on "
            "order of hire or association with an organization.",
        ),
        _string("costCenter", "Identifies the name of a cost center."),
        _string("organization", "Identifies the name of an organization."),
        _string("division", "Identifies the name of a division."),
        _string("department", "Identifies the name of a department."),
        Attribute(
            "manager",
            type="complex",
            description=(
                "The User's manager.  A complex type that optionally allows service providers "
                "to represent organizational hierarchy by referencing the 'id' attribute of "
                "another User."
            ),
            sub_attributes=(
                _string(
                    "value",
                    "The id of the SCIM resource representing the User's manager.  REQUIRED.",
                ),
                Attribute(
                    "$ref",
                    type="reference",
                    reference_types=("User",),
                    description=(
                        "The URI of the SCIM resource representing the User's manager.  REQUIRED."
                    ),
                ),
                _string(
                    "displayName",
                    "The displayName of the User's manager. OPTIONAL and READ-ONLY.",
                    mutability="readOnly",
                ),
            ),
        ),
    ),
)


# Resource types (RFC 7643 §6, §8.6).

USER = ResourceType(
    id="User",
    name="User",
    endpoint="/Users",
    description="User Account",
    schema=USER_CORE,
    extensions=((ENTERPRISE_USER, False),),
)

GROUP = ResourceType(
    id="Group",
    name="Group",
    endpoint="/Groups",
    description="Group",
    schema=GROUP_CORE,
    extensions=(),
)

RESOURCE_TYPES: dict[str, ResourceType] = {USER.id: USER, GROUP.id: GROUP}

SCHEMAS: dict[str, Schema] = {
    USER_CORE.id: USER_CORE,
    GROUP_CORE.id: GROUP_CORE,
    ENTERPRISE_USER.id: ENTERPRISE_USER,
}


def schema_definitions_for_discovery() -> list[Schema]:
    """The schemas served at ``/Schemas``: User, Group, then the Enterprise User extension."""
    return [USER_CORE, GROUP_CORE, ENTERPRISE_USER]


def service_provider_config(
    *,
    base_url: str,
    max_results: int,
    bulk_max_operations: int,
    bulk_max_payload_size: int,
    documentation_uri: str | None = None,
) -> dict[str, Any]:
    """The ServiceProviderConfig resource (RFC 7643 §5) the gateway serves."""
    body: dict[str, Any] = {"schemas": [SPC_SCHEMA]}
    if documentation_uri is not None:
        body["documentationUri"] = documentation_uri
    body.update(
        {
            "patch": {"supported": True},
            "bulk": {
                "supported": True,
                "maxOperations": bulk_max_operations,
                "maxPayloadSize": bulk_max_payload_size,
            },
            "filter": {"supported": True, "maxResults": max_results},
            "changePassword": {"supported": False},
            "sort": {"supported": True},
            "etag": {"supported": True},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "OAuth Bearer Token",
                    "description": (
                        "Authentication with a SCIM API key sent as an OAuth 2.0 bearer token "
                        "(RFC 6750)."
                    ),
                    "specUri": "https://www.rfc-editor.org/info/rfc6750",
                    "primary": True,
                }
            ],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": f"{base_url.rstrip('/')}/ServiceProviderConfig",
            },
        }
    )
    return body
