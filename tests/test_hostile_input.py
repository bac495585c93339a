"""Hostile and malformed input: bad bytes, NUL, lone surrogates, repeated keys, SQL
injection attempts. Every one is a 4xx SCIM error on SQLite and on PostgreSQL (which
refuses NUL in text, and whose driver refuses lone surrogates), never a 500, and a
refused request leaves the team's rows as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select
from starlette.testclient import TestClient

from gateway.app import Gateway
from gateway.store.query import groups, memberships, users, values
from tests.conftest import ERROR, GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, new_group, new_user
from tests.support import team_pk_of

SCIM = "application/scim+json"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

Snapshot = dict[str, list[tuple[Any, ...]]]


def team_snapshot(client: TestClient) -> Snapshot:
    """Every row of the client's team in the tables a SCIM write changes."""
    gateway: Gateway = client.app.state.gateway  # type: ignore[attr-defined]
    team_pk = team_pk_of(client)
    with gateway.db.engine.connect() as conn:
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(
                    select(table).where(table.c.team_pk == team_pk).order_by(table.c.pk)
                )
            ]
            for table in (users, values, groups, memberships)
        }


def scim_error(response: Any, status: int, scim_type: str | None) -> str:
    """The ``detail`` of a SCIM error response with this status and scimType."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM)
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    detail: str = body["detail"]
    return detail


def user_body(**attrs: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": "bjensen", **attrs}


def raw_user(text: str) -> bytes:
    """A User body whose attributes are ``text``, spliced in as raw JSON."""
    return ('{"schemas": ["' + USER_SCHEMA + '"], ' + text + "}").encode()


@pytest.fixture
def seeded(client: TestClient) -> Iterator[tuple[TestClient, dict[str, Any], dict[str, Any]]]:
    """The ``client``, with one user (who has an email) in one group."""
    user = new_user(client, "alice", emails=[{"value": "alice@example.com", "type": "work"}])
    group = new_group(client, "Staff", [user["id"]])
    yield client, user, group


# --- bytes that are not UTF-8 JSON -----------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": "b\xff\xfejensen"}',
        b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": "\xed\xa0\x80"}',
        b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": "a\x00b"}',
        b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": "bj"}\x00',
        b"\xef\xbb\xbf\xef\xbb\xbf{}",
    ],
    ids=["invalid-utf8", "encoded-surrogate", "raw-nul-in-string", "raw-nul-after", "two-boms"],
)
def test_bytes_that_are_not_utf8_json_are_invalid_syntax(
    seeded: tuple[TestClient, dict[str, Any], dict[str, Any]], content: bytes
) -> None:
    client, user, _group = seeded
    before = team_snapshot(client)
    scim_error(client.post("/scim/v2/Users", content=content), 400, "invalidSyntax")
    scim_error(client.put(f"/scim/v2/Users/{user['id']}", content=content), 400, "invalidSyntax")
    scim_error(client.post("/scim/v2/Groups", content=content), 400, "invalidSyntax")
    scim_error(client.post("/scim/v2/Bulk", content=content), 400, "invalidSyntax")
    assert team_snapshot(client) == before


# --- NUL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "named"),
    [
        ('"userName": "bj\\u0000ensen"', "'userName'"),
        ('"userName": "bjensen", "displayName": "\\u0000"', "'displayName'"),
        ('"userName": "bjensen", "name": {"givenName": "B\\u0000"}', "'name.givenName'"),
        ('"userName": "bjensen", "emails": [{"value": "b@x\\u0000"}]', "'emails[0].value'"),
        (f'"userName": "bjensen", "{ENTERPRISE}": {{"department": "\\u0000"}}', "department"),
        ('"userName": "bjensen", "urn:acme:2.0:User": {"badge": "\\u0000"}', "badge"),
        ('"userName": "bjensen", "nick\\u0000Name": "x"', "attribute name"),
    ],
    ids=["userName", "displayName", "complex", "multi-valued", "enterprise", "custom", "key"],
)
def test_nul_in_a_created_resource_is_invalid_value_naming_the_attribute(
    seeded: tuple[TestClient, dict[str, Any], dict[str, Any]], fragment: str, named: str
) -> None:
    client, user, _group = seeded
    before = team_snapshot(client)
    content = raw_user(fragment)
    detail = scim_error(client.post("/scim/v2/Users", content=content), 400, "invalidValue")
    assert named in detail
    assert "NUL" in detail
    detail = scim_error(
        client.put(f"/scim/v2/Users/{user['id']}", content=content), 400, "invalidValue"
    )
    assert named in detail
    assert team_snapshot(client) == before


def test_nul_in_a_group_or_a_patch_is_invalid_value(
    seeded: tuple[TestClient, dict[str, Any], dict[str, Any]],
) -> None:
    client, user, group = seeded
    before = team_snapshot(client)
    body = {"schemas": [GROUP_SCHEMA], "displayName": "Sta\x00ff"}
    detail = scim_error(client.post("/scim/v2/Groups", json=body), 400, "invalidValue")
    assert "'displayName'" in detail
    op = {"op": "replace", "path": "displayName", "value": "A\x00"}
    patch = {"schemas": [PATCH_OP], "Operations": [op]}
    for path in (f"/scim/v2/Users/{user['id']}", f"/scim/v2/Groups/{group['id']}"):
        detail = scim_error(client.patch(path, json=patch), 400, "invalidValue")
        assert "'displayName' in operation 1" in detail
    pathless = {"op": "add", "value": {"nickName": "x", "title": "T\x00"}}
    detail = scim_error(
        client.patch(
            f"/scim/v2/Users/{user['id']}", json={"schemas": [PATCH_OP], "Operations": [pathless]}
        ),
        400,
        "invalidValue",
    )
    assert "'Operations[0].value.title'" in detail
    bulk = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": user_body(title="\x00")}
        ],
    }
    detail = scim_error(client.post("/scim/v2/Bulk", json=bulk), 400, "invalidValue")
    assert "'Operations[0].data.title'" in detail
    assert team_snapshot(client) == before


@pytest.mark.parametrize(
    "params",
    [
        {"filter": 'userName eq "al\x00ice"'},
        {"filter": 'userName eq "al\\u0000ice"'},
        {"filter": 'emails[value sw "a\\u0000"]'},
        {"filter": "userName\x00 pr"},
        {"sortBy": "userName\x00"},
    ],
    ids=["raw", "escaped", "value-filter", "in-path", "sortBy"],
)
def test_nul_in_a_query_is_a_400(
    seeded: tuple[TestClient, dict[str, Any], dict[str, Any]], params: dict[str, str]
) -> None:
    client, _user, _group = seeded
    response = client.get("/scim/v2/Users", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["scimType"] in ("invalidFilter", "invalidValue")
    search = {"schemas": [SEARCH], **params}
    response = client.post("/scim/v2/Users/.search", json=search)
    assert response.status_code == 400, response.text


def test_nul_in_attributes_is_ignored_like_any_unknown_name(
    seeded: tuple[TestClient, dict[str, Any], dict[str, Any]],
) -> None:
    client, user, _group = seeded
    response = client.get(f"/scim/v2/Users/{user['id']}", params={"attributes": "user\x00Name"})
    assert response.status_code == 200, response.text
    assert "userName" not in response.json()


# --- lone surrogates -------------------------------------------------------------------


def test_a_lone_surrogate_escape_in_a_body_is_invalid_syntax(
    seeded: tuple[TestClient, dict[str, Any], dict[str, Any]],
) -> None:
    client, user, _group = seeded
    before = team_snapshot(client)
    for fragment in ('"userName": "\\ud800"', '"userName": "x\\udfffy"', '"\\ud800": 1'):
        content = raw_user(fragment)
        scim_error(client.post("/scim/v2/Users", content=content), 400, "invalidSyntax")
        scim_error(
            client.put(f"/scim/v2/Users/{user['id']}", content=content), 400, "invalidSyntax"
        )
    assert team_snapshot(client) == before


def test_a_surrogate_pair_escape_is_one_character(
    seeded: tuple[TestClient, dict[str, Any], dict[str, Any]],
) -> None:
    client, _user, _group = seeded
    response = client.post("/scim/v2/Users", content=raw_user('"userName": "smile\\ud83d\\ude00"'))
    assert response.status_code == 201, response.text
    assert response.json()["userName"] == "smile\U0001f600"
    found = client.get("/scim/v2/Users", params={"filter": 'userName eq "smile\\ud83d\\ude00"'})
    assert found.json()["totalResults"] == 1


@pytest.mark.parametrize(
    "text",
    ['userName eq "\\ud800"', 'userName sw "a\\udc00"', 'emails[value co "\\ud800x"]'],
)
def test_a_lone_surrogate_in_a_filter_is_invalid_filter(
    seeded: tuple[TestClient, dict[str, Any], dict[str, Any]], text: str
) -> None:
    client, _user, group = seeded
    detail = scim_error(client.get("/scim/v2/Users", params={"filter": text}), 400, "invalidFilter")
    assert "surrogate" in detail
    search = {"schemas": [SEARCH], "filter": text}
    scim_error(client.post("/scim/v2/.search", json=search), 400, "invalidFilter")
    before = team_snapshot(client)
    remove = {"op": "remove", "path": 'members[value eq "\\ud800"]'}
    response = client.patch(
        f"/scim/v2/Groups/{group['id']}", json={"schemas": [PATCH_OP], "Operations": [remove]}
    )
    scim_error(response, 400, "invalidPath")
    assert team_snapshot(client) == before


# --- repeated keys ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fragment",
    [
        '"userName": "bjensen", "userName": "mallory"',
        '"userName": "bjensen", "name": {"givenName": "B", "givenName": "M"}',
        '"userName": "bjensen", "emails": [{"value": "a@x", "value": "b@x"}]',
        '"userName" : "bjensen", "userName"\n:\t"mallory"',
        '"schemas": ["x"], "userName": "bjensen"',
    ],
    ids=["top-level", "complex", "in-array", "spaced", "schemas"],
)
def test_a_repeated_key_is_invalid_syntax(
    seeded: tuple[TestClient, dict[str, Any], dict[str, Any]], fragment: str
) -> None:
    client, user, _group = seeded
    before = team_snapshot(client)
    content = raw_user(fragment)
    detail = scim_error(client.post("/scim/v2/Users", content=content), 400, "invalidSyntax")
    assert "appears twice" in detail
    scim_error(client.put(f"/scim/v2/Users/{user['id']}", content=content), 400, "invalidSyntax")
    assert team_snapshot(client) == before


def test_a_repeated_key_in_a_patch_operation_is_invalid_syntax(
    seeded: tuple[TestClient, dict[str, Any], dict[str, Any]],
) -> None:
    client, user, _group = seeded
    before = team_snapshot(client)
    content = (
        '{"schemas": ["' + PATCH_OP + '"], "Operations": '
        '[{"op": "add", "op": "remove", "path": "nickName", "value": "x"}]}'
    ).encode()
    detail = scim_error(
        client.patch(f"/scim/v2/Users/{user['id']}", content=content), 400, "invalidSyntax"
    )
    assert "'op'" in detail
    assert team_snapshot(client) == before


@pytest.mark.parametrize(
    ("fragment", "named"),
    [
        ('"userName": "bjensen", "USERNAME": "mallory"', "'userName'"),
        ('"userName": "bjensen", "name": {"givenName": "B", "GivenName": "M"}', "name.givenName"),
        ('"userName": "bjensen", "externalId": "1", "externalid": "2"', "'externalId'"),
        (
            f'"userName": "bjensen", "{ENTERPRISE}": {{"department": "a"}}, '
            f'"{ENTERPRISE.upper()}": {{"department": "b"}}',
            ENTERPRISE,
        ),
    ],
    ids=["top-level", "complex", "externalId", "extension"],
)
def test_an_attribute_spelled_twice_is_invalid_syntax(
    seeded: tuple[TestClient, dict[str, Any], dict[str, Any]], fragment: str, named: str
) -> None:
    # Attribute names are case-insensitive (RFC 7643 §2.1): two spellings of one name
    # are one key given twice, not two attributes.
    client, _user, _group = seeded
    before = team_snapshot(client)
    detail = scim_error(
        client.post("/scim/v2/Users", content=raw_user(fragment)), 400, "invalidSyntax"
    )
    assert named in detail
    assert "twice" in detail
    assert team_snapshot(client) == before


@pytest.mark.parametrize(
    "fragment",
    [
        '"userName": "say \\":\\" twice", "title": "x\\":"',
        '"userName" : "bjensen" , "name" :\n {"givenName" : "B"}',
        '"userName": "bjensen", "urn:acme:2.0:User": {"userName": "other"}',
    ],
    ids=["quote-colon-in-strings", "spaced-keys", "same-key-in-two-objects"],
)
def test_bodies_that_only_look_repetitive_are_accepted(client: TestClient, fragment: str) -> None:
    response = client.post("/scim/v2/Users", content=raw_user(fragment))
    assert response.status_code == 201, response.text


# --- injection ----------------------------------------------------------------------


class Statements:
    """The SQL the gateway sends, statement text and parameters apart."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.params: list[Any] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        self.texts.append(statement)
        self.params.append(params)

    def in_text(self, needle: str) -> bool:
        return any(needle.lower() in text.lower() for text in self.texts)

    def in_params(self, needle: str) -> bool:
        return needle.lower() in repr(self.params).lower()


