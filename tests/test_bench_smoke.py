"""The load benchmark's smoke run (``python -m bench --smoke``), as CI runs it.

It starts real ``scim-gateway serve`` processes and a ceiling server, so it is an
end-to-end test. It checks correctness only, never speed: exit code 0, and a
``BENCH_JSON`` line in which every phase has no errors and passed its integrity
checks (every created user paged exactly once, exact group member counts, ...).
It also checks that the scale figures (first vs last pages, group adds by group
size) are reported: numbers when the run is big enough, else null with a reason.
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
ALL_STEPS = {"a", "b", "c", "d", "e.create", "e.add", "e.add-probe", "e.get", "e.get-excl"}
ALL_STEPS |= {"e.remove", "e.verify", "f"}
PROBE_ADDS = 20  # --group-add-probe's default


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


def phase(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in document["phases"] if p["phase"] == name)
    return found


def is_ms(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def assert_ratio(report: dict[str, Any], key: str) -> None:
    """A scale ratio is a number and ``scale_note`` null, or null with a reason."""
    if report[key] is None:
        assert isinstance(report["scale_note"], str) and report["scale_note"], report
    else:
        assert is_ms(report[key]), report
        assert report["scale_note"] is None, report


def assert_small_run_scale(document: dict[str, Any]) -> None:
    """N=40: one short page and 40-member groups, too small for any ratio; the medians
    that can be measured are, and every missing ratio says why."""
    d = phase(document, "d")
    assert (d["full_pages"], d["pages_compared"]) == (0, 0), d
    assert d["first_pages_ms"] is None and d["last_pages_ms"] is None, d
    assert d["last_over_first"] is None and "N >= 200" in d["scale_note"], d

    add = phase(document, "e.add")
    assert is_ms(add["add_ms_by_size"]["small"]), add
    assert add["add_ms_by_size"]["small_requests"] == 1, add  # 40 members: one batch
    assert add["add_ms_by_size"]["large"] is None, add
    assert add["large_over_small"] is None and "10,000" in add["scale_note"], add

    probe = phase(document, "e.add-probe")
    assert probe["concurrency"] == 1, probe
    assert probe["requests"] == 2 * PROBE_ADDS, probe
    assert probe["small_group_members"] == probe["large_group_members"] == 40, probe
    assert is_ms(probe["small_p50_ms"]) and is_ms(probe["large_p50_ms"]), probe
    assert probe["large_over_small"] is None, probe
    assert_ratio(probe, "large_over_small")


def test_smoke_sqlite() -> None:
    proc, document = run_bench()
    assert document["meta"]["database"] == "sqlite"
    assert document["meta"]["users"] == 40
    assert_clean(document, ALL_STEPS)
    assert_small_run_scale(document)
    assert "scale (target: x2 or less): " in proc.stdout


def test_smoke_sqlite_other_teams_and_memory() -> None:
    """Users seeded into other teams never show in this team's paging (phase d
    checks totalResults and every id), and the memory probe reports. N=250 gives two
    full pages and a short one: phase d compares the first full page with the last."""
    _proc, document = run_bench(
        "--users", "250", "--other-teams-users", "500", "--phases", "a,d", "--rss"
    )
    assert_clean(document, {"a", "d"})
    d = phase(document, "d")
    assert (d["requests"], d["full_pages"], d["pages_compared"]) == (3, 2, 1), d
    assert is_ms(d["first_pages_ms"]) and is_ms(d["last_pages_ms"]), d
    assert_ratio(d, "last_over_first")
    assert d["last_over_first"] is not None, d
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
    assert_small_run_scale(document)


def run_in_process(*args: str) -> list[str]:
    """``python -m bench.inprocess ARGS``, which must exit 0: its output's lines."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.inprocess", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize("phase", ["unauth", "404", "a", "b", "c", "d", "e", "e-excl", "e-rm", "f"])
def test_the_in_process_driver_runs_every_phase(phase: str) -> None:
    """``python -m bench.inprocess``: every phase's requests get their expected answers
    (it exits otherwise), and it prints its figure."""
    lines = run_in_process(phase, "200", "--profile", "--top", "3")
    first = lines[0]
    assert first.startswith(f"{phase}: ") and "µs per request (" in first, first
    assert first.endswith("µs of CPU) (under cProfile)"), first
    assert any("%  " in line for line in lines)  # the shares by package


def test_the_in_process_driver_times_the_group_commits() -> None:
    """``--commits``: creates served 16 at a time commit in groups of 16, and the line
    says so (a driver that timed nothing, or every request alone, would not)."""
    last = run_in_process("a", "320", "--concurrency", "16", "--commits")[-1]
    assert last.startswith("group commits: 20 for 320 requests, "), last
    assert last.endswith(" µs per request"), last
    assert float(last.split(", ")[1].split(" ")[0].replace(",", "")) > 0


def test_the_in_process_driver_times_each_statement() -> None:
    """``--statements``: a create's statements, each once per request, and the group
    commits once per 16 requests."""
    lines = run_in_process("a", "320", "--concurrency", "16", "--statements")
    start = lines.index("statements (µs per request, calls per request, µs per call):")
    calls = {" ".join(line.split()[3:]): float(line.split()[1]) for line in lines[start + 1 :]}
    assert calls["INSERT INTO scim_user"] == 1.0, calls
    assert calls["INSERT INTO audit_record"] == 1.0, calls
    assert calls["COMMIT"] == round(20 / 320, 2), calls
    assert calls["PRAGMA data_version"] == 1.0, calls  # asked by every key check
