"""A team's provisioning policy, read from its options (``[teams.<slug>.options]``).

```toml
[teams.acme.options]
deprovision = "deactivate"     # what active=false does: "deactivate" (keep the user,
                               # inactive, with its memberships) or "delete"
delete_mode = "hard"           # what DELETE does: "hard" (gone at once, as RFC 7644
                               # §3.6 expects) or "tombstone" (hidden, restorable by a
                               # re-POST, purged after tombstone_days)
tombstone_days = 30
reprovision = true             # a POST matching an inactive or deleted user's
                               # externalId or userName restores it, same id
group_delete_deactivates_sole_members = false
default_role = "developer"     # role of a user no mapped group gives one
roles = { "Admins" = "admin", "Engineering" = "developer" }   # group -> role
role_order = ["admin", "developer", "viewer"]                 # first wins
attribute_map = { "urn:okta:acme:1.0:user:costCode" = "cost_center" }
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from plugins import COMMON_FIELDS

__all__ = ["COMMON_FIELD_NAMES", "PolicyError", "TeamPolicy"]

COMMON_FIELD_NAMES = frozenset(COMMON_FIELDS)


class PolicyError(ValueError):
    """An option is not valid; the message names it and says what is allowed."""


_CHOICES = {"deprovision": ("deactivate", "delete"), "delete_mode": ("tombstone", "hard")}
_KNOWN = {
    "deprovision",
    "delete_mode",
    "tombstone_days",
    "reprovision",
    "group_delete_deactivates_sole_members",
    "default_role",
    "roles",
    "role_order",
    "attribute_map",
}


@dataclass(frozen=True, slots=True)
class TeamPolicy:
    deprovision: str = "deactivate"
    delete_mode: str = "hard"
    tombstone_days: int = 30
    reprovision: bool = True
    group_delete_deactivates_sole_members: bool = False
    default_role: str | None = None
    roles: Mapping[str, str] = field(default_factory=dict)
    """Group displayName, case-folded -> role."""
    role_order: tuple[str, ...] = ()
    attribute_map: Mapping[str, str] = field(default_factory=dict)

    @property
    def uses_roles(self) -> bool:
        return bool(self.roles) or self.default_role is not None

    def role_for(self, group_names: list[str]) -> str | None:
        """The user's role given the display names of its groups."""
        found = {self.roles[n.casefold()] for n in group_names if n.casefold() in self.roles}
        for role in self.role_order:
            if role in found:
                return role
        return sorted(found)[0] if found else self.default_role

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> TeamPolicy:
        options = options or {}
        unknown = sorted(set(options) - _KNOWN)
        if unknown:
            raise PolicyError(
                f"unknown option {unknown[0]!r}; known options: {', '.join(sorted(_KNOWN))}"
            )
        values: dict[str, Any] = {}
        for key, choices in _CHOICES.items():
            if key in options:
                if options[key] not in choices:
                    raise PolicyError(f"{key} must be one of {', '.join(choices)}")
                values[key] = options[key]
        for key in ("reprovision", "group_delete_deactivates_sole_members"):
            if key in options:
                if not isinstance(options[key], bool):
                    raise PolicyError(f"{key} must be true or false")
                values[key] = options[key]
        if "tombstone_days" in options:
            days = options["tombstone_days"]
            if isinstance(days, bool) or not isinstance(days, int) or days < 0:
                raise PolicyError("tombstone_days must be a whole number of days, 0 or more")
            values["tombstone_days"] = days
        if "default_role" in options:
            if not isinstance(options["default_role"], str) or not options["default_role"]:
                raise PolicyError("default_role must be a role name")
            values["default_role"] = options["default_role"]
        values.update(_roles(options))
        values.update(_attribute_map(options))
        return cls(**values)


def _string_table(options: Mapping[str, Any], key: str) -> dict[str, str]:
    table = options.get(key, {})
    if not isinstance(table, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in table.items()
    ):
        raise PolicyError(f'{key} must be a table of strings, e.g. {{ "Admins" = "admin" }}')
    return dict(table)


def _roles(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    table = _string_table(options, "roles") if "roles" in options else {}
    if table:
        folded: dict[str, str] = {}
        for group, role in table.items():
            # Group names match case-insensitively, so two spellings are one group.
            if folded.setdefault(group.casefold(), role) != role:
                raise PolicyError(f"roles: {group!r} is listed twice with different roles")
        out["roles"] = folded
    if "role_order" in options:
        order = options["role_order"]
        if not isinstance(order, list) or not all(isinstance(r, str) for r in order):
            raise PolicyError('role_order must be a list of role names, e.g. ["admin", "viewer"]')
        # A role missing from the order would silently rank below every listed one.
        named = [(f"roles: {g!r} maps to", r) for g, r in table.items()]
        if isinstance(options.get("default_role"), str):
            named.append(("default_role is", options["default_role"]))
        for where, role in named:
            if role not in order:
                raise PolicyError(f"{where} {role!r}, which role_order does not list")
        out["role_order"] = tuple(order)
    return out


def _attribute_map(options: Mapping[str, Any]) -> dict[str, Any]:
    if "attribute_map" not in options:
        return {}
    table = _string_table(options, "attribute_map")
    for source, target in table.items():
        if target not in COMMON_FIELD_NAMES:
            raise PolicyError(
                f"attribute_map: {source!r} maps to {target!r}, which is not a field of the "
                f"common model; use one of {', '.join(sorted(COMMON_FIELD_NAMES))}"
            )
    return {"attribute_map": table}
