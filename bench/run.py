"""``python -m bench``: drive a real ``scim-gateway serve`` with IdP traffic and report.

See bench/README.md for the phases and how to read the numbers. The exit code is 1
when any phase had errors or failed an integrity check, 2 on bad options, else 0;
it never depends on speed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import importlib.util
import os
import platform
import random
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.client import Connection
from bench.phases import ALL_PHASES, Bench, GroupOptions, RssProbe, measure_ceiling
from bench.report import PhaseReport, render_table, summary_lines, to_json_line
from bench.seed import seed_other_teams
from bench.servers import (
    RATE_LIMITS,
    Keys,
    PostgresSchema,
    ServerProcess,
    ceiling_command,
    free_port,
    gateway_command,
    plan_cpus,
    provision,
    write_config,
)

__all__ = ["build_parser", "main"]

POSTGRES_ENV = "SCIM_GATEWAY_TEST_POSTGRES_URL"
SMOKE_USERS = 50
TEAM = "bench"


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load benchmark: a real scim-gateway process driven over loopback HTTP "
        "with Okta- and Entra-shaped SCIM traffic, compared with a trivial Starlette app.",
    )
    parser.add_argument("--users", type=int, help=f"users N (default 2000; {SMOKE_USERS} --smoke)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections C")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--postgres-url", help=f"PostgreSQL to use (default: ${POSTGRES_ENV}); a fresh schema"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (>1: PostgreSQL)")
    parser.add_argument(
        "--other-teams-users",
        type=int,
        default=0,
        metavar="M",
        help="seed M users into other teams first (bulk SQL)",
    )
    parser.add_argument("--other-teams", type=int, default=4, help="teams the M users spread over")
    parser.add_argument(
        "--phases", default=",".join(ALL_PHASES), help="comma-separated subset of a,b,c,d,e,f"
    )
    parser.add_argument("--groups", type=int, help="groups in phase e (default: ceil(N/1000))")
    parser.add_argument("--group-members", type=int, help="members per group (default: N)")
    parser.add_argument(
        "--group-gets", type=int, help="GET /Groups/{id} requests, each way (default 100)"
    )
    parser.add_argument(
        "--group-remove-fraction",
        type=float,
        default=0.10,
        help="share of each group's members removed one by one (default 0.10)",
    )
    parser.add_argument(
        "--group-add-probe",
        type=int,
        default=20,
        metavar="K",
        help="after e.add, K timed sequential 100-member adds into a 1,000-member group and "
        "into the largest group, each (default 20; 0: no e.add-probe)",
    )
    parser.add_argument(
        "--ceiling-requests",
        type=int,
        help="GET / requests for the ceiling (default: N within 20000..50000; 2000 --smoke)",
    )
    parser.add_argument(
        "--rate-limits",
        choices=sorted(RATE_LIMITS),
        default="high",
        help="high: the rate limiter runs with limits no run reaches (default); off: none",
    )
    parser.add_argument("--rss", action="store_true", help="sample the gateway's resident memory")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client CPUs")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the lookups")
    parser.add_argument("--json-only", action="store_true", help="print only the BENCH_JSON line")
    parser.add_argument(
        "--smoke", action="store_true", help=f"small run (N={SMOKE_USERS}) for CI; fails on errors"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    return parser


def _phases(text: str) -> list[str]:
    wanted = [p.strip().lower() for p in text.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in ALL_PHASES]
    if unknown or not wanted:
        raise UsageError(f"--phases takes a comma-separated subset of {','.join(ALL_PHASES)}")
    return [p for p in ALL_PHASES if p in wanted]


def _postgres_url(args: argparse.Namespace) -> str | None:
    if args.database != "postgres":
        return None
    url = args.postgres_url or os.environ.get(POSTGRES_ENV)
    if not url:
        raise UsageError(f"--database postgres needs --postgres-url or ${POSTGRES_ENV}")
    return str(url)


def _check(args: argparse.Namespace) -> None:
    if args.users is not None and args.users < 1:
        raise UsageError("--users must be at least 1")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.workers > 1 and args.database != "postgres":
        raise UsageError("--workers above 1 needs --database postgres (SQLite has one writer)")
    if args.group_add_probe < 0:
        raise UsageError("--group-add-probe must be at least 0")
    if not 0.0 <= args.group_remove_fraction <= 1.0:
        raise UsageError("--group-remove-fraction must be between 0 and 1")
    for name in ("groups", "group_members", "group_gets", "ceiling_requests"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.other_teams_users < 0 or args.other_teams < 1:
        raise UsageError("--other-teams-users must be >= 0 and --other-teams >= 1")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _stack() -> dict[str, Any]:
    """What uvicorn's ``auto`` settings resolve to here (both servers share them)."""
    return {
        "python": platform.python_version(),
        "uvicorn": importlib.metadata.version("uvicorn"),
        "starlette": importlib.metadata.version("starlette"),
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "client_loop": "uvloop" if _loop_factory() else "asyncio",
    }


