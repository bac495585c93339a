"""Webhook delivery of provisioning events, to a real HTTP receiver on loopback.

Each committed change is stored in the outbox in its own transaction and delivered
to the team's webhook URLs: signed (checked here with the recipe of docs/events.md),
at least once, in order per resource, retried with exponential backoff, dead-lettered
after ``max_attempts`` and redelivered on request. Delivery state lives in the
database: it survives a restart, and two gateways on one database share the work
without sending an event twice. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from gateway import outbox
from gateway.app import Gateway, create_app
from gateway.cli import main
from gateway.config import (
    AdminSettings,
    ConfigError,
    SecretRef,
    Settings,
    TeamSettings,
    TeamWebhooks,
    WebhookSettings,
    load_settings,
)
from gateway.outbox import DeliveryInfo, claim, list_deliveries
from gateway.sso import validate_saml
from gateway.store.tables import AuditRecord, OutboxEvent, Team, WebhookDelivery
from gateway.teams import create_key, enable_scim, set_sso
from plugins.webhooks import Delivery, Outcome, WebhookSender, signature_header
from tests.conftest import GROUP_SCHEMA, PATCH_OP, SCIM, USER_SCHEMA
from tests.support import ENTITY_ID, SSO_URL, saml_certificate
from tests.webhook_receiver import Received, Receiver, listening

ROOT = Path(__file__).resolve().parent.parent
SECRET_VARIABLE = "SCIM_GATEWAY_TEST_WEBHOOK_SECRET"
OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]
DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
AUDIT = AuditRecord.__table__  # type: ignore[attr-defined]
TEAMS = Team.__table__  # type: ignore[attr-defined]
FAST = WebhookSettings(
    max_attempts=4,
    backoff_seconds=0.05,
    max_backoff_seconds=0.4,
    timeout_seconds=3.0,
    poll_interval_seconds=0.02,
)
EVENT_FIELDS = {
    "version",
    "id",
    "kind",
    "team",
    "occurred_at",
    "resource",
    "changes",
    "actor",
    "request_id",
}


def recipe() -> ModuleType:
    """docs/examples/verify_webhook.py, the verification recipe receivers copy."""
    path = ROOT / "docs" / "examples" / "verify_webhook.py"
    spec = importlib.util.spec_from_file_location("verify_webhook", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on loopback that records what it gets."""
    with listening() as receiver:
        yield receiver


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = secrets.token_urlsafe(32)
    monkeypatch.setenv(SECRET_VARIABLE, value)
    return value


@pytest.fixture
def slug() -> str:
    return "hooks-" + uuid.uuid4().hex[:12]


def configured(settings: Settings, slug: str, urls: list[str], **webhooks: Any) -> Settings:
    """``settings`` with team ``slug`` delivering to ``urls`` (fast retries for tests)."""
    team = TeamSettings(
        slug=slug,
        webhooks=TeamWebhooks(urls=tuple(urls), secret=SecretRef(env=SECRET_VARIABLE)),
    )
    return settings.replace(teams=(team,), webhooks=replace(FAST, **webhooks))


