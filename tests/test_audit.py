"""The audit log: every provisioning change of a team, recorded with the change.

A record says when, which key (id and name) through which adapter, the request id,
the change in words, the resource and what changed (sensitive values redacted). It
is written in the transaction of the change: a write that fails leaves no record,
and a record that cannot be written undoes the change. Operators read it with
``scim-gateway audit`` and ``GET /admin/v1/teams/{slug}/audit``. Every test runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from gateway import audit, logging_setup
from gateway.app import Gateway, create_app
from gateway.audit import list_audit, parse_since, purge_audit
from gateway.cli import main
from gateway.config import AdminSettings, AuditSettings, Settings
from gateway.keys import parse_key
from gateway.store.tables import AuditRecord, Team
from plugins import ProvisioningEvent
from tests.conftest import GROUP_SCHEMA, PATCH_OP, SCIM, USER_SCHEMA
from tests.support import provision

AUDIT = AuditRecord.__table__  # type: ignore[attr-defined]
TEAMS = Team.__table__  # type: ignore[attr-defined]
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


@dataclass
class Provisioned:
    client: TestClient
    gateway: Gateway
    slug: str
    key_id: str

    def send(self, method: str, path: str, body: Any = None, request_id: str = "") -> Any:
        headers = {"X-Request-Id": request_id} if request_id else {}
        return self.client.request(method, "/scim/v2" + path, json=body, headers=headers)

    def user(self, user_name: str, request_id: str = "", **attrs: Any) -> str:
        body = {"schemas": [USER_SCHEMA], "userName": user_name, **attrs}
        response = self.send("POST", "/Users", body, request_id)
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

    def records(self, **filters: Any) -> list[dict[str, Any]]:
        """The team's records, oldest first."""
        page = list_audit(self.gateway.db, self.slug, count=1000, **filters)
        return [r.to_dict() for r in reversed(page.records)]

    def actions(self, **filters: Any) -> list[str]:
        return [r["action"] for r in self.records(**filters)]

    def configure(self, **options: Any) -> None:
        with self.gateway.db.engine.begin() as conn:
            conn.execute(update(TEAMS).where(TEAMS.c.slug == self.slug).values(options=options))


@contextlib.contextmanager
def running(settings: Settings, *, raise_errors: bool = True) -> Iterator[Provisioned]:
    app = create_app(settings)
    client = TestClient(
        app,
        base_url="http://testserver",
        headers={"Content-Type": SCIM},
        raise_server_exceptions=raise_errors,
    )
    with client as c:
        gateway: Gateway = app.state.gateway
        slug = "audit-" + uuid.uuid4().hex[:12]
        token = provision(gateway, slug, adapter="okta", key_name="okta-production")
        c.headers["Authorization"] = f"Bearer {token}"
        key_id = parse_key(token)
        assert key_id is not None
        yield Provisioned(c, gateway, slug, key_id)


@pytest.fixture
def team(settings: Settings) -> Iterator[Provisioned]:
    with running(settings) as team:
        yield team


def active(value: bool) -> dict[str, Any]:
    return {"op": "replace", "path": "active", "value": value}


# --- what is recorded -------------------------------------------------------------------------


def test_each_change_is_recorded_in_words_with_its_key_adapter_and_request(
    team: Provisioned,
) -> None:
    before = datetime.now(UTC)
    alice = team.user("alice@example.com", request_id="req-alice")
    bob = team.user("bob@example.com")
    admins = team.group("Admins", bob)
    assert team.patch(f"/Users/{alice}", active(False), request_id="req-off").status_code == 200
    rename = {"op": "replace", "path": "displayName", "value": "Administrators"}
    assert team.patch(f"/Groups/{admins}", rename).status_code in (200, 204)
    remove = {"op": "remove", "path": f'members[value eq "{bob}"]'}
    assert team.patch(f"/Groups/{admins}", remove).status_code in (200, 204)
    title = {"op": "add", "path": "title", "value": "Tour Guide"}
    assert team.patch(f"/Users/{bob}", title).status_code == 200
    assert team.send("DELETE", f"/Users/{alice}").status_code == 204

    assert team.actions() == [
        "created user alice@example.com",
        "created user bob@example.com",
        "created group Admins",
        "added user bob@example.com to group Admins",
        "deactivated user alice@example.com",
        "renamed group Admins to Administrators",
        "removed user bob@example.com from group Administrators",
        "updated user bob@example.com (title)",
        "deleted user alice@example.com",
    ]
    records = team.records()
    first, deactivated = records[0], records[4]
    assert first["key"] == {"id": team.key_id, "name": "okta-production"}
    assert first["adapter"] == "okta"
    assert first["request_id"] == "req-alice"
    assert first["resource"] == {"type": "User", "id": alice, "display": "alice@example.com"}
    assert first["team"] == team.slug
    occurred = datetime.fromisoformat(first["occurred_at"])
    assert before - timedelta(seconds=1) <= occurred <= datetime.now(UTC)
    assert deactivated["kind"] == "user.deactivated"
    assert deactivated["changes"] == {"active": [True, False]}
    assert deactivated["request_id"] == "req-off"
    added = records[3]
    assert added["resource"] == {"type": "Group", "id": admins, "display": "Admins"}
    assert added["user_id"] == bob
    assert added["changes"] == {"group": admins, "member": bob, "member_type": "User"}


