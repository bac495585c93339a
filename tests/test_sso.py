"""SSO connections: SAML and OpenID Connect validation, and the SSO-before-SCIM gate.

OpenID Connect is checked against a real provider served over HTTP on loopback
(:mod:`tests.oidc_provider`), made to misbehave in each way the gateway must catch.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.config import DatabaseSettings, Settings
from gateway.scim.errors import Forbidden
from gateway.sso import SamlConnection, SsoError, validate_oidc, validate_saml
from gateway.teams import (
    TeamError,
    clear_sso,
    create_key,
    create_team,
    enable_scim,
    get_team,
    set_sso,
)
from tests.oidc_provider import (
    EMPTY_JWKS,
    GARBAGE_JSON,
    MALFORMED_JWKS,
    OidcProvider,
    closed_port,
)
from tests.support import ENTITY_ID, SSO_URL, saml_certificate

CLIENT_ID = "scim-gateway-tests"
SECRET_REF = {"env": "SCIM_GATEWAY_TEST_OIDC_SECRET"}
DISCOVERY = "/.well-known/openid-configuration"

# The real provider (one per run, reset for each test).


def oidc_error(provider: OidcProvider, issuer: str | None = None) -> str:
    with pytest.raises(SsoError) as info:
        validate_oidc(issuer or provider.issuer, CLIENT_ID, SECRET_REF, timeout=5)
    return str(info.value)


# --- OpenID Connect ----------------------------------------------------------------


def test_oidc_valid_provider(oidc_provider: OidcProvider) -> None:
    before = datetime.now(UTC)
    conn = validate_oidc(oidc_provider.issuer, f"  {CLIENT_ID} ", SECRET_REF, timeout=5)
    assert conn.issuer == oidc_provider.issuer
    assert conn.jwks_uri == oidc_provider.jwks_uri
    assert conn.client_id == CLIENT_ID
    assert conn.client_secret == SECRET_REF
    assert conn.validated_at >= before
    assert oidc_provider.requests == [DISCOVERY, "/jwks"]
    stored = conn.to_dict()
    assert stored["method"] == "oidc"
    assert stored["jwks_uri"] == oidc_provider.jwks_uri
    assert stored["client_secret"] == SECRET_REF  # the reference, never the secret


def test_oidc_issuer_must_match_exactly(oidc_provider: OidcProvider) -> None:
    oidc_provider.served_issuer = oidc_provider.issuer + "/"
    message = oidc_error(oidc_provider)
    assert "must match" in message
    assert repr(oidc_provider.issuer + "/") in message
    assert repr(oidc_provider.issuer) in message
    assert "/jwks" not in oidc_provider.requests


def test_oidc_issuer_of_another_provider(oidc_provider: OidcProvider) -> None:
    oidc_provider.served_issuer = "https://login.example.com/other-tenant/v2.0"
    message = oidc_error(oidc_provider)
    assert "the issuer must match exactly" in message
    assert "https://login.example.com/other-tenant/v2.0" in message


@pytest.mark.parametrize(
    "jwks_uri",
    ["http://keys.example.com/jwks", "http://127.0.0.1@keys.example.com/jwks"],
    ids=["cleartext", "loopback-userinfo"],
)
def test_oidc_cleartext_jwks_uri_refused(oidc_provider: OidcProvider, jwks_uri: str) -> None:
    """The discovery document may not send the gateway to fetch keys in cleartext."""
    oidc_provider.served_jwks_uri = jwks_uri
    message = oidc_error(oidc_provider)
    assert "discovery document" in message
    assert "is invalid" in message
    assert "jwks_uri" in message
    assert oidc_provider.requests == [DISCOVERY]


def test_oidc_jwks_server_error(oidc_provider: OidcProvider) -> None:
    oidc_provider.jwks_status = 500
    message = oidc_error(oidc_provider)
    assert oidc_provider.jwks_uri in message
    assert "HTTP 500" in message
    assert oidc_provider.requests == [DISCOVERY, "/jwks"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (GARBAGE_JSON, "is not JSON"),
        (EMPTY_JWKS, "holds no keys"),
        (MALFORMED_JWKS, "does not parse"),
        ('["not", "a", "key", "set"]', "does not parse"),
    ],
    ids=["garbage-json", "empty-keys", "malformed-key", "not-an-object"],
)
def test_oidc_jwks_that_does_not_parse(
    oidc_provider: OidcProvider,
    body: str,
    expected: str,
) -> None:
    oidc_provider.jwks_body = body
    message = oidc_error(oidc_provider)
    assert "JWKS" in message
    assert oidc_provider.jwks_uri in message
    assert expected in message


def test_oidc_discovery_missing(oidc_provider: OidcProvider) -> None:
    oidc_provider.discovery_status = 404
    message = oidc_error(oidc_provider)
    assert "discovery document" in message
    assert oidc_provider.issuer + DISCOVERY in message
    assert "HTTP 404" in message
    assert oidc_provider.requests == [DISCOVERY]


def test_oidc_issuer_unreachable() -> None:
    issuer = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(SsoError) as info:
        validate_oidc(issuer, CLIENT_ID, SECRET_REF, timeout=5)
    message = str(info.value)
    assert message.startswith("Cannot reach the discovery document")
    assert issuer + DISCOVERY in message


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record any HTTP client the code under test would open, and open none."""
    opened: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        opened.append("httpx.Client")
        raise AssertionError("validate_oidc made a network call")

    monkeypatch.setattr(httpx, "Client", refuse)
    return opened


