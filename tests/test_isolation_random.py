"""Team isolation under thousands of random operations.

Two teams, each with two keys, share one gateway and one database. A seeded
random generator drives both through a mix of everything SCIM offers: creates,
PATCHes, PUTs, deletes, group membership changes, filters, paging, ``.search``,
Bulk with ``bulkId`` references, and requests aimed at the other team's ids.

After every answer the test checks that it carries nothing of the other team:
none of its ids (current or deleted, in ``id``, ``value``, ``$ref`` or anywhere
else), none of its userNames, displayNames or externalIds, and no error message
naming them, unless the request itself sent that value. Counts are checked
against a model of what each team holds, so ``totalResults`` never counts the
other team either. At the end each team reads back exactly its model.

``SCIM_GATEWAY_ISOLATION_SEED`` and ``SCIM_GATEWAY_ISOLATION_OPERATIONS`` change
the seed and the number of operations per backend (default 3000).
"""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.config import RateLimitSettings, Settings
from gateway.teams import create_key
from tests.conftest import ERROR, GROUP_SCHEMA, PATCH_OP, SCIM, USER_SCHEMA
from tests.support import provision

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEED = int(os.environ.get("SCIM_GATEWAY_ISOLATION_SEED", "7643"))
OPERATIONS = int(os.environ.get("SCIM_GATEWAY_ISOLATION_OPERATIONS", "3000"))
SHARED_NAMES = [f"shared-{n}@example.com" for n in range(12)]
"""userNames both teams may hold at once (team isolation means no clash)."""

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class UserModel:
    user_name: str
    external_id: str
    display_name: str
    active: bool = True


@dataclass
class GroupModel:
    display_name: str
    external_id: str
    members: set[str] = field(default_factory=set)


@dataclass
class Team:
    """One team as the test knows it must be."""

    slug: str
    marker: str
    """In every value the team's resources get, except the shared userNames."""
    tokens: list[str]
    users: dict[str, UserModel] = field(default_factory=dict)
    groups: dict[str, GroupModel] = field(default_factory=dict)
    ever_ids: set[str] = field(default_factory=set)
    ever_values: set[str] = field(default_factory=set)
    serial: int = 0

    def fresh(self, kind: str) -> str:
        self.serial += 1
        return f"{kind}{self.serial}-{self.marker}"

    def remember(self, resource_id: str, *values: str) -> None:
        self.ever_ids.add(resource_id)
        self.ever_values.update(v for v in values if v not in SHARED_NAMES)

    def user_names(self) -> dict[str, str]:
        return {u.user_name: i for i, u in self.users.items()}


@dataclass
class Run:
    client: TestClient
    gateway: Gateway
    rng: random.Random
    teams: tuple[Team, Team]
    operations: int = 0
    requests: int = 0
    refusals_checked: int = 0

    def other(self, team: Team) -> Team:
        return self.teams[1] if team is self.teams[0] else self.teams[0]

    def send(self, team: Team, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """One request with one of ``team``'s keys; the answer, checked for leaks."""
        token = self.rng.choice(team.tokens)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM}
        sent = json.dumps(body) if body is not None else None
        response = self.client.request(
            method, f"/scim/v2{path}", headers=headers, content=sent, **kw
        )
        self.requests += 1
        request_text = f"{path} {json.dumps(kw.get('params') or {})} {sent or ''}"
        self.check_no_leak(team, response, request_text)
        return response

    def check_no_leak(self, team: Team, response: httpx2.Response, request_text: str) -> None:
        other = self.other(team)
        text = response.text
        where = f"operation {self.operations} (seed {SEED}), {response.status_code}: {text[:600]}"
        leaked_ids = (set(UUID.findall(text)) & other.ever_ids) - set(UUID.findall(request_text))
        assert not leaked_ids, f"team {other.slug}'s ids in {team.slug}'s answer at {where}"
        if other.marker in text:
            leaked = {v for v in other.ever_values if v in text and v not in request_text} or {
                other.marker
            }
            leaked = {v for v in leaked if v not in request_text}
            assert not leaked, f"team {other.slug}'s values {leaked} in answer at {where}"
        if response.status_code >= 400:
            assert response.json()["schemas"] == [ERROR], where

    def ok(self, team: Team, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        response = self.send(team, method, path, body, **kw)
        expected = {"POST": 201, "DELETE": 204}.get(method, 200)
        if method == "POST" and path.endswith((".search", "/Bulk")):
            expected = 200
        if method == "PATCH" and path.startswith("/Groups/"):
            expected = 204
        assert response.status_code == expected, (
            f"operation {self.operations} (seed {SEED}): {method} {path} -> "
            f"{response.status_code} {response.text[:600]}"
        )
        return response.json() if response.content else None

    def refused(self, team: Team, status: int, method: str, path: str, body: Any = None) -> None:
        response = self.send(team, method, path, body)
        assert response.status_code == status, (
            f"operation {self.operations} (seed {SEED}): {method} {path} -> "
            f"{response.status_code} {response.text[:600]}"
        )
        self.refusals_checked += 1


# --- the operations ---------------------------------------------------------------------


def user_body(model: UserModel) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "userName": model.user_name,
        "externalId": model.external_id,
        "displayName": model.display_name,
        "active": model.active,
    }


