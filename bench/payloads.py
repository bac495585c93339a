"""Request bodies shaped like real IdP traffic (see docs on the Okta and Entra dialects).

Okta creates users with ``application/json``, ``password`` and ``groups: []``, deactivates
with a path-less ``replace`` of ``{"active": false}`` and pushes group membership as
``add``/``remove`` PATCHes; Entra updates profiles with capitalised ``Replace`` ops,
one per attribute, with string values.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

__all__ = [
    "ENTERPRISE",
    "ENTRA_USER_AGENT",
    "OKTA_USER_AGENT",
    "entra_profile_patch",
    "entra_profile_values",
    "group_body",
    "member_remove",
    "members_add",
    "members_remove",
    "okta_deactivate",
    "okta_user",
    "user_name",
    "user_name_filter",
]

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

OKTA_USER_AGENT = "Okta SCIM Client 1.0.0"
ENTRA_USER_AGENT = "Microsoft.Identity.Provisioning/1.0"

_GIVEN = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
_FAMILY = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
_DEPARTMENTS = ("Engineering", "Sales", "Support", "Finance", "Marketing", "Legal")


def user_name(index: int, domain: str = "bench.example.com") -> str:
    return f"user{index:07d}@{domain}"


def okta_user(index: int, domain: str = "bench.example.com") -> dict[str, Any]:
    """An Okta ``POST /Users`` body for user number ``index``."""
    given = _GIVEN[index % len(_GIVEN)]
    family = _FAMILY[(index // len(_GIVEN)) % len(_FAMILY)]
    name = user_name(index, domain)
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": name, "type": "work"}],
        "phoneNumbers": [{"value": f"+1-555-{index % 10_000:04d}", "type": "work"}],
        "externalId": f"00u{index:017d}",
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "groups": [],
        "password": f"Pw-{index:08d}!x",
        "active": True,
        ENTERPRISE: {
            "employeeNumber": f"E{index:07d}",
            "department": _DEPARTMENTS[index % len(_DEPARTMENTS)],
            "costCenter": f"CC-{index % 97:03d}",
            "manager": {"value": f"00u{(index // 25):017d}", "displayName": "Team Lead"},
        },
    }


def user_name_filter(name: str) -> str:
    """Okta's existence check, paging parameters included."""
    filter_ = quote(f'userName eq "{name}"', safe="")
    return f"filter={filter_}&startIndex=1&count=100"


def okta_deactivate() -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}


def entra_profile_values(index: int) -> dict[str, str]:
    """What the Entra-style PATCH for user ``index`` sets (to check the answer with)."""
    return {
        "displayName": f"Updated User {index}",
        "givenName": "Updated",
        "familyName": f"User{index}",
        "title": "Staff Engineer",
        "department": "Research",
    }


def entra_profile_patch(index: int) -> dict[str, Any]:
    """Five ``Replace`` operations, one per attribute, values as strings."""
    values = entra_profile_values(index)
    return {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": values["displayName"]},
            {"op": "Replace", "path": "name.givenName", "value": values["givenName"]},
            {"op": "Replace", "path": "name.familyName", "value": values["familyName"]},
            {"op": "Replace", "path": "title", "value": values["title"]},
            {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": values["department"]},
        ],
    }


def group_body(index: int, name: str | None = None) -> dict[str, Any]:
    display_name = name or f"Bench Group {index:05d}"
    return {"schemas": [GROUP], "displayName": display_name, "members": []}


def members_add(members: list[tuple[str, str]]) -> dict[str, Any]:
    """Okta's membership push: ``add`` of (id, userName) pairs."""
    return {
        "schemas": [PATCH_OP],
        "Operations": [
            {
                "op": "add",
                "path": "members",
                "value": [{"value": uid, "display": name} for uid, name in members],
            }
        ],
    }


def members_remove(members: list[tuple[str, str]]) -> dict[str, Any]:
    """Entra's member remove: ``remove`` of ``members`` with a list of values."""
    return {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "remove", "path": "members", "value": [{"value": uid} for uid, _ in members]}
        ],
    }


def member_remove(user_id: str) -> dict[str, Any]:
    """Okta's single-member remove, by value filter."""
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "remove", "path": f'members[value eq "{user_id}"]'}],
    }
