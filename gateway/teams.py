"""Teams, their SSO connection, the SCIM enablement gate, and their SCIM API keys.

The rules the brief sets, enforced here for the CLI, the admin API and the config
file alike:

1. a team configures SSO first;
2. turning SCIM provisioning on is refused until SSO is configured;
3. keys can be generated only while SCIM is on;
4. removing SSO turns SCIM off at once; while SCIM is off every request made
   with the team's keys is refused with 403, and the team's data is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from .keys import KeyHasher, new_key, visible_prefix
from .sso import OidcConnection, SamlConnection
from .store.common import utcnow
from .store.db import Database
from .store.tables import ApiKey, Team

__all__ = [
    "KeyInfo",
    "TeamError",
    "TeamInfo",
    "clear_sso",
    "create_key",
    "create_team",
    "disable_scim",
    "enable_scim",
    "get_team",
    "key_status",
    "list_keys",
    "list_teams",
    "regenerate_key",
    "revoke_key",
    "set_sso",
]

teams = Team.__table__  # type: ignore[attr-defined]
keys = ApiKey.__table__  # type: ignore[attr-defined]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class TeamError(Exception):
    """A refused team operation; ``status`` is the HTTP status the admin API uses."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class TeamInfo:
    slug: str
    name: str
    scim_enabled: bool
    default_adapter: str
    sso: dict[str, Any] | None
    options: dict[str, Any]
    created: datetime

    @property
    def sso_method(self) -> str | None:
        return self.sso.get("method") if self.sso else None

    def to_dict(self) -> dict[str, Any]:
        sso = None
        if self.sso:
            sso = {k: v for k, v in self.sso.items() if k != "certificate"}
        return {
            "slug": self.slug,
            "name": self.name,
            "scim_enabled": self.scim_enabled,
            "default_adapter": self.default_adapter,
            "sso": sso,
            "options": self.options,
            "created": self.created.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    team: str
    name: str
    prefix: str
    adapter: str
    created: datetime
    last_used: datetime | None
    expires: datetime | None
    revoked_at: datetime | None
    replaced_by: str | None
    status: str

    def to_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "team": self.team,
            "name": self.name,
            "prefix": self.prefix,
            "adapter": self.adapter,
            "created": iso(self.created),
            "last_used": iso(self.last_used),
            "expires": iso(self.expires),
            "revoked_at": iso(self.revoked_at),
            "replaced_by": self.replaced_by,
            "status": self.status,
        }


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def key_status(row: Any, now: datetime) -> str:
    """``active``, ``retiring`` (revocation scheduled), ``revoked`` or ``expired``."""
    revoked_at = _aware(row.revoked_at)
    expires_at = _aware(row.expires_at)
    if revoked_at is not None and revoked_at <= now:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    if revoked_at is not None:
        return "retiring"
    return "active"


def _team_info(row: Row[Any]) -> TeamInfo:
    return TeamInfo(
        slug=row.slug,
        name=row.name,
        scim_enabled=row.scim_enabled,
        default_adapter=row.default_adapter,
        sso=row.sso,
        options=row.options or {},
        created=row.created,
    )


def _key_info(row: Row[Any], team: Row[Any], now: datetime) -> KeyInfo:
    return KeyInfo(
        id=row.key_id,
        team=team.slug,
        name=row.name,
        prefix=visible_prefix(row.key_id),
        adapter=row.adapter or team.default_adapter,
        created=row.created,
        last_used=row.last_used_at,
        expires=row.expires_at,
        revoked_at=row.revoked_at,
        replaced_by=row.replaced_by,
        status=key_status(row, now),
    )


def _team_row(conn: Connection, slug: str, *, lock: bool = False) -> Row[Any]:
    stmt = select(teams).where(teams.c.slug == slug)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise TeamError(
            f"No team {slug!r}. Create it with: scim-gateway teams create {slug}", status=404
        )
    return row


