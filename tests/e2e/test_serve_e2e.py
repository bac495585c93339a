"""A real ``scim-gateway serve`` process, driven over HTTP the way an IdP drives it.

Every answer is checked as a client sees it: status, media type, headers and body.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ENTERPRISE, ERROR, GROUP_SCHEMA, LIST_RESPONSE, PATCH_OP, USER_SCHEMA
from tests.e2e.conftest import Served, clean_environment, free_port, gateway_command, serve

pytestmark = pytest.mark.e2e

SCIM_JSON = "application/scim+json"


@pytest.fixture
def http(gateway: Served) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client


# --- helpers ---------------------------------------------------------------------


def scim_body(response: httpx.Response, status: int) -> Any:
    """The JSON body of a SCIM answer, after checking its status and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == SCIM_JSON
    return response.json()


def assert_scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> None:
    body = scim_body(response, status)
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body["detail"]
    if scim_type is not None:
        assert body["scimType"] == scim_type


def post(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(path, json=body, headers={"Content-Type": SCIM_JSON})


def put(http: httpx.Client, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return http.put(path, json=body, headers={"Content-Type": SCIM_JSON, **headers})


def patch(http: httpx.Client, path: str, *ops: dict[str, Any], **headers: str) -> httpx.Response:
    body = {"schemas": [PATCH_OP], "Operations": list(ops)}
    return http.patch(path, json=body, headers={"Content-Type": SCIM_JSON, **headers})


def listed(http: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = scim_body(http.get(path, params=params), 200)
    assert body["schemas"] == [LIST_RESPONSE]
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [resource["id"] for resource in page["Resources"]]


def create(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = post(http, path, body)
    created: dict[str, Any] = scim_body(response, 201)
    assert response.headers["location"] == created["meta"]["location"]
    assert response.headers["etag"] == created["meta"]["version"]
    return created


def simple_user(user_name: str, **attrs: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, **attrs}


def barbara() -> dict[str, Any]:
    """A full User in the style of RFC 7643 §8.2 and §8.3, with the enterprise extension."""
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": "hr-701984",
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "middleName": "Jane",
            "honorificPrefix": "Ms.",
            "honorificSuffix": "III",
        },
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        "addresses": [
            {
                "type": "work",
                "streetAddress": "100 Universal City Plaza",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "USA",
                "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
                "primary": True,
            }
        ],
        "phoneNumbers": [
            {"value": "555-555-5555", "type": "work"},
            {"value": "555-555-4444", "type": "mobile"},
        ],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "photos": [
            {"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}
        ],
        "userType": "Employee",
        "title": "Tour Guide",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": True,
        "password": "t1meMa$heen",
        ENTERPRISE: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations",
        },
    }


# --- the process itself ----------------------------------------------------------


def test_discovery_answers_without_a_key_and_the_api_demands_one(gateway: Served) -> None:
    with gateway.client(token="") as anon:
        config = scim_body(anon.get("/ServiceProviderConfig"), 200)
        assert config["patch"] == {"supported": True}
        assert config["etag"] == {"supported": True}

        response = anon.get("/Users")
        assert_scim_error(response, 401)
        assert response.headers["www-authenticate"].lower().startswith("bearer")

    with gateway.client(token="not-" + str(gateway.token)) as wrong:
        assert_scim_error(wrong.get("/Users"), 401)


# --- users -----------------------------------------------------------------------


def test_user_lifecycle_create_read_filter_patch_put_delete(
    gateway: Served, http: httpx.Client
) -> None:
    # POST: 201 with Location and ETag, the full representation, no password.
    user = create(http, "/Users", barbara())
    user_id = user["id"]
    location = f"{gateway.base_url}/Users/{user_id}"
    assert user["meta"]["location"] == location
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["created"] == user["meta"]["lastModified"]
    assert set(user["schemas"]) == {USER_SCHEMA, ENTERPRISE}
    assert user["userName"] == "bjensen@example.com"
    assert user["externalId"] == "hr-701984"
    assert user["name"]["givenName"] == "Barbara"
    assert user["active"] is True
    assert [e["value"] for e in user["emails"]] == ["bjensen@example.com", "babs@jensen.org"]
    assert user[ENTERPRISE]["employeeNumber"] == "701984"
    assert "password" not in user
    other = create(http, "/Users", simple_user("mpepperidge", active=True))

    # A second user with the same userName (case differs) is a uniqueness conflict.
    assert_scim_error(post(http, "/Users", simple_user("BJENSEN@example.com")), 409, "uniqueness")

    # GET by id, and a conditional GET with the current ETag.
    fetched = http.get(f"/Users/{user_id}")
    assert scim_body(fetched, 200) == user
    assert fetched.headers["etag"] == user["meta"]["version"]
    not_modified = http.get(f"/Users/{user_id}", headers={"If-None-Match": user["meta"]["version"]})
    assert not_modified.status_code == 304
    assert not_modified.content == b""

    # Filters: userName eq (case-insensitive), a value filter on emails, active eq true.
    page = listed(http, "/Users", filter='userName eq "BJensen@Example.com"')
    assert (page["totalResults"], ids(page)) == (1, [user_id])
    page = listed(
        http, "/Users", filter='emails[type eq "work" and value eq "bjensen@example.com"]'
    )
    assert ids(page) == [user_id]
    page = listed(http, "/Users", filter='emails[type eq "home"]')
    assert ids(page) == [user_id]
    page = listed(http, "/Users", filter="active eq true")
    assert sorted(ids(page)) == sorted([user_id, other["id"]])
    assert listed(http, "/Users", filter='userName eq "nobody"')["totalResults"] == 0
    assert_scim_error(http.get("/Users", params={"filter": "userName eq"}), 400, "invalidFilter")

    # PATCH with no path: replace active with false.
    response = patch(http, f"/Users/{user_id}", {"op": "replace", "value": {"active": False}})
    patched = scim_body(response, 200)
    assert patched["active"] is False
    assert patched["meta"]["version"] != user["meta"]["version"]
    assert response.headers["etag"] == patched["meta"]["version"]
    assert patched["userName"] == user["userName"]
    assert ids(listed(http, "/Users", filter="active eq true")) == [other["id"]]
    assert ids(listed(http, "/Users", filter="active eq false")) == [user_id]

    # PATCH a value path: only the work email changes.
    response = patch(
        http,
        f"/Users/{user_id}",
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "barbara@example.com"},
    )
    patched = scim_body(response, 200)
    emails = {e["type"]: e for e in patched["emails"]}
    assert emails["work"] == {"value": "barbara@example.com", "type": "work", "primary": True}
    assert emails["home"]["value"] == "babs@jensen.org"
    assert scim_body(http.get(f"/Users/{user_id}"), 200) == patched
    assert ids(listed(http, "/Users", filter='emails.value eq "barbara@example.com"')) == [user_id]
    assert listed(http, "/Users", filter='emails.value eq "bjensen@example.com"')["Resources"] == []

    # A write with a stale ETag is refused and changes nothing.
    stale = put(
        http,
        f"/Users/{user_id}",
        simple_user("bjensen@example.com"),
        **{"If-Match": user["meta"]["version"]},
    )
    assert_scim_error(stale, 412)

    # PUT replaces: what the body leaves out is gone; it may rename the user.
    replacement = simple_user(
        "barbara.jensen@example.com",
        name={"givenName": "Barbara", "familyName": "Jensen"},
        emails=[{"value": "barbara.jensen@example.com", "type": "work", "primary": True}],
        active=True,
    )
    response = put(
        http, f"/Users/{user_id}", replacement, **{"If-Match": patched["meta"]["version"]}
    )
    replaced = scim_body(response, 200)
    assert response.headers["etag"] == replaced["meta"]["version"]
    assert replaced["id"] == user_id
    assert replaced["meta"]["created"] == user["meta"]["created"]
    assert replaced["userName"] == "barbara.jensen@example.com"
    assert replaced["active"] is True
    assert replaced["name"] == {"givenName": "Barbara", "familyName": "Jensen"}
    assert [e["value"] for e in replaced["emails"]] == ["barbara.jensen@example.com"]
    for gone in ("nickName", "phoneNumbers", "addresses", "title", "externalId", ENTERPRISE):
        assert gone not in replaced, gone
    assert replaced["schemas"] == [USER_SCHEMA]
    assert scim_body(http.get(f"/Users/{user_id}"), 200) == replaced
    assert listed(http, "/Users", filter='userName eq "bjensen@example.com"')["totalResults"] == 0

    # DELETE: 204 without a body, then the user is gone everywhere.
    response = http.delete(f"/Users/{user_id}")
    assert response.status_code == 204
    assert response.content == b""
    assert_scim_error(http.get(f"/Users/{user_id}"), 404)
    assert_scim_error(http.delete(f"/Users/{user_id}"), 404)
    assert ids(listed(http, "/Users")) == [other["id"]]


def test_users_page_by_start_index_and_count(http: httpx.Client) -> None:
    created = [create(http, "/Users", simple_user(f"pager{n}@example.com"))["id"] for n in range(7)]

    pages = [
        listed(http, "/Users", startIndex=start, count=3, sortBy="userName") for start in (1, 4, 7)
    ]
    assert [p["totalResults"] for p in pages] == [7, 7, 7]
    assert [p["startIndex"] for p in pages] == [1, 4, 7]
    assert [p["itemsPerPage"] for p in pages] == [3, 3, 1]
    assert [len(p["Resources"]) for p in pages] == [3, 3, 1]
    seen = [user_id for p in pages for user_id in ids(p)]
    assert seen == created  # sorted by userName: pager0 .. pager6, each exactly once
    names = [r["userName"] for p in pages for r in p["Resources"]]
    assert names == [f"pager{n}@example.com" for n in range(7)]

    past_the_end = listed(http, "/Users", startIndex=8, count=3)
    assert (past_the_end["totalResults"], past_the_end.get("Resources", [])) == (7, [])
    count_only = listed(http, "/Users", count=0)
    assert (count_only["totalResults"], count_only.get("Resources", [])) == (7, [])

    filtered = listed(http, "/Users", filter='userName sw "pager"', startIndex=3, count=3)
    assert filtered["totalResults"] == 7
    assert len(filtered["Resources"]) == 3


# --- groups ----------------------------------------------------------------------


def member_ids(group: dict[str, Any]) -> set[str]:
    return {m["value"] for m in group.get("members", [])}


def test_group_lifecycle_with_members(gateway: Served, http: httpx.Client) -> None:
    alice = create(http, "/Users", simple_user("alice@example.com", displayName="Alice"))
    bob = create(http, "/Users", simple_user("bob@example.com"))
    carol = create(http, "/Users", simple_user("carol@example.com"))

    # POST with members: 201, Location, ETag, members with $ref and display.
    group = create(
        http,
        "/Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Tour Guides",
            "externalId": "grp-42",
            "members": [{"value": alice["id"]}, {"value": bob["id"]}],
        },
    )
    group_id = group["id"]
    assert group["meta"]["location"] == f"{gateway.base_url}/Groups/{group_id}"
    assert group["meta"]["resourceType"] == "Group"
    assert group["displayName"] == "Tour Guides"
    assert member_ids(group) == {alice["id"], bob["id"]}
    by_id = {m["value"]: m for m in group["members"]}
    assert by_id[alice["id"]]["$ref"] == alice["meta"]["location"]
    assert by_id[alice["id"]]["type"] == "User"
    # Member display names are computed, and returned when asked for.
    assert "display" not in by_id[alice["id"]]
    named = scim_body(
        http.get(f"/Groups/{group_id}", params={"attributes": "members,members.display"}), 200
    )
    names = {m["value"]: m["display"] for m in named["members"]}
    assert names == {alice["id"]: "Alice", bob["id"]: "bob@example.com"}

    # A member that does not exist is refused.
    response = post(
        http,
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "Ghosts", "members": [{"value": "nope"}]},
    )
    assert_scim_error(response, 400)
    assert listed(http, "/Groups", filter='displayName eq "Ghosts"')["totalResults"] == 0

    # Users show the group they belong to.
    alice_now = scim_body(http.get(f"/Users/{alice['id']}"), 200)
    assert [(g["value"], g["display"]) for g in alice_now["groups"]] == [(group_id, "Tour Guides")]

    # Filters on groups.
    page = listed(http, "/Groups", filter='displayName eq "tour guides"')
    assert ids(page) == [group_id]
    page = listed(http, "/Groups", filter=f'members.value eq "{bob["id"]}"')
    assert ids(page) == [group_id]
    assert listed(http, "/Groups", filter=f'members.value eq "{carol["id"]}"')["totalResults"] == 0

    # PATCH add a member: 204, and the group now has three.
    response = patch(
        http,
        f"/Groups/{group_id}",
        {"op": "add", "path": "members", "value": [{"value": carol["id"]}]},
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    fetched = http.get(f"/Groups/{group_id}")
    after_add = scim_body(fetched, 200)
    assert member_ids(after_add) == {alice["id"], bob["id"], carol["id"]}
    assert fetched.headers["etag"] == after_add["meta"]["version"] != group["meta"]["version"]

    # PATCH remove a member by value filter.
    response = patch(
        http, f"/Groups/{group_id}", {"op": "remove", "path": f'members[value eq "{alice["id"]}"]'}
    )
    assert response.status_code == 204, response.text
    assert member_ids(scim_body(http.get(f"/Groups/{group_id}"), 200)) == {bob["id"], carol["id"]}
    assert scim_body(http.get(f"/Users/{alice['id']}"), 200).get("groups", []) == []

    # PATCH asking for the group back answers 200 with it.
    response = http.patch(
        f"/Groups/{group_id}",
        params={"attributes": "displayName"},
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Guides"}],
        },
        headers={"Content-Type": SCIM_JSON},
    )
    renamed = scim_body(response, 200)
    assert renamed["displayName"] == "Guides"
    assert renamed["id"] == group_id
    assert "members" not in renamed

    # PUT replaces the members wholesale.
    response = put(
        http,
        f"/Groups/{group_id}",
        {"schemas": [GROUP_SCHEMA], "displayName": "Guides", "members": [{"value": alice["id"]}]},
    )
    replaced = scim_body(response, 200)
    assert member_ids(replaced) == {alice["id"]}
    assert "externalId" not in replaced
    assert response.headers["etag"] == replaced["meta"]["version"]

    # Deleting a member user removes the membership.
    assert http.delete(f"/Users/{alice['id']}").status_code == 204
    assert member_ids(scim_body(http.get(f"/Groups/{group_id}"), 200)) == set()

    # DELETE the group: 204, then 404; its former members are untouched.
    response = http.delete(f"/Groups/{group_id}")
    assert response.status_code == 204
    assert response.content == b""
    assert_scim_error(http.get(f"/Groups/{group_id}"), 404)
    assert listed(http, "/Groups")["totalResults"] == 0
    assert scim_body(http.get(f"/Users/{bob['id']}"), 200).get("groups", []) == []


