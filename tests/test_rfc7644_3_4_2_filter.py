"""RFC 7644 §3.4.2.2: filtering ``GET /Users`` and ``GET /Groups`` over HTTP.

Every filter is evaluated by the database; the last tests prove it from the SQL
the gateway sends.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ENTERPRISE, ERROR, new_group, new_user
from tests.statements import recorded, rows_returned

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"


def seed(client: TestClient) -> dict[str, dict[str, Any]]:
    """Seven users with distinct attribute shapes, keyed by userName."""
    users: dict[str, dict[str, Any]] = {}
    users["jsmith"] = new_user(
        client,
        "jsmith",
        externalId="XYZ-1",
        name={"givenName": "John", "familyName": "Smith"},
        userType="Intern",
        active=False,
        emails=[{"value": "jsmith@example.org", "type": "work"}],
    )
    users["bjensen"] = new_user(
        client,
        "bjensen",
        externalId="abc",
        name={
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara",
        },
        displayName="Babs Jensen",
        title="Tour Guide",
        userType="Employee",
        active=True,
        emails=[
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        phoneNumbers=[{"value": "555-555-5555", "type": "work"}],
        schemas=[USER_URN, ENTERPRISE],
        **{
            ENTERPRISE: {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": {"value": users["jsmith"]["id"]},
            }
        },
    )
    users["omalley"] = new_user(
        client,
        "omalley",
        name={"familyName": "O'Malley", "givenName": "Kevin"},
        title="Engineer",
        userType="Employee",
        emails=[{"value": "kevin@example.org", "type": "home"}],
        schemas=[USER_URN, ENTERPRISE],
        **{ENTERPRISE: {"employeeNumber": "42", "department": "Engineering"}},
    )
    users["ewan"] = new_user(
        client,
        "ewan",
        name={"familyName": "Ewing", "givenName": "Ewan"},
        userType="Employee",
        emails=[
            {"value": "ewan@other.test", "type": "work"},
            {"value": "ewan@example.com", "type": "home"},
        ],
        phoneNumbers=[{"value": "+1-555-0100", "type": "mobile"}],
    )
    users["kim"] = new_user(
        client,
        "kim",
        userType="Employee",
        emails=[{"value": "kim@other.test", "type": "home"}],
    )
    users["JDoe"] = new_user(
        client,
        "JDoe",
        title="Contractor Lead",
        userType="Contractor",
        emails=[{"value": "jdoe@example.net", "type": "work"}],
        ims=[{"value": "jdoe@foo.com", "type": "xmpp"}],
    )
    users["zed"] = new_user(client, "zed")
    return users


ALL = {"jsmith", "bjensen", "omalley", "ewan", "kim", "JDoe", "zed"}


def found(client: TestClient, filter_text: str, path: str = "/scim/v2/Users") -> set[str]:
    """The names of the resources ``filter_text`` selects (userName or displayName)."""
    response = client.get(path, params={"filter": filter_text, "count": 1000})
    assert response.status_code == 200, response.text
    body = response.json()
    resources = body.get("Resources", [])
    assert body["totalResults"] == len(resources)
    key = "userName" if path.endswith("/Users") else "displayName"
    names = {r[key] for r in resources}
    assert len(names) == len(resources), "a resource was returned twice"
    return names


def invalid_filter(client: TestClient, filter_text: str, path: str = "/scim/v2/Users") -> None:
    response = client.get(path, params={"filter": filter_text})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "400"
    assert body["scimType"] == "invalidFilter"


# --- the example filters of RFC 7644 §3.4.2.2 ------------------------------------------

RFC_EXAMPLES = [
    ('userName eq "bjensen"', {"bjensen"}),
    ('name.familyName co "O\'Malley"', {"omalley"}),
    ('userName sw "J"', {"jsmith", "JDoe"}),
    (f'{USER_URN}:userName sw "J"', {"jsmith", "JDoe"}),
    ("title pr", {"bjensen", "omalley", "JDoe"}),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', ALL),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', ALL),
    ('meta.lastModified lt "2011-05-13T04:42:34Z"', set()),
    ('meta.lastModified le "2011-05-13T04:42:34Z"', set()),
    ('title pr and userType eq "Employee"', {"bjensen", "omalley"}),
    ('title pr or userType eq "Intern"', {"bjensen", "omalley", "JDoe", "jsmith"}),
    (f'schemas eq "{ENTERPRISE}"', {"bjensen", "omalley"}),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        {"bjensen", "omalley", "ewan"},
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        {"JDoe", "zed"},
    ),
    ('userType eq "Employee" and (emails.type eq "work")', {"bjensen", "ewan"}),
    ('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]', {"bjensen"}),
    (
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        {"bjensen", "JDoe"},
    ),
]


@pytest.mark.parametrize(("filter_text", "expected"), RFC_EXAMPLES)
def test_rfc_example_filters(client: TestClient, filter_text: str, expected: set[str]) -> None:
    seed(client)
    assert found(client, filter_text) == expected


def test_value_path_matches_within_one_element(client: TestClient) -> None:
    """``emails[type eq "work" and value co ...]`` needs one email with both; the
    dotted form may match on two different emails (ewan's work and home)."""
    seed(client)
    assert found(client, 'emails[type eq "work" and value co "@example.com"]') == {"bjensen"}
    assert found(client, 'emails.type eq "work" and emails.value co "@example.com"') == {
        "bjensen",
        "ewan",
    }


# --- comparison operators --------------------------------------------------------------

OPERATORS = [
    ('userName eq "omalley"', {"omalley"}),
    ('userName ne "omalley"', ALL - {"omalley"}),
    ('userName co "mall"', {"omalley"}),
    ('userName sw "ew"', {"ewan"}),
    ('userName ew "sen"', {"bjensen"}),
    ("userName pr", ALL),
    ('userName gt "jsmith"', {"kim", "omalley", "zed"}),
    ('userName ge "jsmith"', {"jsmith", "kim", "omalley", "zed"}),
    ('userName lt "ewan"', {"bjensen"}),
    ('userName le "ewan"', {"bjensen", "ewan"}),
    ('title gt "Engineer"', {"bjensen"}),
    ('title lt "D"', {"JDoe"}),
    ('displayName sw "Babs"', {"bjensen"}),
    ("displayName pr", {"bjensen"}),
    ('phoneNumbers.value co "0100"', {"ewan"}),
    ('phoneNumbers[type eq "work"]', {"bjensen"}),
    ("phoneNumbers pr", {"bjensen", "ewan"}),
    ("emails pr", ALL - {"zed"}),
    ('emails.value ew ".org"', {"jsmith", "bjensen", "omalley"}),
]


@pytest.mark.parametrize(("filter_text", "expected"), OPERATORS)
def test_comparison_operators(client: TestClient, filter_text: str, expected: set[str]) -> None:
    seed(client)
    assert found(client, filter_text) == expected


# --- logical operators and precedence --------------------------------------------------

LOGIC = [
    # "and" binds tighter than "or": Intern, or (Employee and Engineer).
    (
        'userType eq "Intern" or userType eq "Employee" and title eq "Engineer"',
        {"jsmith", "omalley"},
    ),
    (
        'userType eq "Employee" and title eq "Engineer" or userType eq "Intern"',
        {"jsmith", "omalley"},
    ),
    ('(userType eq "Intern" or userType eq "Employee") and title eq "Engineer"', {"omalley"}),
    (
        'userType eq "Intern" or (userType eq "Employee" and title eq "Engineer")',
        {"jsmith", "omalley"},
    ),
    # "not" applies to its parenthesised filter only.
    ('not (userType eq "Employee") and active eq true', {"JDoe", "zed"}),
    ('not (userType eq "Employee" and active eq true)', {"jsmith", "JDoe", "zed"}),
    ('not (userType eq "Employee" or userType eq "Intern")', {"JDoe", "zed"}),
    ('not (not (userName eq "kim"))', {"kim"}),
    ('((userName eq "kim"))', {"kim"}),
    ('userName eq "kim" or userName eq "zed" or userName eq "ewan"', {"kim", "zed", "ewan"}),
    ('userName sw "j" and userName ew "h" and active eq false', {"jsmith"}),
    ('userName eq "kim" AND userType EQ "Employee"', {"kim"}),
]


@pytest.mark.parametrize(("filter_text", "expected"), LOGIC)
def test_logical_operators_and_precedence(
    client: TestClient, filter_text: str, expected: set[str]
) -> None:
    seed(client)
    assert found(client, filter_text) == expected


def test_not_matches_resources_without_the_attribute(client: TestClient) -> None:
    """An absent title is not "Tour Guide", so ``not`` selects users without a title."""
    seed(client)
    assert found(client, 'not (title eq "Tour Guide")') == ALL - {"bjensen"}
    assert found(client, 'not (name.familyName sw "J")') == ALL - {"bjensen"}
    assert found(client, 'not (emails[type eq "work"])') == {"omalley", "kim", "zed"}
    assert found(client, 'emails[not (type eq "work")]') == {"bjensen", "omalley", "ewan", "kim"}


# --- attribute paths -------------------------------------------------------------------

PATHS = [
    ('name.familyName eq "Jensen"', {"bjensen"}),
    ('name.givenName sw "K"', {"omalley"}),
    ('name.formatted co "Barbara J"', {"bjensen"}),
    (f'{USER_URN}:name.familyName eq "Smith"', {"jsmith"}),
    (f'{USER_URN}:emails.value eq "kim@other.test"', {"kim"}),
    (f'{ENTERPRISE}:department eq "Tour Operations"', {"bjensen"}),
    (f'{ENTERPRISE}:employeeNumber eq "42"', {"omalley"}),
    (f"{ENTERPRISE}:department pr", {"bjensen", "omalley"}),
    (f'{ENTERPRISE}:department sw "Eng"', {"omalley"}),
    (f"{ENTERPRISE}:manager pr", {"bjensen"}),
    # Attribute names are case-insensitive (RFC 7643 §2.1), URNs too.
    ('USERNAME eq "bjensen"', {"bjensen"}),
    ('EMAILS.VALUE eq "kim@other.test"', {"kim"}),
    ('Name.FamilyName eq "Ewing"', {"ewan"}),
    ('emails[TYPE eq "home" and VALUE sw "kevin"]', {"omalley"}),
    (f'{ENTERPRISE.upper()}:DEPARTMENT eq "Engineering"', {"omalley"}),
    ('USERTYPE eq "Intern"', {"jsmith"}),
]


@pytest.mark.parametrize(("filter_text", "expected"), PATHS)
def test_attribute_paths(client: TestClient, filter_text: str, expected: set[str]) -> None:
    seed(client)
    assert found(client, filter_text) == expected


def test_enterprise_manager_value(client: TestClient) -> None:
    users = seed(client)
    manager = users["jsmith"]["id"]
    assert found(client, f'{ENTERPRISE}:manager.value eq "{manager}"') == {"bjensen"}
    assert found(client, f'{ENTERPRISE}:manager.value ne "{manager}"') == ALL - {"bjensen"}


def test_id_and_external_id(client: TestClient) -> None:
    users = seed(client)
    bjensen = users["bjensen"]["id"]
    assert found(client, f'id eq "{bjensen}"') == {"bjensen"}
    assert found(client, f'{USER_URN}:id eq "{bjensen}"') == {"bjensen"}
    assert found(client, f'id ne "{bjensen}"') == ALL - {"bjensen"}
    assert found(client, "externalId pr") == {"bjensen", "jsmith"}
    assert found(client, 'externalId eq "abc"') == {"bjensen"}


def test_user_filter_on_group_membership(client: TestClient) -> None:
    users = seed(client)
    guides = new_group(client, "Tour Guides", [users["bjensen"]["id"], users["jsmith"]["id"]])
    new_group(client, "Engineers", [users["omalley"]["id"]])
    assert found(client, f'groups.value eq "{guides["id"]}"') == {"bjensen", "jsmith"}
    assert found(client, f'groups eq "{guides["id"]}"') == {"bjensen", "jsmith"}
    assert found(client, 'groups[display eq "Engineers"]') == {"omalley"}
    assert found(client, "groups pr") == {"bjensen", "jsmith", "omalley"}
    assert found(client, "not (groups pr)") == {"ewan", "kim", "JDoe", "zed"}


# --- case sensitivity: caseExact -------------------------------------------------------

CASE = [
    # userName, emails.value, names and titles are caseExact=false.
    ('userName eq "BJENSEN"', {"bjensen"}),
    ('userName eq "jdoe"', {"JDoe"}),
    ('userName sw "JD"', {"JDoe"}),
    ('userName ne "BJENSEN"', ALL - {"bjensen"}),
    ('userName lt "EWAN"', {"bjensen"}),
    ('emails co "EXAMPLE"', {"jsmith", "bjensen", "omalley", "ewan", "JDoe"}),
    ('emails.value eq "BJENSEN@EXAMPLE.COM"', {"bjensen"}),
    ('emails[value ew "@EXAMPLE.ORG"]', {"jsmith", "omalley"}),
    ('name.familyName eq "jensen"', {"bjensen"}),
    ('displayName eq "BABS JENSEN"', {"bjensen"}),
    ('title co "guide"', {"bjensen"}),
    (f'{ENTERPRISE}:department eq "ENGINEERING"', {"omalley"}),
    # externalId is caseExact=true.
    ('externalId eq "ABC"', set()),
    ('externalId eq "abc"', {"bjensen"}),
    ('externalId sw "xyz"', set()),
    ('externalId sw "XYZ"', {"jsmith"}),
]


@pytest.mark.parametrize(("filter_text", "expected"), CASE)
def test_case_exact(client: TestClient, filter_text: str, expected: set[str]) -> None:
    seed(client)
    assert found(client, filter_text) == expected


def test_id_is_case_exact(client: TestClient) -> None:
    users = seed(client)
    assert found(client, f'id eq "{users["kim"]["id"].upper()}"') == set()


# --- booleans and null -----------------------------------------------------------------

LITERALS = [
    ("active eq false", {"jsmith"}),
    ("active eq true", ALL - {"jsmith"}),
    ("active ne true", {"jsmith"}),
    ("active ne false", ALL - {"jsmith"}),
    ("active eq FALSE", {"jsmith"}),
    ("title eq null", {"jsmith", "ewan", "kim", "zed"}),
    ("title ne null", {"bjensen", "omalley", "JDoe"}),
    ("active pr", ALL),
    ("emails[primary eq true]", {"bjensen"}),
    ('emails[type eq "work" and primary eq false]', {"jsmith", "ewan", "JDoe"}),
]


@pytest.mark.parametrize(("filter_text", "expected"), LITERALS)
def test_booleans_and_null(client: TestClient, filter_text: str, expected: set[str]) -> None:
    seed(client)
    assert found(client, filter_text) == expected


# --- dateTimes -------------------------------------------------------------------------


def _created(user: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(user["meta"]["created"].replace("Z", "+00:00"))


def test_meta_created_and_last_modified(client: TestClient) -> None:
    first = new_user(client, "first")
    time.sleep(0.02)
    second = new_user(client, "second")
    time.sleep(0.02)
    third = new_user(client, "third")
    at = second["meta"]["created"]
    assert found(client, f'meta.created ge "{at}"') == {"second", "third"}
    assert found(client, f'meta.created gt "{at}"') == {"third"}
    assert found(client, f'meta.created lt "{at}"') == {"first"}
    assert found(client, f'meta.created le "{at}"') == {"first", "second"}
    assert found(client, f'meta.created eq "{at}"') == {"second"}
    assert found(client, f'meta.lastModified ge "{third["meta"]["lastModified"]}"') == {"third"}
    # The same instant written with another UTC offset.
    plus_two = _created(second).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert found(client, f'meta.created ge "{plus_two}"') == {"second", "third"}
    # Well before and well after everything.
    before = (_created(first) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert found(client, f'meta.created gt "{before}"') == {"first", "second", "third"}
    assert found(client, f'meta.lastModified gt "{after}"') == set()


def test_last_modified_follows_updates(client: TestClient) -> None:
    new_user(client, "quiet")
    busy = new_user(client, "busy")
    time.sleep(0.02)
    mark = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    time.sleep(0.02)
    body = {"schemas": [USER_URN], "userName": "busy", "title": "Changed"}
    response = client.put(f"/scim/v2/Users/{busy['id']}", json=body)
    assert response.status_code == 200, response.text
    assert found(client, f'meta.lastModified gt "{mark}"') == {"busy"}
    assert found(client, f'meta.created gt "{mark}"') == set()


# --- LIKE wildcards are literal --------------------------------------------------------


def test_wildcard_characters_are_literal(client: TestClient) -> None:
    for name in ("a%b", "a_b", "axb", "a\\b", "aab"):
        new_user(client, name)
    assert found(client, 'userName co "%"') == {"a%b"}
    assert found(client, 'userName co "_"') == {"a_b"}
    assert found(client, 'userName sw "a_"') == {"a_b"}
    assert found(client, 'userName ew "%b"') == {"a%b"}
    assert found(client, 'userName co "\\\\"') == {"a\\b"}
    assert found(client, 'userName eq "a_b"') == {"a_b"}
    assert found(client, 'userName co "a"') == {"a%b", "a_b", "axb", "a\\b", "aab"}


# --- invalid filters -------------------------------------------------------------------

INVALID = [
    'userName eq "bjensen',  # unterminated string
    "userName eq",  # missing value
    'userName zz "bjensen"',  # unknown operator
    '(userName eq "bjensen"',  # unbalanced parenthesis
    'userName eq "bjensen" and',  # dangling operator
    'emails[type eq "work"',  # unclosed value filter
    "userName eq bjensen",  # unquoted string
    'nosuchattribute eq "x"',  # not an attribute of User
    'name.nosuch eq "x"',  # not a sub-attribute
    f'{ENTERPRISE}:nosuch eq "x"',  # not in the extension
    'emails[nosuch eq "x"]',  # not a sub-attribute of emails
    'active eq "yes"',  # a boolean compared with a string
    "active gt true",  # ordering a boolean
    'active co "t"',  # substring of a boolean
    'meta.created gt "yesterday"',  # not a dateTime
    "meta.created gt 5",  # a dateTime compared with a number
    "userName gt true",  # a string compared with a boolean
    "userName eq 42",  # a string compared with a number
    "members pr",  # a Group attribute on /Users
]


@pytest.mark.parametrize("filter_text", INVALID)
def test_invalid_filter_is_400(client: TestClient, filter_text: str) -> None:
    invalid_filter(client, filter_text)


def test_invalid_group_filter_is_400(client: TestClient) -> None:
    invalid_filter(client, 'userName eq "bjensen"', "/scim/v2/Groups")
    invalid_filter(client, 'members[nosuch eq "x"]', "/scim/v2/Groups")
    invalid_filter(client, 'displayName eq "x', "/scim/v2/Groups")


def test_filter_longer_than_the_limit_is_400(limited: TestClient) -> None:
    short = 'userName eq "' + "x" * 150 + '"'
    assert limited.get("/scim/v2/Users", params={"filter": short}).status_code == 200
    long = 'userName eq "' + "x" * 200 + '"'
    invalid_filter(limited, long)
    invalid_filter(limited, long, "/scim/v2/Groups")


# --- groups ----------------------------------------------------------------------------


def test_group_filters(client: TestClient) -> None:
    users = seed(client)
    bjensen, jsmith, omalley = (users[n]["id"] for n in ("bjensen", "jsmith", "omalley"))
    guides = new_group(client, "Tour Guides", [bjensen, jsmith], externalId="g-1")
    engineers = new_group(client, "Engineers", [omalley])
    new_group(client, "Empty")
    new_group(client, "All Staff", [guides["id"], omalley])
    groups = "/scim/v2/Groups"
    assert found(client, 'displayName eq "Tour Guides"', groups) == {"Tour Guides"}
    assert found(client, 'displayName eq "tour guides"', groups) == {"Tour Guides"}
    assert found(client, 'DISPLAYNAME sw "E"', groups) == {"Engineers", "Empty"}
    assert found(client, 'displayName co "staff"', groups) == {"All Staff"}
    assert found(client, f'members[value eq "{bjensen}"]', groups) == {"Tour Guides"}
    assert found(client, f'members.value eq "{omalley}"', groups) == {"Engineers", "All Staff"}
    assert found(client, f'members eq "{jsmith}"', groups) == {"Tour Guides"}
    assert found(client, f'members[value eq "{guides["id"]}"]', groups) == {"All Staff"}
    assert found(client, 'members[type eq "Group"]', groups) == {"All Staff"}
    assert found(client, "members pr", groups) == {"Tour Guides", "Engineers", "All Staff"}
    assert found(client, "not (members pr)", groups) == {"Empty"}
    assert found(client, 'externalId eq "g-1"', groups) == {"Tour Guides"}
    assert found(client, 'externalId eq "G-1"', groups) == set()
    assert found(client, f'id eq "{engineers["id"]}"', groups) == {"Engineers"}
    assert found(client, f'members.value eq "{bjensen}" or displayName eq "Empty"', groups) == {
        "Tour Guides",
        "Empty",
    }
    assert found(client, 'meta.created gt "2011-05-13T04:42:34Z"', groups) == {
        "Tour Guides",
        "Engineers",
        "Empty",
        "All Staff",
    }


# --- filters run in the database -------------------------------------------------------


def test_filter_is_evaluated_by_the_database(client: TestClient) -> None:
    for i in range(30):
        new_user(
            client,
            f"user{i:02d}",
            emails=[{"value": f"user{i:02d}@example.com", "type": "work"}],
        )
    with recorded(client) as statements:
        response = client.get("/scim/v2/Users", params={"filter": 'userName eq "USER07"'})
    assert response.status_code == 200, response.text
    assert [r["userName"] for r in response.json()["Resources"]] == ["user07"]

    selects = [s for s in statements if s.is_select]
    on_users = [s for s in selects if s.touches("scim_user")]
    assert on_users, statements
    for statement in on_users:
        # Every read of scim_user carries the filter (the folded value) in its WHERE.
        assert "WHERE" in statement.sql.upper(), statement.sql
        assert "user07" in statement.values(), statement
    assert any("LIMIT" in s.sql.upper() for s in on_users), on_users
    for statement in selects:
        assert rows_returned(client, statement) <= 1, statement.sql


@pytest.mark.parametrize(
    "filter_text",
    [
        'emails[type eq "work" and value co "07@"]',
        'emails.value sw "USER07@"',
        'not (userName ne "user07")',
        'userName eq "user07" or userName eq "nobody"',
    ],
)
def test_complex_filters_are_evaluated_by_the_database(
    client: TestClient, filter_text: str
) -> None:
    for i in range(30):
        new_user(
            client,
            f"user{i:02d}",
            emails=[{"value": f"user{i:02d}@example.com", "type": "work"}],
        )
    with recorded(client) as statements:
        response = client.get("/scim/v2/Users", params={"filter": filter_text})
    assert response.status_code == 200, response.text
    assert [r["userName"] for r in response.json()["Resources"]] == ["user07"]
    selects = [s for s in statements if s.is_select]
    assert selects
    for statement in selects:
        assert rows_returned(client, statement) <= 1, statement.sql


def test_group_filter_is_evaluated_by_the_database(client: TestClient) -> None:
    member = new_user(client, "member")
    for i in range(20):
        new_group(client, f"group{i:02d}", [member["id"]] if i == 3 else [])
    with recorded(client) as statements:
        response = client.get(
            "/scim/v2/Groups", params={"filter": f'members[value eq "{member["id"]}"]'}
        )
    assert response.status_code == 200, response.text
    assert [g["displayName"] for g in response.json()["Resources"]] == ["group03"]
    selects = [s for s in statements if s.is_select]
    assert any(s.touches("scim_group") and "LIMIT" in s.sql.upper() for s in selects)
    for statement in selects:
        assert rows_returned(client, statement) <= 1, statement.sql
