"""Prepared statements (``gateway.store.fast``): the hot paths' way to run SQL.

They skip SQLAlchemy's execution machinery, so these tests pin what must not change
with it, on both databases: values come back as SQLAlchemy would return them (aware
datetimes, JSON, booleans), a constraint violation is SQLAlchemy's IntegrityError
(the 409 of a racing create depends on it), the statements take part in the caller's
transaction (a rollback undoes them), and unsupported statements are refused.
"""

from __future__ import annotations

import functools
import itertools
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from sqlalchemy import Connection, bindparam, event, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gateway.store import fast
from gateway.store.bootstrap import prepare_database
from gateway.store.db import Database, make_engine
from gateway.store.fast import KEYED_PLANS, SIZED_PLANS, Prepared
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
    pairs = Prepared(
        select(teams.c.pk).where(
            tuple_(teams.c.slug, teams.c.name).in_(bindparam("p", expanding=True))
        )
    )
    with db.transaction(write=False) as conn:
        with pytest.raises(ValueError, match="expanding"):
            in_list.many(conn, [{"s": ["a", "b"]}])
        with pytest.raises(ValueError, match="expanding"):
            pairs.rows(conn, {"p": [("a", "b")]})
        with pytest.raises(ValueError, match="INSERT"):
            in_list.insert_rows(conn, [{"s": ["a"]}])
        with pytest.raises(ValueError, match="RETURNING"):  # that is many()'s
            Prepared(insert(teams)).insert_rows(conn, [_row("no-returning")] * 2)


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


# --- IN lists and inserts of several rows ------------------------------------------------

SIZES = [1, 2, 100, 500]
_BY_SLUGS = Prepared(
    select(teams.c.pk, teams.c.slug, teams.c.created, teams.c.options)
    .where(teams.c.slug.in_(bindparam("slugs", expanding=True)), teams.c.name == bindparam("name"))
    .order_by(teams.c.pk)
)


def _rows(prefix: str, n: int) -> list[dict[str, object]]:
    return [
        {**_row(f"{prefix}-{i}"), "created": CREATED + timedelta(seconds=i), "options": {"i": i}}
        for i in range(n)
    ]


