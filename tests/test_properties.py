"""Property-based tests (Hypothesis) of the filter parser, the PATCH engine and the
resource validators, driven through the real application on SQLite and PostgreSQL.

Properties:

- parsing any text either yields a filter (or PATCH path) or raises the SCIM error
  for it, nothing else; printing a parsed filter or path and parsing the print gives
  the same tree (:func:`gateway.scim.filter.to_string`, ``str(PatchPath)``);
- no filter, ``sortBy``, paging parameter or body (arbitrary JSON, arbitrary bytes,
  near-valid resources and PatchOp messages) makes the gateway answer ``5xx``;
- a request that fails writes nothing: the team's rows in ``scim_user``,
  ``scim_user_value``, ``scim_group`` and ``scim_membership`` are as they were.

Examples per property (``max_examples``) are set so the file runs in seconds: 400 for
each parser property, 40 for each property over HTTP, per database. Runs are
derandomized, so CI always tries the same examples. To fuzz harder, set
``SCIM_GATEWAY_FUZZ_EXAMPLES`` (e.g. 2000): every property then runs that many random
examples, and ``pytest --hypothesis-show-statistics`` shows what each one tried.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from gateway.config import DatabaseSettings, RateLimitSettings, Settings
from gateway.scim.errors import InvalidFilter, InvalidPath
from gateway.scim.filter import (
    And,
    AttrPath,
    Compare,
    Node,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
    parse_filter,
    parse_path,
    to_string,
)
from tests.conftest import (
    BACKENDS,
    ENTERPRISE,
    GROUP_SCHEMA,
    PATCH_OP,
    USER_SCHEMA,
    make_client,
    new_group,
    new_user,
)
from tests.test_hostile_input import team_snapshot

FUZZ = int(os.environ.get("SCIM_GATEWAY_FUZZ_EXAMPLES", "0"))
PARSER_EXAMPLES = FUZZ or 400
HTTP_EXAMPLES = FUZZ or 40

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

F = TypeVar("F", bound=Callable[..., Any])


def fuzz(examples: int) -> Callable[[F], F]:
    """Hypothesis settings: ``examples`` examples, no deadline (databases vary)."""
    decorator: Callable[[F], F] = hypothesis_settings(
        max_examples=examples,
        deadline=None,
        derandomize=not FUZZ,
        database=None if not FUZZ else hypothesis_settings.default.database,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )
    return decorator


# --- strategies: filters and paths --------------------------------------------------------

NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_\-]{0,6}", fullmatch=True) | st.sampled_from(
    ["userName", "emails", "value", "type", "not", "and", "or", "pr", "eq", "true", "$ref"]
)
URNS = st.from_regex(
    r"[A-Za-z][A-Za-z0-9+.\-]{0,4}(:[A-Za-z0-9_.$~%+/\-]{1,5}){1,3}", fullmatch=True
) | st.sampled_from([USER_SCHEMA, ENTERPRISE, GROUP_SCHEMA, "urn:acme:2.0:User"])
# Text no database refuses: no NUL, no lone surrogates.
TEXT = st.text(
    alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12
)
NUMBERS = st.integers(min_value=-(2**80), max_value=2**80) | st.floats(
    allow_nan=False, allow_infinity=False
)
ORDERED_OPS = st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])


def attr_paths(*, sub: bool = True) -> st.SearchStrategy[AttrPath]:
    return st.builds(
        AttrPath,
        urn=st.none() | URNS,
        attr=NAMES,
        sub=st.none() | NAMES if sub else st.none(),
    )


def compares(paths: st.SearchStrategy[AttrPath]) -> st.SearchStrategy[Compare]:
    literal = st.builds(Compare, paths, st.sampled_from(["eq", "ne"]), st.none() | st.booleans())
    ordered = st.builds(Compare, paths, ORDERED_OPS, TEXT | NUMBERS)
    return literal | ordered


def filter_trees(
    paths: st.SearchStrategy[AttrPath], *, value_paths: bool = True, leaves: int = 8
) -> st.SearchStrategy[Node]:
    leaf: st.SearchStrategy[Node] = compares(paths) | st.builds(Present, paths)
    if value_paths:
        inner = filter_trees(paths, value_paths=False, leaves=4)
        leaf = leaf | st.builds(ValuePath, attr_paths(sub=False), inner)

    def combine(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        return (
            st.builds(And, children, children)
            | st.builds(Or, children, children)
            | st.builds(Not, children)
        )

    return st.recursive(leaf, combine, max_leaves=leaves)


def patch_paths() -> st.SearchStrategy[PatchPath]:
    plain = st.builds(PatchPath, attr_paths())
    filtered = st.builds(
        PatchPath,
        attr_paths(sub=False),
        filter_trees(attr_paths(), value_paths=False, leaves=4),
        st.none() | NAMES,
    )
    return plain | filtered


# Text that often parses: filter tokens in random order.
TOKENS = st.sampled_from(
    [
        "userName",
        "emails",
        "emails[",
        "]",
        "]",
        ".value",
        "(",
        ")",
        "not",
        "and",
        "or",
        "eq",
        "co",
        "pr",
        "gt",
        '"x"',
        '"a\\"b"',
        '"\\u00e9"',
        "1",
        "-2.5e3",
        "true",
        "null",
        f"{ENTERPRISE}:manager.value",
        "type",
        " ",
        "\t",
    ]
)
FILTER_TEXTS = st.lists(TOKENS, max_size=12).map(" ".join) | st.text(max_size=40)


# --- parser properties --------------------------------------------------------------------


@fuzz(PARSER_EXAMPLES)
@given(FILTER_TEXTS)
def test_parse_filter_raises_nothing_but_invalid_filter(text: str) -> None:
    try:
        node = parse_filter(text)
    except InvalidFilter as exc:
        assert exc.status == 400
        assert exc.to_dict()["scimType"] == "invalidFilter"
    else:
        assert parse_filter(to_string(node)) == node


@fuzz(PARSER_EXAMPLES)
@given(filter_trees(attr_paths()))
def test_a_printed_filter_parses_back_to_itself(node: Node) -> None:
    text = to_string(node)
    assert parse_filter(text, max_length=len(text)) == node
    assert to_string(parse_filter(text, max_length=len(text))) == text


@fuzz(PARSER_EXAMPLES)
@given(patch_paths())
def test_a_printed_patch_path_parses_back_to_itself(path: PatchPath) -> None:
    text = str(path)
    assert parse_path(text, max_length=len(text)) == path
    assert str(parse_path(text, max_length=len(text))) == text


@fuzz(PARSER_EXAMPLES)
@given(FILTER_TEXTS | st.lists(TOKENS, max_size=6).map("".join))
def test_parse_path_raises_nothing_but_invalid_path(text: str) -> None:
    try:
        path = parse_path(text)
    except InvalidPath as exc:
        assert exc.to_dict()["scimType"] == "invalidPath"
    else:
        assert parse_path(str(path)) == path


# --- the application --------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def gateway_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One gateway per database for the whole module, without rate limits (the
    properties send hundreds of requests), and a key of a fresh team."""
    if request.param == "sqlite":
        database = f"sqlite:///{Path(tmp_path_factory.mktemp('properties')) / 'g.sqlite3'}"
    else:
        database = request.getfixturevalue("postgres_url")
    settings = Settings(
        database=DatabaseSettings(url=database),
        rate_limits=RateLimitSettings(per_key=0, per_team=0),
        source="<tests>",
    )
    yield from make_client(settings)


