"""The races of ``tests/test_concurrency.py``, split over two gateway processes.

Two ``scim-gateway serve`` processes share one database, the way two hosts behind a
load balancer do; each race sends half of its clients to each process, so nothing a
process keeps in memory can decide who wins. On PostgreSQL this is the deployment
the gateway documents; on SQLite the two processes contend for the same file.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.test_concurrency import (
    BACKENDS,
    Deployment,
    database_for,
    race_delete_and_remove,
    race_group_members,
    race_if_match_put,
    race_same_user_name,
    start_servers,
)

pytestmark = pytest.mark.e2e

PROCESSES = 2


@pytest.fixture(scope="module", params=BACKENDS)
def two_processes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Two gateway processes on one database, on each backend."""
    workdir = tmp_path_factory.mktemp("two-processes")
    yield from start_servers(workdir, database_for(request, workdir), PROCESSES)


def test_one_user_name_raced_through_two_processes_is_created_once(
    two_processes: Deployment,
) -> None:
    race_same_user_name(two_processes)


def test_member_changes_through_two_processes_all_land_exactly_once(
    two_processes: Deployment,
) -> None:
    race_group_members(two_processes)


def test_puts_with_one_if_match_version_through_two_processes_have_one_winner(
    two_processes: Deployment,
) -> None:
    race_if_match_put(two_processes)


def test_deletes_and_member_removals_through_two_processes_never_deadlock(
    two_processes: Deployment,
) -> None:
    race_delete_and_remove(two_processes)
