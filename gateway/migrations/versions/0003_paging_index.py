"""Paging index: ``scim_user (team_pk, pk, state)`` replaces ``(team_pk, pk)``.

A list page of a team's users (``ORDER BY pk LIMIT count OFFSET startIndex - 1``,
live users only) and its ``totalResults`` count are answered from this index alone:
the rows a page skips, and the rows a count counts, are never read from the table.
With the old index every skipped or counted row was looked up to check its state,
which made the last page of a 100,000-user import several times as slow as the first.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # A database a build before migrations made (stamped 0001, see 0002) may already
    # have its scim_user indexes in this version's shape.
    present = {"ix_user_team_pk"}
    if not op.get_context().as_sql:
        present = {str(ix["name"]) for ix in sa.inspect(op.get_bind()).get_indexes("scim_user")}
    if "ix_user_team_pk_state" not in present:
        op.create_index("ix_user_team_pk_state", "scim_user", ["team_pk", "pk", "state"])
    if "ix_user_team_pk" in present:
        op.drop_index("ix_user_team_pk", table_name="scim_user")


def downgrade() -> None:
    op.create_index("ix_user_team_pk", "scim_user", ["team_pk", "pk"])
    op.drop_index("ix_user_team_pk_state", table_name="scim_user")
