"""The built-in webhook plugin: signs provisioning events and sends them over HTTP.

The gateway's core owns the outbox (which events exist, which are due, which
process may send one: :mod:`gateway.outbox`); this module owns what one delivery
attempt is: the signed HTTP request and how its answer is judged. It knows
nothing of the gateway and imports nothing from it.

A delivery is a ``POST`` of the event document (``application/json``) with:

``Scim-Gateway-Signature: t=<unix time>,v1=<hex>``
    ``<hex>`` is HMAC-SHA-256, under the team's webhook secret, of
    ``"<unix time>.<body>"``. A receiver recomputes it over the raw body and
    rejects a timestamp too far from its own clock (docs/events.md).
``Scim-Gateway-Event-Id``
    The event's id: the same on every attempt and redelivery, so a receiver can
    drop duplicates (delivery is at least once).
``Scim-Gateway-Delivery-Attempt``
    1 for the first attempt, then 2, 3, ...

Any 2xx answer is a success; anything else, a timeout or a connection failure is a
failed attempt that the gateway retries later. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ATTEMPT_HEADER",
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "Delivery",
    "Outcome",
    "WebhookSender",
    "signature_header",
]

SIGNATURE_HEADER = "Scim-Gateway-Signature"
EVENT_ID_HEADER = "Scim-Gateway-Event-Id"
ATTEMPT_HEADER = "Scim-Gateway-Delivery-Attempt"

_MAX_ERROR = 500


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Scim-Gateway-Signature`` value for ``body`` sent at ``timestamp``."""
    signed = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to deliver one event to one URL."""

    url: str
    body: bytes
    event_id: str
    attempt: int
    secret: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an attempt came to: ``ok``, or why not (the status, or the error)."""

    ok: bool
    status: int | None = None
    error: str | None = None


class WebhookSender:
    """Sends deliveries with one shared HTTP client; close it with :meth:`aclose`."""

    def __init__(
        self,
        *,
        timeout: float,
        user_agent: str = "scim-gateway",
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        import httpx  # here, not at import: CLI commands load this module and never send

        self.timeout = timeout
        self._clock = clock
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": user_agent},
            transport=transport,
        )

    def headers(self, delivery: Delivery) -> dict[str, str]:
        timestamp = int(self._clock())
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(delivery.secret, timestamp, delivery.body),
            EVENT_ID_HEADER: delivery.event_id,
            ATTEMPT_HEADER: str(delivery.attempt),
        }

    async def send(self, delivery: Delivery) -> Outcome:
        """Make one attempt; it never takes longer than the timeout, in total."""
        import httpx

        try:
            async with asyncio.timeout(self.timeout):
                response = await self._client.post(
                    delivery.url, content=delivery.body, headers=self.headers(delivery)
                )
        except TimeoutError:
            return Outcome(False, error=f"no answer within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Outcome(False, error=_describe(exc))
        if 200 <= response.status_code < 300:
            return Outcome(True, status=response.status_code)
        detail = response.text.strip().replace("\n", " ")[:200]
        error = f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
        return Outcome(False, status=response.status_code, error=error[:_MAX_ERROR])

    async def aclose(self) -> None:
        await self._client.aclose()


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:_MAX_ERROR]
