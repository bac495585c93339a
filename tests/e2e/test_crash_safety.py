"""A gateway killed mid-write loses nothing it acknowledged and half-applies nothing.

Client threads keep a real ``scim-gateway serve`` busy with creates, multi-operation
PATCHes and member batches. At a random moment the process is killed with SIGKILL
(no shutdown, no flush), then started again on the same database, and the data is
checked as a client sees it:

- every write answered with a 2xx is there;
- a user PATCH sets five attributes (in ``scim_user`` and in ``scim_user_value``) to
  values derived from one counter: they agree with each other, and the counter is
  the last acknowledged one, or the one that was in flight when the process died;
- a member batch (one PATCH renaming the group and adding five users) is there whole
  or not at all, and the group's name says which batches it holds;
- nothing exists that no client asked for.

This repeats several times per backend, each restart checking everything written
since the first iteration.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ENTERPRISE, GROUP_SCHEMA, PATCH_OP, SCIM, USER_SCHEMA
from tests.e2e.conftest import Served, clean_environment, free_port, provision_key, serve
from tests.test_concurrency import write_config

pytestmark = pytest.mark.e2e

ITERATIONS = 5
"""Kills per backend."""

WORKERS = 3
"""Client threads writing at once, each on its own users and group."""

BATCH = 5
"""Users created, then added to a group in one PATCH, per step of a worker."""

KILL_WINDOW = (0.0, 0.4)
"""Seconds, drawn at random, between the load being under way and the kill."""


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


# --- what the clients were told -------------------------------------------------------------


@dataclass
class PatchedUser:
    user_name: str
    acked: int | None = None
    """Counter of the last PATCH answered 200."""
    in_flight: int | None = None
    """Counter of a PATCH sent and never answered."""


@dataclass
class BatchedGroup:
    batches: dict[int, list[str]] = field(default_factory=dict)
    """Batch number -> the users that batch's PATCH adds."""
    acked: int = 0
    in_flight: int | None = None


@dataclass
class Ledger:
    """Every write the clients sent, and which of them were acknowledged."""

    users: dict[str, PatchedUser] = field(default_factory=dict)
    """Acknowledged users, by id."""
    unanswered_creates: set[str] = field(default_factory=set)
    """userNames whose POST got no answer: they may or may not exist."""
    groups: dict[str, BatchedGroup] = field(default_factory=dict)
    unanswered_groups: set[str] = field(default_factory=set)
    interrupted: dict[str, int] = field(default_factory=dict)
    """How many kills landed during each kind of request."""
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_interrupted(self, kind: str) -> None:
        with self.lock:
            self.interrupted[kind] = self.interrupted.get(kind, 0) + 1


def user_patch(counter: int) -> dict[str, Any]:
    """One PATCH setting five attributes, in two tables, from one counter."""
    value = f"v{counter}"
    return {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "path": "displayName", "value": value},
            {"op": "replace", "path": "title", "value": value},
            {"op": "add", "path": "name.givenName", "value": value},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": f"{value}@x.test"},
            {"op": "add", "path": f"{ENTERPRISE}:employeeNumber", "value": value},
        ],
    }


def counter_of(user: dict[str, Any]) -> int | None:
    """The counter a user's five patched attributes agree on; None if never patched.

    Fails when they disagree: that would be a PATCH applied in part."""
    emails = [e["value"] for e in user.get("emails", []) if e.get("type") == "work"]
    if emails == [f"{user['userName']}@x.test"]:
        email: str | None = None  # as created
    else:
        email = ",".join(emails).removesuffix("@x.test") or "<no work email>"
    seen = {
        "displayName": user.get("displayName"),
        "title": user.get("title"),
        "name.givenName": (user.get("name") or {}).get("givenName"),
        "emails.work": email,
        "employeeNumber": (user.get(ENTERPRISE) or {}).get("employeeNumber"),
    }
    values = set(seen.values())
    assert len(values) == 1, f"user {user['userName']} has a half-applied PATCH: {seen}"
    [value] = values
    return None if value is None else int(value.removeprefix("v"))


