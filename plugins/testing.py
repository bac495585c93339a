"""The test kit for adapter authors: pytest fixtures and the adapter contract.

Installing ``scim-gateway`` registers this module as a pytest plugin (entry point
``pytest11: scim_gateway``), so an adapter's own test suite gets, with no conftest:

``scim_gateway_settings``
    :class:`gateway.config.Settings` on a fresh SQLite file in the test's
    ``tmp_path``. Override the fixture to test on another database.

``scim_client_factory``
    A callable ``scim_client(adapter="okta", team=None)`` returning a
    :class:`ScimTestClient`: a Starlette ``TestClient`` (ASGI, no network) on a
    freshly started gateway, holding a new key bound to ``adapter`` of a new team
    that has SAML SSO (a generated self-signed certificate) and SCIM on, set up
    the way ``scim-gateway teams create``/``sso set-saml``/``scim enable``/``keys
    create`` do it. Clients are closed when the test ends.

and the contract every adapter must pass, runnable in one line::

    from plugins.testing import assert_conforms

    def test_my_adapter_conforms():
        assert_conforms("jumpcloud")

or as a test class, one test per clause::

    from plugins.testing import AdapterContract

    class TestJumpCloudContract(AdapterContract):
        adapter = "jumpcloud"

The contract: the adapter is registered under its name and aliases; its hooks are
pure (deterministic, and they never mutate their input); standard RFC 7644
requests still work through it over HTTP (create, read, filter, replace,
deactivate and delete a User; create a Group, add and remove members, read it
without members), and malformed ones still get the core's 400, not a crash; and
``render`` keeps ``id``, ``meta`` and ``schemas``.

Unlike the rest of :mod:`plugins`, this module drives the gateway and so imports
it; nothing else in :mod:`plugins` may.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import update
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.config import DatabaseSettings, Settings
from gateway.keys import parse_key
from gateway.policy import TeamPolicy
from gateway.sso import validate_saml
from gateway.teams import TeamError, create_key, create_team, enable_scim, set_sso
from gateway.teams import teams as teams_table

from .adapter import ENTERPRISE_USER, Adapter
from .hookspecs import hookimpl
from .manager import GatewayPlugins
from .model import Inbound, Outbound, ProvisioningEvent

__all__ = [
    "AdapterContract",
    "ScimClientFactory",
    "ScimTestClient",
    "assert_conforms",
    "check_groups",
    "check_hooks_are_pure",
    "check_registered",
    "check_users",
    "observe_events",
    "open_scim_client",
    "provision_team",
    "saml_certificate",
    "scim_client_factory",
    "scim_gateway_settings",
    "sqlite_settings",
]

SCIM_MEDIA_TYPE = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

SAML_ENTITY_ID = "https://idp.example.test/metadata"
SAML_SSO_URL = "https://idp.example.test/sso/saml"


# --- a gateway, a team and a key, as an operator would set them up -------------------


def sqlite_settings(directory: Path) -> Settings:
    """Settings for a gateway on a new SQLite file in ``directory``."""
    url = f"sqlite:///{directory / 'scim-gateway.sqlite3'}"
    return Settings(database=DatabaseSettings(url=url), source="<scim-gateway test kit>")


def saml_certificate(*, valid_days: int = 365) -> str:
    """A self-signed PEM certificate, like the SAML signing certificate an IdP shows."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=valid_days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def provision_team(
    gateway: Gateway,
    slug: str,
    *,
    adapter: str | None,
    options: Mapping[str, Any] | None = None,
    key_name: str = "scim-test",
) -> str:
    """Create team ``slug`` (SAML SSO, SCIM on) unless it exists, set its ``options``
    when given, and return a new key of it bound to ``adapter``."""
    try:
        create_team(gateway.db, slug)
    except TeamError as exc:
        if exc.status != 409:  # 409: the team exists, and already has SSO and SCIM on
            raise
    else:
        saml = validate_saml(SAML_ENTITY_ID, SAML_SSO_URL, saml_certificate())
        set_sso(gateway.db, slug, saml)
        enable_scim(gateway.db, slug)
    if options is not None:
        TeamPolicy.from_options(options)  # the gateway validates options when saved
        values = {"options": dict(options)}
        statement = update(teams_table).where(teams_table.c.slug == slug).values(**values)
        gateway.db.call(lambda conn: conn.execute(statement), write=True)
    _info, token = create_key(gateway.db, gateway.hasher, slug, key_name, adapter=adapter)
    return token


