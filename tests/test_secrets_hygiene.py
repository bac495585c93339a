"""Keys never leak: not into logs (SQL echo included), error bodies or the database.

A whole key lifecycle runs with every logger at DEBUG and the database echoing its
SQL: create keys, use them (for requests that succeed and requests that fail),
present them wrongly, expire, regenerate and revoke them, use them revoked. Then
every log record, everything written to stdout/stderr, every response and every
row of every table is searched for each key and for its secret part.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import MetaData, Table, select, update
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.config import DatabaseSettings, Settings
from gateway.keys import parse_key
from gateway.store.db import normalise_url
from gateway.store.tables import ApiKey
from gateway.teams import (
    create_key,
    disable_scim,
    enable_scim,
    regenerate_key,
    revoke_key,
)
from tests.conftest import GROUP_SCHEMA, PATCH_OP, SCIM, USER_SCHEMA
from tests.support import provision

keys_table = ApiKey.__table__  # type: ignore[attr-defined]


@dataclass
class Run:
    """A gateway under observation, and every key and answer seen so far."""

    client: TestClient
    gateway: Gateway
    slug: str
    database_url: str
    tokens: list[str] = field(default_factory=list)
    responses: list[httpx2.Response] = field(default_factory=list)

    def send(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        scheme: str = "Bearer",
        **kw: Any,
    ) -> httpx2.Response:
        headers = {"Content-Type": SCIM}
        if token is not None:
            headers["Authorization"] = f"{scheme} {token}"
        response = self.client.request(method, f"/scim/v2{path}", headers=headers, **kw)
        self.responses.append(response)
        return response

    def expect(self, status: int, method: str, path: str, token: str, **kw: Any) -> Any:
        response = self.send(method, path, token, **kw)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def new_key(self, name: str, **kw: Any) -> tuple[str, str]:
        info, token = create_key(self.gateway.db, self.gateway.hasher, self.slug, name, **kw)
        self.tokens.append(token)
        return info.id, token

    def secrets(self) -> set[str]:
        """Each key, and its secret part on its own (the last 43 characters)."""
        return {t for t in self.tokens} | {t[-43:] for t in self.tokens}


@pytest.fixture
def run(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[Run]:
    monkeypatch.delenv("SCIM_GATEWAY_TOKEN", raising=False)
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    settings = Settings(database=DatabaseSettings(url=database_url, echo=True))
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as client:
        gateway: Gateway = app.state.gateway
        slug = "hygiene-" + uuid.uuid4().hex[:12]
        first = provision(gateway, slug)
        yield Run(client, gateway, slug, database_url, tokens=[first])


def expire(run: Run, key_id: str) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    run.gateway.db.call(
        lambda conn: conn.execute(
            update(keys_table).where(keys_table.c.key_id == key_id).values(expires_at=past)
        ),
        write=True,
    )


def lifecycle(run: Run) -> None:
    db, hasher, slug = run.gateway.db, run.gateway.hasher, run.slug
    first = run.tokens[0]
    key_id, token = run.new_key("okta")
    dated_id, dated = run.new_key("dated", expires_in_days=1)

    # Requests that succeed.
    user = run.expect(
        201, "POST", "/Users", token, json={"schemas": [USER_SCHEMA], "userName": "u"}
    )
    run.expect(200, "GET", f"/Users/{user['id']}", token)
    run.expect(200, "GET", "/Users", token, params={"filter": 'userName eq "u"'})
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "title", "value": "t"}],
    }
    run.expect(200, "PATCH", f"/Users/{user['id']}", token, json=patch)
    group = {"schemas": [GROUP_SCHEMA], "displayName": "g", "members": [{"value": user["id"]}]}
    run.expect(201, "POST", "/Groups", first, json=group)
    run.expect(200, "GET", "/Users", dated)

    # Requests that fail for reasons other than the key.
    run.expect(404, "GET", f"/Users/{uuid.uuid4()}", token)
    run.expect(400, "GET", "/Users", token, params={"filter": "userName eq"})
    run.expect(409, "POST", "/Users", token, json={"schemas": [USER_SCHEMA], "userName": "u"})
    run.expect(400, "POST", "/Users", token, content=b"{not json")
    bad_patch = {"schemas": [PATCH_OP], "Operations": [{"op": "explode", "path": "title"}]}
    run.expect(400, "PATCH", f"/Users/{user['id']}", token, json=bad_patch)
    run.expect(400, "POST", "/Groups", token, json={**group, "members": [{"value": "nope"}]})

    # The key presented wrongly: other secret, truncated, extended, wrong scheme.
    for wrong in (token[:-43] + first[-43:], token[:-1], token + "x", token.upper()):
        run.tokens.append(wrong)
        assert run.send("GET", "/Users", wrong).status_code == 401
    assert run.send("GET", "/Users", token, scheme="Basic").status_code == 401
    assert run.send("GET", "/Users", token, scheme="Token").status_code == 401

    # SCIM off: the good key gets 403.
    disable_scim(db, slug)
    assert run.send("GET", "/Users", token).status_code == 403
    assert run.send("POST", "/Users", token, json={"userName": "v"}).status_code == 403
    enable_scim(db, slug)

    # Expiry.
    expire(run, dated_id)
    assert run.send("GET", "/Users", dated).status_code == 401

    # Rotation without and with an overlap, then revocation.
    info, rotated = regenerate_key(db, hasher, slug, key_id)
    run.tokens.append(rotated)
    assert run.send("GET", "/Users", token).status_code == 401
    run.expect(200, "GET", "/Users", rotated)
    info2, again = regenerate_key(db, hasher, slug, info.id, keep_old_for_minutes=10)
    run.tokens.append(again)
    run.expect(200, "GET", "/Users", rotated)
    run.expect(200, "GET", "/Users", again)
    revoke_key(db, slug, info2.id)
    revoke_key(db, slug, info.id)
    for revoked in (again, rotated, token):
        assert run.send("GET", "/Users", revoked).status_code == 401
        assert run.send("DELETE", f"/Users/{user['id']}", revoked).status_code == 401
    run.expect(200, "GET", f"/Users/{user['id']}", first)


def database_text(run: Run) -> str:
    """Every row of every table of the gateway's schema, as text."""
    engine = run.gateway.db.engine
    metadata = MetaData()
    metadata.reflect(bind=engine)
    assert "scim_key" in metadata.tables
    chunks: list[str] = []
    with engine.connect() as conn:
        for name, reflected in sorted(metadata.tables.items()):
            assert isinstance(reflected, Table)
            for row in conn.execute(select(reflected)):
                chunks.append(f"{name}: {tuple(row)!r}")
    return "\n".join(chunks)


