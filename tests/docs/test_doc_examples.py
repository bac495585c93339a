"""The guides are part of the product: every example in them runs here, in order.

Each page in :data:`PAGES` runs from top to bottom against a real ``scim-gateway
serve`` process (on SQLite, and on PostgreSQL when it is configured), starting from
a directory with a ``gateway.toml`` and a team ``acme`` whose SSO is configured and
whose SCIM provisioning is off. An example that no longer matches what the gateway
does fails the test with a message naming the page, the line, the example and what
differs.

What a fenced block means on these pages (anything else is refused):

``console``
    Lines starting with ``$ `` are commands (a trailing ``\\`` continues one), run with
    bash in the page's directory with the gateway's ``scim-gateway`` on ``PATH``; the
    lines after a command are its expected output (stdout and stderr together). Every
    command must succeed. A plain ``scim-gateway ...`` command (no pipe, redirection or
    variable) runs through the console script's entry point in the test process,
    which saves an interpreter start per command. ``$ scim-gateway --config
    gateway.toml serve`` (re)starts the page's gateway process, on a free port, and
    waits until it answers.
``sh``
    A script that must succeed; its output is not checked.
``http``
    A request (``METHOD /path HTTP/1.1``, headers, a blank line, the body, sent byte
    for byte), and the next block, another ``http`` block, is the response expected:
    ``HTTP/1.1 <status> <reason>``, the headers that must be present, and the body. An
    empty body means none; ``...`` alone means any.
``sql`` then ``text``
    A query run on the page's database, and the rows it must return, as a table:
    a header line, optionally a ``---+---`` line, then one line per row, cells
    separated by ``|``; ``NULL`` for null; ``true``/``false`` also match 1/0.
``toml gateway.toml``
    Merged into the page's ``gateway.toml`` (which must then still load); takes effect
    when the page restarts the gateway, as it would for a reader.
``toml``
    A configuration example: it must be one the gateway accepts.
``json``
    A JSON document (it must parse).

In expected output, headers, bodies and table cells:

* ``<any>`` matches anything (a whole JSON value when it is one);
  ``<timestamp>`` matches an ISO 8601 date and time;
* ``{{name}}`` captures what stands there the first time it appears on a page, and
  must equal that value afterwards; requests, commands and queries use it the same
  way (``Authorization: Bearer {{key}}``, ``/scim/v2/Users/{{ada.id}}``);
* ``...`` in a JSON body allows more members in that object, or more elements after
  those shown in that array; a ``...`` line in console output matches any lines.

Two addresses stand for the reader's own: ``https://scim.example.com`` (the gateway;
the page's config sets it as ``server.base_url``, and commands reach the running
process there) and ``postgresql://scim@db.internal:5432/scim`` (the page's database,
in commands of PostgreSQL runs).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Generator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.cli import main as cli_main
from gateway.config import (
    ConfigError,
    DatabaseSettings,
    LimitSettings,
    Settings,
    load_settings,
)
from gateway.config import settings_from_dict as config_from_dict
from gateway.store.db import make_engine
from tests.docs.conftest import prepare_team
from tests.e2e.conftest import Served, clean_environment, free_port, serve, write_config

ROOT = Path(__file__).resolve().parents[2]

PAGES = (
    "docs/idp/okta.md",
    "docs/idp/entra.md",
    "docs/idp/onelogin.md",
    "docs/idp/generic.md",
    "docs/scim-api.md",
    "docs/operators.md",
)

PUBLIC_ROOT = "https://scim.example.com"
DOC_DATABASE_URL = "postgresql://scim@db.internal:5432/scim"
BACKENDS = ("sqlite", "postgres")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
SERVE = re.compile(r"scim-gateway\s(?:.*\s)?serve(?:\s|$)")
COMMAND_TIMEOUT = 120

MORE = "\u2026more\u2026"
"""What ``...`` becomes inside a JSON pattern."""

_TOKEN = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}|<any>|<timestamp>")
_TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"
_FENCE = re.compile(r"^( *)(`{3,})\s*(.*)$")


class DocFormatError(Exception):
    """A page breaks the example format; the message names the place."""


class Mismatch(AssertionError):
    """What the gateway did differs from what the page shows."""


# --- reading pages ----------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    """Line of the opening fence (1-based)."""
    lang: str
    words: tuple[str, ...]
    text: str
    heading: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass(frozen=True)
class Example:
    number: int
    kind: str
    block: Block
    expected: Block | None = None

    @property
    def name(self) -> str:
        return f'{self.block.where}, example {self.number} (under "{self.block.heading}")'

    def runs_on(self, backend: str) -> bool:
        only = [w for w in self.block.words if w in BACKENDS]
        return not only or backend in only


def read_blocks(page: str, source: str) -> list[Block]:
    """The fenced blocks of a Markdown page, with the heading each one is under."""
    blocks: list[Block] = []
    lines = source.splitlines()
    heading = "(top of the page)"
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            if re.match(r"#{1,6} ", lines[i]):
                heading = lines[i].lstrip("#").strip()
            i += 1
            continue
        indent, fence, info = opening.group(1), opening.group(2), opening.group(3).split()
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != fence:
            # A block inside a list item is indented; its text is not.
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise DocFormatError(f"{page}:{start + 1}: the code block is never closed")
        lang = info[0] if info else ""
        blocks.append(Block(page, start + 1, lang, tuple(info[1:]), "\n".join(body), heading))
        i += 1
    return blocks


def read_examples(page: str, source: str | None = None) -> list[Example]:
    """The page's examples, in order, each paired with what it must produce."""
    if source is None:
        source = (ROOT / page).read_text(encoding="utf-8")
    blocks = read_blocks(page, source)
    examples: list[Example] = []
    i = 0
    while i < len(blocks):
        block = blocks[i]
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        number = len(examples) + 1
        if block.lang == "http":
            if not block.text.startswith(METHODS):
                raise DocFormatError(
                    f"{block.where}: an http block must be a request "
                    f"(METHOD /path HTTP/1.1) or follow one as its response"
                )
            if (
                following is None
                or following.lang != "http"
                or not following.text.startswith("HTTP/")
            ):
                raise DocFormatError(
                    f"{block.where}: the request must be followed by an http block with the "
                    "response (HTTP/1.1 <status> ...)"
                )
            examples.append(Example(number, "request", block, following))
            i += 2
            continue
        if block.lang == "sql":
            if following is None or following.lang != "text":
                raise DocFormatError(
                    f"{block.where}: a sql query must be followed by a text block with its rows"
                )
            examples.append(Example(number, "sql", block, following))
            i += 2
            continue
        if block.lang == "toml":
            kind = "config" if "gateway.toml" in block.words else "toml"
            examples.append(Example(number, kind, block))
        elif block.lang in ("console", "sh", "json"):
            examples.append(Example(number, block.lang, block))
        else:
            raise DocFormatError(
                f"{block.where}: a {block.lang or 'plain'!r} code block cannot be checked; use "
                "console, sh, http, sql + text, toml or json (see tests/docs/test_doc_examples.py)"
            )
        i += 1
    return examples


