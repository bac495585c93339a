"""Operations: X-Request-Id, the access log, secrets kept out of logs, /metrics,
/healthz and /readyz.

An operator reads one log line per request (request id, team, key id, adapter,
route, path, status, duration), never a key, even one pasted into a URL; scrapes
request, latency, provisioning and authentication counts from /metrics; and asks
/readyz whether the database is there and has its schema.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, text
from sqlalchemy import inspect as sa_inspect
from starlette.testclient import TestClient

from gateway import observability
from gateway.app import Gateway, create_app
from gateway.config import ConfigError, DatabaseSettings, MetricsSettings, Settings, load_settings
from gateway.keys import parse_key
from gateway.logging_setup import REDACTED, JsonFormatter, RequestContextFilter, ScrubFilter
from gateway.store.tables import metadata
from plugins import ProvisioningEvent, hookimpl
from tests.conftest import PATCH_OP, SCIM, USER_SCHEMA
from tests.support import provision

ACCESS = "scim_gateway.access"


@dataclass
class Served:
    client: TestClient
    gateway: Gateway
    slug: str
    token: str

    def scim(self, method: str, path: str, **kw: Any) -> Any:
        return self.client.request(method, "/scim/v2" + path, **kw)

    def new_user(self, user_name: str) -> str:
        body = {"schemas": [USER_SCHEMA], "userName": user_name}
        response = self.scim("POST", "/Users", json=body)
        assert response.status_code == 201, response.text
        user_id: str = response.json()["id"]
        return user_id


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", headers={"Content-Type": SCIM}) as client:
        gateway: Gateway = app.state.gateway
        slug = "obs-" + uuid.uuid4().hex[:12]
        token = provision(gateway, slug)
        client.headers["Authorization"] = f"Bearer {token}"
        yield Served(client, gateway, slug, token)


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the `serve` handler writes: every record, scrubbed, one JSON object a line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    handler.addFilter(ScrubFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS]


def metric(text_: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text_):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def scrape(client: TestClient) -> str:
    response = client.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


# --- the access log and X-Request-Id --------------------------------------------------


def test_each_request_is_logged_once_with_who_what_and_how_long(
    served: Served, caplog: pytest.LogCaptureFixture, json_lines: io.StringIO
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    user_id = served.new_user("bjensen")
    caplog.clear()
    response = served.scim("GET", f"/Users/{user_id}")
    assert response.status_code == 200

    [record] = access_records(caplog)
    fields = {
        name: getattr(record, name)
        for name in ("request_id", "team", "key_id", "adapter", "method", "route", "path")
    }
    assert fields == {
        "request_id": response.headers["x-request-id"],
        "team": served.slug,
        "key_id": parse_key(served.token),
        "adapter": "generic",
        "method": "GET",
        "route": "/scim/v2/Users/{id}",
        "path": f"/scim/v2/Users/{user_id}",
    }
    assert record.status == 200  # type: ignore[attr-defined]
    assert 0 < record.duration_ms < 5000  # type: ignore[attr-defined]
    assert record.levelno == logging.INFO

    # What `serve` writes: the same line as JSON, with a timestamp and a level.
    [line] = [e for e in parsed(json_lines) if e["logger"] == ACCESS and e["method"] == "GET"]
    assert {k: line[k] for k in fields} == fields
    assert line["status"] == 200 and line["level"] == "INFO"
    assert datetime.fromisoformat(line["timestamp"]) > datetime.now(UTC) - timedelta(minutes=1)


def test_unauthenticated_requests_are_logged_without_a_team(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    response = served.scim("GET", "/Users", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    [record] = access_records(caplog)
    assert record.status == 401  # type: ignore[attr-defined]
    assert record.team is None  # type: ignore[attr-defined]
    assert record.route == "/scim/v2/Users"  # type: ignore[attr-defined]


@dataclass(eq=False)
class EventLog:
    events: list[ProvisioningEvent]

    @hookimpl
    def scim_gateway_provisioning_event(self, event: ProvisioningEvent) -> None:
        self.events.append(event)


def test_x_request_id_is_echoed_or_generated_and_matches_the_events(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS)
    seen = EventLog([])
    served.gateway.plugins.pm.register(seen)
    body = {"schemas": [USER_SCHEMA], "userName": "given"}

    given = served.scim("POST", "/Users", json=body, headers={"X-Request-Id": "req-42"})
    assert given.status_code == 201
    assert given.headers["x-request-id"] == "req-42"

    generated = served.scim("POST", "/Users", json={**body, "userName": "generated"})
    rid = generated.headers["x-request-id"]
    assert len(rid) == 32 and int(rid, 16) >= 0

    # A value that is not a sane id (too long) is replaced, not echoed.
    replaced = served.scim("GET", "/Users", headers={"X-Request-Id": "x" * 500})
    assert replaced.headers["x-request-id"] != "x" * 500
    assert len(replaced.headers["x-request-id"]) == 32

    # The provisioning events and the log lines carry the id the caller was given.
    assert [e.request_id for e in seen.events] == ["req-42", rid]
    logged = [r.request_id for r in access_records(caplog)]  # type: ignore[attr-defined]
    assert logged == ["req-42", rid, replaced.headers["x-request-id"]]

    # Answers that are not SCIM resources carry one too.
    for path in ("/healthz", "/metrics", "/nowhere"):
        assert served.client.get(path).headers["x-request-id"]


def test_no_key_reaches_any_log_line_even_from_a_url(
    served: Served, caplog: pytest.LogCaptureFixture, json_lines: io.StringIO
) -> None:
    caplog.set_level(logging.DEBUG)
    token = served.token
    secret = token[-43:]
    # The key in the path, in a filter, in a wrong header, and in application messages.
    assert served.scim("GET", f"/Users/{token}").status_code == 404
    assert served.scim("GET", "/Users", params={"filter": f'userName eq "{token}"'}).is_success
    assert served.scim("GET", f"/{token}/Users").status_code == 404
    assert served.scim("GET", "/Users", headers={"Authorization": f"Token {token}"}).status_code
    app_log = logging.getLogger("scim_gateway.test")
    app_log.warning("a client sent %s", token)
    app_log.warning("headers: Authorization: Bearer opaque-admin-token-value")
    sensitive = {"client_secret": "s3cr3t-value", "sso": {"password": "pa55-value", "id": 7}}
    app_log.info("extra fields", extra={**sensitive, "detail": token})
    try:
        raise ValueError(f"bad key {token}")
    except ValueError:
        app_log.exception("failed")

    out = json_lines.getvalue()
    assert token not in out and secret not in out
    for value in ("opaque-admin-token-value", "s3cr3t-value", "pa55-value"):
        assert value not in out
    entries = parsed(json_lines)
    [extra] = [e for e in entries if e["message"] == "extra fields"]
    assert extra["client_secret"] == REDACTED
    assert extra["sso"] == {"password": REDACTED, "id": 7}
    # The key id stays, so an operator can tell which key it was.
    key_id = parse_key(token)
    assert key_id is not None
    assert f"scimgw_{key_id}_{REDACTED}" in out
    access = [e for e in entries if e["logger"] == ACCESS]
    assert f"/scim/v2/Users/scimgw_{key_id}_{REDACTED}" in [e["path"] for e in access]
    # The access log writes no key even where no scrubbing handler is installed.
    for record in access_records(caplog):
        assert secret not in record.getMessage() and secret not in str(vars(record))


def test_a_server_error_is_logged_with_its_request_and_answers_with_its_id(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, json_lines: io.StringIO
) -> None:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        gateway: Gateway = app.state.gateway
        slug = "obs-" + uuid.uuid4().hex[:12]
        token = provision(gateway, slug)

        def broken(principal: Any) -> Any:
            raise RuntimeError(f"adapter lookup exploded near {token}")

        monkeypatch.setattr(gateway, "adapter_for", broken)
        response = client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 500
    rid = response.headers["x-request-id"]
    mine = [e for e in parsed(json_lines) if e.get("request_id") == rid]
    access = [e for e in mine if e["logger"] == ACCESS]
    errors = [e for e in mine if e["logger"] == "scim_gateway" and "exception" in e]
    assert [(e["status"], e["level"], e["team"]) for e in access] == [(500, "ERROR", slug)]
    assert len(errors) == 1 and errors[0]["team"] == slug
    assert "RuntimeError: adapter lookup exploded" in errors[0]["exception"]
    assert token not in json_lines.getvalue()


def test_text_format_names_the_request(served: Served) -> None:
    from gateway.logging_setup import configure

    stream = io.StringIO()
    root = logging.getLogger()
    before = root.handlers[:], root.level
    try:
        configure("info", "text", stream=stream)
        response = served.scim("GET", "/Users")
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in before[0]:
            root.addHandler(handler)
        root.setLevel(before[1])
    [line] = [ln for ln in stream.getvalue().splitlines() if ACCESS in ln]
    assert f"[{response.headers['x-request-id']}] GET /scim/v2/Users 200" in line
    assert f"team={served.slug}" in line and "path=/scim/v2/Users" in line
    assert "route=" not in line  # said once, in the message


# --- /metrics -------------------------------------------------------------------------


def test_metrics_count_requests_by_route_template_team_and_adapter(served: Served) -> None:
    ids = [served.new_user(f"user{i}@example.com") for i in range(3)]
    for user_id in ids:
        assert served.scim("GET", f"/Users/{user_id}").status_code == 200
    assert served.scim("GET", f"/Users/{uuid.uuid4()}").status_code == 404

    out = scrape(served.client)
    labels = {"endpoint": "/scim/v2/Users/{id}", "method": "GET", "team": served.slug}
    requests = "scim_gateway_requests_total"
    assert metric(out, requests, **labels, status="200", adapter="generic") == 3
    assert metric(out, requests, **labels, status="404") == 1
    assert metric(out, requests, endpoint="/scim/v2/Users", method="POST", team=served.slug) == 3
    # Never a raw path, an id or a user name: the label values are route templates.
    for user_id in ids:
        assert user_id not in out
    assert "example.com" not in out

    # The latency histogram: buckets from 1 ms to 5 s, counting every request.
    hist = "scim_gateway_request_duration_seconds"
    buckets = [
        s.labels["le"]
        for f in text_string_to_metric_families(out)
        for s in f.samples
        if s.name == f"{hist}_bucket"
        and (s.labels["endpoint"], s.labels["method"]) == ("/scim/v2/Users/{id}", "GET")
    ]
    expected = [str(b) for b in observability.LATENCY_BUCKETS] + ["+Inf"]
    assert buckets == expected
    count = metric(out, f"{hist}_count", endpoint="/scim/v2/Users/{id}", method="GET")
    assert count >= 4
    inf = metric(out, f"{hist}_bucket", endpoint="/scim/v2/Users/{id}", method="GET", le="+Inf")
    assert inf == count


def test_unmatched_paths_share_one_label(served: Served) -> None:
    before = scrape(served.client)
    path = f"/no-such-thing-{uuid.uuid4().hex}"
    assert served.client.get(path).status_code == 404
    out = scrape(served.client)
    assert path not in out
    unmatched = {"endpoint": observability.UNMATCHED, "status": "404"}
    requests = "scim_gateway_requests_total"
    assert metric(out, requests, **unmatched) == metric(before, requests, **unmatched) + 1


def test_a_bad_key_counts_as_an_authentication_failure(served: Served) -> None:
    name = "scim_gateway_auth_failures_total"
    before = metric(scrape(served.client), name, api="scim")
    assert served.scim("GET", "/Users").status_code == 200
    assert served.client.get("/scim/v2/ServiceProviderConfig").status_code == 200
    assert metric(scrape(served.client), name, api="scim") == before

    wrong = served.token[:-1] + ("A" if served.token[-1] != "A" else "B")
    assert served.scim("GET", "/Users", headers={"Authorization": f"Bearer {wrong}"}).status_code
    assert served.scim("GET", "/Users", headers={"Authorization": ""}).status_code == 401
    assert metric(scrape(served.client), name, api="scim") == before + 2


def test_provisioning_actions_are_counted_by_kind(served: Served) -> None:
    user_id = served.new_user("deprovisioned")
    deactivate = {"op": "replace", "path": "active", "value": False}
    off = {"schemas": [PATCH_OP], "Operations": [deactivate]}
    assert served.scim("PATCH", f"/Users/{user_id}", json=off).status_code == 200
    assert served.scim("DELETE", f"/Users/{user_id}").status_code == 204
    served.new_user("kept")

    out = scrape(served.client)
    name = "scim_gateway_provisioning_actions_total"
    counts = {
        kind: metric(out, name, kind=kind, team=served.slug, adapter="generic")
        for kind in ("user.created", "user.deactivated", "user.deleted", "user.reactivated")
    }
    assert counts == {
        "user.created": 2,
        "user.deactivated": 1,
        "user.deleted": 1,
        "user.reactivated": 0,
    }
    # A write that fails changes nothing and counts nothing.
    assert served.scim("POST", "/Users", json={"schemas": [USER_SCHEMA], "userName": "kept"})
    assert metric(scrape(served.client), name, kind="user.created", team=served.slug) == 2


def test_outbox_depth_and_delivery_failures(served: Served) -> None:
    events, deliveries = metadata.tables["outbox_event"], metadata.tables["webhook_delivery"]
    later = datetime.now(UTC) + timedelta(days=1)  # not due yet: nothing sends them
    before = metric(scrape(served.client), "scim_gateway_outbox_pending")
    with served.gateway.db.engine.begin() as conn:
        team_pk = conn.execute(
            text("SELECT pk FROM team WHERE slug = :slug"), {"slug": served.slug}
        ).scalar_one()
        for n, state in enumerate(["pending", "pending", "delivered", "dead"]):
            event_pk = conn.execute(
                insert(events).returning(events.c.pk),
                {
                    "id": uuid.uuid4().hex,
                    "team_pk": team_pk,
                    "kind": "user.created",
                    "resource_type": "User",
                    "resource_id": f"u{n}",
                    "body": "{}",
                    "created": later,
                },
            ).scalar_one()
            conn.execute(
                insert(deliveries),
                {
                    "event_pk": event_pk,
                    "team_pk": team_pk,
                    "resource_key": f"User:u{n}",
                    "url": "https://hooks.example.com/scim",
                    "state": state,
                    "next_attempt_at": later,
                },
            )
    out = scrape(served.client)
    assert metric(out, "scim_gateway_outbox_pending") == before + 2

    failures = "scim_gateway_webhook_delivery_failures_total"
    assert metric(out, failures, team=served.slug) == 0
    observability.delivery_failed(served.slug)
    observability.delivery_failed(served.slug)
    assert metric(scrape(served.client), failures, team=served.slug) == 2


def test_metrics_can_be_turned_off(settings: Settings) -> None:
    off = settings.replace(metrics=MetricsSettings(enabled=False))
    with TestClient(create_app(off)) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/healthz").status_code == 200


# --- /healthz and /readyz -------------------------------------------------------------


def test_health_and_readiness_answer_without_a_key(served: Served) -> None:
    health = served.client.get("/healthz", headers={"Authorization": ""})
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = served.client.get("/readyz", headers={"Authorization": ""})
    assert ready.status_code == 200, ready.text
    # A schema that Alembic migrated is at the head revision of this version.
    tracked = sa_inspect(served.gateway.db.engine).has_table("alembic_version")
    assert ready.json() == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "schema": "ok",
            "migrations": "ok" if tracked else "not tracked",
        },
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_readiness_fails_while_the_database_is_unreachable(backend: str, tmp_path: Path) -> None:
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'missing-directory' / 'gateway.sqlite3'}",
        "postgres": f"postgresql://postgres@127.0.0.1:{closed_port()}/test",
    }[backend]
    # Not started (its start needs the database): the process is alive, not ready.
    client = TestClient(create_app(Settings(database=DatabaseSettings(url=url))))
    assert client.get("/healthz").status_code == 200
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < observability.READY_TIMEOUT + 1
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "unreachable", "schema": "unknown", "migrations": "unknown"},
    }
    assert response.headers["retry-after"]


def test_readiness_gives_up_on_a_database_that_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(observability, "READY_TIMEOUT", 0.3)
    probes = observability._PROBES
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/test"
        client = TestClient(create_app(Settings(database=DatabaseSettings(url=url))))
        for _ in range(probes.limit + 2):
            started = time.monotonic()
            response = client.get("/readyz")
            assert time.monotonic() - started < 2
            assert response.status_code == 503
            assert response.json()["checks"]["database"] == "timeout"
        # The checks left waiting hold a few threads, never more.
        assert probes.running == probes.limit
    # Once the database answers (here: refuses), they end and free their places.
    deadline = time.monotonic() + 10
    while probes.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert probes.running == 0


@pytest.fixture
def sqlite_served(tmp_path: Path) -> Iterator[TestClient]:
    """A gateway on its own SQLite file, whose schema the test may break."""
    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    with TestClient(create_app(Settings(database=DatabaseSettings(url=url)))) as client:
        yield client


def test_readiness_fails_when_a_table_is_missing(sqlite_served: TestClient) -> None:
    assert sqlite_served.get("/readyz").status_code == 200
    gateway: Gateway = sqlite_served.app.state.gateway  # type: ignore[attr-defined]
    with gateway.db.engine.begin() as conn:
        conn.execute(text("DROP TABLE scim_membership"))
    response = sqlite_served.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["schema"] == {"missing_tables": ["scim_membership"]}


def test_readiness_compares_the_alembic_revision_with_the_head(
    sqlite_served: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway: Gateway = sqlite_served.app.state.gateway  # type: ignore[attr-defined]
    with gateway.db.engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        )
        conn.execute(text("DELETE FROM alembic_version"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0002_old')"))

    monkeypatch.setattr(observability, "_alembic_heads", lambda: None)
    skipped = sqlite_served.get("/readyz")
    assert skipped.status_code == 200
    assert skipped.json()["checks"]["migrations"] == "skipped"

    monkeypatch.setattr(observability, "_alembic_heads", lambda: {"0003_new"})
    behind = sqlite_served.get("/readyz")
    assert behind.status_code == 503
    migrations = behind.json()["checks"]["migrations"]
    assert migrations == {"database": ["0002_old"], "expected": ["0003_new"]}

    monkeypatch.setattr(observability, "_alembic_heads", lambda: {"0002_old"})
    assert sqlite_served.get("/readyz").json()["checks"]["migrations"] == "ok"


# --- configuration --------------------------------------------------------------------


def test_logging_and_metrics_settings(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[logging]\nlevel = "debug"\nformat = "text"\n\n[metrics]\nenabled = false\n')
    settings = load_settings(path)
    assert (settings.logging.level, settings.logging.format) == ("debug", "text")
    assert settings.metrics.enabled is False
    assert (Settings().logging.level, Settings().logging.format) == ("info", "json")

    for text_, key, fix in (
        ('[logging]\nlevel = "loud"\n', "logging.level", "debug"),
        ('[logging]\nformat = "xml"\n', "logging.format", '"json" or "text"'),
    ):
        path.write_text(text_)
        with pytest.raises(ConfigError) as info:
            load_settings(path)
        assert key in str(info.value) and fix in str(info.value)
