"""Every adapter loaded by the installed gateway passes the adapter contract.

The list comes from the entry points, so a third party's adapter installed next to
the gateway (``pip install -e examples/jumpcloud``) is held to the same contract as
the built-in ones.
"""

from __future__ import annotations

import pytest

from plugins import GatewayPlugins
from plugins.testing import AdapterContract, ScimClientFactory, observe_events
from tests.conftest import USER_SCHEMA

ADAPTERS = [cls.name for cls in GatewayPlugins().registry.classes()]


def test_the_built_in_adapters_are_all_under_contract() -> None:
    assert {"generic", "okta", "entra", "onelogin"} <= set(ADAPTERS)


@pytest.mark.parametrize("adapter_name", ADAPTERS)
class TestAdapterContract(AdapterContract):
    """One test per clause of the contract, per adapter, per backend."""


ALIASES = [
    (cls.name, alias) for cls in GatewayPlugins().registry.classes() for alias in cls.aliases
]


@pytest.mark.parametrize(("adapter_name", "alias"), ALIASES)
def test_a_key_bound_to_an_alias_goes_through_the_adapter(
    scim_client_factory: ScimClientFactory, adapter_name: str, alias: str
) -> None:
    client = scim_client_factory(adapter=alias)
    with observe_events(client) as events:
        body = {"schemas": [USER_SCHEMA], "userName": f"{alias}@example.com"}
        response = client.post("/scim/v2/Users", json=body)
    assert response.status_code == 201, response.text
    assert [(e.kind, e.adapter) for e in events] == [("user.created", adapter_name)]
