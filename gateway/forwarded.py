"""The scheme and host a client used, as told by a trusted reverse proxy.

Behind a proxy that terminates TLS, the gateway sees ``http://10.0.0.5:8000`` while
clients call ``https://scim.example.com``. The proxy says so in ``Forwarded``
(RFC 7239: ``proto=https;host=scim.example.com``) or ``X-Forwarded-Proto`` and
``X-Forwarded-Host``. Anyone can send those headers, so they are believed only
when the connection comes from an address listed in ``server.trusted_proxies``;
from anyone else they are ignored. When several proxies added values, the one
added last (by the proxy that connected to the gateway) is used.

``scim-gateway serve`` runs uvicorn with its own proxy-header handling off: uvicorn
would replace the peer's address with the one in ``X-Forwarded-For``, after which
nobody could tell whether the headers came from a trusted proxy.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from starlette.requests import Request

__all__ = ["is_trusted_proxy", "public_origin"]

_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)
_PAIR = re.compile(r'\s*([A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,"\s]*)\s*')

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=16)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)


def is_trusted_proxy(peer: str | None, trusted: tuple[str, ...]) -> bool:
    """Whether the address ``peer`` is one of the ``trusted`` addresses or networks."""
    if not trusted or not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False  # a Unix socket or a test client: not an address anyone listed
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(trusted))


def _last_value(request: Request, name: str) -> str | None:
    values = [v.strip() for h in request.headers.getlist(name) for v in h.split(",")]
    values = [v for v in values if v]
    return values[-1] if values else None


def _last_forwarded_element(request: Request) -> dict[str, str]:
    """The parameters of the last element of the ``Forwarded`` headers (RFC 7239)."""
    text = ", ".join(request.headers.getlist("forwarded"))
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _PAIR.match(text, position)
        if match is None or not match.group(0):
            return {}  # malformed: believe none of it
        name, value = match.group(1).lower(), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        current[name] = value
        position = match.end()
        if position < len(text):
            separator = text[position]
            position += 1
            if separator == ",":
                elements.append(current)
                current = {}
            elif separator != ";":
                return {}
    elements.append(current)
    return elements[-1]


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _addressed(request: Request) -> tuple[str, str]:
    """Scheme and netloc as Starlette's ``request.url`` has them (the Host header, else
    the server's address), read straight from the scope: building the whole URL on
    every request to take two parts of it cost more than the rest of this function."""
    scope = request.scope
    scheme: str = scope.get("scheme", "http")
    host = request.headers.get("host")
    if host is not None:
        return scheme, host
    server = scope.get("server")
    if server is None:
        return scheme, ""
    name, port = server
    if port == _DEFAULT_PORTS.get(scheme):
        return scheme, str(name)
    return scheme, f"{name}:{port}"


def public_origin(request: Request, trusted: tuple[str, ...]) -> tuple[str, str]:
    """``(scheme, host[:port])`` as the client addressed the gateway."""
    scheme, netloc = _addressed(request)
    if not trusted:
        return scheme, netloc
    peer = request.client.host if request.client else None
    if not is_trusted_proxy(peer, trusted):
        return scheme, netloc
    forwarded = _last_forwarded_element(request) if "forwarded" in request.headers else {}
    proto = forwarded.get("proto") or _last_value(request, "x-forwarded-proto")
    host = forwarded.get("host") or _last_value(request, "x-forwarded-host")
    if proto is not None and proto.lower() in ("http", "https"):
        scheme = proto.lower()
    if host is not None and _HOST.match(host):
        netloc = host
    return scheme, netloc
