"""Rate limits per key and per team: 429 with Retry-After and a SCIM error body.

Every store (the database, Redis, this process's memory) is driven through the
HTTP API on SQLite and PostgreSQL. Time is a clock the test moves, so each count
is exact; one test paces requests on the real clock.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.config import ConfigError, RateLimitSettings, Settings, load_settings
from gateway.ratelimit import Bucket, MemoryStore, limiter_for
from gateway.teams import create_key
from tests.conftest import ERROR, SCIM, USER_SCHEMA
from tests.e2e.conftest import free_port
from tests.support import provision

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
START = 1_700_000_000_000_000  # a Unix time in microseconds
STORES = ["database", "memory", "redis"]


def require_redis() -> None:
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1.0).close()
    except OSError as exc:
        pytest.skip(
            f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT} ({exc}); the redis store needs it"
        )


class Clock:
    """Unix time in microseconds that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = time.time_ns() // 1000

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1_000_000)


@dataclass
class Limited:
    client: TestClient
    gateway: Gateway
    clock: Clock

    def team(self) -> tuple[str, str]:
        """A new team and its first key."""
        slug = "rl-" + uuid.uuid4().hex[:12]
        return slug, provision(self.gateway, slug)

    def another_key(self, slug: str) -> str:
        _info, token = create_key(
            self.gateway.db, self.gateway.hasher, slug, "second-" + uuid.uuid4().hex[:6]
        )
        return token

    def send(self, token: str, method: str = "GET", path: str = "/Users", **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM}
        return self.client.request(method, f"/scim/v2{path}", headers=headers, **kw)

    def statuses(self, token: str, count: int) -> list[int]:
        return [self.send(token).status_code for _ in range(count)]


@contextlib.contextmanager
def limited_gateway(settings: Settings, store: str, **rate: Any) -> Iterator[Limited]:
    limits = RateLimitSettings(store=store, **rate)
    app = create_app(settings.replace(rate_limits=limits))
    with TestClient(app, base_url="http://testserver") as client:
        gateway: Gateway = app.state.gateway
        clock = Clock()
        limiter_for(gateway).clock = clock
        yield Limited(client, gateway, clock)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis()
    name: str = request.param
    return name


def assert_too_many(response: httpx2.Response, *words: str) -> int:
    """A 429 in the SCIM error shape with an integral Retry-After; returns it."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith(SCIM)
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "429"
    for word in words:
        assert word in body["detail"], body["detail"]
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert int(retry_after) >= 1
    assert f"Retry after {retry_after} second" in body["detail"]
    return int(retry_after)


def test_over_the_key_limit_is_429_with_retry_after_and_a_scim_error(
    settings: Settings, store: str
) -> None:
    with limited_gateway(settings, store, per_key=5, per_team=1000, burst=1.0) as gw:
        _slug, token = gw.team()
        assert gw.statuses(token, 5) == [200] * 5
        refused = gw.send(token)
        retry_after = assert_too_many(refused, "This key may make 5 requests per second")
        assert retry_after == 1
        assert gw.statuses(token, 3) == [429] * 3

        # One request's worth of time later, exactly one more request passes.
        gw.clock.advance(0.2)
        assert gw.statuses(token, 2) == [200, 429]
        # Waiting as long as Retry-After says is always enough.
        gw.clock.advance(retry_after)
        assert gw.send(token).status_code == 200


def test_a_refused_write_changes_nothing(settings: Settings, store: str) -> None:
    with limited_gateway(settings, store, per_key=2, per_team=1000, burst=1.0) as gw:
        _slug, token = gw.team()
        assert gw.statuses(token, 2) == [200, 200]
        body = {"schemas": [USER_SCHEMA], "userName": "refused@example.com"}
        assert_too_many(gw.send(token, "POST", "/Users", json=body))
        gw.clock.advance(1.0)
        found = gw.send(token, params={"filter": 'userName eq "refused@example.com"'})
        assert found.status_code == 200, found.text
        assert found.json()["totalResults"] == 0


def test_two_keys_of_one_team_share_the_team_budget(settings: Settings, store: str) -> None:
    with limited_gateway(settings, store, per_key=5, per_team=8, burst=1.0) as gw:
        slug, first = gw.team()
        second = gw.another_key(slug)
        _other_slug, other_team = gw.team()

        assert gw.statuses(first, 5) == [200] * 5
        assert_too_many(gw.send(first), "This key may make 5 requests per second")
        # The second key has its own 5, but the team has only 3 left of its 8.
        assert gw.statuses(second, 3) == [200] * 3
        assert_too_many(
            gw.send(second), f"The keys of team '{slug}' together may make 8 requests per second"
        )
        # Another team's budget is its own.
        assert gw.statuses(other_team, 5) == [200] * 5

        gw.clock.advance(1.0)
        assert gw.statuses(second, 5) == [200] * 5
        assert gw.statuses(first, 4) == [200, 200, 200, 429]


def test_a_key_over_its_limit_does_not_use_up_its_team(settings: Settings, store: str) -> None:
    """Refused requests take nothing: one noisy key cannot starve its team's others."""
    with limited_gateway(settings, store, per_key=2, per_team=5, burst=1.0) as gw:
        slug, noisy = gw.team()
        quiet = gw.another_key(slug)
        assert gw.statuses(noisy, 20) == [200, 200] + [429] * 18
        assert gw.statuses(quiet, 2) == [200, 200]
        gw.clock.advance(0.5)  # 2.5 requests' worth for the team, 1 for each key
        assert gw.statuses(quiet, 2) == [200, 429]
        assert gw.statuses(noisy, 2) == [200, 429]