class Worker(threading.Thread):
    """Creates users, patches them and adds them to its group, until the server dies."""

    def __init__(self, served: Served, ledger: Ledger, tag: str, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.served = served
        self.ledger = ledger
        self.tag = tag
        self.rng = random.Random(rng.random())
        self.steps = 0
        self.counter = 0
        self.mine: list[str] = []

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.served.token}", "Content-Type": SCIM}
        with httpx.Client(base_url=self.served.base_url, headers=headers, timeout=15.0) as http:
            kind = "group create"
            try:
                group_id = self.create_group(http)
                while True:
                    kind = "user create"
                    batch = [
                        self.create_user(http, f"{self.tag}.{self.steps}.{k}") for k in range(BATCH)
                    ]
                    kind = "user PATCH"
                    self.patch_user(http, self.rng.choice(self.mine))  # often patched again
                    self.patch_user(http, batch[-1])
                    kind = "member batch"
                    self.add_batch(http, group_id, batch)
                    self.steps += 1
            except httpx.TransportError:
                self.ledger.note_interrupted(kind)  # the server is gone
            except AssertionError as exc:
                self.ledger.failures.append(f"{self.tag} {kind}: {exc}")

    def create_group(self, http: httpx.Client) -> str:
        name = f"crash {self.tag} b0"
        with self.ledger.lock:
            self.ledger.unanswered_groups.add(name)
        answer = http.post("/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": name})
        assert answer.status_code == 201, answer.text
        group_id: str = answer.json()["id"]
        with self.ledger.lock:
            self.ledger.unanswered_groups.discard(name)
            self.ledger.groups[group_id] = BatchedGroup()
        return group_id

    def create_user(self, http: httpx.Client, user_name: str) -> str:
        body = {
            "schemas": [USER_SCHEMA],
            "userName": user_name,
            "emails": [{"value": f"{user_name}@x.test", "type": "work"}],
        }
        with self.ledger.lock:
            self.ledger.unanswered_creates.add(user_name)
        answer = http.post("/Users", json=body)
        assert answer.status_code == 201, answer.text
        user_id: str = answer.json()["id"]
        with self.ledger.lock:
            self.ledger.unanswered_creates.discard(user_name)
            self.ledger.users[user_id] = PatchedUser(user_name)
        self.mine.append(user_id)
        return user_id

    def patch_user(self, http: httpx.Client, user_id: str) -> None:
        self.counter += 1
        record = self.ledger.users[user_id]
        record.in_flight = self.counter
        answer = http.patch(f"/Users/{user_id}", json=user_patch(self.counter))
        assert answer.status_code == 200, answer.text
        assert counter_of(answer.json()) == self.counter
        record.acked, record.in_flight = self.counter, None

    def add_batch(self, http: httpx.Client, group_id: str, batch: list[str]) -> None:
        record = self.ledger.groups[group_id]
        number = record.acked + 1
        record.batches[number] = batch
        record.in_flight = number
        ops = [
            {"op": "replace", "path": "displayName", "value": f"crash {self.tag} b{number}"},
            {"op": "add", "path": "members", "value": [{"value": u} for u in batch]},
        ]
        answer = http.patch(f"/Groups/{group_id}", json={"schemas": [PATCH_OP], "Operations": ops})
        assert answer.status_code == 204, answer.text
        record.acked, record.in_flight = number, None


# --- reading everything back -----------------------------------------------------------------


