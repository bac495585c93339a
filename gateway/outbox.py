"""The transactional outbox: provisioning events stored with their change, then delivered.

:func:`outbox_recorder` is one of the gateway's recorders: inside the write's
transaction it stores each event as a versioned document (docs/events.md) and one
pending delivery per webhook URL of the team. So an event exists if and only if
its change committed, and survives a restart.

:class:`DeliveryWorker` is an asyncio task in each gateway process. It claims due
deliveries with a lease (``lease_owner``/``lease_until``: PostgreSQL picks rows
with ``SELECT ... FOR UPDATE SKIP LOCKED``; both databases then take the lease
with a conditional ``UPDATE``), so that no two processes send a delivery at once;
it hands each to the webhook plugin (:mod:`plugins.webhooks`), which signs and
sends it, and records the outcome: delivered, retried later with exponential
backoff, or dead after ``[webhooks] max_attempts``.

Order per resource: a delivery is not due while an earlier delivery of the same
resource to the same URL is still pending (waiting, in flight or retrying).
Dead deliveries do not hold later ones back; ``scim-gateway events redeliver``
puts them back in line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, insert, or_, select, update

from plugins import ProvisioningEvent
from plugins.webhooks import Delivery, Outcome, WebhookSender

from . import __version__
from .audit import (
    Names,
    purge_audit,
    redact_changes,
    resource_display,
    team_and_names,
    team_pk_of,
)
from .config import ConfigError, Settings, WebhookSettings
from .ids import new_id
from .store.common import iso
from .store.db import Database
from .store.fast import Prepared
from .store.tables import OutboxEvent, Team, WebhookDelivery
from .teams import TeamError

__all__ = [
    "EVENT_VERSION",
    "STATES",
    "DeliveryInfo",
    "DeliveryWorker",
    "backoff",
    "event_document",
    "list_deliveries",
    "outbox_recorder",
    "purge_outbox",
    "redeliver",
]

log = logging.getLogger("scim_gateway.webhooks")

outbox = OutboxEvent.__table__  # type: ignore[attr-defined]
deliveries = WebhookDelivery.__table__  # type: ignore[attr-defined]
teams = Team.__table__  # type: ignore[attr-defined]

EVENT_VERSION = 1
STATES = ("pending", "delivered", "dead")
LEASE_MARGIN_SECONDS = 30.0
"""A lease outlives the longest attempt (``timeout_seconds``) by this much."""
IDLE_POLL_SECONDS = 60.0
"""How often a process with no webhook URL configured looks for stale deliveries."""
PURGE_INTERVAL_SECONDS = 3600.0
MIN_SECRET_LENGTH = 32
BATCH_SIZE = 20
STOP_TIMEOUT_SECONDS = 10.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def backoff(settings: WebhookSettings, attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt."""
    delay = settings.backoff_seconds * 2 ** max(0, attempts - 1)
    return float(min(delay, settings.max_backoff_seconds))


# --- recording -------------------------------------------------------------------------


def event_document(event_id: str, event: ProvisioningEvent, display: str | None) -> dict[str, Any]:
    """The event as receivers get it: version 1 of the format in docs/events.md."""
    return {
        "version": EVENT_VERSION,
        "id": event_id,
        "kind": event.kind,
        "team": event.team,
        "occurred_at": iso(event.occurred_at),
        "resource": {"type": event.resource_type, "id": event.resource_id, "display": display},
        "changes": redact_changes(event.changes),
        "actor": {"key_id": event.key_id, "key_name": event.key_name, "adapter": event.adapter},
        "request_id": event.request_id,
    }


_INSERT_EVENT = Prepared(insert(outbox).returning(outbox.c.pk))
_INSERT_DELIVERIES = Prepared(insert(deliveries))


