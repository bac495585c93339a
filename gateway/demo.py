"""``scim-gateway serve --demo``: a labelled demo team a newcomer can provision at once.

The demo team gets SAML SSO with a freshly generated, self-signed certificate (it
signs nothing; it only satisfies the SSO-before-SCIM rule), SCIM turned on, and a
new key, printed once. None of this happens without ``--demo``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .app import Gateway
from .sso import validate_saml
from .teams import TeamError, create_key, create_team, enable_scim, get_team, set_sso

__all__ = ["DEMO_TEAM", "demo_certificate", "setup_demo"]

DEMO_TEAM = "demo"
DEMO_NAME = "Demo team (created by --demo; not for real users)"


def demo_certificate() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "demo-idp.invalid")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def setup_demo(gateway: Gateway) -> str:
    """Make sure the demo team exists with SSO and SCIM on; return a new key for it."""
    try:
        team = get_team(gateway.db, DEMO_TEAM)
    except TeamError:
        team = create_team(gateway.db, DEMO_TEAM, DEMO_NAME)
    if team.sso is None:
        connection = validate_saml(
            "https://demo-idp.invalid/metadata",
            "https://demo-idp.invalid/sso/saml",
            demo_certificate(),
        )
        set_sso(gateway.db, DEMO_TEAM, connection)
    if not team.scim_enabled:
        enable_scim(gateway.db, DEMO_TEAM)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    _key, token = create_key(gateway.db, gateway.hasher, DEMO_TEAM, f"demo key {stamp}")
    return token
