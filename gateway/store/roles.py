"""Team roles in the common model, from the team's group-to-role mapping."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Connection, select, update

from ..policy import TeamPolicy
from .query import groups, memberships, users

__all__ = ["recompute_roles"]

_CHUNK = 500


def recompute_roles(
    conn: Connection, user_pks: Sequence[int], policy: TeamPolicy
) -> list[tuple[str, str | None, str | None]]:
    """Set each user's role from its groups; returns (user id, old, new) for changes."""
    if not policy.uses_roles:
        return []
    changed: list[tuple[str, str | None, str | None]] = []
    pks = list(dict.fromkeys(user_pks))
    for i in range(0, len(pks), _CHUNK):
        chunk = pks[i : i + _CHUNK]
        names: dict[int, list[str]] = defaultdict(list)
        for row in conn.execute(
            select(memberships.c.user_pk, groups.c.display_name)
            .join(groups, groups.c.pk == memberships.c.group_pk)
            .where(memberships.c.user_pk.in_(chunk))
        ):
            names[row.user_pk].append(row.display_name)
        by_role: dict[str | None, list[int]] = defaultdict(list)
        for user in conn.execute(
            select(users.c.pk, users.c.id, users.c.role).where(
                users.c.pk.in_(chunk), users.c.state != "deleted"
            )
        ):
            role = policy.role_for(names.get(user.pk, []))
            if role != user.role:
                by_role[role].append(user.pk)
                changed.append((user.id, user.role, role))
        for role, members in by_role.items():
            conn.execute(update(users).where(users.c.pk.in_(members)).values(role=role))
    return changed
