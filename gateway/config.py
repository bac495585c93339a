"""Settings: a TOML file read into typed, validated dataclasses.

Every key is checked at startup. An unknown key, a value of the wrong type or a
secret that cannot be resolved stops the gateway with a :class:`ConfigError` that
names the file, the key and the fix. Secrets are never literals in the file: they
are references, ``{ env = "NAME" }`` or ``{ file = "path" }``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .policy import PolicyError, TeamPolicy

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ConfigError",
    "DatabaseSettings",
    "LimitSettings",
    "PluginSettings",
    "SecretRef",
    "ServerSettings",
    "Settings",
    "TeamSettings",
    "load_settings",
]

DEFAULT_DATABASE_URL = "sqlite:///scim-gateway.sqlite3"


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and what to do."""


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A reference to a secret kept outside the config file."""

    env: str | None = None
    file: str | None = None

    def resolve(self, *, where: str) -> str:
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError(
                    f"{where}: environment variable {self.env} is not set or empty. "
                    f"Export it before starting the gateway, or point the key at a file "
                    f'with {{ file = "/path/to/secret" }}.'
                )
            return value
        assert self.file is not None
        try:
            value = Path(self.file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{where}: cannot read secret file {self.file!r} ({exc.strerror}). "
                "Create the file or fix the path."
            ) from exc
        if not value:
            raise ConfigError(f"{where}: secret file {self.file!r} is empty.")
        return value


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    base_url: str = ""
    """Public URL of the gateway (``https://scim.example.com``) used in ``meta.location``.
    Empty: derived from each request."""


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = DEFAULT_DATABASE_URL
    pool_size: int = 10
    echo: bool = False


@dataclass(frozen=True, slots=True)
class LimitSettings:
    max_results: int = 1000
    default_count: int = 100
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 32
    max_filter_length: int = 4096
    max_patch_operations: int = 1000
    bulk_max_operations: int = 1000
    bulk_max_payload_bytes: int = 1_048_576


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    key_secret: SecretRef | None = None
    """Server secret under which SCIM API keys are hashed (HMAC-SHA-256), at least 32
    bytes. Unset: one is generated and kept in the database, shared by all processes."""
    sso_ca_bundle: str = ""
    """CA bundle (PEM file) trusted when fetching OpenID discovery documents; empty:
    the system's trust store."""


@dataclass(frozen=True, slots=True)
class AdminSettings:
    token_sha256: str = ""
    """SHA-256 (hex) of the operator token for /admin/v1; empty disables the admin API.
    Print it with: scim-gateway admin hash-token."""


@dataclass(frozen=True, slots=True)
class PluginSettings:
    block: tuple[str, ...] = ()
    """Plugins (entry-point names) not to load, e.g. ["okta"]. The environment
    variable SCIM_GATEWAY_BLOCK_PLUGINS (comma-separated) adds to it."""


@dataclass(frozen=True, slots=True)
class TeamSettings:
    """A team declared in the config file (``[teams.<slug>]``)."""

    slug: str
    name: str | None = None
    scim_enabled: bool | None = None
    default_adapter: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    sso: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    plugins: PluginSettings = field(default_factory=PluginSettings)
    teams: tuple[TeamSettings, ...] = ()
    source: str = "<built-in defaults>"

    def replace(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


_SECTIONS: dict[str, type[Any]] = {
    "server": ServerSettings,
    "database": DatabaseSettings,
    "limits": LimitSettings,
    "security": SecuritySettings,
    "admin": AdminSettings,
    "plugins": PluginSettings,
}
_TEAM_KEYS = {
    "name": str,
    "scim_enabled": bool,
    "default_adapter": str,
    "options": dict,
    "sso": dict,
}
_SSO_KEYS = {
    "saml": {"method", "entity_id", "sso_url", "certificate"},
    "oidc": {"method", "issuer", "client_id", "client_secret"},
}


def _type_name(tp: Any) -> str:
    names = {
        "int": "an integer",
        "str": "a string",
        "bool": "true or false",
        "tuple[str, ...]": "a list of strings",
    }
    return names.get(str(tp), str(tp))


def _parse_secret(value: Any, *, where: str) -> SecretRef:
    if isinstance(value, str):
        raise ConfigError(
            f"{where}: secrets are never written in the config file. "
            f'Use {{ env = "VARIABLE" }} or {{ file = "/path/to/secret" }} instead.'
        )
    if not isinstance(value, dict) or set(value) not in ({"env"}, {"file"}):
        raise ConfigError(
            f'{where}: expected {{ env = "VARIABLE" }} or {{ file = "/path/to/secret" }}.'
        )
    ref = SecretRef(env=value.get("env"), file=value.get("file"))
    if not isinstance(ref.env or ref.file, str):
        raise ConfigError(f"{where}: the secret reference must name a string.")
    return ref


def _build_section(cls: type[Any], data: Any, *, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table ([{where.split(': ')[-1]}]).")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        key_where = f"{where}.{key}"
        if key not in known:
            raise ConfigError(
                f"{key_where}: unknown key. Known keys here: {', '.join(sorted(known))}."
            )
        expected = known[key].type
        if "SecretRef" in str(expected):
            values[key] = _parse_secret(value, where=key_where)
            continue
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
            "tuple[str, ...]": isinstance(value, list) and all(isinstance(v, str) for v in value),
        }.get(str(expected), True)
        if not ok:
            raise ConfigError(
                f"{key_where}: expected {_type_name(expected)}, got {type(value).__name__} "
                f"{value!r}."
            )
        if str(expected) == "int" and value < 0:
            raise ConfigError(f"{key_where}: must not be negative.")
        values[key] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def _parse_sso(data: Any, *, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f'{where}: expected a table with method = "saml" or "oidc".')
    method = data.get("method")
    if method not in _SSO_KEYS:
        raise ConfigError(f'{where}.method: expected "saml" or "oidc", got {method!r}.')
    allowed = _SSO_KEYS[method]
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{where}.{key}: unknown key for {method} SSO. Known keys: "
                f"{', '.join(sorted(allowed))}."
            )
    for key in sorted(allowed):
        if key not in data:
            raise ConfigError(
                f"{where}.{key}: missing; {method} SSO needs {', '.join(sorted(allowed))}."
            )
    out = dict(data)
    if method == "oidc":
        out["client_secret"] = _parse_secret(data["client_secret"], where=f"{where}.client_secret")
    elif isinstance(data["certificate"], dict):
        ref = data["certificate"]
        if set(ref) != {"file"} or not isinstance(ref["file"], str):
            raise ConfigError(
                f'{where}.certificate: expected a PEM string or {{ file = "idp.pem" }}.'
            )
        out["certificate"] = SecretRef(file=ref["file"])
    elif not isinstance(data["certificate"], str):
        raise ConfigError(f'{where}.certificate: expected a PEM string or {{ file = "idp.pem" }}.')
    for key in allowed - {"certificate", "client_secret"}:
        if not isinstance(out[key], str):
            raise ConfigError(f"{where}.{key}: expected a string.")
    return out


def _parse_teams(data: Any, *, source: str) -> tuple[TeamSettings, ...]:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: teams: expected tables such as [teams.acme].")
    out = []
    for slug, table in data.items():
        where = f"{source}: teams.{slug}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table ([teams.{slug}]).")
        for key, value in table.items():
            if key not in _TEAM_KEYS:
                raise ConfigError(
                    f"{where}.{key}: unknown key. Known keys here: {', '.join(sorted(_TEAM_KEYS))}."
                )
            if not isinstance(value, _TEAM_KEYS[key]):
                raise ConfigError(
                    f"{where}.{key}: expected {_type_name(_TEAM_KEYS[key].__name__)}, "
                    f"got {value!r}."
                )
        sso = _parse_sso(table["sso"], where=f"{where}.sso") if "sso" in table else None
        try:
            TeamPolicy.from_options(table.get("options"))
        except PolicyError as exc:
            raise ConfigError(f"{where}.options: {exc}.") from exc
        out.append(
            TeamSettings(
                slug=slug,
                name=table.get("name"),
                scim_enabled=table.get("scim_enabled"),
                default_adapter=table.get("default_adapter"),
                options=dict(table.get("options") or {}),
                sso=sso,
                raw=table,
            )
        )
    return tuple(out)


