"""SCIM API keys: format, generation and verification.

A key looks like ``scimgw_<key id>_<secret>``:

- ``scimgw_`` makes it recognisable (secret scanners, log scrubbing);
- the key id (12 lowercase base32 characters) finds the stored row;
- the secret is 32 random bytes (256 bits), URL-safe base64.

Only ``HMAC-SHA-256(server secret, key)`` is stored. Keys are high-entropy, so a
keyed hash is as strong as a slow password hash and costs microseconds, not
milliseconds, on every request. Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets

__all__ = ["KEY_PREFIX", "KeyHasher", "new_key", "parse_key", "redact", "visible_prefix"]

KEY_PREFIX = "scimgw_"
_KEY_RE = re.compile(r"^scimgw_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$")
_ANY_KEY_RE = re.compile(r"scimgw_[a-z2-7]{12}_[A-Za-z0-9_-]{10,}")
DUMMY_KEY_ID = "aaaaaaaaaaaa"


def _key_id() -> str:
    return base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()[:12]


def new_key() -> tuple[str, str]:
    """A fresh ``(key_id, token)``."""
    key_id = _key_id()
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    return key_id, f"{KEY_PREFIX}{key_id}_{secret}"


def parse_key(token: str | None) -> str | None:
    """The key id of a well-formed key, else ``None``."""
    if token is None:
        return None
    match = _KEY_RE.match(token)
    return match.group(1) if match else None


def visible_prefix(key_id: str) -> str:
    """What lists show of a key: enough to recognise it, nothing to use."""
    return f"{KEY_PREFIX}{key_id}_…"


def redact(text: str) -> str:
    """Replace anything shaped like a key in ``text`` (log lines, error details)."""
    if KEY_PREFIX not in text:  # what the pattern starts with: most text has none
        return text
    return _ANY_KEY_RE.sub(lambda m: m.group(0)[: len(KEY_PREFIX) + 12] + "_[redacted]", text)


class KeyHasher:
    """Keyed hashing of API keys under the gateway's server secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the key-hashing secret must be at least 32 bytes")
        # Keyed once, here, and copied by each hash: keying an HMAC on every call, as
        # hmac.digest does, cost half as much again.
        self._keyed = hmac.new(secret, digestmod="sha256")

    def hash(self, token: str) -> str:
        mac = self._keyed.copy()
        mac.update(token.encode("utf-8", "surrogatepass"))
        return mac.hexdigest()

    def matches(self, token: str, stored: str) -> bool:
        return hmac.compare_digest(self.hash(token), stored)
