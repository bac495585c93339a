"""A real HTTP receiver of webhook deliveries, listening on loopback.

It records every request it gets (headers, raw body, when, what it answered) and
can be told to answer errors (the next N requests, or those a rule picks), to
answer slowly, or to go down entirely (connections refused) and come back on the
same port. It also notes any event that was in flight twice at the same moment.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SIGNATURE = "Scim-Gateway-Signature"
EVENT_ID = "Scim-Gateway-Event-Id"
ATTEMPT = "Scim-Gateway-Delivery-Attempt"


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """``time.monotonic()`` when the request arrived."""
    status: int = 0
    """What the receiver answered."""

    @property
    def event_id(self) -> str:
        return self.headers.get(EVENT_ID.lower(), "")

    @property
    def attempt(self) -> int:
        return int(self.headers.get(ATTEMPT.lower(), "0"))

    @property
    def signature(self) -> str:
        return self.headers.get(SIGNATURE.lower(), "")

    @property
    def event(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


Rule = Callable[[Received], int | None]


@dataclass
class Receiver:
    """The receiver's state; its HTTP server runs on a thread of its own."""

    port: int
    requests: list[Received] = field(default_factory=list)
    failures_left: int = 0
    failure_status: int = 500
    rule: Rule | None = None
    """Picks an answer per request (``None``: the default, 200)."""
    delay: float = 0.0
    """Seconds to wait before answering."""
    overlaps: list[str] = field(default_factory=list)
    """Events that arrived while an earlier request for them was still being answered."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _in_flight: dict[str, int] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/scim"

    # --- what to answer ---------------------------------------------------------------

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self.failures_left, self.failure_status = count, status

    def _answer(self, request: Received) -> int:
        with self._lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                return self.failure_status
            rule = self.rule
        status = rule(request) if rule is not None else None
        return status if status is not None else 200

    # --- what was received ------------------------------------------------------------

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def delivered(self) -> list[Received]:
        """Requests answered with 2xx, in the order they arrived."""
        return [r for r in self.snapshot() if r.ok]

    def delivered_ids(self) -> set[str]:
        return {r.event_id for r in self.delivered()}

    def wait_until(
        self, condition: Callable[[], bool], *, timeout: float = 10.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.01)
        seen = [(r.event_id[:8], r.attempt, r.status) for r in self.snapshot()]
        raise AssertionError(f"timed out waiting for {what or condition}; received {seen}")

    def wait_for_ids(self, ids: set[str], *, timeout: float = 10.0) -> None:
        self.wait_until(lambda: ids <= self.delivered_ids(), timeout=timeout, what=f"{ids}")

    # --- the server -------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        body = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = Received(handler.path, headers, body, time.monotonic())
        event_id = request.event_id
        with self._lock:
            self.requests.append(request)
            if self._in_flight.get(event_id, 0) > 0:
                self.overlaps.append(event_id)
            self._in_flight[event_id] = self._in_flight.get(event_id, 0) + 1
        try:
            if self.delay:
                time.sleep(self.delay)
            status = self._answer(request)
            request.status = status
            payload = b'{"ok": true}' if status < 300 else b'{"error": "refused by the test"}'
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        finally:
            with self._lock:
                self._in_flight[event_id] -= 1

    def up(self) -> None:
        """Start listening (again, on the same port)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so that going down refuses the
            # next attempt instead of serving it on a kept-alive connection.
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hung up before the answer (a stopped gateway)

        server = Server(("127.0.0.1", self.port), Handler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop listening: connections are refused until :meth:`up`."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def listening() -> Iterator[Receiver]:
    """A webhook receiver listening on a free loopback port (a fixture's body)."""
    receiver = Receiver(free_port())
    receiver.up()
    try:
        yield receiver
    finally:
        receiver.down()