class ScimTestClient(TestClient):
    """A ``TestClient`` that sends one team's SCIM key.

    Besides the usual ``get``/``post``/``put``/``patch``/``delete``, it knows the
    ``gateway`` it talks to, the ``team`` slug, its ``key_id`` and the ``adapter``
    name its key is bound to (``None``: the team's default adapter).
    """

    gateway: Gateway
    team: str
    key_id: str
    adapter: str | None


@contextlib.contextmanager
def open_scim_client(
    settings: Settings,
    *,
    adapter: str | None = "okta",
    team: str | None = None,
    options: Mapping[str, Any] | None = None,
    extra_plugins: Sequence[object] = (),
) -> Iterator[ScimTestClient]:
    """Start a gateway on ``settings`` and yield a client holding a new key.

    ``extra_plugins`` are registered next to the installed ones, as if installed:
    a plugin can be tried before it is packaged.
    """
    app = create_app(settings)
    gateway: Gateway = app.state.gateway
    if extra_plugins:
        gateway.plugins = GatewayPlugins(blocked=gateway.plugins.blocked, extra=extra_plugins)
    headers = {"Content-Type": SCIM_MEDIA_TYPE, "Accept": SCIM_MEDIA_TYPE}
    with ScimTestClient(app, base_url="http://testserver", headers=headers) as client:
        slug = team or "kit-" + uuid.uuid4().hex[:12]
        token = provision_team(gateway, slug, adapter=adapter, options=options)
        client.headers["Authorization"] = f"Bearer {token}"
        client.gateway = gateway
        client.team = slug
        client.key_id = parse_key(token) or ""
        client.adapter = adapter
        yield client


class ScimClientFactory(Protocol):
    """The callable the ``scim_client_factory`` fixture returns."""

    def __call__(
        self,
        adapter: str | None = "okta",
        team: str | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        extra_plugins: Sequence[object] = (),
        settings: Settings | None = None,
    ) -> ScimTestClient: ...


@pytest.fixture
def scim_gateway_settings(tmp_path: Path) -> Settings:
    """Gateway settings on a new SQLite file; override to use another database."""
    return sqlite_settings(tmp_path)


@pytest.fixture
def scim_client_factory(scim_gateway_settings: Settings) -> Iterator[ScimClientFactory]:
    """``scim_client(adapter="okta", team=None)``: a client with a new key bound to
    ``adapter``, of a new team (or of ``team``, created if it does not exist).

    Keyword arguments: ``options`` sets the team's options (lifecycle policy,
    ``attribute_map``...); ``extra_plugins`` registers uninstalled plugins;
    ``settings`` replaces ``scim_gateway_settings`` for this client.
    """
    with contextlib.ExitStack() as stack:

        def scim_client(
            adapter: str | None = "okta",
            team: str | None = None,
            *,
            options: Mapping[str, Any] | None = None,
            extra_plugins: Sequence[object] = (),
            settings: Settings | None = None,
        ) -> ScimTestClient:
            return stack.enter_context(
                open_scim_client(
                    settings or scim_gateway_settings,
                    adapter=adapter,
                    team=team,
                    options=options,
                    extra_plugins=extra_plugins,
                )
            )

        yield scim_client


class _EventRecorder:
    def __init__(self) -> None:
        self.events: list[ProvisioningEvent] = []

    @hookimpl
    def scim_gateway_provisioning_event(self, event: ProvisioningEvent) -> None:
        self.events.append(event)


