"""The README's instructions are part of the product: they run here as written."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no section {heading!r}"
    return match.group(1)


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_quick_start_has_exactly_two_commands() -> None:
    blocks = _code_blocks(_section("Quick start"))
    assert len(blocks) == 2
    start, tests = (block.strip() for block in blocks)
    assert "\n" not in start and "scim-gateway serve" in start and "pip install" in start
    assert "\n" not in tests and "pytest" in tests and ".[test]" in tests


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _code_blocks(_section("Quick start"))[1].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("openssl") is None, reason="the walkthrough uses openssl")
def test_from_zero_to_a_working_scim_key(tmp_path: Path) -> None:
    """Runs the walkthrough block line by line as a newcomer would paste it."""
    [block] = _code_blocks(_section("From zero to a working SCIM key"))
    port = str(_free_port())
    script = block.replace("8000", port)  # the only change: a port free on this machine
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_GATEWAY_")}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The last two outputs: the created user, then the list holding it.
    decoder = json.JSONDecoder()
    documents, text = [], result.stdout[result.stdout.index('{"schemas"') :].strip()
    while text:
        doc, end = decoder.raw_decode(text)
        documents.append(doc)
        text = text[end:].strip()
    created, listing = documents[-2:]
    assert created["userName"] == "ada@acme.example"
    assert listing["totalResults"] == 1
    assert listing["Resources"][0]["id"] == created["id"]
    assert "Created team acme" in result.stdout
    assert "SCIM provisioning is on for team acme" in result.stdout
