"""The config file: every mistake stops startup with a message naming the file, the
key and the fix; the shipped ``config.example.toml`` loads and shows only known keys."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import ConfigError, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


# Each case: the file's text, the key the message must name, and words of the fix.
INVALID = {
    "unknown-key": ("[server]\nprot = 8000\n", "server.prot", "Known keys here: base_url"),
    "unknown-section": ("[sever]\nport = 8000\n", "[sever]", "Known sections: [server]"),
    "string-for-integer": ('[server]\nport = "8000"\n', "server.port", "expected an integer"),
    "boolean-for-integer": ("[limits]\nmax_results = true\n", "limits.max_results", "integer"),
    "string-for-boolean": ('[database]\necho = "yes"\n', "database.echo", "true or false"),
    "integer-for-string": ("[server]\nbase_url = 8000\n", "server.base_url", "a string"),
    "negative": ("[server]\nport = -1\n", "server.port", "must not be negative"),
    "section-not-table": ('server = "localhost"\n', "server", "expected a table ([server])"),
    "literal-token": (
        '[security]\nkey_secret = "literal-token-value"\n',
        "security.key_secret",
        'Use { env = "VARIABLE" } or { file = "/path/to/secret" }',
    ),
    "literal-key-secret": (
        '[security]\nkey_secret = "literal-token-value"\n',
        "security.key_secret",
        "secrets are never written in the config file",
    ),
    "secret-ref-both": (
        '[security]\nkey_secret = { env = "A", file = "/b" }\n',
        "security.key_secret",
        'expected { env = "VARIABLE" } or { file = "/path/to/secret" }',
    ),
    "secret-ref-not-string": (
        "[security]\nkey_secret = { env = 5 }\n",
        "security.key_secret",
        "must name a string",
    ),
    "default-count-above-max": (
        "[limits]\nmax_results = 10\ndefault_count = 20\n",
        "limits.default_count",
        "lower it",
    ),
    "admin-digest": (
        '[admin]\ntoken_sha256 = "abc"\n',
        "admin.token_sha256",
        "scim-gateway admin hash-token",
    ),
    "database-url": (
        '[database]\nurl = "mysql://db/scim"\n',
        "database.url",
        "postgresql://user@host:5432/dbname",
    ),
    "team-unknown-key": (
        "[teams.acme]\nscim = true\n",
        "teams.acme.scim",
        "Known keys here: default_adapter",
    ),
    "team-wrong-type": (
        '[teams.acme]\nscim_enabled = "yes"\n',
        "teams.acme.scim_enabled",
        "expected true or false",
    ),
    "team-not-table": ('[teams]\nacme = "on"\n', "teams.acme", "expected a table ([teams.acme])"),
    "sso-bad-method": (
        '[teams.acme.sso]\nmethod = "ldap"\n',
        "teams.acme.sso.method",
        'expected "saml" or "oidc"',
    ),
    "sso-no-method": (
        '[teams.acme.sso]\nissuer = "https://login.example.com"\n',
        "teams.acme.sso.method",
        'expected "saml" or "oidc"',
    ),
    "sso-not-table": ('[teams.acme]\nsso = "saml"\n', "teams.acme.sso", "expected"),
    "saml-missing-certificate": (
        '[teams.acme.sso]\nmethod = "saml"\nentity_id = "https://idp.example.com/metadata"\n'
        'sso_url = "https://idp.example.com/sso"\n',
        "teams.acme.sso.certificate",
        "missing; saml SSO needs certificate, entity_id, method, sso_url",
    ),
    "oidc-missing-client-secret": (
        '[teams.acme.sso]\nmethod = "oidc"\nissuer = "https://login.example.com"\n'
        'client_id = "gateway"\n',
        "teams.acme.sso.client_secret",
        "missing; oidc SSO needs client_id, client_secret, issuer, method",
    ),
    "oidc-key-on-saml": (
        '[teams.acme.sso]\nmethod = "saml"\nissuer = "https://login.example.com"\n',
        "teams.acme.sso.issuer",
        "unknown key for saml SSO",
    ),
    "oidc-literal-client-secret": (
        '[teams.acme.sso]\nmethod = "oidc"\nissuer = "https://login.example.com"\n'
        'client_id = "gateway"\nclient_secret = "literal-token-value"\n',
        "teams.acme.sso.client_secret",
        'Use { env = "VARIABLE" }',
    ),
    "saml-certificate-env": (
        '[teams.acme.sso]\nmethod = "saml"\nentity_id = "https://idp.example.com/metadata"\n'
        'sso_url = "https://idp.example.com/sso"\ncertificate = { env = "IDP_PEM" }\n',
        "teams.acme.sso.certificate",
        'expected a PEM string or { file = "idp.pem" }',
    ),
    "saml-entity-id-type": (
        '[teams.acme.sso]\nmethod = "saml"\nentity_id = 5\n'
        'sso_url = "https://idp.example.com/sso"\ncertificate = { file = "idp.pem" }\n',
        "teams.acme.sso.entity_id",
        "expected a string",
    ),
}


@pytest.mark.parametrize(("text", "key", "fix"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_config_names_file_key_and_fix(
    tmp_path: Path, text: str, key: str, fix: str
) -> None:
    path = write_config(tmp_path, text)
    message = config_error(path)
    assert message.startswith(f"{path}: "), message
    assert key in message, message
    assert fix in message, message
    assert "literal-token-value" not in message  # a secret written by mistake is not echoed


def test_not_toml(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[server\nport = 8000\n")
    message = config_error(path)
    assert message.startswith(f"{path}: not valid TOML")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    message = config_error(path)
    assert message.startswith(f"{path}: cannot read the config file")


def test_valid_config(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[server]\nport = 9000\nbase_url = "https://scim.example.com"\n'
        "[limits]\nmax_results = 50\ndefault_count = 20\n"
        '[security]\nkey_secret = { file = "/run/secrets/key" }\n'
        '[teams.acme]\nname = "Acme"\nscim_enabled = false\n'
        'options = { default_role = "viewer" }\n',
    )
    settings = load_settings(path)
    assert settings.source == str(path)
    assert settings.server.port == 9000
    assert settings.limits.default_count == 20
    assert settings.security.key_secret is not None
    assert settings.security.key_secret.file == "/run/secrets/key"
    (team,) = settings.teams
    assert (team.slug, team.name, team.scim_enabled, team.sso) == ("acme", "Acme", False, None)
    assert team.options == {"default_role": "viewer"}


# --- secrets are resolved at startup ------------------------------------------------


def start(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(path)
    gateway = Gateway(settings)
    try:
        gateway.start()
    finally:
        gateway.stop()


def database_section(tmp_path: Path) -> str:
    return f'[database]\nurl = "sqlite:///{tmp_path / "gateway.sqlite3"}"\n'


def test_missing_env_secret_stops_startup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCIM_GATEWAY_TEST_ABSENT", raising=False)
    path = write_config(
        tmp_path,
        database_section(tmp_path)
        + '[security]\nkey_secret = { env = "SCIM_GATEWAY_TEST_ABSENT" }\n',
    )
    with pytest.raises(ConfigError) as info:
        start(path, monkeypatch)
    message = str(info.value)
    assert message.startswith(f"{path}: security.key_secret: ")
    assert "environment variable SCIM_GATEWAY_TEST_ABSENT is not set or empty" in message
    assert "Export it before starting the gateway" in message


def test_empty_env_secret_stops_startup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_GATEWAY_TEST_EMPTY", "")
    path = write_config(
        tmp_path,
        database_section(tmp_path)
        + '[security]\nkey_secret = { env = "SCIM_GATEWAY_TEST_EMPTY" }\n',
    )
    with pytest.raises(ConfigError) as info:
        start(path, monkeypatch)
    assert str(info.value).startswith(f"{path}: security.key_secret: environment variable")


def test_missing_secret_file_stops_startup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absent = tmp_path / "no-such-secret"
    path = write_config(
        tmp_path,
        database_section(tmp_path) + f'[security]\nkey_secret = {{ file = "{absent}" }}\n',
    )
    with pytest.raises(ConfigError) as info:
        start(path, monkeypatch)
    message = str(info.value)
    assert message.startswith(f"{path}: security.key_secret: cannot read secret file")
    assert str(absent) in message
    assert "Create the file or fix the path" in message


def test_resolvable_secrets_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "key-secret"
    secret.write_text("k" * 48 + "\n", encoding="utf-8")
    path = write_config(
        tmp_path,
        database_section(tmp_path) + f'[security]\nkey_secret = {{ file = "{secret}" }}\n',
    )
    start(path, monkeypatch)


# --- config.example.toml is part of the documentation ----------------------------------

_COMMENTED_KEY = re.compile(r"^#\s?([a-z][a-z0-9_]*\s*=\s*\S.*)$")


def _uncommented_example() -> str:
    """The example with its commented-out ``# key = value`` and ``# [table]`` lines on."""
    lines = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        header = re.match(r"^#\s*(\[[A-Za-z0-9_.-]+\])(\s+#.*)?$", line)
        if header is not None:
            lines.append(header.group(1))
            continue
        match = _COMMENTED_KEY.match(line)
        if match is not None:
            try:
                tomllib.loads(match.group(1))
            except tomllib.TOMLDecodeError:
                pass  # prose that happens to contain '='
            else:
                line = match.group(1)
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_example_config_loads() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.source == str(EXAMPLE)


def test_example_config_shows_the_defaults() -> None:
    """Its header says the values shown are the defaults."""
    shown = load_settings(EXAMPLE)
    defaults = Settings()
    for section in fields(Settings):
        if section.name in ("teams", "source"):
            continue
        assert getattr(shown, section.name) == getattr(defaults, section.name), section.name


def test_example_config_commented_keys_are_known(tmp_path: Path) -> None:
    """Keys shown commented out (``# token = { env = ... }``) are real keys too."""
    load_settings(write_config(tmp_path, _uncommented_example()))


def test_example_config_every_key_known() -> None:
    data = tomllib.loads(_uncommented_example())
    known = {section.name for section in fields(Settings)} - {"source"}
    for section, table in data.items():
        assert section in known, f"config.example.toml: unknown section [{section}]"
        if section == "teams":
            continue
        keys = {f.name for f in fields(type(getattr(Settings(), section)))}
        assert set(table) <= keys, f"[{section}]: unknown {sorted(set(table) - keys)}"