def _insert_ignore(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return (
        dialect.insert(teams)
        .on_conflict_do_nothing()
        .returning(teams.c.slug, teams.c.created, teams.c.options, teams.c.scim_enabled)
    )


def _comparable(params: Any) -> Any:
    """The driver's parameters, with psycopg's JSON wrappers (equal only to themselves)
    as what they wrap."""
    if isinstance(params, dict):
        return {key: _comparable(value) for key, value in params.items()}
    if isinstance(params, list | tuple):
        return type(params)(_comparable(value) for value in params)
    return getattr(params, "obj", params) if type(params).__name__ == "Json" else params


class Sent:
    """The statements the engine hands the driver while it is used as a context."""

    def __init__(self, db: Database) -> None:
        self.engine = db.engine
        self.statements: list[tuple[str, Any]] = []

    def _before(self, conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
        self.statements.append((sql, _comparable(params)))

    def __enter__(self) -> list[tuple[str, Any]]:
        event.listen(self.engine, "before_cursor_execute", self._before)
        return self.statements

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)


@pytest.mark.parametrize("size", SIZES)
def test_an_in_list_gives_what_sqlalchemy_gives(db: Database, size: int) -> None:
    """The SQL and the driver's parameters are SQLAlchemy's, and so are the rows."""
    with db.transaction(write=True) as conn:
        conn.execute(insert(teams), _rows(f"in{size}", 2 * size))
    slugs = [f"in{size}-{i}-{SUFFIX}" for i in range(0, 2 * size, 2)][: size - 1]
    params = {"slugs": [*slugs, f"nobody-{SUFFIX}"], "name": "Acme"}
    with db.transaction(write=False) as conn:
        with Sent(db) as plain_sent:
            plain = conn.execute(_BY_SLUGS.stmt, params).all()
        with Sent(db) as prepared_sent:
            prepared = _BY_SLUGS.rows(conn, params)
        again = _BY_SLUGS.rows(conn, {**params, "slugs": list(reversed(params["slugs"]))})
    assert [r._mapping for r in prepared] == [dict(r._mapping) for r in plain]
    assert [r.slug for r in prepared] == slugs
    assert [r._mapping for r in again] == [r._mapping for r in prepared]
    assert prepared_sent == plain_sent


def test_an_in_list_of_values_the_dialect_converts_gives_what_sqlalchemy_gives(
    db: Database,
) -> None:
    """Each value goes through the column type's bind processor (SQLite stores these
    timestamps as text), as SQLAlchemy sends it."""
    by_created = Prepared(
        select(teams.c.slug)
        .where(
            teams.c.created.in_(bindparam("when", expanding=True)),
            teams.c.slug.like(bindparam("like")),
        )
        .order_by(teams.c.slug)
    )
    with db.transaction(write=True) as conn:
        conn.execute(insert(teams), _rows("when", 5))
    params = {
        "when": [CREATED + timedelta(seconds=i) for i in (4, 1, 3)],
        "like": f"when-%-{SUFFIX}",
    }
    with db.transaction(write=False) as conn:
        with Sent(db) as plain_sent:
            plain = conn.execute(by_created.stmt, params).scalars().all()
        with Sent(db) as prepared_sent:
            prepared = [row.slug for row in by_created.rows(conn, params)]
    assert prepared == plain == [f"when-{i}-{SUFFIX}" for i in (1, 3, 4)]
    assert prepared_sent == plain_sent


def test_an_in_list_of_no_values_finds_nothing(db: Database) -> None:
    with db.transaction(write=True) as conn:
        conn.execute(insert(teams), _rows("empty", 1))
    with db.transaction(write=False) as conn:
        assert _BY_SLUGS.rows(conn, {"slugs": [], "name": "Acme"}) == []
        assert conn.execute(_BY_SLUGS.stmt, {"slugs": [], "name": "Acme"}).all() == []


def test_plans_for_list_lengths_are_bounded(db: Database) -> None:
    by_slugs = Prepared(_BY_SLUGS.stmt)
    with db.transaction(write=True) as conn:
        conn.execute(insert(teams), _rows("bounded", 3))
    with db.transaction(write=False) as conn:
        for size in range(1, SIZED_PLANS + 10):
            slugs = [f"bounded-{i % 3}-{SUFFIX}" for i in range(size)]
            found = by_slugs.rows(conn, {"slugs": slugs, "name": "Acme"})
            assert len(found) == min(size, 3)
        (plan,) = by_slugs._plans.values()
    assert len(plan._sized) == SIZED_PLANS


def test_plans_for_sets_of_columns_are_bounded(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update compiles once per set of columns it is given (a user's write sets
    those that changed): past KEYED_PLANS sets (made small here), the first kept go,
    and each call still sets what it was given."""
    assert KEYED_PLANS >= 64
    monkeypatch.setattr(fast, "KEYED_PLANS", 10)
    update_team = Prepared(update(teams).where(teams.c.slug == bindparam("b_slug")))
    with db.transaction(write=True) as conn:
        conn.execute(insert(teams), _rows("keyed", 1))
    values = {
        "name": "Renamed",
        "scim_enabled": False,
        "options": {"n": 1},
        "default_adapter": "okta",
        "created": CREATED + timedelta(days=1),
        "config_digest": "d" * 64,
    }
    sets = [s for n in range(1, 7) for s in itertools.combinations(values, n)]
    with db.transaction(write=True) as conn:
        for subset in [*sets, *sets]:
            params = {column: values[column] for column in subset}
            assert update_team.run(conn, {**params, "b_slug": f"keyed-0-{SUFFIX}"}) == 1
            assert len(update_team._plans) <= 10
        stored = _BY_SLUG.first(conn, {"slug": f"keyed-0-{SUFFIX}"})
    assert len(update_team._plans) == 10
    assert {column: getattr(stored, column) for column in values} == values


@pytest.mark.parametrize("size", SIZES)
def test_an_insert_of_rows_gives_what_sqlalchemy_gives(db: Database, size: int) -> None:
    """One statement, SQLAlchemy's "insertmanyvalues" SQL and parameters, the same
    rows back; ``ON CONFLICT DO NOTHING`` returns only the rows it inserted."""

    class Undo(Exception):
        pass

    rows = _rows(f"ins{size}", size)
    there = rows[::3]  # already stored: not inserted again, not returned
    with db.transaction(write=True) as conn:
        conn.execute(insert(teams), there)
    outcomes = []
    for run in ("plain", "prepared"):
        with pytest.raises(Undo), db.transaction(write=True) as conn:
            stmt = _insert_ignore(conn)
            with Sent(db) as sent:
                if run == "plain":
                    returned = [tuple(r) for r in conn.execute(stmt, rows).all()]
                else:
                    returned = [tuple(r) for r in Prepared(stmt).insert_rows(conn, rows)]
            outcomes.append((sent, sorted(returned)))
            raise Undo
    (plain_sent, plain), (prepared_sent, prepared) = outcomes
    assert prepared == plain
    assert [slug for slug, *_ in prepared] == sorted(
        str(r["slug"]) for i, r in enumerate(rows) if i % 3
    )
    assert all(created.tzinfo is not None for _slug, created, *_ in prepared)
    assert len(prepared_sent) == 1
    assert prepared_sent == plain_sent


def test_two_concurrent_inserts_of_one_row_return_it_once(database_url: str) -> None:
    """On PostgreSQL the second insert waits for the first to commit, then skips the
    conflicting row; on SQLite the second writer waits for the first. Either way
    exactly one of them gets the row back (one membership event, not two)."""
    database = Database(make_engine(database_url, pool_size=4))
    prepare_database(database)
    row = {**_row("raced"), "slug": f"raced-{uuid.uuid4().hex[:8]}"}
    first_inserted = threading.Event()
    results: dict[str, list[Any]] = {}

    def second() -> None:
        first_inserted.wait()
        with database.transaction(write=True) as conn:
            results["second"] = Prepared(_insert_ignore(conn)).insert_rows(conn, [row])

    thread = threading.Thread(target=second)
    thread.start()
    try:
        with database.transaction(write=True) as conn:
            results["first"] = Prepared(_insert_ignore(conn)).insert_rows(conn, [row])
            first_inserted.set()
            thread.join(timeout=0.5)  # the second is waiting for this transaction
            assert thread.is_alive()
    finally:
        first_inserted.set()
        thread.join()
        database.dispose()
    assert [len(results["first"]), len(results["second"])] == [1, 0]


def test_plans_for_numbers_of_rows_are_bounded(db: Database) -> None:
    with db.transaction(write=True) as conn:
        prepared = Prepared(_insert_ignore(conn))
        for size in range(1, SIZED_PLANS + 10):
            rows = _rows(f"rows{size}", size)
            assert len(prepared.insert_rows(conn, rows)) == size
        (plan,) = prepared._row_plans.values()
    assert len(plan._sized) == SIZED_PLANS


def test_rows_sharing_and_alternating_times_store_each_rows_own(db: Database) -> None:
    """A datetime's bind conversion is kept for the value it was last given (a write
    passes its time many times over): rows given one time object, then times that
    alternate, equal ones that are other objects, and times in other zones store each
    row's own time, as SQLAlchemy does."""
    shared = CREATED
    later = CREATED + timedelta(minutes=5)
    same_instant_elsewhere = CREATED.astimezone(timezone(timedelta(hours=-5)))
    times = [shared, shared, later, shared, later, later, same_instant_elsewhere, shared]
    times.append(datetime(2026, 11, 28, 12, 30, 15, 123000, tzinfo=UTC))  # equal, not same
    rows = [{**_row(f"times-{i}"), "created": when} for i, when in enumerate(times)]
    many = Prepared(insert(teams))
    with db.transaction(write=True) as conn:
        many.many(conn, rows)
    with db.transaction(write=False) as conn:
        for i, when in enumerate(times):
            stored = _BY_SLUG.first(conn, {"slug": f"times-{i}-{SUFFIX}"})
            plain = conn.execute(select(teams.c.created).where(teams.c.pk == stored.pk)).scalar()
            assert stored.created == when == plain, i