def webhook_urls(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Each team's webhook URLs, by slug, from the config file."""
    return {t.slug: t.webhooks.urls for t in settings.teams if t.webhooks is not None}


def outbox_recorder(
    settings: Settings,
) -> Callable[[Connection, list[ProvisioningEvent]], None]:
    """The recorder that puts a write's events in the outbox, in its transaction."""
    targets = webhook_urls(settings)

    def record(conn: Connection, events: list[ProvisioningEvent]) -> None:
        now = utcnow()
        teams: dict[str, tuple[int, Names]] = {}
        for event in events:
            urls = targets.get(event.team)
            if not urls:
                continue
            team_pk, names = team_and_names(conn, event.team, events, teams)
            event_id = new_id()
            display = resource_display(conn, team_pk, event, names)
            document = event_document(event_id, event, display)
            body = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
            event_pk = _INSERT_EVENT.scalar(
                conn,
                {
                    "id": event_id,
                    "team_pk": team_pk,
                    "kind": event.kind,
                    "resource_type": event.resource_type,
                    "resource_id": event.resource_id,
                    "body": body,
                    "created": now,
                },
            )
            _INSERT_DELIVERIES.many(
                conn,
                [
                    {
                        "event_pk": event_pk,
                        "team_pk": team_pk,
                        "resource_key": f"{event.resource_type}:{event.resource_id}",
                        "url": url,
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                    }
                    for url in urls
                ],
            )

    return record


# --- claiming and finishing deliveries ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    pk: int
    event_id: str
    team: str
    url: str
    body: str
    attempt: int


def _due(now: datetime) -> Any:
    earlier = deliveries.alias("earlier")
    held_back = exists().where(
        earlier.c.team_pk == deliveries.c.team_pk,
        earlier.c.resource_key == deliveries.c.resource_key,
        earlier.c.url == deliveries.c.url,
        earlier.c.state == "pending",
        earlier.c.event_pk < deliveries.c.event_pk,
    )
    return and_(
        deliveries.c.state == "pending",
        deliveries.c.next_attempt_at <= now,
        or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
        ~held_back,
    )


def any_due(conn: Connection, now: datetime) -> bool:
    """A cheap read: is anything due? (Claiming is a write.)"""
    return conn.execute(select(deliveries.c.pk).where(_due(now)).limit(1)).first() is not None


def claim(
    conn: Connection, owner: str, *, now: datetime, lease_seconds: float, limit: int
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``owner``; at most one per resource and URL."""
    stmt = select(deliveries.c.pk).where(_due(now)).order_by(deliveries.c.event_pk).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=deliveries)
    until = now + timedelta(seconds=lease_seconds)
    taken = []
    for pk in conn.execute(stmt).scalars().all():
        result = conn.execute(
            update(deliveries)
            .where(
                deliveries.c.pk == pk,
                deliveries.c.state == "pending",
                or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
            )
            .values(lease_owner=owner, lease_until=until)
        )
        if result.rowcount == 1:
            taken.append(pk)
    if not taken:
        return []
    rows = conn.execute(
        select(
            deliveries.c.pk,
            deliveries.c.url,
            deliveries.c.attempts,
            outbox.c.id,
            outbox.c.body,
            teams.c.slug,
        )
        .join(outbox, outbox.c.pk == deliveries.c.event_pk)
        .join(teams, teams.c.pk == deliveries.c.team_pk)
        .where(deliveries.c.pk.in_(taken))
        .order_by(deliveries.c.event_pk)
    ).all()
    return [Claimed(r.pk, r.id, r.slug, r.url, r.body, r.attempts + 1) for r in rows]


def finish(
    conn: Connection,
    claimed: Claimed,
    owner: str,
    outcome: Outcome,
    settings: WebhookSettings,
    *,
    now: datetime,
) -> str | None:
    """Record an attempt's outcome; the new state, or ``None`` if the lease was lost."""
    row = conn.execute(
        select(deliveries.c.attempts).where(
            deliveries.c.pk == claimed.pk,
            deliveries.c.state == "pending",
            deliveries.c.lease_owner == owner,
        )
    ).first()
    if row is None:
        return None
    attempts = row.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "lease_owner": None,
        "lease_until": None,
        "last_status": outcome.status,
        "last_error": outcome.error,
        "last_attempt_at": now,
    }
    if outcome.ok:
        values.update(state="delivered", delivered_at=now, delivered_by=owner)
    elif attempts >= settings.max_attempts:
        values.update(state="dead")
    else:
        values.update(next_attempt_at=now + timedelta(seconds=backoff(settings, attempts)))
    conn.execute(
        update(deliveries)
        .where(deliveries.c.pk == claimed.pk, deliveries.c.lease_owner == owner)
        .values(**values)
    )
    state: str = values.get("state", "pending")
    return state


def release(conn: Connection, owner: str) -> int:
    """Give up ``owner``'s leases: another process may send those deliveries now."""
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.lease_owner == owner, deliveries.c.state == "pending")
        .values(lease_owner=None, lease_until=None)
    )
    return int(result.rowcount or 0)


# --- operator actions --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    event_id: str
    kind: str
    resource_type: str
    resource_id: str
    url: str
    state: str
    attempts: int
    created: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return iso(value) if value is not None else None

        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "resource": {"type": self.resource_type, "id": self.resource_id},
            "url": self.url,
            "state": self.state,
            "attempts": self.attempts,
            "created": when(self.created),
            "next_attempt_at": when(self.next_attempt_at),
            "last_attempt_at": when(self.last_attempt_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": when(self.delivered_at),
        }