def test_membership_records_name_the_group_as_the_write_leaves_it(team: Provisioned) -> None:
    """A PATCH that renames a group and changes its members names the group by its new
    name in each membership record, as a PUT does; a nested group is named too (added,
    removed by a PUT or by ``members[value eq ...]``); a member already there is not
    added again, and leaves no record."""
    alice = team.user("alice@example.com")
    bob = team.user("bob@example.com")
    carol = team.user("carol@example.com")
    engineering = team.group("Engineering")
    admins = team.group("Admins", alice)
    rename = {"op": "replace", "path": "displayName", "value": "Administrators"}
    add = {"op": "add", "path": "members", "value": [{"value": bob}, {"value": engineering}]}
    remove = {"op": "remove", "path": f'members[value eq "{alice}"]'}
    assert team.patch(f"/Groups/{admins}", rename, add, remove).status_code in (200, 204)
    again = {"op": "add", "path": "members", "value": [{"value": bob}]}
    assert team.patch(f"/Groups/{admins}", again).status_code in (200, 204)
    put = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Admins",
        "members": [{"value": bob}, {"value": carol}],
    }
    assert team.send("PUT", f"/Groups/{admins}", put).status_code == 200
    nest = {"op": "add", "path": "members", "value": [{"value": engineering}]}
    unnest = {"op": "remove", "path": f'members[value eq "{engineering}"]'}
    assert team.patch(f"/Groups/{admins}", nest).status_code in (200, 204)
    assert team.patch(f"/Groups/{admins}", unnest).status_code in (200, 204)

    assert team.actions()[6:] == [
        "renamed group Admins to Administrators",
        "added user bob@example.com to group Administrators",
        "added group Engineering to group Administrators",
        "removed user alice@example.com from group Administrators",
        "renamed group Administrators to Admins",
        "added user carol@example.com to group Admins",
        "removed group Engineering from group Admins",
        "added group Engineering to group Admins",
        "removed group Engineering from group Admins",
    ]
    records = team.records()
    assert records[7]["resource"] == {"type": "Group", "id": admins, "display": "Administrators"}
    assert records[8]["changes"] == {"group": admins, "member": engineering, "member_type": "Group"}
    assert records[-1]["resource"] == {"type": "Group", "id": admins, "display": "Admins"}


def test_role_changes_and_bulk_operations_are_recorded(team: Provisioned) -> None:
    team.configure(roles={"Admins": "admin"}, default_role="viewer")
    bob = team.user("bob@example.com")
    operations = [
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "admins",
            "data": {
                "schemas": [GROUP_SCHEMA],
                "displayName": "Admins",
                "members": [{"value": bob}],
            },
        },
        {  # fails: a duplicate userName, and leaves no record
            "method": "POST",
            "path": "/Users",
            "bulkId": "dup",
            "data": {"schemas": [USER_SCHEMA], "userName": "BOB@example.com"},
        },
    ]
    body = {"schemas": [BULK_REQUEST], "Operations": operations}
    response = team.send("POST", "/Bulk", body, request_id="req-bulk")
    assert [r["status"] for r in response.json()["Operations"]] == ["201", "409"]

    assert team.actions() == [
        "created user bob@example.com",
        "created group Admins",
        "added user bob@example.com to group Admins",
        "changed the role of user bob@example.com from viewer to admin",
    ]
    assert {r["request_id"] for r in team.records()[1:]} == {"req-bulk"}


