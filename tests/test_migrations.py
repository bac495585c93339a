"""Schema migrations: they build exactly the tables the code declares, keep the data of
older databases, adopt databases made before migrations, and run once when several
processes start together; ``scim-gateway db upgrade`` and ``db current``.

Every test runs on SQLite and on PostgreSQL, each on an empty database of its own (a
PostgreSQL schema per test, named through the URL's ``search_path``).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text
from sqlalchemy import inspect as sa_inspect
from starlette.testclient import TestClient

import adapters
import gateway
import plugins
from gateway.app import Gateway, create_app
from gateway.auth import load_hasher
from gateway.cli import main as cli_main
from gateway.config import DatabaseSettings, Settings
from gateway.sso import validate_saml
from gateway.store import migrate
from gateway.store.db import Database, make_engine
from gateway.store.tables import metadata
from gateway.teams import create_key
from tests.conftest import POSTGRES_URL, SCIM
from tests.support import ENTITY_ID, SSO_URL, saml_certificate

HEAD = migrate.head_revision()

OPERATIONS_TABLES = {"audit_record", "outbox_event", "webhook_delivery", "scim_rate_limit"}
"""Revision 0002's tables."""


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database that only this test uses."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
        return
    if not POSTGRES_URL:
        pytest.skip("SCIM_GATEWAY_TEST_POSTGRES_URL is not set; PostgreSQL tests need it")
    schema = "mig_" + uuid.uuid4().hex[:12]
    admin = make_engine(POSTGRES_URL, pool_size=1)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def every_declared_table() -> MetaData:
    """The shared metadata after importing every module of the gateway, its plugins and
    adapters: a table declared anywhere is in it (the migrations' env is no module)."""
    for package in (gateway, plugins, adapters):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.startswith("gateway.migrations"):
                importlib.import_module(module.name)
    return metadata


