"""RFC 7644 §3.1 and §3.8: request and response media types."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from tests.conftest import ERROR, GROUP_SCHEMA, PATCH_OP, USER_SCHEMA, new_user

SCIM = "application/scim+json"
USER = json.dumps({"schemas": [USER_SCHEMA], "userName": "bjensen"})


@pytest.mark.parametrize(
    "content_type",
    [
        "application/scim+json",
        "application/json",
        "application/scim+json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/SCIM+JSON",
    ],
)
def test_scim_and_plain_json_bodies_are_accepted(client: TestClient, content_type: str) -> None:
    response = client.post("/scim/v2/Users", content=USER, headers={"Content-Type": content_type})

    assert response.status_code == 201, response.text
    assert response.headers["content-type"].split(";")[0] == SCIM
    assert response.json()["userName"] == "bjensen"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/x-www-form-urlencoded", "text/json"],
)
def test_other_content_types_are_415(client: TestClient, content_type: str) -> None:
    response = client.post("/scim/v2/Users", content=USER, headers={"Content-Type": content_type})

    assert response.status_code == 415
    assert response.headers["content-type"].split(";")[0] == SCIM
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == "415"
    assert body["detail"]
    assert client.get("/scim/v2/Users").json()["totalResults"] == 0


def test_a_body_without_content_type_is_415(client: TestClient) -> None:
    response = client.post("/scim/v2/Users", content=USER, headers={"Content-Type": ""})

    assert response.status_code == 415
    assert response.json()["status"] == "415"


def test_415_applies_to_every_write(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    path = f"/scim/v2/Users/{user['id']}"
    headers = {"Content-Type": "text/plain"}
    put = json.dumps({"schemas": [USER_SCHEMA], "userName": "changed"})
    ops = json.dumps(
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "nickName", "value": "x"}]}
    )
    group = json.dumps({"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides"})

    assert client.put(path, content=put, headers=headers).status_code == 415
    assert client.patch(path, content=ops, headers=headers).status_code == 415
    assert client.post("/scim/v2/Groups", content=group, headers=headers).status_code == 415
    assert client.get(path).json() == user
    assert client.get("/scim/v2/Groups").json()["totalResults"] == 0


def test_every_response_body_is_scim_json(client: TestClient) -> None:
    user = new_user(client, "bjensen")
    responses = [
        client.get(f"/scim/v2/Users/{user['id']}"),
        client.get("/scim/v2/Users"),
        client.put(
            f"/scim/v2/Users/{user['id']}", json={"schemas": [USER_SCHEMA], "userName": "b"}
        ),
        client.get("/scim/v2/Users/unknown"),
        client.post("/scim/v2/Users", json={"schemas": [USER_SCHEMA], "userName": "b"}),
        client.post("/scim/v2/Users", content=b"{"),
    ]
    for response in responses:
        assert response.headers["content-type"].split(";")[0] == SCIM, response.request.url
        assert isinstance(response.json(), dict)
