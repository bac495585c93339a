"""Alembic environment of the gateway's migrations.

:func:`gateway.store.migrate.upgrade` passes an open connection, inside the
transaction that holds the migration lock, in ``config.attributes["connection"]``;
the migrations run on it unchanged, so ``alembic_version`` lands next to the tables
(a PostgreSQL ``search_path`` in the database URL applies to both). Without one,
the URL in the ``sqlalchemy.url`` option is opened (see
:func:`gateway.store.migrate.alembic_config`), and ``--sql`` mode prints the SQL.

Autogenerate compares against every table the code declares. SQLModel declares
``str`` columns as ``AutoString`` and ``datetime`` columns as ``UTCDateTime``, type
decorators over ``String`` and ``DateTime(timezone=True)``; Alembic's own type
comparison already compares a decorator by its implementation type (a length, a
time zone or a JSON column that differs is reported, as ``tests/test_migrations.py``
relies on), so no custom ``compare_type`` is needed. ``render_item`` writes the
decorators into new revisions as those plain SQLAlchemy types, so that revisions
import nothing from SQLModel. SQLite gets batch mode: an ``ALTER`` it cannot run
becomes a table copy.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.types import TypeDecorator

from gateway.store.db import make_engine
from gateway.store.migrate import model_metadata

config = context.config


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render a SQLModel type decorator as its SQLAlchemy implementation type."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return "sa." + repr(obj.impl_instance)
    return False


def options(dialect: str) -> dict[str, Any]:
    return {
        "target_metadata": model_metadata(),
        "compare_type": True,
        "compare_server_default": True,
        "render_item": render_item,
        "render_as_batch": dialect == "sqlite",
    }


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, **options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        assert url, "set sqlalchemy.url to generate SQL"
        dialect = url.split(":", 1)[0].split("+", 1)[0]
        context.configure(url=url, literal_binds=True, **options(dialect))
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    assert url, "pass a connection or set sqlalchemy.url"
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            run_on(connection)
            connection.commit()
    finally:
        engine.dispose()


run()