def differences(url: str, target: MetaData) -> list[Any]:
    """What Alembic's autogenerate would change to turn the database into ``target``."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, target))
    finally:
        engine.dispose()


def tables_of(url: str) -> set[str]:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return set(sa_inspect(conn).get_table_names())
    finally:
        engine.dispose()


def revision_of(url: str) -> str | None:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return migrate.current_revision(conn)
    finally:
        engine.dispose()


# --- the migrations and the models agree ------------------------------------------------


def test_the_head_revision_the_start_up_check_uses_is_alembics_head() -> None:
    """A gateway at HEAD_REVISION starts without importing Alembic; a new migration
    that forgot to move HEAD_REVISION would make every start run the upgrade path."""
    assert migrate.HEAD_REVISION == HEAD


def test_a_gateway_whose_database_is_at_head_starts_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    migrate.upgrade(url)
    probe = (
        "import sys, gateway.app, gateway.cli; from gateway.store import migrate; "
        f"print(migrate.upgrade({url!r})); print('alembic' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == [HEAD, "False"], result.stdout + result.stderr


def test_an_empty_database_upgraded_to_head_has_exactly_the_declared_tables(
    empty_url: str,
) -> None:
    assert migrate.upgrade(empty_url) == HEAD
    declared = every_declared_table()
    assert tables_of(empty_url) == set(declared.tables) | {"alembic_version"}
    found = differences(empty_url, declared)
    assert found == [], (
        "The tables the code declares differ from what the migrations create; add a "
        f"revision (see gateway/migrations/__init__.py): {found}"
    )


def test_the_comparison_reports_a_model_that_differs_from_the_migrations(
    empty_url: str,
) -> None:
    """The agreement check above can fail: a changed length, a new column and a new
    table each show up as a difference."""
    migrate.upgrade(empty_url)
    changed = MetaData()
    for table in every_declared_table().sorted_tables:
        table.to_metadata(changed)
    changed.tables["team"].c.slug.type = String(65)
    changed.tables["scim_key"].append_column(Column("note", String(20), nullable=True))
    Table("scim_new", changed, Column("pk", Integer, primary_key=True))
    found = {
        (d[0], d[2], d[3]) if d[0] == "modify_type" else d[0] for d in _flat(empty_url, changed)
    }
    assert ("modify_type", "team", "slug") in found
    assert {"add_column", "add_table"} <= found


def _flat(url: str, target: MetaData) -> list[Any]:
    out: list[Any] = []
    for diff in differences(url, target):
        out.extend(diff if isinstance(diff, list) else [diff])
    return out


def test_migrations_run_on_the_urls_schema_and_rate_limits_are_unlogged(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    if not empty_url.startswith("postgresql"):
        assert revision_of(empty_url) == HEAD
        return
    engine = make_engine(empty_url, pool_size=1)
    try:
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            assert schema == empty_url.rsplit("%3D", 1)[1]
            # The revision is recorded in that schema, where the tables are.
            stored = conn.execute(
                text(f'SELECT version_num FROM "{schema}".alembic_version')
            ).scalars()
            assert list(stored) == [HEAD]
            persistence = conn.execute(
                text("SELECT relpersistence FROM pg_class WHERE oid = 'scim_rate_limit'::regclass")
            ).scalar_one()
            assert persistence == "u"
    finally:
        engine.dispose()


def test_every_migration_can_be_undone_and_done_again(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    assert migrate.downgrade(empty_url, "0001") == "0001"
    assert OPERATIONS_TABLES.isdisjoint(tables_of(empty_url))
    assert migrate.downgrade(empty_url, "base") is None
    assert tables_of(empty_url) == {"alembic_version"}
    assert migrate.upgrade(empty_url) == HEAD
    assert differences(empty_url, every_declared_table()) == []


# --- data written at 0001 survives --------------------------------------------------------

CREATED = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
ALICE, BOB = str(uuid.uuid4()), str(uuid.uuid4())
ENGINEERING, ADMINS = str(uuid.uuid4()), str(uuid.uuid4())


def _fill_at_0001(db: Database) -> str:
    """A team with SSO and SCIM on, its key, two users with emails, two groups (one
    nested in the other), written through the 0001 schema; returns the key."""
    core = MetaData()
    with db.transaction(write=False) as conn:
        core.reflect(conn)
    assert set(core.tables) == migrate.CORE_TABLES | {"alembic_version"}
    t = core.tables
    sso = validate_saml(ENTITY_ID, SSO_URL, saml_certificate()).to_dict()
    with db.transaction(write=True) as conn:
        team = conn.execute(
            t["team"].insert().returning(t["team"].c.pk),
            {
                "slug": "legacy",
                "name": "Legacy Co",
                "scim_enabled": True,
                "default_adapter": "generic",
                "sso": sso,
                "created": CREATED,
            },
        ).scalar_one()
        users = {}
        for scim_id, name, given, active in (
            (ALICE, "alice@example.com", "Alice", True),
            (BOB, "Bob@Example.com", "Bob", None),
        ):
            users[scim_id] = conn.execute(
                t["scim_user"].insert().returning(t["scim_user"].c.pk),
                {
                    "id": scim_id,
                    "team_pk": team,
                    "user_name": name,
                    "user_name_ci": name.casefold(),
                    "given_name": given,
                    "family_name": "Example",
                    "display_name": f"{given} Example",
                    "active": active,
                    "department": "R&D",
                    "extra": {"x509Certificates": [{"value": "MIIB"}]},
                    "state": "active",
                    "created": CREATED,
                    "last_modified": CREATED,
                    "version": 3,
                },
            ).scalar_one()
            conn.execute(
                t["scim_user_value"].insert(),
                [
                    {
                        "user_pk": users[scim_id],
                        "team_pk": team,
                        "attr": "emails",
                        "position": 0,
                        "value": name,
                        "value_ci": name.casefold(),
                        "type": "work",
                        "primary": True,
                    },
                    {
                        "user_pk": users[scim_id],
                        "team_pk": team,
                        "attr": "phoneNumbers",
                        "position": 0,
                        "value": "+1 555 0100",
                        "value_ci": "+1 555 0100",
                        "type": "mobile",
                        "primary": None,
                    },
                ],
            )
        groups = {}
        for scim_id, display in ((ENGINEERING, "Engineering"), (ADMINS, "Admins")):
            groups[scim_id] = conn.execute(
                t["scim_group"].insert().returning(t["scim_group"].c.pk),
                {
                    "id": scim_id,
                    "team_pk": team,
                    "display_name": display,
                    "display_name_ci": display.casefold(),
                    "external_id": f"ext-{display}",
                    "created": CREATED,
                    "last_modified": CREATED,
                    "version": 2,
                },
            ).scalar_one()
        member = {"team_pk": team, "user_pk": None, "child_group_pk": None}
        conn.execute(
            t["scim_membership"].insert(),
            [
                {**member, "group_pk": groups[ENGINEERING], "user_pk": users[ALICE]},
                {**member, "group_pk": groups[ENGINEERING], "child_group_pk": groups[ADMINS]},
                {**member, "group_pk": groups[ADMINS], "user_pk": users[BOB]},
            ],
        )
    # The key the way the 0001 gateway issued it: hashed under the shared secret.
    _info, token = create_key(db, load_hasher(db, None), "legacy", "okta-production")
    return token


def _snapshot(
    db: Database, columns: dict[str, list[str]] | None = None
) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every row of every 0001 table, in a stable order, with its column names; with
    ``columns``, only those columns of each table (the ones it had at 0001: later
    revisions add some)."""
    core = MetaData()
    with db.transaction(write=False) as conn:
        core.reflect(conn, only=sorted(migrate.CORE_TABLES))
        out = {}
        for name, table in core.tables.items():
            shown = [table.c[c] for c in columns[name]] if columns else list(table.c)
            rows = conn.execute(select(*shown).order_by(*table.primary_key.columns))
            out[name] = ([c.name for c in shown], [tuple(row) for row in rows])
        return out


