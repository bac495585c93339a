"""Who is calling: a bearer token resolved to the team it provisions.

Routes take the team from the :class:`Principal` this module returns, never from
the URL or the body. Tokens are compared as SHA-256 digests in constant time,
and no token is ever logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from starlette.requests import Request

from .scim.errors import Unauthorized

__all__ = ["Principal", "TokenAuthenticator", "bearer_token"]


@dataclass(frozen=True, slots=True)
class Principal:
    team_pk: int
    team_slug: str
    adapter: str = "generic"
    key_id: str | None = None
    key_name: str | None = None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenAuthenticator:
    """One configured token that provisions one team."""

    def __init__(self, token: str, principal: Principal) -> None:
        self._digest = _digest(token)
        self._principal = principal

    def authenticate(self, request: Request) -> Principal:
        token = bearer_token(request)
        presented = _digest(token) if token is not None else b"\0" * 32
        if not hmac.compare_digest(presented, self._digest) or token is None:
            raise Unauthorized()
        return self._principal
