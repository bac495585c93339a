"""RFC 7644 §3.4.1: retrieving a known resource with GET /Users/{id} and /Groups/{id}."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conftest import ERROR, new_group, new_user

SCIM = "application/scim+json"


def test_get_user(client: TestClient) -> None:
    created = new_user(client, "bjensen", emails=[{"value": "bjensen@example.com"}])
    response = client.get(f"/scim/v2/Users/{created['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(SCIM)
    assert response.headers["etag"] == created["meta"]["version"]
    assert response.json() == created


def test_get_group(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    created = new_group(client, "Tour Guides", members=[user["id"]])
    response = client.get(f"/scim/v2/Groups/{created['id']}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(SCIM)
    assert response.headers["etag"] == created["meta"]["version"]
    assert response.json() == created


@pytest.mark.parametrize("endpoint", ["Users", "Groups"])
def test_unknown_id_is_404_scim_error(client: TestClient, endpoint: str) -> None:
    response = client.get(f"/scim/v2/{endpoint}/2819c223-7f76-453a-919d-413861904646")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith(SCIM)
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "404"
    assert "2819c223-7f76-453a-919d-413861904646" in body["detail"]


def test_a_user_id_is_not_a_group_id(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    group = new_group(client, "Tour Guides")

    assert client.get(f"/scim/v2/Groups/{user['id']}").status_code == 404
    assert client.get(f"/scim/v2/Users/{group['id']}").status_code == 404