@contextlib.contextmanager
def observe_events(client: ScimTestClient) -> Iterator[list[ProvisioningEvent]]:
    """Collect the provisioning events the client's gateway delivers meanwhile."""
    recorder = _EventRecorder()
    pm = client.gateway.plugins.pm
    pm.register(recorder)
    try:
        yield recorder.events
    finally:
        pm.unregister(recorder)


# --- the contract: registration ------------------------------------------------------


def check_registered(adapter_name: str, plugins: GatewayPlugins | None = None) -> type[Adapter]:
    """The adapter is loaded, under its name and each of its aliases."""
    plugins = plugins if plugins is not None else GatewayPlugins()
    cls = plugins.registry.get(adapter_name)
    assert cls is not None, (
        f"No adapter named {adapter_name!r} is loaded (loaded: "
        f"{', '.join(plugins.registry.canonical_names()) or 'none'}). Is its distribution "
        "installed (pip install -e .), its module listed under "
        "[project.entry-points.scim_gateway], and does the module's "
        "scim_gateway_register_adapters hook call registry.add(...)?"
    )
    assert issubclass(cls, Adapter), f"{cls!r} is not a subclass of plugins.Adapter"
    assert cls.name and cls.name == cls.name.strip(), f"{cls.__qualname__}.name is blank"
    names = (cls.name, *cls.aliases)
    assert adapter_name.lower() in {n.lower() for n in names}, (
        f"{adapter_name!r} resolves to {cls.__qualname__}, which does not claim it"
    )
    for name in names:
        assert plugins.registry.get(name) is cls, (
            f"{cls.__qualname__} claims {name!r}, but that name resolves to "
            f"{plugins.registry.get(name)!r}"
        )
    instance = plugins.adapter(adapter_name)
    assert isinstance(instance, cls), f"plugins.adapter({adapter_name!r}) is {instance!r}"
    return cls


# --- the contract: pure hooks --------------------------------------------------------

_META = {
    "resourceType": "User",
    "created": "2024-05-01T08:00:00Z",
    "lastModified": "2024-05-02T09:30:00Z",
    "location": "https://scim.example.test/scim/v2/Users/5d48a0a8-e3a6-4c3f-9a1b-6c1f2e3d4b5a",
    "version": 'W/"3"',
}

_CANONICAL_USER: dict[str, Any] = {
    "schemas": [USER_SCHEMA, ENTERPRISE_USER],
    "id": "5d48a0a8-e3a6-4c3f-9a1b-6c1f2e3d4b5a",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "userName": "ada.lovelace@example.test",
    "name": {"givenName": "Ada", "familyName": "Lovelace", "formatted": "Ada Lovelace"},
    "displayName": "Ada Lovelace",
    "emails": [{"value": "ada.lovelace@example.test", "type": "work", "primary": True}],
    "active": True,
    ENTERPRISE_USER: {"department": "Engineering", "manager": {"value": "e7c1"}},
    "urn:example:params:scim:schemas:extension:acme:2.0:User": {"costCode": "CC-42"},
    "meta": _META,
}

_CANONICAL_GROUP: dict[str, Any] = {
    "schemas": [GROUP_SCHEMA],
    "id": "0f9c3a52-71d4-4b8e-8f0e-2d7b9c1a6e34",
    "displayName": "Engineering",
    "members": [
        {
            "value": _CANONICAL_USER["id"],
            "$ref": _META["location"],
            "display": "ada.lovelace@example.test",
            "type": "User",
        }
    ],
    "meta": {
        **_META,
        "resourceType": "Group",
        "location": "https://scim.example.test/scim/v2/Groups/0f9c3a52-71d4-4b8e-8f0e-2d7b9c1a6e34",
    },
}

