"""The load benchmark's smoke run (``python -m bench --smoke``), as CI runs it.

It starts real ``scim-gateway serve`` processes and a ceiling server, so it is an
end-to-end test. It checks correctness only, never speed: exit code 0, and a
``BENCH_JSON`` line in which every phase has no errors and passed its integrity
checks (every created user paged exactly once, exact group member counts, ...).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
POSTGRES_ENV = "SCIM_GATEWAY_TEST_POSTGRES_URL"
PREFIX = "BENCH_JSON "
TIMEOUT = 600
ALL_STEPS = {"a", "b", "c", "d", "e.create", "e.add", "e.get", "e.get-excl", "e.remove"}
ALL_STEPS |= {"e.verify", "f"}


def run_bench(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SCIM_GATEWAY_DATABASE_URL", "SCIM_GATEWAY_CONFIG")
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--users", "40", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    output = f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1, output
    document: dict[str, Any] = json.loads(lines[0][len(PREFIX) :])
    assert proc.returncode == 0, output
    return proc, document


def assert_clean(document: dict[str, Any], steps: set[str]) -> None:
    phases = document["phases"]
    assert {p["phase"] for p in phases} == steps
    for phase in phases:
        assert phase["errors"] == 0, phase
        assert phase["integrity"] == "ok", phase
        assert phase["requests"] > 0, phase
        assert phase["ratio_to_ceiling"] is not None, phase
    assert document["ok"] is True
    assert document["failed"] == []
    assert document["ceiling"]["rps"] > 0


def test_smoke_sqlite() -> None:
    _proc, document = run_bench()
    assert document["meta"]["database"] == "sqlite"
    assert document["meta"]["users"] == 40
    assert_clean(document, ALL_STEPS)


def test_smoke_sqlite_other_teams_and_memory() -> None:
    """Users seeded into other teams never show in this team's paging (phase d
    checks totalResults and every id), and the memory probe reports."""
    _proc, document = run_bench("--other-teams-users", "500", "--phases", "a,d", "--rss")
    assert_clean(document, {"a", "d"})
    assert document["seed"]["users"] == 500
    rss = document["rss"]
    assert 0 < rss["idle_kib"] <= rss["peak_kib"]
    assert set(rss["peak_kib_by_phase"]) == {"a", "d"}


@pytest.mark.postgres
@pytest.mark.parametrize("workers", [1, 2])
def test_smoke_postgres(workers: int) -> None:
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} is not set; the PostgreSQL smoke benchmark needs it")
    proc, document = run_bench("--database", "postgres", "--workers", str(workers), "--json-only")
    assert proc.stdout.strip().count("\n") == 0  # --json-only: the one line, nothing else
    assert document["meta"]["database"] == "postgresql"
    assert document["meta"]["workers"] == workers
    assert_clean(document, ALL_STEPS)