@dataclass
class Running:
    client: TestClient
    gateway: Gateway
    slug: str

    def send(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        return self.client.request(method, "/scim/v2" + path, json=body, headers=headers)

    def user(self, user_name: str, **attrs: Any) -> str:
        body = {"schemas": [USER_SCHEMA], "userName": user_name, **attrs}
        response = self.send("POST", "/Users", body)
        assert response.status_code == 201, response.text
        user_id: str = response.json()["id"]
        return user_id

    def patch(self, path: str, *ops: dict[str, Any]) -> Any:
        return self.send("PATCH", path, {"schemas": [PATCH_OP], "Operations": list(ops)})

    def deliveries(self, state: str | None = None) -> list[DeliveryInfo]:
        return list_deliveries(self.gateway.db, self.slug, state=state, limit=1000)

    def event_ids(self) -> list[str]:
        """The team's outbox events, in the order they were recorded."""
        seen: dict[str, None] = {}
        for info in self.deliveries():
            seen.setdefault(info.event_id)
        return list(seen)

    def wait_for_state(self, state: str, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.deliveries(state)) >= count:
                return
            time.sleep(0.02)
        raise AssertionError(f"not {count} {state}: {[d.to_dict() for d in self.deliveries()]}")


@contextlib.contextmanager
def running(
    settings: Settings, slug: str, token: str | None = None, *, raise_errors: bool = True
) -> Iterator[Running]:
    """A gateway app with its delivery worker; the first start gives the team SSO, SCIM
    and a key (the team itself comes from the config)."""
    app = create_app(settings)
    headers = {"Content-Type": SCIM}
    client = TestClient(
        app, base_url="http://testserver", headers=headers, raise_server_exceptions=raise_errors
    )
    with client as c:
        gateway: Gateway = app.state.gateway
        if token is None:
            set_sso(gateway.db, slug, validate_saml(ENTITY_ID, SSO_URL, saml_certificate()))
            enable_scim(gateway.db, slug)
            _info, token = create_key(gateway.db, gateway.hasher, slug, "okta-prod")
        c.headers["Authorization"] = f"Bearer {token}"
        yield Running(c, gateway, slug)


def token_of(run: Running) -> str:
    return str(run.client.headers["Authorization"]).removeprefix("Bearer ")


# --- the event document and its signature -------------------------------------------------


def test_a_delivery_is_signed_and_passes_the_documented_check(
    settings: Settings, receiver: Receiver, secret: str, slug: str
) -> None:
    verify = recipe().verify_webhook
    with running(configured(settings, slug, [receiver.url]), slug) as run:
        response = run.send(
            "POST",
            "/Users",
            {"schemas": [USER_SCHEMA], "userName": "alice@example.com"},
            **{"X-Request-Id": "req-hook-1"},
        )
        assert response.status_code == 201
        user_id = response.json()["id"]
        (event_id,) = run.event_ids()
        receiver.wait_for_ids({event_id})

    (request,) = receiver.snapshot()
    assert request.path == "/hooks/scim"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("scim-gateway/")
    assert (request.event_id, request.attempt) == (event_id, 1)
    assert verify(secret, request.body, request.signature)
    stamp = int(re.match(r"t=(\d+),", request.signature).group(1))  # type: ignore[union-attr]
    assert abs(stamp - time.time()) < 30
    # A changed body, another secret or a stale timestamp all fail the check.
    assert not verify(secret, request.body.replace(b"alice", b"mallory"), request.signature)
    assert not verify(secrets.token_urlsafe(32), request.body, request.signature)
    assert not verify(secret, request.body, request.signature, now=stamp + 301)
    assert verify(secret, request.body, request.signature, now=stamp + 299)

    event = request.event
    assert set(event) == EVENT_FIELDS
    assert event["version"] == 1
    assert event["id"] == event_id
    assert (event["kind"], event["team"]) == ("user.created", slug)
    assert event["request_id"] == "req-hook-1"
    assert event["resource"] == {"type": "User", "id": user_id, "display": "alice@example.com"}
    assert event["actor"]["key_name"] == "okta-prod"
    assert event["actor"]["adapter"] == "generic"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["occurred_at"])


def test_the_documented_check_refuses_malformed_signatures() -> None:
    verify = recipe().verify_webhook
    secret, body, now = "s" * 40, b'{"version":1}', 1_700_000_000
    good = signature_header(secret, now, body)
    digest = good.split("v1=", 1)[1]
    assert verify(secret, body, good, now=now)
    # Several v1 values (a secret being replaced): one matching is enough.
    assert verify(secret, body, f"t={now},v1={'0' * 64},v1={digest}", now=now)
    for header in ("", f"v1={digest}", f"t={now}", f"t=soon,v1={digest}", f"t={now},v0={digest}"):
        assert not verify(secret, body, header, now=now), header
    # The timestamp is signed: moving it into the window breaks the signature.
    assert not verify(secret, body, f"t={now + 1},v1={digest}", now=now)


