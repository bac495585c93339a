"""Revocation and the SCIM gate hold across worker processes, at once.

A real ``scim-gateway serve --workers 2`` runs on PostgreSQL. The key is made and
revoked through the service from this process, on the same database, the way the
CLI or the admin API of another host would do it. Every request goes over a fresh
connection, so both workers serve some of them; none may answer from a stale
view once the change is committed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.config import DatabaseSettings, Settings
from gateway.teams import disable_scim, enable_scim, list_keys, revoke_key
from tests.conftest import POSTGRES_URL, SCIM, USER_SCHEMA
from tests.e2e.conftest import Served, clean_environment, free_port, serve
from tests.support import provision

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not POSTGRES_URL,
        reason="SCIM_GATEWAY_TEST_POSTGRES_URL is not set: several worker processes need a "
        "shared PostgreSQL database",
    ),
]

WORKERS = 2


@dataclass
class Cluster:
    """The running server, a service on its database, and an HTTP client for it."""

    served: Served
    gateway: Gateway
    http: httpx.Client

    def request(
        self, token: str, method: str = "GET", path: str = "/Users", **kw: Any
    ) -> httpx.Response:
        """One request on a new TCP connection, closed afterwards."""
        headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM, "Connection": "close"}
        return self.http.request(method, path, headers=headers, **kw)

    def statuses(self, token: str, count: int, *, parallel: int = 1) -> list[int]:
        """The statuses of ``count`` GET /Users, one after the other or concurrently."""
        if parallel == 1:
            return [self.request(token).status_code for _ in range(count)]
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            return list(pool.map(lambda _: self.request(token).status_code, range(count)))


def write_config(path: Path, database_url: str) -> Path:
    # A JSON string is a valid TOML basic string: quotes and backslashes are escaped.
    path.write_text(
        f'[server]\nhost = "127.0.0.1"\n\n[database]\nurl = {json.dumps(database_url)}\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def cluster(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("multiprocess")
    config = write_config(workdir / "gateway.toml", postgres_url)
    port = str(free_port())
    running = serve(
        workdir,
        args=["serve", "--config", str(config), "--workers", str(WORKERS), "--port", port],
        env=clean_environment(),
        token=None,
        team="default",
    )
    served = next(running)
    gateway = Gateway(Settings(database=DatabaseSettings(url=postgres_url)))
    # No connection is kept alive, so every request opens its own.
    http = httpx.Client(
        base_url=served.base_url, timeout=30.0, limits=httpx.Limits(max_keepalive_connections=0)
    )
    try:
        gateway.start()
        yield Cluster(served, gateway, http)
    finally:
        http.close()
        gateway.stop()
        next(running, None)  # resumes serve() past its yield: it stops the server


def worker_pids(served: Served) -> list[int]:
    """The server's worker processes, from Linux ``/proc``."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == served.process.pid and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def bytes_written(pids: list[int]) -> dict[int, int]:
    """How many bytes each process has written so far, sockets included."""
    out = {}
    for pid in pids:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("wchar:"):
                out[pid] = int(line.split()[1])
    return out


def test_a_revoked_key_is_refused_by_every_worker_at_once(cluster: Cluster) -> None:
    slug = "multi-" + uuid.uuid4().hex[:12]
    token = provision(cluster.gateway, slug)

    body = {"schemas": [USER_SCHEMA], "userName": "bjensen"}
    created = cluster.request(token, "POST", "/Users", json=body)
    assert created.status_code == 201, created.text

    # Sequential and concurrent requests, each on its own connection, reach both workers.
    on_linux = Path("/proc/self/io").exists()
    pids = worker_pids(cluster.served) if on_linux else []
    before = bytes_written(pids)
    assert cluster.statuses(token, 30) == [200] * 30
    assert cluster.statuses(token, 30, parallel=6) == [200] * 30
    if on_linux:
        # Each worker wrote many answers' worth; an idle one writes tens of bytes. The
        # kernel hands new connections to whichever worker accepts first: on a busy
        # machine one worker can take a whole batch, so more batches are sent (each
        # must succeed) until both have answered, up to a bound.
        assert len(pids) == WORKERS, pids
        for _ in range(20):
            after = bytes_written(pids)
            written = {pid: after[pid] - before[pid] for pid in pids}
            if all(n > 4096 for n in written.values()):
                break
            assert cluster.statuses(token, 30, parallel=6) == [200] * 30
        assert all(n > 4096 for n in written.values()), written

    [key] = list_keys(cluster.gateway.db, slug)
    assert revoke_key(cluster.gateway.db, slug, key.id).status == "revoked"

    # No grace period, no cache: the very first request after the commit is refused.
    after_revoke = cluster.statuses(token, 30) + cluster.statuses(token, 30, parallel=6)
    assert after_revoke == [401] * len(after_revoke), after_revoke
    refused = cluster.request(token)
    assert refused.json()["status"] == "401"
    assert refused.headers["www-authenticate"].lower().startswith("bearer")
    assert token not in cluster.served.stderr()


def test_turning_scim_off_is_seen_by_every_worker_at_once(cluster: Cluster) -> None:
    slug = "multi-" + uuid.uuid4().hex[:12]
    token = provision(cluster.gateway, slug)
    assert cluster.statuses(token, 20, parallel=4) == [200] * 20

    disable_scim(cluster.gateway.db, slug)
    off = cluster.statuses(token, 20) + cluster.statuses(token, 20, parallel=4)
    assert off == [403] * len(off), off

    enable_scim(cluster.gateway.db, slug)
    on = cluster.statuses(token, 20) + cluster.statuses(token, 20, parallel=4)
    assert on == [200] * len(on), on
