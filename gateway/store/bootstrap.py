"""Migrate the schema and create the teams a process needs before it serves requests."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from .common import utcnow
from .db import Database
from .migrate import upgrade
from .tables import GatewaySetting, Team

__all__ = ["ensure_team", "prepare_database"]

teams = Team.__table__  # type: ignore[attr-defined]
settings_table = GatewaySetting.__table__  # type: ignore[attr-defined]


def prepare_database(db: Database) -> None:
    """Bring the schema to this version's head (``upgrade head``): the tables of a new
    database, the new migrations of an older one. Safe when several processes start
    at once (see :mod:`gateway.store.migrate`)."""
    upgrade(db)


def ensure_team(db: Database, slug: str, name: str | None = None) -> int:
    """The ``pk`` of team ``slug``, created if it does not exist yet."""

    def find() -> int | None:
        with db.transaction(write=False) as conn:
            return conn.execute(select(teams.c.pk).where(teams.c.slug == slug)).scalar()

    existing = find()
    if existing is not None:
        return existing
    try:
        with db.transaction(write=True) as conn:
            return int(
                conn.execute(
                    insert(teams).returning(teams.c.pk),
                    {
                        "slug": slug,
                        "name": name or slug,
                        "created": utcnow(),
                        "scim_enabled": True,
                        "default_adapter": "generic",
                    },
                ).scalar_one()
            )
    except IntegrityError:
        found = find()
        assert found is not None
        return found


def shared_secret(db: Database, name: str, generate: Callable[[], str]) -> str:
    """A value every gateway process shares, generated once and kept in the database."""

    def read() -> str | None:
        with db.transaction(write=False) as conn:
            stmt = select(settings_table.c.value).where(settings_table.c.name == name)
            value: str | None = conn.execute(stmt).scalar()
            return value

    existing = read()
    if existing is not None:
        return existing
    try:
        with db.transaction(write=True) as conn:
            conn.execute(insert(settings_table), {"name": name, "value": generate()})
    except IntegrityError:
        pass  # another process won the race; use its value
    value = read()
    assert value is not None
    return value