def check_slug(slug: str) -> None:
    if not _SLUG.match(slug):
        raise TeamError(
            f"Team slug {slug!r} is not valid: use 1-63 lowercase letters, digits and '-', "
            "starting with a letter or digit."
        )


def create_team(
    db: Database, slug: str, name: str | None = None, *, default_adapter: str = "generic"
) -> TeamInfo:
    check_slug(slug)

    def tx(conn: Connection) -> TeamInfo:
        if conn.execute(select(teams.c.pk).where(teams.c.slug == slug)).first() is not None:
            raise TeamError(f"Team {slug!r} already exists.", status=409)
        now = utcnow()
        conn.execute(
            insert(teams),
            {
                "slug": slug,
                "name": name or slug,
                "scim_enabled": False,
                "default_adapter": default_adapter,
                "created": now,
                "updated": now,
            },
        )
        return _team_info(_team_row(conn, slug))

    return db.call(tx, write=True)


def get_team(db: Database, slug: str) -> TeamInfo:
    return db.call(lambda conn: _team_info(_team_row(conn, slug)))


def list_teams(db: Database) -> list[TeamInfo]:
    return db.call(
        lambda conn: [_team_info(r) for r in conn.execute(select(teams).order_by(teams.c.slug))]
    )


def _update_team(conn: Connection, row: Row[Any], **values: Any) -> None:
    conn.execute(update(teams).where(teams.c.pk == row.pk).values(**values, updated=utcnow()))


def set_sso(db: Database, slug: str, connection: SamlConnection | OidcConnection) -> TeamInfo:
    """Save a validated SSO connection; it replaces any other method the team had."""

    def tx(conn: Connection) -> TeamInfo:
        row = _team_row(conn, slug, lock=True)
        _update_team(conn, row, sso=connection.to_dict())
        return _team_info(_team_row(conn, slug))

    return db.call(tx, write=True)


def clear_sso(db: Database, slug: str) -> TeamInfo:
    """Remove the team's SSO; SCIM provisioning is turned off in the same change."""

    def tx(conn: Connection) -> TeamInfo:
        row = _team_row(conn, slug, lock=True)
        _update_team(conn, row, sso=None, scim_enabled=False)
        return _team_info(_team_row(conn, slug))

    return db.call(tx, write=True)


def sso_problem(sso: dict[str, Any] | None, now: datetime) -> str | None:
    """Why this SSO connection cannot back SCIM provisioning, or ``None``."""
    if not sso:
        return "it has no SSO connection"
    if sso.get("method") == "saml":
        not_after = datetime.fromisoformat(str(sso.get("certificate_not_after")))
        if not_after <= now:
            return f"its SAML signing certificate expired on {not_after:%Y-%m-%d}"
        return None
    if sso.get("method") == "oidc":
        return None if sso.get("jwks_uri") else "its OpenID Connect connection was not validated"
    return "its SSO connection is of an unknown kind"


def enable_scim(db: Database, slug: str) -> TeamInfo:
    def tx(conn: Connection) -> TeamInfo:
        row = _team_row(conn, slug, lock=True)
        problem = sso_problem(row.sso, datetime.now(UTC))
        if problem is not None:
            raise TeamError(
                f"SCIM provisioning cannot be turned on for team {slug!r}: {problem}. "
                f"Configure SSO first: scim-gateway sso set-saml {slug} --entity-id ... "
                "--sso-url https://... --certificate idp.pem (or sso set-oidc).",
                status=409,
            )
        _update_team(conn, row, scim_enabled=True)
        return _team_info(_team_row(conn, slug))

    return db.call(tx, write=True)


def disable_scim(db: Database, slug: str) -> TeamInfo:
    def tx(conn: Connection) -> TeamInfo:
        row = _team_row(conn, slug, lock=True)
        _update_team(conn, row, scim_enabled=False)
        return _team_info(_team_row(conn, slug))

    return db.call(tx, write=True)