def test_data_written_at_0001_is_kept_by_the_upgrade_and_served(empty_url: str) -> None:
    db = Database(make_engine(empty_url, pool_size=2))
    try:
        assert migrate.upgrade(db, "0001") == "0001"
        token = _fill_at_0001(db)
        before = _snapshot(db)
        # a team, the key secret, a key, 2 users and 4 values, 2 groups and 3 members
        assert sum(len(rows) for _names, rows in before.values()) == 14
        assert migrate.upgrade(db) == HEAD
        assert tables_of(empty_url) >= OPERATIONS_TABLES
        assert _snapshot(db, {name: names for name, (names, _rows) in before.items()}) == before
    finally:
        db.dispose()

    settings = Settings(database=DatabaseSettings(url=empty_url), source="<tests>")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM}
    with TestClient(create_app(settings), headers=headers) as client:
        users = client.get("/scim/v2/Users", params={"sortBy": "userName"})
        assert users.status_code == 200, users.text
        assert users.json()["totalResults"] == 2
        alice, bob = users.json()["Resources"]
        assert (alice["id"], bob["id"]) == (ALICE, BOB)
        assert alice["userName"] == "alice@example.com"
        assert alice["name"] == {"givenName": "Alice", "familyName": "Example"}
        assert alice["emails"] == [{"value": "alice@example.com", "type": "work", "primary": True}]
        assert alice["phoneNumbers"] == [{"value": "+1 555 0100", "type": "mobile"}]
        assert alice["active"] is True
        assert alice["x509Certificates"] == [{"value": "MIIB"}]
        assert alice["meta"]["created"].startswith("2024-05-01T09:30:00")
        assert alice["meta"]["version"] == 'W/"3"'
        assert [g["value"] for g in alice["groups"]] == [ENGINEERING]
        assert "active" not in bob

        found = client.get("/scim/v2/Users", params={"filter": 'userName eq "bob@example.com"'})
        assert [u["id"] for u in found.json()["Resources"]] == [BOB]

        engineering = client.get(f"/scim/v2/Groups/{ENGINEERING}")
        assert engineering.status_code == 200, engineering.text
        body = engineering.json()
        assert body["displayName"] == "Engineering"
        assert body["externalId"] == "ext-Engineering"
        assert sorted(m["value"] for m in body["members"]) == sorted([ALICE, ADMINS])

        # And the upgraded database takes writes, with an audit record of each.
        created = client.post(
            "/scim/v2/Users",
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "carol"},
        )
        assert created.status_code == 201, created.text
        gw: Gateway = client.app.state.gateway  # type: ignore[attr-defined]
        with gw.db.transaction(write=False) as conn:
            audit = metadata.tables["audit_record"]
            kinds = conn.execute(select(audit.c.resource_id)).scalars().all()
        assert kinds == [created.json()["id"]]


