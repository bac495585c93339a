"""Request rate limits per SCIM API key and per team.

Each key and each team has a bucket, limited by the generic cell rate algorithm
(GCRA, a token bucket kept as one number): a bucket of rate ``r`` requests per
second and capacity ``c`` stores a *theoretical arrival time* ``tat``. A request
at time ``now`` starts from ``start = max(tat, now)`` and would move the bucket to
``start + 1/r``; it is admitted when that is at most ``c/r`` seconds ahead of
``now``, else refused with the wait that would have made it fit. So a bucket left
idle admits ``c`` requests at once, then one every ``1/r`` seconds, and never more
than ``c + r*t`` in any ``t`` seconds. ``c`` is ``rate * burst``.

Times are integer microseconds, so every store computes exactly the same answer.

A request takes one unit from its key's bucket and one from its team's, all or
nothing: a refused request uses neither, so a key hammering past its own limit
does not eat its team's budget. The buckets live in a store shared by every
gateway process (the database, or Redis) or in this process only (memory).
See docs/security.md.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio.to_thread
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    String,
    Table,
    bindparam,
    event,
    text,
    update,
)
from sqlalchemy.sql.elements import TextClause

from .auth import Principal
from .config import RateLimitSettings
from .scim.errors import TooManyRequests
from .store.bootstrap import shared_secret
from .store.db import Database
from .store.tables import metadata

if TYPE_CHECKING:
    from .app import Gateway

__all__ = [
    "Bucket",
    "DatabaseStore",
    "MemoryStore",
    "RateLimiter",
    "RedisStore",
    "Refusal",
    "admit",
    "enforce_rate_limits",
    "limiter_for",
]

log = logging.getLogger("scim_gateway.ratelimit")

MICROSECONDS = 1_000_000

CLOCK_SLACK = MICROSECONDS
"""A bucket whose clock is this much further ahead than it can be (a clock that went
back, or a host whose clock is far off) is taken as full rather than as spent."""

REDIS_RETRY_AFTER_FAILURE = 5.0
"""Seconds during which an unreachable Redis is not asked again (requests pass)."""

rate_limit_table = Table(
    "scim_rate_limit",
    metadata,
    Column("bucket", String(96), primary_key=True),
    # The bucket's theoretical arrival time and its parameters, in microseconds.
    Column("tat", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("span", BigInteger, nullable=False),
    # Scratch: the wait computed by the last request (<= 0: it was admitted).
    Column("wait", BigInteger, nullable=False),
)


@event.listens_for(rate_limit_table, "after_create")
def _unlogged(_table: Table, connection: Connection, **_kw: Any) -> None:
    """On PostgreSQL the buckets skip the write-ahead log: a check then commits
    without waiting for a disk flush, and a crash merely refills every bucket."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ALTER TABLE scim_rate_limit SET UNLOGGED")


@dataclass(frozen=True, slots=True)
class Bucket:
    """One budget: ``rate`` requests per second, ``capacity`` at once."""

    name: str
    scope: str  # "key" or "team"
    rate: int
    capacity: int
    step: int = field(init=False, repr=False, compare=False)
    """Microseconds one request moves the bucket's clock."""
    span: int = field(init=False, repr=False, compare=False)
    """How far ahead of now the bucket's clock may run (microseconds): the burst."""

    def __post_init__(self) -> None:
        # Worked out once: every request reads them.
        step = max(1, round(MICROSECONDS / self.rate))
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "span", self.capacity * step)


@dataclass(frozen=True, slots=True)
class Refusal:
    bucket: Bucket
    wait: int
    """Microseconds until the bucket admits one more request."""


def admit(tat: int | None, now: int, bucket: Bucket) -> tuple[int, int]:
    """One GCRA step: the bucket's next ``tat`` and the wait (``<= 0``: admitted).

    A ``tat`` further ahead than the bucket allows can only come from a clock that
    went backwards (or another host's clock running well ahead); it counts as
    ``now`` rather than refusing requests until this clock catches up.
    """
    ahead = tat is not None and tat > now + bucket.span + CLOCK_SLACK
    start = now if tat is None or tat < now or ahead else tat
    after = start + bucket.step
    return after, after - now - bucket.span


