"""Settings: a TOML file read into typed, validated dataclasses.

Every key is checked at startup. An unknown key, a value of the wrong type or a
secret that cannot be resolved stops the gateway with a :class:`ConfigError` that
names the file, the key and the fix. Secrets are never literals in the file: they
are references, ``{ env = "NAME" }`` or ``{ file = "path" }``.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .policy import PolicyError, TeamPolicy

__all__ = [
    "DEFAULT_DATABASE_URL",
    "AuditSettings",
    "ConfigError",
    "DatabaseSettings",
    "LimitSettings",
    "LoggingSettings",
    "MetricsSettings",
    "PluginSettings",
    "RateLimitSettings",
    "SecretRef",
    "ServerSettings",
    "Settings",
    "TeamSettings",
    "TeamWebhooks",
    "WebhookSettings",
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
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (``10.0.0.0/8``) of reverse proxies whose forwarded headers
    (``Forwarded``, ``X-Forwarded-Proto``, ``X-Forwarded-Host``) are believed. Empty:
    forwarded headers are ignored."""


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
    max_filter_terms: int = 200
    max_filter_depth: int = 50
    max_string_length: int = 4096
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
class RateLimitSettings:
    per_key: int = 50
    """Requests per second one SCIM API key may make; 0: no per-key limit."""
    per_team: int = 100
    """Requests per second all keys of one team may make together; 0: no team limit."""
    burst: float = 2.0
    """Seconds' worth of requests allowed at once: a key may send ``per_key * burst``
    requests in a burst, then ``per_key`` a second."""
    store: str = "auto"
    """Where the counts live: "database" (shared by every process), "redis" (shared,
    cheaper), "memory" (this process only), or "auto": memory on SQLite (one process,
    and no write per request), the database on PostgreSQL."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_password: SecretRef | None = None


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = "info"
    """critical, error, warning, info or debug (``serve --log-level`` overrides it)."""
    format: str = "json"
    """"json": one JSON object per line; "text": plain lines for a terminal."""


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    enabled: bool = True
    """Serve Prometheus metrics at /metrics (no key needed: restrict it at the proxy)."""


@dataclass(frozen=True, slots=True)
class AuditSettings:
    retention_days: int = 365
    """Days an audit record is kept; older records are purged."""


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    max_attempts: int = 12
    """Attempts per delivery before it is dead-lettered (redeliver it with the CLI)."""
    backoff_seconds: float = 5.0
    """Wait after the first failed attempt; doubled after each further failure."""
    max_backoff_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    """Longest one delivery attempt may take, connection included."""
    poll_interval_seconds: float = 0.2
    retention_days: int = 30
    """Days delivered and dead-lettered events are kept for inspection and redelivery."""


@dataclass(frozen=True, slots=True)
class TeamWebhooks:
    """Where a team's provisioning events are delivered (``[teams.<slug>.webhooks]``)."""

    urls: tuple[str, ...]
    secret: SecretRef


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
    webhooks: TeamWebhooks | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    plugins: PluginSettings = field(default_factory=PluginSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
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
    "logging": LoggingSettings,
    "metrics": MetricsSettings,
    "audit": AuditSettings,
    "webhooks": WebhookSettings,
    "rate_limits": RateLimitSettings,
}
_TEAM_KEYS = {
    "name": str,
    "scim_enabled": bool,
    "default_adapter": str,
    "options": dict,
    "sso": dict,
    "webhooks": dict,
}
_SSO_KEYS = {
    "saml": {"method", "entity_id", "sso_url", "certificate"},
    "oidc": {"method", "issuer", "client_id", "client_secret"},
}


def _type_name(tp: Any) -> str:
    names = {
        "int": "an integer",
        "float": "a number",
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
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "bool": isinstance(value, bool),
            "tuple[str, ...]": isinstance(value, list) and all(isinstance(v, str) for v in value),
        }.get(str(expected), True)
        if not ok:
            raise ConfigError(
                f"{key_where}: expected {_type_name(expected)}, got {type(value).__name__} "
                f"{value!r}."
            )
        if str(expected) in ("int", "float") and value < 0:
            raise ConfigError(f"{key_where}: must not be negative.")
        if str(expected) == "float":
            value = float(value)
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