# --- matching ---------------------------------------------------------------------------


def _template(pattern: str, values: dict[str, str]) -> tuple[re.Pattern[str], dict[str, str]]:
    """A regex for a text with placeholders, and which group captures which name."""
    parts: list[str] = []
    groups: dict[str, str] = {}
    position = 0
    for token in _TOKEN.finditer(pattern):
        parts.append(re.escape(pattern[position : token.start()]))
        name = token.group(1)
        if token.group(0) == "<any>":
            parts.append(r"[\s\S]*")
        elif token.group(0) == "<timestamp>":
            parts.append(_TIMESTAMP)
        elif name in values:
            parts.append(re.escape(values[name]))
        elif name in groups:
            parts.append(f"(?P={groups[name]})")
        else:
            groups[name] = f"g{len(groups)}"
            parts.append(f"(?P<{groups[name]}>.+?)")
        position = token.end()
    parts.append(re.escape(pattern[position:]))
    return re.compile("".join(parts)), groups


def match_text(pattern: str, actual: str, values: dict[str, str]) -> dict[str, str] | None:
    """The names ``actual`` defines if it matches ``pattern``; ``None`` if it does not."""
    regex, groups = _template(pattern, values)
    found = regex.fullmatch(actual)
    if found is None:
        return None
    return {name: found.group(group) for name, group in groups.items()}


