"""Concurrent writes to one gateway give the answers and the data a client expects.

A real ``scim-gateway serve`` process is driven by many HTTP clients at once, on
each backend: on PostgreSQL its requests' database work overlaps on threads, on
SQLite the process serialises it. Four races are checked:

- 50 clients create the same userName: one wins (201), 49 hear 409 ``uniqueness``,
  and one user exists;
- clients add and remove members of one group at once, in the Okta style (one
  PATCH with a remove by filter and an add) and the Entra style (Add and Remove with
  a value list): the final member list is exactly what the operations imply;
- PUTs guarded by one ``If-Match`` version: one wins (200), the others hear 412, and
  the stored user is the winner's;
- users are deleted while they are removed from a group that grants a role: every
  request succeeds (the two writes lock the group and the user in the same order).

The same checks run against two processes sharing one database in
``tests/e2e/test_concurrency_processes.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from gateway.store.db import make_engine
from gateway.store.tables import Team, User
from tests.conftest import ERROR, GROUP_SCHEMA, PATCH_OP, SCIM, USER_SCHEMA
from tests.e2e.conftest import Served, clean_environment, free_port, provision_key, serve
from tests.e2e.conftest import write_config as write_gateway_config

pytestmark = pytest.mark.e2e

TEAMS = Team.__table__  # type: ignore[attr-defined]
USERS = User.__table__  # type: ignore[attr-defined]

CLIENTS = 50
"""Simultaneous clients in the userName race."""

MEMBER_CLIENTS = 10
"""Clients changing one group's members at once, each with its own six users."""

PUT_CLIENTS = 20
"""Clients racing to replace one user with the same If-Match version."""

DELETE_PAIRS = 25
"""Users deleted while they are removed from their group, each both at once."""

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def database_for(request: pytest.FixtureRequest, workdir: Path) -> str:
    """The database URL of the backend a module-scoped fixture is parametrized with."""
    if request.param == "sqlite":
        return f"sqlite:///{workdir / 'gateway.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def write_config(path: Path, *, database_url: str) -> Path:
    """A gateway config for load tests: rate limits off, as these clients exceed them
    on purpose (the limits have tests of their own)."""
    return write_gateway_config(path, database_url=database_url)  # limits off by default


@dataclass
class Deployment:
    """Gateway processes sharing one database and config, with a key of one team."""

    servers: list[Served]
    database_url: str
    config: Path

    def as_team(self, options: dict[str, Any]) -> Deployment:
        """The same processes, seen with the key of a new team that has ``options``."""
        team = "race-" + uuid.uuid4().hex[:12]
        token = provision_key(self.config, team)
        engine = make_engine(self.database_url)
        try:
            with engine.begin() as conn:
                conn.execute(update(TEAMS).where(TEAMS.c.slug == team).values(options=options))
        finally:
            engine.dispose()
        servers = [replace(s, token=token, team=team) for s in self.servers]
        return replace(self, servers=servers)


def start_servers(workdir: Path, database_url: str, count: int) -> Iterator[Deployment]:
    """``count`` gateway processes on one database, for one fresh team, stopped
    afterwards."""
    team = "race-" + uuid.uuid4().hex[:12]
    config = write_config(workdir / "gateway.toml", database_url=database_url)
    token = provision_key(config, team)
    running = []
    for n in range(count):
        home = workdir / f"process-{n}"
        home.mkdir()
        args = ["serve", "--config", str(config), "--port", str(free_port())]
        running.append(serve(home, args=args, env=clean_environment(), token=token, team=team))
    try:
        with ThreadPoolExecutor(max_workers=count) as pool:  # they start side by side
            servers = list(pool.map(next, running))
        yield Deployment(servers, database_url, config)
    finally:
        for process in running:
            next(process, None)  # resumes serve() past its yield: it stops the server


