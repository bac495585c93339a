"""Seed users into other teams, so that the benchmark team is one of many.

Seeding bypasses HTTP: it creates the teams with :func:`gateway.teams.create_team` and
bulk-inserts users straight into the gateway's tables, in batches, through SQLAlchemy
Core. Each row is produced by the gateway's own mapping (``user_to_rows``) from an
Okta-shaped resource, so the seeded rows look like rows the API would have written
(same columns, case-folded ``userName``, one ``scim_user_value`` row per email and
phone number). What it skips is the per-request work: authentication, the adapter,
validation and events. 100,000 users take seconds this way instead of many minutes.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from .payloads import okta_user

__all__ = ["seed_other_teams"]

BATCH = 2000


def _resource(index: int, domain: str) -> dict[str, Any]:
    body = okta_user(index, domain)
    for ignored in ("password", "groups"):  # what the gateway never stores
        body.pop(ignored)
    return body


def seed_other_teams(config: Path, users: int, teams: int) -> dict[str, Any]:
    """Insert ``users`` users spread evenly over ``teams`` new teams; return a summary."""
    from sqlalchemy import insert, select

    from gateway.app import Gateway
    from gateway.config import load_settings
    from gateway.store.common import utcnow
    from gateway.store.mapping import user_to_rows
    from gateway.store.tables import Team, User, UserValue
    from gateway.teams import create_team

    team_table = Team.__table__  # type: ignore[attr-defined]
    user_table = User.__table__  # type: ignore[attr-defined]
    value_table = UserValue.__table__  # type: ignore[attr-defined]
    started = time.perf_counter()
    gateway = Gateway(load_settings(config))
    gateway.start()
    try:
        slugs = [f"bench-other-{t:03d}" for t in range(teams)]
        for t, slug in enumerate(slugs):
            create_team(gateway.db, slug, f"Seeded team {t}")
        with gateway.db.transaction(write=False) as conn:
            query = select(team_table.c.slug, team_table.c.pk).where(team_table.c.slug.in_(slugs))
            found = {row.slug: row.pk for row in conn.execute(query)}
        team_pks = [found[slug] for slug in slugs]
        per_team = [users // teams + (1 if t < users % teams else 0) for t in range(teams)]
        for team_pk, count in zip(team_pks, per_team, strict=True):
            domain = f"team{team_pk}.example.com"
            for first in range(0, count, BATCH):
                rows: list[dict[str, Any]] = []
                values: dict[str, list[dict[str, Any]]] = {}
                now = utcnow()
                for index in range(first, min(first + BATCH, count)):
                    columns, value_rows = user_to_rows(_resource(index, domain))
                    user_id = str(uuid.uuid4())
                    rows.append(
                        {
                            **columns,
                            "id": user_id,
                            "team_pk": team_pk,
                            "state": "active",
                            "role": None,
                            "created": now,
                            "last_modified": now,
                            "version": 1,
                        }
                    )
                    values[user_id] = value_rows
                with gateway.db.transaction(write=True) as conn:
                    inserted = conn.execute(
                        insert(user_table).returning(user_table.c.id, user_table.c.pk), rows
                    ).all()
                    batch = [
                        {**value, "user_pk": row.pk, "team_pk": team_pk}
                        for row in inserted
                        for value in values[row.id]
                    ]
                    conn.execute(insert(value_table), batch)
    finally:
        gateway.stop()
    return {
        "users": users,
        "teams": teams,
        "seconds": round(time.perf_counter() - started, 2),
        "method": "bulk SQL inserts (SQLAlchemy Core) using the gateway's user_to_rows mapping",
    }