@pytest.fixture(scope="module")
def seeded(gateway_client: TestClient) -> tuple[TestClient, str, str]:
    """The client, a user with multi-valued attributes and a group it belongs to."""
    user = new_user(
        gateway_client,
        "seed-" + uuid.uuid4().hex[:8],
        name={"givenName": "Seed", "familyName": "User"},
        emails=[{"value": "seed@example.com", "type": "work", "primary": True}],
        addresses=[{"locality": "Oslo", "type": "home"}],
        **{ENTERPRISE: {"department": "R&D", "manager": {"value": "m-1"}}},
    )
    group = new_group(gateway_client, "Seeds", [user["id"]])
    return gateway_client, user["id"], group["id"]


def fails_without_writing(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    """Send a request; assert no 5xx, and that a refused one changed no row."""
    before = team_snapshot(client)
    response = client.request(method, path, **kwargs)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/scim+json")
        assert team_snapshot(client) == before, response.text
    return response


KNOWN_KEYS = [
    "schemas",
    "id",
    "meta",
    "externalId",
    "userName",
    "USERNAME",
    "name",
    "givenName",
    "familyName",
    "displayName",
    "nickName",
    "title",
    "active",
    "password",
    "emails",
    "phoneNumbers",
    "addresses",
    "x509Certificates",
    "groups",
    "members",
    "value",
    "type",
    "primary",
    "display",
    "$ref",
    "locality",
    ENTERPRISE,
    "department",
    "manager",
    "urn:acme:2.0:User",
]
KEYS = st.sampled_from(KNOWN_KEYS) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16)
    | st.sampled_from(["work", "User", "Group", "2020-01-01T00:00:00Z", "ß" * 300, "x" * 600])
    | st.sampled_from(["nul\x00", "\x00", "x" * 5000])
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=16,
)
ATTRIBUTES = st.dictionaries(KEYS, JSON, max_size=6)


