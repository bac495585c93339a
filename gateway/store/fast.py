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

Statements with ``expanding`` bind parameters (``IN`` lists) are compiled once per
dialect, then expanded once per number of values by SQLAlchemy
(``construct_expanded_state``), and those expanded plans are kept (a bounded number
per statement): the SQL is the one SQLAlchemy would send. :meth:`Prepared.insert_rows`
inserts several rows with one multi-row ``VALUES`` statement, as SQLAlchemy's
"insertmanyvalues" does, with the rows ``RETURNING`` gives (of an ``ON CONFLICT DO
NOTHING`` insert, only those inserted); its SQL for n rows is the one-row statement's
with its ``VALUES`` group repeated n times (each row's parameters renamed
``name__i`` where parameters are named), kept per number of rows like the expanded
plans. Python-side column defaults that are not constants, tuple ``IN`` lists and
numeric parameter styles are not supported: they are refused when first compiled,
so the mistake shows in the first test that runs the statement.
"""

from __future__ import annotations

import itertools
import operator
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, DateTime, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

__all__ = ["KEYED_PLANS", "SIZED_PLANS", "FastRow", "Prepared"]

_GIVEN, _FIXED, _DEFAULT, _ITEM = 0, 1, 2, 3

SIZED_PLANS = 64
"""Plans kept per statement and dialect for sizes (IN list lengths, numbers of rows);
past that, the first kept goes. A new size costs a fraction of a millisecond (an
expansion by SQLAlchemy, or the one-row ``VALUES`` group repeated), where compiling
a 100-row insert anew would cost 10 ms; an IdP sends a few sizes again and again
(one member, its batch size)."""

KEYED_PLANS = 256
"""Plans kept per statement for sets of columns (an insert's or update's, per call);
past that, the first kept goes. A user's update sets the columns that changed, so
clients that change many different combinations of attributes make many sets."""

_Bind = tuple[str, str, int, Any, Callable[[Any], Any] | None]
"""(rendered name, caller's key, where its value comes from, fixed or default value
or the index in the caller's list, the dialect's bind processor)."""


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
    binds: list[_Bind], positional: bool, sizes: Mapping[str, int] | None = None
) -> Callable[[Mapping[str, Any]], Any]:
    """The function of a call's parameters giving the driver's, for these binds.

    Written out per statement, one expression per bind (``g["team_pk"]``, a constant,
    ``g.get("version", c3)``, ``l0[7]`` for the 8th value of an IN list, ``p14(v[14])``
    for a bind processor), instead of a loop deciding that for each bind on every
    call: the loop cost about 0.1 µs a bind, and a user create passes some 70 (35 of
    them to the user's insert). Where parameters are positional and none has a
    processor, an IN list of ``sizes[key]`` values passed in its order is ``*l0``."""
    namespace: dict[str, Any] = {}
    lists: dict[str, str] = {}
    body = []
    values = []
    for index, (_name, key, source, constant, _process) in enumerate(binds):
        if source == _GIVEN:
            values.append(f"g[{key!r}]")
        elif source == _ITEM:
            if key not in lists:
                lists[key] = f"l{len(lists)}"
                body.append(f"    {lists[key]} = g[{key!r}]")
            values.append(f"{lists[key]}[{constant}]")
        else:
            namespace[f"c{index}"] = constant
            values.append(f"c{index}" if source == _FIXED else f"g.get({key!r}, c{index})")
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
    elif positional and lists:
        values = _splatted(binds, values, lists, sizes or {})
    if positional:
        body.append(f"    return ({_listed(values)})")
    else:
        named = (f"{name!r}: {value}" for (name, *_bind), value in zip(binds, values, strict=True))
        body.append(f"    return {{{_listed(named)}}}")
    # The text is ours, built from the compiled statement: nothing from a request.
    exec("def parameters(g):\n" + "\n".join(body), namespace)
    function: Callable[[Mapping[str, Any]], Any] = namespace["parameters"]
    return function


def _unexpanded(params: Mapping[str, Any]) -> Any:
    raise AssertionError("a plan with IN lists runs as one of its expanded plans")


def _splatted(
    binds: list[_Bind], values: list[str], lists: Mapping[str, str], sizes: Mapping[str, int]
) -> list[str]:
    """``values`` with each run ``l0[0], l0[1], ..., l0[n-1]`` (a whole list of the
    plan's length ``n``, in order) written ``*l0``."""
    out: list[str] = []
    index = 0
    while index < len(binds):
        _name, key, source, _position, _process = binds[index]
        size = sizes.get(key, 0) if source == _ITEM else 0
        run = [bind[1:4] for bind in binds[index : index + size]]
        if size and run == [(key, _ITEM, position) for position in range(size)]:
            out.append(f"*{lists[key]}")
            index += size
        else:
            out.append(values[index])
            index += 1
    return out


def _keep(
    cache: dict[Any, _Plan], lock: threading.Lock, key: Any, plan: _Plan, limit: int
) -> _Plan:
    """Keep ``plan`` under ``key`` in ``cache``, dropping the oldest kept past ``limit``.

    Readers only ``get``; adding and evicting take ``lock``, so that no thread evicts
    while another walks the dict (PostgreSQL's requests run on worker threads)."""
    with lock:
        while len(cache) >= limit:
            cache.pop(next(iter(cache)), None)
        cache[key] = plan
    return plan


def _is_datetime(type_: Any) -> bool:
    impl = type_.impl if isinstance(type_, TypeDecorator) else type_
    return isinstance(impl, DateTime)


def _last_value_kept(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` that answers again for the value it was last given, without running.

    For datetimes: SQLite's bind processor (the zone check, then the text form) costs
    about 5 µs, and a write passes the same time many times over (a row's
    ``created`` and ``last_modified``; the audit record of each of a 100-member add's
    events, which share the write's time). The value and its result are kept as one
    tuple, replaced whole, so that threads (PostgreSQL's requests run on worker
    threads) never pair one value with another's result."""
    kept: tuple[Any, Any] = (object(), None)

    def process_kept(value: Any) -> Any:
        nonlocal kept
        last = kept
        if last[0] is value:
            return last[1]
        result = process(value)
        kept = (value, result)
        return result

    return process_kept


_KEPT: dict[tuple[str, Any], Callable[[Any], Any]] = {}

STATEMENT_LOGS: dict[Connection, list[tuple[Any, ...]]] = {}
"""Connections whose statements are being logged (a SQLite group of writes, see
``store.db``), with their logs: each statement but a SELECT that :class:`Prepared` runs
on one is appended as ``("driver", sql, parameters, executemany)``."""


def _kept_processor(
    type_: Any, dialect: Dialect, process: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """:func:`_last_value_kept` of ``process``, one for every bind of an equal type: a
    row's ``created`` and ``last_modified`` columns are two binds of one time, which
    is then turned into text once."""
    key = type_._static_cache_key
    if not isinstance(key, tuple):  # a type that cannot say what makes it equal
        return _last_value_kept(process)
    kept = _KEPT.get((dialect.name, key))
    if kept is None:
        kept = _KEPT.setdefault((dialect.name, key), _last_value_kept(process))
    return kept


class _Plan:
    """One statement compiled for one dialect (and one set of insert columns).

    A statement with IN lists (``lists``, the callers' keys of them) runs as one of
    its :meth:`expanded` plans, one per set of list lengths; an insert of several rows
    as one of its :meth:`multirow` plans."""

    __slots__ = (
        "_by_name",
        "_compiled",
        "_lock",
        "_sized",
        "converted",
        "lists",
        "parameters",
        "positional",
        "row",
        "sql",
    )

    def __init__(
        self,
        stmt: ClauseElement,
        dialect: Dialect,
        keys: tuple[str, ...] | None,
        *,
        for_rows: bool = False,
    ):
        # ``for_rows``: compiled as SQLAlchemy compiles an insert of several rows, which
        # tells the text of its row in VALUES (``insert_single_values_expr``).
        columns = list(keys) if keys else None
        compiled: Any = stmt.compile(dialect=dialect, column_keys=columns, for_executemany=for_rows)
        if getattr(compiled, "_numeric_binds", False) or compiled.literal_execute_params:
            raise ValueError("Prepared does not support this statement's parameters")
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
        lists: list[str] = []
        for bind, name in names.items():
            if bind.callable is not None:
                raise ValueError("Prepared does not support callable bind values")
            process = bind.type._cached_bind_processor(dialect)
            if process is not None and _is_datetime(bind.type):
                process = _kept_processor(bind.type, dialect, process)
            if bind.expanding:
                if bind.type._is_tuple_type or compiled.escaped_bind_names:
                    raise ValueError("Prepared does not support this expanding (IN) parameter")
                by_name[name] = (bind.key, _ITEM, None, process)
                if bind.key not in lists:
                    lists.append(bind.key)
            elif not bind.required and bind.value is not None:
                by_name[name] = (bind.key, _FIXED, bind.value, process)
            elif bind.key in defaults:
                by_name[name] = (bind.key, _DEFAULT, defaults[bind.key], process)
            else:
                by_name[name] = (bind.key, _GIVEN, None, process)
        self._by_name = by_name
        self._compiled = compiled
        self._sized: dict[Any, _Plan] = {}
        self._lock = threading.Lock()
        self.lists = tuple(lists)
        self.parameters: Callable[[Any], Any] = _unexpanded
        if not self.lists:
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

    def _kept(self, size: Any, make: Callable[[], _Plan]) -> _Plan:
        """The derived plan for ``size``, made once and kept (at most SIZED_PLANS)."""
        plan = self._sized.get(size)
        if plan is None:
            plan = _keep(self._sized, self._lock, size, make(), SIZED_PLANS)
        return plan

    def _derived(self, sql: str, parameters: Callable[[Any], Any]) -> _Plan:
        """A plan of the same statement (same result rows), as other SQL."""
        plan = _Plan.__new__(_Plan)
        plan.sql, plan.parameters, plan.positional = sql, parameters, self.positional
        plan.row, plan.converted, plan.lists = self.row, self.converted, ()
        return plan

    def expanded(self, sizes: tuple[int, ...]) -> _Plan:
        """This plan for IN lists of these lengths (in the order of ``lists``)."""
        return self._kept(sizes, lambda: self._expand(sizes))

    def _expand(self, sizes: tuple[int, ...]) -> _Plan:
        # SQLAlchemy expands the lists as it would for an execution with lists of these
        # lengths: the SQL, and which name of it is which list's which value.
        given = {key: None for key, source, *_rest in self._by_name.values() if source == _GIVEN}
        lengths = dict(zip(self.lists, sizes, strict=True))
        state = self._compiled.construct_expanded_state(
            {**given, **{key: [None] * size for key, size in lengths.items()}}
        )
        by_name: dict[str, tuple[str, int, Any, Callable[[Any], Any] | None]] = dict(self._by_name)
        for name, expanded in state.parameter_expansion.items():
            key, _source, _constant, process = self._by_name[name]
            for index, item in enumerate(expanded):
                by_name[item] = (key, _ITEM, index, process)
        order = state.positiontup if self.positional else list(state.parameters)
        binds = [(name, *by_name[name]) for name in (order or [])]
        return self._derived(state.statement, _binder(binds, self.positional, lengths))

    def multirow(self, rows: int) -> _Plan:
        """This one-row insert as an insert of ``rows`` rows in one statement; its
        ``parameters`` takes the list of the rows' parameters."""
        return self._kept(("rows", rows), lambda: self._multirow(rows))

    def _multirow(self, rows: int) -> _Plan:
        compiled = self._compiled
        one = compiled.insert_single_values_expr if compiled.isinsert else None
        group = f"({one})"
        names = list(compiled.positiontup if self.positional else self._by_name)
        marks = {name: compiled.bindtemplate % {"name": name} for name in names}
        # Every parameter is one of the row's: the rows' are all the statement has.
        if (
            one is None
            or self.lists
            or self.sql.count(group) != 1
            or any(self.sql.count(mark) != group.count(mark) for mark in marks.values())
            or (self.positional and sum(group.count(m) for m in set(marks.values())) != len(names))
        ):
            raise ValueError(
                "Prepared.insert_rows needs an INSERT ... RETURNING of one row's VALUES"
            )
        binds = [(name, *self._by_name[name]) for name in names]
        if rows == 1:  # the one-row statement, as SQLAlchemy runs a single row
            one_row = self.parameters
            return self._derived(self.sql, lambda batch: one_row(batch[0]))
        if self.positional:
            row_values = self.parameters
            sql = self.sql.replace(group, ", ".join([group] * rows))

            def parameters(batch: Sequence[Mapping[str, Any]]) -> Any:
                return tuple(itertools.chain.from_iterable(map(row_values, batch)))

            return self._derived(sql, parameters)
        # Named parameters: each row's are renamed ``name__i``, as SQLAlchemy does.
        row_values = _binder(binds, positional=True)
        keys = tuple(f"{name}__{index}" for index in range(rows) for name in names)
        if set(keys) & set(self._by_name):
            raise ValueError("Prepared cannot rename this insert's parameters per row")
        # The group as text and marks, alternately (marks at odd places).
        pattern = "|".join(re.escape(marks[name]) + r"(?!\w)" for name in names)
        parts = re.split(f"({pattern})", group)
        by_mark = {mark: name for name, mark in marks.items()}
        template = compiled.bindtemplate
        groups = (
            "".join(
                template % {"name": f"{by_mark[part]}__{index}"} if odd % 2 else part
                for odd, part in enumerate(parts)
            )
            for index in range(rows)
        )
        sql = self.sql.replace(group, ", ".join(groups))

        def named(batch: Sequence[Mapping[str, Any]]) -> Any:
            values = itertools.chain.from_iterable(map(row_values, batch))
            return dict(zip(keys, values, strict=True))

        return self._derived(sql, named)

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

    __slots__ = ("_keyed", "_lock", "_plans", "_row_plans", "stmt")

    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._plans: dict[tuple[str, tuple[str, ...] | None], _Plan] = {}
        self._row_plans: dict[tuple[str, tuple[str, ...]], _Plan] = {}
        self._lock = threading.Lock()
        # Inserts and updates compile for the columns a call gives.
        self._keyed = bool(getattr(stmt, "is_insert", False) or getattr(stmt, "is_update", False))

    def _plan(self, conn: Connection, keys: tuple[str, ...] | None = None) -> _Plan:
        dialect = conn.dialect
        plan = self._plans.get((dialect.name, keys))
        if plan is None:
            # An update compiles per set of columns it sets (a user's, those that
            # changed): bounded, as the sized plans are.
            plan = _Plan(self.stmt, dialect, keys)
            _keep(self._plans, self._lock, (dialect.name, keys), plan, KEYED_PLANS)
        return plan

    def _plan_for(self, conn: Connection, params: Mapping[str, Any]) -> _Plan:
        """The plan for a call with ``params``: for its IN lists' lengths, if it has any."""
        plan = self._plan(conn, tuple(params) if self._keyed else None)
        if plan.lists:
            return plan.expanded(tuple([len(params[key]) for key in plan.lists]))
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
            log = STATEMENT_LOGS.get(conn)
            if log is not None and not plan.sql.startswith("SELECT"):
                log.append(("driver", plan.sql, params, many))
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
        plan = self._plan_for(conn, params)
        cursor = self._cursor(conn, plan, plan.parameters(params))
        return plan.make_rows(cursor.fetchall())

    def dicts(self, conn: Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """All result rows as dicts by column name (cheaper than rows' ``_mapping``)."""
        plan = self._plan_for(conn, params)
        cursor = self._cursor(conn, plan, plan.parameters(params))
        assert plan.row is not None
        names = plan.row._fields
        if not plan.converted:
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        convert = plan._convert
        return [dict(zip(names, convert(row), strict=True)) for row in cursor.fetchall()]

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        plan = self._plan_for(conn, params)
        cursor = self._cursor(conn, plan, plan.parameters(params))
        row = cursor.fetchone()
        cursor.close()
        return None if row is None else plan.make_row(row)

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        row = self.first(conn, params)
        return None if row is None else row[0]

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Execute a statement that returns no rows; the number of rows it touched."""
        plan = self._plan_for(conn, params)
        cursor = self._cursor(conn, plan, plan.parameters(params))
        count = cursor.rowcount
        cursor.close()
        return int(count)

    def many(self, conn: Connection, batch: Sequence[Mapping[str, Any]]) -> None:
        """Execute for each parameter set (an insert's rows; no RETURNING)."""
        if not batch:
            return
        plan = self._plan(conn, tuple(batch[0]) if self._keyed else None)
        if plan.lists:
            raise ValueError("Prepared.many does not support expanding (IN list) parameters")
        cursor = self._cursor(conn, plan, [plan.parameters(p) for p in batch], many=True)
        cursor.close()

    def insert_rows(self, conn: Connection, batch: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Insert the rows of ``batch`` (each with the same keys) with one statement, a
        multi-row ``VALUES``, as SQLAlchemy's "insertmanyvalues" does for an insert
        with ``RETURNING``: the rows that gives. The caller keeps batches to a size the
        database takes (parameters per statement). An insert without ``RETURNING`` is
        :meth:`many`'s."""
        if not batch:
            return []
        if not self._keyed or not getattr(self.stmt, "is_insert", False):
            raise ValueError("Prepared.insert_rows runs an INSERT")
        keys = (conn.dialect.name, tuple(batch[0]))
        one = self._row_plans.get(keys)
        if one is None:
            one = self._row_plans[keys] = _Plan(self.stmt, conn.dialect, keys[1], for_rows=True)
        plan = one.multirow(len(batch))
        cursor = self._cursor(conn, plan, plan.parameters(batch))
        return plan.make_rows(cursor.fetchall())
