"""Prebuilt statements run straight on the driver's cursor.

Profiling the request path showed SQLAlchemy's execution machinery costing about
17 µs per prebuilt statement on SQLite (compiled-cache lookup, execution context,
result set-up, events), against under 3 µs for the driver to run the same SQL. A
user create issues half a dozen statements, so that overhead was a large share of
the request. :class:`Prepared` keeps what SQLAlchemy is good at here, the SQL text,
the dialect's bind and result type conversions, the exception classes and
connection invalidation, but does the compiling once per dialect (and per set of
insert columns) and then calls the driver directly, inside the SQLAlchemy
transaction the caller already holds.

Statements with ``expanding`` bind parameters (``IN`` lists) and Python-side column
defaults that are not constants are not supported: they are refused when first
compiled, so the mistake shows in the first test that runs the statement.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

__all__ = ["FastRow", "Prepared"]

_GIVEN, _FIXED, _DEFAULT = 0, 1, 2


class FastRow(tuple[Any, ...]):
    """A result row: a tuple whose columns are also attributes, like SQLAlchemy's."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))

    def _asdict(self) -> dict[str, Any]:
        return self._mapping


def _row_class(names: Sequence[str]) -> type[FastRow]:
    namespace: dict[str, Any] = {"__slots__": (), "_fields": tuple(names)}
    for index, name in enumerate(names):
        namespace[name] = property(operator.itemgetter(index))
    return type("FastRow", (FastRow,), namespace)


def _listed(items: Iterable[str]) -> str:
    """Items of a tuple or dict display: ``a, b, `` (a tuple of one is a tuple)."""
    return "".join(f"{item}, " for item in items)


def _binder(
    binds: list[tuple[str, str, int, Any, Callable[[Any], Any] | None]], positional: bool
) -> Callable[[Mapping[str, Any]], Any]:
    """The function of a call's parameters giving the driver's, for these binds.

    Written out per statement, one expression per bind (``g["team_pk"]``, a constant,
    ``g.get("version", c3)``, ``p14(v[14])`` for a bind processor), instead of a loop
    deciding that for each bind on every call: the loop cost about 0.1 µs a bind, and
    a user create passes some 70 (35 of them to the user's insert)."""
    namespace: dict[str, Any] = {}
    values = []
    for index, (_name, key, source, constant, _process) in enumerate(binds):
        if source == _GIVEN:
            values.append(f"g[{key!r}]")
        else:
            namespace[f"c{index}"] = constant
            values.append(f"c{index}" if source == _FIXED else f"g.get({key!r}, c{index})")
    body = []
    if any(process is not None for *_bind, process in binds):
        # Every value is read before any is processed: a missing key is a KeyError,
        # whatever a processor would make of another value. None is processed too, as
        # SQLAlchemy does: a JSON column stores None as JSON null.
        body.append(f"    v = ({_listed(values)})")
        values = []
        for index, (*_bind, process) in enumerate(binds):
            if process is None:
                values.append(f"v[{index}]")
            else:
                namespace[f"p{index}"] = process
                values.append(f"p{index}(v[{index}])")
    if positional:
        body.append(f"    return ({_listed(values)})")
    else:
        named = (f"{name!r}: {value}" for (name, *_bind), value in zip(binds, values, strict=True))
        body.append(f"    return {{{_listed(named)}}}")
    # The text is ours, built from the compiled statement: nothing from a request.
    exec("def parameters(g):\n" + "\n".join(body), namespace)
    function: Callable[[Mapping[str, Any]], Any] = namespace["parameters"]
    return function


class _Plan:
    """One statement compiled for one dialect (and one set of insert columns)."""

    __slots__ = ("converted", "parameters", "positional", "row", "sql")

    def __init__(self, stmt: ClauseElement, dialect: Dialect, keys: tuple[str, ...] | None):
        compiled: Any = stmt.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        if getattr(compiled, "_numeric_binds", False) or compiled.literal_execute_params:
            raise ValueError("Prepared does not support this statement's parameters")
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("Prepared does not support expanding (IN list) parameters")
        self.sql = compiled.string
        self.positional = compiled.positional
        names = {bind: name for bind, name in compiled.bind_names.items()}
        defaults: dict[str, Any] = {}
        for column in getattr(compiled, "insert_prefetch", ()) or ():
            default = column.default
            if default is None or not default.is_scalar:
                raise ValueError(f"Prepared needs a value for {column.key!r} (no constant default)")
            defaults[column.key] = default.arg
        # Each bind: (rendered name, caller's key, where its value comes from, fixed or
        # default value, the dialect's bind processor).
        by_name: dict[str, tuple[str, int, Any, Callable[[Any], Any] | None]] = {}
        for bind, name in names.items():
            if bind.callable is not None:
                raise ValueError("Prepared does not support callable bind values")
            process = bind.type._cached_bind_processor(dialect)
            if not bind.required and bind.value is not None:
                by_name[name] = (bind.key, _FIXED, bind.value, process)
            elif bind.key in defaults:
                by_name[name] = (bind.key, _DEFAULT, defaults[bind.key], process)
            else:
                by_name[name] = (bind.key, _GIVEN, None, process)
        order = compiled.positiontup if self.positional else list(by_name)
        binds = [(name, *by_name[name]) for name in (order or [])]
        self.parameters = _binder(binds, self.positional)
        columns = compiled._result_columns
        self.row = _row_class([c.keyname for c in columns]) if columns else None
        # The columns that have a result processor, with it (empty: rows are used as
        # the driver returns them). A user row has 35 columns and 5 processors, and a
        # page converts 100 such rows.
        self.converted: list[tuple[int, Callable[[Any], Any]]] = []
        for index, column in enumerate(columns or ()):
            process = column.type._cached_result_processor(dialect, None)
            if process is not None:
                self.converted.append((index, process))

    def make_row(self, raw: Sequence[Any]) -> Any:
        cls = self.row
        assert cls is not None
        return cls(self._convert(raw)) if self.converted else cls(raw)

    def make_rows(self, raw: Iterable[Sequence[Any]]) -> list[Any]:
        cls = self.row
        assert cls is not None
        if not self.converted:
            return [cls(r) for r in raw]
        return [cls(self._convert(r)) for r in raw]

    def _convert(self, raw: Sequence[Any]) -> list[Any]:
        """One row's values, each through its column's result processor (if any)."""
        values = list(raw)
        for index, process in self.converted:
            values[index] = process(values[index])
        return values


