"""SCIM errors (RFC 7644 §3.12), one class per ``scimType``.

Every failure the gateway reports to a SCIM client is one of these. A handler in
:mod:`gateway.app` renders them all the same way, so routes, the protocol code and
adapters raise them and never build error responses by hand.
"""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"

__all__ = [
    "ERROR_SCHEMA",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InvalidFilter",
    "InvalidPath",
    "InvalidSyntax",
    "InvalidValue",
    "InvalidVersion",
    "MethodNotAllowed",
    "Mutability",
    "NoTarget",
    "NotFound",
    "NotImplementedFeature",
    "PayloadTooLarge",
    "PreconditionFailed",
    "ScimError",
    "Sensitive",
    "ServiceUnavailable",
    "TooMany",
    "TooManyRequests",
    "Unauthorized",
    "Uniqueness",
    "UnsupportedMediaType",
]


class ScimError(Exception):
    """A SCIM error response: ``status``, optional ``scimType`` and a ``detail``."""

    status: ClassVar[int] = 400
    scim_type: ClassVar[str | None] = None

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        body["detail"] = self.detail
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


# --- 400 with a scimType (RFC 7644 §3.12, table 9) -------------------------------


class InvalidFilter(ScimError):
    scim_type = "invalidFilter"


class TooMany(ScimError):
    scim_type = "tooMany"


class Uniqueness(ScimError):
    status = 409
    scim_type = "uniqueness"


class Mutability(ScimError):
    scim_type = "mutability"


class InvalidSyntax(ScimError):
    scim_type = "invalidSyntax"


class InvalidPath(ScimError):
    scim_type = "invalidPath"


class NoTarget(ScimError):
    scim_type = "noTarget"


class InvalidValue(ScimError):
    scim_type = "invalidValue"


class InvalidVersion(ScimError):
    scim_type = "invalidVers"


class Sensitive(ScimError):
    scim_type = "sensitive"


# --- other statuses ---------------------------------------------------------------


class BadRequest(ScimError):
    status = 400


class Unauthorized(ScimError):
    status = 401

    def __init__(
        self,
        detail: str = "Authentication required: send a valid SCIM API key "
        "as 'Authorization: Bearer <key>'.",
    ) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="scim"'})


class Forbidden(ScimError):
    status = 403


class NotFound(ScimError):
    status = 404


class MethodNotAllowed(ScimError):
    status = 405


class Conflict(ScimError):
    status = 409


class PreconditionFailed(ScimError):
    status = 412


class PayloadTooLarge(ScimError):
    status = 413


class UnsupportedMediaType(ScimError):
    status = 415


class TooManyRequests(ScimError):
    status = 429


class ServiceUnavailable(ScimError):
    status = 503


class NotImplementedFeature(ScimError):
    status = 501
