"""Round trips through :mod:`gateway.store.mapping`, in memory and through each database.

``user_to_rows`` and ``user_from_rows`` must be exact inverses for any canonical User:
what a client wrote is what it reads back, whether an attribute lands in a column, in
a value row or in ``extra``. The same holds for groups.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select
from starlette.testclient import TestClient

from gateway.config import Settings
from gateway.scim.resource import canonicalize
from gateway.scim.schemas import GROUP, USER
from gateway.store.common import utcnow
from gateway.store.mapping import (
    fold,
    group_from_row,
    group_to_row,
    user_from_rows,
    user_to_rows,
)
from gateway.store.query import users, values
from gateway.store.tables import Team
from tests.conftest import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA
from tests.rfc7643_examples import enterprise_user, full_user, tour_guides
from tests.support import team_pk_of

BASE = "https://gateway.example.com/scim/v2"
ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
teams = Team.__table__  # type: ignore[attr-defined]


def _in_memory(resource: dict[str, Any]) -> dict[str, Any]:
    columns, value_rows = user_to_rows(resource)
    return user_from_rows(columns, value_rows, base_url=BASE)


def _through_db(client: TestClient, settings: Settings, resource: dict[str, Any]) -> dict[str, Any]:
    """Store ``resource`` as rows in the gateway's database, read them back, rebuild it."""
    engine: Engine = client.app.state.gateway.db.engine  # type: ignore[attr-defined]
    columns, value_rows = user_to_rows(resource)
    now = utcnow()
    with engine.begin() as conn:
        team_pk = team_pk_of(client)
        user_pk = conn.execute(
            insert(users).returning(users.c.pk),
            {
                **columns,
                "id": str(uuid.uuid4()),
                "team_pk": team_pk,
                "created": now,
                "last_modified": now,
                "version": 1,
            },
        ).scalar_one()
        if value_rows:
            conn.execute(
                insert(values), [{**r, "user_pk": user_pk, "team_pk": team_pk} for r in value_rows]
            )
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.pk == user_pk)).one()
        stored = conn.execute(
            select(values).where(values.c.user_pk == user_pk).order_by(values.c.pk)
        ).all()
    by_name = user_from_rows(row._mapping, [r._mapping for r in stored], base_url=BASE)
    # A statement's row read by position (how list pages are rendered) rebuilds the
    # very same document, in the same order.
    by_position = user_from_rows(row, [r._mapping for r in stored], base_url=BASE)
    assert list(by_position.items()) == list(by_name.items())
    return by_name


def _both(client: TestClient, settings: Settings, resource: dict[str, Any]) -> list[Any]:
    original = copy.deepcopy(resource)
    results = [_in_memory(resource), _through_db(client, settings, resource)]
    assert resource == original, "user_to_rows changed its input"
    return results


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert sorted(a["schemas"]) == sorted(b["schemas"])
    assert {k: v for k, v in a.items() if k != "schemas"} == {
        k: v for k, v in b.items() if k != "schemas"
    }


def test_full_rfc7643_user_round_trips(client: TestClient, settings: Settings) -> None:
    resource = canonicalize(USER, full_user())

    for result in _both(client, settings, resource):
        _same(result, resource)


def test_enterprise_user_round_trips_with_a_computed_manager_ref(
    client: TestClient, settings: Settings
) -> None:
    resource = canonicalize(USER, enterprise_user())
    manager_id = resource[ENTERPRISE]["manager"]["value"]
    expected = copy.deepcopy(resource)
    expected[ENTERPRISE]["manager"]["$ref"] = f"{BASE}/Users/{manager_id}"

    for result in _both(client, settings, resource):
        assert result["schemas"] == [USER_SCHEMA, ENTERPRISE]
        _same(result, expected)


def test_unmodelled_attributes_round_trip(client: TestClient, settings: Settings) -> None:
    resource = canonicalize(
        USER,
        {
            "schemas": [USER_SCHEMA, ENTERPRISE, ACME],
            "userName": "bjensen",
            "favoriteColor": "teal",
            "name": {"givenName": "Barbara", "pronunciation": "BAR-bra"},
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "verified": True},
                {"value": "babs@jensen.org", "labels": ["personal", "old"]},
            ],
            "addresses": [{"locality": "Hollywood", "geo": {"lat": 34.1, "lon": -118.3}}],
            ENTERPRISE: {"department": "Tour Operations", "building": "B7"},
            ACME: {
                "costCode": "X1",
                "badge": {"color": "red", "floors": [1, 2, 7]},
                "score": 9.5,
                "contractor": False,
                "since": 2015,
            },
        },
    )
    # Nothing is added: ``active`` stays unassigned when the client did not send it.
    expected = resource

    for result in _both(client, settings, resource):
        _same(result, expected)


