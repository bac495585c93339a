"""The benchmark phases, the ceiling measurement and the memory probe.

Every phase checks what it gets back, not only the status: a phase's ``integrity`` is
``ok`` only when every answer and every read-back agree with what the requests imply.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .client import Connection, HttpError, Request, Response, RunResult, run_requests
from .payloads import (
    ENTERPRISE,
    ENTRA_USER_AGENT,
    OKTA_USER_AGENT,
    entra_profile_patch,
    entra_profile_values,
    group_body,
    member_remove,
    members_add,
    members_remove,
    okta_deactivate,
    okta_user,
    user_name,
    user_name_filter,
)
from .report import PhaseReport
from .servers import Keys, tree_cpu_seconds, tree_rss_kib

__all__ = ["ALL_PHASES", "Bench", "GroupOptions", "RssProbe", "measure_ceiling"]

ALL_PHASES = ("a", "b", "c", "d", "e", "f")
ROOT = "/scim/v2"
PAGE = 100
ADD_BATCH = 100
COMPARED_PAGES = 10
"""Phase d compares the median latency of the first and the last this many full pages."""
SMALL_GROUP = 1000
"""A "small" group for the add-cost comparison: e.add batches that land in a group of at
most this many members, and the size of the probe's small group."""
LARGE_SHARE = 0.9
"""A "large" group in e.add: the batch lands when the group holds this share of its final
size or more; only reported when the final size is at least 10 x ``SMALL_GROUP``."""
PROBE_SEED = 1000


# --- memory probe ---------------------------------------------------------------------


