"""Per-phase numbers, the table and the ``BENCH_JSON`` line."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from .client import RunResult

__all__ = [
    "JSON_PREFIX",
    "PhaseReport",
    "percentile",
    "render_table",
    "summary_lines",
    "to_json_line",
]

JSON_PREFIX = "BENCH_JSON "


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class PhaseReport:
    """One row of the report: a phase (or a step of phase e) and how it went."""

    name: str
    title: str
    concurrency: int
    requests: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    integrity: str = "ok"
    """``ok`` when every answer and every read-back matched what the requests imply."""
    problems: list[str] = field(default_factory=list)
    ceiling_rps: float | None = None
    client_cpu: float | None = None
    """Share of one core the load client used (near 1.0: the client was the limit)."""
    server_cpu: float | None = None
    """Cores' worth of CPU the server processes used (1.0 = one core fully busy)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_run(cls, name: str, title: str, concurrency: int, run: RunResult) -> PhaseReport:
        report = cls(name, title, concurrency)
        report.add_run(run)
        return report

    def add_run(self, run: RunResult) -> None:
        latencies = sorted(run.latencies)
        self.requests = len(latencies)
        self.errors = run.errors
        self.elapsed_s = run.elapsed
        self.p50_ms = percentile(latencies, 0.50) * 1000
        self.p95_ms = percentile(latencies, 0.95) * 1000
        self.p99_ms = percentile(latencies, 0.99) * 1000
        self.problems = list(run.problems)
        if run.elapsed > 0:
            self.client_cpu = run.client_cpu / run.elapsed
            if run.server_cpu is not None:
                self.server_cpu = run.server_cpu / run.elapsed
        if run.errors:
            self.integrity = "failed"

    def fail(self, problem: str) -> None:
        """An integrity check failed (a read-back disagrees with what was sent)."""
        self.integrity = "failed"
        if len(self.problems) < 10:
            self.problems.append(problem)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def ratio(self) -> float | None:
        if not self.ceiling_rps:
            return None
        return self.rps / self.ceiling_rps

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.integrity == "ok"

    def to_dict(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "phase": self.name,
            "title": self.title,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 4),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "ceiling_rps": round(self.ceiling_rps, 1) if self.ceiling_rps else None,
            "ratio_to_ceiling": round(ratio, 4) if ratio is not None else None,
            "client_cpu": _round(self.client_cpu),
            "server_cpu": _round(self.server_cpu),
            "integrity": self.integrity,
            "problems": self.problems,
            **self.extra,
        }


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _share(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def render_table(rows: list[PhaseReport]) -> str:
    header = (
        "phase",
        "what",
        "conc",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "x ceiling",
        "cli cpu",
        "srv cpu",
        "integrity",
    )
    body = []
    for row in rows:
        ratio = row.ratio
        body.append(
            (
                row.name,
                row.title,
                str(row.concurrency),
                str(row.requests),
                str(row.errors),
                f"{row.rps:,.1f}",
                f"{row.p50_ms:.2f}",
                f"{row.p95_ms:.2f}",
                f"{row.p99_ms:.2f}",
                f"{ratio:.3f}" if ratio is not None else "-",
                _share(row.client_cpu),
                _share(row.server_cpu),
                row.integrity,
            )
        )
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    numeric = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths))]
    out += [line(r) for r in body]
    return "\n".join(out)


def _ms(value: float | None) -> str:
    return f"{value:.2f} ms" if value is not None else "-"


def _times(value: float | None) -> str:
    return f"x{value:.2f}" if value is not None else "x-"


def summary_lines(rows: list[PhaseReport]) -> list[str]:
    """The lines under the table: paging rates, group add costs by group size, and the
    ``scale`` ratios (with why a ratio is missing, when it is)."""
    by_name = {row.name: row.extra for row in rows}
    lines: list[str] = []
    scale: list[str] = []
    notes: list[str] = []
    d = by_name.get("d")
    if d is not None:
        k = d["pages_compared"]
        pages = (
            f"median of the first {k} full pages {_ms(d['first_pages_ms'])}, of the last {k} "
            f"{_ms(d['last_pages_ms'])}"
            if k
            else "first/last pages -"
        )
        lines.append(f"paging: {d['pages_per_s']} pages/s, {d['users_per_s']} users/s; {pages}")
        scale.append(f"paging last/first pages {_times(d['last_over_first'])}")
        if d["scale_note"]:
            notes.append(f"d: {d['scale_note']}")
    add, probe = by_name.get("e.add"), by_name.get("e.add-probe")
    parts: list[str] = []
    if add is not None:
        sizes = add["add_ms_by_size"]
        large_min = sizes["large_min_members"]
        parts.append(
            f"e.add {_ms(sizes['small'])} into <= {sizes['small_max_members']:,} members, "
            f"{_ms(sizes['large'])} into >= {large_min:,}"
            if large_min is not None
            else f"e.add {_ms(sizes['small'])} into <= {sizes['small_max_members']:,} members"
        )
        scale.append(f"group add large/small {_times(add['large_over_small'])} (e.add)")
        if add["scale_note"]:
            notes.append(f"e.add: {add['scale_note']}")
    if probe is not None and "small_group_members" in probe:
        small, large = probe["small_group_members"], probe["large_group_members"]
        parts.append(
            f"e.add-probe (1 connection) {_ms(probe['small_p50_ms'])} into {small:,} members, "
            f"{_ms(probe['large_p50_ms'])} into {large:,}"
        )
        scale.append(
            f"{_times(probe['large_over_small'])} (e.add-probe, {large:,} vs {small:,} members)"
        )
        if probe["scale_note"]:
            notes.append(f"e.add-probe: {probe['scale_note']}")
    if parts:
        lines.append("group add of 100 members, median: " + "; ".join(parts))
    if scale:
        lines.append("scale (target: x2 or less): " + ", ".join(scale))
        lines += [f"  scale note, {note}" for note in notes]
    return lines


def to_json_line(document: dict[str, Any]) -> str:
    return JSON_PREFIX + orjson.dumps(document).decode("utf-8")
