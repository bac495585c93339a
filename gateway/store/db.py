"""Database engines: SQLite (the embedded default) and PostgreSQL.

Each request's database work runs as one synchronous transaction
(:meth:`Database.run`): on PostgreSQL on a worker thread, one thread hop per request
rather than one per statement; on SQLite on the event loop's thread, where the
writes of the requests served in one turn of the loop share one commit (see
:meth:`Database.run`). SQLite runs in WAL mode with foreign keys on; write
transactions start with ``BEGIN IMMEDIATE`` so two writers never deadlock on a lock
upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread
import orjson
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.pool import QueuePool

from ..scim.errors import ServiceUnavailable
from .fast import STATEMENT_LOGS, Prepared

__all__ = ["Database", "make_engine", "normalise_url", "scratch"]

_SCRATCH = "scim_gateway.transaction"
log = logging.getLogger("scim_gateway.db")


def scratch(conn: Connection) -> dict[str, Any]:
    """A dict that lives as long as the current transaction of ``conn``: what one
    step of a write learnt and a later step of the same write can reuse (a member's
    userName, resolved to add it, is the name its audit record shows)."""
    found: dict[str, Any] = conn.info.setdefault(_SCRATCH, {})
    return found


def kept_names(conn: Connection, resource_type: str, team_pk: int) -> dict[str, str | None]:
    """The names (userNames, group displayNames, by ``resource_type``) of the team's
    resources that the current write read or wrote, by id, as they are now in it: kept
    in :func:`scratch` by the store, so that the write's audit records (see
    ``audit.Names``) need no lookup of their own."""
    names: dict[str, str | None] = scratch(conn).setdefault(f"names:{resource_type}:{team_pk}", {})
    return names


P = ParamSpec("P")
T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and pick the psycopg 3 driver for it."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def _journal_mode_wal(cur: sqlite3.Cursor, patience: float) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another connection holds the lock.

    Turning a new database file to WAL needs it to itself, and SQLite answers "database
    is locked" at once, without waiting out the busy timeout, when several processes
    open a new file together (gateways started at the same moment)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _as_is(value: Any) -> Any:
    return value


# The driver binds an int, float or str as it is, but asks its adapter registry about
# every other value, ``None`` and ``bytes`` included: on Python 3.11 an unregistered
# type costs a failed attribute lookup whose AttributeError is formatted and then
# dropped. A create binds some 30 NULLs and a document. Adapters
# that return the value unchanged answer from the registry instead; what is bound is
# the same (None as NULL, bytes as a BLOB).
sqlite3.register_adapter(type(None), _as_is)
sqlite3.register_adapter(bytes, _as_is)


WAL_AUTOCHECKPOINT_PAGES = 10_000
"""Pages (4 KiB each) the WAL may hold before a commit copies them back into the
database file itself, as SQLite's automatic checkpoint does: a backstop. A serving
gateway copies them on a thread of its own (:class:`_Checkpointer`) long before."""


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        # The connection's busy timeout (its ``timeout`` argument) bounds the wait.
        _journal_mode_wal(cur, patience=cur.execute("PRAGMA busy_timeout").fetchone()[0] / 1000)
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA case_sensitive_like=ON")
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        # Temporary files in memory: above all the journal by which SQLite can undo one
        # statement of a transaction (the pages it changes that the transaction had
        # changed already), which would otherwise spill into a file made anew for
        # each group commit (an open, an unlink and a write per page).
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        if raw.in_transaction:
            # SQLAlchemy autobegan inside a transaction that Database.transaction
            # opened on the driver: it joins that one.
            return
        write = conn.get_execution_options().get("scim_write", False)
        _sqlite_statement(conn, raw, "BEGIN IMMEDIATE" if write else "BEGIN")


def _sqlite_statement(conn: Connection, raw: sqlite3.Connection, sql: str) -> None:
    """``BEGIN``/``COMMIT`` straight to the driver: SQLAlchemy's own execute would add
    ~25 µs to every transaction, and these statements need none of what it does. A
    driver error is raised as SQLAlchemy's, as any statement's would be."""
    try:
        raw.execute(sql)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, (), exc, sqlite3.Error, dialect=conn.dialect) from exc


@contextlib.contextmanager
def _sqlite_transaction(conn: Connection, write: bool) -> Iterator[None]:
    """One SQLite transaction, begun and ended on the driver connection.

    ``BEGIN IMMEDIATE`` for a write (it takes the write lock up front, so two writers
    never deadlock on a lock upgrade), ``BEGIN`` for a read (one snapshot for all its
    statements). Statements run through SQLAlchemy inside it make SQLAlchemy begin a
    transaction of its own, which joins this one (see ``_on_begin``); it is then ended
    through SQLAlchemy, so that SQLAlchemy's state stays right."""
    raw = conn.connection.driver_connection
    assert raw is not None
    _roll_back(conn, raw)  # anything left open by earlier work on this connection
    _sqlite_statement(conn, raw, "BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
        if conn.in_transaction():
            conn.commit()
        elif raw.in_transaction:
            _sqlite_statement(conn, raw, "COMMIT")
    except BaseException:
        # The work failed, or its COMMIT did (the database busy past the timeout),
        # which leaves the transaction open: end it, so the connection is clean.
        _roll_back(conn, raw)
        raise


def _roll_back(conn: Connection, raw: sqlite3.Connection) -> None:
    """End whatever transaction is open: SQLAlchemy's (which ends the driver's too), or
    the driver's alone. SQLAlchemy's is rolled back even when a failed COMMIT left it
    inactive: until then the connection refuses every statement."""
    if conn.get_transaction() is not None:
        conn.rollback()
    if raw.in_transaction:
        raw.rollback()


def _json_loads(text: str | bytes) -> Any:
    """JSON columns read with orjson (several times faster than the standard library:
    a page of 100 users decodes 300 of them). Stored JSON came from request bodies that
    orjson parsed, so it reads back the same; text orjson refuses (``NaN``) falls back
    to the standard library."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _json_dumps(value: Any) -> str:
    """JSON columns written with orjson (the standard library's encoder was a twentieth
    of a user create). What orjson refuses (an integer beyond 64 bits, a non-string
    key it cannot convert) goes through the standard library, as before."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            json_deserializer=_json_loads,
            json_serializer=_json_dumps,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False, "timeout": 10},
        )
        _sqlite_setup(engine)
        return engine
    # An unreachable server fails a request within seconds instead of hanging it (the
    # driver's own connect timeout is over two minutes), and a peer that vanishes
    # mid-query is noticed by TCP keepalives. The URL's own values take precedence.
    given = make_url(url).query
    connect_args = {k: v for k, v in _PG_CONNECT_DEFAULTS.items() if k not in given}
    return create_engine(
        url,
        echo=echo,
        json_deserializer=_json_loads,
        json_serializer=_json_dumps,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
    )


