"""The contract runs on every backend the suite runs on: the test kit's
``scim_gateway_settings`` (SQLite only) gives way to the suite's ``settings``."""

from __future__ import annotations

import pytest

from gateway.config import Settings


@pytest.fixture
def scim_gateway_settings(settings: Settings) -> Settings:
    return settings
