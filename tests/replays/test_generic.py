"""RFC 7644's own example requests, replayed over HTTP against a key bound to ``generic``.

The ``generic`` adapter absorbs no dialect: it is what a client that follows RFC 7643
and RFC 7644 talks to. The bodies in ``tests/replays/generic/`` are the RFC examples,
named by section; the RFC's example ids are replaced by the ids the gateway assigned.
The second half shows that what other adapters absorb (legacy schema URNs, string
booleans, Entra's PATCH and filter forms) is refused here with the SCIM error RFC
7644 §3.12 names.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import Settings
from gateway.store.query import users
from tests.support import provision

SAMPLES = Path(__file__).parent / "generic"
ONELOGIN_SAMPLES = Path(__file__).parent / "onelogin"

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def sample(name: str, folder: Path = SAMPLES, **ids: str) -> Any:
    """A stored request body, its ``{{placeholders}}`` replaced by assigned ids."""
    text = (folder / f"{name}.json").read_text(encoding="utf-8")
    for key, value in ids.items():
        text = text.replace("{{" + key + "}}", value)
    return json.loads(text)


class Client:
    """An RFC 7644 client holding a key bound to the ``generic`` adapter."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def send(self, method: str, url: str, body: Any = None) -> httpx2.Response:
        return self.client.request(
            method, f"/scim/v2{url}", content=None if body is None else json.dumps(body)
        )

    def ok(self, method: str, url: str, body: Any = None, status: int = 200) -> Any:
        response = self.send(method, url, body)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def user(self, user_name: str) -> dict[str, Any]:
        body = {"schemas": [USER_SCHEMA], "userName": user_name}
        created: dict[str, Any] = self.ok("POST", "/Users", body, status=201)
        return created

    def state(self, user_id: str) -> str:
        gateway = self.client.app.state.gateway  # type: ignore[attr-defined]
        with gateway.db.engine.connect() as conn:
            state: str = conn.execute(select(users.c.state).where(users.c.id == user_id)).one()[0]
        return state


@pytest.fixture
def scim(settings: Settings) -> Iterator[Client]:
    app = create_app(settings)
    headers = {"Content-Type": "application/scim+json"}
    with TestClient(app, base_url="http://testserver", headers=headers) as client:
        slug = "generic-" + uuid.uuid4().hex[:12]
        token = provision(app.state.gateway, slug, adapter="generic")
        client.headers["Authorization"] = f"Bearer {token}"
        yield Client(client)


@pytest.fixture
def bjensen(scim: Client) -> dict[str, Any]:
    """RFC 7644 §3.3: the example create request."""
    response = scim.send("POST", "/Users", sample("rfc7644-3.3-post-user"))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert response.headers["Location"] == created["meta"]["location"]
    return created


