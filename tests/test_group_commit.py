"""SQLite group commit (``Database.run``): the writes of the requests served in one
turn of the event loop share one transaction and one COMMIT.

What a client relies on must not change with it: a request returns only once its
work is committed (another process sees it), a request that fails undoes only its
own work, a commit that fails fails every request of the group and keeps none of
their work, and a read served beside uncommitted writes answers only once they are
committed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, insert, text

from gateway.scim.errors import ServiceUnavailable
from gateway.store import db as db_module
from gateway.store.db import WAL_AUTOCHECKPOINT_PAGES, Database, make_engine
from gateway.store.fast import Prepared


class Refused(Exception):
    """A request's own error (a SCIM 4xx, say)."""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "group.sqlite3"


@pytest.fixture
def db(path: Path) -> Iterator[Database]:
    database = Database(make_engine(f"sqlite:///{path}", pool_size=2))
    with database.transaction(write=True) as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE item (name TEXT PRIMARY KEY,"
                " parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
    yield database
    database.dispose()


def _committed(path: Path) -> set[str]:
    """The item names another process sees: committed, and only those."""
    other = sqlite3.connect(path)
    try:
        return {name for (name,) in other.execute("SELECT name FROM item")}
    finally:
        other.close()


def _insert(name: str, *, parent: int | None = None, fail: bool = False) -> Any:
    def work(conn: Connection) -> str:
        conn.execute(
            text("INSERT INTO item (name, parent) VALUES (:n, :p)"), {"n": name, "p": parent}
        )
        if fail:
            raise Refused(name)
        return name

    return work


def _commits(db: Database) -> list[str]:
    """COMMIT statements the held connection runs from now on."""
    seen: list[str] = []
    assert db._held is not None
    raw = db._held.connection.driver_connection
    assert raw is not None
    raw.set_trace_callback(lambda sql: seen.append(sql) if sql.startswith("COMMIT") else None)
    return seen


def test_writes_served_together_share_one_commit_and_return_committed(
    db: Database, path: Path
) -> None:
    async def main() -> tuple[list[str], list[set[str]], list[str]]:
        await db.run(_insert("warm-up"), write=True)  # the loop's connection is open
        commits = _commits(db)
        seen_at_return: list[set[str]] = []

        async def one(name: str) -> str:
            result = await db.run(_insert(name), write=True)
            seen_at_return.append(_committed(path))
            return str(result)

        names = await asyncio.gather(*(one(f"user-{i}") for i in range(8)))
        return names, seen_at_return, commits

    names, seen_at_return, commits = asyncio.run(main())
    assert names == [f"user-{i}" for i in range(8)]
    assert len(commits) == 1  # eight writes, one COMMIT
    # Each request returned only once its row was visible to another connection.
    for seen in seen_at_return:
        assert set(names) <= seen


def _bob_fails_between_alice_and_carol(db: Database, path: Path) -> None:
    """Three writes served together, the middle one failing after its insert: only its
    own work is undone."""

    async def main() -> tuple[Any, ...]:
        return await asyncio.gather(
            db.run(_insert("alice"), write=True),
            db.run(_insert("bob", fail=True), write=True),
            db.run(_insert("carol"), write=True),
            return_exceptions=True,
        )

    alice, bob, carol = asyncio.run(main())
    assert (alice, carol) == ("alice", "carol")
    assert isinstance(bob, Refused)
    assert _committed(path) == {"alice", "carol"}


def test_a_failing_request_undoes_only_its_own_work(db: Database, path: Path) -> None:
    _bob_fails_between_alice_and_carol(db, path)


def test_when_the_first_request_of_a_group_fails_the_others_still_commit(
    db: Database, path: Path
) -> None:
    async def main() -> tuple[Any, ...]:
        return await asyncio.gather(
            db.run(_insert("bob", fail=True), write=True),  # opens the group, then fails
            db.run(_insert("alice"), write=True),
            db.run(_insert("carol", fail=True), write=True),
            db.run(_insert("dave"), write=True),
            return_exceptions=True,
        )

    bob, alice, carol, dave = asyncio.run(main())
    assert isinstance(bob, Refused) and isinstance(carol, Refused)
    assert (alice, dave) == ("alice", "dave")
    assert _committed(path) == {"alice", "dave"}


def test_a_failed_commit_fails_every_request_of_the_group_and_keeps_nothing(
    db: Database, path: Path
) -> None:
    # A deferred foreign key is checked at COMMIT: one request of the group breaks
    # it, so the group's commit fails.
    async def main() -> tuple[Any, ...]:
        return await asyncio.gather(
            db.run(_insert("alice"), write=True),
            db.run(_insert("orphan", parent=42), write=True),
            db.run(_insert("carol"), write=True),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    assert all(isinstance(r, ServiceUnavailable) for r in results), results
    assert _committed(path) == set()

    # The connection is clean afterwards: the next write commits on its own.
    assert asyncio.run(db.run(_insert("dave"), write=True)) == "dave"
    assert _committed(path) == {"dave"}


def test_a_read_served_beside_writes_answers_once_they_are_committed(
    db: Database, path: Path
) -> None:
    def count(conn: Connection) -> int:
        return int(conn.execute(text("SELECT count(*) FROM item")).scalar_one())

    async def main() -> tuple[int, set[str]]:
        async def read() -> tuple[int, set[str]]:
            n = await db.run(count)
            return n, _committed(path)

        _written, (n, seen) = await asyncio.gather(db.run(_insert("alice"), write=True), read())
        return n, seen

    n, seen = asyncio.run(main())
    assert n == 1  # the read saw the write served before it...
    assert seen == {"alice"}  # ...and answered only once it was committed


def test_a_request_cancelled_while_it_waits_for_the_commit_leaves_the_group_whole(
    db: Database, path: Path
) -> None:
    # A client that hangs up while its write waits for the group's commit: its task is
    # cancelled, but its work is already in the transaction, which commits for the
    # others; the group does not wait for it, fail for it, or lose its row.
    async def main() -> tuple[list[str], bool]:
        await db.run(_insert("warm-up"), write=True)
        alice = asyncio.ensure_future(db.run(_insert("alice"), write=True))
        gone = asyncio.ensure_future(db.run(_insert("gone"), write=True))
        bob = asyncio.ensure_future(db.run(_insert("bob"), write=True))
        await asyncio.sleep(0)  # each has run its work and waits for the commit
        gone.cancel()
        written = await asyncio.wait_for(asyncio.gather(alice, bob), timeout=10)
        await asyncio.gather(gone, return_exceptions=True)
        return [str(name) for name in written], gone.cancelled()

    written, cancelled = asyncio.run(main())
    assert written == ["alice", "bob"]
    assert cancelled
    assert _committed(path) == {"warm-up", "alice", "gone", "bob"}
    assert asyncio.run(db.run(_insert("carol"), write=True)) == "carol"  # and it goes on


def test_a_transaction_opened_by_other_code_commits_the_open_group_first(
    db: Database, path: Path
) -> None:
    async def main() -> tuple[str, set[str]]:
        async def other_code() -> set[str]:
            # Synchronous database work on the loop's thread (start-up work, the
            # key's last-used stamp) while a group waits for its commit.
            return db.call(lambda conn: _committed(path))

        written, seen = await asyncio.gather(db.run(_insert("alice"), write=True), other_code())
        return str(written), seen

    written, seen = asyncio.run(main())
    assert written == "alice"
    assert seen == {"alice"}


def test_a_database_busy_beyond_the_timeout_answers_503(db: Database, path: Path) -> None:
    # Another process holds the write lock past the busy timeout: the group's
    # transaction cannot begin.
    asyncio.run(db.run(_insert("warm-up"), write=True))
    assert db._held is not None
    held_raw = db._held.connection.driver_connection
    assert held_raw is not None
    held_raw.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:

        async def main() -> tuple[Any, ...]:
            return await asyncio.gather(
                db.run(_insert("alice"), write=True),
                db.run(_insert("bob"), write=True),
                return_exceptions=True,
            )

        results = asyncio.run(main())
    finally:
        other.rollback()
        other.close()
    assert all(isinstance(r, ServiceUnavailable) for r in results), results
    assert _committed(path) == {"warm-up"}
    assert asyncio.run(db.run(_insert("carol"), write=True)) == "carol"  # and it recovers


def test_a_connection_lost_in_a_group_answers_every_request_and_recovers(
    db: Database, path: Path
) -> None:
    def lose_the_connection(conn: Connection) -> None:
        conn.execute(text("INSERT INTO item (name) VALUES ('bob')"))
        conn.invalidate()  # what a disconnect error does to it
        raise Refused("bob")

    async def main() -> tuple[Any, ...]:
        await db.run(_insert("warm-up"), write=True)
        return await asyncio.wait_for(
            asyncio.gather(
                db.run(_insert("alice"), write=True),
                db.run(lose_the_connection, write=True),
                return_exceptions=True,
            ),
            timeout=10,  # a request left waiting on the group would hang here
        )

    alice, bob = asyncio.run(main())
    # Alice's work was in the lost transaction: she is told to retry, not that it saved.
    assert isinstance(alice, ServiceUnavailable)
    assert isinstance(bob, Refused | ServiceUnavailable)  # its own error, or the group's
    assert _committed(path) == {"warm-up"}
    assert asyncio.run(db.run(_insert("carol"), write=True)) == "carol"
    assert _committed(path) == {"warm-up", "carol"}


def _padded(name: str) -> Any:
    def work(conn: Connection) -> str:
        conn.execute(text("INSERT INTO item (name) VALUES (:n)"), {"n": name + "." + "x" * 3000})
        return name

    return work


def test_commits_leave_copying_the_wal_back_to_a_thread_of_their_own(
    db: Database, path: Path
) -> None:
    # SQLite's automatic checkpoint would copy the WAL back into the database file
    # inside a commit, on the event loop's thread. A commit only nudges the thread
    # that does it; its own backstop is far away.
    async def main() -> None:
        await db.run(_insert("warm-up"), write=True)
        for group in range(20):
            await asyncio.gather(*(db.run(_padded(f"{group}-{i}"), write=True) for i in range(8)))

    size_before = path.stat().st_size
    asyncio.run(main())
    assert db._held is not None
    raw = db._held.connection.driver_connection
    assert raw is not None
    assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_AUTOCHECKPOINT_PAGES
    checkpointer = db._checkpointer
    assert checkpointer is not None and checkpointer.alive
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.stat().st_size > size_before + 160 * 3000:
            break
        time.sleep(0.02)
    # The 160 rows of 3 KB reached the database file itself, which no commit wrote.
    assert path.stat().st_size > size_before + 160 * 3000
    assert checkpointer.runs >= 1 and checkpointer.last is not None
    assert checkpointer.last[2] > 0  # frames it copied
    assert len(_committed(path)) == 161


def test_disposing_the_database_stops_its_checkpoint_thread(db: Database) -> None:
    asyncio.run(db.run(_insert("warm-up"), write=True))
    checkpointer = db._checkpointer
    assert checkpointer is not None and checkpointer.alive
    db.dispose()
    assert not checkpointer.alive
    assert db._checkpointer is None


def test_an_in_memory_database_has_no_checkpoint_thread() -> None:
    database = Database(make_engine("sqlite://", pool_size=1))
    try:
        asyncio.run(database.run(lambda conn: conn.execute(text("SELECT 1")), write=True))
        assert database._checkpointer is None
    finally:
        database.dispose()


def _temporary_files() -> list[str]:
    """SQLite's temporary files this process has open (they are unlinked at once, so
    only the process's open files show them)."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:  # closed meanwhile
            continue
        if "etilqs_" in target:
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
def test_a_group_keeps_its_statement_journals_in_memory(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement that changes many rows inside a group's transaction has SQLite keep
    a journal of the pages it changes that the group had changed already, to undo that
    statement alone. SQLite would keep it in a temporary file, made anew for each
    group, once it grew past 64 KiB: a file open, an unlink and a write system call
    per page for every group."""
    seen_at_commit: list[list[str]] = []
    commit = db._commit_group

    def inspected() -> None:
        seen_at_commit.append(_temporary_files())
        commit()

    monkeypatch.setattr(db, "_commit_group", inspected)

    def fill(conn: Connection) -> None:  # some 60 pages of rows
        conn.execute(text("CREATE TABLE wide (id INTEGER PRIMARY KEY, body TEXT)"))
        conn.execute(text("INSERT INTO wide (body) VALUES (:b)"), [{"b": "x" * 100}] * 2000)

    def rewrite(conn: Connection) -> None:  # every one of those pages, again
        conn.execute(text("UPDATE wide SET body = upper(body) || ''"))

    async def main() -> None:
        await db.run(_insert("warm-up"), write=True)
        await asyncio.gather(
            db.run(fill, write=True), *(db.run(rewrite, write=True) for _ in range(3))
        )

    asyncio.run(main())
    assert seen_at_commit and seen_at_commit[-1] == []


def test_the_data_version_is_read_once_per_group_of_writes(db: Database) -> None:
    """While a group of writes holds SQLite's write lock no other connection can
    commit: the data version read during the group stands for the rest of it (the key
    check of every request asks for it), and is read again once the group commits."""
    assert db.data_version() is not None  # the watch connection is open
    assert db._watch is not None
    reads: list[str] = []
    db._watch.set_trace_callback(reads.append)
    during: list[int | None] = []

    def look(name: str) -> Any:
        def work(conn: Connection) -> None:
            during.append(db.data_version())
            _insert(name)(conn)

        return work

    async def main() -> None:
        await asyncio.gather(*(db.run(look(f"n{i}"), write=True) for i in range(3)))

    asyncio.run(main())
    assert len(reads) == 1 and len(set(during)) == 1
    after = db.data_version()  # the group committed: read again, and it moved
    assert len(reads) == 2 and after != during[0]
    db.data_version()  # no group open: every call reads it
    assert len(reads) == 3


def _parent_with_items(names: list[str]) -> Any:
    """A parent row (its id chosen by SQLite), then items naming it: what a request
    answers depends on an id the database gave it."""

    def work(conn: Connection) -> tuple[int, list[str]]:
        parent = conn.execute(text("INSERT INTO parent DEFAULT VALUES RETURNING id")).scalar_one()
        conn.execute(
            text("INSERT INTO item (name, parent) VALUES (:n, :p)"),
            [{"n": name, "p": parent} for name in names],
        )
        return int(parent), names

    return work


def test_a_request_failing_after_its_writes_leaves_the_others_answers_true(
    db: Database, path: Path
) -> None:
    """The group is begun again without the failed request's writes: the rows and
    the ids the other requests were given are what is committed."""

    async def main() -> tuple[Any, ...]:
        await db.run(_insert("warm-up"), write=True)
        return await asyncio.gather(
            db.run(_parent_with_items(["a1", "a2"]), write=True),
            db.run(_parent_with_items(["b1"]), write=True),
            db.run(_insert("bob", fail=True), write=True),  # writes, then fails
            db.run(_parent_with_items(["c1", "c2", "c3"]), write=True),
            return_exceptions=True,
        )

    a, b, bob, c = asyncio.run(main())
    assert isinstance(bob, Refused)
    other = sqlite3.connect(path)
    try:
        committed = dict(other.execute("SELECT name, parent FROM item WHERE parent IS NOT NULL"))
        parents = {row[0] for row in other.execute("SELECT id FROM parent")}
    finally:
        other.close()
    for parent, names in (a, b, c):
        assert parent in parents
        assert all(committed[name] == parent for name in names)
    assert len({a[0], b[0], c[0]}) == 3
    assert _committed(path) == {"warm-up", "a1", "a2", "b1", "c1", "c2", "c3"}


def test_a_request_failing_before_any_write_runs_nothing_again(db: Database, path: Path) -> None:
    """Almost every failed request (a 4xx) fails before it writes: the others'
    statements are not run a second time."""

    def refuse(conn: Connection) -> None:
        conn.execute(text("SELECT count(*) FROM item")).scalar_one()
        raise Refused("carol")

    async def main() -> tuple[list[str], tuple[Any, ...]]:
        await db.run(_insert("warm-up"), write=True)
        assert db._held is not None
        raw = db._held.connection.driver_connection
        assert raw is not None
        inserts: list[str] = []
        raw.set_trace_callback(lambda sql: inserts.append(sql) if sql.startswith("INSERT") else 0)
        results = await asyncio.gather(
            db.run(_insert("alice"), write=True),
            db.run(refuse, write=True),
            db.run(_insert("dave"), write=True),
            return_exceptions=True,
        )
        raw.set_trace_callback(None)
        return inserts, results

    inserts, (alice, carol, dave) = asyncio.run(main())
    assert (alice, dave) == ("alice", "dave") and isinstance(carol, Refused)
    assert len(inserts) == 2
    assert _committed(path) == {"warm-up", "alice", "dave"}


_ITEMS = Table(
    "item", MetaData(), Column("name", String, primary_key=True), Column("parent", Integer)
)
_INSERT_ITEMS = Prepared(insert(_ITEMS))


def test_prepared_writes_of_the_others_survive_a_failed_request(db: Database, path: Path) -> None:
    """The store's prepared statements (the hot writes) are taken back and run again
    like any other: a request failing after its writes keeps the others'."""

    def prepared(names: list[str]) -> Any:
        def work(conn: Connection) -> list[str]:
            _INSERT_ITEMS.many(conn, [{"name": name, "parent": None} for name in names])
            return names

        return work

    async def main() -> tuple[Any, ...]:
        await db.run(_insert("warm-up"), write=True)
        return await asyncio.gather(
            db.run(prepared(["p1", "p2"]), write=True),
            db.run(_insert("bob", fail=True), write=True),
            db.run(prepared(["p3"]), write=True),
            return_exceptions=True,
        )

    first, bob, third = asyncio.run(main())
    assert isinstance(bob, Refused)
    assert (first, third) == (["p1", "p2"], ["p3"])
    assert _committed(path) == {"warm-up", "p1", "p2", "p3"}


def test_another_database_on_the_same_engine_logs_nothing_twice(db: Database, path: Path) -> None:
    """Each statement is run again once: a second ``Database`` made on the same engine
    (an operator's tool, a test) adds no second log of it."""
    Database(db.engine)
    _bob_fails_between_alice_and_carol(db, path)


def test_a_commit_by_another_process_while_a_group_begins_again_fails_the_group(
    db: Database, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the rollback and the new BEGIN another process may commit; the logged
    statements might then name rows that are now another's. The group is not run
    again: its requests answer 503 and none of their work is kept."""
    roll_back = db_module._roll_back

    def and_another_commits(conn: Connection, raw: sqlite3.Connection) -> None:
        rolled_back = raw.in_transaction  # the group's, not a request's first look
        roll_back(conn, raw)
        if not rolled_back:
            return
        other = sqlite3.connect(path)
        try:
            other.execute("INSERT INTO item (name) VALUES ('elsewhere')")
            other.commit()
        finally:
            other.close()

    async def main() -> tuple[Any, ...]:
        await db.run(_insert("warm-up"), write=True)
        monkeypatch.setattr(db_module, "_roll_back", and_another_commits)
        return await asyncio.gather(
            db.run(_insert("alice"), write=True),
            db.run(_insert("bob", fail=True), write=True),
            return_exceptions=True,
        )

    alice, bob = asyncio.run(main())
    assert isinstance(alice, ServiceUnavailable)
    assert isinstance(bob, Refused | ServiceUnavailable)
    assert _committed(path) == {"warm-up", "elsewhere"}