class Store(Protocol):
    async def take(self, team_pk: int, buckets: Sequence[Bucket], now: int) -> Refusal | None:
        """Take one request from every bucket, or from none; the refusal, if any."""
        ...


class MemoryStore:
    """Buckets in this process's memory: for a single gateway process."""

    PRUNE_ABOVE = 10_000

    def __init__(self) -> None:
        self._tats: dict[str, int] = {}
        self._lock = threading.Lock()

    async def take(self, team_pk: int, buckets: Sequence[Bucket], now: int) -> Refusal | None:
        return self.take_now(buckets, now)

    def take_now(self, buckets: Sequence[Bucket], now: int) -> Refusal | None:
        with self._lock:
            tats = self._tats
            afters = []
            for bucket in buckets:
                after, wait = admit(tats.get(bucket.name), now, bucket)
                if wait > 0:
                    return Refusal(bucket, wait)
                afters.append(after)
            for bucket, after in zip(buckets, afters, strict=True):
                tats[bucket.name] = after
            if len(tats) > self.PRUNE_ABOVE:
                # A bucket whose clock is behind now is full: forgetting it changes nothing.
                self._tats = {name: tat for name, tat in tats.items() if tat > now}
        return None


def _upsert(rows: int) -> TextClause:
    """``INSERT ... ON CONFLICT (bucket) DO UPDATE ... RETURNING bucket, wait`` for
    ``rows`` buckets: one GCRA step per row, atomic under the row's lock. The same
    text serves PostgreSQL and SQLite, and is prepared once (a multi-row insert built
    with SQLAlchemy's constructs would be compiled again on every request)."""
    values = ", ".join(f"(:bucket{i}, :tat{i}, :step{i}, :span{i}, 0)" for i in range(rows))
    old, new = "scim_rate_limit", "excluded"
    start = (
        f"CASE WHEN {old}.tat < :now THEN :now "
        f"WHEN {old}.tat > :now + {new}.span + {CLOCK_SLACK} THEN :now "
        f"ELSE {old}.tat END"
    )
    wait = f"({start}) + {new}.step - :now - {new}.span"
    return text(
        f"INSERT INTO scim_rate_limit (bucket, tat, step, span, wait) VALUES {values} "
        f"ON CONFLICT (bucket) DO UPDATE SET "
        f"tat = CASE WHEN {wait} <= 0 THEN ({start}) + {new}.step ELSE {old}.tat END, "
        f"step = {new}.step, span = {new}.span, wait = {wait} "
        f"RETURNING bucket, wait"
    ).bindparams(bindparam("now", type_=BigInteger))


# A request has one or two buckets (its key's and its team's).
_UPSERTS = {rows: _upsert(rows) for rows in (1, 2)}
_REFUND = (
    update(rate_limit_table)
    .where(rate_limit_table.c.bucket == bindparam("b_bucket"))
    .values(tat=rate_limit_table.c.tat - bindparam("b_step", type_=BigInteger))
)