_PG_CONNECT_DEFAULTS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def _log_executed(
    conn: Connection,
    statement: Any,
    multiparams: Any,
    params: Any,
    execution_options: Any,
    _result: Any,
) -> None:
    """Log a statement SQLAlchemy ran on the connection of an open group of writes (but
    a SELECT), to run it again the same way (:meth:`Database._redo_group`). The store's
    prepared statements log themselves (:data:`~gateway.store.fast.STATEMENT_LOGS`)."""
    log = STATEMENT_LOGS.get(conn)
    if log is None:
        return
    if getattr(statement, "is_select", False) or (
        isinstance(statement, str) and statement.lstrip().upper().startswith("SELECT")
    ):
        return
    log.append(("sqlalchemy", statement, multiparams or params, execution_options))


class _Group:
    """Write transactions of several requests, committed together (SQLite): the
    connection and event loop they run on, a future per request, and the log of the
    statements that may have changed the database (see :meth:`Database._redo_group`)."""

    __slots__ = ("conn", "log", "loop", "raw", "waiters")

    def __init__(
        self, conn: Connection, raw: sqlite3.Connection, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.conn = conn
        self.raw = raw
        self.loop = loop
        self.waiters: list[asyncio.Future[None]] = []
        self.log: list[tuple[Any, ...]] = []


def _database_file(engine: Engine) -> str | None:
    """The path of a SQLite ``engine``'s database file; None for an in-memory database
    (and for a URI filename, which names one only by its options)."""
    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path


class _Checkpointer:
    """Copies the WAL back into a SQLite database file on a thread of its own.

    SQLite's automatic checkpoint runs inside the commit that takes the WAL past its
    threshold: on a gateway, on the event loop's thread, where it stalled every
    request for as long as it took to copy a thousand pages and sync the file twice
    (``synchronous=NORMAL`` syncs at checkpoints only): about 6 ms, every few hundred
    creates. And the request whose commit it was paid for all of it: a 100-member add
    into a large group, which writes hundreds of pages, took the checkpoint more often
    than its share. Here each group commit nudges this thread, which runs a PASSIVE
    checkpoint (it never waits for, or blocks, the loop's readers and writer) at most
    every :attr:`INTERVAL` seconds; commits checkpoint themselves only past
    :data:`WAL_AUTOCHECKPOINT_PAGES`. The SQLite driver releases the GIL while
    SQLite works, so the loop keeps serving meanwhile."""

    INTERVAL = 0.1

    def __init__(self, path: str) -> None:
        self.path = path
        self.runs = 0
        self.last: tuple[int, int, int] | None = None  # (busy, WAL frames, copied frames)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="scim-gateway-checkpoint", daemon=True
        )
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            log.warning(
                "no background checkpoints: the database file %s did not open; commits "
                "checkpoint past %d pages",
                self.path,
                WAL_AUTOCHECKPOINT_PAGES,
                exc_info=True,
            )
            return
        try:
            while not self._stopping.is_set():
                self._wake.wait()
                self._wake.clear()
                if self._stopping.is_set():
                    break
                try:
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.last = (int(row[0]), int(row[1]), int(row[2]))
                    self.runs += 1
                except sqlite3.Error:
                    log.warning("a background checkpoint failed", exc_info=True)
                # Nudges meanwhile are taken together by the next run.
                self._stopping.wait(self.INTERVAL)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=5)


