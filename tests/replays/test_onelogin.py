"""OneLogin's provisioning traffic, replayed over HTTP against a key bound to ``onelogin``.

OneLogin's "SCIM Provisioner with SAML (SCIM v2 Enterprise)" connector sends what an
admin's "SCIM JSON template" says, so its bodies vary. The bodies stored in
``tests/replays/onelogin/`` follow the sources the adapter names:

* "authentik#11249": the request log of OneLogin's connector in
  https://github.com/goauthentik/authentik/issues/11249 (legacy URNs, ``PUT
  /Users/{id}?``, ``GET /Users?filter=userName+eq+%22...%22&``, group PATCH);
* "template guide": OneLogin's Core and Enterprise User templates,
  https://developers.onelogin.com/scim/define-user-schema (SCIM 1.1 URNs,
  ``emails`` as one object, ``manager.managerId`` from ``external_manager_id``);
* "KB0013904" and scim.dev's OneLogin guide: the template fields ``department``,
  ``title`` and ``external_manager_id``;
* Postman's OneLogin page: deprovisioning is "Suspend" (``active: false``).

Confidence in these shapes is lower than for Okta and Entra: they rest on one log and
on the templates. The group bodies are RFC 7644 shapes with OneLogin's lowercase ops.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from sqlalchemy import select, update
from starlette.testclient import TestClient

from adapters.onelogin import OneLoginAdapter
from gateway.app import create_app
from gateway.config import Settings
from gateway.policy import TeamPolicy
from gateway.store.query import users
from gateway.store.tables import Team
from plugins import Inbound
from tests.support import provision

SAMPLES = Path(__file__).parent / "onelogin"

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
LEGACY = (
    "urn:scim:schemas:core:1.0",
    "urn:scim:schemas:core:2.0",
    "urn:scim:schemas:extension:enterprise:1.0",
    "urn:scim:schemas:extension:enterprise:2.0",
)


def sample(name: str, **ids: str) -> Any:
    """A stored OneLogin body, its ``{{placeholders}}`` replaced by assigned ids."""
    text = (SAMPLES / f"{name}.json").read_text(encoding="utf-8")
    for key, value in ids.items():
        text = text.replace("{{" + key + "}}", value)
    return json.loads(text)


class OneLogin:
    """OneLogin's connector: a key of its own team, bound to the ``onelogin`` adapter."""

    def __init__(self, client: TestClient, slug: str) -> None:
        self.client = client
        self.slug = slug

    def send(self, method: str, url: str, body: Any = None) -> httpx2.Response:
        content = None if body is None else json.dumps(body)
        return self.client.request(method, url, content=content)

    def ok(self, method: str, url: str, body: Any = None, status: int = 200) -> Any:
        response = self.send(method, url, body)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def exists(self, user_name: str) -> httpx2.Response:
        # authentik#11249: `GET /Users?filter=userName+eq+%22...%22&`, trailing `&`.
        quoted = user_name.replace("@", "%40")
        return self.send("GET", f"/scim/v2/Users?filter=userName+eq+%22{quoted}%22&")

    def push(self, name: str) -> dict[str, Any]:
        created: dict[str, Any] = self.ok("POST", "/scim/v2/Users", sample(name), status=201)
        return created

    def row(self, user_id: str) -> dict[str, Any]:
        """The user's row of the common model, as the application reads it."""
        gateway = self.client.app.state.gateway  # type: ignore[attr-defined]
        with gateway.db.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user_id)).one()
        return dict(row._mapping)

    def set_options(self, options: dict[str, Any]) -> None:
        """Set the team's options, as an admin would in the config."""
        TeamPolicy.from_options(options)  # what the config loader accepts
        gateway = self.client.app.state.gateway  # type: ignore[attr-defined]
        teams = Team.__table__  # type: ignore[attr-defined]
        with gateway.db.engine.begin() as conn:
            conn.execute(update(teams).where(teams.c.slug == self.slug).values(options=options))


@pytest.fixture
def onelogin(settings: Settings) -> Iterator[OneLogin]:
    app = create_app(settings)
    headers = {"Content-Type": "application/json"}
    with TestClient(app, base_url="http://testserver", headers=headers) as client:
        slug = "onelogin-" + uuid.uuid4().hex[:12]
        token = provision(app.state.gateway, slug, adapter="onelogin")
        client.headers["Authorization"] = f"Bearer {token}"
        yield OneLogin(client, slug)


def no_legacy_urn(resource: dict[str, Any]) -> bool:
    text = json.dumps(resource).lower()
    return not any(urn in text for urn in LEGACY)


