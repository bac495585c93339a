"""Teams declared in the config file (``[teams.<slug>]``) are applied at startup.

The rule when the file and runtime changes disagree is "the most recent change
wins": restarting with the same file changes nothing (a runtime change survives),
while editing a team's section makes the next start apply it again. Each test
starts real gateways on SQLite and PostgreSQL, one after the other on the same
database, as a restart would; OpenID Connect teams point at a real provider.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import Gateway
from gateway.config import ConfigError, DatabaseSettings, load_settings
from gateway.store.tables import Team
from gateway.teams import create_key, disable_scim, enable_scim, get_team
from tests.oidc_provider import OidcProvider
from tests.support import ENTITY_ID, SSO_URL, saml_certificate

# The real provider (one per run, reset for each test).

SECRET_VARIABLE = "SCIM_GATEWAY_TEST_OIDC_SECRET"
DISCOVERY = "/.well-known/openid-configuration"

teams = Team.__table__  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCIM_GATEWAY_TOKEN", raising=False)
    monkeypatch.setenv(SECRET_VARIABLE, "client-secret-for-tests")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, str]:
    pem = saml_certificate()
    path = tmp_path / "idp.pem"
    path.write_text(pem, encoding="utf-8")
    return path, pem


@contextlib.contextmanager
def started(config: Path, database_url: str) -> Iterator[Gateway]:
    """A gateway started from ``config`` on ``database_url``, stopped on exit."""
    settings = load_settings(config).replace(database=DatabaseSettings(url=database_url))
    gateway = Gateway(settings)
    try:
        gateway.start()
        yield gateway
    finally:
        gateway.stop()


def start_fails(config: Path, database_url: str) -> str:
    with pytest.raises(ConfigError) as info, started(config, database_url):
        pass
    return str(info.value)


def team_row(gateway: Gateway, slug: str) -> Any:
    return gateway.db.call(
        lambda conn: conn.execute(select(teams).where(teams.c.slug == slug)).one()
    )


def new_slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def saml_section(slug: str, certificate: Path, *, name: str = "Acme") -> str:
    return f"""
[teams.{slug}]
name = "{name}"
scim_enabled = true
default_adapter = "generic"
options = {{ default_role = "viewer" }}

[teams.{slug}.sso]
method = "saml"
entity_id = "{ENTITY_ID}"
sso_url = "{SSO_URL}"
certificate = {{ file = "{certificate}" }}
"""


def oidc_section(slug: str, issuer: str) -> str:
    return f"""
[teams.{slug}]
scim_enabled = true

