"""Migrate the schema and create the teams a process needs before it serves requests."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from .db import Database
from .migrate import upgrade
from .tables import GatewaySetting, Team

__all__ = ["prepare_database"]

teams = Team.__table__  # type: ignore[attr-defined]
settings_table = GatewaySetting.__table__  # type: ignore[attr-defined]


def prepare_database(db: Database) -> None:
    """Bring the schema to this version's head (``upgrade head``): the tables of a new
    database, the new migrations of an older one. Safe when several processes start
    at once (see :mod:`gateway.store.migrate`)."""
    upgrade(db)


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
