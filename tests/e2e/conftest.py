"""Real ``scim-gateway serve`` processes, reached over HTTP on loopback.

Each fixture starts the installed console script on a free port with its own TOML
config and its own team, waits until discovery answers, and stops the process
afterwards. A process that does not come up fails the test with its stderr.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.app import Gateway
from gateway.config import load_settings
from tests.conftest import SCIM
from tests.support import provision

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# Variables of the developer's shell that would change what the process under test does.
_GATEWAY_VARIABLES = (
    "SCIM_GATEWAY_DATABASE_URL",
    "SCIM_GATEWAY_CONFIG",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_command() -> list[str]:
    """The installed console script, or the module when no script is installed."""
    script = shutil.which("scim-gateway", path=str(Path(sys.executable).parent))
    if script is not None:
        return [script]
    return [sys.executable, "-m", "gateway.cli"]


def clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GATEWAY_VARIABLES}
    env.update(extra)
    return env


@dataclass
class Served:
    """A running gateway: where it listens, its key and its logs."""

    process: subprocess.Popen[bytes]
    root: str
    token: str | None
    team: str
    stderr_path: Path

    @property
    def base_url(self) -> str:
        return f"{self.root}/scim/v2"

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the SCIM root with this process's key, another key, or
        none at all (``token=""``)."""
        headers = {"Accept": SCIM}
        key = token if token is not None else self.token
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def _wait_until_ready(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    url = f"{served.base_url}/ServiceProviderConfig"
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        code = served.process.poll()
        if code is not None:
            pytest.fail(
                f"scim-gateway serve exited with code {code} before serving.\n"
                f"--- stderr ---\n{served.stderr()}"
            )
        try:
            response = httpx.get(url, timeout=2.0)
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        else:
            if response.status_code == 200:
                return
            last_error = f"HTTP {response.status_code}: {response.text[:500]}"
        time.sleep(0.1)
    pytest.fail(
        f"scim-gateway serve did not answer {url} within {START_TIMEOUT:.0f}s "
        f"({last_error}).\n--- stderr ---\n{served.stderr()}"
    )


def serve(
    workdir: Path,
    *,
    args: list[str],
    env: dict[str, str],
    token: str | None,
    team: str,
) -> Iterator[Served]:
    """Run ``scim-gateway <args>`` in ``workdir`` until the generator is closed."""
    stderr_path = workdir / "gateway.stderr"
    stdout_path = workdir / "gateway.stdout"
    port = args[args.index("--port") + 1]
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [*gateway_command(), *args], cwd=workdir, env=env, stdout=out, stderr=err
        )
    served = Served(process, f"http://127.0.0.1:{port}", token, team, stderr_path)
    try:
        _wait_until_ready(served)
        yield served
    finally:
        _stop(process)


def write_config(path: Path, *, database_url: str, rate_limits: bool = False) -> Path:
    """A config for a test gateway; rate limits off unless a test is about them."""
    limits = "" if rate_limits else "\n[rate_limits]\nper_key = 0\nper_team = 0\n"
    path.write_text(
        '[server]\nhost = "127.0.0.1"\n\n[database]\n' + f"url = {database_url!r}\n" + limits,
        encoding="utf-8",
    )
    return path


def provision_key(config: Path, team: str) -> str:
    """Provision ``team`` (SSO, SCIM on) in the config's database; return a new key."""
    gateway = Gateway(load_settings(config))
    gateway.start()
    try:
        return provision(gateway, team)
    finally:
        gateway.stop()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """A ``scim-gateway serve --config`` process for one fresh team, on each backend."""
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    else:
        database_url = request.getfixturevalue("postgres_url")
    team = "e2e-" + uuid.uuid4().hex[:12]
    config = write_config(tmp_path / "gateway.toml", database_url=database_url)
    token = provision_key(config, team)
    port = str(free_port())
    yield from serve(
        tmp_path,
        args=["serve", "--config", str(config), "--port", port],
        env=clean_environment(),
        token=token,
        team=team,
    )