def assert_error(response: httpx2.Response, status: int, scim_type: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()
    assert error["schemas"] == [ERROR]
    assert (error["status"], error.get("scimType")) == (str(status), scim_type)
    assert error["detail"]


# --- users ----------------------------------------------------------------------------


def test_rfc7644_3_3_create_returns_the_resource(bjensen: dict[str, Any]) -> None:
    assert bjensen["schemas"] == [USER_SCHEMA]
    assert (bjensen["userName"], bjensen["externalId"]) == ("bjensen", "bjensen")
    assert bjensen["name"] == sample("rfc7644-3.3-post-user")["name"]
    assert bjensen["active"] is True
    assert bjensen["meta"]["resourceType"] == "User"
    assert bjensen["meta"]["location"].endswith(f"/Users/{bjensen['id']}")


def test_rfc7644_user_updates_put_patch_add_replace_remove(
    scim: Client, bjensen: dict[str, Any]
) -> None:
    url = f"/Users/{bjensen['id']}"

    # §3.5.2.1: add without a path.
    user = scim.ok("PATCH", url, sample("rfc7644-3.5.2.1-add-emails-nickname"))
    assert user["nickName"] == "Babs"
    assert user["emails"] == [{"value": "babs@jensen.org", "type": "home"}]

    # §3.5.1: PUT replaces everything it does not list (nickName goes, emails are new).
    user = scim.ok("PUT", url, sample("rfc7644-3.5.1-put-user", bjensen=bjensen["id"]))
    assert user["id"] == bjensen["id"]
    assert user["name"]["middleName"] == "Jane"
    assert "nickName" not in user
    assert user["emails"] == [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]

    # §3.5.2.3: replace without a path.
    user = scim.ok("PATCH", url, sample("rfc7644-3.5.2.3-replace-emails-nickname"))
    assert user["nickName"] == "Babs"
    assert user["emails"] == [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ]

    # §3.5.2.3: replace one value selected by a filter, then one of its sub-attributes.
    scim.ok("PATCH", url, sample("rfc7643-8.2-add-addresses"))
    user = scim.ok("PATCH", url, sample("rfc7644-3.5.2.3-replace-work-address"))
    work = [a for a in user["addresses"] if a["type"] == "work"]
    assert [a["streetAddress"] for a in work] == ["911 Universal City Plaza"]
    user = scim.ok("PATCH", url, sample("rfc7644-3.5.2.3-replace-work-street"))
    streets = {a["type"]: a["streetAddress"] for a in user["addresses"]}
    assert streets == {"work": "1010 Broadway Ave", "home": "456 Hollywood Blvd"}

    # §3.5.2.2: remove the values a filter selects.
    user = scim.ok("PATCH", url, sample("rfc7644-3.5.2.2-remove-work-emails"))
    assert user["emails"] == [{"value": "babs@jensen.org", "type": "home"}]

    assert scim.ok("GET", url) == user


def test_deactivate_by_patch_keeps_the_user_then_delete_removes_it(
    scim: Client, bjensen: dict[str, Any]
) -> None:
    url = f"/Users/{bjensen['id']}"

    user = scim.ok("PATCH", url, sample("rfc7644-3.5.2.3-replace-active-false"))

    assert user["active"] is False
    assert scim.ok("GET", url)["active"] is False
    assert scim.state(bjensen["id"]) == "inactive"

    response = scim.send("DELETE", url)
    assert response.status_code == 204
    assert_error(scim.send("GET", url), 404)


def test_rfc7644_3_4_2_4_paging_returns_every_user_once(scim: Client) -> None:
    created = {scim.user(f"user{n}")["id"] for n in range(7)}

    seen: list[str] = []
    for start in (1, 4, 7):
        page = scim.ok("GET", f"/Users?startIndex={start}&count=3")
        assert page["schemas"] == [LIST_RESPONSE]
        assert (page["totalResults"], page["startIndex"]) == (7, start)
        assert page["itemsPerPage"] == len(page["Resources"]) == min(3, 8 - start)
        seen += [r["id"] for r in page["Resources"]]

    assert len(seen) == 7
    assert set(seen) == created
    assert scim.ok("GET", "/Users?count=0")["Resources"] == []


# --- groups ---------------------------------------------------------------------------


def test_rfc7644_group_create_patch_members_delete(scim: Client) -> None:
    ids = {
        "bjensen": scim.user("bjensen")["id"],
        "mandy": scim.user("mpepperidge")["id"],
        "jsmith": scim.user("jsmith")["id"],
    }

    # RFC 7643 §8.4, as a client that echoes a read resource sends it: the id and
    # meta it carries are the server's to assign.
    group = scim.ok("POST", "/Groups", sample("rfc7643-8.4-post-group", **ids), status=201)
    assert group["schemas"] == [GROUP_SCHEMA]
    assert group["id"] != "e9e30dba-f08f-4109-8486-d5c6a331660a"
    assert group["meta"]["location"].endswith(f"/Groups/{group['id']}")
    url = f"/Groups/{group['id']}"

    def members() -> set[str]:
        return {m["value"] for m in scim.ok("GET", url).get("members", [])}

    assert members() == {ids["bjensen"], ids["mandy"]}

    for name, expected in (
        ("rfc7644-3.5.2.1-add-member", {"bjensen", "mandy", "jsmith"}),
        ("rfc7644-3.5.2.2-remove-member", {"bjensen", "jsmith"}),
        ("rfc7644-3.5.2.3-replace-members", {"bjensen", "mandy"}),
        ("rfc7644-3.5.2.2-remove-all-members", set()),
    ):
        assert scim.ok("PATCH", url, sample(name, **ids), status=204) is None
        assert members() == {ids[n] for n in expected}, name

    assert scim.send("DELETE", url).status_code == 204
    assert scim.send("GET", url).status_code == 404


# --- what generic refuses -------------------------------------------------------------


@pytest.mark.parametrize(
    "schemas",
    [
        ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"],
        ["urn:scim:schemas:core:1.0"],
        None,
    ],
    ids=["onelogin-2.0-urns", "scim-1.1-urn", "missing"],
)
def test_a_user_whose_schemas_lack_the_core_schema_is_refused(
    scim: Client, schemas: list[str] | None
) -> None:
    body: dict[str, Any] = {"userName": "legacy"}
    if schemas is not None:
        body["schemas"] = schemas

    assert_error(scim.send("POST", "/Users", body), 400, "invalidSyntax")
    assert scim.ok("GET", '/Users?filter=userName eq "legacy"')["totalResults"] == 0


def test_a_legacy_extension_urn_is_not_taken_for_the_enterprise_extension(
    scim: Client,
) -> None:
    # What the onelogin adapter translates stays as sent here: an unknown extension.
    body = sample("users-post-enterprise-template", ONELOGIN_SAMPLES)
    body["schemas"] = [USER_SCHEMA, "urn:scim:schemas:extension:enterprise:1.0"]

    user = scim.ok("POST", "/Users", body, status=201)

    assert ENTERPRISE not in user
    assert user["urn:scim:schemas:extension:enterprise:1.0"] == {
        "department": "Platform",
        "manager": {"managerId": "ol-manager-7731"},
    }
    gateway = scim.client.app.state.gateway  # type: ignore[attr-defined]
    with gateway.db.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user["id"])).one()
    assert (row.department, row.manager_id) == (None, None)


