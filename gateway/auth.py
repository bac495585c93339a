"""Who is calling: a SCIM API key resolved to its team and adapter.

Routes take the team from the :class:`Principal` this module returns, never from
the URL or the body. Every failure (no key, a malformed, unknown, expired or
revoked key) does the same work, one indexed lookup and one HMAC, and answers the
same 401, so the answer tells an attacker nothing. A key that verified skips the
lookup on its next requests until anything is committed to the database (SQLite; see
:meth:`KeyAuthenticator.verify`): only a caller with the whole key gains from it. Keys
are never logged.

"Last used" is written at most once a minute per key, never on every request.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from starlette.requests import Request

from .keys import DUMMY_KEY_ID, KeyHasher, parse_key
from .scim.errors import Forbidden, Unauthorized
from .store.bootstrap import shared_secret
from .store.db import Database
from .store.fast import Prepared
from .store.tables import ApiKey, Team
from .teams import key_status

__all__ = [
    "LAST_USED_EVERY",
    "KeyAuthenticator",
    "Principal",
    "bearer_token",
    "load_hasher",
    "request_header",
]

keys = ApiKey.__table__  # type: ignore[attr-defined]
teams = Team.__table__  # type: ignore[attr-defined]

LAST_USED_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Principal:
    team_pk: int
    team_slug: str
    adapter: str = "generic"
    key_id: str | None = None
    key_name: str | None = None
    team_options: Mapping[str, Any] = field(default_factory=dict)


def request_header(request: Request, name: bytes) -> str | None:
    """The first value of the header ``name`` (lowercase), as ``request.headers.get``
    has it, read straight from the ASGI scope: building Starlette's ``Headers`` for
    the few headers every request needs cost more than reading them."""
    headers: Iterable[tuple[bytes, bytes]] = request.scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def bearer_token(request: Request) -> str | None:
    header = request_header(request, b"authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def load_hasher(db: Database, configured: str | None) -> KeyHasher:
    """The key hasher: the configured secret, else the one shared through the database."""
    if configured is not None:
        return KeyHasher(configured.encode("utf-8"))
    value = shared_secret(db, "key_hash_secret", lambda: secrets.token_hex(32))
    return KeyHasher(bytes.fromhex(value))


_KEY_COLUMNS = (
    keys.c.pk,
    keys.c.key_id,
    keys.c.name,
    keys.c.adapter,
    keys.c.secret_hash,
    keys.c.expires_at,
    keys.c.revoked_at,
    keys.c.last_used_at,
    teams.c.pk.label("team_pk"),
    teams.c.slug,
    teams.c.scim_enabled,
    teams.c.default_adapter,
    teams.c.options,
)


# Built once: a statement built per request costs more than the query itself.
_LOOKUP = Prepared(
    select(*_KEY_COLUMNS)
    .join(teams, teams.c.pk == keys.c.team_pk)
    .where(keys.c.key_id == bindparam("key_id"))
)
_TOUCH = update(keys).where(keys.c.pk == bindparam("key_pk")).values(last_used_at=bindparam("now"))


_UNAUTHORIZED = (
    "The SCIM API key is missing, unknown, expired or revoked. "
    "Send 'Authorization: Bearer <key>' with a current key of your team."
)


def _current(row: Any, now: datetime) -> bool:
    """Whether the key of ``row`` is usable at ``now``: not expired, not revoked (one
    retiring after a regeneration is usable until its overlap ends)."""
    return key_status(row, now) in ("active", "retiring")


VERIFIED_KEPT = 1024
"""Keys kept as verified (see :meth:`KeyAuthenticator.verify`); past this, all are
forgotten and verified again."""


class KeyAuthenticator:
    def __init__(self, db: Database, hasher: KeyHasher) -> None:
        self.db = db
        self.hasher = hasher
        self._dummy_hash = hasher.hash("scimgw_" + secrets.token_urlsafe(32))
        # The rows of keys that verified, by the HMAC of the whole key, as the database
        # held them at data version ``_verified_at`` (SQLite with a file only).
        self._verified: dict[str, Any] = {}
        self._verified_at: int | None = None

    def verify(self, token: str | None) -> Principal:
        """The principal for ``token``; 401 for any bad key, 403 while SCIM is off.

        A key that verified is kept, by the HMAC of the whole key, until anything is
        committed to the database (by this process or another: a revocation, a team
        turning SCIM off, a write of provisioning data alike); until then the key's
        next requests skip the lookup (SQLite's data version tells, see
        :meth:`Database.data_version`). Only a caller
        holding a whole valid key can meet a kept one, so a bad key's answer takes the
        same time whether its key id exists or not. Expiry and revocation times are
        checked on every request."""
        digest = self.hasher.hash(token or "")
        version = self.db.data_version()
        if version is not None:
            if version != self._verified_at:
                self._verified.clear()
                self._verified_at = version
            row = self._verified.get(digest)
            if row is not None:
                now = datetime.now(UTC)
                if not _current(row, now):  # it expired since
                    raise Unauthorized(_UNAUTHORIZED)
                return self._principal(row, now)
        key_id = parse_key(token) or DUMMY_KEY_ID
        row = self.db.read_one(_LOOKUP, {"key_id": key_id})
        stored = row.secret_hash if row is not None else self._dummy_hash
        valid = hmac.compare_digest(digest, stored)
        now = datetime.now(UTC)
        usable = row is not None and _current(row, now)
        if not (valid and usable and token is not None):
            raise Unauthorized(_UNAUTHORIZED)
        principal = self._principal(row, now)
        if version is not None:
            if len(self._verified) >= VERIFIED_KEPT:
                self._verified.clear()
            self._verified[digest] = row
        return principal

    def _principal(self, row: Any, now: datetime) -> Principal:
        """The principal of a current key whose secret matched; 403 while its team has
        SCIM off."""
        if not row.scim_enabled:
            raise Forbidden(
                f"SCIM provisioning is disabled for team '{row.slug}'. A team admin can turn it "
                "on again; the team's data is kept."
            )
        self._touch(row, now)
        return Principal(
            team_pk=row.team_pk,
            team_slug=row.slug,
            adapter=row.adapter or row.default_adapter,
            key_id=row.key_id,
            key_name=row.name,
            team_options=row.options or {},
        )

    def _touch(self, row: Any, now: datetime) -> None:
        last = row.last_used_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if last is not None and now - last < LAST_USED_EVERY:
            return
        self.db.call(
            lambda conn: conn.execute(_TOUCH, {"key_pk": row.pk, "now": now}),
            write=True,
        )
