"""Each hot query uses its index: the query plans of what an IdP hammers, on both databases.

An identity provider sends the same few requests again and again: look a user up by
userName, read one by id, deactivate one with a PATCH, create one (with the
re-provisioning probes and the userName check), page through all users, read a group
without its members, add and remove members, delete a user; and every request looks
its API key up. Each test here serves one such request on a seeded database, records
every statement the gateway sends for it (its prepared fast path included), then asks
the database how it runs each SELECT, UPDATE and DELETE with the parameters it was
sent, and fails with the request, the SQL and the plan when one does not use an index.

A plan fails when it reads a large table in full (SQLite ``SCAN t``, a full index scan
included, or an automatic index built for the query; PostgreSQL ``Seq Scan``, or an
index scan without an index condition), or when its only index condition is a scope
that many rows share (the team, a group, an attribute name): such a plan reads all of
a team's users to find five of them, however many the team has. Only paging reads a
team's users by the team alone, and then in index order, without sorting them.

The verdicts do not hang on the test data being small:

- PostgreSQL plans with sequential scans turned off (``enable_seqscan``), so that a
  scan that remains means no index can serve the query; where the plan still reads
  too much, hash and merge joins, then sorts, are turned off too (see
  ``PG_PREFER_INDEXES``). Each test has a schema of its own, analyzed after seeding,
  so the statistics describe this test's data only.
- SQLite has no such switches; its plans are checked twice: without statistics, as
  the gateway runs it (it never runs ``ANALYZE``), and after ``ANALYZE``.
- Both databases hold other customers (500 teams, with keys, users, groups, values
  and memberships) besides this team's directory, so that this team is a small part
  of every table, as one customer is in a shared database.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Connection, Engine, insert, select, text
from starlette.testclient import TestClient

from gateway.store.db import make_engine
from gateway.store.tables import metadata
from tests.conftest import BACKENDS, GROUP_SCHEMA, PATCH_OP, POSTGRES_URL, USER_SCHEMA
from tests.statements import Statement, engine_of, recorded
from tests.support import team_pk_of

if TYPE_CHECKING:
    from httpx2 import Response  # what Starlette's TestClient returns

LARGE_TABLES = frozenset(
    {
        "scim_user",
        "scim_user_value",
        "scim_membership",
        "scim_group",
        "scim_key",
        "team",
        "audit_record",
        "outbox_event",
        "webhook_delivery",
    }
)
"""Tables that grow with the customers and their directories."""

SCOPE_COLUMNS = frozenset({"team_pk", "group_pk", "attr"})
"""Columns that many rows share: an index search on these alone reads a whole team,
group or attribute."""

CHECKED_VERBS = ("SELECT", "UPDATE", "DELETE", "WITH")
"""Statements whose plan is checked; an INSERT's VALUES has no plan to choose."""


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each backend, as in conftest; but on PostgreSQL a schema of this test's own, so
    that the planner's statistics describe this test's data, whatever ran before."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
        return
    request.getfixturevalue("postgres_url")  # skips when no PostgreSQL is configured
    assert POSTGRES_URL is not None
    schema = "plans_" + uuid.uuid4().hex[:12]
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- seeding -------------------------------------------------------------------------

BACKGROUND_TEAMS = 500
"""Other customers: each a team, a key, users (with this team's first userNames) and
groups."""
BACKGROUND_USERS = 10
BACKGROUND_GROUPS = 10
BULK_USERS = 100
"""This team's directory before the users the requests act on."""
BULK_GROUPS = 20
USERS = 30
"""Users created through the API; the last three are deactivated."""
IN_GROUP = 20


@dataclass(frozen=True)
class Seeded:
    """What the seeded team holds, for the requests to name."""

    bulk_ids: list[str]
    user_ids: list[str]
    group_id: str
    """A group of the first 20 API users."""
    other_group_id: str
    """A group of API users 10 to 24."""


def _user(i: int, *, active: bool = True) -> dict[str, Any]:
    name = f"user{i:03d}@example.com"
    return {
        "schemas": [USER_SCHEMA],
        "userName": name,
        "externalId": f"00u{i:017d}",
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
        "displayName": f"Given{i} Family{i}",
        "active": active,
        "emails": [
            {"value": name, "type": "work", "primary": True},
            {"value": f"home{i}@example.org", "type": "home"},
        ],
        "phoneNumbers": [{"value": f"+1 555 {i:07d}", "type": "work"}],
    }


