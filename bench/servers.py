"""The processes under test: the gateway and the ceiling server, their databases,
CPU pinning and resident-memory sampling."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "RATE_LIMITS",
    "REPO_ROOT",
    "CpuPlan",
    "Keys",
    "PostgresSchema",
    "ServerProcess",
    "ceiling_command",
    "free_port",
    "gateway_command",
    "plan_cpus",
    "provision",
    "tree_cpu_seconds",
    "tree_pids",
    "tree_rss_kib",
    "write_config",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# Variables of the caller's shell that would make the gateway read another config.
_GATEWAY_VARIABLES = ("SCIM_GATEWAY_DATABASE_URL", "SCIM_GATEWAY_CONFIG")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_command() -> list[str]:
    """The installed console script next to this Python, else the module."""
    script = shutil.which("scim-gateway", path=str(Path(sys.executable).parent))
    if script is not None:
        return [script]
    return [sys.executable, "-m", "gateway.cli"]


def ceiling_command() -> list[str]:
    return [sys.executable, "-m", "bench.ceiling"]


# --- CPU pinning ------------------------------------------------------------------


@dataclass(frozen=True)
class CpuPlan:
    """Which CPUs the server processes and the load client run on (``None``: unpinned)."""

    server: frozenset[int] | None
    client: frozenset[int] | None

    def describe(self) -> dict[str, list[int] | None]:
        return {
            "server": sorted(self.server) if self.server is not None else None,
            "client": sorted(self.client) if self.client is not None else None,
        }


def plan_cpus(enabled: bool = True, workers: int = 1) -> CpuPlan:
    """The client gets the last CPU and the server the others, when there are enough
    for the server to have one per worker; otherwise nothing is pinned (two workers
    squeezed onto one core would measure nothing about workers)."""
    if not enabled or not hasattr(os, "sched_getaffinity"):
        return CpuPlan(None, None)
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < workers + 1:
        return CpuPlan(None, None)
    return CpuPlan(frozenset(cpus[:-1]), frozenset(cpus[-1:]))


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        out += [int(p) for p in text.split()]
    return out


def tree_pids(pid: int) -> list[int]:
    """The process and all its descendants (uvicorn's supervisor and its workers)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += _children(current)
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) used so far by the process and its descendants."""
    ticks = 0
    for p in tree_pids(pid):
        try:
            text = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_kib(pid: int) -> int:
    """Resident memory (VmRSS, KiB) of the process and its descendants."""
    total = 0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


# --- processes ----------------------------------------------------------------------


class ServerProcess:
    """A server started in ``workdir`` with its output in files, pinned when asked."""

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        workdir: Path,
        port: int,
        ready_path: str,
        cpus: frozenset[int] | None,
        workers: int = 1,
    ) -> None:
        self.name = name
        self.port = port
        self.ready_path = ready_path
        self.cpus = cpus
        self.workers = workers
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        env = {k: v for k, v in os.environ.items() if k not in _GATEWAY_VARIABLES}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=err)
        self.pin()  # before uvicorn forks its workers, so that they inherit it

    @property
    def pid(self) -> int:
        return self.process.pid

    def pin(self) -> None:
        if self.cpus is None:
            return
        for pid in tree_pids(self.pid):
            with contextlib.suppress(OSError):  # a process that has just exited
                os.sched_setaffinity(pid, self.cpus)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self) -> None:
        """Until ``ready_path`` answers 200 (and, with several workers, until they
        have all been started); raises with the process's stderr if it does not."""
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer yet"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {code} before serving.\n"
                    f"--- stderr ---\n{self.stderr()[-4000:]}"
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2.0)
                conn.request("GET", self.ready_path)
                status = conn.getresponse().status
                conn.close()
            except OSError as exc:
                last = repr(exc)
            else:
                if status == 200 and self._workers_started():
                    self.pin()
                    return
                last = f"HTTP {status}"
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} did not answer {self.ready_path} within {START_TIMEOUT:.0f}s "
            f"({last}).\n--- stderr ---\n{self.stderr()[-4000:]}"
        )

    def _workers_started(self) -> bool:
        if self.workers <= 1:
            return True
        started = self.stderr().count("Application startup complete")
        return started >= self.workers

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)


# --- databases and provisioning ---------------------------------------------------------


class PostgresSchema:
    """A fresh schema for this run, reached through the URL's ``search_path``."""

    def __init__(self, base_url: str) -> None:
        from gateway.store.db import make_engine

        self.name = "bench_" + uuid.uuid4().hex[:12]
        self._admin = make_engine(base_url, pool_size=1)
        separator = "&" if "?" in base_url else "?"
        self.url = f"{base_url}{separator}options=-csearch_path%3D{self.name}"

    def create(self) -> None:
        from sqlalchemy import text

        with self._admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))

    def drop(self) -> None:
        from sqlalchemy import text

        with self._admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self._admin.dispose()


RATE_LIMITS = {
    "high": {"per_key": 1_000_000, "per_team": 1_000_000},
    "off": {"per_key": 0, "per_team": 0},
}
"""``high``: the limiter runs (its cost is measured) but no run reaches the limits;
``off``: no limits, the limiter is skipped."""


def write_config(path: Path, database_url: str, *, rate_limits: str = "high") -> dict[str, Any]:
    """Write the gateway's config; return the settings it chose that matter for reading
    the numbers (the rate limits, when this gateway has them)."""
    from dataclasses import fields

    from gateway.config import Settings

    text = '[server]\nhost = "127.0.0.1"\n\n[database]\n' + f"url = {database_url!r}\n"
    chosen: dict[str, Any] = {}
    if "rate_limits" in {f.name for f in fields(Settings)}:
        limits = RATE_LIMITS[rate_limits]
        text += "\n[rate_limits]\n" + "".join(f"{k} = {v}\n" for k, v in limits.items())
        chosen["rate_limits"] = {"mode": rate_limits, **limits}
    path.write_text(text, encoding="utf-8")
    return chosen


@dataclass(frozen=True)
class Keys:
    """The benchmark's team and its two keys (one per adapter)."""

    team: str
    okta: str
    entra: str


def provision(config: Path, team: str) -> Keys:
    """Create ``team`` with SAML SSO (a generated certificate) and SCIM on, and one key
    bound to the ``okta`` adapter and one bound to ``entra``."""
    from gateway.app import Gateway
    from gateway.config import load_settings
    from gateway.demo import demo_certificate
    from gateway.sso import validate_saml
    from gateway.teams import create_key, create_team, enable_scim, set_sso

    gateway = Gateway(load_settings(config))
    gateway.start()
    try:
        create_team(gateway.db, team, "Load benchmark team")
        connection = validate_saml(
            "https://idp.example.com/metadata", "https://idp.example.com/sso", demo_certificate()
        )
        set_sso(gateway.db, team, connection)
        enable_scim(gateway.db, team)
        _info, okta = create_key(gateway.db, gateway.hasher, team, "bench okta", adapter="okta")
        _info, entra = create_key(gateway.db, gateway.hasher, team, "bench entra", adapter="entra")
        return Keys(team, okta, entra)
    finally:
        gateway.stop()
