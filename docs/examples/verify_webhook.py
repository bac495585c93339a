"""Check a SCIM Gateway webhook delivery before trusting it (docs/events.md).

Copy this function into the application that receives the events; it needs only
the Python standard library. Pass it the raw request body (the bytes, before any
JSON parsing), the ``Scim-Gateway-Signature`` header and the team's webhook secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300


def verify_webhook(
    secret: str,
    body: bytes,
    signature: str,
    *,
    tolerance: int = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``body`` was signed with ``secret`` less than ``tolerance`` seconds ago.

    ``signature`` is ``t=<unix time>,v1=<hex HMAC-SHA-256 of "<t>.<body>">``. Several
    ``v1`` values may appear (for instance while a secret is being replaced); one
    matching is enough. A delivery older (or newer) than ``tolerance`` is refused, so
    a captured request cannot be replayed later.
    """
    timestamp = None
    candidates = []
    for part in signature.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    signed = str(timestamp).encode("ascii") + b"." + body
    expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
