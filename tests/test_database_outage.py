"""Losing the database answers 503 with a SCIM error and Retry-After, then recovers.

An IdP that hears 503 and Retry-After retries later; a 500 or a request that hangs
looks like a bug and may stop provisioning altogether. Each test takes the database
away in a different place of a request and checks the answer, then gives it back and
checks that the very next requests succeed, with no restart:

- PostgreSQL: the backend serving a request is terminated (``pg_terminate_backend``)
  while it waits inside a transaction, and while the transaction commits; the gateway
  reaches PostgreSQL through a TCP proxy this test runs, and the proxy is cut while a
  request is inside a transaction and while no request is (so the next one fails in
  the key lookup, before any SCIM work);
- SQLite: another process holds the write lock longer than the busy timeout, then
  holds the database exclusively, so even the key lookup cannot read.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import DatabaseSettings, Settings
from gateway.store.db import Database, make_engine, normalise_url
from tests.conftest import ERROR, PATCH_OP, USER_SCHEMA, make_client, new_user
from tests.support import provision

BUSY_TIMEOUT = 0.2
"""Seconds SQLite waits for a lock in these tests (the gateway's default is 10)."""

PROMPT = 5.0
"""An outage is reported within this many seconds: no hang."""


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "503"
    assert "database" in body["detail"].lower()


def rename(client: TestClient, user_id: str, display_name: str) -> httpx.Response:
    ops = [{"op": "replace", "path": "displayName", "value": display_name}]
    return client.patch(
        f"/scim/v2/Users/{user_id}", json={"schemas": [PATCH_OP], "Operations": ops}
    )


def timed(fn: Callable[[], httpx.Response]) -> httpx.Response:
    """``fn()``, which must answer within :data:`PROMPT` seconds."""
    started = time.monotonic()
    response = fn()
    assert time.monotonic() - started < PROMPT
    return response


# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture
def admin(postgres_url: str) -> Iterator[Engine]:
    """A connection pool of the test's own, beside the gateway's."""
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def tagged(url: str) -> tuple[str, str]:
    """``url`` with an application_name that singles out the gateway's connections."""
    name = "outage-" + uuid.uuid4().hex[:10]
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}application_name={name}", name


def gateway_client(database_url: str) -> contextlib.AbstractContextManager[TestClient]:
    settings = Settings(database=DatabaseSettings(url=database_url), source="<tests>")
    return contextlib.contextmanager(make_client)(settings)


def waiting_backend(admin: Engine, application_name: str) -> int:
    """The pid of the gateway's backend that waits for a lock."""
    deadline = time.monotonic() + PROMPT
    while time.monotonic() < deadline:
        with admin.connect() as conn:
            pid = conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE application_name = :name AND wait_event_type = 'Lock'"
                ),
                {"name": application_name},
            ).scalar()
        if pid is not None:
            return int(pid)
        time.sleep(0.02)
    raise AssertionError("the gateway's request never reached the locked row")


@contextlib.contextmanager
def row_locked(admin: Engine, user_id: str) -> Iterator[None]:
    """Hold the user's row lock, as a long transaction elsewhere would."""
    with admin.connect() as conn, conn.begin():
        conn.execute(text("SELECT pk FROM scim_user WHERE id = :id FOR UPDATE"), {"id": user_id})
        yield
        conn.rollback()


def terminate(admin: Engine, where: str, **params: Any) -> int:
    with admin.connect() as conn:
        killed = conn.execute(
            text(f"SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE {where}"),
            params,
        ).all()
        conn.commit()
    return len(killed)


@pytest.mark.postgres
def test_a_terminated_backend_mid_request_answers_503_and_the_next_request_succeeds(
    postgres_url: str, admin: Engine
) -> None:
    url, name = tagged(postgres_url)
    with gateway_client(url) as client, ThreadPoolExecutor(max_workers=1) as pool:
        user = new_user(client, "terminated")

        with row_locked(admin, user["id"]):
            pending: Future[httpx.Response] = pool.submit(rename, client, user["id"], "Lost")
            pid = waiting_backend(admin, name)
            assert terminate(admin, "pid = :pid", pid=pid) == 1
            answer = pending.result(timeout=PROMPT)
        assert_unavailable(answer)

        # Every connection the gateway holds is gone too; it reconnects on its own.
        terminate(admin, "application_name = :name", name=name)
        assert timed(lambda: rename(client, user["id"], "Kept")).status_code == 200
        stored = client.get(f"/scim/v2/Users/{user['id']}")
        assert stored.json()["displayName"] == "Kept"