# --- pushing new users ----------------------------------------------------------------


def test_push_checks_existence_with_a_trailing_ampersand_then_posts_the_template(
    onelogin: OneLogin,
) -> None:
    other = onelogin.push("users-post-edited-template")

    check = onelogin.exists("mia.lopez@example.com")
    # The trailing `&` reaches the gateway as sent, and the filter still applies.
    assert str(check.request.url).endswith("%22&")
    assert check.status_code == 200, check.text
    assert check.json() == {
        "schemas": [LIST_RESPONSE],
        "totalResults": 0,
        "itemsPerPage": 0,
        "startIndex": 1,
        "Resources": [],
    }

    # Template guide, "OneLogin Enterprise User Schema": SCIM 1.1 URNs, one email as
    # an object, the manager as managerId.
    user = onelogin.push("users-post-enterprise-template")

    assert user["schemas"] == [USER_SCHEMA, ENTERPRISE]
    assert no_legacy_urn(user)
    assert user["emails"] == [{"value": "mia.lopez@example.com", "type": "work", "primary": True}]
    assert user["title"] == "Staff Engineer"
    assert user[ENTERPRISE]["department"] == "Platform"
    assert user[ENTERPRISE]["manager"]["value"] == "ol-manager-7731"
    assert user[ENTERPRISE]["manager"]["managerId"] == "ol-manager-7731"  # kept as sent

    found = onelogin.exists("mia.lopez@example.com").json()
    assert found["totalResults"] == 1
    assert [r["id"] for r in found["Resources"]] == [user["id"]]
    assert found["Resources"][0]["id"] != other["id"]

    row = onelogin.row(user["id"])
    assert (row["department"], row["title"], row["manager_id"]) == (
        "Platform",
        "Staff Engineer",
        "ol-manager-7731",
    )


def test_template_fields_at_the_top_level_land_on_the_common_model_and_are_kept(
    onelogin: OneLogin,
) -> None:
    # authentik#11249's URNs, with KB0013904's template fields at the top level.
    user = onelogin.push("users-post-edited-template")

    assert user["schemas"] == [USER_SCHEMA, ENTERPRISE]
    assert user[ENTERPRISE]["employeeNumber"] == "E-1001"
    assert user[ENTERPRISE]["department"] == "Finance"
    assert user[ENTERPRISE]["manager"]["value"] == "ol-manager-4410"
    # Lossless: the template's own attributes come back as sent.
    assert (user["department"], user["title"], user["external_manager_id"]) == (
        "Finance",
        "Controller",
        "ol-manager-4410",
    )
    assert onelogin.ok("GET", f"/scim/v2/Users/{user['id']}") == user

    row = onelogin.row(user["id"])
    assert row["department"] == "Finance"
    assert row["title"] == "Controller"
    assert row["manager_id"] == "ol-manager-4410"
    assert row["employee_number"] == "E-1001"


def test_a_team_attribute_map_overrides_and_extends_the_template_defaults(
    onelogin: OneLogin,
) -> None:
    onelogin.set_options({"attribute_map": {"department": "division", "cost_code": "cost_center"}})
    body = sample("users-post-edited-template") | {"cost_code": "CC-77"}

    user = onelogin.ok("POST", "/scim/v2/Users", body, status=201)

    row = onelogin.row(user["id"])
    assert row["division"] == "Finance"  # the team's mapping wins over the default
    assert row["department"] is None
    assert row["cost_center"] == "CC-77"  # and adds its own fields
    assert row["title"] == "Controller"  # defaults the team did not touch still apply
    assert row["manager_id"] == "ol-manager-4410"
    assert (user["department"], user["cost_code"]) == ("Finance", "CC-77")


def raw_request(port: int, request_line: str, token: str, body: Any = None) -> tuple[int, Any]:
    """Send ``request_line`` byte for byte, as OneLogin's connector does, and read the answer."""
    data = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{request_line} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    _headers, _, content = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(content) if content else None


def test_sloppy_query_strings_work_through_a_real_http_server(settings: Settings) -> None:
    # The HTTP server, not the gateway, splits `?` and the query off the target; this
    # checks that the server the gateway ships with (uvicorn) passes them on harmlessly.
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        token = provision(
            app.state.gateway, "onelogin-" + uuid.uuid4().hex[:12], adapter="onelogin"
        )
        for name in ("users-post-enterprise-template", "users-post-edited-template"):
            status, created = raw_request(port, "POST /scim/v2/Users", token, sample(name))
            assert status == 201, created
        user_id = created["id"]

        status, found = raw_request(
            port, "GET /scim/v2/Users?filter=userName+eq+%22onelogin-test-user01%22&", token
        )
        assert status == 200, found
        assert [r["id"] for r in found["Resources"]] == [user_id]

        status, saved = raw_request(
            port, f"PUT /scim/v2/Users/{user_id}?", token, sample("users-put-suspend")
        )
        assert status == 200, saved
        assert saved["active"] is False

        status, page = raw_request(port, "GET /scim/v2/Users?&startIndex=2&&count=1&", token)
        assert status == 200, page
        assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (2, 2, 1)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- profile updates, suspension, deletion --------------------------------------------