def test_docs_describe_the_format_the_gateway_sends() -> None:
    """docs/events.md shows an example document with exactly the fields sent, and the
    recipe it tells receivers to copy is the one tested here."""
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    example = json.loads(blocks[0])
    assert set(example) == EVENT_FIELDS
    assert example["version"] == outbox.EVENT_VERSION
    assert set(example["resource"]) == {"type", "id", "display"}
    assert set(example["actor"]) == {"key_id", "key_name", "adapter"}
    recipe_source = (ROOT / "docs" / "examples" / "verify_webhook.py").read_text()
    (python,) = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert python.strip() in recipe_source
    for header in ("Scim-Gateway-Signature", "Scim-Gateway-Event-Id", "Scim-Gateway-Delivery"):
        assert header in text


# --- retries, dead letters, redelivery -------------------------------------------------------


def test_a_failing_receiver_gets_retries_with_growing_waits_until_it_answers(
    settings: Settings, receiver: Receiver, secret: str, slug: str
) -> None:
    receiver.fail_next(2, status=503)
    with running(configured(settings, slug, [receiver.url], backoff_seconds=0.1), slug) as run:
        run.user("alice@example.com")
        (event_id,) = run.event_ids()
        receiver.wait_for_ids({event_id})
        run.wait_for_state("delivered", 1)
        (info,) = run.deliveries()

    first, second, third = receiver.snapshot()
    assert [r.event_id for r in (first, second, third)] == [event_id] * 3
    assert [(r.attempt, r.status) for r in (first, second, third)] == [(1, 503), (2, 503), (3, 200)]
    assert first.body == second.body == third.body  # the same document on every attempt
    assert second.at - first.at >= 0.1 * 0.9
    assert third.at - second.at >= 0.2 * 0.9  # doubled
    assert (info.state, info.attempts, info.last_status) == ("delivered", 3, 200)


def test_after_max_attempts_a_delivery_is_dead_until_redelivered_with_the_cli(
    settings: Settings,
    receiver: Receiver,
    secret: str,
    slug: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
) -> None:
    monkeypatch.setenv("SCIM_GATEWAY_DATABASE_URL", database_url)
    receiver.rule = lambda request: 500
    with running(configured(settings, slug, [receiver.url], max_attempts=3), slug) as run:
        run.user("alice@example.com")
        (event_id,) = run.event_ids()
        run.wait_for_state("dead", 1)
        time.sleep(0.3)  # 6 backoffs' worth: no further attempt comes
        attempts = [(r.attempt, r.status) for r in receiver.snapshot()]
        assert attempts == [(1, 500), (2, 500), (3, 500)]

        assert main(["events", "list", slug, "--state", "dead", "--json"]) == 0
        (dead,) = json.loads(capsys.readouterr().out)
        assert (dead["event_id"], dead["state"], dead["attempts"]) == (event_id, "dead", 3)
        assert (dead["url"], dead["last_status"]) == (receiver.url, 500)
        assert main(["events", "list", slug, "--state", "dead"]) == 0
        assert event_id in capsys.readouterr().out

        receiver.rule = None
        assert main(["events", "redeliver", slug, "--dead"]) == 0
        assert "Queued 1 delivery" in capsys.readouterr().out
        receiver.wait_for_ids({event_id})
        run.wait_for_state("delivered", 1)
        last = receiver.snapshot()[-1]
        assert (last.event_id, last.attempt, last.status) == (event_id, 1, 200)
        assert verify_signature(last)

        # One event, by id, even once delivered; an unknown id is refused.
        assert main(["events", "redeliver", slug, "--event", event_id]) == 0
        receiver.wait_until(lambda: len(receiver.delivered()) == 2, what="second delivery")
        assert main(["events", "redeliver", slug, "--event", str(uuid.uuid4())]) == 1
        assert "has no event" in capsys.readouterr().err
        with pytest.raises(SystemExit):  # --event or --dead is required
            main(["events", "redeliver", slug])
        assert "one of the arguments --event --dead is required" in capsys.readouterr().err


def verify_signature(request: Received) -> bool:
    ok: bool = recipe().verify_webhook(os.environ[SECRET_VARIABLE], request.body, request.signature)
    return ok


