"""The plugin system as an operator and a plugin author meet it.

Every hook is documented in docs/plugin-hooks.md and has a ``test_hook_<name>``
here; plugins load through entry points, can be blocked, fail loudly when
misspelt or clashing, and observers see committed changes only.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

import plugins
from gateway.app import Gateway, create_app
from gateway.cli import main
from gateway.config import Settings, load_settings
from gateway.store.query import users
from gateway.store.tables import Group
from plugins import (
    Adapter,
    AdapterRegistry,
    GatewayPlugins,
    Inbound,
    Outbound,
    PluginError,
    ProvisioningEvent,
    hookimpl,
)
from plugins.testing import ScimClientFactory, ScimTestClient, assert_conforms, open_scim_client
from tests.conftest import ENTERPRISE, ERROR, GROUP_SCHEMA, PATCH_OP, USER_SCHEMA

ROOT = Path(__file__).resolve().parent.parent
HOOKS_DOC = ROOT / "docs" / "plugin-hooks.md"
BUILT_IN = {"generic", "okta", "entra", "onelogin"}
groups_table = Group.__table__


@pytest.fixture
def scim_gateway_settings(settings: Settings) -> Settings:
    """The test kit's clients run on each of the suite's backends."""
    return settings


def hook_names() -> list[str]:
    pm = GatewayPlugins(entry_points=False).pm
    return sorted(name for name in dir(pm.hook) if name.startswith("scim_gateway_"))


def fake_distribution(root: Path, dist: str, entry: str, source: str) -> str:
    """Lay out an installed distribution ``dist`` on ``root`` (put on sys.path by the
    caller) whose ``scim_gateway`` entry point ``entry`` is a new module holding
    ``source``; return the module's name."""
    module = "fake_plugin_" + uuid.uuid4().hex[:10]
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[scim_gateway]\n{entry} = {module}\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    return module


IMPOSTOR = """
    from plugins import Adapter, hookimpl

    class ImpostorAdapter(Adapter):
        name = "okta"

    @hookimpl
    def scim_gateway_register_adapters(registry):
        registry.add(ImpostorAdapter)
"""

ACME = """
    from plugins import Adapter, hookimpl

    class AcmeAdapter(Adapter):
        name = "acme-idp"
        aliases = ("acme",)

    @hookimpl
    def scim_gateway_register_adapters(registry):
        registry.add(AcmeAdapter)
"""

MISSPELT = """
    from plugins import hookimpl

    @hookimpl
    def scim_gateway_provisioning_events(event):
        pass
"""


# --- the contract's own surface --------------------------------------------------------


def test_the_plugins_package_exports_exactly_the_plugin_contract() -> None:
    assert plugins.__all__ == [
        "COMMON_FIELDS",
        "EVENT_KINDS",
        "Adapter",
        "AdapterRegistry",
        "GatewayPlugins",
        "Inbound",
        "Outbound",
        "PluginError",
        "PluginInfo",
        "ProvisioningEvent",
        "hookimpl",
        "hookspec",
    ]
    # Kept in ruff's order (RUF022): constants, then classes, then functions.
    kind = {True: 0, False: 1}
    order = sorted(plugins.__all__, key=lambda n: (kind[n.isupper()], n[0].islower(), n))
    assert plugins.__all__ == order
    for name in plugins.__all__:
        assert getattr(plugins, name) is not None


def test_every_hook_has_a_documented_heading_and_a_test() -> None:
    names = hook_names()
    assert names == ["scim_gateway_provisioning_event", "scim_gateway_register_adapters"]
    headings = {
        line.lstrip("#").strip().strip("`")
        for line in HOOKS_DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    for name in names:
        assert name in headings, f"docs/plugin-hooks.md has no heading for {name}"
        assert callable(globals().get(f"test_hook_{name}")), f"no test_hook_{name}"


def test_the_core_never_imports_adapters() -> None:
    offenders = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {m}"
                for m in modules
                if m == "adapters" or m.startswith("adapters.")
            ]
    assert not offenders