_QUERIES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "User",
        "GET",
        {
            "filter": 'userName eq "ada.lovelace@example.test"',
            "startIndex": "1",
            "count": "100",
            "sortBy": None,
            "sortOrder": None,
            "attributes": None,
            "excludedAttributes": None,
        },
    ),
    (
        "User",
        "GET",
        {
            "filter": 'emails[type eq "work"].value eq "ada.lovelace@example.test"',
            "startIndex": None,
            "count": "1",
            "sortBy": "userName",
            "sortOrder": "ascending",
            "attributes": "userName,active",
            "excludedAttributes": None,
        },
    ),
    (
        "Group",
        "POST",
        {
            "filter": 'displayName eq "Engineering"',
            "startIndex": 1,
            "count": 100,
            "sortBy": None,
            "sortOrder": None,
            "attributes": None,
            "excludedAttributes": ["members"],
        },
    ),
]

_RESOURCES: list[tuple[str, str, Any]] = [
    (
        "User",
        "POST",
        {
            "schemas": [USER_SCHEMA],
            "userName": "ada.lovelace@example.test",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"primary": True, "value": "ada.lovelace@example.test", "type": "work"}],
            "displayName": "Ada Lovelace",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": True,
        },
    ),
    (
        "User",
        "POST",
        {
            "schemas": [USER_SCHEMA, ENTERPRISE_USER],
            "userName": "grace@example.test",
            "active": "True",
            "emails": [{"value": "grace@example.test", "type": "work", "primary": True}],
            ENTERPRISE_USER: {"manager": "2c2f6fb8", "department": "Research"},
        },
    ),
    (
        "User",
        "PUT",
        {
            "schemas": ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"],
            "id": _CANONICAL_USER["id"],
            "userName": "ada.lovelace@example.test",
            "name": {"givenName": "Ada", "middleName": "King", "familyName": "Lovelace"},
            "groups": [],
            "meta": {"resourceType": "User"},
        },
    ),
    (
        "Group",
        "POST",
        {
            "schemas": [
                GROUP_SCHEMA,
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
            ],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Engineering",
            "members": [{"value": _CANONICAL_USER["id"]}],
            "meta": {"resourceType": "Group"},
        },
    ),
    ("User", "POST", []),  # not a JSON object: an adapter must leave validation to the core
]


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


_PATCHES: list[tuple[str, dict[str, Any]]] = [
    ("User", _patch({"op": "replace", "path": "active", "value": False})),
    ("User", _patch({"op": "replace", "value": {"active": False}})),
    ("User", _patch({"op": "Replace", "path": "active", "value": "False"})),
    (
        "User",
        _patch(
            {
                "op": "replace",
                "value": {
                    "displayName": "Ada King",
                    "name.givenName": "Ada",
                    f"{ENTERPRISE_USER}:employeeNumber": "701984",
                },
            }
        ),
    ),
    (
        "User",
        _patch(
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "ada@example.test",
            },
            {"op": "Add", "path": f"{ENTERPRISE_USER}:manager", "value": "2c2f6fb8"},
        ),
    ),
    (
        "Group",
        _patch(
            {"op": "remove", "path": f'members[value eq "{_CANONICAL_USER["id"]}"]'},
            {"op": "add", "path": "members", "value": [{"value": "23a3", "display": "x"}]},
        ),
    ),
    ("Group", _patch({"op": "Remove", "path": "members", "value": [{"value": "u1091"}]})),
    ("Group", _patch({"op": "Add", "path": "members", "value": [{"$ref": None, "value": "f6"}]})),
    (
        "Group",
        _patch({"op": "replace", "value": {"id": _CANONICAL_GROUP["id"], "displayName": "Eng"}}),
    ),
    ("Group", _patch({"op": "replace", "path": "members", "value": []})),
    ("User", {"Operations": "not a list"}),
]

_OPTIONS: Mapping[str, Any] = {
    "attribute_map": {
        "urn:example:params:scim:schemas:extension:acme:2.0:User:costCode": "cost_center",
        "title": "title",
    }
}


