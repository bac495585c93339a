"""``python -m bench.inprocess PHASE``: one request path's cost without HTTP.

Drives the gateway's ASGI app directly (no server, no client, no network), one
request at a time, on a fresh SQLite database (or ``--database-url``), and prints
microseconds per request; with ``--profile``, the top of a cProfile listing and
the share of time per package. It is how docs/performance.md's "where the time
goes" figures were taken. Phases (the bench's, plus two for the fixed cost):

    unauth  GET /Users/x with an unknown key (401)
    404     GET /Users/<missing> with a valid key
    a       POST /Users, Okta's body
    b       GET /Users?filter=userName eq "..."
    c       PATCH /Users/{id}, Okta deactivate and Entra 5-op alternately
    d       GET /Users?startIndex=..&count=100, five passes
    e       PATCH /Groups/{id} adding 100 members, until the group holds N
    e-excl  GET /Groups/{id}?excludedAttributes=members of an N-member group
    e-rm    PATCH /Groups/{id} removing one member by members[value eq ".."]
    f       DELETE /Users/{id}
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import payloads as P

PHASES = ("unauth", "404", "a", "b", "c", "d", "e", "e-excl", "e-rm", "f")


class Driver:
    """The app, started, with a team and two keys (okta and entra adapters)."""

    def __init__(self, database_url: str, logs: bool) -> None:
        from gateway.app import create_app, tune_gc
        from gateway.config import DatabaseSettings, RateLimitSettings, Settings

        tune_gc()  # as `scim-gateway serve` does

        settings = Settings(
            database=DatabaseSettings(url=database_url),
            rate_limits=RateLimitSettings(per_key=1_000_000, per_team=1_000_000),
            source="<bench.inprocess>",
        )
        self.app = create_app(settings)
        if logs:  # the access log as `scim-gateway serve` writes it (to stderr)
            from gateway import logging_setup

            logging_setup.configure("info", "json")
        self.okta = self.entra = ""

    async def start(self) -> None:
        started = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if not started.is_set():
                started.set()
                return {"type": "lifespan.startup"}
            await asyncio.Event().wait()
            return {}

        async def send(_message: dict[str, Any]) -> None:
            return None

        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._lifespan = asyncio.ensure_future(self.app(scope, receive, send))
        await asyncio.sleep(0.3)
        from gateway.demo import demo_certificate
        from gateway.sso import validate_saml
        from gateway.teams import create_key, create_team, enable_scim, set_sso

        gateway = self.app.state.gateway
        create_team(gateway.db, "bench")
        sso = validate_saml(
            "https://idp.example.com/metadata", "https://idp.example.com/sso", demo_certificate()
        )
        set_sso(gateway.db, "bench", sso)
        enable_scim(gateway.db, "bench")
        _info, self.okta = create_key(gateway.db, gateway.hasher, "bench", "okta", adapter="okta")
        _info, self.entra = create_key(
            gateway.db, gateway.hasher, "bench", "entra", adapter="entra"
        )

    async def call(
        self, method: str, path: str, body: Any = None, *, key: str, query: str = ""
    ) -> tuple[int, bytes]:
        raw = json.dumps(body).encode() if body is not None else b""
        headers = [
            (b"host", b"bench"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/scim+json"),
            (b"content-length", str(len(raw)).encode()),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("bench", 80),
        }
        sent = False
        out: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await asyncio.Event().wait()
            return {}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return out["status"], out["body"]

    async def ok(self, expected: tuple[int, ...], *args: Any, **kwargs: Any) -> bytes:
        status, body = await self.call(*args, **kwargs)
        if status not in expected:
            raise SystemExit(f"{args[0]} {args[1]}: {status} {body[:300]!r}")
        return body

    async def users(self, n: int) -> list[str]:
        ids = []
        for i in range(n):
            body = await self.ok((201,), "POST", "/scim/v2/Users", P.okta_user(i), key=self.okta)
            ids.append(json.loads(body)["id"])
        return ids


async def prepare(
    d: Driver, phase: str, n: int, concurrency: int = 1
) -> tuple[int, Callable[[], Awaitable[None]]]:
    """(requests timed, the timed work) for ``phase``; set-up is done here, untimed.
    The timed requests run ``concurrency`` at a time (see :func:`_waves`)."""
    await d.start()

    def _repeat(n: int, one: Callable[[int], Awaitable[Any]]) -> Awaitable[None]:
        return _waves(n, one, concurrency)

    if phase == "unauth":
        return n, lambda: _repeat(n, lambda i: d.ok((401,), "GET", "/scim/v2/Users/x", key="x"))
    if phase == "404":
        path = "/scim/v2/Users/missing"
        return n, lambda: _repeat(n, lambda i: d.ok((404,), "GET", path, key=d.okta))
    if phase == "a":
        return n, lambda: _repeat(
            n, lambda i: d.ok((201,), "POST", "/scim/v2/Users", P.okta_user(i), key=d.okta)
        )
    ids = await d.users(n)
    if phase == "b":
        return n, lambda: _repeat(
            n,
            lambda i: d.ok(
                (200,),
                "GET",
                "/scim/v2/Users",
                key=d.okta,
                query=P.user_name_filter(P.user_name(i)),
            ),
        )
    if phase == "c":

        def patch(i: int) -> Awaitable[bytes]:
            path = f"/scim/v2/Users/{ids[i]}"
            if i % 2:
                return d.ok((200,), "PATCH", path, P.okta_deactivate(), key=d.okta)
            return d.ok((200,), "PATCH", path, P.entra_profile_patch(i), key=d.entra)

        return n, lambda: _repeat(n, patch)
    if phase == "d":
        starts = [s for _ in range(5) for s in range(1, n + 1, 100)]
        return len(starts), lambda: _repeat(
            len(starts),
            lambda i: d.ok(
                (200,),
                "GET",
                "/scim/v2/Users",
                key=d.okta,
                query=f"startIndex={starts[i]}&count=100",
            ),
        )
    if phase == "f":
        return n, lambda: _repeat(
            n, lambda i: d.ok((204,), "DELETE", f"/scim/v2/Users/{ids[i]}", key=d.entra)
        )
    body = await d.ok((201,), "POST", "/scim/v2/Groups", P.group_body(0), key=d.okta)
    group = f"/scim/v2/Groups/{json.loads(body)['id']}"
    members = [(ids[i], P.user_name(i)) for i in range(n)]

    def add(i: int) -> Awaitable[bytes]:
        batch = P.members_add(members[i * 100 : (i + 1) * 100])
        return d.ok((200, 204), "PATCH", group, batch, key=d.okta)

    batches = (n + 99) // 100
    if phase == "e":
        return batches, lambda: _repeat(batches, add)
    await _waves(batches, add, 1)
    if phase == "e-excl":
        query = "excludedAttributes=members"
        return n, lambda: _repeat(n, lambda i: d.ok((200,), "GET", group, key=d.okta, query=query))
    removes = min(n, 1000)
    return removes, lambda: _repeat(
        removes, lambda i: d.ok((200, 204), "PATCH", group, P.member_remove(ids[i]), key=d.okta)
    )


async def _waves(n: int, one: Callable[[int], Awaitable[Any]], concurrency: int) -> None:
    """``one(0)`` .. ``one(n - 1)``, ``concurrency`` at a time: each wave's requests
    are started together and served in one turn of the event loop, so that their
    writes commit as one group, as concurrent connections' writes do under
    ``scim-gateway serve`` (see gateway.store.db.Database.run)."""
    if concurrency <= 1:
        for i in range(n):
            await one(i)
        return
    for start in range(0, n, concurrency):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + concurrency))))


def _shares(stats: pstats.Stats) -> list[tuple[float, str]]:
    """Share of own time by package (site-packages name, or the project's file)."""
    totals: collections.Counter[str] = collections.Counter()
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in filename:
            where = filename.split("site-packages/")[1].split("/")[0]
        elif filename == "~":
            where = name
        else:
            where = "/".join(Path(filename).parts[-2:])
        totals[where] += row[2]
    whole = sum(totals.values()) or 1.0
    return [(100 * t / whole, where) for where, t in totals.most_common(20)]


class _CommitTimer:
    """Times the SQLite group commits (``Database._commit_group``) of the timed work:
    how many, how many requests they carried, and their time per request."""

    def __init__(self, db: Any) -> None:
        self.commits = self.requests = 0
        self.seconds = 0.0
        commit = db._commit_group

        def timed() -> None:
            group = db._group
            started = time.perf_counter()
            try:
                commit()
            finally:
                if group is not None:
                    self.commits += 1
                    self.requests += len(group.waiters)
                    self.seconds += time.perf_counter() - started

        db._commit_group = timed  # the instance's: every caller looks it up there

    def report(self) -> str:
        per = self.seconds / self.requests * 1e6 if self.requests else 0.0
        return (
            f"group commits: {self.commits} for {self.requests} requests, {per:,.1f} µs per request"
        )


class _StatementTimer:
    """Times each statement the timed work sends through the store's prepared
    statements (``Prepared._cursor``) and SQLite's transaction statements
    (``store.db._sqlite_statement``: BEGIN, COMMIT), by the first words of its SQL,
    Python's part of running it included, and the key check's reads of the data
    version (``Database.data_version``, kept within a group of writes): where a
    request's database time goes."""

    def __init__(self) -> None:
        from gateway.store import db, fast

        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.calls: collections.Counter[str] = collections.Counter()
        cursor, statement = fast.Prepared._cursor, db._sqlite_statement

        def timed_cursor(
            prepared: Any, conn: Any, plan: Any, params: Any, many: bool = False
        ) -> Any:
            started = time.perf_counter()
            try:
                return cursor(prepared, conn, plan, params, many)
            finally:
                self._add(plan.sql, time.perf_counter() - started)

        def timed_statement(conn: Any, raw: Any, sql: str) -> None:
            started = time.perf_counter()
            try:
                statement(conn, raw, sql)
            finally:
                self._add(sql, time.perf_counter() - started)

        version = db.Database.data_version

        def timed_version(database: Any) -> int | None:
            started = time.perf_counter()
            try:
                return version(database)
            finally:
                self._add("PRAGMA data_version", time.perf_counter() - started)

        fast.Prepared._cursor = timed_cursor  # type: ignore[method-assign]
        db._sqlite_statement = timed_statement
        db.Database.data_version = timed_version  # type: ignore[method-assign]

    def _add(self, sql: str, seconds: float) -> None:
        words = " ".join(sql.split()[:3])
        self.seconds[words] += seconds
        self.calls[words] += 1

    def report(self, requests: int) -> str:
        lines = ["statements (µs per request, calls per request, µs per call):"]
        for words, seconds in sorted(self.seconds.items(), key=lambda item: -item[1]):
            calls = self.calls[words]
            lines.append(
                f"  {seconds / requests * 1e6:8.1f} {calls / requests:6.2f}"
                f" {seconds / calls * 1e6:8.1f}  {words}"
            )
        return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/inprocess.sqlite3"
    driver = Driver(url, logs=args.logs)
    requests, work = await prepare(driver, args.phase, args.n, args.concurrency)
    commits = _CommitTimer(driver.app.state.gateway.db) if args.commits else None
    statements = _StatementTimer() if args.statements else None
    profile = cProfile.Profile() if args.profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    await work()
    if profile is not None:
        profile.disable()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    # CPU time too: on a shared machine, time spent waiting for a core is not the
    # request's cost.
    print(
        f"{args.phase}: {requests} requests, {elapsed / requests * 1e6:,.0f} µs per request"
        f" ({cpu / requests * 1e6:,.0f} µs of CPU){' (under cProfile)' if profile else ''}"
    )
    if commits is not None:
        print(commits.report())
    if statements is not None:
        print(statements.report(requests))
    if profile is not None:
        stats = pstats.Stats(profile, stream=sys.stdout)
        for share, where in _shares(stats):
            print(f"  {share:5.1f}%  {where}")
        stats.sort_stats("cumulative").print_stats(args.top)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("phase", choices=PHASES)
    parser.add_argument("n", type=int, nargs="?", default=2000, help="users (default 2000)")
    parser.add_argument("--profile", action="store_true", help="run under cProfile")
    parser.add_argument("--top", type=int, default=30, help="profile lines to print")
    parser.add_argument("--logs", action="store_true", help="write the access log to stderr")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="also time each statement of the timed requests, by its first words",
    )
    parser.add_argument(
        "--commits",
        action="store_true",
        help="also time SQLite's group commits of the timed requests (per request)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        metavar="C",
        help="timed requests served together, C at a time (default 1: one by one)",
    )
    return parser


if __name__ == "__main__":
    asyncio.run(main(build_parser().parse_args()))
