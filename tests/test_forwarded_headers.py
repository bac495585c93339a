"""Behind a reverse proxy: forwarded headers are believed from trusted proxies only.

``meta.location``, ``Location`` and every URL the gateway writes use the scheme and
host a trusted proxy reports (``Forwarded`` or ``X-Forwarded-Proto``/``-Host``);
the same headers from anyone else change nothing. Checked in-process for the
parsing, and with real ``scim-gateway serve`` processes for the whole path.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.config import ConfigError, ServerSettings, Settings, load_settings
from tests.conftest import SCIM, USER_SCHEMA
from tests.e2e.conftest import Served, clean_environment, free_port, provision_key, serve
from tests.support import provision

PROXY = ("10.1.2.3", 41000)
STRANGER = ("192.0.2.10", 41000)


@contextlib.contextmanager
def client_behind(
    settings: Settings, peer: tuple[str, int], trusted: tuple[str, ...], **server: Any
) -> Iterator[TestClient]:
    server_settings = ServerSettings(trusted_proxies=trusted, **server)
    app = create_app(settings.replace(server=server_settings))
    with TestClient(app, base_url="http://gateway.internal:8000", client=peer) as client:
        token = provision(app.state.gateway, "fwd-" + uuid.uuid4().hex[:10])
        client.headers["Authorization"] = f"Bearer {token}"
        client.headers["Content-Type"] = SCIM
        yield client


@pytest.fixture
def behind_proxy(settings: Settings) -> Iterator[TestClient]:
    with client_behind(settings, PROXY, ("10.0.0.0/8",)) as client:
        yield client


@pytest.fixture
def stranger(settings: Settings) -> Iterator[TestClient]:
    with client_behind(settings, STRANGER, ("10.0.0.0/8",)) as client:
        yield client


def create(client: TestClient, headers: dict[str, str]) -> tuple[str, str]:
    """Create a user; its ``Location`` header and ``meta.location``."""
    body = {"schemas": [USER_SCHEMA], "userName": f"{uuid.uuid4().hex[:8]}@example.com"}
    response = client.post("/scim/v2/Users", json=body, headers=headers)
    assert response.status_code == 201, response.text
    location: str = response.json()["meta"]["location"]
    assert response.headers["location"] == location
    return response.headers["location"], location


def location_root(client: TestClient, headers: dict[str, str]) -> str:
    header, _meta = create(client, headers)
    return header.split("/scim/v2/")[0]


FORWARDED_HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "scim.example.com"}


def test_a_trusted_proxys_x_forwarded_headers_make_the_urls(behind_proxy: TestClient) -> None:
    header, meta = create(behind_proxy, FORWARDED_HTTPS)
    assert header.startswith("https://scim.example.com/scim/v2/Users/")
    assert meta == header
    user = behind_proxy.get(header.split("scim.example.com")[1], headers=FORWARDED_HTTPS)
    assert user.json()["meta"]["location"] == header
    listed = behind_proxy.get("/scim/v2/Users", headers=FORWARDED_HTTPS).json()
    assert all(
        r["meta"]["location"].startswith("https://scim.example.com/scim/v2/Users/")
        for r in listed["Resources"]
    )


def test_a_trusted_proxys_forwarded_header_makes_the_urls(behind_proxy: TestClient) -> None:
    forwarded = {"Forwarded": 'for=198.51.100.7;proto=https;host="scim.example.com:8443"'}
    assert location_root(behind_proxy, forwarded) == "https://scim.example.com:8443"
    # Forwarded wins over X-Forwarded-* when a proxy sends both.
    both = {**forwarded, "X-Forwarded-Host": "other.example.com", "X-Forwarded-Proto": "http"}
    assert location_root(behind_proxy, both) == "https://scim.example.com:8443"


def test_the_value_added_by_the_nearest_proxy_is_used(behind_proxy: TestClient) -> None:
    chained = {"X-Forwarded-Proto": "http, https", "X-Forwarded-Host": "a.example, b.example"}
    assert location_root(behind_proxy, chained) == "https://b.example"
    forwarded = {"Forwarded": "proto=http;host=a.example, proto=https;host=b.example"}
    assert location_root(behind_proxy, forwarded) == "https://b.example"


def test_malformed_forwarded_values_are_ignored(behind_proxy: TestClient) -> None:
    for headers in (
        {"X-Forwarded-Host": "evil.example/phish?", "X-Forwarded-Proto": "javascript"},
        {"X-Forwarded-Host": "user@evil.example"},
        {"X-Forwarded-Host": "evil example"},
        {"Forwarded": 'host="evil.example'},
        {"Forwarded": "host=evil.example;;;=="},
    ):
        assert location_root(behind_proxy, headers) == "http://gateway.internal:8000", headers


def test_the_same_headers_from_an_untrusted_peer_change_nothing(stranger: TestClient) -> None:
    assert location_root(stranger, FORWARDED_HTTPS) == "http://gateway.internal:8000"
    forwarded = {"Forwarded": "proto=https;host=scim.example.com"}
    assert location_root(stranger, forwarded) == "http://gateway.internal:8000"


def test_without_trusted_proxies_forwarded_headers_are_ignored(settings: Settings) -> None:
    with client_behind(settings, ("127.0.0.1", 41000), ()) as client:
        assert location_root(client, FORWARDED_HTTPS) == "http://gateway.internal:8000"


def test_trusted_proxies_by_address_ipv6_and_mapped_ipv4(settings: Settings) -> None:
    for peer, trusted in (
        (("127.0.0.1", 1), ("127.0.0.1",)),
        (("::1", 1), ("::1",)),
        (("::ffff:10.9.8.7", 1), ("10.0.0.0/8",)),
        (("fd00::5", 1), ("fd00::/8",)),
    ):
        with client_behind(settings, peer, trusted) as client:
            assert location_root(client, FORWARDED_HTTPS) == "https://scim.example.com", peer


def test_a_configured_base_url_wins_over_forwarded_headers(settings: Settings) -> None:
    with client_behind(
        settings, PROXY, ("10.0.0.0/8",), base_url="https://public.example.com"
    ) as client:
        assert location_root(client, FORWARDED_HTTPS) == "https://public.example.com"


def test_discovery_urls_follow_the_trusted_proxy(behind_proxy: TestClient) -> None:
    types = behind_proxy.get("/scim/v2/ResourceTypes", headers=FORWARDED_HTTPS).json()
    locations = [r["meta"]["location"] for r in types["Resources"]]
    assert locations
    assert all(loc.startswith("https://scim.example.com/scim/v2/") for loc in locations)


@pytest.mark.parametrize("entry", ["*", "10.0.0.0/33", "proxy.internal", ""])
def test_a_bad_trusted_proxy_entry_stops_startup(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(f'[server]\ntrusted_proxies = ["10.0.0.1", "{entry}"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "server.trusted_proxies" in str(info.value)
    assert "10.0.0.0/8" in str(info.value)


# --- real `scim-gateway serve` processes --------------------------------------------


def serve_with(tmp_path: Path, trusted: list[str]) -> Iterator[Served]:
    config = tmp_path / "gateway.toml"
    database_url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    quoted = ", ".join(f'"{t}"' for t in trusted)
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\ntrusted_proxies = [{quoted}]\n\n'
        f'[database]\nurl = "{database_url}"\n',
        encoding="utf-8",
    )
    team = "fwd-" + uuid.uuid4().hex[:10]
    token = provision_key(config, team)
    yield from serve(
        tmp_path,
        args=["serve", "--config", str(config), "--port", str(free_port())],
        env=clean_environment(),
        token=token,
        team=team,
    )


def served_locations(served: Served, headers: dict[str, str]) -> tuple[str, str]:
    with served.client() as client:
        body = {"schemas": [USER_SCHEMA], "userName": f"{uuid.uuid4().hex[:8]}@example.com"}
        response = client.post("/Users", json=body, headers={"Content-Type": SCIM, **headers})
    assert response.status_code == 201, response.text
    return response.headers["location"], response.json()["meta"]["location"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("trusted", "expected_root"),
    [
        (["127.0.0.1"], "https://scim.example.com"),
        (["10.0.0.0/8"], None),
        ([], None),
    ],
    ids=["loopback-trusted", "other-proxy-trusted", "none-trusted"],
)
def test_serve_believes_forwarded_headers_from_trusted_proxies_only(
    tmp_path: Path, trusted: list[str], expected_root: str | None
) -> None:
    for served in serve_with(tmp_path, trusted):
        root = expected_root or served.root  # http://127.0.0.1:<port>
        header, meta = served_locations(served, FORWARDED_HTTPS)
        assert header.startswith(f"{root}/scim/v2/Users/"), header
        assert meta == header
        forwarded = {"Forwarded": "for=203.0.113.9;proto=https;host=scim.example.com"}
        header, meta = served_locations(served, forwarded)
        assert header.startswith(f"{root}/scim/v2/Users/"), header
        assert meta == header
        # The proxy-less path is unchanged either way.
        header, _meta = served_locations(served, {})
        assert header.startswith(f"{served.root}/scim/v2/Users/"), header
        assert httpx.get(f"{served.base_url}/ServiceProviderConfig").status_code == 200