def _team(conn: Connection, slug: str) -> int:
    try:
        return team_pk_of(conn, slug)
    except TeamError:
        raise TeamError(
            f"No team {slug!r}. Create it with: scim-gateway teams create {slug}", status=404
        ) from None


def list_deliveries(
    db: Database, slug: str, *, state: str | None = None, limit: int = 100
) -> list[DeliveryInfo]:
    """The team's deliveries, oldest event first, at most ``limit``."""
    if state is not None and state not in STATES:
        raise TeamError(f"Unknown state {state!r}; use one of: {', '.join(STATES)}.")

    def work(conn: Connection) -> list[DeliveryInfo]:
        where = [deliveries.c.team_pk == _team(conn, slug)]
        if state is not None:
            where.append(deliveries.c.state == state)
        rows = conn.execute(
            select(deliveries, outbox.c.id, outbox.c.kind, outbox.c.resource_type)
            .add_columns(outbox.c.resource_id, outbox.c.created)
            .join(outbox, outbox.c.pk == deliveries.c.event_pk)
            .where(*where)
            .order_by(deliveries.c.event_pk, deliveries.c.url)
            .limit(max(0, limit))
        ).all()
        return [
            DeliveryInfo(
                event_id=r.id,
                kind=r.kind,
                resource_type=r.resource_type,
                resource_id=r.resource_id,
                url=r.url,
                state=r.state,
                attempts=r.attempts,
                created=_aware(r.created) or r.created,
                next_attempt_at=_aware(r.next_attempt_at) if r.state == "pending" else None,
                last_attempt_at=_aware(r.last_attempt_at),
                last_status=r.last_status,
                last_error=r.last_error,
                delivered_at=_aware(r.delivered_at),
            )
            for r in rows
        ]

    return db.call(work)


def redeliver(db: Database, slug: str, *, event_id: str | None = None, dead: bool = False) -> int:
    """Queue deliveries again: one event's (delivered or dead), or all dead ones of the
    team. Returns how many deliveries were queued; each starts a fresh series of
    attempts, in order with its resource's other events."""
    if (event_id is None) == (not dead):
        raise TeamError("Name one event (--event ID) or all dead deliveries (--dead).")

    def work(conn: Connection) -> int:
        team_pk = _team(conn, slug)
        where = [deliveries.c.team_pk == team_pk]
        if event_id is not None:
            event_pk = conn.execute(
                select(outbox.c.pk).where(outbox.c.team_pk == team_pk, outbox.c.id == event_id)
            ).scalar()
            if event_pk is None:
                raise TeamError(
                    f"Team {slug!r} has no event {event_id!r} (events list {slug} shows them).",
                    status=404,
                )
            where += [deliveries.c.event_pk == event_pk, deliveries.c.state != "pending"]
        else:
            where.append(deliveries.c.state == "dead")
        result = conn.execute(
            update(deliveries)
            .where(*where)
            .values(
                state="pending",
                attempts=0,
                next_attempt_at=utcnow(),
                lease_owner=None,
                lease_until=None,
                delivered_at=None,
                delivered_by=None,
            )
        )
        return int(result.rowcount or 0)

    return db.call(work, write=True)


