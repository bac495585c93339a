"""Users served from their ``rendered`` document are the users their columns hold.

Every write of a user through SCIM also writes its SCIM attributes as one JSON
document (``scim_user.rendered``), which list pages, lookups and reads serve instead
of reassembling the columns and value rows. These tests hold the two ways to the same
answer: the same requests, answered from the documents and then with every document
removed, give byte-for-byte the same JSON; a document older than its row's
``version`` is never served; every SCIM write leaves a current document.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from starlette.testclient import TestClient

from gateway.config import DatabaseSettings, RateLimitSettings, Settings
from gateway.store import users as user_repo
from gateway.store.tables import metadata
from tests.conftest import BACKENDS, ENTERPRISE, PATCH_OP, USER_SCHEMA, make_client, new_group
from tests.rfc7643_examples import enterprise_user
from tests.statements import engine_of
from tests.support import team_pk_of

USERS = metadata.tables["scim_user"]


def _client(database: str) -> Iterator[TestClient]:
    settings = Settings(
        database=DatabaseSettings(url=database),
        rate_limits=RateLimitSettings(per_key=0, per_team=0),
        source="<tests>",
    )
    yield from make_client(settings)


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    if request.param == "sqlite":
        yield from _client(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    else:
        yield from _client(request.getfixturevalue("postgres_url"))


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[TestClient]:
    """SQLite only: PostgreSQL refuses NUL in text and JSON, SQLite stores it."""
    yield from _client(f"sqlite:///{tmp_path / 'g.sqlite3'}")


def _create(client: TestClient, body: dict[str, Any]) -> str:
    response = client.post("/scim/v2/Users", json=body)
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    return user_id


def _patch(client: TestClient, user_id: str, *operations: dict[str, Any]) -> None:
    body = {"schemas": [PATCH_OP], "Operations": list(operations)}
    response = client.patch(f"/scim/v2/Users/{user_id}", json=body)
    assert response.status_code in (200, 204), response.text


def _directory(client: TestClient) -> list[str]:
    """Users of many shapes, written through creates, PATCHes and a PUT."""
    rfc = enterprise_user()
    for server_assigned in ("id", "meta", "groups", "password"):
        rfc.pop(server_assigned)
    rfc["userName"] = "bjensen-" + uuid.uuid4().hex[:6]
    ids = [
        _create(client, rfc),  # RFC 7643 §8.3: every attribute, the manager
        _create(client, {"schemas": [USER_SCHEMA], "userName": "bare"}),  # active unassigned
        _create(
            client,
            {
                "schemas": [USER_SCHEMA, "urn:acme:2.0:User"],
                "userName": "extended",
                "active": False,
                "name": {"givenName": "Ext"},
                "emails": [
                    {"value": "b@example.com", "type": "work"},
                    {"value": "a@example.com", "type": "home", "primary": True},
                ],
                "urn:acme:2.0:User": {"badge": 7, "tags": ["x", "y"], "ratio": 0.25},
                "unmodelled": {"nested": [1, {"deep": None}]},
            },
        ),
        _create(
            client,
            {
                "schemas": [USER_SCHEMA, ENTERPRISE],
                "userName": "managed",
                ENTERPRISE: {"manager": {"value": "m-42", "displayName": "Boss"}},
                "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
            },
        ),
    ]
    # Entra's five-operation profile PATCH, Okta's deactivation, a value-path PATCH
    _patch(
        client,
        ids[1],
        {"op": "Replace", "path": "displayName", "value": "Bare User"},
        {"op": "Replace", "path": "name.givenName", "value": "Bare"},
        {"op": "Replace", "path": "title", "value": "Tester"},
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "QA"},
        {"op": "Add", "path": "emails", "value": [{"value": "bare@example.com"}]},
    )
    _patch(client, ids[3], {"op": "replace", "value": {"active": False}})
    _patch(
        client,
        ids[2],
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "w@example.com"},
    )
    replaced = client.put(
        f"/scim/v2/Users/{ids[3]}",
        json={
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "userName": "managed",
            "addresses": [{"locality": "Oslo", "type": "home", "primary": True}],
            ENTERPRISE: {"manager": {"value": "m-43"}, "costCenter": "7"},
        },
    )
    assert replaced.status_code == 200, replaced.text
    new_group(client, "Readers", ids[:3])
    return ids


def _answers(client: TestClient, ids: list[str]) -> list[bytes]:
    """What every kind of read answers about the users (raw bodies)."""
    reads = [client.get(f"/scim/v2/Users/{user_id}") for user_id in ids]
    reads.append(client.get("/scim/v2/Users", params={"count": 100}))
    reads.append(client.get("/scim/v2/Users", params={"startIndex": 2, "count": 2}))
    reads.append(client.get("/scim/v2/Users", params={"filter": 'userName eq "EXTENDED"'}))
    reads.append(client.get("/scim/v2/Users", params={"filter": 'title eq "Tester"'}))
    reads.append(
        client.get("/scim/v2/Users", params={"sortBy": "userName", "attributes": "emails"})
    )
    for response in reads:
        assert response.status_code == 200, response.text
    return [response.content for response in reads]


def _documents(client: TestClient) -> list[tuple[bytes | None, int | None, int]]:
    team = team_pk_of(client)
    with engine_of(client).connect() as conn:
        rows = conn.execute(
            select(USERS.c.rendered, USERS.c.rendered_version, USERS.c.version)
            .where(USERS.c.team_pk == team)
            .order_by(USERS.c.pk)
        ).all()
    return [(None if r[0] is None else bytes(r[0]), r[1], r[2]) for r in rows]


def test_documents_and_columns_answer_the_same(client: TestClient) -> None:
    ids = _directory(client)
    documents = _documents(client)
    assert len(documents) == len(ids)
    assert all(doc is not None and at == version for doc, at, version in documents)

    from_documents = _answers(client, ids)
    with engine_of(client).begin() as conn:
        conn.execute(text("UPDATE scim_user SET rendered = NULL"))
    from_columns = _answers(client, ids)
    assert from_documents == from_columns


def test_a_page_mixing_users_with_and_without_documents(client: TestClient) -> None:
    ids = _directory(client)
    whole = client.get("/scim/v2/Users", params={"count": 100}).content
    with engine_of(client).begin() as conn:
        conn.execute(
            text("UPDATE scim_user SET rendered = NULL WHERE id IN (:a, :b)"),
            {"a": ids[0], "b": ids[2]},
        )
    assert client.get("/scim/v2/Users", params={"count": 100}).content == whole


def test_a_document_older_than_the_row_is_not_served(client: TestClient) -> None:
    """A change that bumps ``version`` without writing a document (an operator's fix
    by hand, a policy action) is what the next read shows."""
    user_id = _create(client, {"schemas": [USER_SCHEMA], "userName": "ops", "title": "Old"})
    with engine_of(client).begin() as conn:
        conn.execute(
            text("UPDATE scim_user SET title = 'New', version = version + 1 WHERE id = :id"),
            {"id": user_id},
        )
    read = client.get(f"/scim/v2/Users/{user_id}")
    assert read.json()["title"] == "New"
    assert read.headers["ETag"] == 'W/"2"'
    page = client.get("/scim/v2/Users", params={"filter": 'userName eq "ops"'}).json()
    assert page["Resources"][0]["title"] == "New"
    listed = client.get("/scim/v2/Users").json()["Resources"]
    assert [u["title"] for u in listed if u["id"] == user_id] == ["New"]


def test_every_scim_write_leaves_a_current_document(client: TestClient) -> None:
    user_id = _create(client, {"schemas": [USER_SCHEMA], "userName": "w", "externalId": "e-1"})
    _patch(client, user_id, {"op": "add", "path": "nickName", "value": "Dub"})
    _patch(client, user_id, {"op": "replace", "value": {"active": False}})
    deleted = client.delete(f"/scim/v2/Users/{user_id}")
    assert deleted.status_code == 204
    # A new create with the same externalId brings the user back (re-provisioning).
    again = _create(
        client, {"schemas": [USER_SCHEMA], "userName": "w", "externalId": "e-1", "title": "Back"}
    )
    (doc, at, version), *_ = _documents(client)
    assert doc is not None and at == version
    served = client.get(f"/scim/v2/Users/{again}").json()
    assert served["title"] == "Back"
    assert served["meta"]["version"] == f'W/"{version}"'


def test_a_document_orjson_cannot_write_is_left_to_the_columns(client: TestClient) -> None:
    """An integer beyond 64 bits (which no JSON body parsed by the gateway holds, but
    a caller of the store may) leaves ``rendered`` empty: the user is served from its
    columns."""
    gateway = client.app.state.gateway  # type: ignore[attr-defined]
    team = team_pk_of(client)
    resource = {"schemas": [USER_SCHEMA], "userName": "big", "urn:acme:big": {"n": 2**70}}
    with gateway.db.transaction(write=True) as conn:
        created = user_repo.create_user(conn, team, resource, base_url="http://testserver")
    assert _documents(client)[0][0] is None
    read = client.get(f"/scim/v2/Users/{created['id']}")
    assert read.status_code == 200, read.text
    assert read.json()["urn:acme:big"] == {"n": 2**70}


def test_a_string_holding_nul_leaves_the_document_empty(sqlite_client: TestClient) -> None:
    """NUL stands for the server's URL in a stored document. No request body holding
    one is accepted, but a caller of the store could write one: its user is served
    from the columns, NUL and all, not with the URL put in its place."""
    client = sqlite_client
    gateway = client.app.state.gateway  # type: ignore[attr-defined]
    team = team_pk_of(client)
    odd = {"$ref": "\x00/Users/x", "note": "a\x00b"}
    resource = {"schemas": [USER_SCHEMA], "userName": "nul", "urn:acme:odd": odd}
    with gateway.db.transaction(write=True) as conn:
        created = user_repo.create_user(conn, team, resource, base_url="http://testserver")
    assert _documents(client)[0][0] is None
    page = client.get("/scim/v2/Users", params={"filter": 'userName eq "nul"'})
    assert page.status_code == 200, page.text
    assert page.json()["Resources"][0]["urn:acme:odd"] == odd
    assert client.get(f"/scim/v2/Users/{created['id']}").json()["urn:acme:odd"] == odd
