"""/metrics adds up every worker process, and every worker logs JSON lines.

A real ``scim-gateway serve --workers 2`` runs on PostgreSQL, with no
PROMETHEUS_MULTIPROC_DIR set: ``serve`` makes a temporary one for its workers and
removes it when it stops. Requests go over fresh connections, so both workers serve
some of them; then /metrics is scraped many times, again over fresh connections, and
every answer must give the totals of the requests made, whichever worker answers.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import Gateway
from gateway.config import DatabaseSettings, Settings
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
PROC = Path("/proc")


@dataclass
class Cluster:
    served: Served
    gateway: Gateway
    http: httpx.Client
    running: Iterator[Served]

    def request(self, method: str, path: str, token: str = "", **kw: Any) -> httpx.Response:
        """One request on a new TCP connection, closed afterwards."""
        headers = {"Content-Type": SCIM, "Connection": "close", **kw.pop("headers", {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, path, headers=headers, **kw)

    def many(self, count: int, fn: Any, parallel: int = 6) -> list[Any]:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            return list(pool.map(lambda _: fn(), range(count)))

    def stop(self) -> None:
        next(self.running, None)  # resumes serve() past its yield: it stops the server


def write_config(path: Path, database_url: str) -> Path:
    # A JSON string is a valid TOML basic string: quotes and backslashes are escaped.
    path.write_text(
        f'[server]\nhost = "127.0.0.1"\n\n[database]\nurl = {json.dumps(database_url)}\n\n'
        '[logging]\nformat = "json"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def cluster(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("metrics")
    config = write_config(workdir / "gateway.toml", postgres_url)
    env = clean_environment()
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    running = serve(
        workdir,
        args=[
            "serve",
            "--config",
            str(config),
            "--workers",
            str(WORKERS),
            "--port",
            str(free_port()),
        ],
        env=env,
        token=None,
        team="default",
    )
    served = next(running)
    gateway = Gateway(Settings(database=DatabaseSettings(url=postgres_url)))
    http = httpx.Client(
        base_url=served.root, timeout=30.0, limits=httpx.Limits(max_keepalive_connections=0)
    )
    try:
        gateway.start()
        yield Cluster(served, gateway, http, running)
    finally:
        http.close()
        gateway.stop()
        next(running, None)


def workers(served: Served) -> dict[int, dict[str, str]]:
    """The server's worker processes and their environments, from Linux /proc."""
    found = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
            environ = (stat.parent / "environ").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == served.process.pid and b"spawn_main" in cmdline:
            pairs = (item.partition(b"=") for item in environ.split(b"\0") if item)
            found[int(stat.parent.name)] = {k.decode(): v.decode() for k, _, v in pairs}
    return found


def bytes_written(pids: list[int]) -> dict[int, int]:
    out = {}
    for pid in pids:
        for line in (PROC / str(pid) / "io").read_text().splitlines():
            if line.startswith("wchar:"):
                out[pid] = int(line.split()[1])
    return out


def metric(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def metric_files(directory: str) -> set[int]:
    """The processes that have counted something: each writes its own counter file."""
    return {int(p.stem.rsplit("_", 1)[1]) for p in Path(directory).glob("counter_*.db")}


def test_every_worker_answers_with_the_totals_of_all_workers(cluster: Cluster) -> None:
    found = workers(cluster.served)
    assert len(found) == WORKERS, found
    directories = {env.get("PROMETHEUS_MULTIPROC_DIR") for env in found.values()}
    assert len(directories) == 1 and None not in directories, directories
    [directory] = directories
    assert directory is not None and Path(directory).is_dir()

    # Until both workers are up and serving (the server is "ready" once one answers).
    deadline = time.monotonic() + 30
    while metric_files(directory) != set(found) and time.monotonic() < deadline:
        cluster.many(12, lambda: cluster.request("GET", "/healthz"))
    assert metric_files(directory) == set(found)

    slug = "metrics-" + uuid.uuid4().hex[:12]
    token = provision(cluster.gateway, slug)
    body = {"schemas": [USER_SCHEMA], "userName": "u"}
    created = [
        cluster.request("POST", "/scim/v2/Users", token, json={**body, "userName": f"u{i}"})
        for i in range(3)
    ]
    assert [r.status_code for r in created] == [201] * 3
    lists = [cluster.request("GET", "/scim/v2/Users", token).status_code for _ in range(20)]
    lists += cluster.many(40, lambda: cluster.request("GET", "/scim/v2/Users", token).status_code)
    assert lists == [200] * 60
    refused = cluster.many(5, lambda: cluster.request("GET", "/scim/v2/Users", "scimgw_wrong"))
    assert [r.status_code for r in refused] == [401] * 5

    def scrape() -> str:
        response = cluster.request("GET", "/metrics")
        assert response.status_code == 200, response.text
        return response.text

    # Scrape until each worker has answered several times: an answer is kilobytes,
    # and a worker that answers none writes only its database polls.
    answers: list[str] = []
    before = bytes_written(list(found))
    for _ in range(20):
        answers += cluster.many(12, scrape)
        written = bytes_written(list(found))
        if all(written[pid] - before[pid] > 3 * len(answers[0]) for pid in found):
            break
    assert all(written[pid] - before[pid] > 3 * len(answers[0]) for pid in found), written

    endpoint = {"endpoint": "/scim/v2/Users", "team": slug, "adapter": "generic"}
    requests = "scim_gateway_requests_total"
    actions = "scim_gateway_provisioning_actions_total"
    for text in answers:
        assert metric(text, requests, **endpoint, method="GET", status="200") == 60
        assert metric(text, requests, **endpoint, method="POST", status="201") == 3
        assert metric(text, "scim_gateway_auth_failures_total", api="scim") == 5
        assert metric(text, actions, kind="user.created", team=slug) == 3
        count = metric(
            text,
            "scim_gateway_request_duration_seconds_count",
            endpoint="/scim/v2/Users",
            method="GET",
        )
        assert count == 65  # 60 listed, 5 refused: the histogram counts every request


def test_workers_log_one_json_line_per_request(cluster: Cluster) -> None:
    slug = "logs-" + uuid.uuid4().hex[:12]
    token = provision(cluster.gateway, slug)
    rid = "req-" + uuid.uuid4().hex
    response = cluster.request(
        "GET", f"/scim/v2/Users/{token}", token, headers={"X-Request-Id": rid}
    )
    assert response.status_code == 404
    assert response.headers["x-request-id"] == rid

    # The line is written just after the answer is sent: wait for it.
    deadline = time.monotonic() + 10
    while rid not in cluster.served.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in cluster.served.stderr().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line, uvicorn's included, is JSON
    [access] = [e for e in entries if e.get("request_id") == rid]
    assert access["logger"] == "scim_gateway.access"
    assert (access["team"], access["adapter"], access["status"]) == (slug, "generic", 404)
    assert access["route"] == "/scim/v2/Users/{id}"
    assert access["path"].startswith("/scim/v2/Users/scimgw_") and "[redacted]" in access["path"]
    assert token not in cluster.served.stderr()
    assert any(e["logger"].startswith("uvicorn") for e in entries)


def test_the_metrics_directory_is_removed_when_serve_stops(cluster: Cluster) -> None:
    found = workers(cluster.served)
    [directory] = {env["PROMETHEUS_MULTIPROC_DIR"] for env in found.values()}
    assert Path(directory).is_dir()
    cluster.stop()
    assert cluster.served.process.returncode == 0
    assert not Path(directory).exists()