def test_empty_objects_are_dropped_without_touching_the_input(
    client: TestClient, settings: Settings
) -> None:
    """An empty object is an unassigned value (RFC 7643 §2.5); the rest is kept."""
    resource = {
        "schemas": [USER_SCHEMA, ACME],
        "userName": "bjensen",
        "active": True,
        "name": {"givenName": "Barbara", "phonetic": {"given": {}}},
        ACME: {"badge": {"color": "red", "access": {}}, "costCode": "X1"},
    }
    expected = {
        "schemas": [USER_SCHEMA, ACME],
        "userName": "bjensen",
        "active": True,
        "name": {"givenName": "Barbara"},
        ACME: {"badge": {"color": "red"}, "costCode": "X1"},
    }

    for result in _both(client, settings, resource):  # _both checks the input is unchanged
        _same(result, expected)


@pytest.mark.parametrize("active", [True, False])
def test_active_round_trips(client: TestClient, settings: Settings, active: bool) -> None:
    resource = {"schemas": [USER_SCHEMA], "userName": "bjensen", "active": active}

    for result in _both(client, settings, resource):
        assert result["active"] is active


def test_minimal_user_round_trips(client: TestClient, settings: Settings) -> None:
    for result in _both(client, settings, {"schemas": [USER_SCHEMA], "userName": "bjensen"}):
        assert result == {"schemas": [USER_SCHEMA], "userName": "bjensen"}


def test_multi_valued_elements_keep_their_order(client: TestClient, settings: Settings) -> None:
    emails = [{"value": f"user{i}@example.com", "type": "other"} for i in (3, 1, 2, 5, 4)]
    roles = [{"value": v} for v in ("viewer", "admin", "editor")]
    resource = {
        "schemas": [USER_SCHEMA],
        "userName": "bjensen",
        "active": True,
        "emails": emails,
        "roles": roles,
    }

    for result in _both(client, settings, resource):
        assert result["emails"] == emails
        assert result["roles"] == roles


def test_columns_and_value_rows(client: TestClient) -> None:
    columns, value_rows = user_to_rows(canonicalize(USER, enterprise_user()))

    assert columns["user_name"] == "bjensen@example.com"
    assert columns["user_name_ci"] == "bjensen@example.com"
    assert columns["given_name"] == "Barbara"
    assert columns["cost_center"] == "4130"
    assert columns["manager_id"] == "26118915-6090-4610-87e4-49d8ca9f808d"
    assert columns["extra"] is None
    emails = [r for r in value_rows if r["attr"] == "emails"]
    assert [(r["value"], r["value_ci"], r["primary"], r["position"]) for r in emails] == [
        ("bjensen@example.com", "bjensen@example.com", True, 0),
        ("babs@jensen.org", "babs@jensen.org", None, 1),  # primary not sent: unassigned
    ]
    [work, _home] = [r for r in value_rows if r["attr"] == "addresses"]
    assert work["street_address"] == "100 Universal City Plaza"
    assert work["postal_code"] == "91608"
    assert work["value"] is None


def test_fold_is_case_insensitive_beyond_ascii() -> None:
    assert fold("BJensen@Example.COM") == "bjensen@example.com"
    assert fold("STRASSE") == fold("straße")
    assert fold(None) is None


def test_group_round_trips(client: TestClient) -> None:
    body = tour_guides()
    body["externalId"] = "tg-1"
    body["urn:ietf:params:scim:schemas:extension:acme:2.0:Group"] = {"room": "4B"}
    resource = canonicalize(GROUP, body)
    columns = group_to_row(resource)

    assert columns["display_name"] == "Tour Guides"
    assert columns["display_name_ci"] == "tour guides"
    assert columns["external_id"] == "tg-1"
    expected = {k: v for k, v in resource.items() if k != "members"}
    result = group_from_row(columns)
    assert result["schemas"][0] == GROUP_SCHEMA
    _same(result, expected)
