"""Okta's provisioning traffic, replayed over HTTP against a key bound to the ``okta`` adapter.

Each request is one Okta sends. Its body is stored verbatim in ``tests/replays/okta/``
and its source is named where it is used:

* "Okta SCIM 2.0 reference": Okta's SCIM 2.0 Protocol Reference,
  https://developer.okta.com/docs/reference/scim/scim-20/
* "SPEC test": the "Okta SCIM 2.0 SPEC Test" suite an Okta Integration Network
  submission must pass (developer.okta.com/standards/SCIM/SCIMFiles/Okta-SCIM-20-SPEC-Test.json)

Okta's example ids (``23a35c27-...``) are swapped for the ids the gateway assigned,
as Okta swaps in the ids it learnt from earlier answers. Requests carry Okta's
headers: ``User-Agent: Okta SCIM Client 1.0.0`` and ``Content-Type: application/json``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import Settings
from gateway.store.query import users, values
from gateway.store.tables import Team
from plugins import ProvisioningEvent, hookimpl
from tests.support import provision

PAYLOADS = Path(__file__).parent / "okta"
USER_AGENT = "Okta SCIM Client 1.0.0"

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

# The example ids of Okta's SCIM 2.0 reference.
OKTA_USER = "23a35c27-23d3-4c03-b4c5-6443c09e7173"
OKTA_OTHER_USER = "89bb1940-b905-4575-9e7f-6f887cfb368e"
OKTA_GROUP = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b"

# Okta SCIM 2.0 reference, "Create the User": the application profile Okta sends.
USER_NAME = "test.user@okta.local"
EXTERNAL_ID = "00ujl29u0le5T6Aj10h7"
PASSWORD = "1mz050nq"


def payload(name: str, ids: Mapping[str, str] | None = None) -> Any:
    """A stored Okta request body, Okta's example ids replaced by ours."""
    text = (PAYLOADS / name).read_text(encoding="utf-8")
    for okta_id, ours in (ids or {}).items():
        text = text.replace(okta_id, ours)
    return json.loads(text)


def okta_user(n: int) -> dict[str, Any]:
    """Okta's create body for another person of the org: same shape, own values."""
    body: dict[str, Any] = payload("create_user.json")
    body["userName"] = body["emails"][0]["value"] = f"user{n:03}@okta.local"
    body["name"] = {"givenName": f"Given{n:03}", "familyName": f"Family{n:03}"}
    body["displayName"] = f"Given{n:03} Family{n:03}"
    body["externalId"] = f"00u{n:017}"
    return body


class Recorder:
    """An observer plugin: the provisioning events the gateway delivers."""

    def __init__(self) -> None:
        self.events: list[ProvisioningEvent] = []

    @hookimpl
    def scim_gateway_provisioning_event(self, event: ProvisioningEvent) -> None:
        self.events.append(event)