class Prepared:
    """A statement compiled once per dialect and executed on the driver's cursor.

    Use it inside a transaction opened by :class:`~gateway.store.db.Database`; it
    shares that transaction's connection.
    """

    __slots__ = ("_keyed", "_plans", "stmt")

    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._plans: dict[tuple[str, tuple[str, ...] | None], _Plan] = {}
        # Inserts and updates compile for the columns a call gives.
        self._keyed = bool(getattr(stmt, "is_insert", False) or getattr(stmt, "is_update", False))

    def _plan(self, conn: Connection, keys: tuple[str, ...] | None = None) -> _Plan:
        dialect = conn.dialect
        plan = self._plans.get((dialect.name, keys))
        if plan is None:
            plan = self._plans[(dialect.name, keys)] = _Plan(self.stmt, dialect, keys)
        return plan

    def _cursor(self, conn: Connection, plan: _Plan, params: Any, many: bool = False) -> Any:
        raw = conn.connection.driver_connection
        assert raw is not None
        if conn.dispatch.before_cursor_execute or conn._echo:
            self._observed(conn, plan, params, many)
        try:
            cursor = raw.cursor()
            if many:
                cursor.executemany(plan.sql, params)
            else:
                cursor.execute(plan.sql, params)
            if conn.dispatch.after_cursor_execute:
                for listener in conn.dispatch.after_cursor_execute:
                    listener(conn, cursor, plan.sql, params, None, many)
            return cursor
        except conn.dialect.loaded_dbapi.Error as exc:
            invalidated = conn.dialect.is_disconnect(exc, raw, None)
            if invalidated and not conn.invalidated:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                plan.sql,
                params,
                exc,
                conn.dialect.loaded_dbapi.Error,
                connection_invalidated=invalidated,
                dialect=conn.dialect,
            ) from exc

    @staticmethod
    def _observed(conn: Connection, plan: _Plan, params: Any, many: bool) -> None:
        """What SQLAlchemy would show of this statement: the ``echo`` log and the
        ``before_cursor_execute`` event (tracing instrumentation listens to it, and to
        ``after_cursor_execute``, which :meth:`_cursor` fires)."""
        if conn._echo:
            conn._log_info(plan.sql)
            conn._log_info("[prepared] %r", params)
        if conn.dispatch.before_cursor_execute:
            for listener in conn.dispatch.before_cursor_execute:
                listener(conn, None, plan.sql, params, None, many)

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """All result rows (attribute access by column name)."""
        plan = self._plan(conn, tuple(params) if self._keyed else None)
        cursor = self._cursor(conn, plan, plan.parameters(params))
        return plan.make_rows(cursor.fetchall())

    def dicts(self, conn: Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """All result rows as dicts by column name (cheaper than rows' ``_mapping``)."""
        plan = self._plan(conn, tuple(params) if self._keyed else None)
        cursor = self._cursor(conn, plan, plan.parameters(params))
        assert plan.row is not None
        names = plan.row._fields
        if not plan.converted:
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        convert = plan._convert
        return [dict(zip(names, convert(row), strict=True)) for row in cursor.fetchall()]

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        plan = self._plan(conn, tuple(params) if self._keyed else None)
        cursor = self._cursor(conn, plan, plan.parameters(params))
        row = cursor.fetchone()
        cursor.close()
        return None if row is None else plan.make_row(row)

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        row = self.first(conn, params)
        return None if row is None else row[0]

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Execute a statement that returns no rows; the number of rows it touched."""
        plan = self._plan(conn, tuple(params) if self._keyed else None)
        cursor = self._cursor(conn, plan, plan.parameters(params))
        count = cursor.rowcount
        cursor.close()
        return int(count)

    def many(self, conn: Connection, batch: Sequence[Mapping[str, Any]]) -> None:
        """Execute for each parameter set (an insert's rows; no RETURNING)."""
        if not batch:
            return
        plan = self._plan(conn, tuple(batch[0]) if self._keyed else None)
        cursor = self._cursor(conn, plan, [plan.parameters(p) for p in batch], many=True)
        cursor.close()