def _create(client: TestClient, path: str, body: dict[str, Any]) -> str:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.text
    created: str = response.json()["id"]
    return created


def _group(members: Sequence[str], name: str) -> dict[str, Any]:
    return {
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "members": [{"value": m} for m in members],
    }


def _insert(conn: Connection, table: str, rows: list[dict[str, Any]], key: str) -> list[int]:
    """Insert ``rows`` into ``table``; their pks, in order (found by the unique ``key``)."""
    t = metadata.tables[table]
    conn.execute(insert(t), rows)
    pks = {k: pk for k, pk in conn.execute(select(t.c[key], t.c.pk))}
    return [pks[row[key]] for row in rows]


def _directories(
    conn: Connection, teams: Sequence[tuple[int, Sequence[str], int]], now: datetime
) -> list[str]:
    """Users (two values each) and groups (each user in two of its team's) for each
    (team pk, userNames, number of groups); the users' ids, in order."""
    users = [(team, name, str(uuid.uuid4())) for team, names, _ in teams for name in names]
    user_pks = _insert(
        conn,
        "scim_user",
        [
            {
                "id": user_id,
                "team_pk": team,
                "user_name": name,
                "user_name_ci": name.casefold(),
                "external_id": "00b" + uuid.uuid4().hex[:17],
                "active": True,
                "state": "active",
                "created": now,
                "last_modified": now,
                "version": 1,
            }
            for team, name, user_id in users
        ],
        "id",
    )
    group_rows = [(team, g) for team, _, count in teams for g in range(count)]
    group_pks = _insert(
        conn,
        "scim_group",
        [
            {
                "id": str(uuid.uuid4()),
                "team_pk": team,
                "display_name": f"Group {g}",
                "display_name_ci": f"group {g}",
                "created": now,
                "last_modified": now,
                "version": 1,
            }
            for team, g in group_rows
        ],
        "id",
    )
    groups_of: dict[int, list[int]] = {}
    for (team, _), pk in zip(group_rows, group_pks, strict=True):
        groups_of.setdefault(team, []).append(pk)
    conn.execute(
        insert(metadata.tables["scim_membership"]),
        [
            {"team_pk": team, "group_pk": groups[(n + k) % len(groups)], "user_pk": pk}
            for n, ((team, _, _), pk) in enumerate(zip(users, user_pks, strict=True))
            for groups in [groups_of[team]]
            for k in (0, 1)
        ],
    )
    conn.execute(
        insert(metadata.tables["scim_user_value"]),
        [
            {
                "user_pk": pk,
                "team_pk": team,
                "attr": attr,
                "position": 0,
                "value": value,
                "value_ci": value.casefold(),
                "type": "work",
            }
            for (team, name, _), pk in zip(users, user_pks, strict=True)
            for attr, value in (("emails", name), ("phoneNumbers", f"+1 555 {pk:07d}"))
        ],
    )
    return [user_id for _, _, user_id in users]


def _background(conn: Connection, team_pk: int) -> list[str]:
    """Other teams with their keys and directories, then this team's bulk of users;
    the bulk's ids, in order."""
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:8]
    team_pks = _insert(
        conn,
        "team",
        [
            {"slug": f"bg-{tag}-{n}", "name": "", "scim_enabled": True, "created": now}
            for n in range(BACKGROUND_TEAMS)
        ],
        "slug",
    )
    conn.execute(
        insert(metadata.tables["scim_key"]),
        [
            {
                "key_id": uuid.uuid4().hex[:12],
                "team_pk": pk,
                "name": "idp",
                "secret_hash": "0" * 64,
                "created": now,
            }
            for pk in team_pks
        ],
    )
    names = [f"user{i:03d}@example.com" for i in range(BACKGROUND_USERS)]
    _directories(conn, [(pk, names, BACKGROUND_GROUPS) for pk in team_pks], now)
    bulk = [f"bulk{n:05d}@example.com" for n in range(BULK_USERS)]
    return _directories(conn, [(team_pk, bulk, BULK_GROUPS)], now)


