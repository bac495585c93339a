"""SCIM Gateway: a multi-team SCIM 2.0 provisioning gateway."""

__version__ = "0.1.0"