# --- databases made before migrations ---------------------------------------------------------


@pytest.mark.parametrize("made_with", ["core tables", "every table"])
def test_a_database_made_before_migrations_is_adopted(empty_url: str, made_with: str) -> None:
    """A build before migrations made its tables with ``metadata.create_all``: the
    0001 tables, and perhaps some of 0002's. The gateway stamps it at 0001 and
    upgrades it; its data stays."""
    declared = every_declared_table()
    engine = make_engine(empty_url, pool_size=1)
    try:
        chosen = [
            t
            for t in declared.sorted_tables
            if made_with == "every table" or t.name in migrate.CORE_TABLES
        ]
        declared.create_all(engine, tables=chosen)
        with engine.begin() as conn:
            conn.execute(
                declared.tables["team"].insert(),
                {"slug": "old", "name": "Old", "scim_enabled": False, "created": CREATED},
            )
    finally:
        engine.dispose()
    assert revision_of(empty_url) is None

    settings = Settings(database=DatabaseSettings(url=empty_url), source="<tests>")
    gw = Gateway(settings)
    try:
        gw.start()  # what every gateway process does first
        with gw.db.transaction(write=False) as conn:
            assert migrate.current_revision(conn) == HEAD
            teams = declared.tables["team"]
            assert conn.execute(select(teams.c.slug)).scalars().all() == ["old"]
    finally:
        gw.stop()
    assert differences(empty_url, declared) == []


def test_a_database_with_only_some_of_the_tables_is_refused(empty_url: str) -> None:
    engine = make_engine(empty_url, pool_size=1)
    try:
        tables = [metadata.tables["team"], metadata.tables["scim_key"]]
        metadata.create_all(engine, tables=tables)
    finally:
        engine.dispose()
    with pytest.raises(migrate.MigrationError) as refused:
        migrate.upgrade(empty_url)
    message = str(refused.value)
    assert "gateway_setting, scim_group, scim_membership, scim_user, scim_user_value" in message
    assert "no alembic_version table" in message
    assert revision_of(empty_url) is None


