"""Compile SCIM filters and ``sortBy`` into SQL over the common model.

Every filter becomes one SQLAlchemy expression evaluated by the database: values
travel only as bound parameters, attribute names only as columns chosen from a
fixed table. Nothing loads a team's users into Python to filter them.
Multi-valued attributes and memberships become ``EXISTS`` sub-queries.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Table,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from ..scim.errors import InvalidFilter, InvalidValue
from ..scim.filter import And, AttrPath, Compare, Node, Not, Or, Present, ValuePath, unstorable
from ..scim.schemas import GROUP, USER, Attribute, ResourceType
from .mapping import USER_COLUMNS, USER_MULTI_VALUED, VALUE_COLUMNS
from .tables import Group, Membership, User, UserValue

__all__ = ["compile_filter", "member_condition", "parse_datetime", "sort_expression"]

users: Table = User.__table__  # type: ignore[attr-defined]
values: Table = UserValue.__table__  # type: ignore[attr-defined]
groups: Table = Group.__table__  # type: ignore[attr-defined]
memberships: Table = Membership.__table__  # type: ignore[attr-defined]

Col = ColumnElement[Any]

_USER_PATHS: dict[tuple[str, ...], str] = {
    tuple(p.lower() for p in path): column for path, column in USER_COLUMNS
}
_FOLDED = {"user_name": "user_name_ci", "value": "value_ci", "display_name": "display_name_ci"}


def _folded(table: Table, column: str) -> Col | None:
    """The case-folded twin of ``table.column``, where the table keeps one."""
    name = _FOLDED.get(column)
    return table.c[name] if name is not None and name in table.c else None


_META = {"created": "created", "lastmodified": "last_modified"}


def parse_datetime(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidFilter(f"{text!r} is not an RFC 3339 dateTime.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in the year 0 in UTC
        raise InvalidFilter(f"{text!r} is outside the years 1 to 9999 in UTC.") from None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _compare(col: Col, op: str, value: Any, attr: Attribute, *, folded: Col | None) -> Col:
    """``col op value`` honouring the attribute's type and caseExact."""
    kind = attr.type
    if value is None:
        if op == "eq":
            return col.is_(None)
        if op == "ne":
            return col.is_not(None)
        raise InvalidFilter(f"Operator '{op}' cannot compare with null.")
    if kind == "boolean":
        if not isinstance(value, bool) or op not in ("eq", "ne"):
            raise InvalidFilter(f"'{attr.name}' is a boolean: use eq or ne with true or false.")
        if attr.name == "primary" and (op == "eq") != value:
            # An element without "primary" is not the primary one (RFC 7643 §2.4).
            return or_(col.is_(False), col.is_(None))
        return col == value if op == "eq" else or_(col != value, col.is_(None))
    if kind == "dateTime":
        if not isinstance(value, str):
            raise InvalidFilter(f"'{attr.name}' is a dateTime: compare it with a quoted string.")
        if op in ("co", "sw", "ew"):
            raise InvalidFilter(f"Operator '{op}' does not apply to dateTime '{attr.name}'.")
        value = parse_datetime(value)
    elif kind in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidFilter(f"'{attr.name}' is a number: compare it with a number.")
    elif not isinstance(value, str):
        raise InvalidFilter(f"'{attr.name}' is a string: compare it with a quoted string.")
    elif (problem := unstorable(value)) is not None:
        # Bound as a parameter, it would fail in the driver or the database.
        raise InvalidFilter(f"'{attr.name}' cannot hold {problem}.")
    elif not attr.case_exact:
        if folded is not None:
            col, value = folded, value.casefold()
        else:
            col, value = func.lower(col), value.lower()
    return _operator(col, op, value)


_ORDERING = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _operator(col: Col, op: str, value: Any) -> Col:
    if op == "eq":
        equal: Col = col == value
        return equal
    if op == "ne":
        return or_(col != value, col.is_(None))
    if op in ("co", "sw", "ew"):
        pattern = _escape_like(value)
        pattern = {"co": f"%{pattern}%", "sw": f"{pattern}%", "ew": f"%{pattern}"}[op]
        return col.like(pattern, escape="\\")
    if op in _ORDERING:
        result: Col = _ORDERING[op](col, value)
        return result
    raise InvalidFilter(f"Unknown operator '{op}'.")