def _insert_key(
    conn: Connection,
    hasher: KeyHasher,
    team: Row[Any],
    name: str,
    adapter: str | None,
    expires_at: datetime | None,
) -> tuple[str, str]:
    key_id, token = new_key()
    conn.execute(
        insert(keys),
        {
            "key_id": key_id,
            "team_pk": team.pk,
            "name": name,
            "adapter": adapter,
            "secret_hash": hasher.hash(token),
            "created": utcnow(),
            "expires_at": expires_at,
        },
    )
    return key_id, token


def _require_scim(team: Row[Any]) -> None:
    if not team.scim_enabled:
        raise TeamError(
            f"SCIM provisioning is off for team {team.slug!r}; keys can be generated only "
            f"while it is on. Turn it on with: scim-gateway scim enable {team.slug}",
            status=409,
        )


def _key_row(conn: Connection, team: Row[Any], key_id: str) -> Row[Any]:
    row = conn.execute(
        select(keys).where(keys.c.team_pk == team.pk, keys.c.key_id == key_id)
    ).first()
    if row is None:
        raise TeamError(f"Team {team.slug!r} has no key {key_id!r}.", status=404)
    return row


def create_key(
    db: Database,
    hasher: KeyHasher,
    slug: str,
    name: str,
    *,
    adapter: str | None = None,
    expires_in_days: int | None = None,
) -> tuple[KeyInfo, str]:
    """A new key for the team; the token is returned once and never stored."""
    if not name.strip():
        raise TeamError("A key needs a name, e.g. --name okta-production.")
    if expires_in_days is not None and expires_in_days <= 0:
        raise TeamError("--expires-in must be a positive number of days.")

    def tx(conn: Connection) -> tuple[KeyInfo, str]:
        team = _team_row(conn, slug, lock=True)
        _require_scim(team)
        expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        key_id, token = _insert_key(conn, hasher, team, name.strip(), adapter, expires)
        return _key_info(_key_row(conn, team, key_id), team, datetime.now(UTC)), token

    return db.call(tx, write=True)


def list_keys(db: Database, slug: str) -> list[KeyInfo]:
    def tx(conn: Connection) -> list[KeyInfo]:
        team = _team_row(conn, slug)
        now = datetime.now(UTC)
        rows = conn.execute(select(keys).where(keys.c.team_pk == team.pk).order_by(keys.c.pk))
        return [_key_info(r, team, now) for r in rows]

    return db.call(tx)


def revoke_key(db: Database, slug: str, key_id: str) -> KeyInfo:
    def tx(conn: Connection) -> KeyInfo:
        team = _team_row(conn, slug)
        row = _key_row(conn, team, key_id)
        now = utcnow()
        if key_status(row, now) != "revoked":
            conn.execute(update(keys).where(keys.c.pk == row.pk).values(revoked_at=now))
        return _key_info(_key_row(conn, team, key_id), team, datetime.now(UTC))

    return db.call(tx, write=True)


def regenerate_key(
    db: Database, hasher: KeyHasher, slug: str, key_id: str, *, keep_old_for_minutes: int = 0
) -> tuple[KeyInfo, str]:
    """A new key with the old one's name and adapter; the old one stops after the overlap."""
    if keep_old_for_minutes < 0:
        raise TeamError("--keep-old-for must be zero or a positive number of minutes.")

    def tx(conn: Connection) -> tuple[KeyInfo, str]:
        team = _team_row(conn, slug, lock=True)
        _require_scim(team)
        old = _key_row(conn, team, key_id)
        now = utcnow()
        if key_status(old, now) in ("revoked", "expired"):
            raise TeamError(
                f"Key {key_id!r} is {key_status(old, now)}; create a new key instead.", status=409
            )
        new_id, token = _insert_key(conn, hasher, team, old.name, old.adapter, old.expires_at)
        retire_at = now + timedelta(minutes=keep_old_for_minutes)
        conn.execute(
            update(keys).where(keys.c.pk == old.pk).values(revoked_at=retire_at, replaced_by=new_id)
        )
        return _key_info(_key_row(conn, team, new_id), team, datetime.now(UTC)), token

    return db.call(tx, write=True)
