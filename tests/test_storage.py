"""Storage guarantees: how the common model sits in SQLite and PostgreSQL.

The SaaS application reads these tables directly, so their shape is part of the
product: one column per modelled single-valued attribute, one row per element of a
multi-valued attribute, one row per direct membership, unmodelled attributes in
``extra``, and nothing the gateway must not keep (a password).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from starlette.testclient import TestClient

from gateway.config import Settings
from gateway.store.common import utcnow
from gateway.store.query import groups, memberships, users, values
from gateway.store.tables import Team
from tests.conftest import ENTERPRISE, PATCH_OP, new_group, new_user
from tests.rfc7643_examples import enterprise_user
from tests.support import team_pk_of

teams = Team.__table__  # type: ignore[attr-defined]


def _engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.gateway.db.engine  # type: ignore[attr-defined]
    return engine


def _team_pk(client: TestClient, settings: Settings) -> int:
    return team_pk_of(client)


def _rows(client: TestClient, stmt: Any) -> list[dict[str, Any]]:
    with _engine(client).connect() as conn:
        return [dict(row._mapping) for row in conn.execute(stmt)]


# --- SQLite settings -----------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(client: TestClient) -> None:
    engine = _engine(client)
    if engine.dialect.name != "sqlite":
        pytest.skip("journal_mode and foreign_keys are SQLite pragmas")
    # Every pooled connection, not just the first, gets the settings.
    with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_foreign_keys_are_enforced(client: TestClient, settings: Settings) -> None:
    team_pk = _team_pk(client, settings)
    with pytest.raises(IntegrityError), _engine(client).begin() as conn:
        conn.execute(
            insert(memberships).values(team_pk=team_pk, group_pk=987654321, user_pk=987654321)
        )


# --- indexes -------------------------------------------------------------------------


def _keys(engine: Engine, table: str) -> list[tuple[tuple[str, ...], bool]]:
    """(columns, unique) for every index and unique constraint of ``table``."""
    inspector = inspect(engine)
    found = [
        (tuple(ix["column_names"]), bool(ix["unique"]))
        for ix in inspector.get_indexes(table)
        if all(ix["column_names"])
    ]
    found += [(tuple(uq["column_names"]), True) for uq in inspector.get_unique_constraints(table)]
    return found


def _has_index(engine: Engine, table: str, columns: tuple[str, ...], *, unique: bool) -> bool:
    """Whether an index (unique if asked) starts with exactly these columns."""
    return any(
        cols[: len(columns)] == columns and (is_unique or not unique)
        for cols, is_unique in _keys(engine, table)
    )


def test_user_name_is_unique_per_team_case_folded(client: TestClient) -> None:
    engine = _engine(client)
    assert (("team_pk", "user_name_ci"), True) in _keys(engine, "scim_user")


def test_lookup_indexes_exist(client: TestClient) -> None:
    engine = _engine(client)
    assert _has_index(engine, "scim_user", ("team_pk", "external_id"), unique=False)
    assert _has_index(engine, "scim_group", ("team_pk", "display_name_ci"), unique=False)
    assert _has_index(engine, "scim_group", ("team_pk", "external_id"), unique=False)
    assert _has_index(engine, "scim_user_value", ("user_pk",), unique=False)
    # Memberships are found from either side: a group's members, a member's groups.
    assert _has_index(engine, "scim_membership", ("group_pk", "user_pk"), unique=True)
    assert _has_index(engine, "scim_membership", ("group_pk", "child_group_pk"), unique=True)
    assert _has_index(engine, "scim_membership", ("user_pk",), unique=False)
    assert _has_index(engine, "scim_membership", ("child_group_pk",), unique=False)


def test_the_database_refuses_a_second_user_name_differing_only_in_case(
    client: TestClient, settings: Settings
) -> None:
    """The constraint, not only the gateway's check, keeps userName unique."""
    new_user(client, "bjensen")
    team_pk = _team_pk(client, settings)
    now = utcnow()
    with pytest.raises(IntegrityError), _engine(client).begin() as conn:
        conn.execute(
            insert(users).values(
                id="a-second-id",
                team_pk=team_pk,
                user_name="BJensen",
                user_name_ci="bjensen",
                active=True,
                created=now,
                last_modified=now,
                version=1,
            )
        )