def test_plugins_load_without_importing_the_gateway() -> None:
    """The contract package and every installed plugin import without the core, so
    an adapter can be used (and unit-tested) on its own."""
    code = textwrap.dedent(
        """
        import sys
        import plugins, plugins.adapter, plugins.hookspecs, plugins.manager, plugins.model
        loaded = plugins.GatewayPlugins()
        assert loaded.registry.get("generic") is not None
        core = sorted(m for m in sys.modules if m == "gateway" or m.startswith("gateway."))
        print(",".join(core))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == ""


# --- scim_gateway_register_adapters ------------------------------------------------------


class RenamesLogin(Adapter):
    """A made-up dialect: the IdP sends its login name as ``login``."""

    name = "acme-directory"
    aliases = ("acme-dir",)

    def normalize_resource(self, body: Any, ctx: Inbound) -> Any:
        if isinstance(body, dict) and "login" in body and "userName" not in body:
            body = {k: v for k, v in body.items() if k != "login"} | {"userName": body["login"]}
        return body


class AcmePlugin:
    @hookimpl
    def scim_gateway_register_adapters(self, registry: AdapterRegistry) -> None:
        registry.add(RenamesLogin)


def test_hook_scim_gateway_register_adapters(scim_client_factory: ScimClientFactory) -> None:
    loaded = GatewayPlugins(extra=[AcmePlugin()])
    assert loaded.registry.get("acme-directory") is RenamesLogin
    assert loaded.registry.get("ACME-DIR") is RenamesLogin  # aliases, any case
    assert isinstance(loaded.adapter("acme-dir"), RenamesLogin)
    assert set(loaded.registry.canonical_names()) >= BUILT_IN  # next to the entry points

    dialect = scim_client_factory(adapter="acme-dir", extra_plugins=[AcmePlugin()])
    body = {"schemas": [USER_SCHEMA], "login": "ada@example.com"}
    created = dialect.post("/scim/v2/Users", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["userName"] == "ada@example.com"
    # The same request through a strict key of the same team is refused.
    strict = scim_client_factory(adapter="generic", team=dialect.team)
    refused = strict.post("/scim/v2/Users", json=body)
    assert refused.status_code == 400
    assert "userName" in refused.json()["detail"]


def test_registering_something_that_is_not_an_adapter_stops_startup() -> None:
    class Broken:
        @hookimpl
        def scim_gateway_register_adapters(self, registry: AdapterRegistry) -> None:
            registry.add(dict)  # type: ignore[arg-type]

    with pytest.raises(PluginError, match=r"not a subclass of plugins\.Adapter"):
        GatewayPlugins(entry_points=False, extra=[Broken()])


# --- scim_gateway_provisioning_event ----------------------------------------------------


class Observer:
    """A plugin that records each event, and whether its resource is visible to
    another connection at that moment (only once the change has committed)."""

    def __init__(self) -> None:
        self.gateway: Gateway | None = None
        self.events: list[ProvisioningEvent] = []
        self.visible: list[bool] = []

    @hookimpl
    def scim_gateway_provisioning_event(self, event: ProvisioningEvent) -> None:
        assert self.gateway is not None
        table = users if event.resource_type == "User" else groups_table
        query = select(table.c.id).where(table.c.id == event.resource_id)
        found = self.gateway.db.call(lambda conn: conn.execute(query).first())
        self.events.append(event)
        self.visible.append(found is not None)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


@pytest.fixture
def observed(scim_client_factory: ScimClientFactory) -> tuple[ScimTestClient, Observer]:
    """A client whose gateway loaded an Observer next to the installed plugins
    (``GatewayPlugins(extra=[observer])``)."""
    observer = Observer()
    client = scim_client_factory(
        adapter="generic",
        options={"roles": {"Admins": "admin"}, "default_role": "member"},
        extra_plugins=[observer],
    )
    observer.gateway = client.gateway
    return client, observer


def ok(response: Any, *status: int) -> Any:
    assert response.status_code in status, response.text
    return response.json() if response.status_code != 204 else None


def test_hook_scim_gateway_provisioning_event(
    observed: tuple[ScimTestClient, Observer],
) -> None:
    client, observer = observed
    headers = {"X-Request-Id": "req-plugin-test"}
    user = ok(
        client.post(
            "/scim/v2/Users",
            json={"schemas": [USER_SCHEMA], "userName": "ada@example.com"},
            headers=headers,
        ),
        201,
    )
    uid, upath = user["id"], f"/scim/v2/Users/{user['id']}"
    renamed = {"schemas": [USER_SCHEMA], "userName": "ada@example.com", "displayName": "Ada"}
    ok(client.put(upath, json=renamed), 200)
    off = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}
    ok(client.patch(upath, json=off), 200)
    on = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": True}]}
    ok(client.patch(upath, json=on), 200)
    engineering = {"schemas": [GROUP_SCHEMA], "displayName": "Engineering"}
    group = ok(client.post("/scim/v2/Groups", json=engineering), 201)
    gid, gpath = group["id"], f"/scim/v2/Groups/{group['id']}"

    def group_patch(*ops: dict[str, Any]) -> None:
        ok(client.patch(gpath, json={"schemas": [PATCH_OP], "Operations": list(ops)}), 204)

    group_patch({"op": "replace", "path": "displayName", "value": "Admins"})
    group_patch({"op": "add", "path": "members", "value": [{"value": uid}]})
    group_patch({"op": "remove", "path": f'members[value eq "{uid}"]'})
    ok(client.delete(gpath), 204)
    ok(client.delete(upath), 204)

    assert observer.kinds() == [
        "user.created",
        "user.updated",
        "user.deactivated",
        "user.reactivated",
        "group.created",
        "group.renamed",
        "member.added",
        "role.changed",
        "member.removed",
        "role.changed",
        "group.deleted",
        "user.deleted",
    ]
    by_kind = {e.kind: e for e in observer.events}
    for event in observer.events:
        assert event.team == client.team
        assert event.key_id == client.key_id
        assert event.adapter == "generic"
        assert event.resource_id == (uid if event.resource_type == "User" else gid)
    assert by_kind["user.created"].request_id == "req-plugin-test"
    assert by_kind["user.created"].changes == {"role": "member"}
    assert by_kind["user.updated"].changes == {"attributes": ["displayName"]}
    assert by_kind["user.deactivated"].changes == {"active": [True, False]}
    assert by_kind["user.reactivated"].changes == {"active": [False, True]}
    assert by_kind["group.renamed"].changes == {"displayName": ["Engineering", "Admins"]}
    assert by_kind["member.added"].changes["member"] == uid
    assert by_kind["member.removed"].changes["member"] == uid
    roles = [e.changes["role"] for e in observer.events if e.kind == "role.changed"]
    assert roles == [["member", "admin"], ["admin", "member"]]
    assert all(e.kind in plugins.EVENT_KINDS for e in observer.events)
    # Delivered after commit: another connection already saw each created resource,
    # and no longer saw each deleted one.
    seen = dict(zip(observer.kinds(), observer.visible, strict=True))
    assert seen["user.created"] and seen["group.created"]
    assert not seen["user.deleted"] and not seen["group.deleted"]


def test_no_event_for_a_patch_whose_second_operation_fails(
    observed: tuple[ScimTestClient, Observer],
) -> None:
    client, observer = observed
    user = ok(client.post("/scim/v2/Users", json={"schemas": [USER_SCHEMA], "userName": "bo"}), 201)
    observer.events.clear()
    path = f"/scim/v2/Users/{user['id']}"
    failing = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "path": "active", "value": False},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "bo@example.com"},
        ],
    }
    response = client.patch(path, json=failing)
    assert response.status_code == 400
    assert response.json()["scimType"] == "noTarget"
    assert ok(client.get(path), 200)["active"] is True
    assert observer.events == []


def test_no_event_for_a_group_patch_that_fails_half_way(
    observed: tuple[ScimTestClient, Observer],
) -> None:
    client, observer = observed
    user = ok(client.post("/scim/v2/Users", json={"schemas": [USER_SCHEMA], "userName": "cy"}), 201)
    ops = {"schemas": [GROUP_SCHEMA], "displayName": "Ops"}
    group = ok(client.post("/scim/v2/Groups", json=ops), 201)
    observer.events.clear()
    path = f"/scim/v2/Groups/{group['id']}"
    failing = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "add", "path": "members", "value": [{"value": user["id"]}]},
            {"op": "add", "path": "members", "value": [{"value": str(uuid.uuid4())}]},
        ],
    }
    assert client.patch(path, json=failing).status_code == 400
    assert ok(client.get(path), 200).get("members", []) == []
    assert observer.events == []


def test_no_event_for_a_create_that_rolls_back(
    observed: tuple[ScimTestClient, Observer],
) -> None:
    client, observer = observed
    body = {"schemas": [USER_SCHEMA], "userName": "dee@example.com"}
    ok(client.post("/scim/v2/Users", json=body), 201)
    observer.events.clear()
    duplicate = client.post("/scim/v2/Users", json=body)
    assert duplicate.status_code == 409
    # The group is created, then its unknown member fails the request: the
    # group.created already recorded is dropped with the transaction.
    bad_member = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Ghosts",
        "members": [{"value": str(uuid.uuid4())}],
    }
    assert client.post("/scim/v2/Groups", json=bad_member).status_code == 400
    listed = ok(client.get("/scim/v2/Groups", params={"filter": 'displayName eq "Ghosts"'}), 200)
    assert listed["totalResults"] == 0
    assert observer.events == []


def test_a_failing_observer_does_not_fail_the_committed_request(
    observed: tuple[ScimTestClient, Observer], caplog: pytest.LogCaptureFixture
) -> None:
    client, _observer = observed

    class Crashes:
        @hookimpl
        def scim_gateway_provisioning_event(self, event: ProvisioningEvent) -> None:
            raise RuntimeError("webhook down")

    client.gateway.plugins.pm.register(Crashes())
    body = {"schemas": [USER_SCHEMA], "userName": "eve@example.com"}
    created = ok(client.post("/scim/v2/Users", json=body), 201)
    assert ok(client.get(f"/scim/v2/Users/{created['id']}"), 200)["userName"] == body["userName"]
    assert "observer failed on user.created" in caplog.text


# --- loading: misspelt, clashing and blocked plugins ----------------------------------------


def test_a_misspelt_hook_implementation_stops_startup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    class Misspelt:
        @hookimpl
        def scim_gateway_register_adapter(self, registry: AdapterRegistry) -> None:
            pass

    with pytest.raises(PluginError, match=r"scim_gateway_register_adapter\b"):
        GatewayPlugins(entry_points=False, extra=[Misspelt()])
    # Installed, it stops the gateway from starting at all.
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_distribution(tmp_path, "scim-gateway-misspelt", "misspelt", MISSPELT)
    with pytest.raises(PluginError, match="scim_gateway_provisioning_events") as exc:
        create_app(settings)
    assert "a misspelt hook or argument?" in str(exc.value)


def test_two_adapters_claiming_one_name_stop_startup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_distribution(tmp_path, "scim-gateway-impostor", "impostor", IMPOSTOR)
    with pytest.raises(PluginError) as exc:
        GatewayPlugins()
    message = str(exc.value)
    assert "'okta'" in message
    assert "from scim-gateway and" in message
    assert "from scim-gateway-impostor" in message
    # The way out the message offers: block one of them.
    assert GatewayPlugins(blocked=["impostor"]).registry.get("okta").__module__ == "adapters.okta"


def test_a_blocked_plugin_is_not_loaded() -> None:
    loaded = GatewayPlugins(blocked=["okta"])
    assert loaded.registry.get("okta") is None
    assert loaded.adapter("okta") is None
    assert "okta" not in [info.name for info in loaded.describe()]
    assert loaded.blocked == ["okta"]
    assert loaded.registry.get("entra") is not None


def assert_refused_as_not_loaded(client: ScimTestClient) -> None:
    response = client.get("/scim/v2/Users")
    assert response.status_code == 403
    body = response.json()
    assert ERROR in body["schemas"]
    assert body["status"] == "403"
    assert "'okta'" in body["detail"]
    assert "not loaded" in body["detail"]


def test_a_key_bound_to_a_plugin_blocked_in_the_config_is_refused(
    tmp_path: Path, database_url: str, scim_client_factory: ScimClientFactory
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[database]\nurl = "{database_url}"\n\n[plugins]\nblock = ["okta"]\n', encoding="utf-8"
    )
    settings = load_settings(config)
    assert_refused_as_not_loaded(scim_client_factory(adapter="okta", settings=settings))
    other = scim_client_factory(adapter="entra", settings=settings)
    assert other.get("/scim/v2/Users").status_code == 200


def test_a_key_bound_to_a_plugin_blocked_by_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch, scim_client_factory: ScimClientFactory
) -> None:
    monkeypatch.setenv("SCIM_GATEWAY_BLOCK_PLUGINS", "onelogin, okta")
    client = scim_client_factory(adapter="okta")
    assert client.gateway.plugins.blocked == ["okta", "onelogin"]
    assert_refused_as_not_loaded(client)


# --- the CLI ---------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = shutil.which("scim-gateway", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "gateway.cli"]
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SCIM_GATEWAY_") and k != "PYTHONPATH"
    }
    environment.update(env)
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, cwd=cwd, env=environment, timeout=60
    )


def test_plugins_list_shows_each_plugin_and_its_distribution(tmp_path: Path) -> None:
    fake_distribution(tmp_path / "site", "scim-gateway-acme", "acme", ACME)
    done = run_cli("plugins", "list", cwd=tmp_path, PYTHONPATH=str(tmp_path / "site"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name in sorted(BUILT_IN):
        assert f"{name}\tscim-gateway 0.1.0\t{name}" in lines
    assert "acme\tscim-gateway-acme 1.0\tacme-idp" in lines
    assert lines[-1].startswith("adapters: ")
    assert "acme-idp (acme)" in lines[-1]
    assert "entra (azure-ad)" in lines[-1]

    done = run_cli("plugins", "list", "--json", cwd=tmp_path, SCIM_GATEWAY_BLOCK_PLUGINS="okta")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["blocked"] == ["okta"]
    by_name = {p["name"]: p for p in listing["plugins"]}
    assert "okta" not in by_name
    assert by_name["entra"] == {
        "name": "entra",
        "distribution": "scim-gateway",
        "version": "0.1.0",
        "adapters": ["entra"],
    }
    assert "okta" not in [a["name"] for a in listing["adapters"]]


def test_plugins_list_reports_a_broken_plugin_instead_of_crashing(tmp_path: Path) -> None:
    fake_distribution(tmp_path / "site", "scim-gateway-impostor", "impostor", IMPOSTOR)
    done = run_cli("plugins", "list", cwd=tmp_path, PYTHONPATH=str(tmp_path / "site"))
    assert done.returncode == 1
    assert "Two adapters claim the name 'okta'" in done.stderr
    assert "scim-gateway-impostor" in done.stderr
    assert "Traceback" not in done.stderr


def test_keys_and_teams_refuse_an_adapter_that_is_not_loaded(
    database_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("SCIM_GATEWAY_DATABASE_URL", database_url)
    monkeypatch.delenv("SCIM_GATEWAY_CONFIG", raising=False)
    monkeypatch.delenv("SCIM_GATEWAY_BLOCK_PLUGINS", raising=False)
    slug = "team-" + uuid.uuid4().hex[:12]
    with open_scim_client(settings, team=slug):
        pass  # the team exists, with SSO and SCIM on

    assert main(["keys", "create", slug, "--name", "jc", "--adapter", "jumpclod"]) == 1
    err = capsys.readouterr().err
    assert "No adapter named 'jumpclod' is loaded" in err
    loaded = err.split("(loaded: ", 1)[1].split(")", 1)[0].split(", ")
    assert set(loaded) >= BUILT_IN

    assert main(["teams", "create", "other-" + slug[5:], "--adapter", "jumpclod"]) == 1
    assert "No adapter named 'jumpclod' is loaded" in capsys.readouterr().err
    assert main(["teams", "list", "--json"]) == 0
    assert "other-" + slug[5:] not in capsys.readouterr().out

    assert main(["keys", "create", slug, "--name", "entra", "--adapter", "azure-ad"]) == 0
    assert "adapter azure-ad" in capsys.readouterr().out
    monkeypatch.setenv("SCIM_GATEWAY_BLOCK_PLUGINS", "okta")
    assert main(["keys", "create", slug, "--name", "okta", "--adapter", "okta"]) == 1
    assert "No adapter named 'okta' is loaded" in capsys.readouterr().err


# --- docs/writing-an-adapter.md ----------------------------------------------------------


def guide_adapter_module() -> ModuleType:
    """The adapter module that docs/writing-an-adapter.md shows, as a module."""
    guide = (ROOT / "docs" / "writing-an-adapter.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)
    source = next(b for b in blocks if b.startswith("# scim_gateway_acme/__init__.py"))
    module = ModuleType("scim_gateway_acme_from_the_guide")
    exec(compile(source, "docs/writing-an-adapter.md", "exec"), module.__dict__)
    return module


def test_the_adapter_in_the_guide_works_as_the_guide_says(
    scim_client_factory: ScimClientFactory,
) -> None:
    acme = guide_adapter_module()
    client = scim_client_factory(adapter="acme-id", extra_plugins=[acme])
    assert_conforms("acme", client)

    ext = "urn:acme:params:scim:schemas:extension:2.0:User"
    body = {
        "schemas": [USER_SCHEMA, ext],
        "userName": "jdoe",
        "active": "no",
        ext: {"orgUnit": "R&D"},
    }
    user = ok(client.post("/scim/v2/Users", json=body), 201)
    assert user["active"] is False  # normalize_resource
    assert user[ENTERPRISE]["department"] == "R&D"  # map_attributes
    found = ok(client.get("/scim/v2/Users", params={"filter": "userName eq jdoe"}), 200)
    assert [u["id"] for u in found["Resources"]] == [user["id"]]  # normalize_query
    members = [{"value": user["id"]}]
    lab = {"schemas": [GROUP_SCHEMA], "displayName": "Lab", "members": members}
    group = ok(client.post("/scim/v2/Groups", json=lab), 201)
    assert group["members"] and all("$ref" not in m for m in group["members"])  # render
    gpath = f"/scim/v2/Groups/{group['id']}"
    delete = {"op": "delete", "path": f'members[value eq "{user["id"]}"]'}
    ok(client.patch(gpath, json={"schemas": [PATCH_OP], "Operations": [delete]}), 204)
    assert ok(client.get(gpath), 200)["members"] == []  # normalize_patch


# --- the contract refuses a bad adapter ---------------------------------------------------


class MutatesItsInput(Adapter):
    name = "bad-mutates"

    def normalize_resource(self, body: Any, ctx: Inbound) -> Any:
        if isinstance(body, dict):
            body.pop("password", None)
        return body


class NotDeterministic(Adapter):
    name = "bad-random"

    def normalize_query(self, params: dict[str, Any], ctx: Inbound) -> dict[str, Any]:
        return {**params, "count": str(uuid.uuid4().int % 100)}


class DropsMeta(Adapter):
    name = "bad-render"

    def render(self, resource: dict[str, Any], ctx: Outbound) -> dict[str, Any]:
        return {k: v for k, v in resource.items() if k != "meta"}


class BreaksDeactivation(Adapter):
    name = "bad-patch"

    def normalize_patch(self, body: Any, current: Mapping[str, Any], ctx: Inbound) -> Any:
        return {**body, "Operations": []} if isinstance(body, dict) else body


class BadAdapters:
    @hookimpl
    def scim_gateway_register_adapters(self, registry: AdapterRegistry) -> None:
        for cls in (MutatesItsInput, NotDeterministic, DropsMeta, BreaksDeactivation):
            registry.add(cls)


@pytest.mark.parametrize(
    ("adapter", "complaint"),
    [
        ("bad-mutates", "normalize_resource.* mutated its input"),
        ("bad-random", "normalize_query.* is not deterministic"),
        ("bad-render", r"render\(User\): render dropped meta"),
        ("bad-patch", "PATCH .* active false: expected HTTP 200 or 204, got 400"),
        ("not-installed", "No adapter named 'not-installed' is loaded"),
    ],
)
def test_the_contract_refuses_a_bad_adapter(
    scim_client_factory: ScimClientFactory, adapter: str, complaint: str
) -> None:
    client = scim_client_factory(adapter=adapter, extra_plugins=[BadAdapters()])
    with pytest.raises(AssertionError, match=complaint):
        assert_conforms(adapter, client)