def read_all(http: httpx.Client, path: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        answer = http.get(path, params={"startIndex": len(out) + 1, "count": 1000})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        out += page["Resources"]
        if not page["Resources"] or len(out) >= page["totalResults"]:
            return out


def check_survivors(served: Served, ledger: Ledger) -> None:
    """What the restarted gateway serves is what the clients were told, whole."""
    with served.client() as http:
        users = {u["id"]: u for u in read_all(http, "/Users")}
        groups = {g["id"]: g for g in read_all(http, "/Groups")}

    missing = [u.user_name for uid, u in ledger.users.items() if uid not in users]
    assert not missing, f"acknowledged creates lost: {missing}"
    for user_id, user in users.items():
        record = ledger.users.get(user_id)
        if record is None:
            # Created by a POST that never got an answer: committed, or not at all.
            assert user["userName"] in ledger.unanswered_creates, f"unexpected user {user}"
            assert counter_of(user) is None
            continue
        stored = counter_of(user)
        allowed = {record.acked, record.in_flight}
        if record.acked is not None:
            allowed.discard(None)  # acknowledged: the user cannot be unpatched
        assert stored in allowed, (
            f"user {record.user_name}: stored PATCH {stored}, acknowledged {record.acked}, "
            f"in flight {record.in_flight}"
        )

    lost_groups = [gid for gid in ledger.groups if gid not in groups]
    assert not lost_groups, f"acknowledged groups lost: {lost_groups}"
    for group_id, group in groups.items():
        name = group["displayName"]
        record = ledger.groups.get(group_id)
        if record is None:
            assert name in ledger.unanswered_groups, f"unexpected group {group}"
            assert not group.get("members")
            continue
        number = int(name.rsplit(" b", 1)[1])
        assert number in {record.acked, record.in_flight}, (
            f"group {name}: acknowledged batch {record.acked}, in flight {record.in_flight}"
        )
        expected = {u for n in range(1, number + 1) for u in record.batches[n]}
        members = [m["value"] for m in group.get("members", [])]
        assert len(members) == len(set(members)), f"group {name} lists a member twice"
        assert set(members) == expected, (
            f"group {name}: members of batches after {number} present, or of earlier ones "
            f"missing: {sorted(set(members) ^ expected)}"
        )


# --- the test ---------------------------------------------------------------------------------


def start(workdir: Path, config: Path, token: str, team: str) -> Iterator[Served]:
    args = ["serve", "--config", str(config), "--port", str(free_port())]
    return serve(workdir, args=args, env=clean_environment(), token=token, team=team)


def test_sigkill_mid_write_loses_no_acknowledged_write_and_applies_none_in_part(
    database_url: str, tmp_path: Path
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    team = "crash-" + uuid.uuid4().hex[:12]
    config = write_config(tmp_path / "gateway.toml", database_url=database_url)
    token = provision_key(config, team)
    ledger = Ledger()

    running = start(tmp_path, config, token, team)
    served = next(running)
    kills = 0
    try:
        for iteration in range(ITERATIONS):
            workers = [Worker(served, ledger, f"{iteration}.{w}", rng) for w in range(WORKERS)]
            for worker in workers:
                worker.start()
            # Under way: every worker has finished a step (create, PATCH, member batch).
            deadline = time.monotonic() + 20
            while min(w.steps for w in workers) < 1 and time.monotonic() < deadline:
                assert not ledger.failures, ledger.failures
                time.sleep(0.01)
            assert min(w.steps for w in workers) >= 1, served.stderr()
            time.sleep(rng.uniform(*KILL_WINDOW))
            served.process.kill()  # SIGKILL: no cleanup of any kind
            served.process.wait(timeout=10)
            kills += 1
            for worker in workers:
                worker.join(timeout=20)
                assert not worker.is_alive()
            assert not ledger.failures, f"seed {seed}: {ledger.failures}"

            next(running, None)
            running = start(tmp_path, config, token, team)
            served = next(running)
            check_survivors(served, ledger)
    finally:
        next(running, None)

    steps = sum(len(g.batches) for g in ledger.groups.values())
    # Shown with -rP, and with any failure.
    print(
        f"seed {seed}: {kills} kills; {len(ledger.users)} users and {steps} member batches "
        f"acknowledged; requests cut short by a kill: {ledger.interrupted}"
    )
    assert kills == ITERATIONS
    assert len(ledger.users) >= ITERATIONS * WORKERS * BATCH, (len(ledger.users), steps)
    # At least one kill interrupted a request (the threads never pause between requests).
    assert sum(ledger.interrupted.values()) >= 1, ledger.interrupted