@pytest.mark.parametrize(
    "issuer",
    [
        "http://login.example.com",
        "http://127.0.0.1.example.com",  # a DNS name, not a loopback address
        "http://localhost.example.com",
        "ftp://127.0.0.1/issuer",
        "login.example.com",
    ],
)
def test_oidc_issuer_must_be_https_off_loopback(no_network: list[str], issuer: str) -> None:
    with pytest.raises(SsoError) as info:
        validate_oidc(issuer, CLIENT_ID, SECRET_REF)
    assert "must be an https:// URL" in str(info.value)
    assert repr(issuer) in str(info.value)
    assert no_network == []


def test_oidc_empty_client_id_refused_without_network(no_network: list[str]) -> None:
    with pytest.raises(SsoError, match="client id is empty"):
        validate_oidc("https://login.example.com", "  ", SECRET_REF)
    assert no_network == []


# --- SAML --------------------------------------------------------------------------


def test_saml_valid_certificate() -> None:
    pem = saml_certificate(valid_days=30)
    conn = validate_saml(f" {ENTITY_ID} ", SSO_URL, "\n" + pem + "\n\n")
    assert conn.entity_id == ENTITY_ID
    assert conn.sso_url == SSO_URL
    assert conn.certificate == pem
    assert conn.subject == "CN=idp.example.com"
    now = datetime.now(UTC)
    assert now + timedelta(days=29) < conn.not_after <= now + timedelta(days=30)
    stored = conn.to_dict()
    assert stored["method"] == "saml"
    assert datetime.fromisoformat(stored["certificate_not_after"]) == conn.not_after


def test_saml_expired_certificate_gives_the_date() -> None:
    pem = saml_certificate(valid_days=30, expired=True)
    expired_on = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    with pytest.raises(SsoError) as info:
        validate_saml(ENTITY_ID, SSO_URL, pem)
    assert f"expired on {expired_on}" in str(info.value)
    assert "current certificate" in str(info.value)


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB\u00e9\n-----END CERTIFICATE-----\n",
    ],
    ids=["empty", "text", "bad-base64", "non-ascii"],
)
def test_saml_certificate_not_pem(pem: str) -> None:
    with pytest.raises(SsoError, match=r"not a PEM X\.509 certificate"):
        validate_saml(ENTITY_ID, SSO_URL, pem)