[teams.{slug}.sso]
method = "oidc"
issuer = "{issuer}"
client_id = "scim-gateway"
client_secret = {{ env = "{SECRET_VARIABLE}" }}
"""


def write(path: Path, *sections: str) -> Path:
    path.write_text("".join(sections), encoding="utf-8")
    return path


def test_config_teams_applied_at_start(
    tmp_path: Path,
    database_url: str,
    certificate: tuple[Path, str],
    oidc_provider: OidcProvider,
) -> None:
    saml, oidc = new_slug("saml"), new_slug("oidc")
    cert_path, pem = certificate
    config = write(
        tmp_path / "gateway.toml",
        saml_section(saml, cert_path),
        oidc_section(oidc, oidc_provider.issuer),
    )
    with started(config, database_url) as gateway:
        team = get_team(gateway.db, saml)
        assert (team.name, team.scim_enabled, team.default_adapter) == ("Acme", True, "generic")
        assert team.options == {"default_role": "viewer"}
        assert team.sso is not None
        assert team.sso["method"] == "saml"
        assert team.sso["entity_id"] == ENTITY_ID
        assert team.sso["certificate"] == pem

        team = get_team(gateway.db, oidc)
        assert team.scim_enabled
        assert team.name == oidc
        assert team.sso is not None
        assert team.sso["issuer"] == oidc_provider.issuer
        assert team.sso["jwks_uri"] == oidc_provider.jwks_uri
        assert team.sso["client_secret"] == {"env": SECRET_VARIABLE}
        assert oidc_provider.requests == [DISCOVERY, "/jwks"]

        for slug in (saml, oidc):
            _key, token = create_key(gateway.db, gateway.hasher, slug, "idp")
            assert gateway.keys.verify(token).team_slug == slug


def test_restart_with_same_file_changes_nothing(
    tmp_path: Path,
    database_url: str,
    certificate: tuple[Path, str],
    oidc_provider: OidcProvider,
) -> None:
    saml, oidc = new_slug("saml"), new_slug("oidc")
    config = write(
        tmp_path / "gateway.toml",
        saml_section(saml, certificate[0]),
        oidc_section(oidc, oidc_provider.issuer),
    )
    with started(config, database_url) as gateway:
        oidc_before = team_row(gateway, oidc)
        # A runtime change made between two starts, as `scim-gateway scim disable` would.
        disable_scim(gateway.db, saml)
        saml_before = team_row(gateway, saml)
    assert not saml_before.scim_enabled
    oidc_provider.reset()

    with started(config, database_url) as gateway:
        saml_after = team_row(gateway, saml)
        oidc_after = team_row(gateway, oidc)
    assert not saml_after.scim_enabled, "the runtime change did not survive the restart"
    assert saml_after.updated == saml_before.updated
    assert oidc_after.updated == oidc_before.updated
    assert saml_after._asdict() == saml_before._asdict()
    assert oidc_after._asdict() == oidc_before._asdict()
    assert oidc_provider.requests == [], "an unchanged section was validated again"


def test_edited_section_is_applied_at_next_start(
    tmp_path: Path,
    database_url: str,
    certificate: tuple[Path, str],
    oidc_provider: OidcProvider,
) -> None:
    saml, oidc = new_slug("saml"), new_slug("oidc")
    path = tmp_path / "gateway.toml"
    config = write(
        path, saml_section(saml, certificate[0]), oidc_section(oidc, oidc_provider.issuer)
    )
    with started(config, database_url) as gateway:
        disable_scim(gateway.db, saml)
        oidc_before = team_row(gateway, oidc)
    with started(config, database_url) as gateway:
        saml_before = team_row(gateway, saml)
    assert not saml_before.scim_enabled
    oidc_provider.reset()

    write(
        path,
        saml_section(saml, certificate[0], name="Acme Corporation"),
        oidc_section(oidc, oidc_provider.issuer),
    )
    with started(config, database_url) as gateway:
        saml_after = team_row(gateway, saml)
        oidc_after = team_row(gateway, oidc)
    assert saml_after.scim_enabled, "the edited section did not win over the runtime change"
    assert saml_after.name == "Acme Corporation"
    assert saml_after.updated > saml_before.updated
    assert saml_after.config_digest != saml_before.config_digest
    # Only the edited section was applied.
    assert oidc_after._asdict() == oidc_before._asdict()
    assert oidc_provider.requests == []


def test_runtime_change_after_edit_survives_again(
    tmp_path: Path, database_url: str, certificate: tuple[Path, str]
) -> None:
    slug = new_slug("saml")
    path = tmp_path / "gateway.toml"
    write(path, saml_section(slug, certificate[0]))
    with started(path, database_url):
        pass
    write(path, saml_section(slug, certificate[0], name="Renamed"))
    with started(path, database_url) as gateway:
        assert get_team(gateway.db, slug).scim_enabled
        disable_scim(gateway.db, slug)
    with started(path, database_url) as gateway:
        assert not get_team(gateway.db, slug).scim_enabled


def test_scim_enabled_without_sso_stops_startup(tmp_path: Path, database_url: str) -> None:
    slug = new_slug("nosso")
    config = write(tmp_path / "gateway.toml", f"[teams.{slug}]\nscim_enabled = true\n")
    message = start_fails(config, database_url)
    assert message.startswith(f"{config}: teams.{slug}: ")
    assert "scim_enabled = true needs SSO" in message
    assert f"[teams.{slug}.sso]" in message
    # The refused section was not recorded as applied: the next start refuses it again.
    message = start_fails(config, database_url)
    assert message.startswith(f"{config}: teams.{slug}: ")
    assert f"[teams.{slug}.sso]" in message


def test_sso_added_to_file_lets_scim_on(
    tmp_path: Path, database_url: str, certificate: tuple[Path, str]
) -> None:
    slug = new_slug("later")
    path = write(tmp_path / "gateway.toml", f"[teams.{slug}]\nscim_enabled = true\n")
    start_fails(path, database_url)
    write(path, saml_section(slug, certificate[0]))
    with started(path, database_url) as gateway:
        team = get_team(gateway.db, slug)
    assert team.scim_enabled and team.sso_method == "saml"


def test_failed_oidc_validation_is_retried_at_next_start(
    tmp_path: Path, database_url: str, oidc_provider: OidcProvider
) -> None:
    slug = new_slug("oidc")
    config = write(tmp_path / "gateway.toml", oidc_section(slug, oidc_provider.issuer))
    oidc_provider.discovery_status = 404
    message = start_fails(config, database_url)
    assert message.startswith(f"{config}: teams.{slug}: ")
    assert oidc_provider.issuer + DISCOVERY in message
    assert "HTTP 404" in message

    oidc_provider.reset()
    with started(config, database_url) as gateway:
        team = get_team(gateway.db, slug)
    assert team.scim_enabled
    assert team.sso is not None and team.sso["jwks_uri"] == oidc_provider.jwks_uri


def test_oidc_issuer_mismatch_stops_startup(
    tmp_path: Path, database_url: str, oidc_provider: OidcProvider
) -> None:
    slug = new_slug("oidc")
    oidc_provider.served_issuer = oidc_provider.issuer + "/"
    config = write(tmp_path / "gateway.toml", oidc_section(slug, oidc_provider.issuer))
    message = start_fails(config, database_url)
    assert message.startswith(f"{config}: teams.{slug}: ")
    assert "the issuer must match exactly" in message


def test_missing_oidc_client_secret_stops_startup(
    tmp_path: Path,
    database_url: str,
    oidc_provider: OidcProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SECRET_VARIABLE)
    slug = new_slug("oidc")
    config = write(tmp_path / "gateway.toml", oidc_section(slug, oidc_provider.issuer))
    message = start_fails(config, database_url)
    assert message.startswith(f"{config}: teams.{slug}.sso.client_secret: ")
    assert f"environment variable {SECRET_VARIABLE} is not set" in message
    assert "Export it" in message


def test_expired_certificate_file_stops_startup(tmp_path: Path, database_url: str) -> None:
    slug = new_slug("saml")
    cert = tmp_path / "old.pem"
    cert.write_text(saml_certificate(expired=True), encoding="utf-8")
    config = write(tmp_path / "gateway.toml", saml_section(slug, cert))
    message = start_fails(config, database_url)
    assert message.startswith(f"{config}: teams.{slug}: ")
    assert "The SAML signing certificate expired on " in message


def test_missing_certificate_file_stops_startup(tmp_path: Path, database_url: str) -> None:
    slug = new_slug("saml")
    absent = tmp_path / "absent.pem"
    config = write(tmp_path / "gateway.toml", saml_section(slug, absent))
    message = start_fails(config, database_url)
    assert message.startswith(f"{config}: teams.{slug}.sso.certificate: cannot read secret file")
    assert str(absent) in message


def test_team_turned_off_in_file(
    tmp_path: Path, database_url: str, certificate: tuple[Path, str]
) -> None:
    slug = new_slug("saml")
    path = write(tmp_path / "gateway.toml", saml_section(slug, certificate[0]))
    with started(path, database_url) as gateway:
        assert get_team(gateway.db, slug).scim_enabled
    write(path, saml_section(slug, certificate[0]).replace("scim_enabled = true", ""))
    with started(path, database_url) as gateway:
        # scim_enabled no longer declared: left as it is.
        assert get_team(gateway.db, slug).scim_enabled
        disable_scim(gateway.db, slug)
        enable_scim(gateway.db, slug)
    write(path, saml_section(slug, certificate[0]).replace("true", "false"))
    with started(path, database_url) as gateway:
        assert not get_team(gateway.db, slug).scim_enabled