def substitute(text: str, values: dict[str, str], where: str) -> str:
    """``text`` with every ``{{name}}`` replaced; an unknown name is a page error."""

    def value(token: re.Match[str]) -> str:
        name = token.group(1)
        if name is None:
            return token.group(0)
        if name not in values:
            known = ", ".join(sorted(values)) or "none yet"
            raise DocFormatError(
                f"{where}: {{{{{name}}}}} is used before an example defines it (defined: {known})"
            )
        return values[name]

    return _TOKEN.sub(value, text)


def load_pattern(text: str) -> Any:
    """A JSON pattern: JSON in which a bare ``...`` stands for "and more"."""
    out: list[str] = []
    stack: list[str] = []
    in_string = False
    i = 0
    while i < len(text):
        char = text[i]
        if in_string:
            out.append(char)
            if char == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif text.startswith("...", i):
            if not stack:
                raise ValueError("'...' must be inside an object or an array")
            sentinel = json.dumps(MORE)
            item = f"{sentinel}: {sentinel}" if stack[-1] == "{" else sentinel
            before = "".join(out).rstrip()[-1:]
            after = text[i + 3 :].lstrip()[:1]
            if before not in (",", "{", "["):
                item = "," + item
            if after not in ("]", "}", ",", ""):
                item += ","
            out.append(item)
            i += 2
        else:
            if char in "{[":
                stack.append(char)
            elif char in "}]" and stack:
                stack.pop()
            out.append(char)
        i += 1
    return json.loads("".join(out))


def match_json(expected: Any, actual: Any, values: dict[str, str], path: str = "$") -> None:
    """Raise :class:`Mismatch` at the first place ``actual`` differs from ``expected``."""
    if expected == "<any>":
        return
    if isinstance(expected, str):
        if not isinstance(actual, str):
            raise Mismatch(f"{path}: expected a string like {expected!r}, got {actual!r}")
        found = match_text(expected, actual, values)
        if found is None:
            raise Mismatch(f"{path}: expected {expected!r}, got {actual!r}")
        values.update(found)
    elif isinstance(expected, dict):
        if not isinstance(actual, dict):
            raise Mismatch(f"{path}: expected an object, got {actual!r}")
        keys = [k for k in expected if k != MORE]
        missing = [k for k in keys if k not in actual]
        if missing:
            raise Mismatch(f"{path}: missing {missing}; the response has {list(actual)}")
        extra = [k for k in actual if k not in keys]
        if extra and MORE not in expected:
            raise Mismatch(f"{path}: the response also has {extra} (add them, or '...')")
        for key in keys:
            match_json(expected[key], actual[key], values, f"{path}.{key}")
    elif isinstance(expected, list):
        if not isinstance(actual, list):
            raise Mismatch(f"{path}: expected an array, got {actual!r}")
        more = bool(expected) and expected[-1] == MORE
        items = expected[:-1] if more else expected
        if MORE in items:
            raise Mismatch(f"{path}: '...' must be the last element of an array")
        if len(actual) < len(items) or (not more and len(actual) != len(items)):
            raise Mismatch(f"{path}: expected {len(items)} element(s), got {len(actual)}")
        for index, item in enumerate(items):
            match_json(item, actual[index], values, f"{path}[{index}]")
    elif isinstance(expected, bool) or isinstance(actual, bool) or expected is None:
        if expected is not actual:
            raise Mismatch(f"{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}")
    elif expected != actual or not isinstance(actual, int | float):
        raise Mismatch(f"{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}")


def match_lines(expected: list[str], actual: list[str], values: dict[str, str]) -> bool:
    """Console output against its expected lines (``...`` = any lines); captures on success."""

    def attempt(e: int, a: int, found: dict[str, str]) -> dict[str, str] | None:
        if e == len(expected):
            return found if a == len(actual) else None
        if expected[e].strip() == "...":
            for skip in range(a, len(actual) + 1):
                result = attempt(e + 1, skip, found)
                if result is not None:
                    return result
            return None
        if a == len(actual):
            return None
        line = match_text(expected[e], actual[a], {**values, **found})
        return None if line is None else attempt(e + 1, a + 1, {**found, **line})

    result = attempt(0, 0, {})
    if result is None:
        return False
    values.update(result)
    return True


def _trimmed(lines: list[str]) -> list[str]:
    lines = [line.rstrip() for line in lines]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


# --- HTTP -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A request or response as written on a page."""

    start: str
    headers: list[tuple[str, str]]
    body: str