@pytest.mark.parametrize(
    "url",
    ["http://idp.example.com/sso/saml", "idp.example.com/sso", "https://", ""],
)
def test_saml_sso_url_must_be_https(url: str) -> None:
    with pytest.raises(SsoError, match=r"must be an https:// URL"):
        validate_saml(ENTITY_ID, url, saml_certificate())


@pytest.mark.parametrize("entity_id", ["", "   "])
def test_saml_empty_entity_id(entity_id: str) -> None:
    with pytest.raises(SsoError, match="entity ID is empty"):
        validate_saml(entity_id, SSO_URL, saml_certificate())


# --- the gate: SSO before SCIM, on each backend --------------------------------------


@pytest.fixture
def gateway(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    monkeypatch.delenv("SCIM_GATEWAY_TOKEN", raising=False)
    gw = Gateway(Settings(database=DatabaseSettings(url=database_url), source="<tests>"))
    gw.start()
    yield gw
    gw.stop()


def new_slug() -> str:
    return "sso-" + uuid.uuid4().hex[:12]


def test_oidc_sso_then_scim_on(gateway: Gateway, oidc_provider: OidcProvider) -> None:
    slug = new_slug()
    create_team(gateway.db, slug)
    conn = validate_oidc(oidc_provider.issuer, CLIENT_ID, SECRET_REF, timeout=5)
    team = set_sso(gateway.db, slug, conn)
    assert team.sso_method == "oidc"
    assert team.sso is not None and team.sso["jwks_uri"] == oidc_provider.jwks_uri
    assert not team.scim_enabled

    team = enable_scim(gateway.db, slug)
    assert team.scim_enabled
    _key, token = create_key(gateway.db, gateway.hasher, slug, "okta")
    assert gateway.keys.verify(token).team_slug == slug
    shown = get_team(gateway.db, slug).to_dict()
    assert shown["scim_enabled"] is True
    assert shown["sso"]["issuer"] == oidc_provider.issuer


def test_team_without_sso_cannot_enable_scim(gateway: Gateway) -> None:
    slug = new_slug()
    create_team(gateway.db, slug)
    with pytest.raises(TeamError) as info:
        enable_scim(gateway.db, slug)
    assert info.value.status == 409
    assert repr(slug) in str(info.value)
    assert "no SSO connection" in str(info.value)
    assert "Configure SSO first" in str(info.value)
    assert not get_team(gateway.db, slug).scim_enabled
    with pytest.raises(TeamError, match="SCIM provisioning is off"):
        create_key(gateway.db, gateway.hasher, slug, "okta")


def test_clear_sso_turns_scim_off(gateway: Gateway, oidc_provider: OidcProvider) -> None:
    slug = new_slug()
    create_team(gateway.db, slug)
    set_sso(gateway.db, slug, validate_oidc(oidc_provider.issuer, CLIENT_ID, SECRET_REF))
    enable_scim(gateway.db, slug)
    _key, token = create_key(gateway.db, gateway.hasher, slug, "okta")
    gateway.keys.verify(token)

    team = clear_sso(gateway.db, slug)
    assert team.sso is None
    assert not team.scim_enabled
    assert not get_team(gateway.db, slug).scim_enabled
    with pytest.raises(Forbidden):
        gateway.keys.verify(token)
    with pytest.raises(TeamError, match="no SSO connection"):
        enable_scim(gateway.db, slug)


def test_expired_saml_certificate_blocks_scim(gateway: Gateway) -> None:
    """A SAML connection saved while valid cannot turn SCIM on once its certificate
    has expired (the stored expiry is what the gate reads)."""
    slug = new_slug()
    create_team(gateway.db, slug)
    conn = validate_saml(ENTITY_ID, SSO_URL, saml_certificate())
    stale = SamlConnection(
        entity_id=conn.entity_id,
        sso_url=conn.sso_url,
        certificate=conn.certificate,
        not_after=datetime.now(UTC) - timedelta(days=1),
        subject=conn.subject,
    )
    set_sso(gateway.db, slug, stale)
    with pytest.raises(TeamError, match="SAML signing certificate expired on"):
        enable_scim(gateway.db, slug)