def seed(client: TestClient) -> Seeded:
    """Other customers and this team's directory, written straight to the tables (the
    planners need volume, not realism); then, through the API, this team's 30 users
    (the last three deactivated, for re-provisioning), a group of 20 of them and a
    second group that overlaps it."""
    with engine_of(client).begin() as conn:
        bulk = _background(conn, team_pk_of(client))
    ids = [_create(client, "/scim/v2/Users", _user(i, active=i < USERS - 3)) for i in range(USERS)]
    group = _create(client, "/scim/v2/Groups", _group(ids[:IN_GROUP], "Engineering"))
    second = _create(client, "/scim/v2/Groups", _group(ids[10:25], "Sales"))
    return Seeded(bulk_ids=bulk, user_ids=ids, group_id=group, other_group_id=second)


def analyze(engine: Engine) -> None:
    """Gather the statistics the planner reads."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"ANALYZE {', '.join(sorted(LARGE_TABLES))}")
        else:
            conn.exec_driver_sql("ANALYZE")
        conn.commit()


# --- plans ---------------------------------------------------------------------------


@dataclass
class Plan:
    """One statement's plan as the database prints it, and what is wrong with it."""

    text: str
    problems: list[str] = field(default_factory=list)
    scope_wide: dict[str, str] = field(default_factory=dict)
    """Large tables the plan reads by scope columns only (allowed for paging), and the
    condition it reads them by."""
    sorts: bool = False


def verb(statement: Statement) -> str:
    return statement.sql.lstrip().split(None, 1)[0].upper()


def checked(statements: Sequence[Statement]) -> list[Statement]:
    return [s for s in statements if verb(s) in CHECKED_VERBS]


def _table_of(name: str) -> str | None:
    """The large table ``name`` is, or is an alias of (``scim_user_1``)."""
    if name in LARGE_TABLES:
        return name
    base = re.sub(r"_\d+$", "", name)
    return base if base in LARGE_TABLES else None


def _selective(table: str, condition: str) -> bool:
    """Whether an index condition on ``table`` names a column beyond the scope ones."""
    bare = re.sub(r"'(?:[^']|'')*'", "''", condition)  # literals
    bare = re.sub(r"\b\w+\.\w+\b", "", bare)  # other relations' columns
    columns = {column.name for column in metadata.tables[table].columns} | {"rowid"}
    return bool(set(re.findall(r"\b\w+\b", bare)) & columns - SCOPE_COLUMNS)


def _first_params(statement: Statement) -> Any:
    """The parameters of one execution (an executemany's first)."""
    params = statement.params
    if isinstance(params, list):
        return params[0] if params else ()
    return params if params is not None else ()


def _sqlite_plan(conn: Connection, statement: Statement) -> Plan:
    rows = conn.exec_driver_sql(
        "EXPLAIN QUERY PLAN " + statement.sql, _first_params(statement)
    ).fetchall()
    depth: dict[int, int] = {0: -1}
    lines = []
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    plan = Plan("\n".join(lines))
    for *_ids, detail in rows:
        if detail.startswith("USE TEMP B-TREE FOR") and "ORDER BY" in detail:
            plan.sorts = True
        access = re.match(r"(SCAN|SEARCH) (\w+)", detail)
        table = _table_of(access[2]) if access else None
        if access is None or table is None:
            continue
        if access[1] == "SCAN":
            plan.problems.append(f"{detail!r}: reads every row of {table}")
        elif "AUTOMATIC" in detail:
            plan.problems.append(f"{detail!r}: no index on {table} serves this; SQLite builds one")
        else:
            condition = re.search(r"\((.*)\)$", detail)
            if condition is None or not _selective(table, condition[1]):
                plan.scope_wide[table] = condition[1] if condition else detail
    return plan


def _pg_selective(node: dict[str, Any], table: str) -> bool:
    """Whether an index scan (or a tree of bitmaps) picks rows by more than a scope."""
    kind = node["Node Type"]
    children = node.get("Plans", [])
    if kind == "BitmapAnd":
        return any(_pg_selective(child, table) for child in children)
    if kind == "BitmapOr":
        return all(_pg_selective(child, table) for child in children)
    condition = node.get("Index Cond")
    return condition is not None and _selective(table, condition)