def _call_twice(label: str, hook: Callable[..., Any], *args: Any) -> Any:
    """Call ``hook(*args)`` twice: the calls must agree, leave ``args`` as they were,
    and the second must not change what the first returned."""
    args = copy.deepcopy(args)  # the shared samples never reach the hook itself
    before = copy.deepcopy(args)
    outcomes: list[tuple[str, Any]] = []
    snapshot: Any = None
    for _ in range(2):
        try:
            outcomes.append(("returned", hook(*args)))
        except Exception as exc:
            outcomes.append(("raised", type(exc)))
        assert args == before, f"{label} mutated its input: {before!r} became {args!r}"
        if len(outcomes) == 1:
            snapshot = copy.deepcopy(outcomes[0])
    (kind1, first), (kind2, second) = outcomes
    assert (kind2, second) == snapshot, (
        f"{label} is not deterministic: it {kind1} {snapshot[1]!r}, then {kind2} {second!r}"
    )
    assert (kind1, first) == snapshot, f"{label}: the second call changed the first's result"
    return first if kind1 == "returned" else None


def _keeps(resource: Mapping[str, Any], rendered: Any, where: str) -> None:
    assert isinstance(rendered, Mapping), f"{where}: render returned {rendered!r}"
    assert rendered.get("id") == resource["id"], f"{where}: render changed or dropped id"
    meta = rendered.get("meta")
    assert isinstance(meta, Mapping), f"{where}: render dropped meta"
    for key, value in resource["meta"].items():
        assert meta.get(key) == value, f"{where}: render changed or dropped meta.{key}"
    schemas = rendered.get("schemas")
    assert isinstance(schemas, list), f"{where}: render dropped schemas"
    missing = [s for s in resource["schemas"] if s not in schemas]
    assert not missing, f"{where}: render dropped schemas {missing}"


def check_hooks_are_pure(adapter_name: str, plugins: GatewayPlugins | None = None) -> None:
    """Every hook, called twice on one input (standard requests and the dialects of
    the IdPs the gateway knows), gives equal results and never mutates its input;
    ``render`` keeps ``id``, ``meta`` and ``schemas``."""
    plugins = plugins if plugins is not None else GatewayPlugins()
    cls = check_registered(adapter_name, plugins)
    adapter = cls()
    name = cls.name
    user_agents = (None, "Okta SCIM Client 1.0.0")

    def inbound(rt: str, method: str, agent: str | None, options: Mapping[str, Any]) -> Inbound:
        return Inbound(
            team="contract",
            adapter=name,
            resource_type=rt,
            method=method,
            options=options,
            user_agent=agent,
        )

    for agent in user_agents:
        for rt, method, params in _QUERIES:
            ctx = inbound(rt, method, agent, {})
            _call_twice(f"{name}.normalize_query({params!r})", adapter.normalize_query, params, ctx)
        for rt, method, body in _RESOURCES:
            ctx = inbound(rt, method, agent, _OPTIONS)
            label = f"{name}.normalize_resource({body!r})"
            _call_twice(label, adapter.normalize_resource, body, ctx)
        for rt, body in _PATCHES:
            current = copy.deepcopy(_CANONICAL_USER if rt == "User" else _CANONICAL_GROUP)
            current.pop("members", None)  # the gateway passes a Group without its members
            ctx = inbound(rt, "PATCH", agent, _OPTIONS)
            label = f"{name}.normalize_patch({body!r})"
            _call_twice(label, adapter.normalize_patch, body, current, ctx)
    for resource in (_CANONICAL_USER, _CANONICAL_GROUP):
        rt = "User" if resource is _CANONICAL_USER else "Group"
        for options in ({}, _OPTIONS):
            ctx = inbound(rt, "PUT", None, options)
            mapped = _call_twice(
                f"{name}.map_attributes({rt})", adapter.map_attributes, resource, ctx
            )
            assert isinstance(mapped, dict), f"{name}.map_attributes returned {mapped!r}"
        out = Outbound(
            team="contract",
            adapter=name,
            resource_type=rt,
            base_url="https://scim.example.test/scim/v2",
            options=_OPTIONS,
        )
        rendered = _call_twice(f"{name}.render({rt})", adapter.render, resource, out)
        _keeps(resource, rendered, f"{name}.render({rt})")


