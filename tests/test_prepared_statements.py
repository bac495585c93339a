"""Prepared statements (``gateway.store.fast``): the hot paths' way to run SQL.

They skip SQLAlchemy's execution machinery, so these tests pin what must not change
with it, on both databases: values come back as SQLAlchemy would return them (aware
datetimes, JSON, booleans), a constraint violation is SQLAlchemy's IntegrityError
(the 409 of a racing create depends on it), the statements take part in the caller's
transaction (a rollback undoes them), and unsupported statements are refused.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import anyio
import pytest
from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.store.bootstrap import prepare_database
from gateway.store.db import Database, make_engine
from gateway.store.fast import Prepared
from gateway.store.tables import Team

teams = Team.__table__  # type: ignore[attr-defined]

_INSERT = Prepared(insert(teams).returning(teams.c.pk))
_BY_SLUG = Prepared(select(teams).where(teams.c.slug == bindparam("slug")))
CREATED = datetime(2026, 11, 28, 12, 30, 15, 123000, tzinfo=UTC)
SUFFIX = uuid.uuid4().hex[:8]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(make_engine(database_url, pool_size=2))
    prepare_database(database)
    yield database
    database.dispose()


def _row(slug: str) -> dict[str, object]:
    return {
        "slug": f"{slug}-{SUFFIX}",  # the PostgreSQL schema is shared by a whole run
        "name": "Acme",
        "scim_enabled": True,
        "options": {"roles": {"Admins": "admin"}, "n": [1, 2]},
        "created": CREATED,
    }


def test_values_come_back_as_sqlalchemy_returns_them(db: Database) -> None:
    with db.transaction(write=True) as conn:
        pk = _INSERT.scalar(conn, _row("acme"))
    with db.transaction(write=False) as conn:
        prepared = _BY_SLUG.first(conn, {"slug": f"acme-{SUFFIX}"})
        plain = conn.execute(select(teams).where(teams.c.slug == f"acme-{SUFFIX}")).one()
        missing = _BY_SLUG.first(conn, {"slug": f"nobody-{SUFFIX}"})
    assert missing is None
    assert prepared.pk == pk
    assert prepared._mapping == dict(plain._mapping)
    assert prepared.scim_enabled is True
    assert prepared.options == {"roles": {"Admins": "admin"}, "n": [1, 2]}
    assert prepared.created == CREATED and prepared.created.tzinfo is not None


def test_a_unique_violation_is_sqlalchemys_integrity_error(db: Database) -> None:
    with db.transaction(write=True) as conn:
        _INSERT.scalar(conn, _row("twice"))
    with pytest.raises(IntegrityError), db.transaction(write=True) as conn:
        _INSERT.scalar(conn, _row("twice"))


def test_prepared_writes_belong_to_the_callers_transaction(db: Database) -> None:
    class Undo(Exception):
        pass

    with pytest.raises(Undo), db.transaction(write=True) as conn:
        _INSERT.scalar(conn, _row("rolled-back"))
        assert _BY_SLUG.first(conn, {"slug": f"rolled-back-{SUFFIX}"}) is not None
        raise Undo
    with db.transaction(write=False) as conn:
        assert _BY_SLUG.first(conn, {"slug": f"rolled-back-{SUFFIX}"}) is None


def test_sqlalchemy_and_prepared_writes_of_one_request_commit_and_roll_back_together(
    db: Database,
) -> None:
    """A request's transaction (``db.run``; on SQLite begun on the driver) holds both
    kinds of statement: both are kept, or neither is."""

    class Undo(Exception):
        pass

    def both(conn: Connection, slug: str) -> None:
        _INSERT.scalar(conn, _row(f"{slug}-prepared"))
        conn.execute(insert(teams), _row(f"{slug}-plain"))

    def both_then_fail(conn: Connection) -> None:
        both(conn, "undone")
        raise Undo

    def slugs(conn: Connection) -> set[str]:
        found = conn.execute(select(teams.c.slug).where(teams.c.slug.like(f"%-{SUFFIX}")))
        return {slug.removesuffix(f"-{SUFFIX}") for (slug,) in found}

    anyio.run(functools.partial(db.run, both, "kept", write=True))
    with pytest.raises(Undo):
        anyio.run(functools.partial(db.run, both_then_fail, write=True))
    seen = anyio.run(db.run, slugs)
    assert {"kept-prepared", "kept-plain"} <= seen
    assert not {"undone-prepared", "undone-plain"} & seen
    # The request after a failed one starts clean on the same connection.
    anyio.run(functools.partial(db.run, both, "after", write=True))
    assert {"after-prepared", "after-plain"} <= anyio.run(db.run, slugs)


def test_statements_it_cannot_run_are_refused_when_first_used(db: Database) -> None:
    in_list = Prepared(select(teams.c.pk).where(teams.c.slug.in_(bindparam("s", expanding=True))))
    with db.transaction(write=False) as conn, pytest.raises(ValueError, match="expanding"):
        in_list.rows(conn, {"s": ["a", "b"]})


def test_none_is_stored_as_sqlalchemy_stores_it(db: Database) -> None:
    """A JSON column given None holds JSON null, not SQL NULL, whichever way it was written."""
    with db.transaction(write=True) as conn:
        _INSERT.scalar(conn, {**_row("prepared"), "options": None})
        conn.execute(insert(teams), {**_row("plain"), "options": None})
    with db.transaction(write=False) as conn:
        stored = dict(
            conn.execute(
                select(teams.c.slug, teams.c.options.is_(None)).where(
                    teams.c.slug.in_([f"prepared-{SUFFIX}", f"plain-{SUFFIX}"])
                )
            ).all()
        )
    assert stored[f"prepared-{SUFFIX}"] == stored[f"plain-{SUFFIX}"]