def _pg_walk(node: dict[str, Any], plan: Plan) -> None:
    kind: str = node["Node Type"]
    name = node.get("Relation Name")
    table = _table_of(name) if name else None
    if kind in ("Sort", "Incremental Sort"):
        plan.sorts = True
    if table is not None and kind == "Seq Scan":
        plan.problems.append(f"Seq Scan on {table}: no index on {table} serves this")
    if table is not None and kind in ("Index Scan", "Index Only Scan"):
        if node.get("Index Cond") is None:
            index = node.get("Index Name")
            plan.problems.append(f"{kind} using {index} on {table} reads the whole index")
        elif not _pg_selective(node, table):
            plan.scope_wide[table] = node["Index Cond"]
    if table is not None and kind == "Bitmap Heap Scan":
        bitmaps = list(node.get("Plans", []))
        while bitmaps:
            bitmap = bitmaps.pop()
            bitmaps += bitmap.get("Plans", [])
            if bitmap["Node Type"] == "Bitmap Index Scan" and bitmap.get("Index Cond") is None:
                index = bitmap.get("Index Name")
                plan.problems.append(f"Bitmap Index Scan on {index} reads the whole index")
        if not _pg_selective(node["Plans"][0], table):
            plan.scope_wide[table] = node.get("Recheck Cond", "a bitmap")
    for child in node.get("Plans", []):
        _pg_walk(child, plan)


def _pg_plan(conn: Connection, statement: Statement) -> Plan:
    params = _first_params(statement)
    shown = conn.exec_driver_sql("EXPLAIN " + statement.sql, params).scalars().all()
    (tree,) = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement.sql, params).scalar_one()
    plan = Plan("\n".join(shown))
    _pg_walk(tree["Plan"], plan)
    return plan


PG_PREFER_INDEXES = (
    ("enable_seqscan",),
    ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"),
    ("enable_seqscan", "enable_hashjoin", "enable_mergejoin", "enable_sort"),
)
"""Planner methods turned off, in turn, until a plan uses the indexes. A table this
small can make PostgreSQL prefer reading all of it (a hash or merge join over the whole
table, a sort of the whole team for a deep page), where a large one would not; what a
test can know is whether an index path exists, so a plan only fails when it reads too
much however these are set."""


def _judge(plan: Plan, ordered_scope: frozenset[str]) -> Plan:
    for table, condition in sorted(plan.scope_wide.items()):
        if table not in ordered_scope:
            plan.problems.append(
                f"searches {table} by {condition} alone: it reads every row of that team "
                "(or group), not the few rows the request names"
            )
        elif plan.sorts:
            plan.problems.append(f"sorts every row of the team's {table} to return one page")
    return plan


def explain(engine: Engine, statement: Statement, *, ordered_scope: frozenset[str]) -> Plan:
    """The plan of ``statement`` with its own parameters; a read by scope alone is a
    problem unless its table is in ``ordered_scope`` and an index gives the order."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = _judge(_sqlite_plan(conn, statement), ordered_scope)
        else:
            conn.exec_driver_sql("SET LOCAL jit = off")
            tried = []
            for methods in PG_PREFER_INDEXES:
                for method in methods:
                    conn.exec_driver_sql(f"SET LOCAL {method} = off")
                plan = _judge(_pg_plan(conn, statement), ordered_scope)
                tried.append(f"with {', '.join(methods)} off:\n{plan.text}")
                if not plan.problems:
                    break
            plan.text = "\n".join(tried)
        conn.rollback()
    return plan


def plans_of(engine: Engine, statements: Sequence[Statement], hot: Hot) -> dict[str, list[Plan]]:
    """Each statement's plan, by the statistics it was planned with."""
    by_stats: dict[str, list[Plan]] = {}
    if engine.dialect.name == "sqlite":
        by_stats["sqlite, no statistics (as the gateway runs it)"] = [
            explain(engine, s, ordered_scope=hot.ordered_scope) for s in statements
        ]
    analyze(engine)
    by_stats[f"{engine.dialect.name}, after ANALYZE"] = [
        explain(engine, s, ordered_scope=hot.ordered_scope) for s in statements
    ]
    return by_stats