def new_user_model(run: Run, team: Team) -> UserModel:
    taken = {u.user_name for u in team.users.values()}
    free_shared = [n for n in SHARED_NAMES if n not in taken]
    if free_shared and run.rng.random() < 0.25:
        name = run.rng.choice(free_shared)
    else:
        name = team.fresh("u") + "@example.com"
    return UserModel(name, team.fresh("ext-u"), team.fresh("User "))


def create_user(run: Run, team: Team) -> None:
    if team.users and run.rng.random() < 0.1:
        # A userName the team already holds: 409, whoever else holds it too.
        existing = run.rng.choice(list(team.users.values()))
        clash = UserModel(existing.user_name, team.fresh("ext-u"), team.fresh("User "))
        run.refused(team, 409, "POST", "/Users", user_body(clash))
        return
    model = new_user_model(run, team)
    created = run.ok(team, "POST", "/Users", user_body(model))
    assert created["userName"] == model.user_name
    team.users[created["id"]] = model
    team.remember(created["id"], model.user_name, model.external_id, model.display_name)


def own_id(run: Run, team: Team, kind: str) -> str | None:
    pool = team.users if kind == "Users" else team.groups
    return run.rng.choice(sorted(pool)) if pool else None


def get_own(run: Run, team: Team) -> None:
    kind = run.rng.choice(["Users", "Groups"])
    resource_id = own_id(run, team, kind)
    if resource_id is None:
        return
    body = run.ok(team, "GET", f"/{kind}/{resource_id}")
    if kind == "Users":
        user = team.users[resource_id]
        assert (body["userName"], body["externalId"], body["active"]) == (
            user.user_name,
            user.external_id,
            user.active,
        )
        assert {g["value"] for g in body.get("groups", [])} <= set(team.groups)
    else:
        group = team.groups[resource_id]
        assert body["displayName"] == group.display_name
        assert {m["value"] for m in body.get("members", [])} == group.members


def other_id(run: Run, team: Team) -> tuple[str, str] | None:
    """One of the other team's ids (live or deleted) and a path kind for it."""
    other = run.other(team)
    if not other.ever_ids:
        return None
    resource_id = run.rng.choice(sorted(other.ever_ids))
    kind = "Groups" if resource_id in other.groups else "Users"
    if resource_id not in other.users and resource_id not in other.groups:
        kind = run.rng.choice(["Users", "Groups"])
    return kind, resource_id


def reach_other(run: Run, team: Team) -> None:
    target = other_id(run, team)
    if target is None:
        return
    kind, resource_id = target
    path = f"/{kind}/{resource_id}"
    method = run.rng.choice(["GET", "GET", "PUT", "PATCH", "DELETE"])
    body: Any = None
    if method == "PUT":
        body = (
            user_body(UserModel(team.fresh("u") + "@example.com", "x", "x"))
            if kind == "Users"
            else {"schemas": [GROUP_SCHEMA], "displayName": team.fresh("Group ")}
        )
    elif method == "PATCH":
        body = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "displayName", "value": "taken over"}],
        }
    run.refused(team, 404, method, path, body)


def patch_user(run: Run, team: Team) -> None:
    user_id = own_id(run, team, "Users")
    if user_id is None:
        return
    user = team.users[user_id]
    choice = run.rng.randrange(3)
    if choice == 0:
        user.display_name = team.fresh("User ")
        op = {"op": "replace", "path": "displayName", "value": user.display_name}
    elif choice == 1:
        user.active = not user.active
        op = {"op": "replace", "path": "active", "value": user.active}
    else:
        user.external_id = team.fresh("ext-u")
        op = {"op": "replace", "value": {"externalId": user.external_id}}
    team.remember(user_id, user.display_name, user.external_id)
    body = run.ok(team, "PATCH", f"/Users/{user_id}", {"schemas": [PATCH_OP], "Operations": [op]})
    assert body["id"] == user_id


