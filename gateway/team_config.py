"""Apply the teams declared in the config file (``[teams.<slug>]``) at startup.

Which source wins when the file and the CLI/admin API disagree: **the most recent
change**. Each team's section of the file is fingerprinted; at startup a section is
applied only when its fingerprint differs from the one last applied. So:

- restarting with the same file changes nothing, and runtime changes made with the
  CLI or the admin API (turning SCIM off, say) survive restarts;
- editing a team's section in the file counts as a new change: at the next start
  the file's values for that team are applied, over any runtime change. Keys the
  section does not declare are left as they are.

Applying a section goes through the same rules as the CLI: SSO is validated, and
``scim_enabled = true`` is refused without SSO.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from .config import ConfigError, SecretRef, Settings, TeamSettings
from .sso import SsoError, validate_oidc, validate_saml
from .store.db import Database
from .store.tables import Team
from .teams import (
    TeamError,
    create_team,
    disable_scim,
    enable_scim,
    set_sso,
)

__all__ = ["apply_config_teams", "fingerprint"]

teams = Team.__table__  # type: ignore[attr-defined]


def fingerprint(team: TeamSettings) -> str:
    """A digest of the team's section; a certificate file counts by its contents, so
    replacing the file at the same path is a change too."""

    def default(value: Any) -> Any:
        if isinstance(value, SecretRef):
            if value.file is not None and value.file.endswith((".pem", ".crt", ".cer")):
                try:
                    content = Path(value.file).read_bytes()
                except OSError:
                    content = b""
                return {"file": value.file, "sha256": hashlib.sha256(content).hexdigest()}
            return {"env": value.env, "file": value.file}
        return str(value)

    text = json.dumps(team.raw, sort_keys=True, default=default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sso_connection(team: TeamSettings, settings: Settings) -> Any:
    sso = team.sso
    assert sso is not None
    where = f"{settings.source}: teams.{team.slug}.sso"
    if sso["method"] == "saml":
        cert = sso["certificate"]
        pem = cert.resolve(where=f"{where}.certificate") if isinstance(cert, SecretRef) else cert
        return validate_saml(sso["entity_id"], sso["sso_url"], pem)
    secret: SecretRef = sso["client_secret"]
    secret.resolve(where=f"{where}.client_secret")  # stored as a reference, but must resolve
    ref = {"env": secret.env} if secret.env else {"file": str(secret.file)}
    verify: bool | str = settings.security.sso_ca_bundle or True
    return validate_oidc(sso["issuer"], sso["client_id"], ref, verify=verify)


def _apply(db: Database, team: TeamSettings, settings: Settings, digest: str) -> None:
    # SSO is validated before anything is written, and the section's fingerprint is
    # recorded last: a section that fails to apply is applied again at the next start.
    connection = _sso_connection(team, settings) if team.sso is not None else None
    existing = db.call(
        lambda conn: conn.execute(select(teams).where(teams.c.slug == team.slug)).first()
    )
    if existing is None:
        create_team(db, team.slug, team.name, default_adapter=team.default_adapter or "generic")
    values: dict[str, Any] = {"options": team.options or None}
    if team.name is not None:
        values["name"] = team.name
    if team.default_adapter is not None:
        values["default_adapter"] = team.default_adapter
    db.call(
        lambda conn: conn.execute(update(teams).where(teams.c.slug == team.slug).values(**values)),
        write=True,
    )
    if connection is not None:
        set_sso(db, team.slug, connection)
    if team.scim_enabled is True:
        has_sso = connection is not None or (existing is not None and existing.sso is not None)
        if not has_sso:
            raise TeamError(
                "scim_enabled = true needs SSO: add a [teams."
                f'{team.slug}.sso] table (method = "saml" or "oidc") to the config file.'
            )
        enable_scim(db, team.slug)
    elif team.scim_enabled is False:
        disable_scim(db, team.slug)
    db.call(
        lambda conn: conn.execute(
            update(teams).where(teams.c.slug == team.slug).values(config_digest=digest)
        ),
        write=True,
    )


def apply_config_teams(
    db: Database, settings: Settings, *, adapters: Collection[str] | None = None
) -> list[str]:
    """Apply changed team sections; returns the slugs that were applied. With
    ``adapters`` (the loaded adapter names), a team's default_adapter must be one."""
    applied = []
    for team in settings.teams:
        name = team.default_adapter
        if adapters is not None and name is not None and name.lower() not in adapters:
            raise ConfigError(
                f"{settings.source}: teams.{team.slug}.default_adapter: unknown adapter "
                f"{name!r}; loaded adapters: {', '.join(sorted(adapters))}."
            )
        digest = fingerprint(team)
        current = db.call(
            lambda conn, slug=team.slug: conn.execute(
                select(teams.c.config_digest).where(teams.c.slug == slug)
            ).scalar()
        )
        if current == digest:
            continue
        try:
            _apply(db, team, settings, digest)
        except (TeamError, SsoError) as exc:
            raise ConfigError(f"{settings.source}: teams.{team.slug}: {exc}") from exc
        applied.append(team.slug)
    return applied