class DatabaseStore:
    """Buckets as rows of ``scim_rate_limit``: shared by every process on the database.

    One statement per request upserts both rows; each row's update is atomic under
    its row lock (PostgreSQL) or the write lock (SQLite). When one bucket refuses,
    the other's unit is given back in the same transaction.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def take(self, team_pk: int, buckets: Sequence[Bucket], now: int) -> Refusal | None:
        return await self.db.run(self._take, buckets, now, write=True)

    def _take(self, conn: Connection, buckets: Sequence[Bucket], now: int) -> Refusal | None:
        params: dict[str, Any] = {"now": now}
        for i, b in enumerate(buckets):
            params.update(
                {
                    f"bucket{i}": b.name,
                    f"tat{i}": now + b.step,
                    f"step{i}": b.step,
                    f"span{i}": b.span,
                }
            )
        result = conn.execute(_UPSERTS[len(buckets)], params)
        waits: dict[str, int] = {bucket: wait for bucket, wait in result.all()}
        refusal = next((Refusal(b, waits[b.name]) for b in buckets if waits[b.name] > 0), None)
        if refusal is not None:
            for bucket in buckets:
                if waits[bucket.name] <= 0:
                    conn.execute(_REFUND, {"b_bucket": bucket.name, "b_step": bucket.step})
        return refusal


# KEYS: the buckets; ARGV: now, then step and span of each bucket (microseconds;
# exact in Lua's doubles). Returns {0, 0} when every bucket admitted the request (and
# took it), else {i, wait} for the first bucket i that refused it (nothing taken).
_REDIS_SCRIPT = """
local now = tonumber(ARGV[1])
local after = {}
for i = 1, #KEYS do
  local step = tonumber(ARGV[2 * i])
  local span = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat == nil or tat < now or tat > now + span + SLACK then tat = now end
  local wait = tat + step - now - span
  if wait > 0 then return {i, wait} end
  after[i] = tat + step