def put_user(run: Run, team: Team) -> None:
    user_id = own_id(run, team, "Users")
    if user_id is None:
        return
    user = team.users[user_id]
    user.display_name = team.fresh("User ")
    user.external_id = team.fresh("ext-u")
    team.remember(user_id, user.display_name, user.external_id)
    body = run.ok(team, "PUT", f"/Users/{user_id}", user_body(user))
    assert body["displayName"] == user.display_name


def delete_user(run: Run, team: Team) -> None:
    user_id = own_id(run, team, "Users")
    if user_id is None:
        return
    run.ok(team, "DELETE", f"/Users/{user_id}")
    del team.users[user_id]
    for group in team.groups.values():
        group.members.discard(user_id)


def sample_users(run: Run, team: Team, most: int) -> set[str]:
    ids = sorted(team.users)
    return set(run.rng.sample(ids, k=min(len(ids), run.rng.randint(0, most))))


def create_group(run: Run, team: Team) -> None:
    model = GroupModel(team.fresh("Group "), team.fresh("ext-g"), sample_users(run, team, 4))
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": model.display_name,
        "externalId": model.external_id,
        "members": [{"value": m} for m in sorted(model.members)],
    }
    created = run.ok(team, "POST", "/Groups", body)
    team.groups[created["id"]] = model
    team.remember(created["id"], model.display_name, model.external_id)


def change_members(run: Run, team: Team) -> None:
    group_id = own_id(run, team, "Groups")
    if group_id is None:
        return
    group = team.groups[group_id]
    path = f"/Groups/{group_id}"
    choice = run.rng.randrange(4)
    if choice == 0:
        added = sample_users(run, team, 3)
        group.members |= added
        ops = [{"op": "add", "path": "members", "value": [{"value": m} for m in sorted(added)]}]
    elif choice == 1 and group.members:
        gone = run.rng.choice(sorted(group.members))
        group.members.discard(gone)
        ops = [{"op": "remove", "path": f'members[value eq "{gone}"]'}]
    elif choice == 2:
        # The other team's user or group as a member: refused, nothing changes.
        target = other_id(run, team)
        if target is None:
            return
        ops = [{"op": "add", "path": "members", "value": [{"value": target[1]}]}]
        run.refused(team, 400, "PATCH", path, {"schemas": [PATCH_OP], "Operations": ops})
        return
    else:
        group.members = sample_users(run, team, 4)
        members = [{"value": m} for m in sorted(group.members)]
        ops = [{"op": "replace", "path": "members", "value": members}]
    run.ok(team, "PATCH", path, {"schemas": [PATCH_OP], "Operations": ops})


def put_group(run: Run, team: Team) -> None:
    group_id = own_id(run, team, "Groups")
    if group_id is None:
        return
    group = team.groups[group_id]
    group.display_name = team.fresh("Group ")
    group.members = sample_users(run, team, 4)
    team.remember(group_id, group.display_name)
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": group.display_name,
        "externalId": group.external_id,
        "members": [{"value": m} for m in sorted(group.members)],
    }
    run.ok(team, "PUT", f"/Groups/{group_id}", body)


def delete_group(run: Run, team: Team) -> None:
    group_id = own_id(run, team, "Groups")
    if group_id is None:
        return
    run.ok(team, "DELETE", f"/Groups/{group_id}")
    del team.groups[group_id]


# --- reads: every count is the model's count --------------------------------------------


