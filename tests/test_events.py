"""Provisioning events: one per committed change, delivered to observer plugins.

An observer implements ``scim_gateway_provisioning_event(event)``. Each event names
the team, the key that made the change and its adapter, the resource, what changed,
and the request's ``X-Request-Id``. Events are delivered after their transaction
commits (so an observer reading the database sees the change) and never for a write
that was rolled back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.config import Settings
from gateway.keys import parse_key
from gateway.store.tables import Group, Team, User
from gateway.teams import create_key
from plugins import ProvisioningEvent, hookimpl
from tests.conftest import GROUP_SCHEMA, PATCH_OP, SCIM, USER_SCHEMA
from tests.support import provision

USERS = User.__table__  # type: ignore[attr-defined]
GROUPS = Group.__table__  # type: ignore[attr-defined]
TEAMS = Team.__table__  # type: ignore[attr-defined]
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


@dataclass
class Delivery:
    event: ProvisioningEvent
    users: int
    """Live users of the team in the database when the event was delivered."""
    groups: int


@dataclass(eq=False)  # a plugin: compared by identity when registered
class Recorder:
    """An observer plugin that also notes what the database held at each event."""

    gateway: Gateway
    team_pk: int = 0
    deliveries: list[Delivery] = field(default_factory=list)

    @hookimpl
    def scim_gateway_provisioning_event(self, event: ProvisioningEvent) -> None:
        with self.gateway.db.engine.connect() as conn:
            users = conn.execute(
                select(func.count())
                .select_from(USERS)
                .where(USERS.c.team_pk == self.team_pk, USERS.c.state != "deleted")
            ).scalar_one()
            groups = conn.execute(
                select(func.count()).select_from(GROUPS).where(GROUPS.c.team_pk == self.team_pk)
            ).scalar_one()
        self.deliveries.append(Delivery(event, users, groups))

    def take(self) -> list[ProvisioningEvent]:
        """The events delivered since the last call."""
        events = [d.event for d in self.deliveries]
        self.deliveries.clear()
        return events

    def kinds(self) -> list[str]:
        return [e.kind for e in self.take()]


@dataclass
class Observed:
    client: TestClient
    recorder: Recorder
    gateway: Gateway
    slug: str
    key_id: str

    def configure(self, **options: Any) -> None:
        with self.gateway.db.engine.begin() as conn:
            conn.execute(update(TEAMS).where(TEAMS.c.slug == self.slug).values(options=options))

    def send(self, method: str, path: str, body: Any = None, request_id: str = "") -> Any:
        headers = {"X-Request-Id": request_id} if request_id else {}
        return self.client.request(method, "/scim/v2" + path, json=body, headers=headers)

    def user(self, user_name: str, **attrs: Any) -> str:
        body = {"schemas": [USER_SCHEMA], "userName": user_name, **attrs}
        response = self.send("POST", "/Users", body)
        assert response.status_code == 201, response.text
        user_id: str = response.json()["id"]
        return user_id

    def group(self, name: str, *members: str) -> str:
        body = {
            "schemas": [GROUP_SCHEMA],
            "displayName": name,
            "members": [{"value": m} for m in members],
        }
        response = self.send("POST", "/Groups", body)
        assert response.status_code == 201, response.text
        group_id: str = response.json()["id"]
        return group_id

    def patch(self, path: str, *ops: dict[str, Any], request_id: str = "") -> Any:
        body = {"schemas": [PATCH_OP], "Operations": list(ops)}
        return self.send("PATCH", path, body, request_id)


@pytest.fixture
def observed(settings: Settings) -> Iterator[Observed]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", headers={"Content-Type": SCIM}) as c:
        gateway: Gateway = app.state.gateway
        slug = "team-" + uuid.uuid4().hex[:12]
        token = provision(gateway, slug, adapter="generic", key_name="entra-production")
        c.headers["Authorization"] = f"Bearer {token}"
        recorder = Recorder(gateway)
        gateway.plugins.pm.register(recorder)
        with gateway.db.engine.connect() as conn:
            recorder.team_pk = conn.execute(
                select(TEAMS.c.pk).where(TEAMS.c.slug == slug)
            ).scalar_one()
        key_id = parse_key(token)
        assert key_id is not None
        yield Observed(c, recorder, gateway, slug, key_id)


def active(value: bool) -> dict[str, Any]:
    return {"op": "replace", "path": "active", "value": value}


def member(group_id: str, user_id: str) -> dict[str, Any]:
    return {"group": group_id, "member": user_id, "member_type": "User"}


def test_a_created_user_is_announced_with_who_and_through_what(observed: Observed) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "bjensen"}

    response = observed.send("POST", "/Users", body, request_id="req-create-1")

    assert response.status_code == 201
    (delivery,) = observed.recorder.deliveries
    event = delivery.event
    assert event.kind == "user.created"
    assert event.team == observed.slug
    assert event.resource_type == "User"
    assert event.resource_id == response.json()["id"]
    assert event.display == "bjensen"
    assert event.key_id == observed.key_id
    assert event.key_name == "entra-production"
    assert event.adapter == "generic"
    assert event.request_id == "req-create-1"
    assert event.occurred_at.tzinfo is not None
    assert event.to_dict()["kind"] == "user.created"
    # Delivered after the commit: an observer reading the database finds the user.
    assert delivery.users == 1


def test_events_name_the_key_used_and_its_adapter(observed: Observed) -> None:
    """Two keys of one team, bound to different adapters: each event names its own."""
    info, token = create_key(
        observed.gateway.db, observed.gateway.hasher, observed.slug, "okta-prod", adapter="okta"
    )
    headers = {"Authorization": f"Bearer {token}", "X-Request-Id": "req-okta"}
    body = {"schemas": [USER_SCHEMA], "userName": "bjensen"}

    assert observed.client.post("/scim/v2/Users", json=body, headers=headers).status_code == 201

    (event,) = observed.recorder.take()
    assert (event.key_id, event.key_name, event.adapter) == (info.id, "okta-prod", "okta")
    assert event.key_id != observed.key_id
    assert event.request_id == "req-okta"


def test_a_request_without_x_request_id_gets_one(observed: Observed) -> None:
    observed.user("bjensen")
    observed.user("mpepperidge")

    first, second = observed.recorder.take()
    assert first.request_id and second.request_id
    assert first.request_id != second.request_id


def test_user_lifecycle_events(observed: Observed) -> None:
    user_id = observed.user("bjensen", displayName="Babs")
    observed.recorder.take()
    path = f"/Users/{user_id}"

    ops = (
        {"op": "replace", "path": "displayName", "value": "Barbara"},
        {"op": "add", "path": "title", "value": "Tour Guide"},
    )
    assert observed.patch(path, *ops, request_id="req-update").status_code == 200
    (updated,) = observed.recorder.take()
    assert updated.kind == "user.updated"
    assert updated.resource_id == user_id
    assert updated.changes == {"attributes": ["displayName", "title"]}
    assert updated.request_id == "req-update"

    assert observed.patch(path, active(False), request_id="req-off").status_code == 200
    (deactivated,) = observed.recorder.take()
    assert deactivated.kind == "user.deactivated"
    assert deactivated.changes["active"] == [True, False]
    assert deactivated.request_id == "req-off"

    assert observed.patch(path, active(True), request_id="req-on").status_code == 200
    (reactivated,) = observed.recorder.take()
    assert reactivated.kind == "user.reactivated"
    assert reactivated.changes["active"] == [False, True]

    # A write that changes nothing announces nothing.
    same = {"op": "replace", "path": "displayName", "value": "Barbara"}
    assert observed.patch(path, same).status_code == 200
    assert observed.recorder.take() == []

    assert observed.send("DELETE", path, request_id="req-delete").status_code == 204
    (delivery,) = observed.recorder.deliveries
    assert delivery.event.kind == "user.deleted"
    assert delivery.event.resource_id == user_id
    assert delivery.event.display == "bjensen"
    assert delivery.event.request_id == "req-delete"
    assert delivery.users == 0


def test_a_put_announces_the_attributes_it_changed(observed: Observed) -> None:
    user_id = observed.user("bjensen", displayName="Babs", title="Guide")
    observed.recorder.take()
    body = {"schemas": [USER_SCHEMA], "userName": "bjensen", "displayName": "Barbara"}

    assert observed.send("PUT", f"/Users/{user_id}", body).status_code == 200

    (event,) = observed.recorder.take()
    assert (event.kind, event.changes) == ("user.updated", {"attributes": ["displayName", "title"]})


def test_group_and_membership_events(observed: Observed) -> None:
    babs, mandy, jim = observed.user("bjensen"), observed.user("mpepperidge"), observed.user("jim")
    observed.recorder.take()

    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Tour Guides",
        "members": [{"value": babs}, {"value": mandy}],
    }
    response = observed.send("POST", "/Groups", body, request_id="req-group")
    assert response.status_code == 201
    group_id = response.json()["id"]
    created, *added = observed.recorder.take()
    assert (created.kind, created.resource_type, created.resource_id) == (
        "group.created",
        "Group",
        group_id,
    )
    assert created.display == "Tour Guides"
    assert [e.kind for e in added] == ["member.added", "member.added"]
    assert sorted(e.changes["member"] for e in added) == sorted([babs, mandy])
    assert all(e.changes == member(group_id, e.changes["member"]) for e in added)
    assert {e.request_id for e in [created, *added]} == {"req-group"}

    path = f"/Groups/{group_id}"
    rename = {"op": "replace", "path": "displayName", "value": "Guides"}
    assert observed.patch(path, rename).status_code in (200, 204)
    (renamed,) = observed.recorder.take()
    assert renamed.kind == "group.renamed"
    assert renamed.changes == {"displayName": ["Tour Guides", "Guides"]}

    # One event per member actually added: babs is already in.
    add = {"op": "add", "path": "members", "value": [{"value": babs}, {"value": jim}]}
    assert observed.patch(path, add).status_code in (200, 204)
    (added_jim,) = observed.recorder.take()
    assert (added_jim.kind, added_jim.changes) == ("member.added", member(group_id, jim))

    again = {"op": "add", "path": "members", "value": [{"value": jim}]}
    assert observed.patch(path, again).status_code in (200, 204)
    assert observed.recorder.take() == []

    remove = {"op": "remove", "path": f'members[value eq "{mandy}"]'}
    assert observed.patch(path, remove).status_code in (200, 204)
    (removed,) = observed.recorder.take()
    assert (removed.kind, removed.changes) == ("member.removed", member(group_id, mandy))

    assert observed.send("DELETE", path, request_id="req-gone").status_code == 204
    (deleted,) = observed.recorder.take()
    assert (deleted.kind, deleted.resource_id, deleted.request_id) == (
        "group.deleted",
        group_id,
        "req-gone",
    )


def test_a_put_replacing_members_announces_the_difference(observed: Observed) -> None:
    babs, mandy, jim = observed.user("bjensen"), observed.user("mpepperidge"), observed.user("jim")
    group_id = observed.group("Tour Guides", babs, mandy)
    observed.recorder.take()

    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Tour Guides",
        "members": [{"value": babs}, {"value": jim}],
    }
    assert observed.send("PUT", f"/Groups/{group_id}", body).status_code == 200

    events = observed.recorder.take()
    assert [(e.kind, e.changes["member"]) for e in events] == [
        ("member.added", jim),
        ("member.removed", mandy),
    ]


def test_role_changed_events(observed: Observed) -> None:
    observed.configure(roles={"Admins": "admin"}, default_role="viewer")
    user_id = observed.user("bjensen")
    (created,) = observed.recorder.take()
    assert created.changes == {"role": "viewer"}
    group_id = observed.group("Developers")
    observed.recorder.take()

    rename = {"op": "replace", "path": "displayName", "value": "Admins"}
    add = {"op": "add", "path": "members", "value": [{"value": user_id}]}
    assert observed.patch(f"/Groups/{group_id}", add, rename).status_code in (200, 204)

    renamed, added, role = observed.recorder.take()
    assert (renamed.kind, added.kind) == ("group.renamed", "member.added")
    assert role.kind == "role.changed"
    assert (role.resource_type, role.resource_id) == ("User", user_id)
    assert role.changes == {"role": ["viewer", "admin"]}

    assert observed.send("DELETE", f"/Groups/{group_id}").status_code == 204
    deleted, role = observed.recorder.take()
    assert deleted.kind == "group.deleted"
    assert (role.kind, role.changes) == ("role.changed", {"role": ["admin", "viewer"]})


def test_deprovision_delete_announces_the_deactivation_and_the_delete(
    observed: Observed,
) -> None:
    observed.configure(deprovision="delete", delete_mode="tombstone")
    user_id = observed.user("bjensen")
    observed.recorder.take()

    assert observed.patch(f"/Users/{user_id}", active(False)).status_code == 200

    deactivated, deleted = observed.recorder.take()
    assert deactivated.kind == "user.deactivated"
    assert (deleted.kind, deleted.changes) == ("user.deleted", {"tombstone": True})


def test_a_reprovisioned_user_is_announced_as_reactivated(observed: Observed) -> None:
    user_id = observed.user("bjensen", externalId="00u1", displayName="Babs")
    assert observed.patch(f"/Users/{user_id}", active(False)).status_code == 200
    observed.recorder.take()
    body = {"schemas": [USER_SCHEMA], "userName": "bjensen", "externalId": "00u1"}
    body["displayName"] = "Barbara"

    response = observed.send("POST", "/Users", body, request_id="req-again")

    assert response.status_code == 201
    reactivated, updated = observed.recorder.take()
    assert (reactivated.kind, reactivated.resource_id) == ("user.reactivated", user_id)
    assert reactivated.changes["active"] == [False, True]
    assert reactivated.changes["restored_from"] == "inactive"
    assert reactivated.request_id == "req-again"
    assert (updated.kind, updated.changes) == ("user.updated", {"attributes": ["displayName"]})


@pytest.mark.parametrize("delete_mode", ["tombstone", None])
def test_a_user_reprovisioned_inactive_is_not_announced_as_reactivated(
    observed: Observed, delete_mode: str | None
) -> None:
    """A POST with ``active: false`` (Ping's "provision disabled users")."""
    user_id = observed.user("bjensen", externalId="00u1")
    if delete_mode:
        observed.configure(delete_mode=delete_mode)
        assert observed.send("DELETE", f"/Users/{user_id}").status_code == 204
    else:
        assert observed.patch(f"/Users/{user_id}", active(False)).status_code == 200
    observed.recorder.take()
    body = {"schemas": [USER_SCHEMA], "userName": "bjensen", "externalId": "00u1"}

    response = observed.send("POST", "/Users", {**body, "active": False, "title": "Guide"})

    assert response.status_code == 201
    assert response.json()["id"] == user_id
    assert response.json()["active"] is False
    (updated,) = observed.recorder.take()
    assert updated.kind == "user.updated"
    assert updated.changes["attributes"] == ["title"]
    if delete_mode:  # back from a tombstone: the application must learn it exists again
        assert updated.changes["restored_from"] == "deleted"


def test_group_delete_announces_the_members_it_deactivates(observed: Observed) -> None:
    observed.configure(group_delete_deactivates_sole_members=True)
    user_id = observed.user("bjensen")
    group_id = observed.group("Contractors", user_id)
    observed.recorder.take()

    assert observed.send("DELETE", f"/Groups/{group_id}").status_code == 204

    deleted, deactivated = observed.recorder.take()
    assert deleted.kind == "group.deleted"
    assert (deactivated.kind, deactivated.resource_id) == ("user.deactivated", user_id)
    assert deactivated.changes["active"] == [True, False]


# --- Bulk -----------------------------------------------------------------------------


def test_bulk_announces_each_operation_after_it_commits(observed: Observed) -> None:
    operations = [
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "babs",
            "data": {"schemas": [USER_SCHEMA], "userName": "bjensen"},
        },
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "guides",
            "data": {
                "schemas": [GROUP_SCHEMA],
                "displayName": "Tour Guides",
                "members": [{"value": "bulkId:babs"}],
            },
        },
        {  # fails: a duplicate userName
            "method": "POST",
            "path": "/Users",
            "bulkId": "dup",
            "data": {"schemas": [USER_SCHEMA], "userName": "bjensen"},
        },
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "mandy",
            "data": {"schemas": [USER_SCHEMA], "userName": "mpepperidge"},
        },
    ]
    body = {"schemas": [BULK_REQUEST], "Operations": operations}

    response = observed.send("POST", "/Bulk", body, request_id="req-bulk")

    assert response.status_code == 200
    results = response.json()["Operations"]
    assert [r["status"] for r in results] == ["201", "201", "409", "201"]
    deliveries = observed.recorder.deliveries
    # (kind, users, groups): each operation's events come once it has committed, and
    # before the next operation runs.
    assert [(d.event.kind, d.users, d.groups) for d in deliveries] == [
        ("user.created", 1, 0),
        ("group.created", 1, 1),
        ("member.added", 1, 1),
        ("user.created", 2, 1),
    ]
    ids = [r["location"].rsplit("/", 1)[1] for r in results if r["status"] == "201"]
    assert [d.event.resource_id for d in deliveries] == [ids[0], ids[1], ids[1], ids[2]]
    assert {d.event.request_id for d in deliveries} == {"req-bulk"}
    assert {d.event.key_id for d in deliveries} == {observed.key_id}


