"""Rendered users: ``scim_user.rendered`` and ``scim_user.rendered_version``.

Each user's SCIM attributes, as the gateway serves them, kept as one JSON document
beside the columns they come from and written in the same statement. A list page of
100 users then reads 100 documents instead of 100 rows of 35 columns and their 300
value rows. The document is used only while ``rendered_version`` equals ``version``:
users written before this revision (both columns empty) are served from their columns
as before, and get a document at their next write.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A database made before migrations (stamped 0001, see 0002) by a build that
    # declared these columns already has them.
    present: set[str] = set()
    if not op.get_context().as_sql:
        present = {str(c["name"]) for c in sa.inspect(op.get_bind()).get_columns("scim_user")}
    if "rendered" not in present:
        op.add_column("scim_user", sa.Column("rendered", sa.LargeBinary(), nullable=True))
    if "rendered_version" not in present:
        op.add_column("scim_user", sa.Column("rendered_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scim_user") as batch:
        batch.drop_column("rendered_version")
        batch.drop_column("rendered")