def report(
    hot: Hot, response: Response, statements: Sequence[Statement], by_stats: dict[str, list[Plan]]
) -> str:
    request = f"{response.request.method} {response.request.url}"
    parts = [f"{hot.name} ({request}): a hot query does not use its index"]
    for stats, plans in by_stats.items():
        for n, (statement, plan) in enumerate(zip(statements, plans, strict=True), 1):
            if not plan.problems:
                continue
            parts += [
                f"--- {stats}: statement {n} of {len(statements)}",
                "SQL: " + " ".join(statement.sql.split()),
                f"params: {_first_params(statement)!r}",
                "plan:",
                plan.text,
                "problems:",
                *(f"  - {p}" for p in plan.problems),
            ]
    return "\n".join(parts)


# --- the hot requests ----------------------------------------------------------------


def _patch(client: TestClient, path: str, *ops: dict[str, Any]) -> Response:
    return client.patch(path, json={"schemas": [PATCH_OP], "Operations": list(ops)})


def _deactivate(client: TestClient, user_id: str) -> Response:
    return _patch(
        client, f"/scim/v2/Users/{user_id}", {"op": "replace", "value": {"active": False}}
    )


def _add_members(client: TestClient, group_id: str, user_ids: Sequence[str]) -> Response:
    value = [{"value": u} for u in user_ids]
    return _patch(
        client, f"/scim/v2/Groups/{group_id}", {"op": "add", "path": "members", "value": value}
    )


def _remove_member(client: TestClient, group_id: str, user_id: str) -> Response:
    path = f'members[value eq "{user_id}"]'
    return _patch(client, f"/scim/v2/Groups/{group_id}", {"op": "remove", "path": path})


def _page(first: int, count: int) -> Callable[[TestClient, Seeded], Response]:
    return lambda c, s: c.get("/scim/v2/Users", params={"startIndex": first, "count": count})


def _forget_key_use(client: TestClient, seeded: Seeded) -> None:
    """Clear the key's last use, so that the next request records it (an UPDATE)."""
    with engine_of(client).begin() as conn:
        conn.execute(
            text("UPDATE scim_key SET last_used_at = NULL WHERE team_pk = :team"),
            {"team": team_pk_of(client)},
        )


def _one_user(response: Response, seeded: Seeded) -> None:
    assert response.json()["totalResults"] == 1
    assert response.json()["Resources"][0]["id"] == seeded.user_ids[5]


def _user_in_two_groups(response: Response, seeded: Seeded) -> None:
    body = response.json()
    assert len(body["emails"]) == 2
    assert {g["value"] for g in body["groups"]} == {seeded.group_id, seeded.other_group_id}


def _is_bulk_user(resource: dict[str, Any], seeded: Seeded, n: int) -> None:
    assert resource["id"] == seeded.bulk_ids[n]
    assert resource["userName"] == f"bulk{n:05d}@example.com"
    assert [e["value"] for e in resource["emails"]] == [resource["userName"]]
    assert len(resource["groups"]) == 2


def _reprovisioned(response: Response, seeded: Seeded) -> None:
    assert response.json()["id"] == seeded.user_ids[USERS - 1]
    assert response.json()["active"] is True


def _page_of(first: int, count: int) -> Callable[[Response, Seeded], None]:
    def check(response: Response, seeded: Seeded) -> None:
        ids = [r["id"] for r in response.json()["Resources"]]
        assert ids == (seeded.bulk_ids + seeded.user_ids)[first - 1 : first - 1 + count]
        assert response.json()["totalResults"] == BULK_USERS + USERS

    return check


def _without_members(response: Response, seeded: Seeded) -> None:
    assert response.json()["id"] == seeded.group_id
    assert "members" not in response.json()


def _nothing(*_: Any) -> None:
    return None


@dataclass(frozen=True)
class Hot:
    """One hot request, what it answers, and statements it must be seen to send."""

    name: str
    send: Callable[[TestClient, Seeded], Response]
    status: int
    sends: tuple[tuple[str, str], ...]
    """(verb, table) pairs among the checked statements: the capture saw the request."""
    check: Callable[[Response, Seeded], None] = _nothing
    ordered_scope: frozenset[str] = frozenset()
    """Tables the request may read by the team alone, in index order (a page)."""
    prepare: Callable[[TestClient, Seeded], None] = _nothing