def sqlite_files(database_url: str) -> list[Path]:
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() != "sqlite" or not url.database:
        return []
    base = Path(url.database)
    return [p for p in (base, Path(f"{base}-wal"), Path(f"{base}-journal")) if p.exists()]


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        lines.append(repr(record.args))
        if record.exc_text:
            lines.append(record.exc_text)
    return "\n".join(lines)


def assert_absent(what: str, text: str, secrets: set[str]) -> None:
    found = sorted(s[:20] + "..." for s in secrets if s in text)
    assert not found, f"{len(found)} key(s) or key secret(s) found in {what}: {found}"


def test_no_key_is_logged_echoed_or_stored(
    run: Run, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    lifecycle(run)
    secrets = run.secrets()
    assert len(run.tokens) >= 9

    # The capture is real: SQL was echoed, including the key lookups.
    sql_records = [r for r in caplog.records if r.name.startswith("sqlalchemy.engine")]
    assert any("scim_key" in r.getMessage() for r in sql_records)
    logs = log_text(caplog)
    # ... with their parameters: the lookup by key id is there, the key is not.
    assert all(str(parse_key(t)) in logs for t in run.tokens[:2])
    assert_absent("log records", logs, secrets)
    out, err = capfd.readouterr()
    assert_absent("stdout/stderr", out + err, secrets)

    for response in run.responses:
        answer = response.text + repr(dict(response.headers))
        assert_absent(
            f"the answer to {response.request.method} {response.request.url}", answer, secrets
        )

    dump = database_text(run)
    assert run.slug in dump
    assert_absent("the database", dump, secrets)
    for path in sqlite_files(run.database_url):
        raw = path.read_bytes()
        leaked = [s[:20] for s in secrets if s.encode() in raw]
        assert not leaked, f"keys found in the bytes of {path.name}: {leaked}"


def test_a_key_sent_in_the_wrong_place_is_not_echoed(run: Run) -> None:
    """A key pasted into a URL or a filter by mistake is not repeated back in the error.

    IdPs show SCIM error details in their provisioning logs, read by many people.
    """
    token = run.tokens[0]
    _key_id, stray = run.new_key("stray")
    attempts = [
        run.send("GET", f"/Users/{stray}", token),
        run.send("GET", f"/Groups/{stray}", token),
        run.send("GET", "/Users", token, params={"filter": stray}),
        run.send("GET", "/Users", token, params={"filter": f"{stray} eq 1"}),
        run.send("GET", f"/{stray}", token),
    ]
    for response in attempts:
        assert response.status_code >= 400, response.text
        assert_absent(f"the answer to {response.request.url}", response.text, run.secrets())