def purge_outbox(db: Database, retention_days: int, *, now: datetime | None = None) -> int:
    """Delete events older than the retention period with nothing left to deliver."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    pending = exists().where(deliveries.c.event_pk == outbox.c.pk, deliveries.c.state == "pending")
    old = select(outbox.c.pk).where(outbox.c.created < cutoff, ~pending)

    def work(conn: Connection) -> int:
        pks = list(conn.execute(old).scalars())
        for start in range(0, len(pks), 500):
            chunk = pks[start : start + 500]
            conn.execute(delete(deliveries).where(deliveries.c.event_pk.in_(chunk)))
            conn.execute(delete(outbox).where(outbox.c.pk.in_(chunk)))
        return len(pks)

    return db.call(work, write=True)


# --- the delivery worker -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    urls: frozenset[str]
    secret: str


class DeliveryWorker:
    """Delivers this gateway's outbox; one per process, started in the app's lifespan."""

    def __init__(
        self, settings: Settings, db: Database, *, sender: WebhookSender | None = None
    ) -> None:
        self.settings = settings
        self.webhooks = settings.webhooks
        self.db = db
        host = socket.gethostname()[:32]
        self.owner = f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.batch_size = BATCH_SIZE
        self._sender = sender
        self._targets: dict[str, _Target] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._sends: set[asyncio.Future[Outcome]] = set()
        self._last_purge = 0.0

    def resolve_targets(self) -> dict[str, _Target]:
        """Each team's URLs and resolved secret; a missing or short secret stops startup."""
        targets = {}
        for team in self.settings.teams:
            if team.webhooks is None:
                continue
            where = f"{self.settings.source}: teams.{team.slug}.webhooks.secret"
            secret = team.webhooks.secret.resolve(where=where)
            if len(secret) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"{where}: the secret is {len(secret)} characters; use at least "
                    f"{MIN_SECRET_LENGTH} (e.g. python3 -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))')."
                )
            targets[team.slug] = _Target(frozenset(team.webhooks.urls), secret)
        return targets

    @property
    def sender(self) -> WebhookSender:
        if self._sender is None:
            self._sender = WebhookSender(
                timeout=self.webhooks.timeout_seconds,
                user_agent=f"scim-gateway/{__version__}",
            )
        return self._sender

    async def start(self) -> None:
        self._targets = self.resolve_targets()
        self._last_purge = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._run(), name="scim-gateway webhook delivery")

    async def stop(self) -> None:
        """Stop at once: attempts in flight are abandoned and their leases released,
        so another process (or the next start) sends them again.

        Only the HTTP requests are cancelled: database work in progress (which may
        run on a worker thread) finishes first, so that no connection outlives the
        engine.
        """
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            for send in list(self._sends):
                send.cancel()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                log.warning("the webhook delivery loop did not stop in time; cancelling it")
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            released = await self.db.run(release, self.owner, write=True)
            if released:
                log.info("released %d webhook delivery lease(s) at shutdown", released)
        except Exception:
            log.exception("could not release webhook delivery leases at shutdown")
        if self._sender is not None:
            await self._sender.aclose()
            self._sender = None

    async def _run(self) -> None:
        interval = self.webhooks.poll_interval_seconds if self._targets else IDLE_POLL_SECONDS
        failures = 0
        while not self._stopping.is_set():
            try:
                await self._maybe_purge()
                sent = await self.run_once()
                failures = 0
            except Exception:
                failures += 1
                log.exception("webhook delivery loop failed; retrying")
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval * min(2**failures, 50)):
                        await self._stopping.wait()

    async def _maybe_purge(self) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_purge < PURGE_INTERVAL_SECONDS:
            return
        self._last_purge = loop_time
        await purge(self.db, self.settings)

    async def run_once(self) -> int:
        """Claim and attempt one batch of due deliveries; how many were attempted."""
        now = utcnow()
        if not await self.db.run(any_due, now):
            return 0
        lease = self.webhooks.timeout_seconds + LEASE_MARGIN_SECONDS
        claimed = await self.db.run(
            lambda conn: claim(
                conn, self.owner, now=utcnow(), lease_seconds=lease, limit=self.batch_size
            ),
            write=True,
        )
        if claimed and not self._stopping.is_set():
            await asyncio.gather(*(self._attempt(c) for c in claimed))
        return len(claimed)

    async def _attempt(self, claimed: Claimed) -> None:
        target = self._targets.get(claimed.team)
        if target is None or claimed.url not in target.urls:
            outcome = Outcome(
                False, error="the URL is no longer among the team's webhook URLs in the config"
            )
            settings = WebhookSettings(max_attempts=1)
        else:
            delivery = Delivery(
                url=claimed.url,
                body=claimed.body.encode("utf-8"),
                event_id=claimed.event_id,
                attempt=claimed.attempt,
                secret=target.secret,
            )
            send = asyncio.ensure_future(self.sender.send(delivery))
            self._sends.add(send)
            try:
                outcome = await send
            except asyncio.CancelledError:
                if not self._stopping.is_set():
                    raise
                return  # abandoned at shutdown: stop() releases the lease
            finally:
                self._sends.discard(send)
            settings = self.webhooks
        state = await self.db.run(
            lambda conn: finish(conn, claimed, self.owner, outcome, settings, now=utcnow()),
            write=True,
        )
        if state == "dead":
            log.warning(
                "webhook delivery of event %s to %s is dead after %d attempt(s): %s; "
                "redeliver with: scim-gateway events redeliver %s --event %s",
                claimed.event_id,
                claimed.url,
                claimed.attempt,
                outcome.error,
                claimed.team,
                claimed.event_id,
            )
        elif state == "pending":
            log.info(
                "webhook delivery of event %s to %s failed (attempt %d: %s); will retry",
                claimed.event_id,
                claimed.url,
                claimed.attempt,
                outcome.error,
            )


async def purge(db: Database, settings: Settings) -> None:
    """Delete expired audit records and finished outbox events."""
    audit = await db.run_sync(lambda: purge_audit(db, settings.audit.retention_days))
    events = await db.run_sync(lambda: purge_outbox(db, settings.webhooks.retention_days))
    if audit or events:
        log.info("purged %d audit record(s) and %d outbox event(s)", audit, events)