def user_filter(run: Run, team: Team) -> tuple[str | None, set[str]]:
    """A filter on /Users and the ids of ``team`` it must find."""
    other = run.other(team)
    users = team.users
    choice = run.rng.randrange(8)
    if choice == 0:
        return None, set(users)
    if choice == 1:
        # A userName of either team (shared names exist in both).
        pool = [u.user_name for u in (*users.values(), *other.users.values())] or ["nobody"]
        name = run.rng.choice(pool)
        return f'userName eq "{name}"', {i for i, u in users.items() if u.user_name == name}
    if choice == 2:
        pool = [u.external_id for u in (*users.values(), *other.users.values())] or ["none"]
        value = run.rng.choice(pool)
        return f'externalId eq "{value}"', {i for i, u in users.items() if u.external_id == value}
    if choice == 3:
        return 'userName sw "shared-"', {
            i for i, u in users.items() if u.user_name.startswith("shared-")
        }
    if choice == 4:
        return "active eq false", {i for i, u in users.items() if not u.active}
    if choice == 5:
        target = other_id(run, team)
        if target is None:
            return None, set(users)
        return f'id eq "{target[1]}"', set()
    if choice == 6:
        pool = [u.display_name for u in (*users.values(), *other.users.values())] or ["none"]
        value = run.rng.choice(pool)
        return f'displayName eq "{value}"', {i for i, u in users.items() if u.display_name == value}
    return f'userName co "{team.marker}"', {
        i for i, u in users.items() if team.marker in u.user_name
    }


def group_filter(run: Run, team: Team) -> tuple[str | None, set[str]]:
    other = run.other(team)
    groups = team.groups
    choice = run.rng.randrange(4)
    if choice == 0:
        return None, set(groups)
    if choice == 1:
        pool = [*team.users, *other.users] or [str(uuid.uuid4())]
        member = run.rng.choice(pool)
        return f'members.value eq "{member}"', {i for i, g in groups.items() if member in g.members}
    if choice == 2:
        pool = [g.display_name for g in (*groups.values(), *other.groups.values())] or ["none"]
        value = run.rng.choice(pool)
        return f'displayName eq "{value}"', {
            i for i, g in groups.items() if g.display_name == value
        }
    pool = [g.external_id for g in (*groups.values(), *other.groups.values())] or ["none"]
    value = run.rng.choice(pool)
    return f'externalId eq "{value}"', {i for i, g in groups.items() if g.external_id == value}


def check_page(run: Run, page: dict[str, Any], expected: set[str], start: int, count: int) -> None:
    where = f"operation {run.operations} (seed {SEED})"
    assert page["totalResults"] == len(expected), (where, page["totalResults"], len(expected))
    found = {r["id"] for r in page.get("Resources", [])}
    assert found <= expected, (where, found - expected)
    assert len(found) == max(0, min(count, len(expected) - start + 1)), where


def list_resources(run: Run, team: Team) -> None:
    kind = run.rng.choice(["Users", "Groups"])
    text, expected = user_filter(run, team) if kind == "Users" else group_filter(run, team)
    start = run.rng.randint(1, len(expected) + 2)
    count = run.rng.randint(0, 12)
    params: dict[str, Any] = {"startIndex": start, "count": count}
    if text is not None:
        params["filter"] = text
    page = run.ok(team, "GET", f"/{kind}", params=params)
    check_page(run, page, expected, start, count)


def search(run: Run, team: Team) -> None:
    where = run.rng.choice(["/Users/.search", "/Groups/.search", "/.search"])
    if where == "/.search":
        text, expected = None, set(team.users) | set(team.groups)
        if run.rng.random() < 0.5:
            target = other_id(run, team)
            if target is not None:
                own = run.rng.choice([*team.users, *team.groups, target[1]])
                text = f'id eq "{target[1]}" or id eq "{own}"'
                expected = {own} - {target[1]}
    elif where == "/Users/.search":
        text, expected = user_filter(run, team)
    else:
        text, expected = group_filter(run, team)
    start, count = 1, run.rng.randint(1, 30)
    body: dict[str, Any] = {"schemas": [SEARCH_REQUEST], "startIndex": start, "count": count}
    if text is not None:
        body["filter"] = text
    page = run.ok(team, "POST", where, body)
    check_page(run, page, expected, start, count)


