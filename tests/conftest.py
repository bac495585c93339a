"""Shared fixtures: every SCIM test runs on SQLite and, where configured, PostgreSQL.

PostgreSQL is named by ``SCIM_GATEWAY_TEST_POSTGRES_URL`` (``.ci/run`` sets it).
Each test provisions its own team on a shared schema, which is itself a check of
team isolation: no test can see another test's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import DatabaseSettings, RateLimitSettings, Settings
from tests.oidc_fixtures import oidc_provider, oidc_provider_server  # noqa: F401
from tests.support import provision


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``pytest -n auto``: one worker more than the machine has CPUs. Much of the
    suite waits on gateway processes it started and on PostgreSQL; on two CPUs, two
    workers left a quarter of the CPU time idle (three were the fastest of two, three
    and four)."""
    return (os.cpu_count() or 1) + 1


POSTGRES_URL = os.environ.get("SCIM_GATEWAY_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgres"]
SCIM = "application/scim+json"

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test run, as a URL any process can use.

    Concurrent runs on one database never meet: each gets its own schema (through
    the connection's ``search_path``), created here and dropped at the end.
    """
    if not POSTGRES_URL:
        pytest.skip("SCIM_GATEWAY_TEST_POSTGRES_URL is not set; PostgreSQL tests need it")
    from sqlalchemy import text

    from gateway.store.db import make_engine

    schema = "test_" + uuid.uuid4().hex[:12]
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def team_slug() -> str:
    """The slug of the team the ``client`` fixture provisions."""
    return "team-" + uuid.uuid4().hex[:12]


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Rate limits are tested on their own (tests/test_rate_limits.py); elsewhere they
    # would turn a fast test client into a flood of 429s.
    return Settings(
        database=DatabaseSettings(url=database_url),
        rate_limits=RateLimitSettings(per_key=0, per_team=0),
        source="<tests>",
    )


def make_client(
    settings: Settings, team: str | None = None, *, authenticated: bool = True
) -> Iterator[TestClient]:
    """A TestClient on a fresh app; with ``authenticated``, it sends a new key of
    ``team`` (a new team is provisioned: SAML SSO, SCIM on, a key)."""
    app = create_app(settings)
    headers = {"Content-Type": SCIM}
    with TestClient(app, base_url="http://testserver", headers=headers) as client:
        if authenticated:
            slug = team or "team-" + uuid.uuid4().hex[:12]
            key = provision(app.state.gateway, slug)
            client.headers["Authorization"] = f"Bearer {key}"
        yield client


@pytest.fixture
def client(settings: Settings, team_slug: str) -> Iterator[TestClient]:
    """A SCIM client holding a key of one fresh team, on each backend."""
    yield from make_client(settings, team_slug)


@pytest.fixture
def anon(settings: Settings) -> Iterator[TestClient]:
    """A client that sends no credential."""
    yield from make_client(settings, authenticated=False)


@pytest.fixture
def limited(settings: Settings, team_slug: str) -> Iterator[TestClient]:
    """A client on a gateway with small limits."""
    limits = replace(
        settings.limits,
        max_results=5,
        default_count=5,
        max_body_bytes=4096,
        bulk_max_operations=3,
        bulk_max_payload_bytes=4096,
        max_patch_operations=5,
        max_filter_length=200,
    )
    yield from make_client(settings.replace(limits=limits), team_slug)


def new_user(client: TestClient, user_name: str, **attrs: Any) -> dict[str, Any]:
    body = {"schemas": [USER_SCHEMA], "userName": user_name, **attrs}
    response = client.post("/scim/v2/Users", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def new_group(
    client: TestClient, display_name: str, members: list[str] | None = None, **attrs: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": display_name, **attrs}
    if members is not None:
        body["members"] = [{"value": m} for m in members]
    response = client.post("/scim/v2/Groups", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def patch(client: TestClient, path: str, *ops: dict[str, Any], **kw: Any) -> Any:
    return client.patch(path, json={"schemas": [PATCH_OP], "Operations": list(ops)}, **kw)
