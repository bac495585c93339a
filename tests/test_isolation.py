"""Team isolation: one team's key never reaches another team's resources.

Teams A and B share one gateway and one database, and hold users and groups of
the same names. Everything A's key can do (read, list, filter, search, write,
delete, bulk, membership) is checked to stay inside team A and leave B untouched.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.config import DatabaseSettings, Settings
from gateway.store.tables import Membership, Team
from tests.conftest import ERROR, GROUP_SCHEMA, PATCH_OP, SCIM, USER_SCHEMA
from tests.support import provision

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

memberships = Membership.__table__  # type: ignore[attr-defined]
teams = Team.__table__  # type: ignore[attr-defined]


@dataclass
class Side:
    """One team: its key and the resources it created."""

    client: TestClient
    slug: str
    token: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    def request(self, method: str, path: str, **kw: Any) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": SCIM}
        headers.update(kw.pop("headers", {}))
        return self.client.request(method, f"/scim/v2{path}", headers=headers, **kw)

    def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        response = self.request(method, path, **kw)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    @property
    def user_ids(self) -> set[str]:
        return {u["id"] for u in self.users.values()}

    @property
    def group_ids(self) -> set[str]:
        return {g["id"] for g in self.groups.values()}

    @property
    def ids(self) -> set[str]:
        return self.user_ids | self.group_ids

    def snapshot(self) -> dict[str, Any]:
        """Every resource of the team as its own key reads it now."""
        return {
            "users": {i: self.ok("GET", f"/Users/{i}") for i in sorted(self.user_ids)},
            "groups": {i: self.ok("GET", f"/Groups/{i}") for i in sorted(self.group_ids)},
            "user_list": self.ok("GET", "/Users"),
            "group_list": self.ok("GET", "/Groups"),
        }


@dataclass
class Teams:
    a: Side
    b: Side
    gateway: Gateway


def populate(side: Side) -> None:
    """The same names in every team: userName, externalId and displayName all collide."""
    for user_name, display in (("bjensen", "Babs Jensen"), ("mpepperidge", "Mandy")):
        side.users[user_name] = side.ok(
            "POST",
            "/Users",
            201,
            json={
                "schemas": [USER_SCHEMA],
                "userName": user_name,
                "externalId": f"hr-{user_name}",
                "displayName": display,
                "emails": [{"value": f"{user_name}@example.com", "type": "work"}],
            },
        )
    members = [{"value": u["id"]} for u in side.users.values()]
    side.groups["Admins"] = side.ok(
        "POST",
        "/Groups",
        201,
        json={"schemas": [GROUP_SCHEMA], "displayName": "Admins", "members": members},
    )
    side.groups["Everyone"] = side.ok(
        "POST",
        "/Groups",
        201,
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": "Everyone",
            "externalId": "grp-everyone",
            "members": [{"value": side.groups["Admins"]["id"]}],
        },
    )


@pytest.fixture
def two(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Teams]:
    monkeypatch.delenv("SCIM_GATEWAY_TOKEN", raising=False)
    app = create_app(Settings(database=DatabaseSettings(url=database_url)))
    with TestClient(app, base_url="http://testserver") as client:
        gateway: Gateway = app.state.gateway
        sides = []
        for letter in "ab":
            slug = f"iso-{letter}-{uuid.uuid4().hex[:10]}"
            side = Side(client, slug, provision(gateway, slug))
            populate(side)
            sides.append(side)
        yield Teams(sides[0], sides[1], gateway)


def assert_not_found(response: httpx2.Response) -> None:
    assert response.status_code == 404, response.text
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "404"


def mentions_none_of(response_or_body: Any, ids: set[str]) -> None:
    text = (
        response_or_body.text
        if isinstance(response_or_body, httpx2.Response)
        else json.dumps(response_or_body)
    )
    leaked = sorted(i for i in ids if i in text)
    assert not leaked, f"team B ids in team A's answer: {leaked}"


def membership_rows(teams_: Teams) -> int:
    stmt = select(func.count()).select_from(memberships)
    return int(teams_.gateway.db.call(lambda conn: conn.execute(stmt).scalar_one()))


def test_teams_may_reuse_names(two: Teams) -> None:
    a, b = two.a, two.b
    assert a.ids.isdisjoint(b.ids)
    for name in ("bjensen", "mpepperidge"):
        assert a.users[name]["userName"] == b.users[name]["userName"] == name
    for name in ("Admins", "Everyone"):
        assert a.groups[name]["displayName"] == b.groups[name]["displayName"] == name


def test_another_teams_resources_cannot_be_read_changed_or_deleted(two: Teams) -> None:
    a, b = two.a, two.b
    before = b.snapshot()

    user_body = {"schemas": [USER_SCHEMA], "userName": "hijacked", "active": False}
    group_body = {"schemas": [GROUP_SCHEMA], "displayName": "Hijacked", "members": []}
    patch_user = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"active": False, "displayName": "x"}}],
    }
    patch_group = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "path": "displayName", "value": "Hijacked"},
            {"op": "remove", "path": "members"},
        ],
    }
    for user_id in sorted(b.user_ids):
        path = f"/Users/{user_id}"
        assert_not_found(a.request("GET", path))
        assert_not_found(a.request("GET", path, headers={"If-None-Match": "*"}))
        assert_not_found(a.request("PUT", path, json=user_body))
        assert_not_found(a.request("PATCH", path, json=patch_user))
        assert_not_found(a.request("DELETE", path))
    for group_id in sorted(b.group_ids):
        path = f"/Groups/{group_id}"
        assert_not_found(a.request("GET", path))
        assert_not_found(a.request("PUT", path, json=group_body))
        assert_not_found(a.request("PATCH", path, json=patch_group))
        assert_not_found(a.request("DELETE", path))

    assert b.snapshot() == before


def test_bulk_cannot_reach_another_team(two: Teams) -> None:
    a, b = two.a, two.b
    before = b.snapshot()
    b_user, b_group = b.users["bjensen"]["id"], b.groups["Admins"]["id"]
    operations = [
        {"method": "DELETE", "path": f"/Users/{b_user}"},
        {
            "method": "PUT",
            "path": f"/Users/{b_user}",
            "data": {"schemas": [USER_SCHEMA], "userName": "hijacked"},
        },
        {
            "method": "PATCH",
            "path": f"/Groups/{b_group}",
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "remove", "path": "members"}],
            },
        },
        {"method": "DELETE", "path": f"/Groups/{b_group}"},
    ]
    result = a.ok("POST", "/Bulk", json={"schemas": [BULK_REQUEST], "Operations": operations})
    statuses = [op["status"] for op in result["Operations"]]
    assert statuses == ["404"] * len(operations), result
    assert b.snapshot() == before


def test_lists_filters_and_searches_see_only_the_own_team(two: Teams) -> None:
    a, b = two.a, two.b
    b_user, b_group = b.users["bjensen"]["id"], b.groups["Admins"]["id"]

    def users(**params: Any) -> dict[str, Any]:
        page: dict[str, Any] = a.ok("GET", "/Users", params=params)
        mentions_none_of(page, b.ids)
        return page

    def groups(**params: Any) -> dict[str, Any]:
        page: dict[str, Any] = a.ok("GET", "/Groups", params=params)
        mentions_none_of(page, b.ids)
        return page

    def found(page: dict[str, Any]) -> set[str]:
        return {r["id"] for r in page.get("Resources", [])}

    everyone = users()
    assert (everyone["totalResults"], found(everyone)) == (2, a.user_ids)
    assert users(count=0)["totalResults"] == 2
    assert users(startIndex=2, count=1)["totalResults"] == 2
    page = users(filter='userName eq "bjensen"')
    assert (page["totalResults"], found(page)) == (1, {a.users["bjensen"]["id"]})
    page = users(filter='externalId eq "hr-bjensen"')
    assert found(page) == {a.users["bjensen"]["id"]}
    page = users(filter='emails.value eq "bjensen@example.com"')
    assert found(page) == {a.users["bjensen"]["id"]}
    assert users(filter="userName pr")["totalResults"] == 2
    assert users(filter=f'id eq "{b_user}"')["totalResults"] == 0
    assert users(filter=f'groups.value eq "{b_group}"')["totalResults"] == 0
    page = users(filter=f'groups.value eq "{a.groups["Admins"]["id"]}"')
    assert found(page) == a.user_ids

    all_groups = groups()
    assert (all_groups["totalResults"], found(all_groups)) == (2, a.group_ids)
    page = groups(filter='displayName eq "Admins"')
    assert (page["totalResults"], found(page)) == (1, {a.groups["Admins"]["id"]})
    assert groups(filter=f'id eq "{b_group}"')["totalResults"] == 0
    assert groups(filter=f'members.value eq "{b_user}"')["totalResults"] == 0
    assert groups(filter=f'members.value eq "{b_group}"')["totalResults"] == 0
    page = groups(filter=f'members.value eq "{a.users["bjensen"]["id"]}"')
    assert found(page) == {a.groups["Admins"]["id"]}

    search = {"schemas": [SEARCH_REQUEST], "filter": 'userName eq "bjensen"'}
    page = a.ok("POST", "/Users/.search", json=search)
    mentions_none_of(page, b.ids)
    assert (page["totalResults"], found(page)) == (1, {a.users["bjensen"]["id"]})
    page = a.ok("POST", "/Groups/.search", json={"schemas": [SEARCH_REQUEST]})
    mentions_none_of(page, b.ids)
    assert (page["totalResults"], found(page)) == (2, a.group_ids)
    page = a.ok("POST", "/.search", json={"schemas": [SEARCH_REQUEST]})
    mentions_none_of(page, b.ids)
    assert (page["totalResults"], found(page)) == (4, a.ids)
    root = {"schemas": [SEARCH_REQUEST], "filter": f'id eq "{b_user}" or id eq "{b_group}"'}
    assert a.ok("POST", "/.search", json=root)["totalResults"] == 0


def test_another_teams_user_cannot_join_a_group(two: Teams) -> None:
    a, b = two.a, two.b
    group = a.groups["Admins"]
    path = f"/Groups/{group['id']}"
    a_before, b_before = a.snapshot(), b.snapshot()
    rows_before = membership_rows(two)

    for outsider in (b.users["bjensen"]["id"], b.groups["Admins"]["id"]):
        add = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": outsider}]}],
        }
        response = a.request("PATCH", path, json=add)
        assert response.status_code == 400, response.text
        assert response.json()["schemas"] == [ERROR]

        replace = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "members", "value": [{"value": outsider}]}],
        }
        assert a.request("PATCH", path, json=replace).status_code == 400

        members = [{"value": a.users["bjensen"]["id"]}, {"value": outsider}]
        put = {"schemas": [GROUP_SCHEMA], "displayName": "Admins", "members": members}
        assert a.request("PUT", path, json=put).status_code == 400

        post = {"schemas": [GROUP_SCHEMA], "displayName": "Mixed", "members": members}
        assert a.request("POST", "/Groups", json=post).status_code == 400

    assert membership_rows(two) == rows_before
    assert a.snapshot() == a_before
    assert b.snapshot() == b_before


def test_references_never_mention_another_team(two: Teams) -> None:
    a, b = two.a, two.b
    for group_id in a.group_ids:
        group = a.ok("GET", f"/Groups/{group_id}")
        mentions_none_of(group, b.ids)
        for member in group.get("members", []):
            assert member["value"] in a.ids
            kind = "Users" if member["value"] in a.user_ids else "Groups"
            assert member["$ref"] == f"http://testserver/scim/v2/{kind}/{member['value']}"
    for user_id in a.user_ids:
        user = a.ok("GET", f"/Users/{user_id}")
        mentions_none_of(user, b.ids)
        assert {g["value"] for g in user.get("groups", [])} <= a.group_ids
        assert a.groups["Admins"]["id"] in {g["value"] for g in user.get("groups", [])}
        for entry in user.get("groups", []):
            if "$ref" in entry:
                assert entry["$ref"] == f"http://testserver/scim/v2/Groups/{entry['value']}"

    # B's resources, deleted, take nothing of A with them (and the other way round).
    for user_id in sorted(b.user_ids):
        b.ok("DELETE", f"/Users/{user_id}", 204)
    assert a.ok("GET", "/Users")["totalResults"] == 2
    admins = a.ok("GET", f"/Groups/{a.groups['Admins']['id']}")
    assert {m["value"] for m in admins["members"]} == a.user_ids