def resources(schema: str, naming: str) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies that are often valid resources, and often almost."""
    return st.builds(
        lambda schemas, name, rest: {"schemas": schemas, naming: name, **rest},
        st.sampled_from([[schema], [schema, ENTERPRISE], [ENTERPRISE], [], "x"]),
        st.text(min_size=1, max_size=10) | JSON,
        ATTRIBUTES,
    )


def encoded(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


BODIES = (
    st.builds(encoded, JSON, st.booleans())
    | st.builds(encoded, resources(USER_SCHEMA, "userName"), st.booleans())
    | st.binary(max_size=64)
    | st.text(max_size=64).map(lambda t: t.encode("utf-8"))
)


REAL_PATHS = st.sampled_from(
    [
        "userName",
        "displayName",
        "title",
        "active",
        "id",
        "externalId",
        "schemas",
        "name.givenName",
        "emails",
        "emails.value",
        "emails.type",
        "emails.primary",
        "addresses.locality",
        "groups",
        "groups.display",
        "members",
        "members.value",
        "members.type",
        "meta.created",
        "meta.lastModified",
        "meta.resourceType",
        f"{ENTERPRISE}:department",
        f"{ENTERPRISE}:manager.value",
        f"{USER_SCHEMA}:userName",
        "x509Certificates.value",
        "nosuch",
    ]
).map(lambda p: parse_filter(f"{p} pr").path)  # type: ignore[union-attr]
REAL_SUBS = st.sampled_from(["value", "type", "primary", "display", "locality", "$ref"]).map(
    lambda name: AttrPath(None, name)
)
REAL_VALUES = (
    TEXT
    | NUMBERS
    | st.sampled_from(["2020-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "work", "User"])
)


def real_filters() -> st.SearchStrategy[str]:
    """Filters on the gateway's attributes (and some it lacks), as text."""
    literal = st.builds(
        Compare, REAL_PATHS, st.sampled_from(["eq", "ne"]), st.none() | st.booleans()
    )
    ordered = st.builds(Compare, REAL_PATHS, ORDERED_OPS, REAL_VALUES)
    inner = st.recursive(
        st.builds(Compare, REAL_SUBS, ORDERED_OPS, REAL_VALUES) | st.builds(Present, REAL_SUBS),
        lambda c: st.builds(And, c, c) | st.builds(Or, c, c) | st.builds(Not, c),
        max_leaves=3,
    )
    value_path = st.builds(ValuePath, REAL_PATHS.filter(lambda p: p.sub is None), inner)
    leaf = literal | ordered | st.builds(Present, REAL_PATHS) | value_path
    tree = st.recursive(
        leaf,
        lambda c: st.builds(And, c, c) | st.builds(Or, c, c) | st.builds(Not, c),
        max_leaves=6,
    )
    return tree.map(to_string) | FILTER_TEXTS


PAGING = st.none() | st.integers(min_value=-(2**70), max_value=2**90).map(str) | st.text(max_size=6)


@fuzz(HTTP_EXAMPLES)
@given(
    filter=real_filters(),
    sort_by=st.none() | REAL_PATHS.map(str) | st.text(max_size=12),
    order=st.none() | st.sampled_from(["ascending", "DESCENDING", "up"]),
    start=PAGING,
    count=PAGING,
)
def test_no_list_or_search_is_a_server_error(
    seeded: tuple[TestClient, str, str],
    filter: str,
    sort_by: str | None,
    order: str | None,
    start: str | None,
    count: str | None,
) -> None:
    client, _user_id, _group_id = seeded
    params = {"filter": filter, "sortBy": sort_by, "sortOrder": order}
    params |= {"startIndex": start, "count": count}
    query = {k: v for k, v in params.items() if v is not None}
    before = team_snapshot(client)
    for endpoint in ("Users", "Groups"):
        response = client.get(f"/scim/v2/{endpoint}", params=query)
        assert response.status_code in (200, 400), response.text
    search = {"schemas": [SEARCH], **query}
    for path in ("/scim/v2/.search", "/scim/v2/Users/.search"):
        response = client.post(path, json=search)
        assert response.status_code in (200, 400), response.text
    assert team_snapshot(client) == before


@fuzz(HTTP_EXAMPLES)
@given(body=BODIES)
def test_no_created_resource_is_a_server_error_and_a_refused_one_writes_nothing(
    seeded: tuple[TestClient, str, str], body: bytes
) -> None:
    client, _user_id, _group_id = seeded
    for endpoint in ("Users", "Groups"):
        fails_without_writing(client, "POST", f"/scim/v2/{endpoint}", content=body)


@fuzz(HTTP_EXAMPLES)
@given(
    user=resources(USER_SCHEMA, "userName"),
    group=resources(GROUP_SCHEMA, "displayName"),
)
def test_no_replacement_is_a_server_error_and_a_refused_one_writes_nothing(
    seeded: tuple[TestClient, str, str], user: dict[str, Any], group: dict[str, Any]
) -> None:
    client, user_id, group_id = seeded
    fails_without_writing(client, "PUT", f"/scim/v2/Users/{user_id}", json=user)
    fails_without_writing(client, "PUT", f"/scim/v2/Groups/{group_id}", json=group)