def test_a_burst_of_up_to_burst_times_the_rate_passes_after_a_pause(
    settings: Settings, store: str
) -> None:
    with limited_gateway(settings, store, per_key=4, per_team=1000, burst=2.5) as gw:
        _slug, token = gw.team()
        assert gw.statuses(token, 11) == [200] * 10 + [429]
        gw.clock.advance(1.0)  # refills 4
        assert gw.statuses(token, 5) == [200] * 4 + [429]
        gw.clock.advance(60.0)  # a long pause refills the burst, not more
        assert gw.statuses(token, 11) == [200] * 10 + [429]


def test_entra_25_requests_per_second_pass_with_the_defaults(settings: Settings) -> None:
    """Entra ID sends at most 25 requests per second per tenant: creates, reads and
    updates at that pace for 2 seconds all pass with the default limits."""
    assert RateLimitSettings() == RateLimitSettings(per_key=50, per_team=100, store="auto")
    app = create_app(settings.replace(rate_limits=RateLimitSettings()))
    with TestClient(app, base_url="http://testserver") as client:
        gateway: Gateway = app.state.gateway
        token = provision(gateway, "entra-" + uuid.uuid4().hex[:10])
        headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM}
        statuses = []
        start = time.monotonic()
        for i in range(50):
            # Paced on the real clock: request i goes out at i/25 seconds.
            delay = start + i / 25 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if i % 2 == 0:
                body = {"schemas": [USER_SCHEMA], "userName": f"entra{i}@example.com"}
                response = client.post("/scim/v2/Users", json=body, headers=headers)
            else:
                response = client.get(
                    "/scim/v2/Users",
                    params={"filter": f'userName eq "entra{i - 1}@example.com"'},
                    headers=headers,
                )
            statuses.append(response.status_code)
        elapsed = time.monotonic() - start
        assert statuses == [201, 200] * 25
        assert elapsed >= 1.9


def test_the_defaults_let_a_burst_of_100_through_and_refuse_a_flood(settings: Settings) -> None:
    with limited_gateway(settings, "database") as gw:
        _slug, token = gw.team()
        assert gw.statuses(token, 100) == [200] * 100
        assert_too_many(gw.send(token), "This key may make 50 requests per second")
        gw.clock.advance(1.0)
        assert gw.statuses(token, 51) == [200] * 50 + [429]


def test_zero_turns_the_limits_off(settings: Settings) -> None:
    """150 requests at one instant: more than the default burst of 100 admits."""
    with limited_gateway(settings, "database", per_key=0, per_team=0) as gw:
        _slug, token = gw.team()
        assert gw.statuses(token, 150) == [200] * 150


@pytest.mark.parametrize(
    ("store", "shared"), [("database", True), ("redis", True), ("memory", False)]
)
def test_gateways_sharing_a_store_share_the_budgets(
    settings: Settings, store: str, shared: bool
) -> None:
    """Two gateways on one database count one key's requests together with the
    database and Redis stores; the memory store is per process."""
    if store == "redis":
        require_redis()
    with (
        limited_gateway(settings, store, per_key=3, per_team=1000, burst=2.0) as one,
        limited_gateway(settings, store, per_key=3, per_team=1000, burst=2.0) as two,
    ):
        two.clock.now = one.clock.now
        _slug, token = one.team()
        seen = [g.send(token).status_code for _ in range(6) for g in (one, two)]
        if shared:
            assert seen == [200] * 6 + [429] * 6
        else:
            assert seen == [200] * 12


