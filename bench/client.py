"""A lean keep-alive HTTP/1.1 load client on asyncio protocols.

One persistent connection per concurrent worker; each request is written whole
(head and body pre-encoded) and its answer parsed minimally: the status line, the
headers up to the blank line, and a ``Content-Length`` body (``chunked`` bodies are
decoded too, for robustness, though the gateway does not send them). This keeps the
client far from being the bottleneck: on one core it sustains several times the
request rate of a general-purpose client such as httpx.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

__all__ = [
    "Connection",
    "HttpError",
    "Request",
    "Response",
    "RunResult",
    "run_requests",
]

_CRLF2 = b"\r\n\r\n"


class HttpError(Exception):
    """The connection broke or the server's answer could not be parsed."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    token: str
    body: Any = None
    """A JSON-serialisable body, or ``None`` for no body."""
    content_type: str = "application/json"
    user_agent: str = "scim-gateway-bench"


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


def encode(request: Request, host: str) -> bytes:
    """The request's bytes on the wire."""
    lines = [
        f"{request.method} {request.path} HTTP/1.1",
        f"Host: {host}",
        f"User-Agent: {request.user_agent}",
        "Accept: application/scim+json, application/json",
    ]
    if request.token:
        lines.append(f"Authorization: Bearer {request.token}")
    payload = b""
    if request.body is not None:
        payload = orjson.dumps(request.body)
        lines.append(f"Content-Type: {request.content_type}")
        lines.append(f"Content-Length: {len(payload)}")
    elif request.method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")
    head = "\r\n".join(lines).encode("latin-1") + _CRLF2
    return head + payload


class _Protocol(asyncio.Protocol):
    """Parses one answer at a time from the byte stream of a kept-alive connection."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.head: tuple[int, dict[str, str]] | None = None
        self.length: int | None = None
        self.chunked = False
        self.closed = False
        self.no_body = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(HttpError(f"connection closed by the server ({exc})"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done():
            try:
                self._parse()
            except HttpError as exc:
                self.waiter.set_exception(exc)

    def expect(self, waiter: asyncio.Future[Response], no_body: bool) -> None:
        self.waiter = waiter
        self.head = None
        self.no_body = no_body
        if self.buffer:
            self._parse()

    def _parse(self) -> None:
        if self.head is None:
            end = self.buffer.find(_CRLF2)
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            del self.buffer[: end + 4]
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                raise HttpError(f"bad status line {lines[0]!r}")
            status = int(parts[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.head = (status, headers)
            self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            if self.no_body or status in (204, 304) or 100 <= status < 200:
                self.length = 0
            elif "content-length" in headers:
                self.length = int(headers["content-length"])
            elif not self.chunked:
                raise HttpError("answer with neither Content-Length nor chunked encoding")
            else:
                self.length = None
        status, headers = self.head
        if self.chunked:
            body = self._dechunk()
            if body is None:
                return
        else:
            assert self.length is not None
            if len(self.buffer) < self.length:
                return
            body = bytes(self.buffer[: self.length])
            del self.buffer[: self.length]
        assert self.waiter is not None
        self.waiter.set_result(Response(status, headers, body))

    def _dechunk(self) -> bytes | None:
        """The whole chunked body once it has fully arrived (consumed), else ``None``."""
        pos = 0
        out = bytearray()
        while True:
            eol = self.buffer.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(self.buffer[pos:eol]).split(b";", 1)[0], 16)
            start = eol + 2
            if size == 0:
                end = self.buffer.find(b"\r\n", start)  # no trailers expected
                if end < 0:
                    return None
                del self.buffer[: end + 2]
                return bytes(out)
            if len(self.buffer) < start + size + 2:
                return None
            out += self.buffer[start : start + size]
            pos = start + size + 2


def _expire(waiter: asyncio.Future[Response], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(HttpError(f"no answer within {timeout:.0f} s"))


class Connection:
    """One persistent HTTP/1.1 connection; reconnects when the server closed it, or
    may be about to (uvicorn drops a connection idle for 5 s by default)."""

    IDLE_LIMIT = 3.0

    def __init__(self, host: str, port: int, *, timeout: float = 120.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.authority = f"{host}:{port}"
        self._protocol: _Protocol | None = None
        self._last_used = 0.0

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        _transport, protocol = await loop.create_connection(_Protocol, self.host, self.port)
        return protocol

    async def send(self, request: Request) -> Response:
        return await self.send_raw(encode(request, self.authority), request.method == "HEAD")

    async def send_raw(self, data: bytes, no_body: bool = False) -> Response:
        protocol = self._protocol
        now = time.monotonic()
        if protocol is not None and now - self._last_used > self.IDLE_LIMIT:
            self.close()
            protocol = None
        if protocol is None or protocol.closed:
            protocol = self._protocol = await self._connect()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        protocol.expect(waiter, no_body)
        assert protocol.transport is not None
        protocol.transport.write(data)
        timer = loop.call_later(self.timeout, _expire, waiter, self.timeout)
        try:
            response = await waiter
        except HttpError:
            self.close()
            raise
        finally:
            timer.cancel()
        self._last_used = time.monotonic()
        if response.headers.get("connection", "").lower() == "close":
            self.close()
        return response

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


Check = Callable[[Any, Response], str | None]
"""Given the work item and its answer: ``None`` when fine, else what was wrong."""


@dataclass
class RunResult:
    """Latencies (seconds) of every request, the wall time, and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    client_cpu: float = 0.0
    """CPU seconds this (client) process used during the run."""
    server_cpu: float | None = None
    """CPU seconds the server's processes used during the run, when measured."""
    errors: int = 0
    problems: list[str] = field(default_factory=list)

    def add_problem(self, text: str, keep: int = 5) -> None:
        self.errors += 1
        if len(self.problems) < keep:
            self.problems.append(text)