@pytest.fixture
def statements(client: TestClient) -> Iterator[Statements]:
    gateway: Gateway = client.app.state.gateway  # type: ignore[attr-defined]
    seen = Statements()
    event.listen(gateway.db.engine, "before_cursor_execute", seen)
    yield seen
    event.remove(gateway.db.engine, "before_cursor_execute", seen)


@pytest.mark.parametrize(
    ("text", "attack"),
    [
        ('userName eq "x\' OR 1=1 --"', "' OR 1=1 --"),
        ('displayName co "\'); DROP TABLE scim_user; --"', "DROP TABLE"),
        ("emails[value sw \"x'||(select 1)||'\"]", "(select 1)"),
        ('title ew "\\" OR \\"1\\"=\\"1"', '" OR "1"="1'),
        ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "1;--"', "1;--"),
        ('userName gt "z" or meta.created lt "2001-01-01T00:00:00Z\' OR 1=1"', "' OR 1=1"),
    ],
)
def test_filter_values_reach_the_database_only_as_parameters(
    client: TestClient, statements: Statements, text: str, attack: str
) -> None:
    new_user(client, "alice")
    statements.texts.clear()
    response = client.get("/scim/v2/Users", params={"filter": text})
    assert response.status_code in (200, 400), response.text
    assert statements.texts or response.status_code == 400
    assert not statements.in_text(attack)
    if response.status_code == 200:
        assert response.json()["totalResults"] == 0
        assert statements.in_params(attack.casefold()) or statements.in_params(attack)