# --- what the rows hold --------------------------------------------------------------


def test_a_user_is_one_row_with_columns_and_one_row_per_value(
    client: TestClient, settings: Settings
) -> None:
    created = client.post("/scim/v2/Users", json=enterprise_user()).json()
    team_pk = _team_pk(client, settings)

    [row] = _rows(client, select(users).where(users.c.id == created["id"]))
    assert row["team_pk"] == team_pk
    assert row["user_name"] == "bjensen@example.com"
    assert row["user_name_ci"] == "bjensen@example.com"
    assert row["external_id"] == "701984"
    assert row["display_name"] == "Babs Jensen"
    assert row["given_name"] == "Barbara"
    assert row["family_name"] == "Jensen"
    assert row["active"] is True
    assert row["employee_number"] == "701984"
    assert row["department"] == "Tour Operations"
    assert row["manager_id"] == created[ENTERPRISE]["manager"]["value"]
    assert row["extra"] is None

    elements = _rows(
        client,
        select(values.c.attr, values.c.value, values.c.type, values.c.primary, values.c.team_pk)
        .where(values.c.user_pk == row["pk"])
        .order_by(values.c.attr, values.c.position),
    )
    emails = [e for e in elements if e["attr"] == "emails"]
    assert [(e["value"], e["type"], e["primary"]) for e in emails] == [
        ("bjensen@example.com", "work", True),
        ("babs@jensen.org", "home", None),  # primary not sent: unassigned
    ]
    assert sorted({e["attr"] for e in elements}) == [
        "addresses",
        "emails",
        "ims",
        "phoneNumbers",
        "photos",
        "x509Certificates",
    ]
    assert len(elements) == 10
    assert {e["team_pk"] for e in elements} == {team_pk}


def test_a_user_write_rewrites_value_rows_only_when_the_values_change(
    client: TestClient,
) -> None:
    created = client.post("/scim/v2/Users", json=enterprise_user()).json()
    path = f"/scim/v2/Users/{created['id']}"
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    def patch_sends(*ops: dict[str, Any]) -> list[str]:
        sent.clear()
        event.listen(_engine(client), "before_cursor_execute", seen)
        try:
            body = {"schemas": [PATCH_OP], "Operations": list(ops)}
            assert client.patch(path, json=body).status_code == 200
        finally:
            event.remove(_engine(client), "before_cursor_execute", seen)
        return [s for s in sent if "scim_user_value" in s and not s.startswith("SELECT")]

    assert patch_sends({"op": "replace", "path": "title", "value": "X"}) == []

    email = {"value": "babs@new.example.com", "type": "work", "primary": True}
    written = patch_sends({"op": "replace", "path": "emails", "value": [email]})
    assert [s.split()[0] for s in written] == ["DELETE", "INSERT"]
    assert client.get(path).json()["emails"] == [email]


def test_the_case_folded_user_name_is_stored(client: TestClient) -> None:
    created = new_user(client, "BJensen@Example.COM")

    [row] = _rows(client, select(users).where(users.c.id == created["id"]))
    assert row["user_name"] == "BJensen@Example.COM"
    assert row["user_name_ci"] == "bjensen@example.com"


def test_unmodelled_attributes_are_kept_in_extra(client: TestClient) -> None:
    acme = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
    created = new_user(
        client,
        "bjensen",
        name={"givenName": "Barbara", "pronunciation": "BAR-bra"},
        emails=[{"value": "bjensen@example.com", "verified": True}],
        **{acme: {"costCode": "X1", "badge": {"color": "red"}}},
    )

    [row] = _rows(client, select(users).where(users.c.id == created["id"]))
    assert row["given_name"] == "Barbara"
    assert row["extra"] == {
        "name": {"pronunciation": "BAR-bra"},
        acme: {"costCode": "X1", "badge": {"color": "red"}},
    }
    [email] = _rows(client, select(values).where(values.c.user_pk == row["pk"]))
    assert email["value"] == "bjensen@example.com"
    assert email["extra"] == {"verified": True}