def test_the_admin_api_redelivers_dead_deliveries_and_single_events(
    settings: Settings, receiver: Receiver, secret: str, slug: str
) -> None:
    op_token = "scimgw_admin_" + secrets.token_urlsafe(32)
    digest = hashlib.sha256(op_token.encode()).hexdigest()
    settings = configured(settings, slug, [receiver.url], max_attempts=1)
    settings = settings.replace(admin=AdminSettings(token_sha256=digest))
    receiver.rule = lambda request: 500
    with running(settings, slug) as run:
        run.user("alice@example.com")
        (event_id,) = run.event_ids()
        run.wait_for_state("dead", 1)
        receiver.rule = None
        admin = {"Authorization": f"Bearer {op_token}", "Content-Type": "application/json"}
        url = f"/admin/v1/teams/{slug}/events/redeliver"

        for body in ({}, {"dead": False}, {"dead": True, "event_id": event_id}):
            response = run.client.post(url, json=body, headers=admin)
            assert response.status_code == 422, body
        unknown = run.client.post(url, json={"event_id": "nope"}, headers=admin)
        assert unknown.status_code == 404
        nobody = run.client.post(url, json={"dead": True}, headers={"Authorization": ""})
        assert nobody.status_code == 401

        response = run.client.post(url, json={"dead": True}, headers=admin)
        assert response.status_code == 200, response.text
        assert response.json() == {"team": slug, "redelivered": 1}
        receiver.wait_for_ids({event_id})
        run.wait_for_state("delivered", 1)
        response = run.client.post(url, json={"event_id": event_id}, headers=admin)
        assert response.json()["redelivered"] == 1
        receiver.wait_until(lambda: len(receiver.delivered()) == 2, what="second delivery")


# --- order ------------------------------------------------------------------------------------


def test_a_resources_events_arrive_in_order_while_earlier_ones_are_retried(
    settings: Settings, receiver: Receiver, secret: str, slug: str
) -> None:
    """Every event fails its first attempt; still, no event of a resource is sent
    while an earlier event of that resource is waiting for its retry."""
    receiver.rule = lambda request: 503 if request.attempt == 1 else None
    with running(configured(settings, slug, [receiver.url]), slug) as run:
        alice = run.user("alice@example.com")
        for name in ("Alice", "Alice L.", "Alice Liddell"):
            op = {"op": "replace", "path": "displayName", "value": name}
            assert run.patch(f"/Users/{alice}", op).status_code == 200
        bob = run.user("bob@example.com")
        off = {"op": "replace", "path": "active", "value": False}
        assert run.patch(f"/Users/{bob}", off).status_code == 200
        ids = run.event_ids()
        assert len(ids) == 6
        receiver.wait_for_ids(set(ids))

    order = {event_id: n for n, event_id in enumerate(ids)}
    requests = receiver.snapshot()
    for resource in (alice, bob):
        mine = [r for r in requests if r.event["resource"]["id"] == resource]
        delivered: set[str] = set()
        for request in mine:
            earlier = {e for e in ids if order[e] < order[request.event_id]}
            earlier &= {r.event_id for r in mine}
            assert earlier <= delivered, f"{request.event_id} sent before an earlier event"
            if request.ok:
                delivered.add(request.event_id)
        delivered_order = [r.event_id for r in mine if r.ok]
        assert delivered_order == sorted(delivered_order, key=order.__getitem__)
    kinds = [r.event["kind"] for r in requests if r.ok and r.event["resource"]["id"] == alice]
    assert kinds == ["user.created", "user.updated", "user.updated", "user.updated"]
    names = [
        r.event["changes"]
        for r in requests
        if r.ok and r.event["resource"]["id"] == alice and r.event["kind"] == "user.updated"
    ]
    assert names == [{"attributes": ["displayName"]}] * 3


# --- what is delivered is what committed ----------------------------------------------------