def test_an_unreachable_redis_lets_requests_through_and_says_so(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with (
        caplog.at_level(logging.WARNING, logger="scim_gateway.ratelimit"),
        limited_gateway(settings, "redis", per_key=1, burst=1.0, redis_url=url) as gw,
    ):
        _slug, token = gw.team()
        assert gw.statuses(token, 10) == [200] * 10
    warnings = [r.getMessage() for r in caplog.records if r.name == "scim_gateway.ratelimit"]
    assert len(warnings) == 1, warnings
    assert "Redis is unavailable" in warnings[0]
    assert "without rate limiting" in warnings[0]


# --- the algorithm: never more than capacity + rate * t in any t seconds -------------


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    rate=st.integers(min_value=1, max_value=100),
    burst=st.floats(min_value=1.0, max_value=5.0),
    gaps=st.lists(st.integers(min_value=0, max_value=300_000), min_size=1, max_size=300),
)
def test_no_window_admits_more_than_the_burst_plus_the_rate(
    rate: int, burst: float, gaps: list[int]
) -> None:
    """``gaps``: microseconds between requests."""
    capacity = max(1, int(rate * burst))
    bucket = Bucket("key:k", "key", rate, capacity)
    store = MemoryStore()
    now, admitted = START, []
    for gap in gaps:
        now += gap
        if store.take_now([bucket], now) is None:
            admitted.append(now)
    assert admitted[0] == START + gaps[0]  # an idle bucket admits
    for i, first in enumerate(admitted):
        for j in range(i, len(admitted)):
            # The step is 1/rate rounded to a microsecond: allow for that rounding.
            allowed = capacity + (admitted[j] - first) / bucket.step
            assert j - i + 1 <= allowed


@hypothesis_settings(max_examples=100, deadline=None)
@given(rate=st.integers(min_value=1, max_value=200), count=st.integers(1, 400))
def test_a_steady_pace_at_the_rate_is_never_refused(rate: int, count: int) -> None:
    bucket = Bucket("team:1", "team", rate, rate)  # burst 1: no slack at all
    store = MemoryStore()
    pace = -(-1_000_000 // rate)  # 1/rate seconds, rounded up to a microsecond
    assert all(store.take_now([bucket], START + i * pace) is None for i in range(count))


# --- configuration -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('store = "disk"', ["rate_limits.store: 'disk' is not a store; use \"auto\""]),
        ("burst = 0.5", ["rate_limits.burst", "use 1 or more"]),
        ("per_key = -1", ["rate_limits.per_key: must not be negative"]),
        ('per_team = "100"', ["rate_limits.per_team: expected an integer"]),
        (
            'store = "redis"\nredis_url = "redis://:hunter2@cache:6379/0"',
            ["rate_limits.redis_url: secrets are never written", "redis_password"],
        ),
        (
            'store = "redis"\nredis_url = "http://cache:6379"',
            ["rate_limits.redis_url", "redis://host:6379/0"],
        ),
        ("limit = 5", ["rate_limits.limit: unknown key", "per_key"]),
        (
            'store = "redis"\nredis_password = { env = "SCIM_GATEWAY_TEST_UNSET_VARIABLE" }',
            ["rate_limits.redis_password", "SCIM_GATEWAY_TEST_UNSET_VARIABLE is not set"],
        ),
    ],
)
def test_rate_limit_mistakes_stop_startup_with_the_fix(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(f"[rate_limits]\n{text}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    for word in words:
        assert word in str(info.value)
    assert "hunter2" not in str(info.value)


def test_rate_limits_are_read_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "from-the-environment")
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[rate_limits]\nper_key = 30\nper_team = 60\nburst = 3\nstore = "redis"\n'
        'redis_url = "redis://cache.internal:6379/2"\n'
        'redis_password = { env = "REDIS_PASSWORD" }\n',
        encoding="utf-8",
    )
    limits = load_settings(path).rate_limits
    assert (limits.per_key, limits.per_team, limits.burst) == (30, 60, 3.0)
    assert (limits.store, limits.redis_url) == ("redis", "redis://cache.internal:6379/2")
    assert limits.redis_password is not None
    assert limits.redis_password.env == "REDIS_PASSWORD"
