"""RFC 7643 §3.1: the common attributes ``id`` and ``meta`` on every resource."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.store.common import iso
from tests.conftest import PATCH_OP, new_group, new_user, patch

WEAK_ETAG = re.compile(r'^W/"[^"]+"$')


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"{text} has no time zone"
    return value


def _check_meta(resource: dict[str, Any], resource_type: str, endpoint: str) -> None:
    meta = resource["meta"]
    assert set(meta) >= {"resourceType", "created", "lastModified", "location", "version"}
    assert meta["resourceType"] == resource_type
    assert meta["location"] == f"http://testserver/scim/v2/{endpoint}/{resource['id']}"
    assert WEAK_ETAG.match(meta["version"]), meta["version"]
    created, modified = _instant(meta["created"]), _instant(meta["lastModified"])
    now = datetime.now(UTC)
    assert now - timedelta(minutes=5) < created <= modified <= now + timedelta(seconds=5)


def test_user_meta(client: TestClient) -> None:
    user = new_user(client, "bjensen")

    _check_meta(user, "User", "Users")
    assert user["meta"]["created"] == user["meta"]["lastModified"]
    _check_meta(client.get(f"/scim/v2/Users/{user['id']}").json(), "User", "Users")
    listed = client.get("/scim/v2/Users").json()["Resources"]
    _check_meta(listed[0], "User", "Users")


def test_group_meta(client: TestClient) -> None:
    group = new_group(client, "Tour Guides")

    _check_meta(group, "Group", "Groups")
    assert group["meta"]["created"] == group["meta"]["lastModified"]
    _check_meta(client.get(f"/scim/v2/Groups/{group['id']}").json(), "Group", "Groups")
    listed = client.get("/scim/v2/Groups").json()["Resources"]
    _check_meta(listed[0], "Group", "Groups")


def test_user_update_moves_last_modified_and_version_but_not_created(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    time.sleep(0.01)
    replaced = client.put(
        f"/scim/v2/Users/{user['id']}", json={**user, "displayName": "Babs"}
    ).json()
    time.sleep(0.01)
    patched = patch(
        client,
        f"/scim/v2/Users/{user['id']}",
        {"op": "replace", "path": "nickName", "value": "Babs"},
    ).json()

    metas = [user["meta"], replaced["meta"], patched["meta"]]
    assert len({m["created"] for m in metas}) == 1
    assert len({m["version"] for m in metas}) == 3
    modified = [_instant(m["lastModified"]) for m in metas]
    assert modified[0] < modified[1] < modified[2]
    _check_meta(patched, "User", "Users")


def test_group_update_moves_last_modified_and_version_but_not_created(
    client: TestClient,
) -> None:
    user = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides")
    time.sleep(0.01)
    client.put(
        f"/scim/v2/Groups/{group['id']}",
        json={"schemas": group["schemas"], "displayName": "Guides"},
    )
    after_put = client.get(f"/scim/v2/Groups/{group['id']}").json()
    time.sleep(0.01)
    response = client.patch(
        f"/scim/v2/Groups/{group['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}],
        },
    )
    assert response.status_code in (200, 204)
    after_patch = client.get(f"/scim/v2/Groups/{group['id']}").json()

    metas = [group["meta"], after_put["meta"], after_patch["meta"]]
    assert len({m["created"] for m in metas}) == 1
    assert len({m["version"] for m in metas}) == 3
    modified = [_instant(m["lastModified"]) for m in metas]
    assert modified[0] < modified[1] < modified[2]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (datetime(2026, 11, 28, 22, 36, 38, 123000, tzinfo=UTC), "2026-11-28T22:36:38.123Z"),
        # No fraction at all: isoformat() leaves it out, meta still shows milliseconds.
        (datetime(2026, 11, 28, 22, 36, 38, tzinfo=UTC), "2026-11-28T22:36:38.000Z"),
        # Cut, not rounded, to the millisecond: never a later instant than stored.
        (datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "2026-12-31T23:59:59.999Z"),
        (datetime(2026, 11, 28, 22, 36, 38, 1000), "2026-11-28T22:36:38.001Z"),  # naive: UTC
        (
            datetime(2026, 11, 29, 0, 36, 38, 5000, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-28T22:36:38.005Z",
        ),
        (
            datetime(2026, 11, 28, 22, 36, 38, 7000, tzinfo=timezone(timedelta(0))),
            "2026-11-28T22:36:38.007Z",
        ),
        # As SQLite stores them (a list page reads them so): UTC text.
        ("2026-11-28 22:36:38.123456", "2026-11-28T22:36:38.123Z"),
        ("2026-11-28 22:36:38", "2026-11-28T22:36:38.000Z"),
        ("2026-11-28 22:36:38.5", "2026-11-28T22:36:38.500Z"),
    ],
)
def test_meta_timestamps_are_utc_to_the_millisecond(value: datetime | str, shown: str) -> None:
    assert iso(value) == shown


def test_a_list_page_and_a_lookup_show_each_users_meta_as_its_get_does(client: TestClient) -> None:
    ids = [new_user(client, f"page-meta-{i}@example.com")["id"] for i in range(3)]
    patch(client, f"/Users/{ids[1]}", {"op": "replace", "path": "title", "value": "Engineer"})
    page = client.get("/scim/v2/Users?startIndex=1&count=100").json()["Resources"]
    listed = {r["id"]: r["meta"] for r in page if r["id"] in ids}
    assert set(listed) == set(ids)
    for i, user_id in enumerate(ids):
        shown = client.get(f"/scim/v2/Users/{user_id}").json()["meta"]
        assert listed[user_id] == shown
        # The lookup every IdP makes before a create reads the user the same way.
        found = client.get(
            "/scim/v2/Users", params={"filter": f'userName eq "page-meta-{i}@example.com"'}
        ).json()["Resources"]
        assert [r["meta"] for r in found] == [shown]