def test_sensitive_values_and_keys_never_reach_the_log(team: Provisioned) -> None:
    """Values of password-, secret- and token-like attributes and of certificates are
    redacted; the names of changed attributes stay; a key pasted anywhere is masked."""
    pasted = "scimgw_abcdefghijkl_" + "A" * 43
    group = team.group("Admins")
    rename = {"op": "replace", "path": "displayName", "value": f"oops {pasted}"}
    assert team.patch(f"/Groups/{group}", rename).status_code in (200, 204)
    user_id = team.user("carol@example.com")
    # An event as a future change (or a plugin's adapter) could describe it.
    event = ProvisioningEvent(
        kind="user.updated",
        team=team.slug,
        resource_type="User",
        resource_id=user_id,
        display="carol@example.com",
        changes={
            "attributes": ["password", "x509Certificates"],
            "password": ["old-password", "new-password"],
            "x509Certificates": [{"value": "MIIC-certificate"}],
            "urn:example:params:clientSecret": "s3cr3t",
            "extra": {"apiToken": "tok-123", "note": pasted},
        },
        occurred_at=datetime.now(UTC),
        key_id=team.key_id,
        key_name="okta-production",
        adapter="okta",
        request_id="req-secret",
    )
    team.gateway.db.call(lambda conn: team.gateway.record(conn, [event]), write=True)

    renamed, _created, updated = team.records()[1:]
    assert pasted not in json.dumps(renamed)
    assert "scimgw_abcdefghijkl_[redacted]" in renamed["action"]
    assert updated["changes"] == {
        "attributes": ["password", "x509Certificates"],
        "password": "[redacted]",
        "x509Certificates": "[redacted]",
        "urn:example:params:clientSecret": "[redacted]",
        "extra": {"apiToken": "[redacted]", "note": "scimgw_abcdefghijkl_[redacted]"},
    }
    stored = json.dumps(team.records())
    for secret in ("old-password", "new-password", "MIIC-certificate", "s3cr3t", "tok-123"):
        assert secret not in stored


def test_the_records_of_one_write_carry_its_one_time(team: Provisioned) -> None:
    """A write's changes commit together, and their records say so: a group created
    with three members records four changes at one time, within the request; the next
    write's records come at a time of their own, no earlier."""
    members = [team.user(f"member{i}@example.com") for i in range(3)]
    before = datetime.now(UTC)
    group = team.group("Engineering", *members)
    after = datetime.now(UTC)
    assert team.patch(f"/Groups/{group}", member_remove(members[0])).status_code in (
        200,
        204,
    )
    records = team.records()[3:]
    assert [r["action"].split(" ")[0] for r in records] == ["created", *["added"] * 3, "removed"]
    times = [datetime.fromisoformat(r["occurred_at"]) for r in records]
    assert len(set(times[:4])) == 1
    assert before <= times[0] <= after
    assert times[4] >= after


def test_an_attribute_marked_sensitive_later_is_redacted_from_then_on(
    team: Provisioned,
) -> None:
    """``logging_setup.mark_sensitive`` (for a plugin whose attributes hold secrets)
    takes effect in records written after it, though the name was seen before."""
    user_id = team.user("dave@example.com")

    def record(value: str) -> None:
        event = ProvisioningEvent(
            kind="user.updated",
            team=team.slug,
            resource_type="User",
            resource_id=user_id,
            display="dave@example.com",
            changes={"attributes": ["recoveryPhrase"], "recoveryPhrase": [None, value]},
            occurred_at=datetime.now(UTC),
        )
        team.gateway.db.call(lambda conn: team.gateway.record(conn, [event]), write=True)

    record("plain-before")
    logging_setup.mark_sensitive("recoveryPhrase")
    try:
        record("hidden-after")
    finally:
        logging_setup._SENSITIVE_NAMES.discard("recoveryphrase")
        logging_setup.mark_sensitive()  # clears what the name left in the caches
    before, after = team.records()[1:]
    assert before["changes"]["recoveryPhrase"] == [None, "plain-before"]
    assert after["changes"] == {"attributes": ["recoveryPhrase"], "recoveryPhrase": "[redacted]"}