@pytest.mark.parametrize(
    "text",
    [
        "userName; DROP TABLE scim_user",
        "userName) OR (1=1",
        "userName desc",
        "scim_user.user_name",
        'userName"',
    ],
)
def test_a_sort_by_that_is_not_an_attribute_never_reaches_the_database(
    client: TestClient, statements: Statements, text: str
) -> None:
    new_user(client, "alice")
    statements.texts.clear()
    response = client.get("/scim/v2/Users", params={"sortBy": text})
    assert response.status_code == 400, response.text
    assert response.json()["scimType"] in ("invalidFilter", "invalidValue")
    assert not statements.in_text("DROP")
    assert not statements.in_params("DROP")
    assert not any("ORDER BY" in sql.upper() for sql in statements.texts)


def test_sort_by_names_only_a_known_column(client: TestClient, statements: Statements) -> None:
    for name in ("carol", "alice", "bob"):
        new_user(client, name)
    statements.texts.clear()
    response = client.get("/scim/v2/Users", params={"sortBy": "USERNAME"})
    assert [u["userName"] for u in response.json()["Resources"]] == ["alice", "bob", "carol"]
    ordered = [sql for sql in statements.texts if "ORDER BY" in sql.upper()]
    assert ordered and all("USERNAME" not in sql for sql in ordered)


