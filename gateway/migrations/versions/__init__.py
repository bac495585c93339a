"""Revisions, one module each, applied in order of their ``down_revision`` links."""
