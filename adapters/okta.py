"""``okta``: Okta's SCIM 2.0 client (OIN and AIW provisioning apps).

Okta speaks standard SCIM 2.0: every request it documents is one the gateway's core
already answers correctly for any client, so this adapter rewrites nothing. What
Okta sends, and where the core absorbs it, is listed on :class:`OktaAdapter`, each
item next to its source; tests/replays/test_okta.py replays each request over HTTP
with a key bound to this adapter, and checks that the strict ``generic`` adapter
answers Okta's requests exactly alike (no leniency is kept in the core for Okta's
sake only). See docs/idp/okta.md. The sources cited:

* [REFERENCE] Okta's "SCIM 2.0 Protocol Reference",
  https://developer.okta.com/docs/reference/scim/scim-20/
* [SPEC TEST] Okta's "Okta SCIM 2.0 SPEC Test" suite, which an Okta Integration
  Network submission must pass,
  https://developer.okta.com/standards/SCIM/SCIMFiles/Okta-SCIM-20-SPEC-Test.json
"""

from __future__ import annotations

from plugins import Adapter, AdapterRegistry, hookimpl

__all__ = ["OktaAdapter"]


class OktaAdapter(Adapter):
    """Okta's dialect, which is RFC 7644 as the core implements it.

    Every request and header Okta sends is handled by the core, for every IdP:
    media types in gateway/http.py, schema validation in gateway/scim/resource.py,
    PATCH in gateway/scim/patch.py, lifecycle policy in gateway/service.py and
    gateway/policy.py. Overriding a hook here would duplicate that logic. Each
    item below quotes what Okta sends, names its source, and says where the core
    handles it (``test_okta.py`` names the test that proves it).
    """

    name = "okta"
    description = "Okta provisioning (OIN and AIW SCIM 2.0 apps)."

    # 1. Existence check, always with paging ([REFERENCE] "Determine if the User
    #    already exists"):
    #      GET /scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22
    #          &startIndex=1&count=100
    #      User-Agent: Okta SCIM Client 1.0.0
    #    -> 200 {"schemas": [ListResponse], "totalResults": 0, "startIndex": 1,
    #    "itemsPerPage": 0, "Resources": []}; "The itemsPerPage, startIndex, and
    #    totalResults values need to be exchanged as integers, not as strings."
    #    Core: routes/common.list_response.
    #    Test: test_pushing_a_new_user_checks_existence_then_creates_it.
    #
    # 2. Create ([REFERENCE] "Create the User"), sent as Content-Type:
    #    application/json ([SPEC TEST] "Create Okta user with realistic values"):
    #      POST /Users {"schemas": [User], "userName": "test.user@okta.local", ...,
    #      "externalId": "00ujl29u0le5T6Aj10h7", "groups": [], "password": "1mz050nq",
    #      "active": true}
    #    -> 201 with the whole user ("Create new user returned empty user" fails the
    #    push). application/json is accepted by http.read_json; readOnly "groups" is
    #    dropped and "password" is never stored nor echoed by scim/resource.canonicalize.
    #    Tests: test_pushing_a_new_user_checks_existence_then_creates_it,
    #    test_the_password_okta_sends_is_never_stored_nor_echoed.
    #
    # 3. Duplicate ([SPEC TEST] "Expect failure when recreating user with same
    #    values") -> 409; [REFERENCE]'s example body {"detail": "User already exists in
    #    the database.", "status": 409} omits scimType, which RFC 7644 §3.3 requires:
    #    the core answers "status": "409", "scimType": "uniqueness".
    #    Tests: test_recreating_an_active_user_is_a_409_uniqueness_error,
    #    test_okta_spec_test_required_steps.
    #
    # 4. Case-insensitive userName ([SPEC TEST] "Username Case Sensitivity Check"):
    #      GET /Users?filter=userName eq "<userName in capitals>"
    #    userName is caseExact=false (RFC 7643 §4.1.1); the filter compiler in
    #    store/query.py compares it case-folded. Test: test_okta_spec_test_required_steps.
    #
    # 5. [SPEC TEST] preconditions: GET /Users?count=1&startIndex=1 returns a user with
    #    name.givenName, name.familyName, userName, active and emails[0].value (the
    #    gateway keeps no system user to sort first); GET /Users/00919288221112222 and
    #    "Authorization: non-token" answer {"schemas": [Error], "status": "404"/"401",
    #    "detail": ...} (scim/errors.ScimError.to_dict, auth.py).
    #    Test: test_okta_spec_test_required_steps.
    #
    # 6. Profile updates: GET, then PUT of the whole object ([REFERENCE] "Update a
    #    specific User (PUT)"), echoing readOnly attributes:
    #      PUT /Users/{id} {..., "id": "23a35c27-...", "name": {"givenName": "Another",
    #      "middleName": "Excited", "familyName": "User"}, "active": true,
    #      "groups": [], "meta": {"resourceType": "User"}}
    #    -> 200 with the user. canonicalize drops id, meta and groups (RFC 7644
    #    §3.5.1) and a password (AIW apps sync passwords by PUT); service._replace_user
    #    keeps "active" when a PUT leaves it out, so a partial AIW PUT never suspends
    #    (Delinea's notes on Okta SCIM, https://docs.delinea.com/online-help/
    #    delinea-platform/scim/okta-scim-provisioning/okta-scim-endpoint-reference.htm).
    #    Tests: test_a_profile_update_is_a_get_then_a_put_of_the_whole_user,
    #    test_a_put_with_a_foreign_id_in_the_body_updates_the_user_in_the_url,
    #    test_a_put_that_omits_active_does_not_suspend_the_user.
    #
    # 7. Deactivate and activate; Okta never DELETEs a user ([REFERENCE] "Update a
    #    specific User (PATCH)", "Delete Users"). OIN apps, a pathless replace:
    #      PATCH /Users/{id} {"schemas": [PatchOp], "Operations": [{"op": "replace",
    #      "value": {"active": false}}]}           (and {"active": true} to activate)
    #    AIW apps: PUT ... "active": false. -> 200 with the user. scim/patch.py applies
    #    pathless values; the team's deprovision policy (default "deactivate") keeps
    #    the user, readable, with its memberships. Tests: test_deactivating_keeps_the_
    #    user_and_its_groups_then_reactivating_restores_it,
    #    test_an_aiw_app_deactivates_and_reactivates_by_put.
    #
    # 8. Re-provisioning: after a deactivation, Okta may POST the user again with the
    #    same externalId (a 409 would lock the user out for good,
    #    https://github.com/better-auth/better-auth/issues/11111) -> 201, same id,
    #    active. The team's reprovision policy (default on) in service._create_user
    #    restores the user, also after deprovision = "delete" with tombstones.
    #    Tests: test_a_re_post_after_deactivation_restores_the_same_user,
    #    test_with_deprovision_delete_a_deactivation_deletes_and_a_re_post_restores.
    #
    # Group push, no quirk ([REFERENCE] "Create Groups"):
    #      POST /Groups {"schemas": [Group], "displayName": "Test SCIMv2", "members": []}
    #    -> 201 with the group; with members when Okta pushes a group that has some
    #    (https://github.com/oktadeveloper/okta-blog-archive/pull/701).
    #    Tests: test_pushing_an_empty_group_creates_it_without_members,
    #    test_pushing_a_group_and_changing_its_members.
    #
    # 9. Group rename, sent on every membership update, with the group's own id in
    #    the value ([REFERENCE] "Update a specific Group name"):
    #      PATCH /Groups/{id} {"schemas": [PatchOp], "Operations": [{"op": "replace",
    #      "value": {"id": "abf4dd94-...", "displayName": "Test SCIMv2"}}]}
    #    -> 204 (allowed by the reference). A pathless value's readOnly "id" is
    #    ignored by scim/patch.py; members are left alone.
    #    Test: test_pushing_a_group_and_changing_its_members.
    #
    # 10. Membership delta in one PATCH ([REFERENCE] "Update specific Group
    #     membership"):
    #       {"Operations": [{"op": "remove", "path": "members[value eq \"89bb...\"]"},
    #       {"op": "add", "path": "members", "value": [{"value": "23a35c27-...",
    #       "display": "test.user@okta.local"}]}]}
    #     -> 204. scim/patch.split_member_operations turns the filtered remove into a
    #     row-level delete (ignoring it breaks every push,
    #     https://github.com/goauthentik/authentik/issues/25686); "display" is readOnly.
    #     Also a full push, {"op": "replace", "path": "members", "value": [...]}.
    #     Test: test_pushing_a_group_and_changing_its_members.
    #
    # 11. "Push now" of an empty group
    #     (https://github.com/Captain-P-Goldfish/SCIM-SDK/issues/757):
    #       {"Operations": [{"op": "replace", "path": "members", "value": []}]}
    #     -> 204, no members left (split_member_operations: a "clear").
    #     Test: test_pushing_a_group_and_changing_its_members.
    #
    # 12. Import paging ([REFERENCE] "Retrieve Users", "Retrieve Groups"):
    #       GET /Users?startIndex=1&count=100, then startIndex=101, ... to totalResults
    #     "The SCIM server must consistently return the same ordering": the store
    #     orders by insertion (store/users.list_users, store/groups.list_groups), and
    #     itemsPerPage is the number returned.
    #     Test: test_importing_users_page_by_page_returns_each_user_once.
    #
    # 13. Group delete, when an admin unlinks a pushed group with "Delete the group
    #     in the target app" ([REFERENCE] "Delete a specific Group"):
    #       DELETE /Groups/{id} -> 204; the members stay, active.
    #     Test: test_pushing_a_group_and_changing_its_members.
    #
    # All of the above in one sequence, through this adapter and through ``generic``,
    # answered alike: test_okta_and_generic_answer_oktas_standard_requests_alike.


@hookimpl
def scim_gateway_register_adapters(registry: AdapterRegistry) -> None:
    registry.add(OktaAdapter)