@pytest.mark.parametrize("value", ["True", "true", "False"])
def test_a_string_boolean_is_refused_on_create(scim: Client, value: str) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "entra.style", "active": value}

    assert_error(scim.send("POST", "/Users", body), 400, "invalidValue")
    assert scim.ok("GET", '/Users?filter=userName eq "entra.style"')["totalResults"] == 0


def test_a_string_boolean_is_refused_on_patch(scim: Client) -> None:
    user = scim.user("entra.style")
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }

    assert_error(scim.send("PATCH", f"/Users/{user['id']}", body), 400, "invalidValue")
    assert scim.ok("GET", f"/Users/{user['id']}")["active"] is True


def test_replace_of_a_missing_filtered_value_is_no_target(scim: Client) -> None:
    # Entra expects the work email to be created; RFC 7644 §3.5.2.3 says noTarget.
    user = scim.user("entra.style")
    body = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "x@contoso.com"}
        ],
    }

    assert_error(scim.send("PATCH", f"/Users/{user['id']}", body), 400, "noTarget")
    assert "emails" not in scim.ok("GET", f"/Users/{user['id']}")


def test_a_bare_string_manager_is_refused(scim: Client) -> None:
    # RFC 7643 §4.3: manager is complex; Entra's bare id is for the entra adapter.
    user = scim.user("entra.style")
    manager_path = f"{ENTERPRISE}:manager"
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": manager_path, "value": "2c2f6fb8"}],
    }
    create = {"schemas": [USER_SCHEMA, ENTERPRISE], "userName": "m", ENTERPRISE: {"manager": "x"}}

    assert_error(scim.send("PATCH", f"/Users/{user['id']}", body), 400, "invalidValue")
    assert_error(scim.send("POST", "/Users", create), 400, "invalidValue")


@pytest.mark.parametrize(
    "text",
    ["externalId eq jyoung", 'emails[type eq "work"].value eq "user@contoso.com"'],
    ids=["unquoted-value", "value-path-with-sub-attribute"],
)
def test_filters_outside_the_rfc_grammar_are_refused(scim: Client, text: str) -> None:
    response = scim.client.get("/scim/v2/Users", params={"filter": text})

    assert_error(response, 400, "invalidFilter")
