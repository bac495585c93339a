"""RFC 7643/7644 conformance of a real gateway process, checked by scim2-tester.

scim2-tester discovers the server from its ServiceProviderConfig, ResourceTypes and
Schemas, then creates, reads, queries, replaces, patches and deletes every resource
type it found, grading each behaviour against the RFCs' MUST and SHOULD. A MUST the
gateway breaks is an ERROR; a security or protocol breakage is CRITICAL. Neither is
allowed here, and no check is excluded.
"""

from __future__ import annotations

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from tests.e2e.conftest import Served

FAILING = (Status.ERROR, Status.CRITICAL)


def describe(result: CheckResult) -> str:
    where = f"[{result.resource_type}] " if result.resource_type else ""
    data = repr(result.data)
    if len(data) > 600:
        data = data[:600] + "..."
    return f"{result.status.name} {where}{result.title}: {result.reason}\n    data: {data}"


@pytest.mark.e2e
def test_scim2_tester_finds_no_rfc_violation(gateway: Served) -> None:
    headers = {"Authorization": f"Bearer {gateway.token}"}
    with httpx2.Client(base_url=gateway.base_url + "/", headers=headers, timeout=30.0) as http:
        results = check_server(SyncSCIMClient(http))

    statuses = {result.status for result in results}
    # The checker reached the resource endpoints, not only discovery.
    titles = {result.title for result in results if result.status == Status.SUCCESS}
    failures = [result for result in results if result.status in FAILING]
    assert not failures, f"{len(failures)} of {len(results)} checks failed:\n" + "\n".join(
        describe(result) for result in failures
    )
    assert Status.SUCCESS in statuses
    assert {"object_creation", "object_query", "object_replacement", "object_deletion"} <= titles