class RssProbe:
    """Samples the gateway's resident memory (VmRSS of its process tree) from /proc."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.idle_kib = 0
        self.peak_kib = 0
        self.samples = 0
        self.by_phase: dict[str, int] = {}

    def sample_idle(self) -> None:
        self.idle_kib = tree_rss_kib(self.pid)
        self.peak_kib = max(self.peak_kib, self.idle_kib)

    @contextlib.asynccontextmanager
    async def watch(self, phase: str) -> AsyncIterator[None]:
        """Sample every ``interval`` seconds while the block runs."""

        async def sampler() -> None:
            while True:
                self._take(phase)
                await asyncio.sleep(self.interval)

        task = asyncio.create_task(sampler())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._take(phase)

    def _take(self, phase: str) -> None:
        rss = tree_rss_kib(self.pid)
        self.samples += 1
        self.peak_kib = max(self.peak_kib, rss)
        self.by_phase[phase] = max(self.by_phase.get(phase, 0), rss)

    def to_dict(self) -> dict[str, Any]:
        return {
            "idle_kib": self.idle_kib,
            "peak_kib": self.peak_kib,
            "peak_over_idle": round(self.peak_kib / self.idle_kib, 3) if self.idle_kib else None,
            "peak_kib_by_phase": self.by_phase,
            "samples": self.samples,
            "interval_s": self.interval,
        }


# --- the ceiling ----------------------------------------------------------------------


async def measure_ceiling(
    port: int, server_pid: int, token: str, concurrency: int, requests: int
) -> tuple[PhaseReport, PhaseReport]:
    """``GET /`` on the trivial app with the same client: at ``concurrency`` and at 1
    (the latter is the ceiling for sequential paging, phase d)."""
    connections = [Connection("127.0.0.1", port) for _ in range(concurrency)]

    def build(_item: Any) -> Request:
        return Request("GET", "/", token, user_agent=OKTA_USER_AGENT)

    def check(_item: Any, response: Response) -> str | None:
        if response.status != 200:
            return "expected 200"
        return None if response.json() == {"ok": True} else "unexpected body"

    try:
        cpu = functools.partial(tree_cpu_seconds, server_pid)
        await run_requests(connections, range(concurrency * 20), build, check)  # warm-up
        parallel = await run_requests(connections, range(requests), build, check, server_cpu=cpu)
        sequential = await run_requests(
            connections[:1], range(min(requests, 10_000)), build, check, server_cpu=cpu
        )
    finally:
        for conn in connections:
            conn.close()
    return (
        PhaseReport.from_run("ceiling", "trivial Starlette GET /", concurrency, parallel),
        PhaseReport.from_run("ceiling-1", "trivial Starlette GET /, one client", 1, sequential),
    )


# --- the gateway phases -----------------------------------------------------------------


@dataclass
class GroupOptions:
    count: int | None = None
    """Groups to create; ``None``: N/1000 rounded up, at least 1."""
    members: int | None = None
    """Members per group; ``None``: every user (N)."""
    gets: int = 100
    """GET /Groups/{id} requests, with members and without, each."""
    remove_fraction: float = 0.10
    add_probe: int = 20
    """Timed sequential adds of 100 members into each of two groups (e.add-probe); 0: none."""


@dataclass
class _Expected:
    """What each user must look like after the phases so far."""

    active: bool = True
    display_name: str = ""
    department: str = ""


@dataclass
class Bench:
    connections: list[Connection]
    keys: Keys
    users: int
    concurrency: int
    rng: random.Random
    server_pid: int | None = None
    """The gateway's process, whose CPU time each phase reports."""
    rss: RssProbe | None = None
    groups: GroupOptions = field(default_factory=GroupOptions)
    log: Callable[[str], None] = print

    user_ids: list[str] = field(default_factory=list)
    expected: dict[str, _Expected] = field(default_factory=dict)
    group_ids: list[str] = field(default_factory=list)
    group_members: list[set[str]] = field(default_factory=list)
    probe_group_id: str | None = None
    """The extra group e.add-probe creates (deleted in phase f with the others)."""

    # --- plumbing

    def _okta(self, method: str, path: str, body: Any = None) -> Request:
        return Request(method, ROOT + path, self.keys.okta, body, user_agent=OKTA_USER_AGENT)

    def _entra(self, method: str, path: str, body: Any = None) -> Request:
        return Request(
            method,
            ROOT + path,
            self.keys.entra,
            body,
            content_type="application/scim+json",
            user_agent=ENTRA_USER_AGENT,
        )

    async def _run(
        self,
        items: Iterable[Any],
        build: Callable[[Any], Request],
        check: Callable[[Any, Response], str | None],
        on_latency: Callable[[Any, float], None] | None = None,
    ) -> RunResult:
        return await run_requests(
            self.connections,
            items,
            build,
            check,
            server_cpu=self._server_cpu,
            on_latency=on_latency,
        )

    def _server_cpu(self) -> float:
        return tree_cpu_seconds(self.server_pid) if self.server_pid is not None else 0.0

    @contextlib.asynccontextmanager
    async def _watch(self, phase: str) -> AsyncIterator[None]:
        if self.rss is None:
            yield
        else:
            async with self.rss.watch(phase):
                yield

    async def _get_json(self, request: Request) -> tuple[int, Any]:
        response = await self.connections[0].send(request)
        return response.status, response.json()

    @property
    def created(self) -> list[tuple[int, str]]:
        """(index, id) of every user that was created."""
        return [(i, uid) for i, uid in enumerate(self.user_ids) if uid]

    async def warm_up(self) -> None:
        """Open every connection (not measured)."""

        def check(_item: Any, response: Response) -> str | None:
            return None if response.status == 200 else "expected 200"

        run = await self._run(
            range(len(self.connections)),
            lambda _i: self._okta("GET", "/ServiceProviderConfig"),
            check,
        )
        if run.errors:
            raise RuntimeError(f"the gateway does not answer: {run.problems}")

    def close(self) -> None:
        for conn in self.connections:
            conn.close()

    # --- a: create users

    async def phase_a(self) -> PhaseReport:
        n = self.users
        ids = [""] * n

        def build(i: int) -> Request:
            return self._okta("POST", "/Users", okta_user(i))

        def check(i: int, response: Response) -> str | None:
            if response.status != 201:
                return "expected 201"
            body = response.json()
            if body.get("userName") != user_name(i) or not body.get("id"):
                return "userName or id missing from the answer"
            if "password" in body:
                return "password echoed"
            ids[i] = body["id"]
            return None

        async with self._watch("a"):
            run = await self._run(range(n), build, check)
        report = PhaseReport.from_run("a", "create users (Okta POST /Users)", self.concurrency, run)
        self.user_ids = ids
        for i, uid in self.created:
            body = okta_user(i)
            self.expected[uid] = _Expected(
                True, body["displayName"], body[ENTERPRISE]["department"]
            )
        created = [uid for _i, uid in self.created]
        if len(created) != n:
            report.fail(f"{n - len(created)} of {n} users were not created")
        if len(set(created)) != len(created):
            report.fail("two created users got the same id")
        return report

    # --- b: userName eq lookups

    async def phase_b(self) -> PhaseReport:
        created = self.created
        picks = [created[self.rng.randrange(len(created))] for _ in range(self.users)]

        def build(pick: tuple[int, str]) -> Request:
            return self._okta("GET", "/Users?" + user_name_filter(user_name(pick[0])))

        def check(pick: tuple[int, str], response: Response) -> str | None:
            if response.status != 200:
                return "expected 200"
            body = response.json()
            resources = body.get("Resources") or []
            if body.get("totalResults") != 1 or len(resources) != 1:
                return f"expected exactly 1 result, got {body.get('totalResults')}"
            if resources[0].get("id") != pick[1]:
                return "found another user"
            return None

        run = await self._run(picks, build, check)
        return PhaseReport.from_run(
            "b", "userName eq filter (Okta existence check)", self.concurrency, run
        )

    # --- c: PATCH, Okta deactivation and Entra profile updates

    async def phase_c(self) -> PhaseReport:
        order = self.created
        self.rng.shuffle(order)
        items = [(k, order[k % len(order)]) for k in range(self.users)]

        def build(item: tuple[int, tuple[int, str]]) -> Request:
            k, (i, uid) = item
            if k % 2 == 0:
                return self._okta("PATCH", f"/Users/{uid}", okta_deactivate())
            return self._entra("PATCH", f"/Users/{uid}", entra_profile_patch(i))

        def check(item: tuple[int, tuple[int, str]], response: Response) -> str | None:
            k, (i, uid) = item
            if response.status != 200:
                return "expected 200"
            body = response.json()
            expected = self.expected[uid]
            if k % 2 == 0:
                if body.get("active") is not False:
                    return "user still active"
                expected.active = False
                return None
            values = entra_profile_values(i)
            got = (
                body.get("displayName"),
                (body.get("name") or {}).get("givenName"),
                (body.get("name") or {}).get("familyName"),
                body.get("title"),
                (body.get(ENTERPRISE) or {}).get("department"),
            )
            want = (
                values["displayName"],
                values["givenName"],
                values["familyName"],
                values["title"],
                values["department"],
            )
            if got != want:
                return f"answer shows {got}, expected {want}"
            expected.display_name = values["displayName"]
            expected.department = values["department"]
            return None

        run = await self._run(items, build, check)
        return PhaseReport.from_run(
            "c", "PATCH: Okta deactivate / Entra 5-op replace", self.concurrency, run
        )

    # --- d: paging, as Okta import does

    async def phase_d(self) -> PhaseReport:
        conn = self.connections[0]
        run = RunResult()
        seen: Counter[str] = Counter()
        mismatched = 0
        report = PhaseReport("d", "page through users (count=100, sequential)", 1)
        start_index, total = 1, None
        pages: list[tuple[float, int]] = []  # (latency in seconds, users on the page)
        server_before = self._server_cpu()
        cpu_before = time.process_time()
        started = time.perf_counter()
        async with self._watch("d"):
            while total is None or start_index <= total:
                request = self._okta("GET", f"/Users?startIndex={start_index}&count={PAGE}")
                t0 = time.perf_counter()
                response = await conn.send(request)
                latency = time.perf_counter() - t0
                run.latencies.append(latency)
                if response.status != 200:
                    run.add_problem(f"startIndex={start_index} -> {response.status}")
                    break
                body = response.json()
                resources = body.get("Resources") or []
                pages.append((latency, len(resources)))
                total = body.get("totalResults")
                if not isinstance(total, int):
                    run.add_problem(f"startIndex={start_index}: totalResults {total!r}")
                    break
                if body.get("itemsPerPage") != len(resources):
                    report.fail(f"startIndex={start_index}: itemsPerPage != len(Resources)")
                if body.get("startIndex") != start_index:
                    report.fail(f"startIndex={start_index}: answer says {body.get('startIndex')}")
                for resource in resources:
                    uid = resource.get("id")
                    seen[uid] += 1
                    want = self.expected.get(uid)
                    if want is not None and (
                        resource.get("active") is not want.active
                        or resource.get("displayName") != want.display_name
                        or (resource.get(ENTERPRISE) or {}).get("department") != want.department
                    ):
                        mismatched += 1
                if not resources:
                    break
                start_index += PAGE
        run.elapsed = time.perf_counter() - started
        run.client_cpu = time.process_time() - cpu_before
        run.server_cpu = self._server_cpu() - server_before
        problems = report.problems
        report.add_run(run)
        for problem in problems:
            report.fail(problem)
        created = {uid for _i, uid in self.created}
        missing = created - set(seen)
        twice = [uid for uid, n in seen.items() if n > 1]
        foreign = set(seen) - created
        if total != len(created):
            report.fail(f"totalResults {total}, {len(created)} users were created")
        if missing:
            report.fail(f"{len(missing)} created users never seen")
        if twice:
            report.fail(f"{len(twice)} users seen more than once")
        if foreign:
            report.fail(f"{len(foreign)} users that this run did not create")
        if mismatched:
            report.fail(f"{mismatched} users do not show the state phases a and c imply")
        report.extra["pages_per_s"] = round(report.rps, 1)
        report.extra["users_per_s"] = round(sum(seen.values()) / run.elapsed, 1)
        report.extra.update(_first_and_last_pages(pages))
        return report

    # --- e: groups

    async def phase_e(self) -> list[PhaseReport]:
        created = self.created
        count = self.groups.count or max(1, math.ceil(self.users / 1000))
        size = min(len(created), self.groups.members or self.users)
        members = [(uid, user_name(i)) for i, uid in created[:size]]
        c = self.concurrency
        reports = []

        # create
        ids = [""] * count

        def check_create(g: int, response: Response) -> str | None:
            if response.status != 201:
                return "expected 201"
            body = response.json()
            if body.get("members", []) != []:
                return "a new group has members"
            ids[g] = body["id"]
            return None

        run = await self._run(
            range(count), lambda g: self._okta("POST", "/Groups", group_body(g)), check_create
        )
        reports.append(PhaseReport.from_run("e.create", "create groups", c, run))
        self.group_ids = [gid for gid in ids if gid]
        groups = list(range(len(self.group_ids)))
        self.group_members = [set() for _ in groups]

        # add members in batches of 100, interleaving groups
        batches = [members[i : i + ADD_BATCH] for i in range(0, len(members), ADD_BATCH)]
        adds = [(g, b) for b in range(len(batches)) for g in groups]

        def build_add(item: tuple[int, int]) -> Request:
            g, b = item
            return self._okta("PATCH", f"/Groups/{self.group_ids[g]}", members_add(batches[b]))

        def check_add(item: tuple[int, int], response: Response) -> str | None:
            if response.status not in (200, 204):
                return "expected 204 (or 200)"
            g, b = item
            self.group_members[g].update(uid for uid, _name in batches[b])
            return None

        # the k-th batch into a group lands when the group holds k * 100 members
        add_latencies: list[tuple[int, float]] = []
        run = await self._run(
            adds,
            build_add,
            check_add,
            on_latency=lambda item, s: add_latencies.append((item[1] * ADD_BATCH, s)),
        )
        add = PhaseReport.from_run("e.add", f"PATCH add {ADD_BATCH} members per request", c, run)
        add.extra.update(_add_by_size(add_latencies, size))
        reports.append(add)
        if self.groups.add_probe > 0:
            largest = max(groups, key=lambda g: len(self.group_members[g]), default=None)
            reports.append(await self._add_probe(largest))

        # GET with and without members
        gets = (
            [k % len(groups) for k in range(max(self.groups.gets, len(groups)))] if groups else []
        )

        def check_full(g: int, response: Response) -> str | None:
            if response.status != 200:
                return "expected 200"
            got = [m.get("value") for m in response.json().get("members") or []]
            if len(got) != len(self.group_members[g]) or set(got) != self.group_members[g]:
                return f"{len(got)} members, expected {len(self.group_members[g])}"
            return None

        def check_excluded(g: int, response: Response) -> str | None:
            if response.status != 200:
                return "expected 200"
            body = response.json()
            if "members" in body:
                return "members returned despite excludedAttributes=members"
            return None if body.get("id") == self.group_ids[g] else "another group"

        run = await self._run(
            gets, lambda g: self._okta("GET", f"/Groups/{self.group_ids[g]}"), check_full
        )
        reports.append(
            PhaseReport.from_run("e.get", f"GET group with {len(members)} members", c, run)
        )
        # At least 1,000 of these cheap GETs: a handful would only measure how long the
        # server takes to finish sending the full groups just before.
        excluded_gets = [k % len(groups) for k in range(max(len(gets), 1000))] if groups else []
        run = await self._run(
            excluded_gets,
            lambda g: self._okta("GET", f"/Groups/{self.group_ids[g]}?excludedAttributes=members"),
            check_excluded,
        )
        reports.append(PhaseReport.from_run("e.get-excl", "GET group, members excluded", c, run))

        # single-member removes by value filter, interleaving groups
        per_group = [
            self.rng.sample(sorted(self.group_members[g]), self._removals(len(members)))
            for g in groups
        ]
        removes = [
            (g, per_group[g][r]) for r in range(max(map(len, per_group), default=0)) for g in groups
        ]

        def check_remove(item: tuple[int, str], response: Response) -> str | None:
            if response.status not in (200, 204):
                return "expected 204 (or 200)"
            g, uid = item
            self.group_members[g].discard(uid)
            return None

        run = await self._run(
            removes,
            lambda item: self._okta(
                "PATCH", f"/Groups/{self.group_ids[item[0]]}", member_remove(item[1])
            ),
            check_remove,
        )
        reports.append(
            PhaseReport.from_run("e.remove", 'PATCH remove members[value eq "..."]', c, run)
        )

        # read back: the member counts must be exact
        final: dict[int, list[str]] = {}

        def check_final(g: int, response: Response) -> str | None:
            if response.status != 200:
                return "expected 200"
            final[g] = [m.get("value") for m in response.json().get("members") or []]
            return None

        run = await self._run(
            groups,
            lambda g: self._okta("GET", f"/Groups/{self.group_ids[g]}?attributes=members"),
            check_final,
        )
        verify = PhaseReport.from_run("e.verify", "GET ?attributes=members, compare", c, run)
        for g in groups:
            got = final.get(g)
            if got is None:
                continue
            want = self.group_members[g]
            if len(got) != len(set(got)):
                verify.fail(f"group {g}: a member is listed twice")
            if set(got) != want:
                lost = len(want - set(got))
                extra = len(set(got) - want)
                verify.fail(
                    f"group {g}: {len(got)} members, expected {len(want)} "
                    f"({lost} missing, {extra} unexpected)"
                )
        verify.extra["members_per_group"] = [len(final.get(g, [])) for g in groups]
        reports.append(verify)
        if len(self.group_ids) != count:
            reports[0].fail(f"{count - len(self.group_ids)} of {count} groups were not created")
        return reports

    async def _add_probe(self, large: int | None) -> PhaseReport:
        """Add 100 members to a ~1,000-member group and to the largest group of e.add,
        one PATCH at a time on one connection (no queueing), K times each, alternating.

        Each timed add re-adds 100 members that an untimed remove PATCH took out just
        before, so every group ends with the members it had: e.verify's expectations and
        phase f are unchanged. The small group is a group of its own, filled (untimed)
        with the first 1,000 users."""
        report = PhaseReport("e.add-probe", f"PATCH add {ADD_BATCH}, small vs large group", 1)
        run = RunResult()
        if large is None:
            report.fail("no group to probe (e.create created none)")
            return report
        names = {uid: user_name(i) for i, uid in self.created}
        small_members = [(uid, names[uid]) for _i, uid in self.created[:SMALL_GROUP]]
        body = group_body(0, "Bench Add Probe")
        response, _ = await self._send_probe(run, self._okta("POST", "/Groups", body), 201)
        if response is None:
            report.add_run(run)
            return report
        probe_id = self.probe_group_id = str(response.json()["id"])
        small: set[str] = set()
        for i in range(0, len(small_members), ADD_BATCH):
            batch = small_members[i : i + ADD_BATCH]
            request = self._okta("PATCH", f"/Groups/{probe_id}", members_add(batch))
            if (await self._send_probe(run, request, 200, 204))[0] is not None:
                small.update(uid for uid, _name in batch)

        rng = random.Random(PROBE_SEED)
        small_latencies: list[float] = []
        large_latencies: list[float] = []
        targets = (
            (probe_id, small, small_latencies),
            (self.group_ids[large], self.group_members[large], large_latencies),
        )
        client_cpu = server_cpu = 0.0
        for _ in range(self.groups.add_probe):
            for gid, members, latencies in targets:
                picked = rng.sample(sorted(members), min(ADD_BATCH, len(members)))
                if not picked:
                    continue
                batch = [(uid, names[uid]) for uid in picked]
                request = self._okta("PATCH", f"/Groups/{gid}", members_remove(batch))
                if (await self._send_probe(run, request, 200, 204))[0] is None:
                    continue
                members.difference_update(picked)
                request = self._okta("PATCH", f"/Groups/{gid}", members_add(batch))
                cpu_before, server_before = time.process_time(), self._server_cpu()
                response, latency = await self._send_probe(run, request, 200, 204)
                client_cpu += time.process_time() - cpu_before
                server_cpu += self._server_cpu() - server_before
                latencies.append(latency)
                run.latencies.append(latency)
                if response is not None:
                    members.update(picked)
        run.elapsed = sum(run.latencies)
        run.client_cpu, run.server_cpu = client_cpu, server_cpu

        # read back the probe group (e.verify checks the large one)
        request = self._okta("GET", f"/Groups/{probe_id}?attributes=members")
        response, _ = await self._send_probe(run, request, 200)
        report.add_run(run)
        if response is not None:
            got = [m.get("value") for m in response.json().get("members") or []]
            if len(got) != len(small) or set(got) != small:
                report.fail(f"probe group: {len(got)} members, expected {len(small)}")
        small_size, large_size = len(small), len(self.group_members[large])
        report.title = f"PATCH add {ADD_BATCH}: {small_size:,} vs {large_size:,} members"
        small_ms, large_ms = _median_ms(small_latencies), _median_ms(large_latencies)
        note = None
        if large_size <= small_size:
            note = (
                f"the largest group holds {large_size:,} members, no more than the small "
                f"group's {small_size:,}: nothing to compare (needs more than {SMALL_GROUP:,})"
            )
        report.extra.update(
            {
                "probe_adds": self.groups.add_probe,
                # fewer only in runs too small to compare (large_over_small is null)
                "members_per_add": min(ADD_BATCH, small_size, large_size),
                "small_group_members": small_size,
                "large_group_members": large_size,
                "small_p50_ms": small_ms,
                "large_p50_ms": large_ms,
                "large_over_small": None if note else _ratio(large_ms, small_ms),
                "scale_note": note,
            }
        )
        return report

    async def _send_probe(
        self, run: RunResult, request: Request, *expected: int
    ) -> tuple[Response | None, float]:
        """One request on the first connection: the answer (``None`` when it was not one
        of the ``expected`` statuses, recorded as an error) and its latency."""
        started = time.perf_counter()
        try:
            response = await self.connections[0].send(request)
        except (HttpError, OSError) as exc:
            run.add_problem(f"{request.method} {request.path[:80]}: {exc}")
            return None, time.perf_counter() - started
        latency = time.perf_counter() - started
        if response.status not in expected:
            detail = response.body[:200].decode("utf-8", "replace")
            run.add_problem(f"{request.method} {request.path[:80]} -> {response.status} {detail}")
            return None, latency
        return response, latency

    def _removals(self, size: int) -> int:
        fraction = self.groups.remove_fraction
        if size == 0 or fraction <= 0:
            return 0
        return min(size, max(1, round(size * fraction)))

    # --- f: delete everything

    async def phase_f(self) -> PhaseReport:
        items = [("Groups", gid) for gid in self.group_ids]
        if self.probe_group_id is not None:
            items.append(("Groups", self.probe_group_id))
        items += [("Users", uid) for _i, uid in self.created]

        def build(item: tuple[str, str]) -> Request:
            kind, rid = item
            if kind == "Groups":  # Okta deletes pushed groups; Entra hard-deletes users
                return self._okta("DELETE", f"/Groups/{rid}")
            return self._entra("DELETE", f"/Users/{rid}")

        def check(_item: tuple[str, str], response: Response) -> str | None:
            return None if response.status == 204 else "expected 204"

        run = await self._run(items, build, check)
        report = PhaseReport.from_run("f", "DELETE groups, then users", self.concurrency, run)
        for kind in ("Users", "Groups"):
            status, body = await self._get_json(self._okta("GET", f"/{kind}?count=1"))
            left = body.get("totalResults") if isinstance(body, dict) else None
            if status != 200 or left != 0:
                report.fail(f"after the deletes, GET /{kind} -> {status}, totalResults {left}")
        return report


