"""``jumpcloud``: JumpCloud's "Custom SCIM Identity Management" integration.

A SCIM Gateway adapter shipped as its own distribution, the way anyone's adapter
is: ``pip install scim-gateway-jumpcloud``, then bind a key to it with
``scim-gateway keys create <team> --name jumpcloud --adapter jumpcloud``.

What JumpCloud sends, and what this adapter does about it. The sources cited:

* [JUMPCLOUD] JumpCloud, "Identity Management using a Custom SCIM Integration",
  https://jumpcloud.com/support/provision-and-manage-users-and-groups-in-apps-using-custom-scim-identity-management-integration
* [UNIMONI] a secondary note by a SaaS vendor, unverified against JumpCloud's own
  documentation, https://app.uni-moni.com/en/kb/sso-setup-jumpcloud

Every behaviour below is standard SCIM 2.0 that the gateway's core answers for any
client, so the adapter rewrites nothing; it exists so that keys can name JumpCloud,
its provisioning events say ``adapter="jumpcloud"``, and a JumpCloud-specific fix,
once one is seen in real traffic, has a home. tests/test_jumpcloud.py proves each
item over HTTP.
"""

from __future__ import annotations

from plugins import Adapter, AdapterRegistry, hookimpl

__all__ = ["JumpCloudAdapter"]

__version__ = "0.1.0"


class JumpCloudAdapter(Adapter):
    """JumpCloud's dialect: RFC 7644 as the gateway's core implements it.

    1. Test Connection creates a test user and a test group, then DELETEs both
       ([JUMPCLOUD], "Considerations": "A test user and test group are created to
       test the integration. Both will be deleted if the DELETE method is supported
       by the service provider"; the test user's address is one the admin enters).
       The core's DELETE is a hard delete by default (RFC 7644 §3.6), so nothing is
       left behind and the next Test Connection can create the same test user again;
       with the team option ``delete_mode = "tombstone"`` the test user is hidden at
       once and restored, same id, when it is created again.
       Tests: test_test_connection_leaves_nothing_behind,
       test_test_connection_twice_with_tombstones.

    2. Group membership PATCH with an Entra-style value list and no filter
       ([UNIMONI], unverified): ``{"op": "remove", "path": "members", "value":
       [{"value": "<user id>"}]}``. The core removes exactly the listed members
       (gateway/scim/patch.py), as it does for Microsoft Entra ID; a remove without
       a value would empty the group (RFC 7644 §3.5.2.2). The RFC's filtered remove,
       ``members[value eq "..."]``, works as well.
       Test: test_member_patch_with_a_value_list_removes_only_those_listed.

    3. "No special attribute mapping or extension schemas required" ([JUMPCLOUD],
       "Prerequisites"): nothing to map. JumpCloud authenticates with a "SCIM API
       Key" or "Bearer Token" ([JUMPCLOUD]): paste the gateway's key as the token.
       JumpCloud also speaks SCIM 1.1; choose SCIM 2.0, the only version served.
    """

    name = "jumpcloud"
    description = "JumpCloud (Custom SCIM Identity Management integration)."


@hookimpl
def scim_gateway_register_adapters(registry: AdapterRegistry) -> None:
    registry.add(JumpCloudAdapter)