def test_a_schema_newer_than_this_version_is_refused(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    finally:
        engine.dispose()
    gw = Gateway(Settings(database=DatabaseSettings(url=empty_url), source="<tests>"))
    try:
        with pytest.raises(migrate.MigrationError, match="revision 0099, which this version"):
            gw.start()
    finally:
        gw.stop()
    assert revision_of(empty_url) == "0099"


# --- several processes start at once --------------------------------------------------------

STARTERS = """
import os, sys
import gateway.app  # the imports of a starting gateway, done once before the forks
from gateway.store.migrate import upgrade

url, count = sys.argv[1], int(sys.argv[2])
gate, release = os.pipe()
children = []
for _ in range(count):
    pid = os.fork()
    if pid == 0:  # a starting gateway process: wait for the others, then upgrade
        os.close(release)
        os.read(gate, 1)
        try:
            print(upgrade(url), flush=True)
        except BaseException as exc:
            print("failed:", repr(exc), flush=True)
            os._exit(1)
        os._exit(0)
    children.append(pid)
os.close(gate)
os.write(release, b"x" * count)  # all of them at once
codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
sys.exit(max(codes))
"""


def test_processes_that_upgrade_at_the_same_moment_migrate_once(empty_url: str) -> None:
    count = 4
    done = subprocess.run(
        [sys.executable, "-c", STARTERS, empty_url, str(count)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == [HEAD] * count
    engine = make_engine(empty_url, pool_size=1)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert versions == [(HEAD,)]
    assert differences(empty_url, every_declared_table()) == []


# --- scim-gateway db upgrade / db current ------------------------------------------------------


def run_cli(
    args: list[str], url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setenv("SCIM_GATEWAY_DATABASE_URL", url)
    code = cli_main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_db_upgrade_and_db_current(
    empty_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A config that declares a team: `db` must not apply it (nor start anything else).
    config = tmp_path / "gateway.toml"
    config.write_text('[teams.declared]\nname = "Declared"\n', encoding="utf-8")
    cli = ["--config", str(config), "db"]

    code, out, _ = run_cli([*cli, "current"], empty_url, monkeypatch, capsys)
    assert (code, out) == (
        0,
        f"none (this version's head is {HEAD}; run scim-gateway db upgrade)\n",
    )

    migrate.upgrade(empty_url, "0001")
    code, out, _ = run_cli([*cli, "current", "--json"], empty_url, monkeypatch, capsys)
    assert code == 0
    assert json.loads(out) == {"current": "0001", "head": HEAD, "up_to_date": False}

    code, out, _ = run_cli([*cli, "upgrade"], empty_url, monkeypatch, capsys)
    assert (code, out) == (0, f"Upgraded the database schema from 0001 to {HEAD} (head).\n")
    code, out, _ = run_cli([*cli, "upgrade"], empty_url, monkeypatch, capsys)
    assert (code, out) == (0, f"The database schema is at {HEAD} (head); nothing to do.\n")
    code, out, _ = run_cli([*cli, "current"], empty_url, monkeypatch, capsys)
    assert (code, out) == (0, f"{HEAD} (head)\n")

    engine = make_engine(empty_url, pool_size=1)
    try:
        with engine.connect() as conn:
            # No team applied from the config, no key secret generated.
            assert conn.execute(text("SELECT count(*) FROM team")).scalar_one() == 0
            assert conn.execute(text("SELECT count(*) FROM gateway_setting")).scalar_one() == 0
    finally:
        engine.dispose()


def test_db_upgrade_on_an_empty_database_through_the_console_script(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    script = Path(sys.executable).with_name("scim-gateway")
    env = {"SCIM_GATEWAY_DATABASE_URL": url, "PATH": str(script.parent)}
    done = subprocess.run(
        [str(script), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Upgraded the database schema from nothing to {HEAD} (head).\n"
    assert revision_of(url) == HEAD


def test_db_commands_say_what_is_wrong(
    empty_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = f"sqlite:///{tmp_path / 'no-such-directory' / 'gateway.sqlite3'}"
    code, _, err = run_cli(["db", "upgrade"], missing, monkeypatch, capsys)
    assert code == 1
    assert err.startswith(f"scim-gateway: cannot open the database {missing}: ")
    assert "Check database.url (or SCIM_GATEWAY_DATABASE_URL)" in err

    migrate.upgrade(empty_url)
    engine = make_engine(empty_url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    finally:
        engine.dispose()
    code, _, err = run_cli(["db", "upgrade"], empty_url, monkeypatch, capsys)
    assert code == 1
    assert "schema is at revision 0099, which this version of the gateway does not know" in err
    code, out, _ = run_cli(["db", "current"], empty_url, monkeypatch, capsys)
    assert (code, out) == (0, f"0099 (newer than this version, whose head is {HEAD})\n")