# --- scale figures ----------------------------------------------------------------------


def _median_ms(latencies: Sequence[float]) -> float | None:
    return round(statistics.median(latencies) * 1000, 3) if latencies else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def _first_and_last_pages(pages: list[tuple[float, int]]) -> dict[str, Any]:
    """Median latency of the first and of the last full pages of phase d (a short final
    page is left out), at most ``COMPARED_PAGES`` each and never the same page twice."""
    full = [latency for latency, users in pages if users == PAGE]
    k = min(COMPARED_PAGES, len(full) // 2)
    first, last = _median_ms(full[:k]), _median_ms(full[len(full) - k :])
    note = None
    if k == 0:
        note = (
            f"{len(full)} full page(s) of {PAGE} users: comparing the first and last pages "
            f"needs at least 2 (N >= {2 * PAGE})"
        )
    return {
        "full_pages": len(full),
        "pages_compared": k,
        "first_pages_ms": first,
        "last_pages_ms": last,
        "last_over_first": _ratio(last, first),
        "scale_note": note,
    }


def _add_by_size(samples: list[tuple[int, float]], size: int) -> dict[str, Any]:
    """Median latency of e.add's PATCHes by the size of the group they land in: "small"
    (at most ``SMALL_GROUP`` members before the batch) and "large" (at least
    ``LARGE_SHARE`` of the final size), the latter only for groups of 10 x
    ``SMALL_GROUP`` members or more, where the two cannot overlap."""
    large_from = math.ceil(LARGE_SHARE * size)
    small = [latency for before, latency in samples if before <= SMALL_GROUP]
    large = [latency for before, latency in samples if before >= large_from]
    note = None
    if not samples:
        note = "no member was added"
    elif size < 10 * SMALL_GROUP:
        note = (
            f"groups of {size:,} members: 'large' (>= {LARGE_SHARE:.0%} of the final size) "
            f"needs groups of {10 * SMALL_GROUP:,} or more, 10 x 'small' (<= {SMALL_GROUP:,})"
        )
        large = []
    small_ms, large_ms = _median_ms(small), _median_ms(large)
    return {
        "add_ms_by_size": {
            "small": small_ms,
            "large": large_ms,
            "small_requests": len(small),
            "large_requests": len(large),
            "small_max_members": SMALL_GROUP,
            "large_min_members": large_from if large else None,
        },
        "large_over_small": _ratio(large_ms, small_ms),
        "scale_note": note,
    }