@pytest.fixture(scope="module", params=BACKENDS)
def one_process(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One gateway process, on each backend."""
    workdir = tmp_path_factory.mktemp("concurrency")
    yield from start_servers(workdir, database_for(request, workdir), 1)


# --- driving many clients at once --------------------------------------------------------

Call = tuple[str, str, dict[str, Any] | None, dict[str, str]]
"""One request: method, path under /scim/v2, JSON body, extra headers."""


class Clients:
    """Async HTTP clients for the SCIM root of each server, one connection per caller.

    Request ``i`` of a batch goes to server ``i % len(servers)``, so with two
    processes each serves half of every race.
    """

    def __init__(self, servers: Sequence[Served]) -> None:
        headers = scim_headers(servers[0])
        limits = httpx.Limits(max_connections=CLIENTS + 10, max_keepalive_connections=CLIENTS + 10)
        self.http = [
            httpx.AsyncClient(base_url=s.base_url, headers=headers, limits=limits, timeout=60.0)
            for s in servers
        ]

    def to(self, i: int) -> httpx.AsyncClient:
        return self.http[i % len(self.http)]

    async def warm(self, count: int) -> None:
        """Open ``count`` connections first, so the race is not a race to connect."""
        answers = await asyncio.gather(
            *(self.to(i).get("/ServiceProviderConfig") for i in range(count))
        )
        assert {a.status_code for a in answers} == {200}

    async def send(self, i: int, call: Call) -> httpx.Response:
        method, path, body, headers = call
        return await self.to(i).request(method, path, json=body, headers=headers)

    async def all_at_once(self, calls: Sequence[Call]) -> list[httpx.Response]:
        await self.warm(len(calls))
        return list(await asyncio.gather(*(self.send(i, c) for i, c in enumerate(calls))))

    async def close(self) -> None:
        for client in self.http:
            await client.aclose()


def scim_headers(server: Served) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}", "Accept": SCIM, "Content-Type": SCIM}


def run_clients(servers: Sequence[Served], scenario: Any) -> Any:
    """Run ``await scenario(clients)`` on a fresh event loop."""

    async def main() -> Any:
        clients = Clients(servers)
        try:
            return await scenario(clients)
        finally:
            await clients.close()

    return asyncio.run(main())


def check(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    if status == 204:
        return {}
    result: dict[str, Any] = response.json()
    return result


def scim_type_of(response: httpx.Response) -> str | None:
    body = response.json()
    assert body["schemas"] == [ERROR], body
    assert body["status"] == str(response.status_code), body
    value: str | None = body.get("scimType")
    return value


def members_op(op: str, user_ids: Sequence[str]) -> dict[str, Any]:
    return {"op": op, "path": "members", "value": [{"value": u} for u in user_ids]}


def patch_call(path: str, *ops: dict[str, Any]) -> Call:
    return ("PATCH", path, {"schemas": [PATCH_OP], "Operations": list(ops)}, {})


def user_count(database_url: str, team: str, user_name: str) -> int:
    """Rows in ``scim_user`` (tombstones included) holding ``user_name`` in any case."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            stmt = (
                select(func.count())
                .select_from(USERS.join(TEAMS, TEAMS.c.pk == USERS.c.team_pk))
                .where(TEAMS.c.slug == team, USERS.c.user_name_ci == user_name.lower())
            )
            count: int = conn.execute(stmt).scalar_one()
            return count
    finally:
        engine.dispose()


# --- the races, for one process here and for two in tests/e2e -----------------------------


def race_same_user_name(deployment: Deployment) -> None:
    """50 clients POST one userName (in different letter cases) at once."""
    servers = deployment.servers
    name = f"Race.{uuid.uuid4().hex[:8]}@Example.com"
    spellings = [name, name.lower(), name.upper()]
    calls: list[Call] = [
        (
            "POST",
            "/Users",
            {"schemas": [USER_SCHEMA], "userName": spellings[i % 3], "title": f"client {i}"},
            {},
        )
        for i in range(CLIENTS)
    ]

    answers: list[httpx.Response] = run_clients(servers, lambda c: c.all_at_once(calls))

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * (CLIENTS - 1), statuses
    [winner] = [a for a in answers if a.status_code == 201]
    losers = [a for a in answers if a.status_code == 409]
    assert {scim_type_of(a) for a in losers} == {"uniqueness"}

    with httpx.Client(base_url=servers[0].base_url, headers=scim_headers(servers[0])) as h:
        found = check(h.get("/Users", params={"filter": f'userName eq "{name.lower()}"'}), 200)
    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == winner.json()["id"]
    assert user_count(deployment.database_url, servers[0].team, name) == 1


