"""The gateway's OpenAPI 3.1 document: the admin API and the SCIM API in one.

Served at ``GET /admin/v1/openapi.json`` so that a client generator or a
schema-based fuzzer can drive both APIs from one description. Paths are absolute
(``/admin/v1/...`` and ``/scim/v2/...``); the server is the gateway's root.

The admin API's request-body schemas (:func:`admin_body_schemas`) are also what
the admin routes validate bodies against, so the document and the behaviour
cannot drift apart. SCIM resources are described permissively (objects that
allow further attributes): the SCIM schemas themselves are served by the
gateway at ``/scim/v2/Schemas``.
"""

from __future__ import annotations

from typing import Any

from . import __version__

__all__ = [
    "ADMIN_PREFIX",
    "SCIM_PREFIX",
    "SLUG_PATTERN",
    "admin_body_schemas",
    "openapi_document",
]

ADMIN_PREFIX = "/admin/v1"
SCIM_PREFIX = "/scim/v2"

JSON = "application/json"
SCIM_JSON = "application/scim+json"

_LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
_SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
_PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
_BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

# Printable text on one line: no control characters (names, identifiers).
_ONE_LINE = "^[^\\u0000-\\u001f\\u007f]*$"
# Any text without NUL (a PEM certificate spans lines).
_NO_NUL = "^[^\\u0000]*$"
_ADAPTER = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# One line with at least one character that is not a space.
_NAME = "^\\s*[^\\s\\u0000-\\u001f\\u007f][^\\u0000-\\u001f\\u007f]*$"
SLUG_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"

