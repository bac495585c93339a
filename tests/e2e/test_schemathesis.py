"""Schemathesis against a real ``scim-gateway serve``: every operation of the gateway's
OpenAPI document (``/admin/v1/openapi.json``) with generated and boundary-value
requests, checked for server errors (no ``5xx``) and for responses that do not match
the document.

Two runs, each with its own team: the SCIM API with a SCIM key, and the admin API
with the operator token (``admin.token_sha256``); they are different credentials for
different paths, named in the document's security schemes. Path parameters are drawn
now and then from the ids that exist (a user, a group, the team's slug and key), so
requests also reach real resources. The run is bounded: ``--max-examples`` per
operation (15, or ``SCIM_GATEWAY_FUZZ_EXAMPLES``), a fixed seed unless that variable
is set, and a time limit on the whole process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.keys import parse_key
from tests.conftest import GROUP_SCHEMA, SCIM, USER_SCHEMA
from tests.e2e.conftest import (
    Served,
    clean_environment,
    free_port,
    provision_key,
    serve,
    write_config,
)

pytestmark = pytest.mark.e2e

FUZZ = int(os.environ.get("SCIM_GATEWAY_FUZZ_EXAMPLES", "0"))
MAX_EXAMPLES = FUZZ or 15
RUN_TIMEOUT = 600.0 if FUZZ else 240.0
CHECKS = "not_a_server_error,response_schema_conformance"

# Values that have broken parsers, drivers and databases elsewhere, drawn now and then
# instead of generated ones (a fuzzing dictionary): numbers past 32 and 64 bits, text
# PostgreSQL cannot store, SQL, dates that leave the calendar in UTC, filters at and
# past the limits.
EDGE_NUMBERS = [0, -1, 2**31, 2**63, 1278005395470099370999808]
FILTERS = [
    'userName eq "\\u0000"',
    'userName sw "\\ud800"',
    'userName eq "x\' OR 1=1 --"',
    'meta.created gt "0001-01-01T00:00:00+01:00"',
    'emails[value co "%" and type eq "\\udc00"]',
    "(" * 51 + "userName pr" + ")" * 51,
    " or ".join(["title pr"] * 201),
]
NAMES = ["userName; DROP TABLE scim_user", "userName,(select 1)", "emails.value", "a" * 5000]


@dataclass
class Fuzzed:
    """A gateway to fuzz, the credentials for it and ids that exist on it."""

    served: Served
    operator_token: str
    admin_team: str
    admin_key_id: str
    user_id: str
    group_id: str
    workdir: Path


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def fuzzed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fuzzed]:
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    else:
        database_url = request.getfixturevalue("postgres_url")
    operator_token = "op-" + secrets.token_urlsafe(24)
    config = write_config(tmp_path / "gateway.toml", database_url=database_url)
    with config.open("a", encoding="utf-8") as file:
        digest = hashlib.sha256(operator_token.encode()).hexdigest()
        # No rate limits (write_config's default): a fuzzer sends as fast as it can.
        file.write(f'\n[admin]\ntoken_sha256 = "{digest}"\n')
    team = "fuzz-" + uuid.uuid4().hex[:12]
    key = provision_key(config, team)
    admin_team = "fuzz-admin-" + uuid.uuid4().hex[:8]
    admin_key = provision_key(config, admin_team)
    for served in serve(
        tmp_path,
        args=["serve", "--config", str(config), "--port", str(free_port())],
        env=clean_environment(),
        token=key,
        team=team,
    ):
        with served.client() as client:
            headers = {"Content-Type": SCIM}
            user = client.post(
                "/Users",
                json={"schemas": [USER_SCHEMA], "userName": "fuzz@example.com"},
                headers=headers,
            )
            group = client.post(
                "/Groups",
                json={
                    "schemas": [GROUP_SCHEMA],
                    "displayName": "Fuzzers",
                    "members": [{"value": user.json()["id"]}],
                },
                headers=headers,
            )
            assert group.status_code == 201, group.text
        yield Fuzzed(
            served,
            operator_token,
            admin_team,
            parse_key(admin_key),
            user.json()["id"],
            group.json()["id"],
            tmp_path,
        )


def schemathesis_command() -> list[str]:
    script = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if script is not None:
        return [script]
    return [sys.executable, "-m", "schemathesis.cli"]


def toml_string(value: str) -> str:
    return json.dumps(value)  # an ASCII JSON string is a TOML basic string


def operations(served: Served, paths: str) -> int:
    """How many operations the served document describes under ``paths``."""
    document = httpx.get(f"{served.root}/admin/v1/openapi.json", timeout=30.0).json()
    methods = {"get", "put", "post", "delete", "patch"}
    return sum(
        len(methods & set(item))
        for path, item in document["paths"].items()
        if re.match(paths, path)
    )


def run_schemathesis(fuzzed: Fuzzed, *, paths: str, ids: list[str], name: str) -> None:
    """Run Schemathesis on the operations whose path matches ``paths`` and assert that
    it tested every one of them and found nothing."""
    served = fuzzed.served
    config = fuzzed.workdir / f"schemathesis-{name}.toml"
    bindings = {f"path.{name}": "ids" for name in ("id", "slug", "key_id")}
    for where in ("query", "body"):
        bindings |= {f"{where}.startIndex": "numbers", f"{where}.count": "numbers"}
        bindings |= {f"{where}.filter": "filters", f"{where}.sortBy": "names"}
    bindings |= {"query.attributes": "names", "query.excludedAttributes": "names"}
    dictionaries: dict[str, list[Any]] = {"ids": ids, "numbers": EDGE_NUMBERS}
    dictionaries |= {"filters": FILTERS, "names": NAMES}
    config = fuzzed.workdir / f"schemathesis-{name}.toml"
    config.write_text(
        "[auth.openapi.operatorToken]\n"
        f"bearer = {toml_string(fuzzed.operator_token)}\n"
        "[auth.openapi.scimKey]\n"
        f"bearer = {toml_string(served.token or '')}\n"
        + "".join(
            f"[dictionaries.{key}]\nvalues = {json.dumps(values)}\n"
            for key, values in dictionaries.items()
        )
        + "[parameters]\n"
        + "".join(
            f"{toml_string(key)} = {{ dictionary = {toml_string(bound)}, probability = 0.5 }}\n"
            for key, bound in bindings.items()
        ),
        encoding="utf-8",
    )
    command = [
        *schemathesis_command(),
        "--config-file",
        str(config),
        "run",
        f"{served.root}/admin/v1/openapi.json",
        "--include-path-regex",
        paths,
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    if not FUZZ:
        command += ["--seed", "20240501"]
    result = subprocess.run(
        command,
        cwd=fuzzed.workdir,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"Schemathesis found problems:\n{output[-20000:]}"
    selected = re.search(r"Selected: (\d+)/\d+\s+Tested: (\d+)", output)
    assert selected is not None, output[-5000:]
    assert int(selected.group(1)) == int(selected.group(2)) == operations(served, paths)
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated is not None and int(generated.group(1)) > 0, output[-5000:]
    assert "unhandled error" not in served.stderr(), served.stderr()[-5000:]


def test_no_scim_operation_is_a_server_error_or_off_the_document(fuzzed: Fuzzed) -> None:
    ids = [fuzzed.user_id, fuzzed.group_id, "User", "Group", USER_SCHEMA, GROUP_SCHEMA]
    run_schemathesis(fuzzed, paths="^/scim/v2/", ids=ids, name="scim")
    with fuzzed.served.client() as client:
        # The team and its key survived the run; the gateway still answers.
        assert client.get("/Users").status_code == 200


def test_no_admin_operation_is_a_server_error_or_off_the_document(fuzzed: Fuzzed) -> None:
    ids = [fuzzed.admin_team, fuzzed.admin_key_id]
    run_schemathesis(fuzzed, paths="^/admin/v1/", ids=ids, name="admin")
    response = httpx.get(
        f"{fuzzed.served.root}/admin/v1/teams",
        headers={"Authorization": f"Bearer {fuzzed.operator_token}"},
        timeout=30.0,
    )
    assert response.status_code == 200, response.text
