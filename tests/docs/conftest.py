"""Where a page's examples run: a working directory, a database of its own, a team.

Every page starts from the same place as its reader: a gateway directory holding a
config file (``gateway.toml``) and a team, ``acme``, whose SSO is configured and
whose SCIM provisioning is still off. On PostgreSQL each page gets a database of its
own, so that a page's backup example dumps that page's data and nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.sso import validate_saml
from gateway.store.db import make_engine
from gateway.teams import create_team, set_sso
from tests.conftest import POSTGRES_URL
from tests.support import ENTITY_ID, SSO_URL, saml_certificate

TEAM = "acme"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def page_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database no other test uses: a SQLite file in the page's directory, or a
    PostgreSQL database created for the page and dropped after it."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
        return
    if not POSTGRES_URL:
        pytest.skip("SCIM_GATEWAY_TEST_POSTGRES_URL is not set; PostgreSQL tests need it")
    name = "docs_" + uuid.uuid4().hex[:12]
    engine = make_engine(POSTGRES_URL)
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def prepare_team(config: Path) -> None:
    """Team ``acme`` with SAML SSO, SCIM off: where each guide begins."""
    gateway = Gateway(load_settings(config))
    gateway.start()
    try:
        create_team(gateway.db, TEAM, "Acme Corp")
        set_sso(gateway.db, TEAM, validate_saml(ENTITY_ID, SSO_URL, saml_certificate()))
    finally:
        gateway.stop()