KEEP_OLD_MAX_MINUTES = 43_200  # 30 days
EXPIRES_MAX_DAYS = 36_500  # 100 years


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` that also admits ``null`` (JSON Schema 2020-12 style)."""
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    return out


# --- admin API: request bodies ---------------------------------------------------------


def admin_body_schemas() -> dict[str, dict[str, Any]]:
    """The request bodies the admin API accepts, as JSON Schema (2020-12) objects."""
    team_create = {
        "type": "object",
        "description": "A new team. Only `slug` is required.",
        "properties": {
            "slug": {
                "type": "string",
                "minLength": 1,
                "maxLength": 63,
                "pattern": SLUG_PATTERN,
                "x-pattern-message": "use 1-63 lowercase letters, digits and '-', starting "
                "with a letter or digit",
                "description": "1-63 lowercase letters, digits and '-', starting with a letter "
                "or digit.",
                "examples": ["acme"],
            },
            "name": _nullable(
                {
                    "type": "string",
                    "maxLength": 200,
                    "pattern": _ONE_LINE,
                    "description": "Display name; defaults to the slug.",
                }
            ),
            "default_adapter": _nullable(
                {
                    "type": "string",
                    "pattern": _ADAPTER,
                    "description": "Adapter used by keys that name none; defaults to `generic`.",
                }
            ),
        },
        "required": ["slug"],
        "additionalProperties": False,
    }
    saml = {
        "type": "object",
        "description": "A SAML 2.0 identity provider.",
        "properties": {
            "method": {"type": "string", "const": "saml"},
            "entity_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": 1024,
                "pattern": _ONE_LINE,
                "description": "The IdP's entity ID, from its metadata.",
            },
            "sso_url": {
                "type": "string",
                "minLength": 1,
                "maxLength": 2048,
                "pattern": _ONE_LINE,
                "description": "The IdP's https:// single sign-on URL.",
                "examples": ["https://idp.example.com/sso/saml"],
            },
            "certificate": {
                "type": "string",
                "minLength": 1,
                "maxLength": 65536,
                "pattern": _NO_NUL,
                "description": "The IdP's signing certificate, PEM (-----BEGIN CERTIFICATE-----"
                "...); it must not have expired.",
            },
        },
        "required": ["method", "entity_id", "sso_url", "certificate"],
        "additionalProperties": False,
    }
    oidc = {
        "type": "object",
        "description": "An OpenID Connect provider. Its discovery document and JWKS are "
        "fetched and checked when the connection is saved.",
        "properties": {
            "method": {"type": "string", "const": "oidc"},
            "issuer": {
                "type": "string",
                "minLength": 1,
                "maxLength": 2048,
                "pattern": _ONE_LINE,
                "description": "The issuer URL (https://; http:// only for loopback). It must "
                "match the discovery document's issuer exactly.",
            },
            "client_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": 512,
                "pattern": _ONE_LINE,
            },
            "client_secret_env": {
                "type": "string",
                "maxLength": 128,
                "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                "description": "Name of the gateway's environment variable that holds the "
                "client secret. The secret itself is never sent or stored.",
            },
        },
        "required": ["method", "issuer", "client_id", "client_secret_env"],
        "additionalProperties": False,
    }
    key_create = {
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "pattern": _NAME,
                "x-pattern-message": "use printable characters on one line, not only spaces",
                "description": "What the key is for, e.g. `okta-production`.",
            },
            "adapter": _nullable(
                {
                    "type": "string",
                    "pattern": _ADAPTER,
                    "description": "Adapter for requests made with this key; defaults to the "
                    "team's default adapter.",
                }
            ),
            "expires_in_days": _nullable(
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": EXPIRES_MAX_DAYS,
                    "description": "The key stops working after this many days; "
                    "null: it does not expire.",
                }
            ),
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    key_regenerate = {
        "type": "object",
        "properties": {
            "keep_old_for_minutes": {
                "type": "integer",
                "minimum": 0,
                "maximum": KEEP_OLD_MAX_MINUTES,
                "default": 0,
                "description": "How long the old key keeps working, so the IdP can be "
                "switched over; 0 stops it at once.",
            }
        },
        "additionalProperties": False,
    }
    return {
        "TeamCreate": team_create,
        "SsoSaml": saml,
        "SsoOidc": oidc,
        "SsoConnection": {
            "oneOf": [_ref("SsoSaml"), _ref("SsoOidc")],
            "discriminator": {
                "propertyName": "method",
                "mapping": {
                    "saml": "#/components/schemas/SsoSaml",
                    "oidc": "#/components/schemas/SsoOidc",
                },
            },
        },
        "KeyCreate": key_create,
        "KeyRegenerate": key_regenerate,
        "EventRedeliver": {
            "type": "object",
            "description": "Send one event again (`event_id`), or every dead-lettered "
            "delivery of the team (`dead: true`); exactly one of the two.",
            "properties": {
                "event_id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "pattern": _ONE_LINE,
                    "description": "The event's id (`Scim-Gateway-Event-Id`).",
                },
                "dead": {"type": "boolean", "const": True},
            },
            "oneOf": [{"required": ["event_id"]}, {"required": ["dead"]}],
            "additionalProperties": False,
        },
    }


# --- admin API: responses ---------------------------------------------------------------


def _admin_schemas() -> dict[str, Any]:
    timestamp = {"type": "string", "format": "date-time"}
    key_properties = {
        "id": {"type": "string", "description": "The key id; not a credential."},
        "team": {"type": "string"},
        "name": {"type": "string"},
        "prefix": {"type": "string", "description": "What lists show of the key."},
        "adapter": {"type": "string"},
        "created": timestamp,
        "last_used": _nullable(timestamp),
        "expires": _nullable(timestamp),
        "revoked_at": _nullable(
            {
                "type": "string",
                "format": "date-time",
                "description": "When the key stopped, or stops, working.",
            }
        ),
        "replaced_by": _nullable({"type": "string"}),
        "status": {"type": "string", "enum": ["active", "retiring", "revoked", "expired"]},
    }
    key_required = ["id", "name", "prefix", "adapter", "created", "expires", "status"]
    return {
        "AdminError": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "integer"},
                        "message": {"type": "string"},
                    },
                    "required": ["status", "message"],
                }
            },
            "required": ["error"],
        },
        "Team": {
            "type": "object",
            "properties": {
                "slug": {"type": "string"},
                "name": {"type": "string"},
                "scim_enabled": {"type": "boolean"},
                "default_adapter": {"type": "string"},
                "sso": {
                    "type": ["object", "null"],
                    "description": "The SSO connection without its certificate; an OpenID "
                    "Connect secret appears only as a reference ({env: NAME}).",
                    "additionalProperties": True,
                },
                "options": {"type": "object", "additionalProperties": True},
                "created": timestamp,
            },
            "required": ["slug", "name", "scim_enabled", "default_adapter", "sso", "created"],
        },
        "TeamList": {
            "type": "object",
            "properties": {"teams": {"type": "array", "items": _ref("Team")}},
            "required": ["teams"],
        },
        "ScimStatus": {
            "type": "object",
            "properties": {
                "team": {"type": "string"},
                "scim_enabled": {"type": "boolean"},
                "sso": {
                    "type": ["string", "null"],
                    "enum": ["saml", "oidc", None],
                    "description": "The SSO method, or null when none is configured.",
                },
                "sso_problem": {
                    "type": ["string", "null"],
                    "description": "Why SCIM provisioning cannot be turned on, or null.",
                },
                "active_keys": {
                    "type": "integer",
                    "description": "Keys that work now (active or retiring).",
                },
                "keys": {
                    "type": "object",
                    "properties": {
                        name: {"type": "integer", "minimum": 0}
                        for name in ("total", "active", "retiring", "revoked", "expired")
                    },
                    "required": ["total", "active", "retiring", "revoked", "expired"],
                },
            },
            "required": ["team", "scim_enabled", "sso", "active_keys", "keys"],
        },
        "Key": {
            "type": "object",
            "description": "A SCIM API key as listed: never the key itself.",
            "properties": key_properties,
            "required": key_required,
        },
        "KeyList": {
            "type": "object",
            "properties": {"keys": {"type": "array", "items": _ref("Key")}},
            "required": ["keys"],
        },
        "AuditRecord": {
            "type": "object",
            "description": "One provisioning change. Values of sensitive attributes in "
            "`changes` are redacted.",
            "properties": {
                "id": {"type": "integer"},
                "team": {"type": "string"},
                "occurred_at": timestamp,
                "kind": {"type": "string", "examples": ["user.deactivated"]},
                "action": {
                    "type": "string",
                    "description": "The change in words.",
                    "examples": ["added user bob@example.com to group Admins"],
                },
                "resource": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "enum": ["User", "Group"]},
                        "id": {"type": "string"},
                        "display": {"type": ["string", "null"]},
                    },
                    "required": ["type", "id", "display"],
                },
                "user_id": {
                    "type": ["string", "null"],
                    "description": "The user the change is about (the resource, or the member "
                    "added or removed).",
                },
                "changes": {"type": "object", "additionalProperties": True},
                "key": {
                    "type": "object",
                    "properties": {
                        "id": {"type": ["string", "null"]},
                        "name": {"type": ["string", "null"]},
                    },
                    "required": ["id", "name"],
                },
                "adapter": {"type": ["string", "null"]},
                "request_id": {"type": ["string", "null"]},
            },
            "required": ["id", "occurred_at", "kind", "action", "resource", "changes", "key"],
        },
        "AuditPage": {
            "type": "object",
            "description": "One page of a team's audit records, newest first.",
            "properties": {
                "totalResults": {"type": "integer", "minimum": 0},
                "startIndex": {"type": "integer", "minimum": 1},
                "itemsPerPage": {"type": "integer", "minimum": 0},
                "records": {"type": "array", "items": _ref("AuditRecord")},
            },
            "required": ["totalResults", "startIndex", "itemsPerPage", "records"],
        },
        "Redelivered": {
            "type": "object",
            "properties": {
                "team": {"type": "string"},
                "redelivered": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Deliveries queued again (one per webhook URL).",
                },
            },
            "required": ["team", "redelivered"],
        },
        "NewKey": {
            "type": "object",
            "description": "A key just generated. `token` is the key itself, shown only in "
            "this response: store it in the IdP now.",
            "properties": {
                **key_properties,
                "token": {"type": "string", "examples": ["scimgw_abcdefghijkl_..."]},
                "replaces": {
                    "type": "string",
                    "description": "The key this one replaces (after a regeneration).",
                },
            },
            "required": [*key_required, "token"],
        },
    }


_ADMIN_ERRORS: dict[str, tuple[str, str]] = {
    "400": (
        "AdminBadRequest",
        "The body is not JSON, or a value was refused (the message says what to fix).",
    ),
    "401": (
        "AdminUnauthorized",
        "No operator token, or a wrong one. SCIM API keys are never operator credentials.",
    ),
    "404": ("AdminNotFound", "No such team or key, or the admin API is not enabled."),
    "409": (
        "AdminConflict",
        "The team's state does not allow this (e.g. SCIM provisioning "
        "without SSO, keys while SCIM is off).",
    ),
    "413": ("AdminPayloadTooLarge", "The body is larger than limits.max_body_bytes."),
    "415": ("AdminUnsupportedMediaType", "The body is not sent as application/json."),
    "422": ("AdminValidationFailed", "A field is missing, unknown or of the wrong type."),
    "500": ("AdminServerError", "Internal error."),
    "503": ("AdminUnavailable", "The database is unavailable; retry shortly."),
}


def _admin_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code, (name, description) in _ADMIN_ERRORS.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {JSON: {"schema": _ref("AdminError")}},
        }
        if code == "401":
            response["headers"] = {
                "WWW-Authenticate": {
                    "schema": {"type": "string"},
                    "description": 'Bearer realm="admin"',
                }
            }
        if code == "503":
            response["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        out[name] = response
    return out


def _slug_param() -> dict[str, Any]:
    return {
        "name": "slug",
        "in": "path",
        "required": True,
        "description": "The team's slug.",
        "schema": {"type": "string"},
    }


def _key_param() -> dict[str, Any]:
    return {
        "name": "key_id",
        "in": "path",
        "required": True,
        "description": "The key's id (as listed; not the key itself).",
        "schema": {"type": "string"},
    }


def _admin_op(
    op_id: str,
    summary: str,
    tag: str,
    success: tuple[str, str, str],
    *,
    errors: tuple[str, ...] = (),
    body: str | None = None,
    body_required: bool = True,
    description: str | None = None,
    links: dict[str, Any] | None = None,
) -> dict[str, Any]:
    code, schema, success_description = success
    responses: dict[str, Any] = {
        code: {"description": success_description, "content": {JSON: {"schema": _ref(schema)}}}
    }
    if links:
        responses[code]["links"] = links
    if code == "201" and schema == "Team":
        responses[code]["headers"] = {
            "Location": {"schema": {"type": "string"}, "description": "The team's URL."}
        }
    codes = {"401", "404", "500", "503", *errors}
    if body is not None:
        codes |= {"400", "413", "415", "422"}
    for err in sorted(codes):
        responses[err] = {"$ref": f"#/components/responses/{_ADMIN_ERRORS[err][0]}"}
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": [tag],
        "security": [{"operatorToken": []}],
        "responses": responses,
    }
    if description:
        op["description"] = description
    if body is not None:
        op["requestBody"] = {
            "required": body_required,
            "content": {JSON: {"schema": _ref(body)}},
        }
    return op


def _links(operations: tuple[str, ...], **parameters: str) -> dict[str, Any]:
    """OpenAPI links: where the identifiers in a response lead (for clients and fuzzers)."""
    return {
        op[0].upper() + op[1:]: {"operationId": op, "parameters": parameters} for op in operations
    }


_TEAM_OPS = (
    "getTeam",
    "setSso",
    "clearSso",
    "getScimStatus",
    "enableScim",
    "disableScim",
    "listKeys",
    "createKey",
    "getAudit",
    "redeliverEvents",
)
_KEY_OPS = ("revokeKey", "regenerateKey")


def _audit_params() -> list[dict[str, Any]]:
    def param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "description": description, "schema": schema}

    return [
        param("user", "Only changes about this user (its SCIM id).", {"type": "string"}),
        param(
            "since",
            "Only changes at or after this time: an ISO 8601 date or time (UTC unless it "
            "says otherwise), or a duration back from now (90m, 12h, 7d, 2w).",
            {"type": "string", "examples": ["2024-05-01T00:00:00Z", "7d"]},
        ),
        param(
            "startIndex", "1-based index of the first record.", {"type": "integer", "minimum": 1}
        ),
        param(
            "count",
            "Page size (default limits.default_count, at most limits.max_results).",
            {"type": "integer", "minimum": 0},
        ),
    ]


def _admin_paths() -> dict[str, Any]:
    a = ADMIN_PREFIX
    slug = [_slug_param()]
    slug_key = [_slug_param(), _key_param()]
    audit = _admin_op(
        "getAudit",
        "Read the team's audit log",
        "operations",
        ("200", "AuditPage", "One page of records, newest first."),
        errors=("400",),
        description="Every provisioning change of the team: when, which key and adapter, "
        "the request id, the change in words and what changed. Kept audit.retention_days.",
    )
    audit["parameters"] = _audit_params()
    return {
        f"{a}/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "tags": ["meta"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document of the admin and SCIM APIs.",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    },
                    "404": {"$ref": "#/components/responses/AdminNotFound"},
                },
            }
        },
        f"{a}/teams": {
            "get": _admin_op(
                "listTeams", "List teams", "teams", ("200", "TeamList", "All teams, by slug.")
            ),
            "post": _admin_op(
                "createTeam",
                "Create a team",
                "teams",
                ("201", "Team", "The team was created."),
                errors=("409",),
                body="TeamCreate",
                links=_links(_TEAM_OPS, slug="$response.body#/slug"),
                description="A new team has no SSO and SCIM provisioning off. Next: configure "
                "its SSO.",
            ),
        },
        f"{a}/teams/{{slug}}": {
            "parameters": slug,
            "get": _admin_op("getTeam", "Show a team", "teams", ("200", "Team", "The team.")),
        },
        f"{a}/teams/{{slug}}/sso": {
            "parameters": slug,
            "put": _admin_op(
                "setSso",
                "Configure the team's SSO",
                "sso",
                ("200", "Team", "The connection was validated and saved."),
                errors=("400",),
                body="SsoConnection",
                description="Replaces any SSO connection the team had. A SAML certificate must "
                "parse and be current; an OpenID provider's discovery document and JWKS are "
                "fetched and checked (trusting security.sso_ca_bundle, or the system's trust "
                "store).",
            ),
            "delete": _admin_op(
                "clearSso",
                "Remove the team's SSO",
                "sso",
                ("200", "Team", "SSO removed; SCIM provisioning is off."),
                description="Turns SCIM provisioning off in the same change: requests with the "
                "team's keys get 403 until SSO is configured and SCIM turned on again. The "
                "team's data is kept.",
            ),
        },
        f"{a}/teams/{{slug}}/scim": {
            "parameters": slug,
            "get": _admin_op(
                "getScimStatus",
                "Show whether SCIM provisioning is on, and why not",
                "scim provisioning",
                ("200", "ScimStatus", "The team's SCIM status."),
            ),
        },
        f"{a}/teams/{{slug}}/scim/enable": {
            "parameters": slug,
            "post": _admin_op(
                "enableScim",
                "Turn SCIM provisioning on",
                "scim provisioning",
                ("200", "ScimStatus", "SCIM provisioning is on."),
                errors=("409",),
                description="Refused with 409 until the team has a valid SSO connection.",
            ),
        },
        f"{a}/teams/{{slug}}/scim/disable": {
            "parameters": slug,
            "post": _admin_op(
                "disableScim",
                "Turn SCIM provisioning off",
                "scim provisioning",
                ("200", "ScimStatus", "SCIM provisioning is off; the team's data is kept."),
            ),
        },
        f"{a}/teams/{{slug}}/keys": {
            "parameters": slug,
            "get": _admin_op(
                "listKeys",
                "List the team's SCIM API keys",
                "keys",
                ("200", "KeyList", "The keys, oldest first; never the keys themselves."),
            ),
            "post": _admin_op(
                "createKey",
                "Generate a SCIM API key",
                "keys",
                ("201", "NewKey", "The key; `token` is shown only in this response."),
                errors=("400", "409"),
                body="KeyCreate",
                links=_links(_KEY_OPS, slug="$request.path.slug", key_id="$response.body#/id"),
                description="Refused with 409 while SCIM provisioning is off.",
            ),
        },
        f"{a}/teams/{{slug}}/keys/{{key_id}}/revoke": {
            "parameters": slug_key,
            "post": _admin_op(
                "revokeKey",
                "Revoke a key now",
                "keys",
                ("200", "Key", "The key is revoked; requests with it get 401 from now on."),
            ),
        },
        f"{a}/teams/{{slug}}/keys/{{key_id}}/regenerate": {
            "parameters": slug_key,
            "post": _admin_op(
                "regenerateKey",
                "Replace a key",
                "keys",
                ("201", "NewKey", "The new key; `token` is shown only in this response."),
                errors=("400", "409"),
                body="KeyRegenerate",
                links=_links(_KEY_OPS, slug="$request.path.slug", key_id="$response.body#/id"),
                body_required=False,
                description="The new key has the old one's name, adapter and expiry. The old "
                "key keeps working for keep_old_for_minutes (default 0: it stops at once).",
            ),
        },
        f"{a}/teams/{{slug}}/audit": {"parameters": slug, "get": audit},
        f"{a}/teams/{{slug}}/events/redeliver": {
            "parameters": slug,
            "post": _admin_op(
                "redeliverEvents",
                "Send webhook deliveries again",
                "operations",
                ("200", "Redelivered", "The deliveries are queued; they go out in moments."),
                body="EventRedeliver",
                description="Queues one event (delivered or dead) again, or every dead-lettered "
                "delivery of the team. Each starts a fresh series of attempts, in order with its "
                "resource's other events. An unknown event id answers 404.",
            ),
        },
    }


# --- SCIM API ---------------------------------------------------------------------------


def _scim_schemas() -> dict[str, Any]:
    strings = {"type": "array", "items": {"type": "string"}}
    names = {
        "type": ["array", "string", "null"],
        "items": {"type": "string"},
        "description": "Attribute names (one name may be sent as a string).",
    }
    resource_properties = {
        "schemas": strings,
        "id": {"type": "string", "readOnly": True},
        "externalId": {"type": "string"},
        "meta": {"type": "object", "readOnly": True, "additionalProperties": True},
    }
    return {
        "ScimError": {
            "type": "object",
            "properties": {
                "schemas": {"type": "array", "items": {"type": "string", "const": _ERROR}},
                "status": {"type": "string", "description": "The HTTP status, as a string."},
                "scimType": {"type": "string"},
                "detail": {"type": "string"},
            },
            "required": ["schemas", "status"],
        },
        "ScimResource": {
            "type": "object",
            "description": "A User or Group as returned: which attributes appear depends on "
            "`attributes` and `excludedAttributes`.",
            "properties": resource_properties,
            "additionalProperties": True,
        },
        "User": {
            "type": "object",
            "description": "urn:ietf:params:scim:schemas:core:2.0:User, with the enterprise "
            "extension; see /scim/v2/Schemas.",
            "properties": {
                **resource_properties,
                "userName": {"type": "string", "minLength": 1},
                "name": {"type": "object", "additionalProperties": True},
                "displayName": {"type": "string"},
                "active": {"type": "boolean"},
                "emails": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": True},
                },
            },
            "required": ["userName"],
            "additionalProperties": True,
        },
        "Group": {
            "type": "object",
            "description": "urn:ietf:params:scim:schemas:core:2.0:Group; see /scim/v2/Schemas.",
            "properties": {
                **resource_properties,
                "displayName": {"type": "string", "minLength": 1},
                "members": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"value": {"type": "string"}},
                        "additionalProperties": True,
                    },
                },
            },
            "required": ["displayName"],
            "additionalProperties": True,
        },
        "ListResponse": {
            "type": "object",
            "properties": {
                "schemas": {"type": "array", "items": {"const": _LIST_RESPONSE}},
                "totalResults": {"type": "integer", "minimum": 0},
                "itemsPerPage": {"type": "integer", "minimum": 0},
                "startIndex": {"type": "integer", "minimum": 1},
                "Resources": {"type": "array", "items": _ref("ScimResource")},
            },
            "required": ["schemas", "totalResults"],
            "additionalProperties": True,
        },
        "SearchRequest": {
            "type": "object",
            "properties": {
                "schemas": {
                    "type": "array",
                    "items": {"type": "string"},
                    "contains": {"const": _SEARCH_REQUEST},
                },
                "filter": {"type": ["string", "null"]},
                "startIndex": {"type": ["integer", "null"]},
                "count": {"type": ["integer", "null"]},
                "sortBy": {"type": ["string", "null"]},
                "sortOrder": {
                    "type": ["string", "null"],
                    "enum": ["ascending", "descending", None],
                },
                "attributes": names,
                "excludedAttributes": names,
            },
            "required": ["schemas"],
            "additionalProperties": True,
        },
        "PatchOp": {
            "type": "object",
            "properties": {
                "schemas": {
                    "type": "array",
                    "items": {"type": "string"},
                    "contains": {"const": _PATCH_OP},
                },
                "Operations": {
                    "minItems": 1,
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "op": {"type": "string", "description": "add, remove or replace"},
                            "path": {"type": "string"},
                            "value": {},
                        },
                        "required": ["op"],
                        "additionalProperties": True,
                    },
                },
            },
            "required": ["schemas", "Operations"],
            "additionalProperties": True,
        },
        "BulkRequest": {
            "type": "object",
            "properties": {
                "schemas": {
                    "type": "array",
                    "items": {"type": "string"},
                    "contains": {"const": _BULK_REQUEST},
                },
                "failOnErrors": {"type": ["integer", "null"]},
                "Operations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "method": {
                                "type": "string",
                                "enum": ["POST", "PUT", "PATCH", "DELETE"],
                            },
                            "bulkId": {"type": "string"},
                            "version": {"type": "string"},
                            "path": {"type": "string"},
                            "data": {},
                        },
                        "required": ["method", "path"],
                        "additionalProperties": True,
                    },
                },
            },
            "required": ["schemas", "Operations"],
            "additionalProperties": True,
        },
        "BulkResponse": {
            "type": "object",
            "properties": {
                "schemas": {"type": "array", "items": {"const": _BULK_RESPONSE}},
                "Operations": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": True},
                },
            },
            "required": ["schemas", "Operations"],
            "additionalProperties": True,
        },
        "DiscoveryResource": {
            "type": "object",
            "description": "A ServiceProviderConfig, ResourceType or Schema resource.",
            "additionalProperties": True,
        },
    }


_SCIM_ERRORS: dict[str, tuple[str, str]] = {
    "400": (
        "ScimBadRequest",
        "Invalid request (scimType names the problem: invalidFilter, "
        "invalidSyntax, invalidValue, invalidPath, noTarget, mutability, tooMany, ...).",
    ),
    "401": ("ScimUnauthorized", "The SCIM API key is missing, unknown, expired or revoked."),
    "403": (
        "ScimForbidden",
        "SCIM provisioning is off for the key's team (or a discovery request carried a filter).",
    ),
    "404": ("ScimNotFound", "No such resource in the key's team."),
    "409": ("ScimConflict", "Uniqueness: the value is already taken in the team."),
    "412": ("ScimPreconditionFailed", "If-Match named a version that is not current."),
    "413": ("ScimPayloadTooLarge", "The body is larger than the configured limit."),
    "415": ("ScimUnsupportedMediaType", "Send application/scim+json or application/json."),
    "500": ("ScimServerError", "Internal error; the request changed nothing."),
    "503": ("ScimUnavailable", "The database is unavailable; retry shortly."),
}


def _scim_responses() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code, (name, description) in _SCIM_ERRORS.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {SCIM_JSON: {"schema": _ref("ScimError")}},
        }
        if code == "401":
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if code == "503":
            response["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        out[name] = response
    return out


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _projection_params() -> list[dict[str, Any]]:
    return [
        _query(
            "attributes",
            {"type": "string"},
            "Comma-separated attribute names to return (plus those always returned).",
        ),
        _query(
            "excludedAttributes",
            {"type": "string"},
            "Comma-separated attribute names to leave out.",
        ),
    ]


def _list_params() -> list[dict[str, Any]]:
    return [
        _query(
            "filter",
            {"type": "string"},
            'A SCIM filter (RFC 7644 §3.4.2.2), e.g. userName eq "bjensen".',
        ),
        _query("startIndex", {"type": "integer"}, "1-based index of the first result."),
        _query("count", {"type": "integer"}, "Maximum number of results in the page."),
        _query("sortBy", {"type": "string"}, "Attribute to sort by."),
        _query(
            "sortOrder",
            {"type": "string", "enum": ["ascending", "descending"]},
            "Sort direction.",
        ),
        *_projection_params(),
    ]


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


def _scim_body(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {SCIM_JSON: {"schema": _ref(schema)}, JSON: {"schema": _ref(schema)}},
    }


def _scim_op(
    op_id: str,
    summary: str,
    tag: str,
    success: dict[str, Any],
    *,
    errors: tuple[str, ...],
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
    authenticated: bool = True,
) -> dict[str, Any]:
    responses = dict(success)
    for err in sorted({"500", *errors}):
        responses[err] = {"$ref": f"#/components/responses/{_SCIM_ERRORS[err][0]}"}
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": [tag],
        "security": [{"scimKey": []}] if authenticated else [],
        "responses": responses,
    }
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = _scim_body(body)
    return op


def _scim_ok(code: str, schema: str | None, description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {SCIM_JSON: {"schema": _ref(schema)}}
    if headers:
        response["headers"] = {
            name.replace("_", "-"): {"schema": {"type": "string"}, "description": text}
            for name, text in headers.items()
        }
    return {code: response}


_READ = ("400", "401", "403", "503")
_WRITE = ("400", "401", "403", "409", "413", "415", "503")
_ONE = ("400", "401", "403", "404", "412", "503")


def _resource_paths(endpoint: str, schema: str) -> dict[str, Any]:
    s = SCIM_PREFIX
    tag = f"SCIM {endpoint}"
    id_param = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": f"The {schema.lower()}'s id.",
    }
    if_match = _header("If-Match", "Apply only if the resource's version (ETag) matches.")
    version = {"ETag": "The resource's version."}
    return {
        f"{s}/{endpoint}": {
            "get": _scim_op(
                f"list{endpoint}",
                f"List or filter {endpoint}",
                tag,
                _scim_ok("200", "ListResponse", "One page of results."),
                errors=_READ,
                params=_list_params(),
            ),
            "post": _scim_op(
                f"create{schema}",
                f"Create a {schema}",
                tag,
                _scim_ok(
                    "201", "ScimResource", "Created.", Location="The new resource's URL.", **version
                ),
                errors=_WRITE,
                body=schema,
                params=_projection_params(),
            ),
        },
        f"{s}/{endpoint}/.search": {
            "post": _scim_op(
                f"search{endpoint}",
                f"Search {endpoint} (POST)",
                tag,
                _scim_ok("200", "ListResponse", "One page of results."),
                errors=("400", "401", "403", "413", "415", "503"),
                body="SearchRequest",
            ),
        },
        f"{s}/{endpoint}/{{id}}": {
            "parameters": [id_param],
            "get": _scim_op(
                f"get{schema}",
                f"Get a {schema}",
                tag,
                {
                    **_scim_ok("200", "ScimResource", f"The {schema.lower()}.", **version),
                    **_scim_ok("304", None, "Not modified (If-None-Match).", **version),
                },
                errors=("400", "401", "403", "404", "503"),
                params=[
                    *_projection_params(),
                    _header("If-None-Match", "Answer 304 if the version is unchanged."),
                ],
            ),
            "put": _scim_op(
                f"replace{schema}",
                f"Replace a {schema}",
                tag,
                _scim_ok("200", "ScimResource", "Replaced.", **version),
                errors=(*_ONE, "409", "413", "415"),
                body=schema,
                params=[*_projection_params(), if_match],
            ),
            "patch": _scim_op(
                f"patch{schema}",
                f"Modify a {schema}",
                tag,
                {
                    **_scim_ok("200", "ScimResource", "Modified.", **version),
                    **_scim_ok("204", None, "Modified; no body was asked for."),
                },
                errors=(*_ONE, "409", "413", "415"),
                body="PatchOp",
                params=[*_projection_params(), if_match],
            ),
            "delete": _scim_op(
                f"delete{schema}",
                f"Delete a {schema}",
                tag,
                _scim_ok("204", None, "Deleted."),
                errors=_ONE,
                params=[if_match],
            ),
        },
    }


def _scim_paths() -> dict[str, Any]:
    s = SCIM_PREFIX
    discovery = "SCIM discovery"
    refused = ("403",)
    filter_param = [
        _query("filter", {"type": "string"}, "Not supported here: any filter answers 403.")
    ]
    by_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    return {
        **_resource_paths("Users", "User"),
        **_resource_paths("Groups", "Group"),
        f"{s}/.search": {
            "post": _scim_op(
                "searchAll",
                "Search Users and Groups (POST)",
                "SCIM search",
                _scim_ok("200", "ListResponse", "One page of results: users, then groups."),
                errors=("400", "401", "403", "413", "415", "503"),
                body="SearchRequest",
            )
        },
        f"{s}/Bulk": {
            "post": _scim_op(
                "bulk",
                "Run many operations in one request",
                "SCIM bulk",
                _scim_ok("200", "BulkResponse", "One result per operation that ran."),
                errors=("400", "401", "403", "413", "415", "503"),
                body="BulkRequest",
            )
        },
        f"{s}/ServiceProviderConfig": {
            "get": _scim_op(
                "getServiceProviderConfig",
                "What the gateway supports",
                discovery,
                _scim_ok("200", "DiscoveryResource", "The service provider configuration."),
                errors=refused,
                params=filter_param,
                authenticated=False,
            )
        },
        f"{s}/ResourceTypes": {
            "get": _scim_op(
                "listResourceTypes",
                "The resource types served",
                discovery,
                _scim_ok("200", "ListResponse", "User and Group."),
                errors=refused,
                params=filter_param,
                authenticated=False,
            )
        },
        f"{s}/ResourceTypes/{{id}}": {
            "parameters": [by_id],
            "get": _scim_op(
                "getResourceType",
                "One resource type",
                discovery,
                _scim_ok("200", "DiscoveryResource", "The resource type."),
                errors=("403", "404"),
                params=filter_param,
                authenticated=False,
            ),
        },
        f"{s}/Schemas": {
            "get": _scim_op(
                "listSchemas",
                "The schemas served",
                discovery,
                _scim_ok("200", "ListResponse", "The User, enterprise User and Group schemas."),
                errors=refused,
                params=filter_param,
                authenticated=False,
            )
        },
        f"{s}/Schemas/{{id}}": {
            "parameters": [by_id],
            "get": _scim_op(
                "getSchema",
                "One schema, by its URN",
                discovery,
                _scim_ok("200", "DiscoveryResource", "The schema."),
                errors=("403", "404"),
                params=filter_param,
                authenticated=False,
            ),
        },
    }


# --- the document -----------------------------------------------------------------------


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the whole document (callers may change it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SCIM Gateway",
            "version": __version__,
            "summary": "A multi-team SCIM 2.0 provisioning gateway.",
            "description": "Two APIs. The admin API (/admin/v1) manages teams, their SSO "
            "connection, SCIM provisioning and SCIM API keys; it takes the operator token. "
            "The SCIM API (/scim/v2, RFC 7644) is what identity providers call; it takes a "
            "team's SCIM API key, and the key alone decides the team.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/", "description": "The gateway's root."}],
        "tags": [
            {"name": "teams", "description": "Teams: the unit of isolation."},
            {"name": "sso", "description": "A team's SSO connection (required for SCIM)."},
            {"name": "scim provisioning", "description": "Turning SCIM on and off per team."},
            {"name": "keys", "description": "SCIM API keys."},
            {
                "name": "operations",
                "description": "The audit log and webhook deliveries (docs/events.md).",
            },
            {"name": "meta", "description": "This document."},
            {"name": "SCIM Users"},
            {"name": "SCIM Groups"},
            {"name": "SCIM search"},
            {"name": "SCIM bulk"},
            {"name": "SCIM discovery", "description": "Served without a key."},
        ],
        "paths": {**_admin_paths(), **_scim_paths()},
        "components": {
            "schemas": {**admin_body_schemas(), **_admin_schemas(), **_scim_schemas()},
            "responses": {**_admin_responses(), **_scim_responses()},
            "securitySchemes": {
                "operatorToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The operator token whose SHA-256 is admin.token_sha256 "
                    "(scim-gateway admin new-token).",
                },
                "scimKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "scimgw_<key id>_<secret>",
                    "description": "A team's SCIM API key (POST /admin/v1/teams/{slug}/keys).",
                },
            },
        },
    }