def test_a_write_that_fails_delivers_nothing(
    settings: Settings, receiver: Receiver, secret: str, slug: str
) -> None:
    with running(configured(settings, slug, [receiver.url]), slug) as run:
        alice = run.user("alice@example.com", displayName="Alice")
        receiver.wait_until(lambda: len(receiver.delivered()) == 1, what="user.created")
        first = {"op": "replace", "path": "displayName", "value": "Alicia"}
        second = {"op": "remove", "path": "userName"}  # required: the PATCH fails
        assert run.patch(f"/Users/{alice}", first, second).status_code == 400
        duplicate = {"schemas": [USER_SCHEMA], "userName": "ALICE@example.com"}
        assert run.send("POST", "/Users", duplicate).status_code == 409
        time.sleep(0.3)
        assert len(run.event_ids()) == 1
    assert [r.event["kind"] for r in receiver.snapshot()] == ["user.created"]


def test_an_outbox_that_cannot_be_written_rolls_the_change_back(
    settings: Settings,
    receiver: Receiver,
    secret: str,
    slug: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("the outbox is full")

    with running(configured(settings, slug, [receiver.url]), slug, raise_errors=False) as run:
        monkeypatch.setattr(outbox, "event_document", broken)
        body = {"schemas": [USER_SCHEMA], "userName": "alice@example.com"}
        assert run.send("POST", "/Users", body).status_code == 500
        monkeypatch.undo()
        listed = run.send("GET", '/Users?filter=userName eq "alice@example.com"')
        assert listed.json()["totalResults"] == 0
        with run.gateway.db.engine.connect() as conn:
            audited = conn.execute(
                select(func.count())
                .select_from(AUDIT.join(TEAMS, TEAMS.c.pk == AUDIT.c.team_pk))
                .where(TEAMS.c.slug == slug)
            ).scalar_one()
        assert audited == 0
        assert run.event_ids() == []


def test_a_team_without_webhooks_stores_no_events(
    settings: Settings, receiver: Receiver, secret: str, slug: str
) -> None:
    other = "plain-" + uuid.uuid4().hex[:12]
    settings = configured(settings, slug, [receiver.url])
    settings = settings.replace(teams=(*settings.teams, TeamSettings(slug=other)))
    with running(settings, other) as run:
        run.user("alice@example.com")
        with run.gateway.db.engine.connect() as conn:
            stored = conn.execute(
                select(OUTBOX.c.kind, TEAMS.c.slug).join(TEAMS, TEAMS.c.pk == OUTBOX.c.team_pk)
            ).all()
        audited = run.client.app.state.gateway  # the audit log still records the change
        with audited.db.engine.connect() as conn:
            records = (
                conn.execute(
                    select(AUDIT.c.action)
                    .join(TEAMS, TEAMS.c.pk == AUDIT.c.team_pk)
                    .where(TEAMS.c.slug == other)
                )
                .scalars()
                .all()
            )
    assert [kind for kind, team in stored if team == other] == []
    assert records == ["created user alice@example.com"]


# --- restarts and several gateways --------------------------------------------------------------


def test_a_restart_while_the_receiver_is_failing_loses_nothing(
    settings: Settings, receiver: Receiver, secret: str, slug: str
) -> None:
    settings = configured(settings, slug, [receiver.url], max_attempts=50)
    receiver.down()
    with running(settings, slug) as run:
        token = token_of(run)
        users = [run.user(f"user{n}@example.com") for n in range(4)]
        group = {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Admins",
            "members": [{"value": u} for u in users[:2]],
        }
        assert run.send("POST", "/Groups", group).status_code == 201
        ids = set(run.event_ids())
        assert len(ids) == 7  # 4 users, the group, 2 members
        # Each resource's first delivery has failed (connection refused); the group's
        # member events wait behind its group.created.
        deadline = time.monotonic() + 10
        while sum(1 for d in run.deliveries() if d.attempts) < 5:
            assert time.monotonic() < deadline, [d.to_dict() for d in run.deliveries()]
            time.sleep(0.02)
        # Then the receiver comes back, but answers slowly: the gateway stops while
        # a delivery is in flight.
        receiver.delay = 3.0
        receiver.up()
        receiver.wait_until(lambda: len(receiver.snapshot()) >= 1, what="a request in flight")
    interrupted = receiver.snapshot()[0].event_id
    assert {d.state for d in run.deliveries()} == {"pending"}
    run.gateway.db.dispose()

    receiver.delay = 0.0
    with running(settings, slug, token) as again:
        receiver.wait_for_ids(ids)
        again.wait_for_state("delivered", len(ids))
    received = receiver.delivered()
    # At least once: the interrupted delivery came twice, with the same event id (and
    # body), so the receiver can drop the duplicate.
    assert {r.event_id for r in received} == ids
    copies = [r for r in receiver.snapshot() if r.event_id == interrupted]
    assert len(copies) >= 2
    assert len({r.body for r in copies}) == 1


def test_two_gateways_on_one_database_send_each_event_once(
    settings: Settings, receiver: Receiver, secret: str, slug: str
) -> None:
    settings = configured(settings, slug, [receiver.url])
    receiver.delay = 0.1  # deliveries stay in flight while the other gateway polls
    with running(settings, slug) as first:
        assert first.gateway.delivery is not None
        first.gateway.delivery.batch_size = 1
        with running(settings, slug, token_of(first)) as second:
            assert second.gateway.delivery is not None
            second.gateway.delivery.batch_size = 1
            for n in range(12):
                (first if n % 2 else second).user(f"user{n}@example.com")
            ids = set(first.event_ids())
            assert len(ids) == 12
            receiver.wait_for_ids(ids, timeout=20)
            first.wait_for_state("delivered", 12)
            with first.gateway.db.engine.connect() as conn:
                owners = set(
                    conn.execute(
                        select(DELIVERIES.c.delivered_by)
                        .join(TEAMS, TEAMS.c.pk == DELIVERIES.c.team_pk)
                        .where(TEAMS.c.slug == slug)
                    ).scalars()
                )
            time.sleep(0.3)
    requests = receiver.snapshot()
    assert sorted(r.event_id for r in requests) == sorted(ids)  # each exactly once
    assert receiver.overlaps == []
    assert owners == {first.gateway.delivery.owner, second.gateway.delivery.owner}


def test_a_leased_delivery_cannot_be_claimed_by_another_gateway(
    settings: Settings, receiver: Receiver, secret: str, slug: str
) -> None:
    """Claiming, step by step: a lease keeps a delivery (and the later events of its
    resource) from every other gateway until it expires."""
    receiver.down()  # nothing is delivered by the app's own worker meanwhile
    settings = configured(
        settings,
        slug,
        [receiver.url],
        max_attempts=50,
        backoff_seconds=30,
        max_backoff_seconds=30,
    )
    with running(settings, slug) as run:
        assert run.gateway.delivery is not None
        alice = run.user("alice@example.com")
        rename = {"op": "replace", "path": "displayName", "value": "A"}
        assert run.patch(f"/Users/{alice}", rename).status_code == 200
        run.user("bob@example.com")
        deadline = time.monotonic() + 10
        while sum(1 for d in run.deliveries() if d.attempts) < 2:  # the app's worker failed
            assert time.monotonic() < deadline  # alice's and bob's user.created once
            time.sleep(0.02)
    # The gateway is stopped; its deliveries wait for their retry 30 s later.
    db = run.gateway.db
    db.engine.dispose()
    later = outbox.utcnow() + timedelta(seconds=60)

    def claim_as(owner: str, now: Any) -> list[str]:
        claimed = db.call(
            lambda conn: claim(conn, owner, now=now, lease_seconds=10, limit=10), write=True
        )
        return [c.event_id for c in claimed]

    a_created, _a_updated, b_created = run.event_ids()
    assert claim_as("gateway-a", outbox.utcnow()) == []  # not due yet
    assert claim_as("gateway-a", later) == [a_created, b_created]  # alice's update waits
    assert claim_as("gateway-b", later) == []  # leased, and alice's update still waits
    assert claim_as("gateway-b", later + timedelta(seconds=11)) == [a_created, b_created]
    db.dispose()


def test_a_missing_or_short_webhook_secret_stops_startup(
    settings: Settings, receiver: Receiver, slug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)
    app = create_app(configured(settings, slug, [receiver.url]))
    with pytest.raises(ConfigError, match=f"{SECRET_VARIABLE} is not set"), TestClient(app):
        pass
    monkeypatch.setenv(SECRET_VARIABLE, "short")
    app = create_app(configured(settings, slug, [receiver.url]))
    with pytest.raises(ConfigError, match="at least 32"), TestClient(app):
        pass


def test_a_slow_receiver_is_cut_off_at_the_timeout(receiver: Receiver) -> None:
    receiver.delay = 1.0

    async def attempt() -> Outcome:
        sender = WebhookSender(timeout=0.2)
        try:
            return await sender.send(Delivery(receiver.url, b"{}", "e1", 1, "s" * 32))
        finally:
            await sender.aclose()

    started = time.monotonic()
    outcome = asyncio.run(attempt())
    elapsed = time.monotonic() - started
    assert not outcome.ok
    assert outcome.error is not None and "0.2" in outcome.error
    assert elapsed < 0.9


def test_finished_events_are_purged_after_the_retention_period(
    settings: Settings, receiver: Receiver, secret: str, slug: str
) -> None:
    with running(configured(settings, slug, [receiver.url], max_attempts=50), slug) as run:
        receiver.rule = lambda request: 500 if "bob" in request.body.decode() else None
        run.user("alice@example.com")
        run.user("bob@example.com")
        alice_event, bob_event = run.event_ids()
        run.wait_for_state("delivered", 1)
        db = run.gateway.db

        assert outbox.purge_outbox(db, 30) == 0  # too recent
        purged = outbox.purge_outbox(db, 30, now=outbox.utcnow() + timedelta(days=31))
        assert purged >= 1
        # Bob's event is still being retried: it stays, whatever its age.
        assert run.event_ids() == [bob_event]
        assert alice_event not in run.event_ids()


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('urls = ["https://a.example/h"]', "teams.acme.webhooks.secret: missing"),
        (
            'urls = ["https://a.example/h"]\nsecret = "literal"',
            "secrets are never written in the config file",
        ),
        ('urls = []\nsecret = { env = "S" }', "expected a non-empty list of URLs"),
        ('urls = ["ftp://a.example/h"]\nsecret = { env = "S" }', "not an http:// or https://"),
        ('urls = ["https:///h"]\nsecret = { env = "S" }', "URL with a host"),
        ('url = ["https://a.example/h"]\nsecret = { env = "S" }', "webhooks.url: unknown key"),
    ],
    ids=["no-secret", "literal-secret", "no-urls", "scheme", "no-host", "unknown-key"],
)
def test_a_wrong_team_webhook_table_names_the_key_and_the_fix(
    tmp_path: Path, table: str, message: str
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(f"[teams.acme.webhooks]\n{table}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(path)


def test_webhook_settings_are_read_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        "[webhooks]\nmax_attempts = 3\nbackoff_seconds = 1\ntimeout_seconds = 2.5\n"
        "[audit]\nretention_days = 90\n"
        "[teams.acme.webhooks]\n"
        'urls = ["https://a.example/h", "https://b.example/h", "https://a.example/h"]\n'
        'secret = { env = "ACME_WEBHOOK_SECRET" }\n',
        encoding="utf-8",
    )
    settings = load_settings(path)
    assert (settings.webhooks.max_attempts, settings.webhooks.backoff_seconds) == (3, 1.0)
    assert settings.webhooks.timeout_seconds == 2.5
    assert settings.audit.retention_days == 90
    (team,) = settings.teams
    assert team.webhooks == TeamWebhooks(
        urls=("https://a.example/h", "https://b.example/h"),
        secret=SecretRef(env="ACME_WEBHOOK_SECRET"),
    )
    for bad, message in (("-1.0", "must not be negative"), ('"fast"', "expected a number")):
        path.write_text(f"[webhooks]\nbackoff_seconds = {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            load_settings(path)


def test_backoff_doubles_up_to_its_cap() -> None:
    settings = WebhookSettings(backoff_seconds=5, max_backoff_seconds=60)
    assert [outbox.backoff(settings, n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