class Output:
    def __init__(self, json_only: bool) -> None:
        self.json_only = json_only

    def progress(self, text: str) -> None:
        if not self.json_only:
            print(text, file=sys.stderr, flush=True)


def _progress_line(report: PhaseReport) -> str:
    return (
        f"  {report.name:<10} {report.requests:>7} req  {report.rps:>9,.1f} req/s  "
        f"p50 {report.p50_ms:.2f} ms  errors {report.errors}  integrity {report.integrity}"
        + (f"  ({report.problems[0]})" if report.problems else "")
    )


async def _gateway_phases(
    bench: Bench, phases: list[str], out: Output, rss: RssProbe | None
) -> list[PhaseReport]:
    reports: list[PhaseReport] = []

    def done(new: list[PhaseReport]) -> None:
        for report in new:
            out.progress(_progress_line(report))
        reports.extend(new)

    await bench.warm_up()
    if rss is not None:
        rss.sample_idle()
    if "a" in phases:
        done([await bench.phase_a()])
    elif any(p in phases for p in "bcdef"):
        setup = await bench.phase_a()  # users the other phases need; not reported
        if not setup.ok:
            setup.name, setup.title = "setup", "create users (not a selected phase)"
            done([setup])
    if "b" in phases:
        done([await bench.phase_b()])
    if "c" in phases:
        done([await bench.phase_c()])
    if "d" in phases:
        done([await bench.phase_d()])
    if "e" in phases:
        done(await bench.phase_e())
    if "f" in phases:
        done([await bench.phase_f()])
    return reports


