"""The ``oidc_provider`` fixture: one real OpenID provider per test run, reset per test.

Make it available to every test from ``tests/conftest.py`` with::

    from tests.oidc_fixtures import oidc_provider, oidc_provider_server  # noqa: F401

or to one module's tests (an import there would be redefined by each test's
parameter, which linters flag) with::

    oidc_provider_server = oidc_fixtures.oidc_provider_server
    oidc_provider = oidc_fixtures.oidc_provider
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oidc_provider import OidcProvider, run_oidc_provider

__all__ = ["oidc_provider", "oidc_provider_server"]


@pytest.fixture(scope="session")
def oidc_provider_server() -> Iterator[OidcProvider]:
    with run_oidc_provider() as provider:
        yield provider


@pytest.fixture
def oidc_provider(oidc_provider_server: OidcProvider) -> Iterator[OidcProvider]:
    """The provider, behaving and with no requests recorded; switches flipped by the test
    are put back afterwards."""
    oidc_provider_server.reset()
    yield oidc_provider_server
    oidc_provider_server.reset()