def _parse_webhooks(data: Any, *, where: str) -> TeamWebhooks:
    example = 'urls = ["https://app.example.com/scim-events"], secret = { env = "VARIABLE" }'
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table with {example}.")
    for key in data:
        if key not in ("urls", "secret"):
            raise ConfigError(f"{where}.{key}: unknown key. Known keys here: secret, urls.")
    urls = data.get("urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise ConfigError(f"{where}.urls: expected a non-empty list of URLs ({example}).")
    for url in urls:
        scheme, _, rest = url.partition("://")
        if scheme not in ("http", "https") or not rest or rest[0] in "/?#" or url != url.strip():
            raise ConfigError(
                f"{where}.urls: {url!r} is not an http:// or https:// URL with a host."
            )
    if "secret" not in data:
        raise ConfigError(
            f"{where}.secret: missing; deliveries are signed with it. Add "
            'secret = { env = "VARIABLE" } (at least 32 characters).'
        )
    secret = _parse_secret(data["secret"], where=f"{where}.secret")
    return TeamWebhooks(urls=tuple(dict.fromkeys(urls)), secret=secret)


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
        webhooks = None
        if "webhooks" in table:
            webhooks = _parse_webhooks(table["webhooks"], where=f"{where}.webhooks")
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
                webhooks=webhooks,
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
    _check_rate_limits(settings)
    _check_trusted_proxies(settings)
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
    _check_logging(settings)
    url = settings.database.url
    if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        raise ConfigError(
            f"{settings.source}: database.url {url!r} is not supported. Use "
            "sqlite:///path/to/file.sqlite3 or postgresql://user@host:5432/dbname."
        )


def _check_logging(settings: Settings) -> None:
    levels = ("critical", "error", "warning", "info", "debug")
    if settings.logging.level not in levels:
        raise ConfigError(
            f"{settings.source}: logging.level: {settings.logging.level!r} is not a level; "
            f"use one of {', '.join(levels)}."
        )
    if settings.logging.format not in ("json", "text"):
        raise ConfigError(
            f'{settings.source}: logging.format: {settings.logging.format!r}; use "json" or "text".'
        )


def _check_rate_limits(settings: Settings) -> None:
    rate = settings.rate_limits
    where = f"{settings.source}: rate_limits"
    if rate.store not in ("auto", "database", "redis", "memory"):
        raise ConfigError(
            f"{where}.store: {rate.store!r} is not a store; use "
            '"auto", "database", "redis" or "memory".'
        )
    if rate.burst < 1:
        raise ConfigError(
            f"{where}.burst: {rate.burst} would refuse requests below the rate; use 1 or more "
            "(1: no burst above the rate)."
        )
    if rate.store != "redis":
        return
    parts = urlsplit(rate.redis_url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"{where}.redis_url: {rate.redis_url!r} is not a Redis URL; use "
            "redis://host:6379/0, rediss://host:6380/0 or unix:///path/to/redis.sock."
        )
    if parts.password:
        raise ConfigError(
            f"{where}.redis_url: secrets are never written in the config file. Remove the "
            'password from the URL and set redis_password = { env = "VARIABLE" }.'
        )
    if importlib.util.find_spec("redis") is None:
        raise ConfigError(
            f'{where}.store: "redis" needs the Redis client: pip install "scim-gateway[redis]".'
        )
    if rate.redis_password is not None:
        rate.redis_password.resolve(where=f"{where}.redis_password")  # fails here, not later


def _check_trusted_proxies(settings: Settings) -> None:
    for entry in settings.server.trusted_proxies:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"{settings.source}: server.trusted_proxies: {entry!r} is not an IP address or "
                'network; write addresses such as "10.0.0.5" or networks such as "10.0.0.0/8".'
            ) from None


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