# --- nothing for a rollback -----------------------------------------------------------


@pytest.mark.parametrize(
    "failing",
    [
        {"op": "replace", "path": "name.nosuch[", "value": "x"},  # not a path
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@example.com"},
        {"op": "remove", "path": "userName"},  # required
        {"op": "replace", "path": "active", "value": "False"},  # not a boolean
    ],
    ids=["invalid-path", "no-target", "required", "string-boolean"],
)
def test_a_patch_whose_second_operation_fails_announces_nothing(
    observed: Observed, failing: dict[str, Any]
) -> None:
    user_id = observed.user("bjensen", displayName="Babs")
    observed.recorder.take()
    first = {"op": "replace", "path": "displayName", "value": "Barbara"}

    response = observed.patch(f"/Users/{user_id}", first, failing)

    assert response.status_code == 400, response.text
    assert observed.recorder.take() == []
    assert observed.send("GET", f"/Users/{user_id}").json()["displayName"] == "Babs"


def test_a_duplicate_post_announces_nothing(observed: Observed) -> None:
    observed.user("bjensen")
    observed.recorder.take()

    body = {"schemas": [USER_SCHEMA], "userName": "BJENSEN"}
    assert observed.send("POST", "/Users", body).status_code == 409

    assert observed.recorder.take() == []


