"""Test support: certificates, and teams provisioned the way an admin would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from starlette.testclient import TestClient

from gateway.app import Gateway
from gateway.keys import parse_key
from gateway.sso import validate_saml
from gateway.store.tables import ApiKey
from gateway.teams import create_key, create_team, enable_scim, set_sso

SSO_URL = "https://idp.example.com/sso/saml"
ENTITY_ID = "https://idp.example.com/metadata"


def saml_certificate(*, valid_days: int = 365, expired: bool = False) -> str:
    """A self-signed PEM certificate, like the one an IdP shows for SAML signing."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example.com")])
    now = datetime.now(UTC)
    start = now - timedelta(days=2 * valid_days if expired else 1)
    end = now - timedelta(days=1) if expired else now + timedelta(days=valid_days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def provision(
    gateway: Gateway, slug: str, *, adapter: str | None = None, key_name: str = "idp"
) -> str:
    """Create team ``slug`` with SAML SSO and SCIM on; return a fresh key for it."""
    create_team(gateway.db, slug)
    set_sso(gateway.db, slug, validate_saml(ENTITY_ID, SSO_URL, saml_certificate()))
    enable_scim(gateway.db, slug)
    _info, token = create_key(gateway.db, gateway.hasher, slug, key_name, adapter=adapter)
    return token


def team_pk_of(client: TestClient) -> int:
    """The database key of the team whose SCIM key ``client`` sends."""
    token = client.headers["Authorization"].removeprefix("Bearer ")
    gateway: Gateway = client.app.state.gateway  # type: ignore[attr-defined]
    keys = ApiKey.__table__  # type: ignore[attr-defined]
    with gateway.db.engine.connect() as conn:
        pk: int = conn.execute(
            select(keys.c.team_pk).where(keys.c.key_id == parse_key(token))
        ).scalar_one()
    return pk
