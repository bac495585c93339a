"""SCIM Gateway."""