@dataclass
class Idp:
    """One identity provider's connection: a key of its own team, bound to ``adapter``."""

    client: TestClient
    adapter: str
    slug: str
    token: str
    recorder: Recorder
    learnt: dict[str, str] = field(default_factory=dict)
    """Ids the gateway assigned, to Okta's example ids."""

    def send(
        self, method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> httpx2.Response:
        content = None if body is None else json.dumps(body)
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.client.request(method, url, content=content, headers=sent)

    def replay(self, method: str, url: str, name: str) -> httpx2.Response:
        """Send a stored Okta request body, with the ids learnt so far."""
        return self.send(method, url, payload(name, self.learnt))

    def existence_check(self, user_name: str) -> httpx2.Response:
        # Okta SCIM 2.0 reference, "Determine if the User already exists": always with
        # paging, e.g. ?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100
        query = quote(f'userName eq "{user_name}"', safe="")
        return self.send("GET", f"/scim/v2/Users?filter={query}&startIndex=1&count=100")

    def create(self, body: Any) -> dict[str, Any]:
        response = self.send("POST", "/scim/v2/Users", body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def get(self, url: str) -> dict[str, Any]:
        response = self.send("GET", url)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def events(self, *kinds: str) -> list[ProvisioningEvent]:
        return [e for e in self.recorder.events if e.team == self.slug and e.kind in kinds]

    def set_options(self, options: dict[str, Any]) -> None:
        """Set the team's options, as an admin would in the config."""
        gateway = self.client.app.state.gateway  # type: ignore[attr-defined]
        teams = Team.__table__  # type: ignore[attr-defined]
        with gateway.db.engine.begin() as conn:
            conn.execute(update(teams).where(teams.c.slug == self.slug).values(options=options))


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    """A client that sends what Okta's SCIM client sends on every request."""
    app = create_app(settings)
    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
    with TestClient(app, base_url="http://testserver", headers=headers) as client:
        yield client


@pytest.fixture
def recorder(app_client: TestClient) -> Recorder:
    found = Recorder()
    app_client.app.state.gateway.plugins.pm.register(found)  # type: ignore[attr-defined]
    return found


def connect(client: TestClient, recorder: Recorder, adapter: str) -> Idp:
    slug = f"{adapter}-{uuid.uuid4().hex[:12]}"
    token = provision(client.app.state.gateway, slug, adapter=adapter)  # type: ignore[attr-defined]
    return Idp(client, adapter, slug, token, recorder)


@pytest.fixture
def okta(app_client: TestClient, recorder: Recorder) -> Idp:
    """Okta, holding a key bound to the ``okta`` adapter."""
    return connect(app_client, recorder, "okta")


@pytest.fixture
def generic(app_client: TestClient, recorder: Recorder) -> Idp:
    """Another team's client, holding a key bound to the strict ``generic`` adapter."""
    return connect(app_client, recorder, "generic")


def create_test_user(idp: Idp) -> dict[str, Any]:
    """Okta's first push of test.user@okta.local; its id replaces Okta's example id."""
    user = idp.create(payload("create_user.json"))
    idp.learnt[OKTA_USER] = user["id"]
    return user


def create_other_user(idp: Idp) -> dict[str, Any]:
    user = idp.create(okta_user(1))
    idp.learnt[OKTA_OTHER_USER] = user["id"]
    return user


# --- (1) pushing new users ------------------------------------------------------------


def test_pushing_a_new_user_checks_existence_then_creates_it(okta: Idp) -> None:
    # Okta SCIM 2.0 reference, "Determine if the User already exists": nobody yet is
    # 200 with an empty ListResponse whose numbers are integers, not strings.
    check = okta.existence_check(USER_NAME)
    assert check.status_code == 200
    assert check.json() == payload("existence_check_empty.response.json")

    # "Create the User": sent as application/json, with password and groups: [].
    response = okta.send("POST", "/scim/v2/Users", payload("create_user.json"))

    assert response.status_code == 201, response.text
    user = response.json()
    assert response.headers["Location"] == user["meta"]["location"]
    assert user["id"] and user["meta"]["resourceType"] == "User"
    sent = payload("create_user.json")
    for attr in ("userName", "name", "displayName", "locale", "externalId", "emails"):
        assert user[attr] == sent[attr], attr
    assert user["active"] is True
    assert "password" not in user
    assert "groups" not in user  # readOnly: what Okta sent is not taken as memberships
    [event] = okta.events("user.created")
    assert (event.resource_id, event.adapter) == (user["id"], "okta")

    # The next existence check finds the user, whatever the case of the userName.
    for asked in (USER_NAME, USER_NAME.upper()):
        found = okta.existence_check(asked).json()
        assert (found["totalResults"], found["itemsPerPage"], found["startIndex"]) == (1, 1, 1)
        assert [r["id"] for r in found["Resources"]] == [user["id"]]


def test_the_password_okta_sends_is_never_stored_nor_echoed(okta: Idp) -> None:
    # Okta SCIM 2.0 reference: "Create the User" carries "password": "1mz050nq"; an
    # AIW app syncs the password by PUT ("Update a specific User (PATCH)": for AIW
    # apps "all SCIM operations that update a User object ... are always sent through
    # a PUT"), i.e. the whole user with a password.
    user = create_test_user(okta)
    put = payload("profile_put.json", okta.learnt)
    put["password"] = "n3w-Pa55word"
    updated = okta.send("PUT", f"/scim/v2/Users/{user['id']}", put)
    assert updated.status_code == 200, updated.text

    answers = [user, updated.json(), okta.get(f"/scim/v2/Users/{user['id']}")]
    answers.append(okta.get("/scim/v2/Users?startIndex=1&count=100"))
    for answer in answers:
        text = json.dumps(answer)
        assert PASSWORD not in text and "n3w-Pa55word" not in text
        assert "password" not in text.lower()
    gateway = okta.client.app.state.gateway  # type: ignore[attr-defined]
    teams = Team.__table__  # type: ignore[attr-defined]
    with gateway.db.engine.connect() as conn:
        team_pk = conn.execute(select(teams.c.pk).where(teams.c.slug == okta.slug)).scalar_one()
        rows = conn.execute(select(users).where(users.c.team_pk == team_pk)).all()
        rows += conn.execute(select(values).where(values.c.team_pk == team_pk)).all()
    stored = repr(rows)
    assert USER_NAME in stored  # the scan does see the user's data
    assert PASSWORD not in stored and "n3w-Pa55word" not in stored
    assert all(PASSWORD not in json.dumps(e.to_dict()) for e in okta.recorder.events)


def test_recreating_an_active_user_is_a_409_uniqueness_error(okta: Idp) -> None:
    # SPEC test, "Expect failure when recreating user with same values"; the body of
    # Okta SCIM 2.0 reference's 409 example omits scimType, RFC 7644 §3.3 requires it.
    create_test_user(okta)
    again = okta.replay("POST", "/scim/v2/Users", "create_user.json")

    assert again.status_code == 409
    error = again.json()
    assert error["schemas"] == [ERROR]
    assert (error["status"], error["scimType"]) == ("409", "uniqueness")
    assert error["detail"]


def fill(name: str, variables: Mapping[str, str]) -> Any:
    """A SPEC test request body with its ``{{variables}}`` filled in."""
    text = (PAYLOADS / name).read_text(encoding="utf-8")
    text = re.sub(r"\{\{(\w+)\}\}", lambda m: variables[m.group(1)], text)
    return json.loads(text)


# The SPEC test's headers: GETs name a SCIM media type, creates send application/json.
SPEC_GET = {
    "Accept-Charset": "utf-8",
    "Content-Type": "application/scim+json; charset=utf-8",
    "Accept": "application/scim+json",
    "User-Agent": "OKTA SCIM Integration",
}
SPEC_POST = {"Content-Type": "application/json", "Accept": "application/scim+json; charset=utf-8"}


def test_okta_spec_test_required_steps(okta: Idp) -> None:
    """Every step of the SPEC test, in its order, with its assertions and headers."""
    create_test_user(okta)  # the suite needs one user with a full profile to start from
    variables = {
        "randomUsername": "Fiona.Gallagher@example.com",
        "randomGivenName": "Fiona",
        "randomFamilyName": "Gallagher",
        "randomEmail": "fiona.gallagher@example.com",
    }

    def get(url: str) -> httpx2.Response:
        return okta.send("GET", url, headers=SPEC_GET)

    # "Test Users endpoint": GET /Users?count=1&startIndex=1
    listed = get("/scim/v2/Users?count=1&startIndex=1")
    assert listed.status_code == 200
    page = listed.json()
    assert LIST_RESPONSE in page["schemas"] and page["Resources"]
    for number in ("itemsPerPage", "startIndex", "totalResults"):
        assert type(page[number]) is int, number
    first = page["Resources"][0]
    assert first["id"] and first["userName"] and first["active"] is True
    assert first["name"]["familyName"] and first["name"]["givenName"]
    assert first["emails"][0]["value"]

    # "Get Users/{{id}}"
    again = get(f"/scim/v2/Users/{first['id']}")
    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["name"] == first["name"]
    assert again.json()["userName"] and again.json()["emails"][0]["value"]

    # "Test invalid User by username", "Make sure random user doesn't exist"
    for email in ("invalid-user@example.com", variables["randomEmail"]):
        missing = get(f'/scim/v2/Users?filter=userName eq "{email}"')
        assert missing.status_code == 200
        assert missing.json()["totalResults"] == 0
        assert LIST_RESPONSE in missing.json()["schemas"]

    # "Test invalid User by ID", "Check status 404"
    for unknown in (str(uuid.uuid4()), "00919288221112222"):
        not_found = get(f"/scim/v2/Users/{unknown}")
        assert not_found.status_code == 404
        assert not_found.json()["schemas"] == [ERROR]
        assert not_found.json()["status"] == "404" and not_found.json()["detail"]

    # "Create Okta user with realistic values"
    body = fill("spec_test_create_user.json", variables)
    created = okta.send("POST", "/scim/v2/Users", body, headers=SPEC_POST)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["active"] is True and user["id"] and USER_SCHEMA in user["schemas"]
    assert user["userName"] == variables["randomUsername"]
    assert user["name"] == {"givenName": "Fiona", "familyName": "Gallagher"}

    # "Verify that user was created"
    assert get(f"/scim/v2/Users/{user['id']}").json()["name"] == user["name"]

    # "Expect failure when recreating user with same values"
    body = fill("spec_test_recreate_user.json", variables)
    assert okta.send("POST", "/scim/v2/Users", body, headers=SPEC_POST).status_code == 409

    # "Username Case Sensitivity Check": the user, asked for in capitals
    caps = variables["randomUsername"].upper()
    found = get(f'/scim/v2/Users?filter=userName eq "{caps}"')
    assert found.status_code == 200
    assert [r["id"] for r in found.json()["Resources"]] == [user["id"]]

    # "Verify Groups endpoint" (optional)
    assert get("/scim/v2/Groups").status_code == 200

    # "Check status 401": Authorization: non-token
    unauthorised = okta.client.get(
        f'/scim/v2/Users?filter=userName eq "{caps}"',
        headers={**SPEC_GET, "Authorization": "non-token"},
    )
    assert unauthorised.status_code == 401
    assert unauthorised.json()["schemas"] == [ERROR]
    assert unauthorised.json()["status"] == "401" and unauthorised.json()["detail"]


# --- (2) pushing profile updates ------------------------------------------------------


def test_a_profile_update_is_a_get_then_a_put_of_the_whole_user(okta: Idp) -> None:
    user = create_test_user(okta)
    path = f"/scim/v2/Users/{user['id']}"

    # Okta SCIM 2.0 reference, "Update a specific User (PUT)": GET, then PUT the whole
    # object back with the change, echoing id, meta and groups: [].
    okta.get(path)
    response = okta.replay("PUT", path, "profile_put.json")

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["id"] == user["id"]
    assert updated["name"] == payload("profile_put.json")["name"]
    assert updated["emails"] == payload("profile_put.json")["emails"]
    assert updated["active"] is True
    # Okta's meta {"resourceType": "User"} does not replace the server's.
    assert updated["meta"]["created"] == user["meta"]["created"]
    assert updated["meta"]["location"] == user["meta"]["location"]
    assert updated["meta"]["version"] != user["meta"]["version"]
    assert response.headers["ETag"] == updated["meta"]["version"]
    # attributes the PUT does not carry are gone, as RFC 7644 §3.5.1 says
    assert "displayName" not in updated and "externalId" not in updated
    assert okta.get(path) == updated
    [event] = okta.events("user.updated")
    assert event.adapter == "okta" and "name" in event.changes["attributes"]
    assert okta.events("user.deactivated") == []


def test_a_put_with_a_foreign_id_in_the_body_updates_the_user_in_the_url(okta: Idp) -> None:
    # The PUT's id is readOnly and ignored (RFC 7644 §3.5.1); the URL names the user.
    user = create_test_user(okta)
    response = okta.send("PUT", f"/scim/v2/Users/{user['id']}", payload("profile_put.json"))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == user["id"]
    assert okta.send("GET", f"/scim/v2/Users/{OKTA_USER}").status_code == 404


def test_a_put_that_omits_active_does_not_suspend_the_user(okta: Idp) -> None:
    # An AIW app's PUT may leave "active" out; suspending on that locks users out
    # (Delinea's notes on Okta SCIM, https://docs.delinea.com/online-help/
    # delinea-platform/scim/okta-scim-provisioning/okta-scim-endpoint-reference.htm).
    user = create_test_user(okta)
    body = payload("profile_put.json", okta.learnt)
    del body["active"]

    response = okta.send("PUT", f"/scim/v2/Users/{user['id']}", body)

    assert response.status_code == 200, response.text
    assert response.json()["active"] is True
    assert okta.events("user.deactivated") == []


# --- (3) deactivating, reactivating, re-provisioning ------------------------------------


def test_deactivating_keeps_the_user_and_its_groups_then_reactivating_restores_it(
    okta: Idp,
) -> None:
    user = create_test_user(okta)
    path = f"/scim/v2/Users/{user['id']}"
    group = okta.send("POST", "/scim/v2/Groups", payload("group_push.json")).json()
    okta.learnt[OKTA_GROUP] = group["id"]
    members = okta.replay("PATCH", f"/scim/v2/Groups/{group['id']}", "group_membership_patch.json")
    assert members.status_code == 204, members.text

    # Okta SCIM 2.0 reference, "Update a specific User (PATCH)": a pathless replace
    # of {"active": false}. Okta never DELETEs a user ("Delete Users").
    response = okta.replay("PATCH", path, "deactivate_patch.json")

    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    # The default policy (deprovision = "deactivate") keeps the user, and its groups.
    kept = okta.get(path)
    assert kept["active"] is False
    assert kept["name"] == user["name"] and kept["emails"] == user["emails"]
    assert [g["value"] for g in kept["groups"]] == [group["id"]]
    roster = okta.get(f"/scim/v2/Groups/{group['id']}")["members"]
    assert [m["value"] for m in roster] == [user["id"]]
    assert okta.existence_check(USER_NAME).json()["totalResults"] == 1
    [event] = okta.events("user.deactivated")
    assert (event.resource_id, event.adapter) == (user["id"], "okta")

    # Activating a user is the same PATCH with {"active": true}.
    response = okta.replay("PATCH", path, "reactivate_patch.json")

    assert response.status_code == 200, response.text
    assert response.json()["active"] is True
    assert okta.get(path)["active"] is True
    assert [g["value"] for g in okta.get(path)["groups"]] == [group["id"]]
    assert len(okta.events("user.reactivated")) == 1
    assert okta.events("user.deleted") == []


def test_an_aiw_app_deactivates_and_reactivates_by_put(okta: Idp) -> None:
    # Okta SCIM 2.0 reference, "Delete Users": AIW apps send active=false by PUT.
    user = create_test_user(okta)
    path = f"/scim/v2/Users/{user['id']}"
    for active in (False, True):
        body = payload("profile_put.json", okta.learnt)
        body["active"] = active
        response = okta.send("PUT", path, body)
        assert response.status_code == 200, response.text
        assert okta.get(path)["active"] is active
    assert len(okta.events("user.deactivated")) == len(okta.events("user.reactivated")) == 1


def test_a_re_post_after_deactivation_restores_the_same_user(okta: Idp) -> None:
    # After a reassignment Okta POSTs the user again with the same externalId; a 409
    # locks the user out for good (https://github.com/better-auth/better-auth/issues/11111).
    user = create_test_user(okta)
    path = f"/scim/v2/Users/{user['id']}"
    assert okta.replay("PATCH", path, "deactivate_patch.json").json()["active"] is False

    response = okta.replay("POST", "/scim/v2/Users", "create_user.json")

    assert response.status_code == 201, response.text
    restored = response.json()
    assert restored["id"] == user["id"]
    assert restored["active"] is True and restored["externalId"] == EXTERNAL_ID
    assert okta.get(path)["active"] is True
    assert okta.existence_check(USER_NAME).json()["totalResults"] == 1
    [event] = okta.events("user.reactivated")
    assert event.resource_id == user["id"] and event.adapter == "okta"


def test_with_deprovision_delete_a_deactivation_deletes_and_a_re_post_restores(
    okta: Idp,
) -> None:
    okta.set_options({"deprovision": "delete", "delete_mode": "tombstone"})
    user = create_test_user(okta)
    path = f"/scim/v2/Users/{user['id']}"

    deactivated = okta.replay("PATCH", path, "deactivate_patch.json")

    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["active"] is False
    assert okta.send("GET", path).status_code == 404
    # Okta's next existence check finds nobody, so it creates the user again.
    assert okta.existence_check(USER_NAME).json() == payload("existence_check_empty.response.json")
    response = okta.replay("POST", "/scim/v2/Users", "create_user.json")

    assert response.status_code == 201, response.text
    assert response.json()["id"] == user["id"] and response.json()["active"] is True
    assert okta.get(path)["userName"] == USER_NAME
    assert [e.kind for e in okta.events("user.deleted", "user.reactivated")] == [
        "user.deleted",
        "user.reactivated",
    ]


# --- (4) importing users --------------------------------------------------------------


def test_importing_users_page_by_page_returns_each_user_once(okta: Idp) -> None:
    created = [okta.create(okta_user(n))["id"] for n in range(250)]
    # A deactivated user is imported too, in its place.
    okta.replay("PATCH", f"/scim/v2/Users/{created[120]}", "deactivate_patch.json")

    # Okta SCIM 2.0 reference, "Retrieve Users": startIndex=1&count=100, then
    # startIndex+100 until totalResults; the numbers are integers.
    seen: list[dict[str, Any]] = []
    start = 1
    while True:
        page = okta.get(f"/scim/v2/Users?startIndex={start}&count=100")
        assert LIST_RESPONSE in page["schemas"]
        assert (page["totalResults"], page["startIndex"]) == (250, start)
        assert page["itemsPerPage"] == len(page["Resources"])
        seen += page["Resources"]
        start += 100
        if start > page["totalResults"]:
            break

    assert [len(seen[i : i + 100]) for i in range(0, 250, 100)] == [100, 100, 50]
    assert [u["id"] for u in seen] == created
    assert seen[120]["active"] is False
    assert all(u["active"] is True for i, u in enumerate(seen) if i != 120)
    # The same order whatever count is asked for.
    whole = okta.get("/scim/v2/Users?startIndex=1&count=250")
    assert [u["id"] for u in whole["Resources"]] == created
    odd = okta.get("/scim/v2/Users?startIndex=77&count=33")
    assert [u["id"] for u in odd["Resources"]] == created[76:109]


# --- (5) pushing groups ---------------------------------------------------------------


def member_ids(idp: Idp, group_id: str) -> list[str]:
    return sorted(m["value"] for m in idp.get(f"/scim/v2/Groups/{group_id}")["members"])


def test_pushing_a_group_and_changing_its_members(okta: Idp) -> None:
    user = create_test_user(okta)
    other = create_other_user(okta)

    # "Okta now supports creation of a Group along with its user memberships" (Okta's
    # Group Push documentation, https://github.com/oktadeveloper/okta-blog-archive/pull/701);
    # members in the shape of the reference's "Update specific Group membership".
    response = okta.replay("POST", "/scim/v2/Groups", "group_push_with_members.json")
    assert response.status_code == 201, response.text
    group = response.json()
    okta.learnt[OKTA_GROUP] = group["id"]
    path = f"/scim/v2/Groups/{group['id']}"
    assert group["displayName"] == "Test SCIMv2"
    assert [m["value"] for m in group["members"]] == [other["id"]]

    # Okta SCIM 2.0 reference, "Update specific Group membership": one PATCH removes
    # by a value filter and adds; the remove must not be skipped.
    delta = okta.replay("PATCH", path, "group_membership_patch.json")
    assert delta.status_code == 204, delta.text
    assert member_ids(okta, group["id"]) == [user["id"]]
    assert [e.changes["member"] for e in okta.events("member.removed")] == [other["id"]]

    # "Update a specific Group name": pathless replace whose value carries the
    # group's own id; sent on every membership update, so often with the same name.
    same = okta.replay("PATCH", path, "group_rename_patch.json")
    assert same.status_code == 204, same.text
    assert okta.get(path)["displayName"] == "Test SCIMv2"
    assert member_ids(okta, group["id"]) == [user["id"]]
    assert okta.events("group.renamed") == []
    rename = payload("group_rename_patch.json", okta.learnt)
    rename["Operations"][0]["value"]["displayName"] = "Test SCIMv20"
    renamed = okta.send("PATCH", path, rename)
    assert renamed.status_code == 204, renamed.text
    assert okta.get(path)["displayName"] == "Test SCIMv20"
    assert member_ids(okta, group["id"]) == [user["id"]]
    [event] = okta.events("group.renamed")
    assert event.changes["displayName"] == ["Test SCIMv2", "Test SCIMv20"]
    assert okta.get(f"/scim/v2/Users/{user['id']}")["groups"][0]["display"] == "Test SCIMv20"

    # A full push of the membership: replace members.
    full = okta.replay("PATCH", path, "group_members_replace_patch.json")
    assert full.status_code == 204, full.text
    assert member_ids(okta, group["id"]) == sorted([user["id"], other["id"]])

    # "Push now" of an empty group: replace members with [] (SCIM-SDK issue #757).
    empty = okta.replay("PATCH", path, "group_empty_push_patch.json")
    assert empty.status_code == 204, empty.text
    assert okta.get(path)["members"] == []
    assert okta.get(path)["displayName"] == "Test SCIMv20"

    # Okta imports groups page by page too.
    listed = okta.get("/scim/v2/Groups?startIndex=1&count=100")
    assert (listed["totalResults"], listed["itemsPerPage"]) == (1, 1)
    assert listed["Resources"][0]["id"] == group["id"]

    # "Delete a specific Group": unlinking with "Delete the group in the target app".
    deleted = okta.send("DELETE", path)
    assert deleted.status_code == 204 and deleted.content == b""
    assert okta.send("GET", path).status_code == 404
    for member in (user, other):
        kept = okta.get(f"/scim/v2/Users/{member['id']}")
        assert kept["active"] is True and "groups" not in kept
    assert all(e.adapter == "okta" for e in okta.recorder.events if e.team == okta.slug)


def test_pushing_an_empty_group_creates_it_without_members(okta: Idp) -> None:
    # Okta SCIM 2.0 reference, "Create Groups": {"displayName": ..., "members": []}.
    response = okta.replay("POST", "/scim/v2/Groups", "group_push.json")

    assert response.status_code == 201, response.text
    group = response.json()
    assert group["schemas"] == [GROUP_SCHEMA]
    assert group["displayName"] == "Test SCIMv2" and group["members"] == []
    assert response.headers["Location"] == group["meta"]["location"]
    assert okta.get(f"/scim/v2/Groups/{group['id']}") == group


# --- okta and generic on Okta's standard requests --------------------------------------


# Okta's whole sequence: (method, url, stored body or body, the status Okta expects).
OKTA_SEQUENCE: list[tuple[str, str, Any, int]] = [
    ("GET", "existence check", None, 200),
    ("POST", "/scim/v2/Users", "create_user.json", 201),
    ("POST", "/scim/v2/Users", okta_user(1), 201),
    ("GET", "existence check", None, 200),
    ("POST", "/scim/v2/Users", "create_user.json", 409),
    ("GET", "/scim/v2/Users/{user}", None, 200),
    ("PUT", "/scim/v2/Users/{user}", "profile_put.json", 200),
    ("POST", "/scim/v2/Groups", "group_push_with_members.json", 201),
    ("PATCH", "/scim/v2/Groups/{group}", "group_membership_patch.json", 204),
    ("GET", "/scim/v2/Groups/{group}", None, 200),
    ("PATCH", "/scim/v2/Groups/{group}", "group_rename_patch.json", 204),
    ("GET", "/scim/v2/Groups/{group}", None, 200),
    ("PATCH", "/scim/v2/Groups/{group}", "group_members_replace_patch.json", 204),
    ("GET", "/scim/v2/Groups/{group}", None, 200),
    ("PATCH", "/scim/v2/Users/{user}", "deactivate_patch.json", 200),
    ("GET", "/scim/v2/Users/{user}", None, 200),
    ("PATCH", "/scim/v2/Users/{user}", "reactivate_patch.json", 200),
    ("PATCH", "/scim/v2/Users/{user}", "deactivate_patch.json", 200),
    ("POST", "/scim/v2/Users", "create_user.json", 201),
    ("PATCH", "/scim/v2/Groups/{group}", "group_empty_push_patch.json", 204),
    ("GET", "/scim/v2/Groups/{group}", None, 200),
    ("GET", "/scim/v2/Users?startIndex=1&count=100", None, 200),
    ("GET", "/scim/v2/Groups?startIndex=1&count=100", None, 200),
    ("DELETE", "/scim/v2/Groups/{group}", None, 204),
    ("GET", "/scim/v2/Groups/{group}", None, 404),
    ("GET", "/scim/v2/Users/unknown", None, 404),
]


def transcript(idp: Idp) -> list[tuple[str, str, int, Any]]:
    """:data:`OKTA_SEQUENCE` replayed, as (method, url, status, body), ids made symbolic."""
    symbols: dict[str, str] = {}
    out: list[tuple[str, str, int, Any]] = []
    for method, url, body, expected in OKTA_SEQUENCE:
        if url == "existence check":
            response = idp.existence_check(USER_NAME)
        else:
            target = url.format(
                user=idp.learnt.get(OKTA_USER, ""), group=idp.learnt.get(OKTA_GROUP, "")
            )
            sent = payload(body, idp.learnt) if isinstance(body, str) else body
            response = idp.send(method, target, sent)
        assert response.status_code == expected, (method, url, response.text)
        text = response.text
        if response.status_code == 201:
            created = response.json()
            if created.get("userName") == USER_NAME:
                idp.learnt[OKTA_USER] = created["id"]
            elif created["meta"]["resourceType"] == "Group":
                idp.learnt[OKTA_GROUP] = created["id"]
            else:
                idp.learnt[OKTA_OTHER_USER] = created["id"]
        for okta_id, ours in idp.learnt.items():
            symbols[ours] = f"<{okta_id[:8]}>"
        for ours, symbol in symbols.items():
            text = text.replace(ours, symbol)
        data = json.loads(text) if text else None
        out.append((method, url, response.status_code, _timeless(data)))
    return out


def _timeless(data: Any) -> Any:
    """``data`` without the timestamps and versions that differ from run to run."""
    if isinstance(data, dict):
        return {
            k: "<varies>" if k in ("created", "lastModified", "version") else _timeless(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_timeless(v) for v in data]
    return data


def test_okta_and_generic_answer_oktas_standard_requests_alike(okta: Idp, generic: Idp) -> None:
    # Okta's requests here are standard SCIM: the okta adapter needs no leniency the
    # strict generic adapter lacks, and changes nothing generic would not.
    through_okta = transcript(okta)
    through_generic = transcript(generic)

    assert through_okta == through_generic
    assert {e.adapter for e in okta.recorder.events if e.team == okta.slug} == {"okta"}
    assert {e.adapter for e in generic.recorder.events if e.team == generic.slug} == {"generic"}