def test_profile_update_is_a_put_with_a_trailing_question_mark(onelogin: OneLogin) -> None:
    user = onelogin.push("users-post-edited-template")

    # authentik#11249: `PUT /Users/{id}?` with the legacy URNs of the template.
    response = onelogin.send("PUT", f"/scim/v2/Users/{user['id']}?", sample("users-put-profile"))

    assert str(response.request.url).endswith(f"/Users/{user['id']}?")
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["id"] == user["id"]
    assert updated["name"] == {"givenName": "OneLogin", "familyName": "Renamed"}
    assert updated["active"] is True  # a PUT without `active` does not suspend
    assert no_legacy_urn(updated)
    assert updated[ENTERPRISE]["employeeNumber"] == "E-1001"  # legacy extension key moved
    assert updated[ENTERPRISE]["department"] == "Treasury"
    assert updated[ENTERPRISE]["manager"]["value"] == "ol-manager-5520"
    assert onelogin.ok("GET", f"/scim/v2/Users/{user['id']}?") == updated

    row = onelogin.row(user["id"])
    assert (row["family_name"], row["department"], row["title"], row["manager_id"]) == (
        "Renamed",
        "Treasury",
        "Head of Treasury",
        "ol-manager-5520",
    )


def test_suspend_is_a_put_with_active_false_and_keeps_the_user_and_its_groups(
    onelogin: OneLogin,
) -> None:
    user = onelogin.push("users-post-edited-template")
    group = onelogin.ok("POST", "/scim/v2/Groups", sample("groups-post"), status=201)
    add = sample("groups-patch-add-members", user1=user["id"], user2=user["id"])
    onelogin.ok("PATCH", f"/scim/v2/Groups/{group['id']}", add, status=204)

    # Postman's OneLogin page: the app's deprovisioning action is "Suspend".
    suspended = onelogin.ok("PUT", f"/scim/v2/Users/{user['id']}?", sample("users-put-suspend"))

    assert suspended["active"] is False
    assert onelogin.ok("GET", f"/scim/v2/Users/{user['id']}")["active"] is False
    assert onelogin.row(user["id"])["state"] == "inactive"
    assert [g["value"] for g in suspended["groups"]] == [group["id"]]

    restored = onelogin.ok("PUT", f"/scim/v2/Users/{user['id']}?", sample("users-put-unsuspend"))

    assert restored["active"] is True
    assert restored["id"] == user["id"]
    assert onelogin.row(user["id"])["state"] == "active"
    assert [g["value"] for g in restored["groups"]] == [group["id"]]


