"""The common provisioning model as SQLModel tables.

Every row carries ``team_pk``: a team is the unit of isolation, and every query
the gateway makes is scoped by it. Resources have an integer surrogate key
(``pk``) for joins and a public SCIM ``id`` (a UUID) for the API.

What the SaaS application reads:

- ``scim_user``: one row per user, its single-valued attributes as columns and
  attributes the gateway does not model in ``extra`` (kept losslessly);
- ``scim_user_value``: one row per element of a multi-valued attribute
  (emails, phoneNumbers, addresses, ...);
- ``scim_group`` and ``scim_membership``: groups and their direct members.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["Group", "Membership", "Team", "User", "UserValue", "metadata"]


def _json_column() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


class Team(SQLModel, table=True):
    """A customer team: its SSO connection and whether SCIM provisioning is on."""

    __tablename__ = "team"

    pk: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(default="", max_length=200)
    scim_enabled: bool = Field(default=False)
    default_adapter: str = Field(default="generic", max_length=64)
    options: dict[str, Any] | None = _json_column()
    sso: dict[str, Any] | None = _json_column()
    config_digest: str | None = Field(default=None, max_length=64)
    created: datetime
    updated: datetime | None = None


class ApiKey(SQLModel, table=True):
    """A named SCIM API key. Only a keyed hash of the key itself is stored."""

    __tablename__ = "scim_key"

    pk: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(max_length=16, unique=True)
    team_pk: int = Field(sa_column=Column(Integer, ForeignKey("team.pk"), nullable=False))
    name: str = Field(max_length=200)
    adapter: str | None = Field(default=None, max_length=64)
    secret_hash: str = Field(max_length=64)
    created: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    replaced_by: str | None = Field(default=None, max_length=16)


class GatewaySetting(SQLModel, table=True):
    """Process-wide values every gateway process must share (e.g. a generated secret)."""

    __tablename__ = "gateway_setting"

    name: str = Field(primary_key=True, max_length=64)
    value: str


class User(SQLModel, table=True):
    __tablename__ = "scim_user"
    __table_args__ = (
        UniqueConstraint("team_pk", "user_name_ci", name="uq_user_team_username"),
        Index("ix_user_team_external_id", "team_pk", "external_id"),
        Index("ix_user_team_pk_state", "team_pk", "pk", "state"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=64, unique=True)
    team_pk: int = Field(sa_column=Column(Integer, ForeignKey("team.pk"), nullable=False))
    user_name: str = Field(max_length=512)
    user_name_ci: str = Field(max_length=512)
    external_id: str | None = Field(default=None, max_length=512)
    display_name: str | None = None
    nick_name: str | None = None
    profile_url: str | None = None
    title: str | None = None
    user_type: str | None = None
    preferred_language: str | None = None
    locale: str | None = None
    timezone: str | None = None
    active: bool | None = None
    """SCIM ``active`` as sent; ``None`` when the client never assigned it."""
    name_formatted: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    middle_name: str | None = None
    honorific_prefix: str | None = None
    honorific_suffix: str | None = None
    employee_number: str | None = None
    cost_center: str | None = None
    organization: str | None = None
    division: str | None = None
    department: str | None = None
    manager_id: str | None = None
    manager_display_name: str | None = None
    extra: dict[str, Any] | None = _json_column()
    state: str = Field(default="active", max_length=16)
    """What the application acts on: ``active``, ``inactive`` (deprovisioned, kept with
    its memberships) or ``deleted`` (a tombstone, hidden from SCIM, purged later)."""
    deleted_at: datetime | None = None
    role: str | None = Field(default=None, max_length=64)
    """The team role the application grants, from the team's group-to-role mapping."""
    created: datetime
    last_modified: datetime
    version: int = 1
    rendered: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    """The gateway's own copy of the user's SCIM attributes as JSON (without ``id``,
    ``meta``, ``groups`` and server URLs), written with the columns above. It lets a
    list page or a lookup skip reading and reassembling the value rows. It holds
    nothing the columns do not: the application should read the columns."""
    rendered_version: int | None = None
    """The ``version`` ``rendered`` was written at. ``rendered`` is used only while the
    two are equal: any write that bumps ``version`` without rewriting ``rendered`` (a
    policy deactivation, an operator's fix by hand) makes the gateway read the columns
    again."""


