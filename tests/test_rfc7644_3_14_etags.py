"""RFC 7644 §3.14: versions as weak ETags, If-Match and If-None-Match."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import ERROR, GROUP_SCHEMA, USER_SCHEMA, new_group, new_user, patch

WEAK_ETAG = re.compile(r'^W/"[^"]+"$')


def _create(client: TestClient, endpoint: str) -> dict[str, Any]:
    if endpoint == "Users":
        return new_user(client, "bjensen", nickName="Babs")
    return new_group(client, "Tour Guides")


def _replacement(endpoint: str) -> dict[str, Any]:
    if endpoint == "Users":
        return {"schemas": [USER_SCHEMA], "userName": "bjensen", "nickName": "Barbara"}
    return {"schemas": [GROUP_SCHEMA], "displayName": "Guides"}


def _patch_op(endpoint: str) -> dict[str, Any]:
    path = "nickName" if endpoint == "Users" else "displayName"
    return {"op": "replace", "path": path, "value": "Patched"}


def _stale(client: TestClient, endpoint: str) -> tuple[str, str, str]:
    """A resource whose first version is stale: (path, stale version, current version)."""
    created = _create(client, endpoint)
    path = f"/scim/v2/{endpoint}/{created['id']}"
    current = client.put(path, json=_replacement(endpoint)).headers["etag"]
    assert current != created["meta"]["version"]
    return path, created["meta"]["version"], current


ENDPOINTS = pytest.mark.parametrize("endpoint", ["Users", "Groups"])


@ENDPOINTS
def test_version_is_a_weak_etag_that_changes_on_every_write(
    client: TestClient, endpoint: str
) -> None:
    created = _create(client, endpoint)
    path = f"/scim/v2/{endpoint}/{created['id']}"
    versions = [created["meta"]["version"]]
    versions.append(client.put(path, json=_replacement(endpoint)).headers["etag"])
    patch(client, path, _patch_op(endpoint))
    versions.append(client.get(path).headers["etag"])

    assert all(WEAK_ETAG.match(v) for v in versions), versions
    assert len(set(versions)) == 3
    assert client.get(path).json()["meta"]["version"] == versions[-1]


@ENDPOINTS
def test_reads_do_not_change_the_version(client: TestClient, endpoint: str) -> None:
    created = _create(client, endpoint)
    path = f"/scim/v2/{endpoint}/{created['id']}"
    client.get(path)
    client.get(f"/scim/v2/{endpoint}")

    assert client.get(path).headers["etag"] == created["meta"]["version"]


@ENDPOINTS
def test_put_with_stale_if_match_is_412_and_changes_nothing(
    client: TestClient, endpoint: str
) -> None:
    path, stale, _current = _stale(client, endpoint)
    before = client.get(path).json()
    body = {**_replacement(endpoint), "nickName": "Lost", "displayName": "Lost"}

    response = client.put(path, json=body, headers={"If-Match": stale})

    assert response.status_code == 412
    assert response.json()["schemas"] == [ERROR]
    assert response.json()["status"] == "412"
    assert client.get(path).json() == before


@ENDPOINTS
def test_patch_with_stale_if_match_is_412_and_changes_nothing(
    client: TestClient, endpoint: str
) -> None:
    path, stale, _current = _stale(client, endpoint)
    before = client.get(path).json()

    response = patch(client, path, _patch_op(endpoint), headers={"If-Match": stale})

    assert response.status_code == 412
    assert response.json()["status"] == "412"
    assert client.get(path).json() == before


@ENDPOINTS
def test_delete_with_stale_if_match_is_412_and_keeps_the_resource(
    client: TestClient, endpoint: str
) -> None:
    path, stale, _current = _stale(client, endpoint)

    response = client.delete(path, headers={"If-Match": stale})

    assert response.status_code == 412
    assert response.json()["status"] == "412"
    assert client.get(path).status_code == 200


@ENDPOINTS
def test_writes_with_the_current_version_succeed(client: TestClient, endpoint: str) -> None:
    path, _stale_version, current = _stale(client, endpoint)

    replaced = client.put(path, json=_replacement(endpoint), headers={"If-Match": current})
    assert replaced.status_code == 200, replaced.text
    current = replaced.headers["etag"]

    patched = patch(client, path, _patch_op(endpoint), headers={"If-Match": current})
    assert patched.status_code in (200, 204), patched.text
    current = client.get(path).headers["etag"]

    assert client.delete(path, headers={"If-Match": current}).status_code == 204
    assert client.get(path).status_code == 404


@ENDPOINTS
def test_if_match_accepts_a_list_and_a_wildcard(client: TestClient, endpoint: str) -> None:
    path, stale, current = _stale(client, endpoint)

    listed = client.put(
        path, json=_replacement(endpoint), headers={"If-Match": f"{stale}, {current}"}
    )
    assert listed.status_code == 200
    anything = client.put(path, json=_replacement(endpoint), headers={"If-Match": "*"})
    assert anything.status_code == 200


@ENDPOINTS
def test_if_none_match_with_the_current_version_is_304(client: TestClient, endpoint: str) -> None:
    path, stale, current = _stale(client, endpoint)

    not_modified = client.get(path, headers={"If-None-Match": current})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == current

    changed = client.get(path, headers={"If-None-Match": stale})
    assert changed.status_code == 200
    assert changed.headers["etag"] == current
    assert changed.json()["meta"]["version"] == current


def test_group_version_changes_when_its_members_change(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides")
    path = f"/scim/v2/Groups/{group['id']}"
    versions = [group["meta"]["version"]]

    add = {"op": "add", "path": "members", "value": [{"value": babs["id"]}]}
    assert patch(client, path, add).status_code in (200, 204)
    versions.append(client.get(path).headers["etag"])
    remove = {"op": "remove", "path": f'members[value eq "{babs["id"]}"]'}
    assert patch(client, path, remove).status_code in (200, 204)
    versions.append(client.get(path).headers["etag"])

    assert len(set(versions)) == 3


def test_group_version_changes_when_a_member_is_deleted(client: TestClient) -> None:
    """A cached group must not be reported unchanged after it lost a member."""
    babs = new_user(client, "bjensen")
    inner = new_group(client, "US Employees")
    group = new_group(client, "Tour Guides", members=[babs["id"], inner["id"]])
    path = f"/scim/v2/Groups/{group['id']}"

    client.delete(f"/scim/v2/Users/{babs['id']}")
    after_user = client.get(path, headers={"If-None-Match": group["meta"]["version"]})
    assert after_user.status_code == 200
    assert [m["value"] for m in after_user.json()["members"]] == [inner["id"]]

    client.delete(f"/scim/v2/Groups/{inner['id']}")
    after_group = client.get(path, headers={"If-None-Match": after_user.headers["etag"]})
    assert after_group.status_code == 200
    assert after_group.json()["members"] == []


@ENDPOINTS
def test_etag_and_if_none_match_hold_when_meta_is_not_requested(
    client: TestClient, endpoint: str
) -> None:
    """ETags "MUST be specified as an HTTP header" (§3.14), whatever ``attributes`` asks."""
    path, _stale_version, current = _stale(client, endpoint)
    wanted = "userName" if endpoint == "Users" else "displayName"

    response = client.get(path, params={"attributes": wanted})
    assert response.status_code == 200
    assert "meta" not in response.json()
    assert response.headers["etag"] == current

    cached = client.get(path, params={"attributes": wanted}, headers={"If-None-Match": current})
    assert cached.status_code == 304
    assert cached.headers["etag"] == current


def test_group_patch_answers_with_the_new_etag(client: TestClient) -> None:
    babs = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides")
    path = f"/scim/v2/Groups/{group['id']}"

    add = {"op": "add", "path": "members", "value": [{"value": babs["id"]}]}
    first = patch(client, path, add, headers={"If-Match": group["meta"]["version"]})
    assert first.status_code in (200, 204), first.text
    assert WEAK_ETAG.match(first.headers["etag"])
    assert first.headers["etag"] != group["meta"]["version"]
    assert first.headers["etag"] == client.get(path).headers["etag"]

    # The ETag of one PATCH is good for the If-Match of the next.
    rename = {"op": "replace", "path": "displayName", "value": "Guides"}
    second = patch(client, path, rename, headers={"If-Match": first.headers["etag"]})
    assert second.status_code in (200, 204), second.text
    assert second.headers["etag"] == client.get(path).headers["etag"]

    projected = patch(
        client, path, rename, params={"attributes": "displayName"}, headers={"If-Match": "*"}
    )
    assert projected.status_code == 200, projected.text
    assert projected.headers["etag"] == client.get(path).headers["etag"]