USER_READ = (
    ("SELECT", "scim_key"),
    ("SELECT", "scim_user"),
    ("SELECT", "scim_user_value"),
    ("SELECT", "scim_membership"),
)
"""Reading users rebuilt from their columns and value rows: the bulk, written
straight to the tables, has no ``rendered`` document."""
RENDERED_READ = (("SELECT", "scim_key"), ("SELECT", "scim_user"), ("SELECT", "scim_membership"))
"""Reading users written through the API, served from their ``rendered`` document."""

HOT = [
    Hot(
        "users-filter-userName",
        lambda c, s: c.get(
            "/scim/v2/Users", params={"filter": 'userName eq "USER005@example.com"'}
        ),
        200,
        RENDERED_READ,
        check=_one_user,
    ),
    Hot(
        "users-filter-userName-from-columns",
        lambda c, s: c.get(
            "/scim/v2/Users", params={"filter": 'userName eq "BULK00005@example.com"'}
        ),
        200,
        USER_READ,
        check=lambda r, s: _is_bulk_user(r.json()["Resources"][0], s, 5),
    ),
    Hot(
        "user-get",
        lambda c, s: c.get(f"/scim/v2/Users/{s.user_ids[12]}"),
        200,
        RENDERED_READ,
        check=_user_in_two_groups,
    ),
    Hot(
        "user-get-from-columns",
        lambda c, s: c.get(f"/scim/v2/Users/{s.bulk_ids[7]}"),
        200,
        USER_READ,
        check=lambda r, s: _is_bulk_user(r.json(), s, 7),
    ),
    Hot(
        "user-patch-deactivate",
        lambda c, s: _deactivate(c, s.user_ids[12]),
        200,
        (*RENDERED_READ, ("UPDATE", "scim_user")),
    ),
    Hot(
        "user-create",
        lambda c, s: c.post("/scim/v2/Users", json=_user(900)),
        201,
        (("SELECT", "scim_key"), ("SELECT", "scim_user")),
    ),
    Hot(
        "user-create-reprovisions",
        lambda c, s: c.post("/scim/v2/Users", json=_user(USERS - 1)),
        201,
        (("SELECT", "scim_user"), ("UPDATE", "scim_user")),
        check=_reprovisioned,
    ),
    Hot(
        "users-first-page",
        _page(1, 100),
        200,
        USER_READ,
        check=_page_of(1, 100),
        ordered_scope=frozenset({"scim_user"}),
    ),
    Hot(
        # 90 users of the bulk, rebuilt from their columns, and 10 with documents
        "users-page",
        _page(11, 100),
        200,
        USER_READ,
        check=_page_of(11, 100),
        ordered_scope=frozenset({"scim_user"}),
    ),
    Hot(
        "users-last-page",
        _page(BULK_USERS + 1, 100),
        200,
        RENDERED_READ,
        check=_page_of(BULK_USERS + 1, 100),
        ordered_scope=frozenset({"scim_user"}),
    ),
    Hot(
        "group-get-excluding-members",
        lambda c, s: c.get(
            f"/scim/v2/Groups/{s.group_id}", params={"excludedAttributes": "members"}
        ),
        200,
        (("SELECT", "scim_key"), ("SELECT", "scim_group")),
        check=_without_members,
    ),
    Hot(
        "group-patch-add-members",
        lambda c, s: _add_members(c, s.group_id, s.user_ids[IN_GROUP : IN_GROUP + 5]),
        204,
        (("SELECT", "scim_group"), ("SELECT", "scim_user"), ("UPDATE", "scim_group")),
    ),
    Hot(
        "group-patch-remove-member",
        lambda c, s: _remove_member(c, s.group_id, s.user_ids[1]),
        204,
        (("SELECT", "scim_group"), ("DELETE", "scim_membership")),
    ),
    Hot(
        "user-delete",
        lambda c, s: c.delete(f"/scim/v2/Users/{s.user_ids[7]}"),
        204,
        (("SELECT", "scim_user"), ("DELETE", "scim_user")),
    ),
    Hot(
        "api-key-lookup",
        lambda c, s: c.get(f"/scim/v2/Users/{s.user_ids[0]}"),
        200,
        (("SELECT", "scim_key"), ("UPDATE", "scim_key")),
        prepare=_forget_key_use,
    ),
]


