"""Record the SQL a request sends, to show what the database is asked to do.

``recorded(client)`` captures every statement the gateway's engine executes while
the ``with`` block runs; ``rows_returned`` runs a captured SELECT again, with its
own parameters, to count the rows the database handed back for it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event
from starlette.testclient import TestClient

__all__ = ["Statement", "engine_of", "recorded", "rows_returned"]


@dataclass(frozen=True)
class Statement:
    sql: str
    params: Any

    @property
    def is_select(self) -> bool:
        return self.sql.lstrip().upper().startswith("SELECT")

    def touches(self, table: str) -> bool:
        """Whether the statement names ``table`` (as a whole word)."""
        return re.search(rf"\b{re.escape(table)}\b", self.sql) is not None

    def values(self) -> list[Any]:
        if isinstance(self.params, dict):
            return list(self.params.values())
        if isinstance(self.params, list | tuple):
            return list(self.params)
        return []


def engine_of(client: TestClient) -> Engine:
    engine: Engine = client.app.state.gateway.db.engine  # type: ignore[attr-defined]
    return engine


@contextlib.contextmanager
def recorded(client: TestClient) -> Iterator[list[Statement]]:
    engine = engine_of(client)
    seen: list[Statement] = []

    def before(
        conn: Any, cursor: Any, sql: str, params: Any, context: Any, executemany: bool
    ) -> None:
        seen.append(Statement(sql, params))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def rows_returned(client: TestClient, statement: Statement) -> int:
    """How many rows ``statement`` (a captured SELECT) returns when run again."""
    with engine_of(client).connect() as conn:
        return len(conn.exec_driver_sql(statement.sql, statement.params).fetchall())
