"""The ``[limits]`` a request must keep to: each enforced with a clear SCIM error, none
letting a refused request change anything, and the standard ones advertised by
``/ServiceProviderConfig`` (RFC 7643 §5).

Body size and Bulk size: ``413``. JSON nesting and repeated keys: ``400 invalidSyntax``.
Filter length, comparisons and nesting: ``400 invalidFilter``. Text longer than
``max_string_length`` (or than a database column holds): ``400 invalidValue`` naming
the attribute. Operations per PATCH: ``413``, like operations per Bulk request
(RFC 7644 §3.7.4); ``tooMany`` (§3.12) is about a filter's results. ``count`` above
``maxResults`` is lowered to it; a ``startIndex`` beyond any page is an empty page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import String
from starlette.testclient import TestClient

from gateway.config import Settings
from gateway.routes.common import MAX_START_INDEX
from gateway.scim.resource import COLUMN_LENGTHS, VALUE_TYPE_LENGTH
from gateway.store.tables import Group, User, UserValue
from tests.conftest import GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, make_client, new_group, new_user
from tests.test_hostile_input import scim_error, team_snapshot

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
HUGE = 1278005395470099370999808

STRING_LIMIT = 64


@pytest.fixture
def tight(settings: Settings, team_slug: str) -> Iterator[TestClient]:
    """A client on a gateway with small limits on filters, nesting and text."""
    limits = replace(
        settings.limits,
        max_results=5,
        default_count=5,
        max_body_bytes=8192,
        max_json_depth=4,
        max_filter_length=120,
        max_filter_terms=3,
        max_filter_depth=2,
        max_string_length=STRING_LIMIT,
        max_patch_operations=5,
        bulk_max_operations=3,
        bulk_max_payload_bytes=8192,
    )
    yield from make_client(settings.replace(limits=limits), team_slug)


def patch_body(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


# --- body size ---------------------------------------------------------------------


def test_a_body_over_max_body_bytes_is_413_declared_or_streamed(tight: TestClient) -> None:
    user = new_user(tight, "alice")
    before = team_snapshot(tight)
    big = {"schemas": [USER_SCHEMA], "userName": "bob", "urn:acme:2.0:User": {}}
    big["urn:acme:2.0:User"] = {f"k{i}": "x" * 60 for i in range(150)}
    detail = scim_error(tight.post("/scim/v2/Users", json=big), 413, None)
    assert "8192 bytes" in detail
    chunks = [b'{"schemas": ["' + USER_SCHEMA.encode() + b'"], "userName": "bob", "title": "']
    chunks += [b"x" * 1024] * 9 + [b'"}']
    response = tight.put(f"/scim/v2/Users/{user['id']}", content=iter(chunks))
    assert "content-length" not in response.request.headers  # sent chunked
    scim_error(response, 413, None)
    assert team_snapshot(tight) == before


# --- JSON nesting ------------------------------------------------------------------------


def nested(levels: int) -> dict[str, Any]:
    """A User body ``levels`` deep: the body, a custom extension, then objects."""
    assert levels >= 2
    inner: dict[str, Any] = {"leaf": 1}  # level 2, as the extension itself
    for _ in range(levels - 2):
        inner = {"a": inner}
    return {"schemas": [USER_SCHEMA], "userName": "deep", "urn:acme:2.0:User": inner}


def test_json_nested_deeper_than_max_json_depth_is_invalid_syntax(tight: TestClient) -> None:
    before = team_snapshot(tight)
    detail = scim_error(tight.post("/scim/v2/Users", json=nested(5)), 400, "invalidSyntax")
    assert "deeper than 4 levels" in detail
    # Deeper than the JSON parser itself goes: the same answer.
    content = b"[" * 2000 + b"]" * 2000
    detail = scim_error(tight.post("/scim/v2/Users", content=content), 400, "invalidSyntax")
    assert "deeper than 4 levels" in detail
    assert team_snapshot(tight) == before
    assert tight.post("/scim/v2/Users", json=nested(4)).status_code == 201


def test_bulk_allows_its_envelope_on_top_of_max_json_depth(tight: TestClient) -> None:
    def bulk(levels: int) -> dict[str, Any]:
        op = {"method": "POST", "path": "/Users", "bulkId": "a", "data": nested(levels)}
        return {"schemas": [BULK], "Operations": [op]}

    scim_error(tight.post("/scim/v2/Bulk", json=bulk(5)), 400, "invalidSyntax")
    response = tight.post("/scim/v2/Bulk", json=bulk(4))
    assert response.json()["Operations"][0]["status"] == "201"


# --- filters -------------------------------------------------------------------------


def test_a_filter_longer_than_max_filter_length_is_invalid_filter(tight: TestClient) -> None:
    at_limit = 'userName eq "' + "x" * 106 + '"'
    assert len(at_limit) == 120
    assert tight.get("/scim/v2/Users", params={"filter": at_limit}).status_code == 200
    over = at_limit[:-1] + 'x"'
    for response in (
        tight.get("/scim/v2/Users", params={"filter": over}),
        tight.post("/scim/v2/Groups/.search", json={"schemas": [SEARCH], "filter": over}),
        tight.post("/scim/v2/.search", json={"schemas": [SEARCH], "filter": over}),
    ):
        assert "longer than the limit of 120" in scim_error(response, 400, "invalidFilter")


def test_a_filter_with_more_than_max_filter_terms_is_invalid_filter(tight: TestClient) -> None:
    three = 'userName eq "a" or userName eq "b" or emails[value pr]'
    assert tight.get("/scim/v2/Users", params={"filter": three}).status_code == 200
    four = three + ' or title eq "c"'
    for response in (
        tight.get("/scim/v2/Users", params={"filter": four}),
        tight.post("/scim/v2/Users/.search", json={"schemas": [SEARCH], "filter": four}),
    ):
        assert "more than 3 comparisons" in scim_error(response, 400, "invalidFilter")


def test_a_filter_nested_deeper_than_max_filter_depth_is_invalid_filter(tight: TestClient) -> None:
    two = 'not (emails[type eq "work"])'
    assert tight.get("/scim/v2/Users", params={"filter": two}).status_code == 200
    for three in ('not ((emails[type eq "work"]))', "((not (userName pr)))"):
        detail = scim_error(
            tight.get("/scim/v2/Users", params={"filter": three}), 400, "invalidFilter"
        )
        assert "deeper than 2 levels" in detail


def test_default_filter_limits_hold_for_long_chains(client: TestClient) -> None:
    # The defaults (200 comparisons, 50 levels) compile to SQL both databases run.
    new_user(client, "u7")
    terms = ['userName eq "u7"'] + ['emails.value eq "x"'] * 100 + ['title eq "x"'] * 99
    chain = " or ".join(terms)
    response = client.get("/scim/v2/Users", params={"filter": chain})
    assert response.json()["totalResults"] == 1
    deep = "not (" * 24 + "userName pr" + ")" * 24
    response = client.get("/scim/v2/Users", params={"filter": deep})
    assert response.json()["totalResults"] == 1
    deep = "not (" + deep + ")"
    response = client.get("/scim/v2/Users", params={"filter": deep})
    assert response.json()["totalResults"] == 0
    deeper = "(" * 50 + 'userName eq "u7"' + ")" * 50
    assert client.get("/scim/v2/Users", params={"filter": deeper}).json()["totalResults"] == 1
    detail = scim_error(
        client.get("/scim/v2/Users", params={"filter": "(" + deeper + ")"}), 400, "invalidFilter"
    )
    assert "deeper than 50 levels" in detail
    detail = scim_error(
        client.get("/scim/v2/Users", params={"filter": chain + " or title pr"}),
        400,
        "invalidFilter",
    )
    assert "more than 200 comparisons" in detail


# --- PATCH and Bulk operations -------------------------------------------------------------


def test_more_patch_operations_than_max_patch_operations_is_413(tight: TestClient) -> None:
    user = new_user(tight, "alice")
    group = new_group(tight, "Staff")
    ops = [{"op": "replace", "path": "displayName", "value": f"n{i}"} for i in range(6)]
    before = team_snapshot(tight)
    for path in (f"/scim/v2/Users/{user['id']}", f"/scim/v2/Groups/{group['id']}"):
        detail = scim_error(tight.patch(path, json=patch_body(*ops)), 413, None)
        assert "6 operations" in detail
        assert "at most 5" in detail
    assert team_snapshot(tight) == before
    response = tight.patch(f"/scim/v2/Users/{user['id']}", json=patch_body(*ops[:5]))
    assert response.json()["displayName"] == "n4"


def test_more_bulk_operations_than_max_operations_is_413(tight: TestClient) -> None:
    ops = [
        {"method": "POST", "path": "/Users", "bulkId": str(i), "data": nested(3)} for i in range(4)
    ]
    before = team_snapshot(tight)
    detail = scim_error(
        tight.post("/scim/v2/Bulk", json={"schemas": [BULK], "Operations": ops}), 413, None
    )
    assert "maxOperations" in detail
    assert team_snapshot(tight) == before


# --- paging ---------------------------------------------------------------------------


def test_count_is_clamped_to_max_results_which_is_advertised(tight: TestClient) -> None:
    for i in range(7):
        new_user(tight, f"u{i}")
    advertised = tight.get("/scim/v2/ServiceProviderConfig").json()["filter"]
    assert advertised == {"supported": True, "maxResults": 5}
    for count in ("6", "1000000", str(HUGE)):
        page = tight.get("/scim/v2/Users", params={"count": count}).json()
        assert page["itemsPerPage"] == 5
        assert page["totalResults"] == 7
    page = tight.post("/scim/v2/Users/.search", json={"schemas": [SEARCH], "count": HUGE}).json()
    assert page["itemsPerPage"] == 5
    page = tight.get("/scim/v2/Users", params={"count": "-3"}).json()
    assert (page["itemsPerPage"], page["totalResults"]) == (0, 7)


@pytest.mark.parametrize("start", [str(HUGE), str(2**63), str(MAX_START_INDEX + 1), "1e400"])
def test_a_huge_start_index_is_an_empty_page(client: TestClient, start: str) -> None:
    new_user(client, "alice")
    new_group(client, "Staff")
    for endpoint in ("Users", "Groups"):
        response = client.get(f"/scim/v2/{endpoint}", params={"startIndex": start})
        if start == "1e400":
            scim_error(response, 400, "invalidValue")
            continue
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["Resources"] == []
        assert page["totalResults"] == 1
        assert page["startIndex"] == MAX_START_INDEX
    for path in ("/scim/v2/Users/.search", "/scim/v2/.search"):
        body = {"schemas": [SEARCH], "startIndex": HUGE, "filter": 'userName eq "alice"'}
        page = client.post(path, json=body).json()
        assert (page["Resources"], page["startIndex"]) == ([], MAX_START_INDEX)
    body = {"schemas": [SEARCH], "startIndex": 1e300}
    assert client.post("/scim/v2/.search", json=body).json()["startIndex"] == MAX_START_INDEX


# --- text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "named"),
    [
        ({"displayName": "x" * (STRING_LIMIT + 1)}, "'displayName'"),
        ({"name": {"givenName": "x" * (STRING_LIMIT + 1)}}, "'name.givenName'"),
        ({"emails": [{"value": "a@x"}, {"value": "x" * 70}]}, "'emails[1].value'"),
        ({ENTERPRISE: {"department": "x" * 70}}, f"'{ENTERPRISE}.department'"),
        ({"urn:acme:2.0:User": {"badge": ["ok", "x" * 70]}}, "'urn:acme:2.0:User.badge[1]'"),
        ({"x" * 70: "short"}, "attribute name"),
    ],
    ids=["simple", "complex", "multi-valued", "enterprise", "custom", "attribute-name"],
)
def test_text_longer_than_max_string_length_is_invalid_value_naming_it(
    tight: TestClient, attrs: dict[str, Any], named: str
) -> None:
    user = new_user(tight, "alice")
    before = team_snapshot(tight)
    body = {"schemas": [USER_SCHEMA], "userName": "bob", **attrs}
    for response in (
        tight.post("/scim/v2/Users", json=body),
        tight.put(f"/scim/v2/Users/{user['id']}", json={**body, "userName": "alice"}),
    ):
        detail = scim_error(response, 400, "invalidValue")
        assert named in detail
        assert str(STRING_LIMIT) in detail
    assert team_snapshot(tight) == before


def test_text_at_max_string_length_is_accepted(tight: TestClient) -> None:
    body = {"displayName": "x" * STRING_LIMIT, "emails": [{"value": "e" * STRING_LIMIT}]}
    user = new_user(tight, "alice", **body)
    assert user["displayName"] == "x" * STRING_LIMIT


def test_max_string_length_covers_patch_bulk_and_groups(tight: TestClient) -> None:
    user = new_user(tight, "alice")
    group = new_group(tight, "Staff")
    long = "x" * (STRING_LIMIT + 1)
    before = team_snapshot(tight)
    ops = [
        {"op": "add", "path": "nickName", "value": "ok"},
        {"op": "replace", "path": "name", "value": {"familyName": long}},
    ]
    detail = scim_error(
        tight.patch(f"/scim/v2/Users/{user['id']}", json=patch_body(*ops)), 400, "invalidValue"
    )
    assert "'name.familyName' in operation 2" in detail
    detail = scim_error(
        tight.patch(
            f"/scim/v2/Groups/{group['id']}",
            json=patch_body({"op": "replace", "value": {"displayName": long}}),
        ),
        400,
        "invalidValue",
    )
    assert "'Operations[0].value.displayName'" in detail
    body = {"schemas": [GROUP_SCHEMA], "displayName": long}
    assert "'displayName'" in scim_error(
        tight.post("/scim/v2/Groups", json=body), 400, "invalidValue"
    )
    op = {"method": "POST", "path": "/Users", "bulkId": "a", "data": {**nested(3), "title": long}}
    detail = scim_error(
        tight.post("/scim/v2/Bulk", json={"schemas": [BULK], "Operations": [op]}),
        400,
        "invalidValue",
    )
    assert "'Operations[0].data.title'" in detail
    assert team_snapshot(tight) == before


def test_a_search_filter_is_bounded_by_max_filter_length_not_max_string_length(
    tight: TestClient,
) -> None:
    text = 'userName eq "' + "x" * 90 + '"'  # longer than 64, shorter than 120
    response = tight.post("/scim/v2/Users/.search", json={"schemas": [SEARCH], "filter": text})
    assert response.status_code == 200, response.text


# --- database columns ---------------------------------------------------------------------


def test_the_column_limits_are_the_columns_lengths() -> None:
    users, values, groups = User.__table__, UserValue.__table__, Group.__table__  # type: ignore[attr-defined]
    assert users.c.user_name.type.length == COLUMN_LENGTHS["userName"]
    assert users.c.user_name_ci.type.length == COLUMN_LENGTHS["userName"]
    assert users.c.external_id.type.length == COLUMN_LENGTHS["externalId"]
    assert groups.c.external_id.type.length == COLUMN_LENGTHS["externalId"]
    assert values.c.type.type.length == VALUE_TYPE_LENGTH
    # Every other bounded column holds what the gateway writes itself, never client text.
    internal = {"id", "state", "role", "attr"}
    for table in (users, values, groups):
        bounded = {
            c.name for c in table.c if isinstance(c.type, String) and c.type.length is not None
        }
        assert bounded - internal <= {"user_name", "user_name_ci", "external_id", "type"}


@pytest.mark.parametrize(
    ("attrs", "named", "limit"),
    [
        ({"userName": "u" * 513}, "'userName'", 512),
        ({"userName": "ß" * 300}, "'userName' is 600 characters long once case-folded", 512),
        ({"externalId": "e" * 513}, "'externalId'", 512),
        ({"emails": [{"value": "a@x", "type": "t" * 65}]}, "'emails[0].type'", 64),
        ({"addresses": [{"type": "t" * 65, "locality": "x"}]}, "'addresses[0].type'", 64),
    ],
    ids=["userName", "userName-folded", "externalId", "email-type", "address-type"],
)
def test_text_longer_than_its_column_is_invalid_value_on_every_database(
    client: TestClient, attrs: dict[str, Any], named: str, limit: int
) -> None:
    user = new_user(client, "alice")
    before = team_snapshot(client)
    body = {"schemas": [USER_SCHEMA], "userName": "bob", **attrs}
    detail = scim_error(client.post("/scim/v2/Users", json=body), 400, "invalidValue")
    assert named in detail
    assert f"limit is {limit}" in detail
    ops = [{"op": "replace", "value": attrs}]
    response = client.patch(f"/scim/v2/Users/{user['id']}", json=patch_body(*ops))
    assert named.split(" is ")[0] in scim_error(response, 400, "invalidValue")
    assert team_snapshot(client) == before


def test_text_as_long_as_its_column_is_stored_on_every_database(client: TestClient) -> None:
    user = new_user(
        client,
        "u" * 512,
        externalId="e" * 512,
        emails=[{"value": "a@x", "type": "t" * 64}],
    )
    fetched = client.get(f"/scim/v2/Users/{user['id']}").json()
    assert (len(fetched["userName"]), len(fetched["externalId"])) == (512, 512)
    assert fetched["emails"][0]["type"] == "t" * 64
    group = new_group(client, "Staff", externalId="g" * 512)
    assert client.get(f"/scim/v2/Groups/{group['id']}").json()["externalId"] == "g" * 512
    body = {"schemas": [GROUP_SCHEMA], "displayName": "More", "externalId": "g" * 513}
    assert "'externalId'" in scim_error(
        client.post("/scim/v2/Groups", json=body), 400, "invalidValue"
    )