# --- the contract: standard requests over HTTP ---------------------------------------


class _Response(Protocol):
    """What the checks read of a response (httpx's or httpx2's)."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    def json(self) -> Any: ...


def _body(response: _Response, status: int | tuple[int, ...], what: str) -> Any:
    expected = (status,) if isinstance(status, int) else status
    assert response.status_code in expected, (
        f"{what}: expected HTTP {' or '.join(map(str, expected))}, got "
        f"{response.status_code}: {response.text}"
    )
    if response.status_code == 204:
        return None
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media == SCIM_MEDIA_TYPE, f"{what}: Content-Type is {media!r}, not {SCIM_MEDIA_TYPE}"
    return response.json()


def _is_error(body: Any, status: int) -> bool:
    return (
        isinstance(body, dict)
        and ERROR in body.get("schemas", [])
        and body.get("status") == str(status)
        and bool(body.get("detail"))
    )


def _rendered(resource: Any, rt: str, resource_id: str | None, what: str) -> None:
    assert isinstance(resource, dict), f"{what}: not a resource: {resource!r}"
    assert resource.get("id"), f"{what}: no id in {resource!r}"
    if resource_id is not None:
        assert resource["id"] == resource_id, f"{what}: id is {resource['id']!r}"
    schema = USER_SCHEMA if rt == "User" else GROUP_SCHEMA
    assert schema in resource.get("schemas", []), f"{what}: schemas lacks {schema}"
    meta = resource.get("meta")
    assert isinstance(meta, dict), f"{what}: no meta"
    assert meta.get("resourceType") == rt, f"{what}: meta.resourceType is {meta!r}"
    location = str(meta.get("location", ""))
    assert location.endswith(f"/{rt}s/{resource['id']}"), f"{what}: meta.location {location!r}"
    assert meta.get("created") and meta.get("lastModified"), f"{what}: meta lacks timestamps"


def _expected_adapter(client: ScimTestClient) -> str | None:
    if client.adapter is None:
        return None
    cls = client.gateway.plugins.registry.get(client.adapter)
    return cls.name if cls is not None else None


def _events_came_through_adapter(client: ScimTestClient, events: list[ProvisioningEvent]) -> None:
    expected = _expected_adapter(client)
    assert events, "the gateway delivered no provisioning event for the writes"
    for event in events:
        assert event.team == client.team, f"event {event.kind} names team {event.team!r}"
        assert event.key_id == client.key_id, f"event {event.kind} names key {event.key_id!r}"
        if expected is not None:
            assert event.adapter == expected, (
                f"event {event.kind} went through adapter {event.adapter!r}, not {expected!r}"
            )


def check_users(client: ScimTestClient) -> None:
    """Create, read, filter, replace, deactivate and delete a User (RFC 7644 §3.3-3.6)."""
    user_name = f"contract.{uuid.uuid4().hex[:10]}@example.test"
    # What an adapter does not understand it passes on, for the core to refuse with a 400.
    refused = client.post("/scim/v2/Users", json=["not", "a", "user"])
    assert refused.status_code == 400, f"POST /Users with a JSON array: {refused.text}"
    assert _is_error(refused.json(), 400), f"POST /Users with a JSON array: {refused.text}"
    with observe_events(client) as events:
        created = _body(
            client.post(
                "/scim/v2/Users",
                json={
                    "schemas": [USER_SCHEMA],
                    "userName": user_name,
                    "externalId": uuid.uuid4().hex,
                    "name": {"givenName": "Ada", "familyName": "Lovelace"},
                    "displayName": "Ada Lovelace",
                    "emails": [{"value": user_name, "type": "work", "primary": True}],
                    "active": True,
                },
            ),
            201,
            "POST /Users",
        )
        _rendered(created, "User", None, "POST /Users")
        assert created.get("userName") == user_name, f"POST /Users answered {created!r}"
        user_id = created["id"]
        path = f"/scim/v2/Users/{user_id}"

        fetched = _body(client.get(path), 200, f"GET {path}")
        _rendered(fetched, "User", user_id, f"GET {path}")
        assert fetched.get("userName") == user_name
        assert fetched.get("active") is True, f"GET {path}: active is {fetched.get('active')!r}"

        found = _body(
            client.get("/scim/v2/Users", params={"filter": f'userName eq "{user_name}"'}),
            200,
            "GET /Users?filter=userName eq",
        )
        assert LIST_RESPONSE in found.get("schemas", []), f"not a ListResponse: {found!r}"
        assert found.get("totalResults") == 1, f"userName eq found {found!r}"
        assert [r.get("id") for r in found.get("Resources", [])] == [user_id]
        _rendered(found["Resources"][0], "User", user_id, "GET /Users?filter=...")

        replacement = {
            "schemas": [USER_SCHEMA],
            "userName": user_name,
            "name": {"givenName": "Augusta Ada", "familyName": "King"},
            "displayName": "Augusta Ada King",
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            "active": True,
        }
        replaced = _body(client.put(path, json=replacement), 200, f"PUT {path}")
        _rendered(replaced, "User", user_id, f"PUT {path}")
        assert replaced.get("displayName") == "Augusta Ada King", f"PUT answered {replaced!r}"
        fetched = _body(client.get(path), 200, f"GET {path} after PUT")
        assert fetched.get("name", {}).get("familyName") == "King", f"PUT not kept: {fetched!r}"

        refused = client.patch(path, json={"schemas": [PATCH_OP], "Operations": "none"})
        assert refused.status_code == 400, f"PATCH {path} without a list: {refused.text}"
        assert _is_error(refused.json(), 400), f"PATCH {path} without a list: {refused.text}"

        patch = _patch({"op": "replace", "path": "active", "value": False})
        _body(client.patch(path, json=patch), (200, 204), f"PATCH {path} active false")
        fetched = _body(client.get(path), 200, f"GET {path} after PATCH")
        assert fetched.get("active") is False, f"PATCH active false not kept: {fetched!r}"

        _body(client.delete(path), 204, f"DELETE {path}")
        gone = client.get(path)
        assert gone.status_code == 404, f"GET {path} after DELETE: {gone.status_code}"
        assert _is_error(gone.json(), 404), f"GET {path} after DELETE: {gone.text}"
    _events_came_through_adapter(client, events)
    kinds = [e.kind for e in events if e.resource_id == user_id]
    for kind in ("user.created", "user.updated", "user.deactivated", "user.deleted"):
        assert kind in kinds, f"no {kind} event; got {kinds}"


def _member_ids(group: Mapping[str, Any]) -> set[str]:
    return {str(m.get("value")) for m in group.get("members") or []}


def check_groups(client: ScimTestClient) -> None:
    """Create a Group with a member, PATCH members in and out, read it without members."""
    suffix = uuid.uuid4().hex[:10]
    with observe_events(client) as events:
        member_ids = []
        for n in (1, 2):
            user = _body(
                client.post(
                    "/scim/v2/Users",
                    json={"schemas": [USER_SCHEMA], "userName": f"member{n}.{suffix}@example.test"},
                ),
                201,
                "POST /Users",
            )
            member_ids.append(user["id"])
        first, second = member_ids
        name = f"Contract {suffix}"
        created = _body(
            client.post(
                "/scim/v2/Groups",
                json={
                    "schemas": [GROUP_SCHEMA],
                    "displayName": name,
                    "members": [{"value": first}],
                },
            ),
            201,
            "POST /Groups",
        )
        _rendered(created, "Group", None, "POST /Groups")
        group_id = created["id"]
        path = f"/scim/v2/Groups/{group_id}"
        fetched = _body(client.get(path), 200, f"GET {path}")
        _rendered(fetched, "Group", group_id, f"GET {path}")
        assert fetched.get("displayName") == name
        assert _member_ids(fetched) == {first}, f"members after POST: {fetched!r}"

        add = _patch({"op": "add", "path": "members", "value": [{"value": second}]})
        _body(client.patch(path, json=add), (200, 204), f"PATCH {path} add member")
        fetched = _body(client.get(path), 200, f"GET {path} after add")
        assert _member_ids(fetched) == {first, second}, f"members after add: {fetched!r}"

        remove = _patch({"op": "remove", "path": f'members[value eq "{first}"]'})
        _body(client.patch(path, json=remove), (200, 204), f"PATCH {path} remove member")
        fetched = _body(client.get(path), 200, f"GET {path} after remove")
        assert _member_ids(fetched) == {second}, f"members after remove: {fetched!r}"

        lean = _body(
            client.get(path, params={"excludedAttributes": "members"}),
            200,
            f"GET {path}?excludedAttributes=members",
        )
        assert "members" not in lean, f"excludedAttributes=members still has them: {lean!r}"
        _rendered(lean, "Group", group_id, f"GET {path}?excludedAttributes=members")
        listed = _body(
            client.get(
                "/scim/v2/Groups",
                params={"filter": f'displayName eq "{name}"', "excludedAttributes": "members"},
            ),
            200,
            "GET /Groups?filter=displayName eq&excludedAttributes=members",
        )
        assert [g.get("id") for g in listed.get("Resources", [])] == [group_id], listed
        assert "members" not in listed["Resources"][0], f"members listed: {listed!r}"

        _body(client.delete(path), 204, f"DELETE {path}")
        assert client.get(path).status_code == 404, f"GET {path} after DELETE"
    _events_came_through_adapter(client, events)
    kinds = [e.kind for e in events if e.resource_id == group_id]
    for kind in ("group.created", "member.added", "member.removed", "group.deleted"):
        assert kind in kinds, f"no {kind} event; got {kinds}"


# --- the contract, whole -------------------------------------------------------------


def assert_conforms(
    adapter_name: str,
    client: ScimTestClient | None = None,
    *,
    settings: Settings | None = None,
    extra_plugins: Sequence[object] = (),
) -> None:
    """Run the whole adapter contract; an ``AssertionError`` says which clause failed.

    Without ``client``, a gateway is started on ``settings`` (default: a temporary
    SQLite file) and a key bound to ``adapter_name`` is made for a new team.
    """
    with contextlib.ExitStack() as stack:
        if client is None:
            if settings is None:
                directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="scimgw-"))
                settings = sqlite_settings(Path(directory))
            client = stack.enter_context(
                open_scim_client(settings, adapter=adapter_name, extra_plugins=extra_plugins)
            )
        plugins = client.gateway.plugins
        check_registered(adapter_name, plugins)
        check_hooks_are_pure(adapter_name, plugins)
        check_users(client)
        check_groups(client)


class AdapterContract:
    """The contract as a test class: subclass it and set ``adapter``, or parametrize
    ``adapter_name`` (``@pytest.mark.parametrize("adapter_name", [...])``)."""

    adapter: ClassVar[str | None] = None

    @pytest.fixture
    def adapter_name(self) -> str:
        if self.adapter is None:
            pytest.fail(f"{type(self).__name__}: set adapter = '<name>' or parametrize it")
        return self.adapter

    @pytest.fixture
    def contract_client(
        self, scim_client_factory: ScimClientFactory, adapter_name: str
    ) -> ScimTestClient:
        return scim_client_factory(adapter=adapter_name)

    def test_registered_under_its_names(self, contract_client: ScimTestClient) -> None:
        assert contract_client.adapter is not None
        check_registered(contract_client.adapter, contract_client.gateway.plugins)

    def test_hooks_are_pure(self, contract_client: ScimTestClient) -> None:
        assert contract_client.adapter is not None
        check_hooks_are_pure(contract_client.adapter, contract_client.gateway.plugins)

    def test_standard_user_requests(self, contract_client: ScimTestClient) -> None:
        check_users(contract_client)

    def test_standard_group_requests(self, contract_client: ScimTestClient) -> None:
        check_groups(contract_client)