@pytest.mark.parametrize(
    "attributes", ["userName,(select 1)", "userName;DROP TABLE scim_user", "id'--"]
)
def test_attributes_never_reach_the_database(
    client: TestClient, statements: Statements, attributes: str
) -> None:
    user = new_user(client, "alice")
    statements.texts.clear()
    for response in (
        client.get("/scim/v2/Users", params={"attributes": attributes}),
        client.get(f"/scim/v2/Users/{user['id']}", params={"excludedAttributes": attributes}),
    ):
        assert response.status_code == 200, response.text
    attack = attributes.split(",")[-1].split(";")[-1]
    assert not statements.in_text(attack)
    assert not statements.in_params(attack)


def test_like_wildcards_in_a_filter_are_literal(client: TestClient) -> None:
    new_user(client, "alice")
    new_user(client, "a_c%e")
    for text, expected in [
        ('userName co "%"', ["a_c%e"]),
        ('userName sw "a_"', ["a_c%e"]),
        ('userName ew "_e"', []),
        ('userName co "\\\\"', []),
    ]:
        response = client.get("/scim/v2/Users", params={"filter": text})
        assert [u["userName"] for u in response.json()["Resources"]] == expected, text


def test_an_id_in_the_path_is_a_parameter(client: TestClient, statements: Statements) -> None:
    new_user(client, "alice")
    statements.texts.clear()
    response = client.get("/scim/v2/Users/x' OR '1'='1")
    scim_error(response, 404, None)
    assert not statements.in_text("'1'='1")
    assert statements.in_params("'1'='1")