def settings_from_dict(data: dict[str, Any], *, source: str) -> Settings:
    values: dict[str, Any] = {"source": source}
    for section, content in data.items():
        if section == "teams":
            values["teams"] = _parse_teams(content, source=source)
            continue
        if section not in _SECTIONS:
            raise ConfigError(
                f"{source}: unknown section [{section}]. "
                f"Known sections: {', '.join('[' + s + ']' for s in [*_SECTIONS, 'teams'])}."
            )
        values[section] = _build_section(_SECTIONS[section], content, where=f"{source}: {section}")
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    limits = settings.limits
    if limits.default_count > limits.max_results:
        raise ConfigError(
            f"{settings.source}: limits.default_count ({limits.default_count}) is larger than "
            f"limits.max_results ({limits.max_results}); lower it."
        )
    digest = settings.admin.token_sha256
    if digest and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)):
        raise ConfigError(
            f"{settings.source}: admin.token_sha256 must be 64 lowercase hex characters; "
            "print it with: scim-gateway admin hash-token"
        )
    url = settings.database.url
    if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        raise ConfigError(
            f"{settings.source}: database.url {url!r} is not supported. Use "
            "sqlite:///path/to/file.sqlite3 or postgresql://user@host:5432/dbname."
        )


def load_settings(path: str | os.PathLike[str] | None) -> Settings:
    """Read and validate the config file; ``None`` gives the built-in defaults."""
    if path is None:
        return Settings()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc.strerror}).") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    return settings_from_dict(data, source=str(p))