def test_a_group_patch_adding_an_unknown_member_announces_nothing(observed: Observed) -> None:
    """The rename is applied first, then the unknown member fails the whole PATCH."""
    user_id = observed.user("bjensen")
    group_id = observed.group("Tour Guides")
    observed.recorder.take()
    rename = {"op": "replace", "path": "displayName", "value": "Guides"}
    add = {
        "op": "add",
        "path": "members",
        "value": [{"value": user_id}, {"value": str(uuid.uuid4())}],
    }

    response = observed.patch(f"/Groups/{group_id}", rename, add)

    assert response.status_code == 400, response.text
    assert observed.recorder.take() == []
    group = observed.send("GET", f"/Groups/{group_id}").json()
    assert (group["displayName"], group["members"]) == ("Tour Guides", [])


def test_a_group_post_with_an_unknown_member_announces_nothing(observed: Observed) -> None:
    body = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Tour Guides",
        "members": [{"value": str(uuid.uuid4())}],
    }

    assert observed.send("POST", "/Groups", body).status_code == 400

    assert observed.recorder.take() == []
    assert observed.send("GET", "/Groups").json()["totalResults"] == 0


def test_a_stale_if_match_announces_nothing(observed: Observed) -> None:
    user_id = observed.user("bjensen")
    observed.recorder.take()
    op = {"op": "replace", "path": "displayName", "value": "Babs"}
    body = {"schemas": [PATCH_OP], "Operations": [op]}

    response = observed.client.patch(
        f"/scim/v2/Users/{user_id}", json=body, headers={"If-Match": 'W/"999"'}
    )

    assert response.status_code == 412
    assert observed.recorder.take() == []