def race_group_members(deployment: Deployment) -> None:
    """Clients change one group's members at once, each through its own users, half in
    the Okta style and half in the Entra style; every change must land, once."""

    async def scenario(clients: Clients) -> tuple[list[str], set[str]]:
        tag = uuid.uuid4().hex[:8]
        group_body = {"schemas": [GROUP_SCHEMA], "displayName": f"race group {tag}"}
        group = check(await clients.send(0, ("POST", "/Groups", group_body, {})), 201)
        path = f"/Groups/{group['id']}"
        creates: list[Call] = [
            ("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": f"m{i}.{tag}"}, {})
            for i in range(MEMBER_CLIENTS * 6)
        ]
        created = await clients.all_at_once(creates)
        ids = [check(r, 201)["id"] for r in created]
        owned = [ids[c * 6 : c * 6 + 6] for c in range(MEMBER_CLIENTS)]

        def okta(u: list[str]) -> list[Call]:
            def remove(user_id: str) -> dict[str, Any]:
                return {"op": "remove", "path": f'members[value eq "{user_id}"]'}

            return [
                patch_call(path, members_op("add", u[0:3])),
                patch_call(path, remove(u[0]), members_op("add", u[3:5])),
                patch_call(path, remove(u[1]), members_op("add", [u[5], u[2]])),
            ]  # leaves u2..u5

        def entra(u: list[str]) -> list[Call]:
            return [
                patch_call(path, members_op("Add", u[0:4])),
                patch_call(path, members_op("Remove", u[0:2])),
                patch_call(path, members_op("Add", [u[4], u[3]])),
                patch_call(path, members_op("Remove", [u[4]])),
            ]  # leaves u2, u3

        expected = set()
        for c, users in enumerate(owned):
            expected |= set(users[2:6] if c % 2 == 0 else users[2:4])

        async def client(c: int) -> None:
            calls = okta(owned[c]) if c % 2 == 0 else entra(owned[c])
            for call in calls:
                answer = await clients.send(c, call)
                assert answer.status_code == 204, answer.text

        await asyncio.gather(*(client(c) for c in range(MEMBER_CLIENTS)))
        stored = check(await clients.send(0, ("GET", path, None, {})), 200)
        return [m["value"] for m in stored.get("members", [])], expected

    members, expected = run_clients(deployment.servers, scenario)
    assert len(members) == len(set(members)), "a member is listed twice"
    assert set(members) == expected
    assert len(expected) == (MEMBER_CLIENTS // 2) * 4 + (MEMBER_CLIENTS - MEMBER_CLIENTS // 2) * 2


def race_delete_and_remove(deployment: Deployment) -> None:
    """Users are deleted while they are removed from a group that grants a role, both at
    once, as an IdP deprovisioning people does: every request succeeds (no deadlock
    between the user's and the group's locks), and nothing is left behind."""
    team = deployment.as_team({"roles": {"Admins": "admin"}})

    async def scenario(clients: Clients) -> tuple[list[httpx.Response], dict[str, Any]]:
        created = await clients.all_at_once(
            [
                ("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": f"leaver{i}"}, {})
                for i in range(DELETE_PAIRS)
            ]
        )
        ids = [check(r, 201)["id"] for r in created]
        group_body = {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Admins",
            "members": [{"value": u} for u in ids],
        }
        group = check(await clients.send(0, ("POST", "/Groups", group_body, {})), 201)
        path = f"/Groups/{group['id']}"
        calls: list[Call] = []
        for user_id in ids:
            calls.append(("DELETE", f"/Users/{user_id}", None, {}))
            calls.append(
                patch_call(path, {"op": "remove", "path": f'members[value eq "{user_id}"]'})
            )
        answers = await clients.all_at_once(calls)
        return answers, check(await clients.send(0, ("GET", path, None, {})), 200)

    answers, group = run_clients(team.servers, scenario)
    failed = [(a.request.method, a.status_code, a.text) for a in answers if a.status_code != 204]
    assert not failed, failed
    assert group.get("members", []) == []


def race_if_match_put(deployment: Deployment) -> None:
    """Clients PUT one user with the same If-Match version at once: one wins."""

    def body(user_name: str, i: int) -> dict[str, Any]:
        return {
            "schemas": [USER_SCHEMA],
            "userName": user_name,
            "displayName": f"Writer {i}",
            "title": f"Title {i}",
            "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
            "emails": [{"value": f"writer{i}@example.com", "type": "work", "primary": True}],
        }

    async def scenario(clients: Clients) -> tuple[list[httpx.Response], dict[str, Any], str]:
        user_name = f"put.{uuid.uuid4().hex[:8]}"
        created = await clients.send(0, ("POST", "/Users", body(user_name, -1), {}))
        user = check(created, 201)
        version = created.headers["ETag"]
        path = f"/Users/{user['id']}"
        calls: list[Call] = [
            ("PUT", path, body(user_name, i), {"If-Match": version}) for i in range(PUT_CLIENTS)
        ]
        answers = await clients.all_at_once(calls)
        stored = await clients.send(1, ("GET", path, None, {}))
        return answers, check(stored, 200), stored.headers["ETag"]

    answers, stored, stored_version = run_clients(deployment.servers, scenario)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [412] * (PUT_CLIENTS - 1), statuses
    for refused in answers:
        if refused.status_code == 412:
            scim_type_of(refused)
    [winner] = [a for a in answers if a.status_code == 200]
    i = int(winner.json()["displayName"].removeprefix("Writer "))
    sent = body(stored["userName"], i)
    for key in ("displayName", "title", "name", "emails"):
        assert stored[key] == sent[key], key
    # One write happened: the version moved once, to the winner's.
    assert stored_version == winner.headers["ETag"] == 'W/"2"'


# --- one process, each backend -------------------------------------------------------------


def test_fifty_clients_create_one_user_name_and_exactly_one_wins(one_process: Deployment) -> None:
    race_same_user_name(one_process)


def test_concurrent_okta_and_entra_member_changes_all_land_exactly_once(
    one_process: Deployment,
) -> None:
    race_group_members(one_process)


def test_concurrent_puts_with_one_if_match_version_have_one_winner(
    one_process: Deployment,
) -> None:
    race_if_match_put(one_process)


def test_deleting_users_while_removing_them_from_a_role_group_never_deadlocks(
    one_process: Deployment,
) -> None:
    race_delete_and_remove(one_process)