def _negate(cond: Col) -> Col:
    """``not (cond)`` in two-valued logic.

    A comparison with a NULL column is NULL in SQL, and ``NOT NULL`` is NULL too, so
    a plain ``NOT`` would drop resources that lack the attribute. In SCIM such a
    comparison is simply false, and its negation true.
    """
    return not_(func.coalesce(cond, false(), type_=Boolean))


_TEXT_TESTS: dict[str, Callable[[str, str], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "co": lambda have, want: want in have,
    "sw": str.startswith,
    "ew": str.endswith,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _present(col: Col, attr: Attribute) -> Col:
    if attr.type in ("string", "reference", "binary"):
        return and_(col.is_not(None), col != "")
    return col.is_not(None)


class _Compiler:
    """Compile one filter for one resource type."""

    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt
        self.table = users if rt is USER else groups

    def node(self, node: Node) -> Col:
        if isinstance(node, And):
            return and_(self.node(node.left), self.node(node.right))
        if isinstance(node, Or):
            return or_(self.node(node.left), self.node(node.right))
        if isinstance(node, Not):
            return _negate(self.node(node.expr))
        if isinstance(node, Compare | Present) and _is_schemas(node.path):
            return self._schemas(node)
        if isinstance(node, Compare):
            return self.term(
                node.path,
                lambda col, attr, folded: _compare(col, node.op, node.value, attr, folded=folded),
            )
        if isinstance(node, Present):
            return self.term(node.path, lambda col, attr, folded: _present(col, attr))
        if isinstance(node, ValuePath):
            return self.value_path(node)
        raise InvalidFilter("Unsupported filter expression.")

    def _schemas(self, node: Compare | Present) -> Col:
        """``schemas`` (RFC 7643 §3): the core schema's URN, plus each extension's URN
        when the resource has attributes of it. URNs compare case-insensitively."""
        candidates: list[tuple[str, Col]] = [(self.rt.schema.id, true())]
        for extension, _required in self.rt.extensions:
            columns = [
                users.c[column]
                for path, column in USER_COLUMNS
                if self.rt is USER and path[0] == extension.id
            ]
            if columns:
                candidates.append((extension.id, or_(*(c.is_not(None) for c in columns))))
        if isinstance(node, Present):
            return true()
        if node.value is None and node.op in ("eq", "ne"):
            return true() if node.op == "ne" else false()
        if not isinstance(node.value, str):
            raise InvalidFilter("'schemas' holds URNs: compare it with a quoted string.")
        test = _TEXT_TESTS[node.op]
        want = node.value.casefold()
        wanted = [cond for urn, cond in candidates if test(urn.casefold(), want)]
        return or_(*wanted) if wanted else false()

    def resolve(self, path: AttrPath) -> tuple[Attribute, Attribute | None, str | None]:
        resolved = self.rt.resolve(path.urn, path.attr, path.sub)
        if resolved is None:
            raise InvalidFilter(f"'{path}' is not an attribute of {self.rt.name} resources.")
        urn = resolved.schema.id if resolved.schema is not None else None
        return resolved.attribute, resolved.sub_attribute, urn

    def term(self, path: AttrPath, make: Callable[[Col, Attribute, Col | None], Col]) -> Col:
        attr, sub, urn = self.resolve(path)
        top = attr.name
        if top == "meta":
            return self._meta(sub, make)
        if top == "id":
            return make(self.table.c.id, attr, None)
        if top == "externalId":
            return make(self.table.c.external_id, attr, None)
        if self.rt is GROUP:
            return self._group_term(attr, sub, make)
        return self._user_term(attr, sub, urn, make)

    def _meta(
        self, sub: Attribute | None, make: Callable[[Col, Attribute, Col | None], Col]
    ) -> Col:
        if sub is None:
            raise InvalidFilter("Filter on a sub-attribute of meta, e.g. meta.lastModified.")
        key = sub.name.lower()
        if key in _META:
            return make(self.table.c[_META[key]], sub, None)
        if key == "resourcetype":
            return make(literal(self.rt.name), sub, None)
        raise InvalidFilter(f"Filtering on meta.{sub.name} is not supported.")

    def _user_term(
        self,
        attr: Attribute,
        sub: Attribute | None,
        urn: str | None,
        make: Callable[[Col, Attribute, Col | None], Col],
    ) -> Col:
        if attr.name in USER_MULTI_VALUED:
            target = sub or attr.sub("value")
            if target is None:
                raise InvalidFilter(f"Name a sub-attribute of '{attr.name}'.")
            cond = self._value_cond(target, make)
            return exists(self._value_rows(attr.name).where(cond))
        if attr.name == "groups":
            target = sub or attr.sub("value")
            assert target is not None
            return self._user_groups(target, make)
        key: tuple[str, ...] = (attr.name.lower(),)
        if urn is not None and urn != self.rt.schema.id:
            key = (urn.lower(), *key)
        if attr.type == "complex":
            if sub is None:
                subs = [s for s in attr.sub_attributes if (*key, s.name.lower()) in _USER_PATHS]
                return or_(*(self._column_term((*key, s.name.lower()), s, make) for s in subs))
            key = (*key, sub.name.lower())
        return self._column_term(key, sub or attr, make)

    def _column_term(
        self,
        key: tuple[str, ...],
        attr: Attribute,
        make: Callable[[Col, Attribute, Col | None], Col],
    ) -> Col:
        column = _USER_PATHS.get(key)
        if column is None:
            raise InvalidFilter(f"Filtering on '{'.'.join(key)}' is not supported.")
        return make(users.c[column], attr, _folded(users, column))

    def _value_rows(self, attr_name: str) -> Any:
        return select(literal(1)).where(values.c.user_pk == users.c.pk, values.c.attr == attr_name)

    def _value_cond(self, sub: Attribute, make: Callable[[Col, Attribute, Col | None], Col]) -> Col:
        column = VALUE_COLUMNS.get(sub.name)
        if column is None:
            raise InvalidFilter(f"Filtering on '{sub.name}' is not supported.")
        return make(values.c[column], sub, _folded(values, column))

    def _user_groups(
        self, sub: Attribute, make: Callable[[Col, Attribute, Col | None], Col]
    ) -> Col:
        column = {"value": groups.c.id, "display": groups.c.display_name}.get(sub.name)
        if column is None:
            raise InvalidFilter(f"Filtering on groups.{sub.name} is not supported.")
        q = (
            select(literal(1))
            .select_from(memberships.join(groups, groups.c.pk == memberships.c.group_pk))
            .where(memberships.c.user_pk == users.c.pk, make(column, sub, None))
        )
        return exists(q)

    def _group_term(
        self,
        attr: Attribute,
        sub: Attribute | None,
        make: Callable[[Col, Attribute, Col | None], Col],
    ) -> Col:
        if attr.name == "displayName":
            return make(groups.c.display_name, attr, groups.c.display_name_ci)
        if attr.name == "members":
            target = sub or attr.sub("value")
            assert target is not None
            return exists(self._member_rows().where(self._member_cond(target, make)))
        raise InvalidFilter(f"Filtering on '{attr.name}' is not supported.")

    def _member_rows(self) -> Any:
        return select(literal(1)).where(memberships.c.group_pk == groups.c.pk)

    def _member_cond(
        self, sub: Attribute, make: Callable[[Col, Attribute, Col | None], Col]
    ) -> Col:
        if sub.name == "value":
            member_user = select(users.c.id).where(users.c.pk == memberships.c.user_pk)
            child = groups.alias("child")
            member_group = select(child.c.id).where(child.c.pk == memberships.c.child_group_pk)
            return or_(
                make(member_user.scalar_subquery(), sub, None),
                make(member_group.scalar_subquery(), sub, None),
            )
        if sub.name == "type":
            is_user = memberships.c.user_pk.is_not(None)
            return or_(
                and_(is_user, make(literal("User"), sub, None)),
                and_(~is_user, make(literal("Group"), sub, None)),
            )
        raise InvalidFilter(f"Filtering on members.{sub.name} is not supported.")

    def value_path(self, node: ValuePath) -> Col:
        attr, sub, _urn = self.resolve(node.path)
        if sub is not None or not attr.multi_valued:
            raise InvalidFilter(f"'{node.path}[...]' needs a multi-valued attribute.")
        inner = _Inner(attr)
        if self.rt is USER and attr.name in USER_MULTI_VALUED:
            cond = inner.node(node.filter, lambda s, make: self._value_cond(s, make))
            return exists(self._value_rows(attr.name).where(cond))
        if self.rt is USER and attr.name == "groups":
            return inner.node(node.filter, lambda s, make: self._user_groups(s, make))
        if self.rt is GROUP and attr.name == "members":
            cond = inner.node(node.filter, lambda s, make: self._member_cond(s, make))
            return exists(self._member_rows().where(cond))
        raise InvalidFilter(f"Filtering on '{attr.name}' is not supported.")


class _Inner:
    """The filter inside ``attr[...]``: its paths name sub-attributes of ``attr``."""

    def __init__(self, attr: Attribute) -> None:
        self.attr = attr

    def node(self, node: Node, leaf: Callable[[Attribute, Any], Col]) -> Col:
        if isinstance(node, And):
            return and_(self.node(node.left, leaf), self.node(node.right, leaf))
        if isinstance(node, Or):
            return or_(self.node(node.left, leaf), self.node(node.right, leaf))
        if isinstance(node, Not):
            return _negate(self.node(node.expr, leaf))
        if isinstance(node, Compare | Present):
            if node.path.urn or node.path.sub:
                raise InvalidFilter(f"'{node.path}' is not a sub-attribute of '{self.attr.name}'.")
            sub = self.attr.sub(node.path.attr)
            if sub is None:
                raise InvalidFilter(
                    f"'{node.path.attr}' is not a sub-attribute of '{self.attr.name}'."
                )
            if isinstance(node, Compare):
                op, value = node.op, node.value
                return leaf(sub, lambda col, a, folded: _compare(col, op, value, a, folded=folded))
            return leaf(sub, lambda col, a, folded: _present(col, a))
        raise InvalidFilter("A value filter cannot contain another value filter.")


def _is_schemas(path: AttrPath) -> bool:
    return path.urn is None and path.sub is None and path.attr.lower() == "schemas"


def compile_filter(rt: ResourceType, node: Node | None) -> Col:
    """The SQL condition for ``node`` (``true()`` when there is no filter)."""
    if node is None:
        return true()
    return _Compiler(rt).node(node)


def sort_expression(rt: ResourceType, path: AttrPath) -> Col:
    """The column to ORDER BY for ``sortBy`` (RFC 7644 §3.4.2.3)."""
    compiler = _Compiler(rt)
    attr, sub, urn = compiler.resolve(path)
    table = compiler.table
    if attr.name == "id":
        return table.c.id
    if attr.name == "externalId":
        return table.c.external_id
    if attr.name == "meta" and sub is not None and sub.name.lower() in _META:
        return table.c[_META[sub.name.lower()]]
    if rt is GROUP:
        if attr.name == "displayName":
            return groups.c.display_name_ci
        raise InvalidValue(f"Sorting by '{path}' is not supported.")
    if attr.name in USER_MULTI_VALUED:
        column = VALUE_COLUMNS.get((sub or attr.sub("value") or attr).name)
        if column is None:
            raise InvalidValue(f"Sorting by '{path}' is not supported.")
        folded = _folded(values, column)
        return (
            select(folded if folded is not None else values.c[column])
            .where(values.c.user_pk == users.c.pk, values.c.attr == attr.name)
            .order_by(values.c.primary.desc().nulls_last(), values.c.position)
            .limit(1)
            .scalar_subquery()
        )
    key: tuple[str, ...] = (attr.name.lower(),)
    if urn is not None and urn != rt.schema.id:
        key = (urn.lower(), *key)
    if sub is not None:
        key = (*key, sub.name.lower())
    column_name = _USER_PATHS.get(key)
    if column_name is None:
        raise InvalidValue(f"Sorting by '{path}' is not supported.")
    if (sub or attr).case_exact or (sub or attr).type != "string":
        return users.c[column_name]
    # caseExact=false sorts case-insensitively, like it compares.
    folded = _folded(users, column_name)
    return folded if folded is not None else func.lower(users.c[column_name])


def member_condition(node: Node) -> Col:
    """SQL condition on ``scim_membership`` rows for the filter of ``members[...]``."""
    compiler = _Compiler(GROUP)
    members = GROUP.schema.attribute("members")
    assert members is not None
    return _Inner(members).node(node, lambda sub, make: compiler._member_cond(sub, make))
