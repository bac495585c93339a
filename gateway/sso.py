"""SSO connections, the precondition for SCIM provisioning.

A team has at most one SSO method. Each is validated when it is saved:

- **SAML 2.0**: IdP entity ID, an https SSO URL, and an X.509 signing certificate
  that parses and has not expired.
- **OpenID Connect**: issuer, client id and a client-secret reference. The
  discovery document is fetched and validated with authlib; its issuer must match
  exactly, and its JWKS must be reachable and parse.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx

# httpx, authlib, joserfc and cryptography are imported by the functions that check
# an SSO connection: every gateway process and CLI command imports this module, few
# of them check one, and the four are a sixth of the start-up time.

__all__ = ["OidcConnection", "SamlConnection", "SsoError", "validate_oidc", "validate_saml"]


class SsoError(ValueError):
    """The SSO connection is not valid; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class SamlConnection:
    entity_id: str
    sso_url: str
    certificate: str
    not_after: datetime
    subject: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "saml",
            "entity_id": self.entity_id,
            "sso_url": self.sso_url,
            "certificate": self.certificate,
            "certificate_not_after": self.not_after.isoformat(),
            "certificate_subject": self.subject,
        }


@dataclass(frozen=True, slots=True)
class OidcConnection:
    issuer: str
    client_id: str
    client_secret: dict[str, str]  # a secret reference: {"env": NAME} or {"file": PATH}
    jwks_uri: str
    validated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "oidc",
            "issuer": self.issuer,
            "client_id": self.client_id,
            "client_secret": dict(self.client_secret),
            "jwks_uri": self.jwks_uri,
            "validated_at": self.validated_at.isoformat(),
        }


def _is_loopback(host: str | None) -> bool:
    """``localhost`` or a loopback IP address; a DNS name such as ``127.example.com`` is not."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_saml(entity_id: str, sso_url: str, certificate_pem: str) -> SamlConnection:
    if not entity_id.strip():
        raise SsoError("The SAML IdP entity ID is empty; copy it from the IdP's metadata.")
    parts = urlsplit(sso_url)
    if parts.scheme != "https" or not parts.hostname:
        raise SsoError(f"The SAML SSO URL must be an https:// URL; got {sso_url!r}.")
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise SsoError(
            "The SAML signing certificate is not a PEM X.509 certificate "
            "(-----BEGIN CERTIFICATE----- ...); download it again from the IdP."
        ) from exc
    not_after = cert.not_valid_after_utc
    if not_after <= datetime.now(UTC):
        raise SsoError(
            f"The SAML signing certificate expired on {not_after:%Y-%m-%d}; "
            "download the IdP's current certificate."
        )
    return SamlConnection(
        entity_id=entity_id.strip(),
        sso_url=sso_url,
        certificate=certificate_pem.strip() + "\n",
        not_after=not_after,
        subject=cert.subject.rfc4514_string(),
    )


def _fetch_json(client: httpx.Client, url: str, what: str) -> Any:
    import httpx

    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        raise SsoError(f"Cannot reach the {what} at {url}: {exc}.") from exc
    if response.status_code != 200:
        raise SsoError(f"The {what} at {url} answered HTTP {response.status_code}.")
    try:
        return response.json()
    except ValueError as exc:
        raise SsoError(f"The {what} at {url} is not JSON.") from exc


def validate_oidc(
    issuer: str,
    client_id: str,
    client_secret: dict[str, str],
    *,
    timeout: float = 10.0,
    verify: bool | str = True,
) -> OidcConnection:
    """Fetch and check the provider's discovery document and JWKS."""
    if not client_id.strip():
        raise SsoError("The OpenID Connect client id is empty.")
    parts = urlsplit(issuer)
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(parts.hostname)):
        raise SsoError(f"The OpenID Connect issuer must be an https:// URL; got {issuer!r}.")
    import httpx
    from authlib.oidc.discovery import OpenIDProviderMetadata, get_well_known_url
    from joserfc.jwk import KeySet

    url = get_well_known_url(issuer, external=True)
    with httpx.Client(timeout=timeout, verify=verify, follow_redirects=False) as client:
        document = _fetch_json(client, url, "discovery document")
        if not isinstance(document, dict):
            raise SsoError(f"The discovery document at {url} is not a JSON object.")
        metadata = OpenIDProviderMetadata(document)
        try:
            metadata.validate()
        except ValueError as exc:
            raise SsoError(f"The discovery document at {url} is invalid: {exc}.") from exc
        if document.get("issuer") != issuer:
            raise SsoError(
                f"The discovery document names issuer {document.get('issuer')!r}, not {issuer!r}; "
                "the issuer must match exactly (check a trailing slash)."
            )
        jwks_uri = str(document["jwks_uri"])
        jwks = _fetch_json(client, jwks_uri, "JWKS")
    if isinstance(jwks, dict) and jwks.get("keys") == []:
        raise SsoError(f"The JWKS at {jwks_uri} holds no keys.")
    try:
        keys = KeySet.import_key_set(jwks)
    except Exception as exc:  # joserfc raises several types for malformed sets
        raise SsoError(f"The JWKS at {jwks_uri} does not parse: {exc}.") from exc
    if not keys.keys:
        raise SsoError(f"The JWKS at {jwks_uri} holds no keys.")
    return OidcConnection(
        issuer=issuer,
        client_id=client_id.strip(),
        client_secret=dict(client_secret),
        jwks_uri=jwks_uri,
        validated_at=datetime.now(UTC),
    )