end
for i = 1, #KEYS do
  local ttl = math.ceil((after[i] - now) / 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.0f', after[i]), 'PX', ttl)
end
return {0, 0}
""".replace("SLACK", str(CLOCK_SLACK))


class RedisStore:
    """Buckets as Redis keys, updated by one Lua script per request (atomic).

    Keys are named ``scim-gateway:<installation>:{<team>}:<bucket>``: the installation
    id (kept in the database) keeps gateways that share one Redis apart, and the
    team in braces keeps a request's keys in one Redis Cluster slot. An unreachable
    Redis lets requests through (with a warning in the log) rather than stopping
    provisioning; it is asked again after a few seconds.
    """

    def __init__(self, settings: RateLimitSettings, db: Database, *, source: str) -> None:
        import redis

        password = None
        if settings.redis_password is not None:
            password = settings.redis_password.resolve(
                where=f"{source}: rate_limits.redis_password"
            )
        self.db = db
        self.client = redis.Redis.from_url(
            settings.redis_url,
            password=password,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
        )
        self._script = self.client.register_script(_REDIS_SCRIPT)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._prefix: str | None = None
        self._skip_until = 0.0
        self._warned_at = -math.inf

    async def take(self, team_pk: int, buckets: Sequence[Bucket], now: int) -> Refusal | None:
        if time.monotonic() < self._skip_until:
            return None
        return await anyio.to_thread.run_sync(self.take_now, team_pk, buckets, now)

    def take_now(self, team_pk: int, buckets: Sequence[Bucket], now: int) -> Refusal | None:
        if self._prefix is None:
            installation = shared_secret(
                self.db, "rate_limit_namespace", lambda: secrets.token_hex(8)
            )
            self._prefix = f"scim-gateway:{installation}:"
        keys = [f"{self._prefix}{{{team_pk}}}:{b.name}" for b in buckets]
        args: list[int] = [now]
        for bucket in buckets:
            args += [bucket.step, bucket.span]
        try:
            index, wait = self._script(keys=keys, args=args)
        except self._errors as exc:
            self._unavailable(exc)
            return None
        if int(index) == 0:
            return None
        return Refusal(buckets[int(index) - 1], int(wait))

    def _unavailable(self, exc: Exception) -> None:
        moment = time.monotonic()
        self._skip_until = moment + REDIS_RETRY_AFTER_FAILURE
        if moment - self._warned_at >= 60.0:
            self._warned_at = moment
            log.warning(
                "rate limits: Redis is unavailable (%s: %s); requests are let through "
                "without rate limiting until it answers again",
                type(exc).__name__,
                exc,
            )


class RateLimiter:
    """The limits of one gateway process; ``clock`` gives Unix time in microseconds."""

    def __init__(
        self,
        settings: RateLimitSettings,
        store: Store | None,
        *,
        clock: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._key_capacity = _capacity(settings.per_key, settings.burst)
        self._team_capacity = _capacity(settings.per_team, settings.burst)
        self._buckets: dict[tuple[str | None, int], list[Bucket]] = {}

    @classmethod
    def from_settings(cls, gateway: Gateway) -> RateLimiter:
        settings = gateway.settings.rate_limits
        store: Store | None
        if not (settings.per_key or settings.per_team):
            store = None
        elif settings.store == "memory" or (
            settings.store == "auto" and gateway.db.dialect == "sqlite"
        ):
            store = MemoryStore()
        elif settings.store == "redis":
            store = RedisStore(settings, gateway.db, source=gateway.settings.source)
        else:
            store = DatabaseStore(gateway.db)
        return cls(settings, store)

    def buckets(self, principal: Principal) -> list[Bucket]:
        """The caller's buckets (its key's, its team's), made once per key."""
        cache_key = (principal.key_id, principal.team_pk)
        found = self._buckets.get(cache_key)
        if found is None:
            if len(self._buckets) >= 10_000:
                self._buckets.clear()
            found = self._buckets[cache_key] = self._make_buckets(principal)
        return found

    def _make_buckets(self, principal: Principal) -> list[Bucket]:
        out = []
        if self.settings.per_key and principal.key_id is not None:
            out.append(
                Bucket(f"key:{principal.key_id}", "key", self.settings.per_key, self._key_capacity)
            )
        if self.settings.per_team:
            out.append(
                Bucket(
                    f"team:{principal.team_pk}",
                    "team",
                    self.settings.per_team,
                    self._team_capacity,
                )
            )
        return out

    async def check(self, principal: Principal) -> None:
        """Take this request from the caller's budgets; 429 when one is spent."""
        store = self.store
        if store is None:
            return
        buckets = self.buckets(principal)
        if not buckets:
            return
        if isinstance(store, MemoryStore):
            # This process's memory answers at once: no await, no coroutine of ``take``.
            refusal = store.take_now(buckets, self.clock())
        else:
            refusal = await store.take(principal.team_pk, buckets, self.clock())
        if refusal is not None:
            raise _too_many(refusal, principal)


def _capacity(rate: int, burst: float) -> int:
    return max(1, math.floor(rate * burst + 1e-9))


def _too_many(refusal: Refusal, principal: Principal) -> TooManyRequests:
    seconds = max(1, -(-refusal.wait // MICROSECONDS))
    bucket = refusal.bucket
    if bucket.scope == "key":
        who = "This key"
    else:
        who = f"The keys of team '{principal.team_slug}' together"
    unit = "second" if seconds == 1 else "seconds"
    return TooManyRequests(
        f"Too many requests. {who} may make {bucket.rate} requests per second "
        f"(up to {bucket.capacity} at once). Retry after {seconds} {unit}.",
        headers={"Retry-After": str(seconds)},
    )


_LIMITER_ATTRIBUTE = "_scim_rate_limiter"
"""The gateway's attribute that keeps its limiter (one attribute read per request)."""
_LIMITERS_LOCK = threading.Lock()


def limiter_for(gateway: Gateway) -> RateLimiter:
    """The gateway's rate limiter, made on first use from its settings."""
    limiter: RateLimiter | None = getattr(gateway, _LIMITER_ATTRIBUTE, None)
    if limiter is None:
        with _LIMITERS_LOCK:
            limiter = getattr(gateway, _LIMITER_ATTRIBUTE, None)
            if limiter is None:
                limiter = RateLimiter.from_settings(gateway)
                setattr(gateway, _LIMITER_ATTRIBUTE, limiter)
    return limiter


def enforce_rate_limits(gateway: Gateway, principal: Principal) -> Coroutine[Any, Any, None]:
    """429 (with Retry-After) when the caller's key or team is over its limit.

    To be awaited: it is the limiter's ``check``, so a request makes one coroutine.
    """
    return limiter_for(gateway).check(principal)
