"""Core common model: teams, keys, settings, users and their values, groups, members.

Exactly the tables that builds from before migrations created with
``metadata.create_all``: such a database is stamped at this revision and upgraded
from here. Unnamed constraints stay unnamed, so each database names them as
``create_all`` did (PostgreSQL: ``scim_key_key_id_key``, ``scim_key_team_pk_fkey``).

Revision ID: 0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "team",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scim_enabled", sa.Boolean(), nullable=False),
        sa.Column("default_adapter", sa.String(length=64), nullable=False),
        sa.Column("options", sa.JSON(), nullable=True),
        sa.Column("sso", sa.JSON(), nullable=True),
        sa.Column("config_digest", sa.String(length=64), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
    )
    op.create_index("ix_team_slug", "team", ["slug"], unique=True)

    op.create_table(
        "scim_key",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("team_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("adapter", sa.String(length=64), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaced_by", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("key_id"),
        sa.ForeignKeyConstraint(["team_pk"], ["team.pk"]),
    )

    op.create_table(
        "gateway_setting",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    op.create_table(
        "scim_user",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("team_pk", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=512), nullable=False),
        sa.Column("user_name_ci", sa.String(length=512), nullable=False),
        sa.Column("external_id", sa.String(length=512), nullable=True),
        *(
            sa.Column(name, sa.String(), nullable=True)
            for name in (
                "display_name",
                "nick_name",
                "profile_url",
                "title",
                "user_type",
                "preferred_language",
                "locale",
                "timezone",
            )
        ),
        sa.Column("active", sa.Boolean(), nullable=True),
        *(
            sa.Column(name, sa.String(), nullable=True)
            for name in (
                "name_formatted",
                "family_name",
                "given_name",
                "middle_name",
                "honorific_prefix",
                "honorific_suffix",
                "employee_number",
                "cost_center",
                "organization",
                "division",
                "department",
                "manager_id",
                "manager_display_name",
            )
        ),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("role", sa.String(length=64), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("team_pk", "user_name_ci", name="uq_user_team_username"),
        sa.UniqueConstraint("id"),
        sa.ForeignKeyConstraint(["team_pk"], ["team.pk"]),
    )
    op.create_index("ix_user_team_external_id", "scim_user", ["team_pk", "external_id"])
    op.create_index("ix_user_team_pk", "scim_user", ["team_pk", "pk"])

    op.create_table(
        "scim_user_value",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("user_pk", sa.Integer(), nullable=False),
        sa.Column("team_pk", sa.Integer(), nullable=False),
        sa.Column("attr", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(), nullable=True),
        sa.Column("value_ci", sa.String(), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=True),
        sa.Column("primary", sa.Boolean(), nullable=True),
        *(
            sa.Column(name, sa.String(), nullable=True)
            for name in (
                "display",
                "formatted",
                "street_address",
                "locality",
                "region",
                "postal_code",
                "country",
            )
        ),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.ForeignKeyConstraint(["user_pk"], ["scim_user.pk"], ondelete="CASCADE"),
    )
    op.create_index("ix_user_value_user", "scim_user_value", ["user_pk"])
    op.create_index("ix_user_value_lookup", "scim_user_value", ["team_pk", "attr", "value_ci"])

    op.create_table(
        "scim_group",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("team_pk", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("display_name_ci", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(length=512), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_modified", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("id"),
        sa.ForeignKeyConstraint(["team_pk"], ["team.pk"]),
    )
    op.create_index("ix_group_team_display", "scim_group", ["team_pk", "display_name_ci"])
    op.create_index("ix_group_team_external_id", "scim_group", ["team_pk", "external_id"])
    op.create_index("ix_group_team_pk", "scim_group", ["team_pk", "pk"])

    op.create_table(
        "scim_membership",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("team_pk", sa.Integer(), nullable=False),
        sa.Column("group_pk", sa.Integer(), nullable=False),
        sa.Column("user_pk", sa.Integer(), nullable=True),
        sa.Column("child_group_pk", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("group_pk", "user_pk", name="uq_membership_user"),
        sa.UniqueConstraint("group_pk", "child_group_pk", name="uq_membership_group"),
        sa.ForeignKeyConstraint(["group_pk"], ["scim_group.pk"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_pk"], ["scim_user.pk"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["child_group_pk"], ["scim_group.pk"], ondelete="CASCADE"),
    )
    op.create_index("ix_membership_user", "scim_membership", ["user_pk"])
    op.create_index("ix_membership_child_group", "scim_membership", ["child_group_pk"])


def downgrade() -> None:
    for table in (
        "scim_membership",
        "scim_group",
        "scim_user_value",
        "scim_user",
        "gateway_setting",
        "scim_key",
        "team",
    ):
        op.drop_table(table)