def member_remove(member: str) -> dict[str, Any]:
    return {"op": "remove", "path": f'members[value eq "{member}"]'}


# --- no change without its record, no record without its change ---------------------------


@pytest.mark.parametrize(
    "failing",
    [
        {"op": "remove", "path": "userName"},  # required
        {"op": "replace", "path": "active", "value": "False"},  # not a boolean
    ],
    ids=["required", "string-boolean"],
)
def test_a_patch_whose_second_operation_fails_leaves_no_record(
    team: Provisioned, failing: dict[str, Any]
) -> None:
    alice = team.user("alice@example.com", displayName="Alice")
    first = {"op": "replace", "path": "displayName", "value": "Alicia"}

    assert team.patch(f"/Users/{alice}", first, failing).status_code == 400

    assert team.actions() == ["created user alice@example.com"]
    assert team.send("GET", f"/Users/{alice}").json()["displayName"] == "Alice"


def test_a_conflict_leaves_no_record(team: Provisioned) -> None:
    team.user("alice@example.com")
    body = {"schemas": [USER_SCHEMA], "userName": "ALICE@example.com"}

    assert team.send("POST", "/Users", body).status_code == 409

    assert team.actions() == ["created user alice@example.com"]


def test_a_record_that_cannot_be_written_undoes_the_change(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> list[dict[str, Any]]:
        raise RuntimeError("the audit log is unavailable")

    with running(settings, raise_errors=False) as team:
        alice = team.user("alice@example.com", displayName="Alice")
        monkeypatch.setattr(audit, "audit_rows", broken)

        created = team.send("POST", "/Users", {"schemas": [USER_SCHEMA], "userName": "bob"})
        renamed = team.patch(f"/Users/{alice}", {"op": "replace", "path": "title", "value": "X"})
        deleted = team.send("DELETE", f"/Users/{alice}")

        assert [r.status_code for r in (created, renamed, deleted)] == [500, 500, 500]
        monkeypatch.undo()
        users = team.send("GET", "/Users").json()["Resources"]
        assert [(u["userName"], u.get("title")) for u in users] == [("alice@example.com", None)]
        assert team.actions() == ["created user alice@example.com"]


# --- reading it back ---------------------------------------------------------------------------


def _history(team: Provisioned) -> tuple[str, str]:
    alice = team.user("alice@example.com")
    bob = team.user("bob@example.com")
    team.group("Admins", bob)
    assert team.patch(f"/Users/{alice}", active(False)).status_code == 200
    assert team.patch(f"/Users/{bob}", active(False)).status_code == 200
    return alice, bob


def test_the_audit_command_filters_by_user_and_time_and_pages(
    team: Provisioned,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SCIM_GATEWAY_DATABASE_URL", database_url)
    _alice, bob = _history(team)

    def run(*args: str) -> dict[str, Any]:
        assert main(["audit", team.slug, *args, "--json"]) == 0
        result: dict[str, Any] = json.loads(capsys.readouterr().out)
        return result

    everything = run()
    assert everything["totalResults"] == 6
    newest_first = [r["action"] for r in everything["records"]]
    assert newest_first == [
        "deactivated user bob@example.com",
        "deactivated user alice@example.com",
        "added user bob@example.com to group Admins",
        "created group Admins",
        "created user bob@example.com",
        "created user alice@example.com",
    ]
    bobs = run("--user", bob)
    assert [r["action"] for r in bobs["records"]] == [
        "deactivated user bob@example.com",
        "added user bob@example.com to group Admins",
        "created user bob@example.com",
    ]
    page = run("--count", "2", "--start-index", "2")
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (6, 2, 2)
    assert [r["action"] for r in page["records"]] == newest_first[1:3]
    assert run("--since", "1h")["totalResults"] == 6
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert run("--since", tomorrow)["totalResults"] == 0

    assert main(["audit", team.slug, "--user", bob, "--count", "1"]) == 0
    out, err = capsys.readouterr()
    (line,) = out.splitlines()
    assert "deactivated user bob@example.com" in line
    assert f"key=okta-production ({team.key_id})" in line
    assert "adapter=okta" in line
    assert "records 1-1 of 3" in err

    assert main(["audit", team.slug, "--since", "last tuesday"]) == 1
    assert "--since: 'last tuesday' is not a time" in capsys.readouterr().err
    assert main(["audit", "no-such-team"]) == 1
    assert "No team 'no-such-team'" in capsys.readouterr().err


def test_the_admin_api_serves_the_audit_log_filtered_and_paged(settings: Settings) -> None:
    op_token = "scimgw_admin_" + secrets.token_urlsafe(32)
    digest = hashlib.sha256(op_token.encode()).hexdigest()
    with running(settings.replace(admin=AdminSettings(token_sha256=digest))) as team:
        _alice, bob = _history(team)
        admin = {"Authorization": f"Bearer {op_token}"}
        url = f"/admin/v1/teams/{team.slug}/audit"

        def get(**params: Any) -> dict[str, Any]:
            response = team.client.get(url, params=params, headers=admin)
            assert response.status_code == 200, response.text
            assert response.headers["cache-control"] == "no-store"
            result: dict[str, Any] = response.json()
            return result

        everything = get()
        assert (everything["totalResults"], everything["itemsPerPage"]) == (6, 6)
        assert everything["records"][0]["action"] == "deactivated user bob@example.com"
        assert everything["records"][0]["key"] == {"id": team.key_id, "name": "okta-production"}
        bobs = get(user=bob, startIndex=2, count=1)
        assert (bobs["totalResults"], bobs["startIndex"], bobs["itemsPerPage"]) == (3, 2, 1)
        assert [r["action"] for r in bobs["records"]] == [
            "added user bob@example.com to group Admins"
        ]
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert get(since=future)["totalResults"] == 0
        assert get(since="10m")["totalResults"] == 6

        for params in ({"count": "many"}, {"startIndex": "0"}, {"since": "yesterday-ish"}):
            response = team.client.get(url, params=params, headers=admin)
            assert response.status_code == 400, params
            assert response.json()["error"]["message"]
        missing = team.client.get("/admin/v1/teams/no-such-team/audit", headers=admin)
        assert missing.status_code == 404
        assert team.client.get(url, headers={"Authorization": ""}).status_code == 401


# --- retention ----------------------------------------------------------------------------------


def test_records_older_than_the_retention_period_are_purged_at_startup(
    settings: Settings,
) -> None:
    settings = settings.replace(audit=AuditSettings(retention_days=30))
    with running(settings) as team:
        old = team.user("old@example.com")
        team.user("new@example.com")
        with team.gateway.db.engine.begin() as conn:
            conn.execute(
                update(AUDIT)
                .where(AUDIT.c.resource_id == old)
                .values(occurred_at=datetime.now(UTC) - timedelta(days=31))
            )
        assert team.actions() == ["created user old@example.com", "created user new@example.com"]

    with running(settings) as restarted:
        page = list_audit(restarted.gateway.db, team.slug)
        assert [r.action for r in page.records] == ["created user new@example.com"]
        # The next purge, a month later, takes the rest.
        later = datetime.now(UTC) + timedelta(days=31)
        purged = purge_audit(restarted.gateway.db, 30, now=later)
        assert purged >= 1
        assert list_audit(restarted.gateway.db, team.slug).total == 0


def test_since_takes_dates_times_and_durations() -> None:
    now = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now=now) == datetime(2024, 5, 3, 12, 0, tzinfo=UTC)
    assert parse_since("90m", now=now) == datetime(2024, 5, 10, 10, 30, tzinfo=UTC)
    assert parse_since("2w", now=now) == datetime(2024, 4, 26, 12, 0, tzinfo=UTC)
    assert parse_since("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_since("2024-05-01T12:00:00Z") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_since("2024-05-01T14:00:00+02:00") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_since("soon")


def test_records_of_one_team_are_invisible_to_another(settings: Settings) -> None:
    with running(settings) as first:
        first.user("alice@example.com")
        other = "audit-" + uuid.uuid4().hex[:12]
        provision(first.gateway, other)
        assert list_audit(first.gateway.db, other).total == 0
        with first.gateway.db.engine.connect() as conn:
            teams = set(
                conn.execute(
                    select(TEAMS.c.slug).join(AUDIT, AUDIT.c.team_pk == TEAMS.c.pk)
                ).scalars()
            )
        assert first.slug in teams and other not in teams
