"""Rate limits hold across gateway processes that share their store.

Two real ``scim-gateway serve`` processes run on one PostgreSQL database, with the
rate-limit store in that database and then in Redis. Requests of one key, or of
one team's keys, are sent through both at once: the processes count them
together, so together they admit no more than one process would.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.teams import create_key
from tests.conftest import ERROR, POSTGRES_URL, SCIM
from tests.e2e.conftest import Served, clean_environment, free_port, serve
from tests.support import provision
from tests.test_rate_limits import require_redis

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not POSTGRES_URL,
        reason="SCIM_GATEWAY_TEST_POSTGRES_URL is not set: several gateway processes need a "
        "shared PostgreSQL database",
    ),
]

# Small budgets, so that what one process would admit alone is plainly more than
# what both admit together: a key may send 10 at once, a team 20.
PER_KEY, PER_TEAM, BURST = 1, 2, 10.0
KEY_BURST, TEAM_BURST = int(PER_KEY * BURST), int(PER_TEAM * BURST)


@dataclass
class Pair:
    """Two gateway processes on one database and one rate-limit store."""

    processes: tuple[Served, Served]
    gateway: Gateway

    def request(self, process: int, token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": SCIM}
        url = f"{self.processes[process].base_url}/Users"
        return httpx.get(url, headers=headers, timeout=30.0)

    def burst(self, sends: list[tuple[int, str]]) -> tuple[list[httpx.Response], float]:
        """Send every ``(process, token)`` at once; the answers and the seconds taken."""
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda send: self.request(*send), sends))
        return answers, time.monotonic() - start


@pytest.fixture(
    scope="module",
    params=["database", "redis"],
)
def pair(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    store: str = request.param
    if store == "redis":
        require_redis()
    workdir = tmp_path_factory.mktemp(f"ratelimit-{store}")
    config = workdir / "gateway.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\n\n[database]\nurl = {json.dumps(postgres_url)}\n\n'
        f"[rate_limits]\nper_key = {PER_KEY}\nper_team = {PER_TEAM}\nburst = {BURST}\n"
        f'store = "{store}"\n',
        encoding="utf-8",
    )
    runs = []
    processes = []
    for name in ("one", "two"):
        home = workdir / name
        home.mkdir()
        run = serve(
            home,
            args=["serve", "--config", str(config), "--port", str(free_port())],
            env=clean_environment(),
            token=None,
            team="default",
        )
        processes.append(next(run))
        runs.append(run)
    gateway = Gateway(load_settings(config))
    try:
        gateway.start()
        yield Pair((processes[0], processes[1]), gateway)
    finally:
        gateway.stop()
        for run in runs:
            next(run, None)  # stops the process


def refusals(answers: list[httpx.Response]) -> list[httpx.Response]:
    refused = [a for a in answers if a.status_code == 429]
    assert all(a.status_code in (200, 429) for a in answers), [a.text for a in answers]
    for answer in refused:
        assert answer.json()["schemas"] == [ERROR]
        assert int(answer.headers["retry-after"]) >= 1
    return refused


def test_one_keys_burst_through_both_processes_is_counted_once(pair: Pair) -> None:
    token = provision(pair.gateway, "rl-e2e-" + uuid.uuid4().hex[:10])
    sends = [(i % 2, token) for i in range(30)]
    answers, elapsed = pair.burst(sends)
    refused = refusals(answers)
    admitted = len(answers) - len(refused)
    # Counted together: the key's burst, plus what refilled while the requests ran.
    assert KEY_BURST <= admitted <= KEY_BURST + PER_KEY * elapsed + 1, (admitted, elapsed)
    # Counted apart, each process would have admitted a full burst of its own.
    assert admitted < 2 * KEY_BURST
    assert {i % 2 for i, a in enumerate(answers) if a.status_code == 429} == {0, 1}
    assert all("This key may make 1 requests per second" in a.text for a in refused)


def test_a_teams_keys_through_both_processes_share_the_team_budget(pair: Pair) -> None:
    slug = "rl-e2e-" + uuid.uuid4().hex[:10]
    tokens = [provision(pair.gateway, slug)]
    for n in range(2):
        _info, token = create_key(pair.gateway.db, pair.gateway.hasher, slug, f"idp-{n}")
        tokens.append(token)
    # Each key sends exactly its own burst; together 30, over the team's 20.
    sends = [(i % 2, tokens[i % 3]) for i in range(3 * KEY_BURST)]
    answers, elapsed = pair.burst(sends)
    refused = refusals(answers)
    admitted = len(answers) - len(refused)
    assert TEAM_BURST <= admitted <= TEAM_BURST + PER_TEAM * elapsed + 1, (admitted, elapsed)
    assert refused, "the team's budget was not shared by the two processes"
    assert all(f"The keys of team '{slug}' together" in a.text for a in refused)
