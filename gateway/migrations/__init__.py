"""The gateway's schema migrations (Alembic), installed with the gateway.

``scim-gateway db upgrade`` applies them, and so does every gateway process when it
starts (:func:`gateway.store.migrate.upgrade`). A change to the tables the code
declares ships as a new revision in ``versions/``: write it against a database at
the current head, for example with autogenerate::

    from alembic import command
    from gateway.store.migrate import alembic_config

    command.revision(
        alembic_config(url="sqlite:///dev.sqlite3"),
        message="what changes",
        rev_id="0003",
        autogenerate=True,
    )

then review what it wrote (see the notes in ``env.py``); ``tests/test_migrations.py``
fails while the migrations and the models disagree.
"""