def test_delete_removes_the_user(onelogin: OneLogin) -> None:
    user = onelogin.push("users-post-edited-template")

    response = onelogin.send("DELETE", f"/scim/v2/Users/{user['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert onelogin.send("GET", f"/scim/v2/Users/{user['id']}").status_code == 404
    assert onelogin.exists("onelogin-test-user01").json()["totalResults"] == 0


# --- import ---------------------------------------------------------------------------


def test_import_reads_every_user_page_by_page(onelogin: OneLogin) -> None:
    created = set()
    for n in range(5):
        body = sample("users-post-edited-template")
        body["userName"] = f"onelogin-user{n:02}"
        body["emails"] = [{"value": f"onelogin-user{n:02}@example.com", "type": "work"}]
        created.add(onelogin.ok("POST", "/scim/v2/Users", body, status=201)["id"])

    seen: list[str] = []
    start = 1
    while True:
        page = onelogin.ok("GET", f"/scim/v2/Users?startIndex={start}&count=2&")
        assert page["totalResults"] == 5
        assert page["startIndex"] == start
        assert page["itemsPerPage"] == len(page["Resources"]) <= 2
        seen += [r["id"] for r in page["Resources"]]
        start += page["itemsPerPage"]
        if start > page["totalResults"] or not page["Resources"]:
            break

    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == created


# --- groups ---------------------------------------------------------------------------


def test_groups_are_pushed_and_their_members_changed_by_patch(onelogin: OneLogin) -> None:
    first = onelogin.push("users-post-edited-template")
    body = sample("users-post-enterprise-template")
    second = onelogin.ok("POST", "/scim/v2/Users", body, status=201)

    group = onelogin.ok("POST", "/scim/v2/Groups", sample("groups-post"), status=201)
    assert group["displayName"] == "Finance Team"
    assert group.get("members", []) == []
    legacy = {"schemas": ["urn:scim:schemas:core:2.0"], "displayName": "Finance Leads"}
    assert onelogin.ok("POST", "/scim/v2/Groups", legacy, status=201)["schemas"] == [GROUP_SCHEMA]

    # authentik#11249: membership is PATCH on /Groups/{id}, with lowercase ops.
    add = sample("groups-patch-add-members", user1=first["id"], user2=second["id"])
    response = onelogin.send("PATCH", f"/scim/v2/Groups/{group['id']}?", add)
    assert response.status_code == 204, response.text

    members = onelogin.ok("GET", f"/scim/v2/Groups/{group['id']}")["members"]
    assert {m["value"] for m in members} == {first["id"], second["id"]}
    user = onelogin.ok("GET", f"/scim/v2/Users/{first['id']}")
    assert [(g["value"], g["display"]) for g in user["groups"]] == [(group["id"], "Finance Team")]

    remove = sample("groups-patch-remove-member", user2=second["id"])
    onelogin.ok("PATCH", f"/scim/v2/Groups/{group['id']}?", remove, status=204)

    members = onelogin.ok("GET", f"/scim/v2/Groups/{group['id']}")["members"]
    assert [m["value"] for m in members] == [first["id"]]
    assert onelogin.ok("GET", f"/scim/v2/Users/{second['id']}").get("groups", []) == []


def test_legacy_urns_in_patch_paths_and_values_reach_the_standard_attributes(
    onelogin: OneLogin,
) -> None:
    user = onelogin.push("users-post-enterprise-template")
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {
                "op": "replace",
                "path": "urn:scim:schemas:extension:enterprise:2.0:department",
                "value": "Operations",
            },
            {
                "op": "add",
                "value": {"urn:scim:schemas:extension:enterprise:1.0": {"costCenter": "CC-9"}},
            },
            {
                "op": "replace",
                "path": "urn:scim:schemas:core:2.0:User:displayName",
                "value": "Mia L.",
            },
        ],
    }

    patched = onelogin.ok("PATCH", f"/scim/v2/Users/{user['id']}", body)

    assert no_legacy_urn(patched)
    assert patched["displayName"] == "Mia L."
    assert patched[ENTERPRISE]["department"] == "Operations"
    assert patched[ENTERPRISE]["costCenter"] == "CC-9"
    row = onelogin.row(user["id"])
    assert (row["display_name"], row["department"], row["cost_center"]) == (
        "Mia L.",
        "Operations",
        "CC-9",
    )


# --- the URN spellings the adapter knows -----------------------------------------------


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (["urn:scim:schemas:core:1.0"], [USER_SCHEMA]),
        (["URN:SCIM:SCHEMAS:CORE:2.0:USER"], [USER_SCHEMA]),
        (["urn:scim:schemas:extension:enterprise:2.0:User"], [USER_SCHEMA, ENTERPRISE]),
        ([USER_SCHEMA, "urn:scim:schemas:core:2.0"], [USER_SCHEMA]),
        (["urn:okta:acme:1.0:user"], [USER_SCHEMA, "urn:okta:acme:1.0:user"]),
        (None, [USER_SCHEMA]),
    ],
)
def test_schemas_are_rewritten_to_rfc7643_urns(sent: Any, expected: list[str]) -> None:
    body: dict[str, Any] = {"userName": "u"} | ({} if sent is None else {"schemas": sent})
    ctx = Inbound(team="t", adapter="onelogin", resource_type="User", method="POST")

    assert OneLoginAdapter().normalize_resource(body, ctx)["schemas"] == expected


def test_an_attribute_under_both_enterprise_spellings_keeps_the_standard_one() -> None:
    body = {
        "userName": "u",
        "urn:scim:schemas:extension:enterprise:2.0:User": {"department": "old", "division": "D"},
        ENTERPRISE: {"department": "new"},
    }
    sent = copy.deepcopy(body)
    ctx = Inbound(team="t", adapter="onelogin", resource_type="User", method="PUT")

    out = OneLoginAdapter().normalize_resource(body, ctx)

    assert out[ENTERPRISE] == {"department": "new", "division": "D"}
    assert no_legacy_urn(out)
    assert body == sent  # adapters are pure: the request is not changed in place