def bulk(run: Run, team: Team) -> None:
    """A user and a group that lists it (by bulkId), a membership change, and an
    attempt on the other team's resource, in one Bulk request."""
    user = new_user_model(run, team)
    group = GroupModel(team.fresh("Group "), team.fresh("ext-g"))
    user_ref, group_ref = "u" + uuid.uuid4().hex[:8], "g" + uuid.uuid4().hex[:8]
    ops: list[dict[str, Any]] = [
        {"method": "POST", "path": "/Users", "bulkId": user_ref, "data": user_body(user)},
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": group_ref,
            "data": {
                "schemas": [GROUP_SCHEMA],
                "displayName": group.display_name,
                "externalId": group.external_id,
                "members": [{"value": f"bulkId:{user_ref}"}],
            },
        },
    ]
    existing = own_id(run, team, "Groups")
    if existing is not None:
        ops.append(
            {
                "method": "PATCH",
                "path": f"/Groups/{existing}",
                "data": {
                    "schemas": [PATCH_OP],
                    "Operations": [
                        {"op": "add", "path": "members", "value": [{"value": f"bulkId:{user_ref}"}]}
                    ],
                },
            }
        )
    target = other_id(run, team)
    if target is not None:
        ops.append({"method": "DELETE", "path": f"/{target[0]}/{target[1]}"})
    result = run.ok(team, "POST", "/Bulk", {"schemas": [BULK_REQUEST], "Operations": ops})
    answers = result["Operations"]
    statuses = [a["status"] for a in answers]
    expected = ["201", "201"] + (["200"] if existing else []) + (["404"] if target else [])
    assert statuses == expected, (run.operations, SEED, answers)
    user_id = answers[0]["location"].rsplit("/", 1)[1]
    group_id = answers[1]["location"].rsplit("/", 1)[1]
    team.users[user_id] = user
    team.remember(user_id, user.user_name, user.external_id, user.display_name)
    group.members = {user_id}
    team.groups[group_id] = group
    team.remember(group_id, group.display_name, group.external_id)
    if existing is not None:
        team.groups[existing].members.add(user_id)


OPERATIONS_MIX = [
    (create_user, 14),
    (get_own, 8),
    (reach_other, 10),
    (patch_user, 9),
    (put_user, 4),
    (delete_user, 4),
    (create_group, 5),
    (change_members, 9),
    (put_group, 3),
    (delete_group, 2),
    (list_resources, 16),
    (search, 8),
    (bulk, 4),
]


# --- the run ----------------------------------------------------------------------------


@pytest.fixture
def run(settings: Settings) -> Iterator[Run]:
    off = RateLimitSettings(per_key=0, per_team=0)  # thousands of requests in seconds
    app = create_app(settings.replace(rate_limits=off))
    with TestClient(app, base_url="http://testserver") as client:
        gateway: Gateway = app.state.gateway
        teams = []
        for letter in "ab":
            slug = f"rnd-{letter}-{uuid.uuid4().hex[:8]}"
            tokens = [provision(gateway, slug)]
            tokens.append(create_key(gateway.db, gateway.hasher, slug, "second")[1])
            teams.append(Team(slug, f"m{uuid.uuid4().hex[:10]}", tokens))
        yield Run(client, gateway, random.Random(SEED), (teams[0], teams[1]))


def check_final_state(run: Run, team: Team) -> None:
    """Each team reads back exactly its model: nothing added, lost or changed."""
    users = run.ok(team, "GET", "/Users", params={"count": 1000})
    assert {r["id"]: r["userName"] for r in users["Resources"]} == {
        i: u.user_name for i, u in team.users.items()
    }
    groups = run.ok(team, "GET", "/Groups", params={"count": 1000})
    assert {r["id"]: {m["value"] for m in r.get("members", [])} for r in groups["Resources"]} == {
        i: g.members for i, g in team.groups.items()
    }
    for group in groups["Resources"]:
        for member in group.get("members", []):
            assert member["$ref"] == f"http://testserver/scim/v2/Users/{member['value']}"


def test_random_operations_never_reveal_the_other_team(run: Run) -> None:
    functions = [f for f, _w in OPERATIONS_MIX]
    weights = [w for _f, w in OPERATIONS_MIX]
    counts: dict[str, int] = {}
    for number in range(OPERATIONS):
        run.operations = number
        team = run.rng.choice(run.teams)
        operation = run.rng.choices(functions, weights)[0]
        operation(run, team)
        counts[operation.__name__] = counts.get(operation.__name__, 0) + 1
    for team in run.teams:
        check_final_state(run, team)
    a, b = run.teams
    assert a.ever_ids.isdisjoint(b.ever_ids)
    # The mix really ran: every kind of operation, many of them across teams.
    assert set(counts) == {f.__name__ for f in functions}, counts
    assert run.refusals_checked >= OPERATIONS // 20, run.refusals_checked
    assert min(len(a.users), len(b.users)) > 10
    shared = {u.user_name for u in a.users.values()} & {u.user_name for u in b.users.values()}
    assert shared, "no userName was held by both teams at the end"
    print(
        f"\nisolation: {OPERATIONS} operations, {run.requests} requests, seed {SEED}, "
        f"{run.refusals_checked} cross-team or conflicting requests refused; {counts}"
    )