# Where a client's text lands: a path of keys into the resource.
TEXT_SLOTS = [
    ["userName"],
    ["displayName"],
    ["externalId"],
    ["title"],
    ["name", "givenName"],
    ["emails", 0, "value"],
    ["emails", 0, "type"],
    ["addresses", 0, "locality"],
    [ENTERPRISE, "department"],
    [ENTERPRISE, "manager", "value"],
    ["urn:acme:2.0:User", "badge"],
]
# Any text: NUL, lone surrogates (sent as JSON escapes), long, growing when case-folded.
ANY_TEXT = (
    st.text(alphabet=st.characters(min_codepoint=0), max_size=24)
    | st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "ß" * 300, "x" * 513, "t" * 65])
    | st.text(min_size=500, max_size=600)
)


def place(path: list[Any], value: Any) -> Any:
    """``value`` at ``path`` inside a fresh JSON value."""
    for key in reversed(path):
        value = [value] if isinstance(key, int) else {key: value}
    return value


def dig(resource: Any, path: list[Any]) -> Any:
    for key in path:
        resource = resource[key]
    return resource


@fuzz(HTTP_EXAMPLES)
@given(slot=st.sampled_from(TEXT_SLOTS), text=ANY_TEXT)
def test_any_text_is_stored_as_sent_or_refused_with_a_400(
    seeded: tuple[TestClient, str, str], slot: list[Any], text: str
) -> None:
    client, user_id, _group_id = seeded
    user = {"schemas": [USER_SCHEMA], "userName": "text-" + uuid.uuid4().hex, **place(slot, text)}
    content = json.dumps(user).encode("ascii")  # lone surrogates sent as escapes
    created = fails_without_writing(client, "POST", "/scim/v2/Users", content=content)
    assert created.status_code in (201, 400, 409), created.text
    if created.status_code == 201:
        stored = client.get(f"/scim/v2/Users/{created.json()['id']}").json()
        assert dig(stored, slot) == text
    replace = {"op": "replace", "value": place(slot, text)}
    patch = json.dumps({"schemas": [PATCH_OP], "Operations": [replace]}).encode("ascii")
    patched = fails_without_writing(client, "PATCH", f"/scim/v2/Users/{user_id}", content=patch)
    assert patched.status_code in (200, 400, 409), patched.text
    if patched.status_code == 200:
        assert dig(patched.json(), slot) == text


OPERATIONS = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "replace", "remove", "Add", "REMOVE", "copy"]) | JSON},
    optional={
        "path": patch_paths().map(str)
        | REAL_PATHS.map(str)
        | st.sampled_from(['emails[type eq "work"].value', 'members[value eq "x"]', ENTERPRISE])
        | TEXT
        | JSON,
        "value": JSON | ATTRIBUTES,
    },
)
PATCHES = st.fixed_dictionaries(
    {"Operations": st.lists(OPERATIONS, min_size=1, max_size=4) | JSON},
    optional={"schemas": st.just([PATCH_OP]) | JSON},
).map(lambda body: {"schemas": [PATCH_OP], **body} if "schemas" not in body else body)


@fuzz(HTTP_EXAMPLES)
@given(body=PATCHES)
def test_no_patch_is_a_server_error_and_a_refused_one_writes_nothing(
    seeded: tuple[TestClient, str, str], body: dict[str, Any]
) -> None:
    client, user_id, group_id = seeded
    for path in (f"/scim/v2/Users/{user_id}", f"/scim/v2/Groups/{group_id}"):
        fails_without_writing(client, "PATCH", path, json=body)


BULK_OPERATIONS = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET"]),
        "path": st.sampled_from(["/Users", "/Groups", "/Users/bulkId:a", "/Nope"]) | TEXT,
    },
    optional={
        "bulkId": st.sampled_from(["a", "b"]) | JSON,
        "data": resources(USER_SCHEMA, "userName") | PATCHES | JSON,
    },
)


@fuzz(HTTP_EXAMPLES)
@given(operations=st.lists(BULK_OPERATIONS, max_size=4), fail=st.none() | st.integers(-1, 3))
def test_no_bulk_operation_is_a_server_error(
    seeded: tuple[TestClient, str, str], operations: list[dict[str, Any]], fail: int | None
) -> None:
    client, _user_id, _group_id = seeded
    body: dict[str, Any] = {"schemas": [BULK], "Operations": operations}
    if fail is not None:
        body["failOnErrors"] = fail
    response = fails_without_writing(client, "POST", "/scim/v2/Bulk", json=body)
    if response.status_code == 200:
        statuses = [int(op["status"]) for op in response.json()["Operations"]]
        assert all(status < 500 for status in statuses), response.text