def parse_message(text: str) -> Message:
    head, _, body = text.partition("\n\n")
    start, *header_lines = head.splitlines()
    headers = []
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"not a header line: {line!r}")
        headers.append((name.strip(), value.strip()))
    return Message(start.strip(), headers, body.strip("\n"))


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def describe(self) -> str:
        text = self.body.decode("utf-8", errors="replace")
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=4)
        lines = [f"HTTP/1.1 {self.status}", *(f"{k}: {v}" for k, v in self.headers)]
        return "\n".join(lines) + ("\n\n" + text if text else "")


def send(port: int, request: Message) -> Answer:
    """Send the request as written: the target is not re-encoded, the body not re-serialised."""
    method, target, *_version = request.start.split()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        body = request.body.encode("utf-8") if request.body else None
        connection.request(method, target, body=body, headers=dict(request.headers))
        response = connection.getresponse()
        return Answer(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def check_answer(expected: Message, answer: Answer, values: dict[str, str]) -> None:
    """Raise :class:`Mismatch` naming the first difference between answer and page."""
    status = int(expected.start.split()[1])
    if answer.status != status:
        raise Mismatch(f"status {answer.status}, the page shows {status}")
    for name, pattern in expected.headers:
        sent = [v for k, v in answer.headers if k.lower() == name.lower()]
        if not sent:
            raise Mismatch(f"no {name} header")
        found = match_text(pattern, sent[0], values)
        if found is None:
            raise Mismatch(f"{name}: {sent[0]!r}, the page shows {pattern!r}")
        values.update(found)
    if expected.body.strip() == "...":
        return
    if not expected.body.strip():
        if answer.body:
            raise Mismatch("the response has a body; the page shows none")
        return
    try:
        actual = json.loads(answer.body)
    except ValueError:
        raise Mismatch("the response body is not JSON") from None
    match_json(load_pattern(expected.body), actual, values)


# --- one page, run --------------------------------------------------------------------


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """TOML for a config: a table's plain values, then one section per sub-table."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if not _is_table(v)]
    text = "\n".join(lines)
    for key, value in data.items():
        if _is_table(value):
            name = f"{prefix}.{_toml_key(key)}" if prefix else _toml_key(key)
            text += f"\n\n[{name}]\n" + to_toml(value, name)
    return text.strip("\n") + "\n"


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


class PageRun:
    """A page's examples, run in order in one directory against one gateway."""

    def __init__(self, page: str, backend: str, workdir: Path, database_url: str) -> None:
        self.page = page
        self.backend = backend
        self.workdir = workdir
        self.database_url = database_url
        self.values: dict[str, str] = {}
        self.config_path = write_config(workdir / "gateway.toml", database_url=database_url)
        self.config = tomllib.loads(self.config_path.read_text(encoding="utf-8"))
        _merge(self.config, {"server": {"port": free_port(), "base_url": PUBLIC_ROOT}})
        self._write_config()
        prepare_team(self.config_path)
        self.env = clean_environment(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        )
        self._server: Generator[Served, None, None] | None = None
        self.served: Served | None = None
        self._engine: Engine | None = None

    # -- the gateway process

    def start(self, command: str, where: str) -> None:
        self.stop()
        port = free_port()
        _merge(self.config, {"server": {"port": port}})
        self._write_config()
        args = [*shlex.split(command)[1:], "--port", str(port)]
        self._server = cast(
            "Generator[Served, None, None]",
            serve(self.workdir, args=args, env=self.env, token=None, team="acme"),
        )
        try:
            self.served = next(self._server)
        except pytest.fail.Exception as exc:
            raise Mismatch(f"{where}: the gateway did not start: {exc}") from None

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._server = None
        self.served = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def port(self, where: str) -> int:
        if self.served is None:
            raise DocFormatError(
                f"{where}: no gateway is running here; show "
                "`$ scim-gateway --config gateway.toml serve` before this example"
            )
        return int(self.served.root.rsplit(":", 1)[1])

    def _write_config(self) -> None:
        self.config_path.write_text(to_toml(self.config), encoding="utf-8")

    # -- the examples

    def run(self, example: Example) -> None:
        handler = {
            "request": self.request,
            "console": self.console,
            "sh": self.shell,
            "sql": self.sql,
            "config": self.configure,
            "toml": self.check_toml,
            "json": self.check_json,
        }[example.kind]
        handler(example)

    def request(self, example: Example) -> None:
        assert example.expected is not None
        where = example.block.where
        request = parse_message(substitute(example.block.text, self.values, where))
        answer = send(self.port(where), request)
        try:
            check_answer(parse_message(example.expected.text), answer, self.values)
        except Mismatch as exc:
            raise Mismatch(
                f"{request.start}: {exc}\n--- the gateway answered ---\n{answer.describe()}"
            ) from None

    def _command(self, text: str, where: str) -> str:
        command = substitute(text, self.values, where)
        if PUBLIC_ROOT in command:
            command = command.replace(PUBLIC_ROOT, f"http://127.0.0.1:{self.port(where)}")
        if self.backend == "postgres":
            command = command.replace(DOC_DATABASE_URL, self.database_url)
        return command

    def _execute(self, command: str, where: str) -> str:
        output = self._in_process(command, where)
        if output is not None:
            return output
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise Mismatch(
                f"{where}: `{command}` exited with {result.returncode}:\n{result.stdout}"
            )
        return result.stdout

    def _in_process(self, command: str, where: str) -> str | None:
        """A plain ``scim-gateway ...`` command, run by the console script's entry point in
        this process (a second of interpreter start-up less per command); ``None`` for
        anything that needs a shell."""
        words = shlex.split(command)
        if words[:1] != ["scim-gateway"] or any(c in command for c in "|&;<>$`*?~()\n"):
            return None
        hidden = {k: v for k, v in os.environ.items() if k not in clean_environment()}
        buffer = io.StringIO()
        here = Path.cwd()
        try:
            for name in hidden:
                del os.environ[name]
            os.chdir(self.workdir)
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                code = cli_main(words[1:])
        finally:
            os.chdir(here)
            os.environ.update(hidden)
        if code != 0:
            raise Mismatch(f"{where}: `{command}` exited with {code}:\n{buffer.getvalue()}")
        return buffer.getvalue()

    def console(self, example: Example) -> None:
        where = example.block.where
        for command, expected in parse_console(example.block.text, where):
            if SERVE.match(command.strip()):
                if _trimmed(expected):
                    raise DocFormatError(f"{where}: show no output for the serve command")
                self.start(self._command(command, where), where)
                continue
            output = self._execute(self._command(command, where), where)
            actual = _trimmed(output.splitlines())
            if not match_lines(_trimmed(expected), actual, self.values):
                raise Mismatch(
                    f"`$ {command}` printed:\n"
                    + "\n".join(actual)
                    + "\n--- the page shows ---\n"
                    + "\n".join(_trimmed(expected))
                )

    def shell(self, example: Example) -> None:
        where = example.block.where
        self._execute("set -eu\n" + self._command(example.block.text, where), where)

    def sql(self, example: Example) -> None:
        assert example.expected is not None
        where = example.block.where
        if self._engine is None:
            self._engine = make_engine(self.database_url, pool_size=1)
        query = substitute(example.block.text, self.values, where)
        with self._engine.connect() as conn:
            result = conn.exec_driver_sql(query)
            columns = list(result.keys())
            rows = [list(row) for row in result]
        header, *expected = parse_table(example.expected.text)
        shown = format_table(columns, rows)
        if header != columns or len(expected) != len(rows):
            raise Mismatch(f"the query returned:\n{shown}")
        for cells, row in zip(expected, rows, strict=True):
            if len(cells) != len(row):
                raise Mismatch(f"the query returned:\n{shown}")
            for cell, value in zip(cells, row, strict=True):
                found = match_text(cell, _cell(value, cell), self.values)
                if found is None:
                    raise Mismatch(f"{cell!r} differs; the query returned:\n{shown}")
                self.values.update(found)

    def configure(self, example: Example) -> None:
        _merge(self.config, tomllib.loads(example.block.text))
        self._write_config()
        try:
            load_settings(self.config_path)
        except ConfigError as exc:
            raise Mismatch(f"gateway.toml no longer loads: {exc}") from None

    def check_toml(self, example: Example) -> None:
        try:
            config_from_dict(tomllib.loads(example.block.text), source=example.block.where)
        except (ConfigError, tomllib.TOMLDecodeError) as exc:
            raise Mismatch(f"the gateway refuses this configuration: {exc}") from None

    def check_json(self, example: Example) -> None:
        try:
            load_pattern(example.block.text)
        except ValueError as exc:
            raise Mismatch(f"not JSON: {exc}") from None


def parse_console(text: str, where: str) -> list[tuple[str, list[str]]]:
    """A console block as (command, expected output lines) pairs."""
    steps: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            if steps:
                steps[-1][1].append(lines[i])
            elif lines[i].strip():
                raise DocFormatError(f"{where}: a console block starts with a `$ ` command")
            i += 1
            continue
        command = lines[i][2:]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command += "\n" + lines[i]
        steps.append((command, []))
        i += 1
    return steps


def parse_table(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if not line.strip() or re.fullmatch(r"[\s\-+|]+", line):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _cell(value: Any, shown: str) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if shown in ("true", "false") and value in (0, 1):
        return "true" if value == 1 else "false"  # SQLite stores booleans as 0/1
    return str(value)


def format_table(columns: list[str], rows: list[list[Any]]) -> str:
    cells = [columns, *[[_cell(v, "") for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def run_page(
    page: str, backend: str, workdir: Path, database_url: str, *, source: str | None = None
) -> int:
    """Run every example of ``page`` that applies to ``backend``; the number run."""
    examples = read_examples(page, source)
    run = PageRun(page, backend, workdir, database_url)
    done = 0
    failure = None
    try:
        for example in examples:
            if not example.runs_on(backend):
                continue
            try:
                run.run(example)
            except (Mismatch, DocFormatError) as exc:
                stderr = run.served.stderr()[-2000:] if run.served is not None else ""
                tail = f"\n--- gateway stderr (end) ---\n{stderr}" if stderr else ""
                failure = f"{example.name}: {exc}{tail}"
                break
            done += 1
    finally:
        run.stop()
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    return done


# --- the tests --------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("page", PAGES)
def test_every_example_of_the_page_runs(
    page: str, backend: str, tmp_path: Path, page_database_url: str
) -> None:
    assert run_page(page, backend, tmp_path, page_database_url) > 0


# --- tables generated from the code ---------------------------------------------------

TABLE_START = "<!-- generated from GET /scim/v2/ServiceProviderConfig"
TABLE_END = "<!-- end of generated table -->"


def discovery_table(config: dict[str, Any]) -> str:
    """The Markdown table of what a ServiceProviderConfig document advertises."""
    rows = ["| feature | supported | details |", "|---|---|---|"]
    for name, value in config.items():
        if name in ("schemas", "meta", "documentationUri"):
            continue
        if isinstance(value, dict):
            supported = "yes" if value.get("supported") is True else "no"
            details = "; ".join(f"`{k}`: {v}" for k, v in value.items() if k != "supported")
            rows.append(f"| `{name}` | {supported} | {details} |".replace("|  |", "| |"))
        elif isinstance(value, list):
            for scheme in value:
                primary = " (primary)" if scheme.get("primary") else ""
                rows.append(f"| `{name}` | `{scheme['type']}` | {scheme['name']}{primary} |")
    return "\n".join(rows)


def test_the_generic_page_shows_what_discovery_advertises(tmp_path: Path) -> None:
    settings = Settings(database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'd.sqlite3'}"))
    with TestClient(create_app(settings)) as client:
        response = client.get("/scim/v2/ServiceProviderConfig")
    assert response.status_code == 200
    expected = discovery_table(response.json())
    page = (ROOT / "docs/idp/generic.md").read_text(encoding="utf-8")
    start = page.index("\n", page.index(TABLE_START)) + 1
    shown = page[start : page.index(TABLE_END)].strip()
    assert shown == expected, (
        "docs/idp/generic.md: the table of supported features no longer matches "
        f"/ServiceProviderConfig; replace it with:\n{expected}"
    )
    assert "| `bulk` | yes |" in shown  # the table is read from the document, not empty


def test_the_generic_page_states_the_default_limits() -> None:
    page = (ROOT / "docs/idp/generic.md").read_text(encoding="utf-8")
    shown = {
        match.group(2): int(match.group(1))
        for match in re.finditer(r"^\| [^|]+ \| (\d+)[^|]* \| `(\w+)` \|", page, re.M)
    }
    defaults = {f.name: getattr(LimitSettings(), f.name) for f in fields(LimitSettings)}
    assert shown == defaults, "docs/idp/generic.md: the Limits table differs from LimitSettings"


def _config_sections(text: str) -> list[str]:
    """The sections of config.example.toml, the commented-out team tables included."""
    found = re.findall(r"^#?\s*\[([a-z_]+(?:\.<?[a-z_]+>?)*(?:\.[a-z_]+)?)\]", text, re.M)
    out: list[str] = []
    for name in found:
        name = re.sub(r"^teams\.[a-z0-9_-]+", "teams.<slug>", name)
        if name not in out:
            out.append(name)
    return out


def test_the_operators_page_describes_every_config_section() -> None:
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    page = (ROOT / "docs/operators.md").read_text(encoding="utf-8")
    sections = _config_sections(example)
    assert {"server", "database", "teams.<slug>", "teams.<slug>.options"} <= set(sections)
    missing = [s for s in sections if f"| `[{s}]` |" not in page]
    assert not missing, f"docs/operators.md: no row for config section(s) {missing}"


# --- the runner itself ------------------------------------------------------------------


def test_a_json_pattern_allows_more_where_it_says_so() -> None:
    values: dict[str, str] = {}
    pattern = load_pattern('{"id": "{{u.id}}", "emails": [{"value": "a@b.c", ...}, ...], ...}')
    actual = {"id": "42", "emails": [{"value": "a@b.c", "type": "work"}, {}], "active": True}
    match_json(pattern, actual, values)
    assert values == {"u.id": "42"}
    with pytest.raises(Mismatch, match=r"\$\.id: expected '\{\{u\.id\}\}', got '43'"):
        match_json(pattern, {**actual, "id": "43"}, values)
    with pytest.raises(Mismatch, match=r"\$: the response also has \['active'\]"):
        match_json(load_pattern('{"id": "42"}'), {"id": "42", "active": True}, values)
    with pytest.raises(Mismatch, match=r"\$\.n: expected 1, got true"):
        match_json(load_pattern('{"n": 1}'), {"n": True}, values)


def test_console_output_matches_line_by_line_with_captures() -> None:
    values: dict[str, str] = {}
    expected = ["Created key {{key.id}} ('x', adapter okta) for team acme.", "...", "  {{key}}"]
    printed = ["Created key k1 ('x', adapter okta) for team acme.", "Copy it now:", "", "  s3cr3t"]
    assert match_lines(expected, printed, values)
    assert values == {"key.id": "k1", "key": "s3cr3t"}
    assert not match_lines(["team acme: SCIM on"], ["team acme: SCIM off"], values)


def test_a_block_the_runner_cannot_check_is_refused() -> None:
    with pytest.raises(DocFormatError, match=r"page\.md:3: a 'python' code block cannot"):
        read_examples("page.md", "# Title\n\n```python\nprint(1)\n```\n")
    with pytest.raises(DocFormatError, match=r"page\.md:1: the request must be followed"):
        read_examples("page.md", "```http\nGET /scim/v2/Users HTTP/1.1\n```\n")


@pytest.mark.e2e
def test_a_page_that_drifted_fails_naming_the_page_and_the_example(tmp_path: Path) -> None:
    drifted = (
        "# A page\n\n## Reading users\n\n"
        "```console\n$ scim-gateway --config gateway.toml serve\n```\n\n"
        "```http\nGET /scim/v2/ServiceProviderConfig HTTP/1.1\nHost: scim.example.com\n```\n\n"
        '```http\nHTTP/1.1 200 OK\n\n{"patch": {"supported": false}, ...}\n```\n'
    )
    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    with pytest.raises(pytest.fail.Exception) as failed:
        run_page("drifted.md", "sqlite", tmp_path, url, source=drifted)
    message = str(failed.value)
    assert message.startswith('drifted.md:9, example 2 (under "Reading users"): ')
    assert "$.patch.supported: expected false, got true" in message
    assert '"patch": {\n        "supported": true' in message  # the answer, for the fix


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings."""
    headings = re.findall(r"^#{1,6} (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES)
def test_the_links_of_the_page_lead_somewhere(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", re.sub(r"```.*?```", "", text, flags=re.S))
    assert links, "the page has links to check"
    broken = []
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        target, _, anchor = link.partition("#")
        path = (ROOT / page).parent / target if target else ROOT / page
        missing_anchor = (
            bool(anchor)
            and path.suffix == ".md"
            and path.exists()
            and anchor not in _anchors(path.read_text(encoding="utf-8"))
        )
        if not path.exists() or missing_anchor:
            broken.append(link)
    assert not broken, f"{page}: links that lead nowhere: {broken}"