@pytest.fixture
def seeded(client: TestClient) -> Seeded:
    return seed(client)


@pytest.mark.parametrize("hot", HOT, ids=[h.name for h in HOT])
def test_each_hot_query_uses_its_index(client: TestClient, seeded: Seeded, hot: Hot) -> None:
    hot.prepare(client, seeded)
    with recorded(client) as seen:
        response = hot.send(client, seeded)
    assert response.status_code == hot.status, response.text
    hot.check(response, seeded)

    statements = checked(seen)
    sent = {(verb(s), t) for s in statements for t in LARGE_TABLES if s.touches(t)}
    assert set(hot.sends) <= sent, f"{hot.name} sent only {sorted(sent)}"

    by_stats = plans_of(engine_of(client), statements, hot)
    problems = [p for plans in by_stats.values() for plan in plans for p in plan.problems]
    assert not problems, report(hot, response, statements, by_stats)


def test_a_deactivation_sets_only_what_changed(client: TestClient, seeded: Seeded) -> None:
    """A user's write sets the columns whose values change, and no other: a
    deactivation leaves the userName's, externalId's and id's index entries alone (an
    UPDATE that sets a column rewrites its index entries, even to the same value), and
    the user reads back as before but for ``active`` and ``meta``."""
    user_id = seeded.user_ids[20]
    before = client.get(f"/scim/v2/Users/{user_id}").json()
    with recorded(client) as seen:
        response = _deactivate(client, user_id)
    assert response.status_code == 200, response.text
    (update,) = [s for s in seen if verb(s) == "UPDATE" and s.touches("scim_user")]
    assigned = update.sql.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    for column in ("user_name", "user_name_ci", "external_id", "team_pk", "given_name"):
        assert not re.search(rf"\b{column}\s*=", assigned), assigned
    for column in ("active", "state", "last_modified", "rendered", "version"):
        assert re.search(rf"\b{column}\s*=", assigned), assigned
    after = client.get(f"/scim/v2/Users/{user_id}").json()
    assert after["active"] is False
    assert {k: v for k, v in after.items() if k not in ("active", "meta")} == {
        k: v for k, v in before.items() if k not in ("active", "meta")
    }


# --- the check itself ----------------------------------------------------------------


def test_the_capture_sees_the_user_name_and_key_lookups(client: TestClient, seeded: Seeded) -> None:
    with recorded(client) as seen:
        response = client.get(
            "/scim/v2/Users", params={"filter": 'userName eq "user003@example.com"'}
        )
    assert response.status_code == 200, response.text
    assert any(
        verb(s) == "SELECT" and s.touches("scim_user") and "user003@example.com" in s.values()
        for s in seen
    ), [s.sql for s in seen]
    assert any(verb(s) == "SELECT" and s.touches("scim_key") for s in seen), [s.sql for s in seen]


def test_the_check_fails_a_full_scan_and_a_read_of_the_whole_team(
    client: TestClient, seeded: Seeded
) -> None:
    users = metadata.tables["scim_user"]
    team = team_pk_of(client)
    engine = engine_of(client)
    analyze(engine)
    with recorded(client) as seen, engine.connect() as conn:
        conn.execute(select(users.c.pk).where(users.c.title == "Tour Guide"))
        conn.execute(select(users.c.pk).where(users.c.team_pk == team, users.c.title == "Guide"))
        conn.execute(select(users.c.pk).where(users.c.team_pk == team, users.c.id == "x"))
        conn.rollback()
    scan, whole_team, by_id = checked(seen)

    assert explain(engine, scan, ordered_scope=frozenset()).problems
    assert explain(engine, whole_team, ordered_scope=frozenset()).problems
    assert not explain(engine, whole_team, ordered_scope=frozenset({"scim_user"})).problems
    assert not explain(engine, by_id, ordered_scope=frozenset()).problems
