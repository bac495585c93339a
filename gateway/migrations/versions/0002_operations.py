"""Operations: the audit log, the outbox and its webhook deliveries, rate-limit buckets.

- ``audit_record``: one row per provisioning change, for ``scim-gateway audit``;
- ``outbox_event``: committed provisioning events, the versioned document delivered;
- ``webhook_delivery``: each event's delivery to each webhook URL (state, attempts,
  leases of the process sending it);
- ``scim_rate_limit``: the shared rate-limit buckets (``[rate_limits] store =
  "database"``); UNLOGGED on PostgreSQL: a crash merely refills every bucket.

A database from a build before migrations is stamped at 0001 and comes here; such a
build may already have created some of these tables (with ``create_all``, in the
very shape created here). Those are kept as they are, and only the missing ones are
created. Revisions after this one need no such care: every database reaching them
went through this one.

Revision ID: 0002
Revises: 0001
Create Date: 2024-07-01
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _audit_record() -> None:
    op.create_table(
        "audit_record",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("team_pk", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("resource_display", sa.String(), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("key_name", sa.String(length=200), nullable=True),
        sa.Column("adapter", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.ForeignKeyConstraint(["team_pk"], ["team.pk"]),
    )
    op.create_index("ix_audit_team_pk", "audit_record", ["team_pk", "pk"])
    op.create_index("ix_audit_team_user", "audit_record", ["team_pk", "user_id", "pk"])
    op.create_index("ix_audit_occurred", "audit_record", ["occurred_at"])


def _outbox_event() -> None:
    op.create_table(
        "outbox_event",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("team_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("id"),
        sa.ForeignKeyConstraint(["team_pk"], ["team.pk"]),
    )
    op.create_index("ix_outbox_team_pk", "outbox_event", ["team_pk", "pk"])
    op.create_index("ix_outbox_created", "outbox_event", ["created"])


def _webhook_delivery() -> None:
    op.create_table(
        "webhook_delivery",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("event_pk", sa.Integer(), nullable=False),
        sa.Column("team_pk", sa.Integer(), nullable=False),
        sa.Column("resource_key", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("event_pk", "url", name="uq_delivery_event_url"),
        sa.ForeignKeyConstraint(["event_pk"], ["outbox_event.pk"], ondelete="CASCADE"),
    )
    op.create_index("ix_delivery_due", "webhook_delivery", ["state", "next_attempt_at"])
    op.create_index(
        "ix_delivery_order", "webhook_delivery", ["team_pk", "resource_key", "url", "event_pk"]
    )
    op.create_index("ix_delivery_team_state", "webhook_delivery", ["team_pk", "state", "event_pk"])


def _scim_rate_limit() -> None:
    op.create_table(
        "scim_rate_limit",
        sa.Column("bucket", sa.String(length=96), nullable=False),
        sa.Column("tat", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("span", sa.BigInteger(), nullable=False),
        sa.Column("wait", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket"),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE scim_rate_limit SET UNLOGGED")


TABLES: dict[str, Callable[[], None]] = {
    "audit_record": _audit_record,
    "outbox_event": _outbox_event,
    "webhook_delivery": _webhook_delivery,
    "scim_rate_limit": _scim_rate_limit,
}
"""In order of creation (a delivery refers to its event)."""


def upgrade() -> None:
    context = op.get_context()
    present: set[str] = set()
    if not context.as_sql:
        present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