def test_password_is_never_stored(client: TestClient) -> None:
    secret = "t1meMa$heen"
    created = new_user(client, "bjensen", password=secret, PASSWORD=secret + "2")

    [row] = _rows(client, select(users).where(users.c.id == created["id"]))
    assert secret not in repr(row)
    assert secret not in repr(_rows(client, select(values).where(values.c.user_pk == row["pk"])))
    assert not any("password" in key.lower() for key in (row["extra"] or {}))


def test_memberships_are_one_row_per_direct_member(client: TestClient, settings: Settings) -> None:
    babs = new_user(client, "bjensen")
    inner = new_group(client, "US Employees", members=[babs["id"]])
    outer = new_group(client, "Employees", members=[babs["id"], inner["id"]])
    team_pk = _team_pk(client, settings)

    [outer_row] = _rows(client, select(groups).where(groups.c.id == outer["id"]))
    assert outer_row["team_pk"] == team_pk
    assert outer_row["display_name"] == "Employees"
    assert outer_row["display_name_ci"] == "employees"
    [inner_row] = _rows(client, select(groups).where(groups.c.id == inner["id"]))
    [user_row] = _rows(client, select(users).where(users.c.id == babs["id"]))

    rows = _rows(
        client,
        select(memberships.c.user_pk, memberships.c.child_group_pk, memberships.c.team_pk).where(
            memberships.c.group_pk == outer_row["pk"]
        ),
    )
    assert sorted(rows, key=lambda r: r["user_pk"] is None) == [
        {"user_pk": user_row["pk"], "child_group_pk": None, "team_pk": team_pk},
        {"user_pk": None, "child_group_pk": inner_row["pk"], "team_pk": team_pk},
    ]


def test_deleting_a_user_leaves_no_rows_behind(client: TestClient) -> None:
    babs = new_user(client, "bjensen", emails=[{"value": "bjensen@example.com"}])
    new_group(client, "Tour Guides", members=[babs["id"]])
    [row] = _rows(client, select(users.c.pk).where(users.c.id == babs["id"]))

    assert client.delete(f"/scim/v2/Users/{babs['id']}").status_code == 204

    assert _rows(client, select(users).where(users.c.pk == row["pk"])) == []
    assert _rows(client, select(values).where(values.c.user_pk == row["pk"])) == []
    assert _rows(client, select(memberships).where(memberships.c.user_pk == row["pk"])) == []


def test_deleting_a_group_leaves_no_membership_rows_behind(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    inner = new_group(client, "US Employees", members=[babs["id"]])
    new_group(client, "Employees", members=[inner["id"]])
    [row] = _rows(client, select(groups.c.pk).where(groups.c.id == inner["id"]))

    assert client.delete(f"/scim/v2/Groups/{inner['id']}").status_code == 204

    pk = row["pk"]
    left = _rows(
        client,
        select(memberships).where(
            (memberships.c.group_pk == pk) | (memberships.c.child_group_pk == pk)
        ),
    )
    assert left == []


def test_a_failed_write_leaves_no_rows(client: TestClient, settings: Settings) -> None:
    babs = new_user(client, "bjensen")
    response = client.post(
        "/scim/v2/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Tour Guides",
            "members": [{"value": babs["id"]}, {"value": "2819c223-7f76-453a-919d-413861904646"}],
        },
    )

    assert response.status_code == 400
    team_pk = _team_pk(client, settings)
    assert _rows(client, select(groups.c.pk).where(groups.c.team_pk == team_pk)) == []
    assert _rows(client, select(memberships.c.pk).where(memberships.c.team_pk == team_pk)) == []