def test_team_sees_only_its_own_data(gateway: Served, http: httpx.Client) -> None:
    """The process's key provisions its team: a fresh team starts empty."""
    assert listed(http, "/Users")["totalResults"] == 0
    assert listed(http, "/Groups")["totalResults"] == 0


# --- serve with no configuration at all --------------------------------------------


def _demo_key(served: Served) -> str:
    found = set(re.findall(r"Bearer (scimgw_[a-z2-7]{12}_[A-Za-z0-9_\-]{43})", served.stderr()))
    assert len(found) == 1, served.stderr()
    return found.pop()


def test_serve_demo_without_config_uses_builtin_defaults(tmp_path: Path) -> None:
    """The quick start: no config, SQLite in the working directory, a demo team and a key."""
    served_iter = serve(
        tmp_path,
        args=["serve", "--demo", "--port", str(free_port())],
        env=clean_environment(),
        token=None,
        team="demo",
    )
    served = next(served_iter)
    try:
        assert (tmp_path / "scim-gateway.sqlite3").is_file()
        stderr = served.stderr()
        assert "Demo team 'demo'" in stderr
        token = _demo_key(served)
        assert stderr.count(token) == 2  # the key line and the ready curl line
        assert f"curl -H 'Authorization: Bearer {token}' http://127.0.0.1:" in stderr

        with served.client(token="") as anon:
            config = scim_body(anon.get("/ServiceProviderConfig"), 200)
            assert config["meta"]["location"] == f"{served.base_url}/ServiceProviderConfig"
            assert_scim_error(anon.get("/Users"), 401)

        with served.client(token=token) as client:
            user = create(client, "/Users", simple_user(f"demo-{uuid.uuid4().hex[:6]}"))
            page = listed(client, "/Users")
            assert ids(page) == [user["id"]]
    finally:
        served_iter.close()
    assert served.process.returncode is not None