def _run(args: argparse.Namespace, out: Output) -> dict[str, Any]:
    phases = _phases(args.phases)
    postgres_url = _postgres_url(args)
    users = args.users or (SMOKE_USERS if args.smoke else 2000)
    concurrency = args.concurrency
    ceiling_requests = args.ceiling_requests or (
        2000 if args.smoke else min(max(users, 20_000), 50_000)
    )
    group_gets = args.group_gets or (10 if args.smoke else 100)
    plan = plan_cpus(not args.no_pin, args.workers)
    if plan.client is not None:
        os.sched_setaffinity(0, plan.client)
    meta: dict[str, Any] = {
        "users": users,
        "concurrency": concurrency,
        "database": "postgresql" if postgres_url else "sqlite",
        "workers": args.workers,
        "phases": phases,
        "other_teams_users": args.other_teams_users,
        "smoke": args.smoke,
        "cpu_count": os.cpu_count(),
        "cpus": plan.describe(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        **_stack(),
    }
    workdir = Path(tempfile.mkdtemp(prefix="scim-bench-"))
    schema = PostgresSchema(postgres_url) if postgres_url else None
    document: dict[str, Any] = {"meta": meta}
    if plan.client is None and not args.no_pin:
        out.progress(
            f"note: not pinning CPUs ({os.cpu_count()} CPUs cannot give {args.workers} "
            "worker(s) and the client a core each); client and server share the CPUs"
        )
    if os.getloadavg()[0] > 0.5:
        out.progress(
            f"note: load average {os.getloadavg()[0]:.2f} before the run: other work on this "
            "machine competes with the benchmark (see the cpu columns)"
        )
    out.progress(
        f"scim-gateway bench: N={users} C={concurrency} {meta['database']} "
        f"workers={args.workers} cpus={plan.describe()} work dir {workdir}"
    )
    failed_logs = ""
    try:
        if schema is not None:
            schema.create()
            database_url = schema.url
            meta["postgres_schema"] = schema.name
        else:
            database_url = f"sqlite:///{workdir / 'gateway.sqlite3'}"
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            # 1. the ceiling
            port = free_port()
            ceiling = ServerProcess(
                "ceiling",
                [*ceiling_command(), "--port", str(port), "--workers", str(args.workers)],
                workdir=workdir,
                port=port,
                ready_path="/",
                cpus=plan.server,
                workers=args.workers,
            )
            try:
                ceiling.wait_ready()
                out.progress(f"ceiling: {ceiling_requests} x GET / at C={concurrency} and C=1")
                ceiling_c, ceiling_1 = runner.run(
                    measure_ceiling(
                        port, ceiling.pid, "ceiling-token", concurrency, ceiling_requests
                    )
                )
            finally:
                ceiling.stop()
            for report in (ceiling_c, ceiling_1):
                report.ceiling_rps = report.rps
                out.progress(_progress_line(report))
            document["ceiling"] = {
                "rps": round(ceiling_c.rps, 1),
                "rps_sequential": round(ceiling_1.rps, 1),
                "runs": [ceiling_c.to_dict(), ceiling_1.to_dict()],
            }

            # 2. the gateway's database: our team, its keys, other teams' users
            config = workdir / "gateway.toml"
            meta.update(write_config(config, database_url, rate_limits=args.rate_limits))
            keys: Keys = provision(config, TEAM)
            if args.other_teams_users:
                out.progress(
                    f"seeding {args.other_teams_users} users into {args.other_teams} other teams"
                )
                document["seed"] = seed_other_teams(
                    config, args.other_teams_users, args.other_teams
                )
                out.progress(f"  seeded in {document['seed']['seconds']} s")

            # 3. the gateway
            port = free_port()
            gateway = ServerProcess(
                "gateway",
                [
                    *gateway_command(),
                    "serve",
                    "--config",
                    str(config),
                    "--port",
                    str(port),
                    "--workers",
                    str(args.workers),
                ],
                workdir=workdir,
                port=port,
                ready_path="/scim/v2/ServiceProviderConfig",
                cpus=plan.server,
                workers=args.workers,
            )
            bench = Bench(
                connections=[Connection("127.0.0.1", port) for _ in range(concurrency)],
                keys=keys,
                users=users,
                concurrency=concurrency,
                rng=random.Random(args.seed),
                groups=GroupOptions(
                    count=args.groups,
                    members=args.group_members,
                    gets=group_gets,
                    remove_fraction=args.group_remove_fraction,
                    add_probe=args.group_add_probe,
                ),
            )
            try:
                gateway.wait_ready()
                bench.server_pid = gateway.pid
                rss = RssProbe(gateway.pid) if args.rss else None
                bench.rss = rss
                reports = runner.run(_gateway_phases(bench, phases, out, rss))
            finally:
                bench.close()
                gateway.stop()
            if any(not r.ok for r in reports):
                failed_logs = gateway.stderr()[-6000:]
        for report in reports:
            report.ceiling_rps = ceiling_1.rps if report.concurrency == 1 else ceiling_c.rps
        document["phases"] = [r.to_dict() for r in reports]
        if rss is not None:
            document["rss"] = rss.to_dict()
        meta["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        document["ok"] = all(r.ok for r in reports)
        document["failed"] = [r.name for r in reports if not r.ok]
        document["_rows"] = [ceiling_c, ceiling_1, *reports]
    finally:
        if schema is not None:
            schema.drop()
        if args.keep:
            out.progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if failed_logs and not args.json_only:
        print("--- gateway stderr (tail) ---\n" + failed_logs, file=sys.stderr)
    return document


def _print_rss(rss: dict[str, Any]) -> None:
    mib = 1024
    by_phase = ", ".join(f"{k} {v / mib:.1f} MiB" for k, v in rss["peak_kib_by_phase"].items())
    print(
        f"gateway RSS: idle {rss['idle_kib'] / mib:.1f} MiB, peak {rss['peak_kib'] / mib:.1f} MiB "
        f"(x{rss['peak_over_idle']}); peaks by phase: {by_phase}; {rss['samples']} samples"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output(args.json_only)
    try:
        _check(args)
        document = _run(args, out)
    except UsageError as exc:
        parser.error(str(exc))  # exits with 2
    except RuntimeError as exc:  # a server did not start, or stopped answering
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    rows: list[PhaseReport] = document.pop("_rows")
    if not args.json_only:
        meta = document["meta"]
        print()
        print(
            f"N={meta['users']} C={meta['concurrency']} database={meta['database']} "
            f"workers={meta['workers']} uvicorn {meta['uvicorn']} ({meta['loop']}, "
            f"{meta['http']}) cpus server={meta['cpus']['server']} client={meta['cpus']['client']} "
            f"load average {meta['load_average_before'][0]}"
        )
        print(render_table(rows))
        for line in summary_lines(rows):
            print(line)
        if "rss" in document:
            _print_rss(document["rss"])
        for row in rows:
            for problem in row.problems:
                print(f"! {row.name}: {problem}")
    print(to_json_line(document), flush=True)
    return 0 if document["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
