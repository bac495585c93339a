"""The common provisioning model as adapters and observers see it.

Plain, frozen data: adapters get everything they need passed in (no I/O, no
database, no clock of their own), and observers receive one
:class:`ProvisioningEvent` per committed change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["EVENT_KINDS", "Inbound", "Outbound", "ProvisioningEvent"]

EVENT_KINDS = frozenset(
    {
        "user.created",
        "user.updated",
        "user.deactivated",
        "user.reactivated",
        "user.deleted",
        "group.created",
        "group.renamed",
        "group.updated",
        "group.deleted",
        "member.added",
        "member.removed",
        "role.changed",
    }
)


@dataclass(frozen=True, slots=True)
class Inbound:
    """What an adapter knows about the request it is normalising."""

    team: str
    adapter: str
    resource_type: str
    """``"User"`` or ``"Group"``."""
    method: str
    options: Mapping[str, Any] = field(default_factory=dict)
    """The team's options from the config (attribute mappings, lifecycle policy...)."""
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Outbound:
    """What an adapter knows about a response it is rendering."""

    team: str
    adapter: str
    resource_type: str
    base_url: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProvisioningEvent:
    """One committed change to the common model.

    ``changes`` says what changed, e.g. ``{"active": [True, False]}`` for a
    deactivation, ``{"displayName": ["Old", "New"]}`` for a rename, or
    ``{"member": "<user id>", "member_type": "User"}`` for a membership.
    """

    kind: str
    team: str
    resource_type: str
    resource_id: str
    display: str | None
    changes: Mapping[str, Any]
    occurred_at: datetime
    key_id: str | None = None
    key_name: str | None = None
    adapter: str | None = None
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "team": self.team,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "display": self.display,
            "changes": dict(self.changes),
            "occurred_at": self.occurred_at.isoformat(),
            "key_id": self.key_id,
            "key_name": self.key_name,
            "adapter": self.adapter,
            "request_id": self.request_id,
        }