# --- numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"count": "1" * 5000}, 400),
        ({"startIndex": "9" * 5000}, 400),
        ({"count": "1.5"}, 400),
        ({"startIndex": "0x10"}, 400),
        ({"count": "-99999999999999999999999999"}, 200),
    ],
    ids=["long-count", "long-start", "fraction", "hex", "huge-negative-count"],
)
def test_numbers_in_query_parameters(
    client: TestClient, params: dict[str, str], status: int
) -> None:
    response = client.get("/scim/v2/Users", params=params)
    assert response.status_code == status, response.text
    if status == 400:
        detail = scim_error(response, 400, "invalidValue")
        assert len(detail) < 200  # the number is not echoed in full


@pytest.mark.parametrize(
    "body",
    [
        {"count": 1.5},
        {"count": True},
        {"startIndex": "one"},
        {"startIndex": [1]},
        {"count": {"n": 1}},
    ],
)
def test_numbers_in_a_search_request_that_are_not_integers(
    client: TestClient, body: dict[str, Any]
) -> None:
    response = client.post("/scim/v2/Users/.search", json={"schemas": [SEARCH], **body})
    scim_error(response, 400, "invalidValue")


@pytest.mark.parametrize(
    "text",
    [
        'meta.created gt "0001-01-01T00:00:00+01:00"',
        'meta.lastModified lt "9999-12-31T23:59:59-01:00"',
    ],
)
def test_a_date_outside_the_calendar_in_utc_is_invalid_filter(
    client: TestClient, text: str
) -> None:
    response = client.get("/scim/v2/Users", params={"filter": text})
    assert "years 1 to 9999" in scim_error(response, 400, "invalidFilter")


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("resource", ["Users", "Groups"])
def test_a_nul_in_a_resource_id_is_404_on_every_database(
    client: TestClient, method: str, resource: str
) -> None:
    response = client.request(method, f"/scim/v2/{resource}/a%00b", json={})
    assert response.status_code == 404, response.text
    assert response.json()["status"] == "404"
