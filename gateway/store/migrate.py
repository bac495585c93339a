"""Schema migrations: Alembic, driven from Python.

The migrations live in the ``gateway/migrations`` package (installed with the
gateway); :func:`upgrade` applies them to a database, on the connection it opens
itself, so a PostgreSQL ``search_path`` given in the URL applies to the migrated
tables and to Alembic's ``alembic_version`` table alike.

Several processes may start at once: the upgrade runs in one transaction that first
takes a lock (``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), so one process migrates and the others then find the schema at head.

A database created by a build that predates migrations (its tables made by
``metadata.create_all``, no ``alembic_version`` table) is adopted: it is stamped at
the first revision, whose tables it has, and upgraded from there.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, MetaData, inspect, text

from .db import Database, make_engine

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Alembic is imported where a migration runs, not at import: it is a quarter of the
# gateway's start-up time, and a gateway or CLI command that finds its database at
# HEAD_REVISION never needs it.

__all__ = [
    "CORE_TABLES",
    "MIGRATIONS",
    "MigrationError",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "is_known",
    "model_metadata",
    "upgrade",
]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
"""The Alembic script directory (``script_location``)."""

FIRST_REVISION = "0001"
HEAD_REVISION = "0004"
"""The newest migration, known without reading the script directory; a test checks it
against Alembic's own answer (:func:`head_revision`)."""

CORE_TABLES = frozenset(
    {
        "team",
        "scim_key",
        "gateway_setting",
        "scim_user",
        "scim_user_value",
        "scim_group",
        "scim_membership",
    }
)
"""The tables of revision 0001: what a build from before migrations always created."""

_LOCK_NAME = "scim-gateway:migrate:"

_process_lock = threading.Lock()
"""Alembic's ``context`` and ``op`` are process-wide proxies: one migration at a time."""


class MigrationError(Exception):
    """The database cannot be brought to the gateway's schema; the message says why."""


def alembic_config(connection: Connection | None = None, *, url: str | None = None) -> Config:
    """An Alembic configuration for the gateway's migrations.

    With ``connection``, the migrations run on it as it is (in its transaction);
    with ``url``, ``env.py`` opens its own (the way to run ``alembic`` commands,
    such as ``revision --autogenerate``, against a development database).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        # ConfigParser interpolation would read a % in the URL as a reference.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS))


def head_revision() -> str:
    """The newest revision of the gateway's migrations."""
    head = _script().get_current_head()
    assert head is not None, "the gateway's migrations have one head"
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at; ``None`` when migrations never ran on it."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _at_head(conn: Connection) -> bool:
    """Whether the database is at :data:`HEAD_REVISION`, read without Alembic."""
    if not inspect(conn).has_table("alembic_version"):
        return False
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    return [row[0] for row in rows] == [HEAD_REVISION]


def model_metadata() -> MetaData:
    """The metadata of every table the gateway's code declares.

    Tables are declared where they are used (most in :mod:`gateway.store.tables`,
    the rate-limit buckets in :mod:`gateway.ratelimit`); importing the application
    imports them all.
    """
    import gateway.app  # noqa: F401  (declares every table on the shared metadata)

    from .tables import metadata

    return metadata


def upgrade(target: Database | str, revision: str = "head") -> str | None:
    """Bring the database to ``revision`` (the newest by default); return where it is.

    Idempotent, and safe when several processes run it at once.
    """
    db = target if isinstance(target, Database) else Database(make_engine(target, pool_size=1))
    try:
        if revision == "head":
            # Every start of an up-to-date gateway: one read, no lock.
            with db.transaction(write=False) as conn:
                if _at_head(conn):
                    return HEAD_REVISION
        from alembic import command

        with _process_lock, db.transaction(write=True) as conn:  # BEGIN IMMEDIATE on SQLite
            _lock(conn)
            _check_known(current_revision(conn))
            _adopt_unversioned(conn)
            command.upgrade(alembic_config(conn), revision)
            return current_revision(conn)
    finally:
        if db is not target:
            db.dispose()


def downgrade(target: Database | str, revision: str) -> str | None:
    """Take the database back to ``revision`` (``"base"``: no tables). For development
    and tests: a downgrade drops the data the newer tables held."""
    db = target if isinstance(target, Database) else Database(make_engine(target, pool_size=1))
    try:
        from alembic import command

        with _process_lock, db.transaction(write=True) as conn:
            _lock(conn)
            command.downgrade(alembic_config(conn), revision)
            return current_revision(conn)
    finally:
        if db is not target:
            db.dispose()


def _lock(conn: Connection) -> None:
    """Hold the migration lock until the transaction ends (PostgreSQL; SQLite's
    ``BEGIN IMMEDIATE`` already excludes every other writer)."""
    if conn.dialect.name == "postgresql":
        # One lock per schema: runs on different schemas of one database never wait.
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:name || current_schema()))"),
            {"name": _LOCK_NAME},
        )


def is_known(revision: str) -> bool:
    """Whether ``revision`` is one of this version's migrations."""
    return revision in {script.revision for script in _script().walk_revisions()}


def _check_known(revision: str | None) -> None:
    if revision is not None and not is_known(revision):
        raise MigrationError(
            f"The database's schema is at revision {revision}, which this version of the "
            f"gateway does not know (its newest is {head_revision()}): a newer version has "
            "upgraded it. Run that version, or restore the backup taken before the upgrade."
        )


def _adopt_unversioned(conn: Connection) -> None:
    """Stamp a database made before migrations at revision 0001, whose tables it has."""
    if current_revision(conn) is not None:
        return
    present = set(inspect(conn).get_table_names())
    found = CORE_TABLES & present
    if not found:
        return  # a new database: every migration runs
    missing = CORE_TABLES - present
    if missing:
        raise MigrationError(
            "The database has some of the gateway's tables but not "
            f"{', '.join(sorted(missing))}, and no alembic_version table: it was not made "
            "by a gateway this version can upgrade. Point database.url at the gateway's "
            "own database, or at an empty one."
        )
    from alembic import command

    command.stamp(alembic_config(conn), FIRST_REVISION)