class UserValue(SQLModel, table=True):
    """One element of a user's multi-valued attribute (``attr`` names which)."""

    __tablename__ = "scim_user_value"
    __table_args__ = (
        Index("ix_user_value_user", "user_pk"),
        Index("ix_user_value_lookup", "team_pk", "attr", "value_ci"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    user_pk: int = Field(
        sa_column=Column(Integer, ForeignKey("scim_user.pk", ondelete="CASCADE"), nullable=False)
    )
    team_pk: int
    attr: str = Field(max_length=32)
    position: int = 0
    value: str | None = None
    value_ci: str | None = None
    type: str | None = Field(default=None, max_length=64)
    primary: bool | None = None
    display: str | None = None
    formatted: str | None = None
    street_address: str | None = None
    locality: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None
    extra: dict[str, Any] | None = _json_column()


class Group(SQLModel, table=True):
    __tablename__ = "scim_group"
    __table_args__ = (
        Index("ix_group_team_display", "team_pk", "display_name_ci"),
        Index("ix_group_team_external_id", "team_pk", "external_id"),
        Index("ix_group_team_pk", "team_pk", "pk"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=64, unique=True)
    team_pk: int = Field(sa_column=Column(Integer, ForeignKey("team.pk"), nullable=False))
    display_name: str
    display_name_ci: str
    external_id: str | None = Field(default=None, max_length=512)
    extra: dict[str, Any] | None = _json_column()
    created: datetime
    last_modified: datetime
    version: int = 1


class Membership(SQLModel, table=True):
    """A direct member of a group: a user or another group, never both."""

    __tablename__ = "scim_membership"
    __table_args__ = (
        UniqueConstraint("group_pk", "user_pk", name="uq_membership_user"),
        UniqueConstraint("group_pk", "child_group_pk", name="uq_membership_group"),
        Index("ix_membership_user", "user_pk"),
        Index("ix_membership_child_group", "child_group_pk"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    team_pk: int
    group_pk: int = Field(
        sa_column=Column(Integer, ForeignKey("scim_group.pk", ondelete="CASCADE"), nullable=False)
    )
    user_pk: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("scim_user.pk", ondelete="CASCADE"), nullable=True),
    )
    child_group_pk: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("scim_group.pk", ondelete="CASCADE"), nullable=True),
    )


metadata = SQLModel.metadata


# --- operations: the audit log and the outbox of provisioning events -------------------


class AuditRecord(SQLModel, table=True):
    """One provisioning change as an operator reads it back: who, when, what, to what.

    Written in the transaction that made the change. ``changes`` is the event's
    description of the change with the values of sensitive attributes redacted.
    Times are UTC (stored without a zone).
    """

    __tablename__ = "audit_record"
    __table_args__ = (
        Index("ix_audit_team_pk", "team_pk", "pk"),
        Index("ix_audit_team_user", "team_pk", "user_id", "pk"),
        Index("ix_audit_occurred", "occurred_at"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    team_pk: int = Field(sa_column=Column(Integer, ForeignKey("team.pk"), nullable=False))
    occurred_at: datetime
    kind: str = Field(max_length=64)
    action: str
    """The change in words, e.g. ``added user bob@example.com to group Admins``."""
    resource_type: str = Field(max_length=32)
    resource_id: str = Field(max_length=64)
    resource_display: str | None = None
    user_id: str | None = Field(default=None, max_length=64)
    """The user the change is about (the resource, or the member added or removed)."""
    changes: dict[str, Any] | None = _json_column()
    key_id: str | None = Field(default=None, max_length=16)
    key_name: str | None = Field(default=None, max_length=200)
    adapter: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=128)


class OutboxEvent(SQLModel, table=True):
    """A committed provisioning event waiting for (or done with) delivery.

    ``body`` is the versioned event document (docs/events.md) exactly as delivered;
    ``pk`` orders a resource's events.
    """

    __tablename__ = "outbox_event"
    __table_args__ = (
        Index("ix_outbox_team_pk", "team_pk", "pk"),
        Index("ix_outbox_created", "created"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(max_length=64, unique=True)
    team_pk: int = Field(sa_column=Column(Integer, ForeignKey("team.pk"), nullable=False))
    kind: str = Field(max_length=64)
    resource_type: str = Field(max_length=32)
    resource_id: str = Field(max_length=64)
    body: str
    created: datetime


class WebhookDelivery(SQLModel, table=True):
    """The delivery of one outbox event to one webhook URL of its team.

    ``state`` is ``pending`` (waiting, in flight or retrying), ``delivered`` or
    ``dead``. A process claims a pending delivery by setting ``lease_owner`` and
    ``lease_until``; no other process sends it until the lease has expired.
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("event_pk", "url", name="uq_delivery_event_url"),
        Index("ix_delivery_due", "state", "next_attempt_at"),
        Index("ix_delivery_order", "team_pk", "resource_key", "url", "event_pk"),
        Index("ix_delivery_team_state", "team_pk", "state", "event_pk"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    event_pk: int = Field(
        sa_column=Column(Integer, ForeignKey("outbox_event.pk", ondelete="CASCADE"), nullable=False)
    )
    team_pk: int
    resource_key: str = Field(max_length=100)
    """``<resource type>:<resource id>``: deliveries with one key go out in order."""
    url: str = Field(max_length=2048)
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    next_attempt_at: datetime
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    delivered_by: str | None = Field(default=None, max_length=64)