def test_serve_without_demo_sets_up_nothing(tmp_path: Path) -> None:
    served_iter = serve(
        tmp_path,
        args=["serve", "--port", str(free_port())],
        env=clean_environment(),
        token=None,
        team="demo",
    )
    served = next(served_iter)
    try:
        assert "scimgw_" not in served.stderr()
        with served.client(token="scimgw_" + "a" * 12 + "_" + "b" * 43) as other:
            assert_scim_error(other.get("/Users"), 401)
    finally:
        served_iter.close()
    listing = subprocess.run(
        [*gateway_command(), "teams", "list", "--json"],
        cwd=tmp_path,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert listing.stdout.strip() == "[]"


def test_serve_without_config_ignores_a_config_left_in_the_environment(tmp_path: Path) -> None:
    """SCIM_GATEWAY_CONFIG from an earlier shell must not swap in another configuration."""
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "gateway.toml").write_text(
        f'[database]\nurl = "sqlite:///{stray / "stray.sqlite3"}"\n', encoding="utf-8"
    )
    work = tmp_path / "work"
    work.mkdir()
    served_iter = serve(
        work,
        args=["serve", "--demo", "--port", str(free_port())],
        env=clean_environment(SCIM_GATEWAY_CONFIG=str(stray / "gateway.toml")),
        token=None,
        team="demo",
    )
    served = next(served_iter)
    try:
        with served.client(token=_demo_key(served)) as client:
            create(client, "/Users", simple_user("kept-here"))
        assert (work / "scim-gateway.sqlite3").is_file()
        assert not (stray / "stray.sqlite3").exists()
    finally:
        served_iter.close()


def _run_to_exit(workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*gateway_command(), "serve", "--port", str(free_port())],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_serve_refuses_an_unsupported_database_url(tmp_path: Path) -> None:
    result = _run_to_exit(
        tmp_path, clean_environment(SCIM_GATEWAY_DATABASE_URL="mysql://scim:hunter2@db/scim")
    )
    assert result.returncode == 2
    assert "SCIM_GATEWAY_DATABASE_URL" in result.stderr
    assert "postgresql://" in result.stderr  # names the fix
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_explains_an_unreachable_database(tmp_path: Path) -> None:
    url = f"postgresql://scim:hunter2@127.0.0.1:{free_port()}/scim"
    result = _run_to_exit(tmp_path, clean_environment(SCIM_GATEWAY_DATABASE_URL=url))
    assert result.returncode == 1
    assert "cannot open the database postgresql://scim:***@127.0.0.1" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr
