"""The access line written without a log record.

Where the access record would reach only the handler `serve` installs (one
StreamHandler on the root logger, our formatter, our two filters), the middleware
writes its line directly: the very line the record would have given, byte for byte,
scrubbed the same way. Anywhere else (pytest's caplog, an operator's handler,
filter or formatter, a logger that does not propagate, ...) the record is made and
handled as before, and whoever looks at it sees it with its fields.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway import logging_setup, observability
from gateway.app import Gateway, create_app
from gateway.config import DatabaseSettings, Settings
from gateway.keys import new_key, redact
from gateway.logging_setup import (
    REDACTED,
    JsonFormatter,
    RequestContextFilter,
    ScrubFilter,
    configure,
    request_fields,
    scrub,
)
from tests.conftest import SCIM
from tests.support import provision

ACCESS = "scim_gateway.access"
NOW = 1764377723.8134
"""The pinned clock: 2025-11-29T00:55:23.813Z."""
TIMESTAMP = "2025-11-29T00:55:23.813Z"
KEY_ID, TOKEN = new_key()
SECRET = TOKEN[-43:]  # the secret part (it may hold "_")


# --- fixtures and helpers ---------------------------------------------------------------


@dataclass
class Root:
    """The root logger with nothing on it but what :func:`configure` installs."""

    stream: io.StringIO | None = None
    handler: logging.Handler | None = None

    def configure(self, level: str = "info", fmt: str = "json") -> logging.Handler:
        self.stream = io.StringIO()
        self.handler = configure(level, fmt, stream=self.stream)
        return self.handler

    def text(self) -> str:
        assert self.stream is not None
        return self.stream.getvalue()

    def take(self) -> str:
        """What was written since the last call."""
        assert self.stream is not None
        out = self.stream.getvalue()
        self.stream.seek(0)
        self.stream.truncate()
        return out


@pytest.fixture
def root() -> Iterator[Root]:
    """The root logger as `serve` leaves it. pytest's own capturing handlers are
    taken off for the test and put back after it, as are the loggers' settings."""
    logger = logging.getLogger()
    handlers, level = logger.handlers[:], logger.level
    for handler in handlers:
        logger.removeHandler(handler)
    try:
        yield Root()
    finally:
        for handler in logger.handlers[:]:
            logger.removeHandler(handler)
        for handler in handlers:
            logger.addHandler(handler)
        logger.setLevel(level)
        logging.disable(logging.NOTSET)


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[logging.LogRecord]:
    """Every access record made during the test (none when the line is direct)."""
    records: list[logging.LogRecord] = []
    original = logging.Logger.makeRecord

    def spy(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = original(self, *args, **kwargs)
        if record.name == ACCESS:
            records.append(record)
        return record

    monkeypatch.setattr(logging.Logger, "makeRecord", spy)
    return records


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time stands still: records, direct lines and durations agree to the byte."""
    monkeypatch.setattr(time, "time", lambda: NOW)
    monkeypatch.setattr(time, "time_ns", lambda: int(NOW * 1e9))
    monkeypatch.setattr(time, "perf_counter", lambda: 1000.0)


@pytest.fixture
def record_path(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call to make the middleware take the record path whatever the handlers."""
    return lambda: monkeypatch.setattr(observability, "write_direct", lambda *a, **k: False)


@pytest.fixture
def loggers() -> Iterator[None]:
    """Handlers, filters and propagation of the gateway's loggers put back after."""
    names = ("scim_gateway", ACCESS)
    saved = {
        name: (
            logging.getLogger(name).handlers[:],
            logging.getLogger(name).filters[:],
            logging.getLogger(name).propagate,
        )
        for name in names
    }
    factory = logging.getLogRecordFactory()
    try:
        yield
    finally:
        logging.setLogRecordFactory(factory)
        for name, (handlers, filters, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.filters[:] = filters
            logger.propagate = propagate


@dataclass
class Request:
    """What the middleware knows of a request when it logs it."""

    status: int = 200
    method: str = "GET"
    path: str = "/scim/v2/Users/2819c223"
    route: str | None = "/scim/v2/Users/{id}"
    request_id: str = "req-1"
    team: str | None = "acme"
    """``None``: no valid key was presented."""
    seconds: float = 0.0123456


def observe(request: Request, context: Callable[[], Any] | None = None) -> None:
    """Log ``request`` as :class:`observability.ObservabilityMiddleware` does at the
    end of a request, with the request context it sets (or ``context``)."""
    gateway = SimpleNamespace(plugins=SimpleNamespace(adapter=lambda name: None))
    state: dict[str, Any] = {"request_id": request.request_id}
    if request.team is not None:
        state["principal"] = SimpleNamespace(team_slug=request.team, key_id=KEY_ID, adapter="okta")
    scope: dict[str, Any] = {
        "type": "http",
        "method": request.method,
        "path": request.path,
        "root_path": "",
        "state": state,
    }
    if request.route is not None:
        scope["route"] = SimpleNamespace(path=request.route)
    middleware = observability.ObservabilityMiddleware(
        _no_app,
        gateway=gateway,  # type: ignore[arg-type]
        metrics=False,
    )
    labels = observability._Labels(scope, gateway)  # type: ignore[arg-type]
    token = request_fields.set(context or labels.fields)
    try:
        start = time.perf_counter() - request.seconds
        middleware._observe(scope, "", request.path, request.status, start, labels)
    finally:
        request_fields.reset(token)


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


class Seen(logging.Handler):
    """Keeps the records it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Marking(logging.Filter):
    """Keeps the records it sees and marks them, so the line shows it ran."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        record.marked = "yes"
        return True


# --- the direct line is the record's line -----------------------------------------------


CASES = {
    "authenticated": Request(),
    "no key": Request(status=401, path="/scim/v2/Users", route="/scim/v2/Users", team=None),
    "server error": Request(status=503, method="POST", path="/scim/v2/Users"),
    "unmatched": Request(status=404, path="/nowhere", route=None, seconds=0.00004),
    "key in the path": Request(status=404, path=f"/scim/v2/Users/{TOKEN}"),
    "bearer in the path": Request(status=404, path="/scim/v2/Bearer abcdef0123456789/Users"),
    "credential as request id": Request(request_id="Bearer opaque-admin-token-value"),
    "key as method": Request(status=405, method=TOKEN),
    "odd method and text": Request(
        status=405, method="BREW", path='/scim/v2/Üsers/"q"\\\t', seconds=2.5
    ),
}


@pytest.mark.parametrize("fmt", ["json", "text"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_direct_line_is_the_record_line(
    root: Root,
    made: list[logging.LogRecord],
    clock: None,
    record_path: Callable[[], None],
    fmt: str,
    case: str,
) -> None:
    request = CASES[case]
    root.configure("info", fmt)
    observe(request)
    assert made == []  # written without a record
    direct = root.take()

    record_path()
    observe(request)
    [record] = made
    through_record = root.take()

    assert direct == through_record
    assert direct.endswith("\n") and direct.count("\n") == 1
    assert direct.startswith(TIMESTAMP + " " if fmt == "text" else '{"timestamp":"' + TIMESTAMP)
    assert TOKEN not in direct and SECRET not in direct
    assert "abcdef0123456789" not in direct and "opaque-admin-token-value" not in direct
    if fmt == "json":
        [entry] = lines(direct)
        expected = {
            "timestamp": TIMESTAMP,
            "level": "ERROR" if request.status >= 500 else "INFO",
            "logger": ACCESS,
            "message": record.getMessage(),
            **{name: getattr(record, name) for name in ("request_id", "team", "key_id")},
            "adapter": "okta" if request.team else None,
            "method": logging_setup.scrub(request.method),
            "route": request.route or observability.UNMATCHED,
            "path": record.path,  # type: ignore[attr-defined]
            "status": request.status,
            "duration_ms": round(request.seconds * 1000, 3),
        }
        assert entry == expected
        assert list(entry) == list(expected)  # the same order of keys
    else:
        assert direct == logging_setup.TextFormatter().format(record) + "\n"


def test_the_direct_line_in_full(root: Root, made: list[logging.LogRecord], clock: None) -> None:
    """The line pinned down, not only compared with the record's."""
    root.configure("info", "json")
    observe(Request(path=f"/scim/v2/Users/{TOKEN}", status=404))
    key = f"scimgw_{KEY_ID}_{REDACTED}"
    assert root.take() == (
        '{"timestamp":"2025-11-29T00:55:23.813Z","level":"INFO",'
        '"logger":"scim_gateway.access","message":"GET /scim/v2/Users/{id} 404 12.3ms",'
        f'"request_id":"req-1","team":"acme","key_id":"{KEY_ID}","adapter":"okta",'
        f'"method":"GET","route":"/scim/v2/Users/{{id}}","path":"/scim/v2/Users/{key}",'
        '"status":404,"duration_ms":12.346}\n'
    )
    root.configure("info", "text")
    observe(Request(path="/scim/v2/Users/Bearer abcdef0123456789", status=502, team=None))
    assert root.take() == (
        "2025-11-29T00:55:23.813Z ERROR scim_gateway.access [req-1] "
        f"GET /scim/v2/Users/{{id}} 502 12.3ms path=/scim/v2/Users/Bearer {REDACTED}\n"
    )
    assert made == []


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_handler_serve_installs_is_written_to_directly(
    root: Root,
    made: list[logging.LogRecord],
    clock: None,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    """`scim-gateway serve` has uvicorn apply :func:`dict_config` in each worker."""
    uvicorn = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
    saved = {
        name: (logger.level, logger.handlers[:], logger.propagate)
        for name in uvicorn
        for logger in [logging.getLogger(name)]
    }
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    # dictConfig flushes and closes every handler there is (pytest's log file too).
    monkeypatch.setattr(logging, "shutdown", lambda *args, **kwargs: None)
    try:
        logging.config.dictConfig(logging_setup.dict_config("info", fmt))
        observe(Request(path=f"/scim/v2/Users/{TOKEN}"))
    finally:
        for name, (level, handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate
    assert made == []
    direct = stderr.getvalue()
    assert direct.count("\n") == 1 and f"/scim/v2/Users/scimgw_{KEY_ID}_{REDACTED}" in direct
    assert SECRET not in direct

    root.configure("info", fmt)  # the same line through a record
    logging.getLogger().addHandler(Seen())
    observe(Request(path=f"/scim/v2/Users/{TOKEN}"))
    assert len(made) == 1 and root.text() == direct


# --- anyone else sees the record ----------------------------------------------------------


def _second_root_handler(handler: logging.Handler) -> list[logging.LogRecord]:
    seen = Seen()
    logging.getLogger().addHandler(seen)
    return seen.records


def _gateway_handler(handler: logging.Handler) -> list[logging.LogRecord]:
    seen = Seen()
    logging.getLogger("scim_gateway").addHandler(seen)
    return seen.records


def _access_handler(handler: logging.Handler) -> list[logging.LogRecord]:
    seen = Seen()
    logging.getLogger(ACCESS).addHandler(seen)
    return seen.records


def _handler_filter(handler: logging.Handler) -> list[logging.LogRecord]:
    marking = Marking()
    handler.addFilter(marking)
    return marking.records


def _access_filter(handler: logging.Handler) -> list[logging.LogRecord]:
    marking = Marking()
    logging.getLogger(ACCESS).addFilter(marking)
    return marking.records


def _record_factory(handler: logging.Handler) -> list[logging.LogRecord]:
    seen: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        seen.append(record)
        return record

    logging.setLogRecordFactory(make)
    return seen


def _not_propagated(handler: logging.Handler) -> list[logging.LogRecord]:
    seen = Seen()
    logging.getLogger("scim_gateway").addHandler(seen)
    logging.getLogger("scim_gateway").propagate = False
    return seen.records


def _handler_subclass(handler: logging.Handler) -> list[logging.LogRecord]:
    seen: list[logging.LogRecord] = []

    class Keeping(logging.StreamHandler):  # type: ignore[type-arg]
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)
            super().emit(record)

    assert isinstance(handler, logging.StreamHandler)
    keeping = Keeping(handler.stream)
    keeping.setFormatter(handler.formatter)
    for f in handler.filters:
        keeping.addFilter(f)
    logging.getLogger().removeHandler(handler)
    logging.getLogger().addHandler(keeping)
    return seen


def _formatter_subclass(handler: logging.Handler) -> list[logging.LogRecord]:
    seen: list[logging.LogRecord] = []

    class Keeping(JsonFormatter):
        def format(self, record: logging.LogRecord) -> str:
            seen.append(record)
            record.marked = "yes"
            return super().format(record)

    handler.setFormatter(Keeping())
    return seen


OTHERS: dict[str, Callable[[logging.Handler], list[logging.LogRecord]]] = {
    "a second handler on root": _second_root_handler,
    "a handler on scim_gateway": _gateway_handler,
    "a handler on the access logger": _access_handler,
    "a filter on the root handler": _handler_filter,
    "a filter on the access logger": _access_filter,
    "a record factory": _record_factory,
    "propagate=False": _not_propagated,
    "a handler subclass": _handler_subclass,
    "a formatter subclass": _formatter_subclass,
}


@pytest.mark.parametrize("other", list(OTHERS))
def test_anyone_else_gets_the_record(
    root: Root, made: list[logging.LogRecord], loggers: None, clock: None, other: str
) -> None:
    handler = root.configure("info", "json")
    seen = OTHERS[other](handler)
    observe(Request())
    [record] = made
    assert [r for r in seen if r.name == ACCESS] == [record]
    assert (record.team, record.path, record.status) == (  # type: ignore[attr-defined]
        "acme",
        "/scim/v2/Users/2819c223",
        200,
    )
    written = lines(root.text())
    if other == "propagate=False":
        assert written == []
        return
    [entry] = written
    assert (entry["status"], entry["path"]) == (200, "/scim/v2/Users/2819c223")
    if other in ("a filter on the root handler", "a formatter subclass"):
        assert entry["marked"] == "yes"  # what the filter did shows in the line


def test_a_formatter_of_someone_elses_gets_the_record(
    root: Root, made: list[logging.LogRecord], clock: None
) -> None:
    handler = root.configure("info", "json")
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s path=%(path)s"))
    observe(Request())
    assert len(made) == 1
    assert root.text() == "INFO GET /scim/v2/Users/{id} 200 12.3ms path=/scim/v2/Users/2819c223\n"


def test_caplog_sees_the_access_record_with_its_fields(
    caplog: pytest.LogCaptureFixture,
    made: list[logging.LogRecord],
    clock: None,
) -> None:
    # pytest's handlers are on the root logger, next to a handler as `serve` makes.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    handler.addFilter(ScrubFilter())
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.INFO, logger=ACCESS)
    try:
        observe(Request(path=f"/scim/v2/Users/{TOKEN}", status=404))
    finally:
        logging.getLogger().removeHandler(handler)
    [record] = [r for r in caplog.records if r.name == ACCESS]
    assert made == [record]
    fields = {
        name: getattr(record, name)
        for name in ("request_id", "team", "key_id", "adapter", "method", "route", "path")
    }
    assert fields == {
        "request_id": "req-1",
        "team": "acme",
        "key_id": KEY_ID,
        "adapter": "okta",
        "method": "GET",
        "route": "/scim/v2/Users/{id}",
        "path": f"/scim/v2/Users/scimgw_{KEY_ID}_{REDACTED}",
    }
    assert record.getMessage() == "GET /scim/v2/Users/{id} 404 12.3ms"
    assert (record.status, record.duration_ms) == (404, 12.346)  # type: ignore[attr-defined]
    [entry] = lines(stream.getvalue())
    assert entry["path"] == fields["path"] and entry["timestamp"] == TIMESTAMP


def test_handlers_added_and_removed_are_noticed(
    root: Root, made: list[logging.LogRecord], loggers: None
) -> None:
    handler = root.configure("info", "json")
    observe(Request())
    assert len(made) == 0 and len(lines(root.text())) == 1

    seen = Seen()
    gateway_logger = logging.getLogger("scim_gateway")
    gateway_logger.addHandler(seen)
    observe(Request(request_id="req-2"))
    assert len(made) == 1 and [r.request_id for r in seen.records] == ["req-2"]  # type: ignore[attr-defined]

    gateway_logger.removeHandler(seen)
    observe(Request(request_id="req-3"))
    assert len(made) == 1 and len(seen.records) == 1

    marking = Marking()
    handler.addFilter(marking)
    observe(Request(request_id="req-4"))
    assert len(made) == 2 and len(marking.records) == 1
    handler.removeFilter(marking)

    handler.setLevel(logging.ERROR)  # the handler drops INFO: nothing is written
    observe(Request(request_id="req-5"))
    observe(Request(request_id="req-6", status=500))
    handler.setLevel(logging.NOTSET)
    observe(Request(request_id="req-7"))
    assert len(made) == 3  # req-5 took the record path, req-6 and req-7 did not
    written = lines(root.text())
    assert [(e["request_id"], e.get("marked")) for e in written] == [
        ("req-1", None),
        ("req-2", None),
        ("req-3", None),
        ("req-4", "yes"),
        ("req-6", None),
        ("req-7", None),
    ]
    assert written[4]["level"] == "ERROR"


def test_another_request_context_takes_the_record_path(
    root: Root, made: list[logging.LogRecord]
) -> None:
    """Fields the context filter would add, not the request's own, reach the line."""
    root.configure("info", "json")
    observe(Request(), context=lambda: {"request_id": "other", "tenant": "t1"})
    assert len(made) == 1
    [entry] = lines(root.text())
    assert (entry["request_id"], entry["tenant"]) == ("req-1", "t1")


def test_logging_disable_and_levels_hold(root: Root, made: list[logging.LogRecord]) -> None:
    root.configure("warning", "json")
    observe(Request())
    assert root.take() == ""
    observe(Request(status=500))
    assert [e["level"] for e in lines(root.take())] == ["ERROR"]

    root.configure("info", "text")
    logging.disable(logging.INFO)
    observe(Request())
    assert root.take() == ""
    observe(Request(status=500))
    assert " ERROR scim_gateway.access [req-1] GET " in root.take()
    logging.disable(logging.NOTSET)
    observe(Request())
    assert " INFO scim_gateway.access [req-1] GET " in root.take()
    assert made == []


class Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError("disk full")


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "record"])
def test_a_failed_write_goes_to_handle_error_with_the_record(
    root: Root,
    made: list[logging.LogRecord],
    clock: None,
    record_path: Callable[[], None],
    direct: bool,
) -> None:
    handler = root.configure("info", "json")
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(Broken())
    errors: list[tuple[logging.LogRecord, BaseException | None]] = []
    handler.handleError = lambda record: errors.append((record, sys.exc_info()[1]))  # type: ignore[method-assign]
    if not direct:
        record_path()
    observe(Request(path=f"/scim/v2/Users/{TOKEN}"))
    [(record, error)] = errors
    assert made == [record]  # made for handleError only, when the line was direct
    assert isinstance(error, OSError) and str(error) == "disk full"
    assert record.getMessage() == "GET /scim/v2/Users/{id} 200 12.3ms"
    assert record.path == f"/scim/v2/Users/scimgw_{KEY_ID}_{REDACTED}"  # type: ignore[attr-defined]
    assert record.levelno == logging.INFO and abs(record.created - NOW) < 1e-6


# --- through the application ----------------------------------------------------------


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[tuple[TestClient, Gateway]]:
    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    app = create_app(Settings(database=DatabaseSettings(url=url)))
    with TestClient(app, raise_server_exceptions=False, headers={"Content-Type": SCIM}) as client:
        yield client, app.state.gateway


def test_requests_through_the_app_are_logged_directly(
    root: Root,
    made: list[logging.LogRecord],
    app_client: tuple[TestClient, Gateway],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, gateway = app_client
    slug = "acc-" + uuid.uuid4().hex[:12]
    token = provision(gateway, slug)
    secret = token[-43:]
    client.headers["Authorization"] = f"Bearer {token}"
    root.configure("info", "json")

    ok = client.get("/scim/v2/Users")
    keyed = client.get(f"/scim/v2/Users/{token}")
    bearer = client.get("/scim/v2/Users/Bearer%20abcdef0123456789")

    def broken(principal: Any) -> Any:
        raise RuntimeError("adapter lookup exploded")

    monkeypatch.setattr(gateway, "adapter_for", broken)
    failed = client.get("/scim/v2/Users")
    assert [r.status_code for r in (ok, keyed, bearer, failed)] == [200, 404, 404, 500]

    out = root.text()
    assert token not in out and secret not in out
    access = [e for e in lines(out) if e["logger"] == ACCESS]
    assert "abcdef0123456789" not in str(access)
    key_id = token.split("_")[1]
    assert [
        (e["request_id"], e["level"], e["status"], e["team"], e["key_id"], e["path"])
        for e in access
    ] == [
        (ok.headers["x-request-id"], "INFO", 200, slug, key_id, "/scim/v2/Users"),
        (
            keyed.headers["x-request-id"],
            "INFO",
            404,
            slug,
            key_id,
            f"/scim/v2/Users/scimgw_{key_id}_{REDACTED}",
        ),
        (
            bearer.headers["x-request-id"],
            "INFO",
            404,
            slug,
            key_id,
            f"/scim/v2/Users/Bearer {REDACTED}",
        ),
        (failed.headers["x-request-id"], "ERROR", 500, slug, key_id, "/scim/v2/Users"),
    ]
    assert access[0]["route"] == "/scim/v2/Users" and access[1]["route"] == "/scim/v2/Users/{id}"
    assert made == []  # every access line was written without a record
    # The error handler's own record went the usual way, with the request's fields.
    [error] = [e for e in lines(out) if e["logger"] == "scim_gateway" and "exception" in e]
    assert error["request_id"] == failed.headers["x-request-id"] and error["team"] == slug


def test_access_logging_off_at_warning_through_the_app(
    root: Root, made: list[logging.LogRecord], app_client: tuple[TestClient, Gateway]
) -> None:
    client, _gateway = app_client
    root.configure("warning", "json")
    assert client.get("/healthz").status_code == 200
    assert client.get("/scim/v2/Users").status_code == 401
    assert [e for e in lines(root.text()) if e["logger"] == ACCESS] == []
    assert made == []


# --- scrub's fast test for text that cannot hold a credential -------------------------


@pytest.mark.parametrize(
    "text",
    [
        "/scim/v2/Users/2819c223",
        "0123456789abcdef0123456789abcdef",
        "/scim/v2/Users/scimgw_abcdefghijkl_" + "x" * 43,
        "/scim/v2/Users/SCIMGW_ABCDEFGHIJKL_" + "X" * 43,
        "Authorization: Bearer abcdefghijk",
        "AUTHORIZATION=secretvalue",
        "BeArEr abcdefghijklmnop",
        "basic dXNlcjpwYXNzd29yZA==",
        "ba\u017fic dXNlcjpwYXNzd29yZA==",  # long s: IGNORECASE reads it as 's'
        "bearer \u212a" + "k" * 10,  # Kelvin sign
        "\u212aeep bearer abcdefghijk",
        "caf\u00e9 au lait",
        "",
    ],
)
def test_scrub_answers_as_its_pattern_does(text: str) -> None:
    """The ASCII shortcut leaves alone exactly the text the pattern would."""
    expected = text
    if logging_setup._MAYBE_SECRET.search(text):
        expected = logging_setup._AUTH_HEADER_RE.sub(
            lambda m: m.group(1) + logging_setup.REDACTED, text
        )
        expected = logging_setup._CREDENTIAL_RE.sub(
            lambda m: m.group(1) + m.group(2) + logging_setup.REDACTED, expected
        )
        expected = redact(expected)
    assert scrub(text) == expected
    if "earer abcdefghijk" in text or "dXNlcjpwYXNzd29yZA" in text:
        assert scrub(text) != text