class Database:
    """An engine plus the one way routes use it: ``await db.run(fn, ...)``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.inline = self.dialect == "sqlite"
        # SQLite: the event loop's thread keeps one connection instead of taking one
        # from the pool and giving it back (with its reset) twice per request.
        self._loop_thread: int | None = None
        self._held: Connection | None = None
        self._held_busy = False
        # The transaction open on the held connection whose commit requests await.
        self._group: _Group | None = None
        # SQLite with a database file: started by the first group commit (a serving
        # gateway's), stopped by dispose.
        self._file = _database_file(engine) if self.inline else None
        self._checkpointer: _Checkpointer | None = None
        # SQLite with a database file: a connection that only reads data_version, the
        # last version it read, and the group of writes that was open then.
        self._watch: sqlite3.Connection | None = None
        self._watch_lock = threading.Lock()
        self._version: tuple[int, _Group] | None = None
        # A module function: SQLAlchemy keeps one registration of it per engine, however
        # many Databases are made on the engine, and each statement is logged once.
        if self.inline:
            event.listen(engine, "after_execute", _log_executed)

    def data_version(self) -> int | None:
        """A number that changes whenever any connection, of this process or of
        another, commits to the database: what was read at one number is still what the
        database holds while the number stays. None when that cannot be told
        (PostgreSQL, whose other gateway processes commit unseen; an in-memory SQLite
        database).

        SQLite's ``PRAGMA data_version``, on a connection of its own that never writes
        (its own commits would not change it); ``python -m bench.inprocess
        --statements`` times it. It is read once per group of writes: the group's
        transaction holds the database's write lock, so until it ends no other
        connection can commit, and the number read during it stands. It waits for no
        lock: while it cannot read (the database held exclusively), None, and the
        callers' own statements answer as they would without it."""
        if self._file is None:
            return None
        group, kept = self._group, self._version
        if group is not None and kept is not None and kept[1] is group:
            return kept[0]
        with self._watch_lock:
            try:
                if self._watch is None:
                    self._watch = sqlite3.connect(
                        self._file, timeout=0, isolation_level=None, check_same_thread=False
                    )
                row = self._watch.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                return None
        version = int(row[0])
        self._version = (version, group) if group is not None else None
        return version

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Connection]:
        held = self._take_held()
        if held is None:
            with self.engine.connect() as conn:
                yield conn
            return
        try:
            yield held
        finally:
            self._held_busy = False

    def _take_held(self, *, join: bool = False) -> Connection | None:
        """The connection the event loop's thread keeps (SQLite), marked busy; None
        on another thread or while it is in use (a nested call takes a pooled one).

        A group of writes still waiting for its commit is committed first, unless
        ``join``: the caller then works inside that group's transaction."""
        if (
            self._loop_thread is None
            or self._held_busy
            or threading.get_ident() != self._loop_thread
        ):
            return None
        if self._group is not None and not join:
            self._commit_group()
        held = self._held
        if held is None or held.closed or held.invalidated:
            if self._group is not None:  # its transaction went with the connection
                self._end_group(failed=True)
            if held is not None:
                held.close()
            held = self._held = self.engine.connect()
        self._held_busy = True
        return held

    @contextlib.contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        with self._connect() as conn:
            conn.info.pop(_SCRATCH, None)
            try:
                if self.inline:
                    with _sqlite_transaction(conn, write):
                        yield conn
                else:
                    conn.execution_options(scim_write=write)
                    with conn.begin():
                        yield conn
            finally:
                conn.info.pop(_SCRATCH, None)

    def call(self, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
        """Run ``fn(conn, *args)`` in one transaction on this thread."""
        try:
            held = self._take_held()
            if held is None:
                with self.transaction(write=write) as conn:
                    return fn(conn, *args)
            # The common case on SQLite, without the context managers around it.
            try:
                info = held.info
                info.pop(_SCRATCH, None)
                with _sqlite_transaction(held, write):
                    return fn(held, *args)
            finally:
                held.info.pop(_SCRATCH, None)
                self._held_busy = False
        except DBAPIError as exc:
            # Wherever it happens: connecting, in the work itself, or on COMMIT.
            if _is_unavailable(exc):
                raise _unavailable() from exc
            raise
        except SQLAlchemyTimeoutError as exc:  # every pooled connection stayed busy
            raise _unavailable() from exc

    def read_one(self, stmt: Prepared, params: dict[str, Any]) -> Any:
        """The first row of one prepared read, outside an explicit transaction.

        A single statement is atomic on its own, so on SQLite it runs without the
        BEGIN and COMMIT around it (the key lookup on every request); PostgreSQL's
        driver opens and, when the connection goes back to the pool, ends one.
        """
        try:
            # Inside a group still waiting for its commit, if one is open: the key
            # lookup does not make the requests of that group wait for it.
            held = self._take_held(join=True)
            if held is None:
                with self._connect() as conn:
                    return stmt.first(conn, params)
            try:
                return stmt.first(held, params)
            finally:
                self._held_busy = False
        except DBAPIError as exc:
            # Wherever it happens: connecting, in the work itself, or on COMMIT.
            if _is_unavailable(exc):
                raise _unavailable() from exc
            raise
        except SQLAlchemyTimeoutError as exc:  # every pooled connection stayed busy
            raise _unavailable() from exc

    async def run(self, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
        """Run ``fn(conn, *args)`` in one transaction.

        On PostgreSQL it runs on a worker thread, so the event loop keeps serving
        while the database answers over the network. On SQLite it runs right here:
        a SQLite transaction takes tens of microseconds in-process, less than the
        hop to a thread and back would cost, and one process's writers are
        serialised by SQLite anyway.

        On SQLite, writes are committed in groups: the first write of a turn of the
        event loop begins a transaction, every other request served in that turn
        runs in it, and the transaction commits once, after the turn. A request that
        fails undoes only its own work: if it changed rows, the transaction is begun
        again with the other requests' statements (:meth:`_redo_group`). Each request
        returns only once that commit is done, so nothing it answers is uncommitted;
        if the commit fails, every request of the group fails with it (503) and none
        of their work is kept. A commit costs about as much as the rest of a small
        write (each page it changed is written to the WAL with two system calls, and
        its locks take eight more), and requests served together share most of the
        pages they change. A write served alone pays for one more turn of the loop
        (about 15 µs).
        """
        if self.inline:
            if self._loop_thread is None:
                self._loop_thread = threading.get_ident()
            if write or self._group is not None:
                return await self._run_grouped(fn, args, write)
            return self.call(fn, *args, write=write)
        return await anyio.to_thread.run_sync(lambda: self.call(fn, *args, write=write))

    async def _run_grouped(self, fn: Callable[..., T], args: tuple[Any, ...], write: bool) -> T:
        loop = asyncio.get_running_loop()
        group = self._group
        if group is not None and group.loop is not loop:
            # Left by a loop that stopped before its commit ran (a test client's).
            self._commit_group()
        try:
            held = self._take_held(join=True)
        except DBAPIError as exc:  # the held connection could not be opened
            if _is_unavailable(exc):
                raise _unavailable() from exc
            raise
        except SQLAlchemyTimeoutError as exc:
            raise _unavailable() from exc
        if held is None:  # another thread's loop, or called from inside a transaction
            return self.call(fn, *args, write=write)
        raw = held.connection.driver_connection
        assert raw is not None
        first = self._group is None
        if first:
            try:
                _roll_back(held, raw)  # anything left open by earlier work
                _sqlite_statement(held, raw, "BEGIN IMMEDIATE")
            except DBAPIError as exc:
                self._held_busy = False
                with contextlib.suppress(Exception):
                    _roll_back(held, raw)
                if _is_unavailable(exc):
                    raise _unavailable() from exc
                raise
            self._group = _Group(held, raw, loop)
            STATEMENT_LOGS[held] = self._group.log
            loop.call_soon(self._commit_group)
        group = self._group
        assert group is not None
        done: asyncio.Future[None] = loop.create_future()
        group.waiters.append(done)
        failure: BaseException | None = None
        logged, changes = len(group.log), raw.total_changes
        try:
            held.info.pop(_SCRATCH, None)
            result = fn(held, *args)
        except BaseException as exc:
            failure = exc
            if first:
                # Alone in the transaction: no other request can join while one runs.
                self._end_group(failed=False)
            else:
                self._undo_request(group, logged, changes)
        finally:
            self._held_busy = False
            with contextlib.suppress(Exception):  # an invalidated connection refuses
                held.info.pop(_SCRATCH, None)
        # An error answer waits for the commit too: it may rest on what another
        # request of the group wrote (a uniqueness conflict).
        await done
        if failure is not None:
            if isinstance(failure, DBAPIError) and _is_unavailable(failure):
                raise _unavailable() from failure
            raise failure
        return result

    def _undo_request(self, group: _Group, logged: int, changes: int) -> None:
        """Take back what a failed request of ``group`` changed. A request changed rows
        if the connection's count of changed rows moved while it ran; almost every
        failed request (a 4xx found before any write) changed none, and costs nothing
        here. One that did is taken back by :meth:`_redo_group`. If SQLite ended the
        whole transaction (a disk or lock error does), the group goes with it."""
        del group.log[logged:]
        raw = group.raw
        try:
            lost = not raw.in_transaction
            changed = raw.total_changes != changes
        except sqlite3.Error:  # the connection itself is gone
            lost = True
        if lost:
            self._end_group(failed=True)
        elif changed:
            self._redo_group(group)

    def _redo_group(self, group: _Group) -> None:
        """Begin the group's transaction again without the failed request's work.

        SQLite undoes part of a transaction only back to a savepoint, and a savepoint
        per request cost every create its statement, its release, and a copy of each
        page the request changed that the group had changed already. So the
        transaction is rolled back and begun again, and the statements of the group's
        other requests, which its log kept, run again in their order: on the same
        database they change the same rows the same way (new rows get the same
        rowids, and every value was a parameter: no statement draws a time or a random
        number of its own), so what those requests answer stays true. That holds only
        if nothing else committed between the rollback and the new ``BEGIN``: another
        process's commit there (its data version tells) would give new rows other
        rowids than the logged statements name. Then, as when the statements cannot
        run again, the group goes (503) and nothing of it is kept."""
        raw, conn = group.raw, group.conn
        entries = list(group.log)
        STATEMENT_LOGS.pop(conn, None)  # what runs again is logged once already
        try:
            seen = raw.execute("PRAGMA data_version").fetchone()[0]
            _roll_back(conn, raw)
            raw.execute("BEGIN IMMEDIATE")
            if raw.execute("PRAGMA data_version").fetchone()[0] != seen:
                raise sqlite3.OperationalError("another connection committed meanwhile")
            for entry in entries:
                if entry[0] == "driver":
                    _kind, sql, parameters, many = entry
                    if many:
                        raw.executemany(sql, parameters)
                    else:
                        raw.execute(sql, parameters)
                else:
                    _kind, statement, parameters, options = entry
                    if isinstance(statement, str):
                        conn.exec_driver_sql(statement, parameters, execution_options=options)
                    else:
                        conn.execute(statement, parameters, execution_options=options)
        except Exception:
            log.exception("a group's statements did not run again; its requests answer 503")
            self._end_group(failed=True)
            return
        STATEMENT_LOGS[conn] = group.log

    def _end_group(self, *, failed: bool) -> None:
        """Roll the open group's transaction back and wake its requests: with 503 when
        ``failed`` (their work is lost), else as done (a group whose only request
        failed, which answers its own error)."""
        group, self._group = self._group, None
        if group is None:
            return
        STATEMENT_LOGS.pop(group.conn, None)
        try:
            with contextlib.suppress(Exception):
                _roll_back(group.conn, group.raw)
        finally:
            _wake(group, _unavailable if failed else None)

    def _commit_group(self) -> None:
        """Commit the open group, and wake every request waiting on it: each returns,
        or, if the commit failed, answers 503 (none of the group's work is kept)."""
        group, self._group = self._group, None
        if group is None:
            return
        conn, raw = group.conn, group.raw
        STATEMENT_LOGS.pop(conn, None)
        failed = False
        try:
            if not raw.in_transaction:  # SQLite rolled it back (disk full, I/O error)
                raise sqlite3.OperationalError("the group's transaction was rolled back")
            if conn.in_transaction():  # SQLAlchemy joined it: end it through SQLAlchemy
                conn.commit()
            if raw.in_transaction:
                _sqlite_statement(conn, raw, "COMMIT")
        except Exception:
            failed = True
            log.exception("a group commit failed; its %d requests answer 503", len(group.waiters))
            with contextlib.suppress(Exception):
                _roll_back(conn, raw)
        finally:
            _wake(group, _unavailable if failed else None)
        if not failed:
            self._nudge_checkpointer()

    def _nudge_checkpointer(self) -> None:
        if self._checkpointer is None:
            if self._file is None:
                return
            self._checkpointer = _Checkpointer(self._file)
        self._checkpointer.nudge()

    async def run_sync(self, fn: Callable[[], T]) -> T:
        """Run a blocking callable that does its own database work (see :meth:`run`)."""
        if self.inline:
            if self._loop_thread is None:
                self._loop_thread = threading.get_ident()
            return fn()
        return await anyio.to_thread.run_sync(fn)

    def dispose(self) -> None:
        if self._group is not None and self._held is not None:
            with contextlib.suppress(Exception):
                self._commit_group()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()
        with self._watch_lock:
            watch, self._watch = self._watch, None
            if watch is not None:
                watch.close()
        held, self._held, self._loop_thread = self._held, None, None
        if held is not None:
            held.close()
        self.engine.dispose()


def _wake(group: _Group, error: Callable[[], BaseException] | None) -> None:
    """Resolve every waiting request of ``group``: done, or failed with ``error()``
    (a new exception for each, as each request raises its own)."""
    for done in group.waiters:
        if done.done():  # its request was cancelled
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error())


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The database is unavailable; retry shortly.", headers={"Retry-After": "5"}
    )


# PostgreSQL error classes a retry can get past: connection exceptions, transaction
# rollbacks (deadlocks, serialization failures), insufficient resources (too many
# connections, disk full) and operator intervention (shutdown, statement timeout).
_PG_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57"})
_PG_LOCK_NOT_AVAILABLE = "55P03"


def _is_unavailable(exc: DBAPIError) -> bool:
    """Whether ``exc`` says the database cannot serve this request now, though a later
    retry may succeed (an error in the request or the schema is not that)."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):  # busy or locked beyond the busy timeout
        name = getattr(orig, "sqlite_errorname", None) or ""
        return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _PG_TRANSIENT_CLASSES or sqlstate == _PG_LOCK_NOT_AVAILABLE
    # The driver's own failure, with no code from a server: it could not connect, or
    # lost the connection (refused, timed out, closed, unreachable).
    return isinstance(exc, OperationalError | InterfaceError)