async def run_requests(
    connections: Sequence[Connection],
    items: Iterable[Any],
    build: Callable[[Any], Request],
    check: Check,
    *,
    server_cpu: Callable[[], float] | None = None,
    on_latency: Callable[[Any, float], None] | None = None,
) -> RunResult:
    """Send one request per item, one worker per connection, each worker taking the
    next item as soon as its previous answer is in (a closed loop at fixed concurrency).

    ``server_cpu`` reads the server's CPU seconds so far; the run records how much of
    it, and of this process's CPU, the requests used. ``on_latency`` is called with the
    item and its latency (seconds) for every answered request, for per-item figures
    (``latencies`` are in the order the answers came in)."""
    result = RunResult()
    iterator = iter(items)

    async def worker(conn: Connection) -> None:
        for item in iterator:
            request = build(item)
            data = encode(request, conn.authority)
            started = time.perf_counter()
            try:
                response = await conn.send_raw(data)
            except (HttpError, OSError) as exc:
                result.latencies.append(time.perf_counter() - started)
                result.add_problem(f"{request.method} {request.path[:80]}: {exc}")
                continue
            latency = time.perf_counter() - started
            result.latencies.append(latency)
            if on_latency is not None:
                on_latency(item, latency)
            try:
                problem = check(item, response)
            except Exception as exc:  # a malformed answer is an error, not a crash
                problem = f"unexpected answer ({type(exc).__name__}: {exc})"
            if problem is not None:
                detail = response.body[:200].decode("utf-8", "replace")
                result.add_problem(
                    f"{request.method} {request.path[:80]} -> {response.status}: {problem} {detail}"
                )

    server_before = server_cpu() if server_cpu is not None else 0.0
    cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    result.elapsed = time.perf_counter() - started
    result.client_cpu = time.process_time() - cpu_before
    if server_cpu is not None:
        result.server_cpu = server_cpu() - server_before
    return result