# --- a failing observer ---------------------------------------------------------------


class Broken:
    @hookimpl
    def scim_gateway_provisioning_event(self, event: ProvisioningEvent) -> None:
        raise RuntimeError(f"observer down while handling {event.kind}")


def test_an_observer_that_raises_does_not_fail_the_request(
    observed: Observed, caplog: pytest.LogCaptureFixture
) -> None:
    # Registered after the recorder and before another one: whatever order the
    # observers are called in, the others still get every event.
    observed.gateway.plugins.pm.register(Broken())
    later = Recorder(observed.gateway, observed.recorder.team_pk)
    observed.gateway.plugins.pm.register(later)

    with caplog.at_level(logging.ERROR, logger="scim_gateway.plugins"):
        body = {"schemas": [USER_SCHEMA], "userName": "bjensen"}
        response = observed.send("POST", "/Users", body)

    assert response.status_code == 201, response.text
    assert observed.send("GET", f"/Users/{response.json()['id']}").status_code == 200
    assert observed.recorder.kinds() == ["user.created"]
    assert later.kinds() == ["user.created"]
    failures = [r for r in caplog.records if r.name == "scim_gateway.plugins"]
    assert len(failures) == 1
    assert "user.created" in failures[0].getMessage()
    assert failures[0].exc_info is not None