@pytest.mark.postgres
def test_a_connection_lost_while_committing_answers_503_and_changes_nothing(
    postgres_url: str, admin: Engine
) -> None:
    url = postgres_url
    armed = threading.Event()

    def watch(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if armed.is_set() and statement.startswith("INSERT INTO scim_user "):
            armed.clear()
            conn.info["lose_on_commit"] = True

    def lose_connection(conn: Connection) -> None:
        """Just before the user's INSERT commits, PostgreSQL ends the backend."""
        if conn.info.pop("lose_on_commit", False):
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            terminate(admin, "pid = :pid", pid=dbapi.info.backend_pid)  # type: ignore[attr-defined]

    with gateway_client(url) as client:
        engine = client.app.state.gateway.db.engine  # type: ignore[attr-defined]
        event.listen(engine, "after_cursor_execute", watch)
        event.listen(engine, "commit", lose_connection)
        armed.set()
        body = {"schemas": [USER_SCHEMA], "userName": "committing"}
        assert_unavailable(timed(lambda: client.post("/scim/v2/Users", json=body)))
        assert not armed.is_set(), "the user was never inserted"

        # The transaction died with its connection: the retry creates the user.
        found = client.get("/scim/v2/Users", params={"filter": 'userName eq "committing"'})
        assert found.json()["totalResults"] == 0
        assert client.post("/scim/v2/Users", json=body).status_code == 201


class Proxy:
    """A TCP proxy to PostgreSQL that the test can cut and restore."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.silent = False
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._listen()

    def _listen(self) -> None:
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
                if self.silent:
                    with self.lock:
                        self.sockets.append(near)  # held open, never answered
                    continue
                far = socket.create_connection(self.upstream)
            except OSError:
                return
            with self.lock:
                self.sockets += [near, far]
            for src, dst in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and drop every open one, as a failed network would."""
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.drop()

    def blackhole(self) -> None:
        """Drop every open connection and accept new ones that never get an answer, as
        a server that hangs or a firewall that drops packets would."""
        self.silent = True
        self.drop()

    def drop(self) -> None:
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def restore(self) -> None:
        if self.silent:
            self.silent = False
            self.drop()
            return
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self._listen()


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[Proxy]:
    url = make_url(postgres_url)
    running = Proxy((url.host or "127.0.0.1", url.port or 5432))
    yield running
    running.cut()


@pytest.mark.postgres
def test_a_cut_network_answers_503_mid_request_and_at_the_key_lookup_then_recovers(
    postgres_url: str, admin: Engine, proxy: Proxy
) -> None:
    through_proxy = make_url(postgres_url).set(host="127.0.0.1", port=proxy.port)
    url, name = tagged(through_proxy.render_as_string(hide_password=False))
    with gateway_client(url) as client, ThreadPoolExecutor(max_workers=1) as pool:
        user = new_user(client, "proxied")

        # Inside a transaction, waiting for a row lock: the network goes.
        with row_locked(admin, user["id"]):
            pending: Future[httpx.Response] = pool.submit(rename, client, user["id"], "Lost")
            waiting_backend(admin, name)
            proxy.cut()
            answer = pending.result(timeout=PROMPT)
        assert_unavailable(answer)

        # No database at all: the key cannot be looked up, reads and writes alike.
        assert_unavailable(timed(lambda: client.get("/scim/v2/Users")))
        assert_unavailable(timed(lambda: rename(client, user["id"], "Lost too")))

        proxy.restore()
        assert timed(lambda: rename(client, user["id"], "Back")).status_code == 200
        listed = client.get("/scim/v2/Users", params={"filter": 'userName eq "proxied"'})
        assert listed.status_code == 200
        assert listed.json()["Resources"][0]["displayName"] == "Back"


@pytest.mark.postgres
def test_a_database_that_never_answers_is_reported_within_the_connect_timeout(
    postgres_url: str, proxy: Proxy
) -> None:
    through_proxy = make_url(postgres_url).set(host="127.0.0.1", port=proxy.port)
    # The gateway waits 10 s by default; this URL sets 1 s to keep the test short.
    url = through_proxy.update_query_dict({"connect_timeout": "1"})
    with gateway_client(url.render_as_string(hide_password=False)) as client:
        user = new_user(client, "unanswered")

        proxy.blackhole()
        assert_unavailable(timed(lambda: client.get(f"/scim/v2/Users/{user['id']}")))

        proxy.restore()
        assert client.get(f"/scim/v2/Users/{user['id']}").status_code == 200


@pytest.mark.postgres
def test_requests_that_wait_too_long_for_a_database_connection_answer_503(
    postgres_url: str, admin: Engine
) -> None:
    url, name = tagged(postgres_url)
    settings = Settings(database=DatabaseSettings(url=url), source="<tests>")
    app = create_app(settings)
    gateway = app.state.gateway
    # One connection, and a short wait for it (the defaults are 20 and 30 s).
    gateway.db.dispose()
    engine = create_engine(
        normalise_url(url), pool_size=1, max_overflow=0, pool_timeout=0.5, pool_pre_ping=True
    )
    gateway.db = Database(engine)
    with (
        TestClient(app, headers={"Content-Type": "application/scim+json"}) as client,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        client.headers["Authorization"] = f"Bearer {provision(gateway, 'team-' + name)}"
        user = new_user(client, "pooled")

        with row_locked(admin, user["id"]):
            # This request holds the only connection while it waits for the row.
            pending: Future[httpx.Response] = pool.submit(rename, client, user["id"], "Later")
            waiting_backend(admin, name)
            assert_unavailable(timed(lambda: client.get("/scim/v2/Users")))
        assert pending.result(timeout=PROMPT).status_code == 200
        assert client.get(f"/scim/v2/Users/{user['id']}").json()["displayName"] == "Later"


# --- SQLite --------------------------------------------------------------------------------


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    """A gateway on SQLite whose lock waits last :data:`BUSY_TIMEOUT`."""
    path = tmp_path / "gateway.sqlite3"
    settings = Settings(database=DatabaseSettings(url=f"sqlite:///{path}"), source="<tests>")
    app = create_app(settings)
    engine = app.state.gateway.db.engine

    @event.listens_for(engine, "do_connect")
    def _short_timeout(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        params["timeout"] = BUSY_TIMEOUT

    @event.listens_for(engine, "connect")
    def _short_busy_timeout(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")

    with TestClient(app, headers={"Content-Type": "application/scim+json"}) as client:
        key = provision(app.state.gateway, "team-" + uuid.uuid4().hex[:12])
        client.headers["Authorization"] = f"Bearer {key}"
        yield client, path


@contextlib.contextmanager
def sqlite_locked(path: Path, *, exclusive: bool) -> Iterator[None]:
    """Another process's connection holding the write lock, or the whole database."""
    other = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT)
    try:
        if exclusive:
            other.execute("PRAGMA locking_mode=EXCLUSIVE")
            other.execute("BEGIN EXCLUSIVE")
        else:
            other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("COMMIT")
    finally:
        other.close()


def test_sqlite_write_lock_held_past_the_busy_timeout_answers_503_then_writes_resume(
    sqlite_client: tuple[TestClient, Path],
) -> None:
    client, path = sqlite_client
    user = new_user(client, "locked")
    body = {"schemas": [USER_SCHEMA], "userName": "waiting"}

    with sqlite_locked(path, exclusive=False):
        assert_unavailable(timed(lambda: client.post("/scim/v2/Users", json=body)))
        assert_unavailable(timed(lambda: rename(client, user["id"], "Lost")))

    assert client.post("/scim/v2/Users", json=body).status_code == 201
    assert rename(client, user["id"], "Kept").status_code == 200


def test_sqlite_database_held_exclusively_answers_503_at_the_key_lookup_then_recovers(
    sqlite_client: tuple[TestClient, Path],
) -> None:
    client, path = sqlite_client
    user = new_user(client, "excluded")
    client.app.state.gateway.db.dispose()  # type: ignore[attr-defined]

    with sqlite_locked(path, exclusive=True):
        assert_unavailable(timed(lambda: client.get("/scim/v2/Users")))
        assert_unavailable(timed(lambda: client.get(f"/scim/v2/Users/{user['id']}")))

    assert client.get(f"/scim/v2/Users/{user['id']}").status_code == 200
    assert rename(client, user["id"], "Back").status_code == 200
