"""SCIM API keys: their format, how they are stored, listed, bound, rotated and refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import event, select, update
from starlette.testclient import TestClient

from gateway.app import Gateway, create_app
from gateway.config import DatabaseSettings, Settings
from gateway.keys import new_key, parse_key
from gateway.scim.errors import Unauthorized
from gateway.sso import validate_saml
from gateway.store.db import make_engine
from gateway.store.tables import ApiKey, GatewaySetting, Team
from gateway.teams import (
    create_key,
    create_team,
    enable_scim,
    list_keys,
    regenerate_key,
    revoke_key,
    set_sso,
)
from tests.conftest import ERROR, SCIM
from tests.statements import recorded
from tests.support import ENTITY_ID, SSO_URL, provision, saml_certificate

keys_table = ApiKey.__table__  # type: ignore[attr-defined]
settings_table = GatewaySetting.__table__  # type: ignore[attr-defined]
teams_table = Team.__table__  # type: ignore[attr-defined]

KEY_RE = re.compile(r"^scimgw_([a-z2-7]{12})_([A-Za-z0-9_-]{43})$")


@dataclass
class Env:
    client: TestClient
    gateway: Gateway
    slug: str

    def get(self, path: str, token: str | None) -> httpx2.Response:
        headers = {"Content-Type": SCIM}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.get(f"/scim/v2{path}", headers=headers)

    def status(self, token: str) -> int:
        return self.get("/Users", token).status_code

    def set_key(self, key_id: str, **values: Any) -> None:
        """Change a stored key directly, e.g. to move its expiry into the past."""
        self.gateway.db.call(
            lambda conn: conn.execute(
                update(keys_table).where(keys_table.c.key_id == key_id).values(**values)
            ),
            write=True,
        )

    def key_row(self, key_id: str) -> Any:
        return self.gateway.db.call(
            lambda conn: conn.execute(select(keys_table).where(keys_table.c.key_id == key_id)).one()
        )


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.delenv("SCIM_GATEWAY_TOKEN", raising=False)
    app = create_app(Settings(database=DatabaseSettings(url=database_url)))
    with TestClient(app, base_url="http://testserver") as client:
        yield Env(client, app.state.gateway, "keys-" + uuid.uuid4().hex[:12])


@pytest.fixture
def team(env: Env) -> str:
    """A provisioned team (SSO set, SCIM on); its first key is discarded."""
    provision(env.gateway, env.slug)
    return env.slug


def new_token(env: Env, name: str = "okta", **kw: Any) -> tuple[str, str]:
    info, token = create_key(env.gateway.db, env.gateway.hasher, env.slug, name, **kw)
    return info.id, token


def key_info(env: Env, key_id: str) -> Any:
    [info] = [k for k in list_keys(env.gateway.db, env.slug) if k.id == key_id]
    return info


# --- format --------------------------------------------------------------------


def secret_part(token: str) -> str:
    match = KEY_RE.match(token)
    assert match is not None, token
    return match.group(2)


def test_key_format(env: Env, team: str) -> None:
    info, token = create_key(env.gateway.db, env.gateway.hasher, team, "okta")
    match = KEY_RE.match(token)
    assert match is not None, token
    assert token.startswith("scimgw_")
    assert match.group(1) == info.id
    assert parse_key(token) == info.id
    assert info.prefix == f"scimgw_{info.id}_…"

    # The secret part is 32 random bytes (256 bits), URL-safe base64 without padding.
    secret = match.group(2)
    raw = base64.urlsafe_b64decode(secret + "=")
    assert len(raw) == 32
    assert base64.urlsafe_b64encode(raw).decode().rstrip("=") == secret

    _other_info, other = create_key(env.gateway.db, env.gateway.hasher, team, "okta-2")
    assert other != token
    assert secret_part(other) != secret
    assert _other_info.id != info.id


def test_key_secrets_look_random() -> None:
    """No two of many keys share an id or a secret, and their bits are balanced."""
    tokens = [new_key()[1] for _ in range(256)]
    assert len(set(tokens)) == len(tokens)
    assert len({parse_key(t) for t in tokens}) == len(tokens)
    secrets = [base64.urlsafe_b64decode(secret_part(t) + "=") for t in tokens]
    assert len(set(secrets)) == len(secrets)
    ones = sum(bin(byte).count("1") for raw in secrets for byte in raw)
    bits = len(secrets) * 256
    assert 0.47 < ones / bits < 0.53
    # No bit position is stuck: each of the 256 is set in some keys and clear in others.
    for position in range(256):
        column = {(raw[position // 8] >> (position % 8)) & 1 for raw in secrets}
        assert column == {0, 1}, position


# --- storage and listing ---------------------------------------------------------


def test_only_a_keyed_hash_is_stored(env: Env, team: str) -> None:
    key_id, token = new_token(env)
    row = env.key_row(key_id)
    stored = " ".join(str(value) for value in row)
    assert token not in stored
    assert secret_part(token) not in stored

    # secret_hash is HMAC-SHA-256 of the whole key under the server's secret.
    server_secret = env.gateway.db.call(
        lambda conn: conn.execute(
            select(settings_table.c.value).where(settings_table.c.name == "key_hash_secret")
        ).scalar_one()
    )
    expected = hmac.new(bytes.fromhex(server_secret), token.encode(), hashlib.sha256).hexdigest()
    assert row.secret_hash == expected
    assert re.fullmatch(r"[0-9a-f]{64}", row.secret_hash)
    assert row.secret_hash != hashlib.sha256(token.encode()).hexdigest()
    assert env.gateway.hasher.matches(token, row.secret_hash)


def test_the_token_is_shown_once_and_never_listed(env: Env, team: str) -> None:
    info, token = create_key(env.gateway.db, env.gateway.hasher, team, "okta", adapter="okta")
    for shown in (info, *list_keys(env.gateway.db, team)):
        text = repr(shown) + repr(shown.to_dict())
        assert token not in text
        assert secret_part(token) not in text

    listed = key_info(env, info.id).to_dict()
    for field in ("name", "prefix", "adapter", "created", "last_used", "expires", "status"):
        assert field in listed, field
    assert listed["name"] == "okta"
    assert listed["prefix"] == f"scimgw_{info.id}_…"
    assert listed["adapter"] == "okta"
    assert listed["created"] is not None
    assert listed["last_used"] is None
    assert listed["expires"] is None
    assert listed["status"] == "active"

    dated, _ = new_token(env, "dated", expires_in_days=30)
    expires = datetime.fromisoformat(key_info(env, dated).to_dict()["expires"])
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)


def test_a_team_has_several_named_keys(env: Env, team: str) -> None:
    made = {name: new_token(env, name) for name in ("okta-production", "entra", "backup")}
    names = [k.name for k in list_keys(env.gateway.db, team)]
    assert names == ["idp", "okta-production", "entra", "backup"]
    for name, (key_id, token) in made.items():
        principal = env.gateway.keys.verify(token)
        assert (principal.key_id, principal.key_name) == (key_id, name)
        assert env.status(token) == 200


def test_a_key_is_bound_to_its_team_and_adapter(env: Env) -> None:
    db, hasher = env.gateway.db, env.gateway.hasher
    create_team(db, env.slug, default_adapter="okta")
    set_sso(db, env.slug, validate_saml(ENTITY_ID, SSO_URL, saml_certificate()))
    enable_scim(db, env.slug)
    _plain_info, plain = create_key(db, hasher, env.slug, "default-adapter")
    _entra_info, entra = create_key(db, hasher, env.slug, "entra", adapter="entra")

    other_slug = "keys-" + uuid.uuid4().hex[:12]
    other = provision(env.gateway, other_slug)

    first = env.gateway.keys.verify(plain)
    assert (first.team_slug, first.adapter) == (env.slug, "okta")
    second = env.gateway.keys.verify(entra)
    assert (second.team_slug, second.adapter) == (env.slug, "entra")
    assert second.team_pk == first.team_pk
    third = env.gateway.keys.verify(other)
    assert (third.team_slug, third.adapter) == (other_slug, "generic")
    assert third.team_pk != first.team_pk

    adapters = {k.name: k.adapter for k in list_keys(db, env.slug)}
    assert adapters == {"default-adapter": "okta", "entra": "entra"}


# --- last used ---------------------------------------------------------------------


def count_key_updates(env: Env) -> tuple[list[str], Callable[[], None]]:
    statements: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        text = statement.lstrip().lower()
        if text.startswith("update") and "scim_key" in text:
            statements.append(statement)

    engine = env.gateway.db.engine
    event.listen(engine, "before_cursor_execute", listener)
    return statements, lambda: event.remove(engine, "before_cursor_execute", listener)


def test_last_used_is_recorded_but_not_on_every_request(env: Env, team: str) -> None:
    key_id, token = new_token(env)
    assert key_info(env, key_id).last_used is None

    updates, stop = count_key_updates(env)
    try:
        for _ in range(20):
            assert env.status(token) == 200
    finally:
        stop()
    assert len(updates) == 1, updates
    last_used = key_info(env, key_id).last_used
    assert last_used is not None

    # Once the interval has passed, the next request records it again.
    two_minutes_ago = datetime.now(UTC) - timedelta(minutes=2)
    env.set_key(key_id, last_used_at=two_minutes_ago)
    updates, stop = count_key_updates(env)
    try:
        for _ in range(5):
            assert env.status(token) == 200
    finally:
        stop()
    assert len(updates) == 1, updates
    refreshed = key_info(env, key_id).last_used
    assert refreshed is not None
    refreshed = refreshed if refreshed.tzinfo else refreshed.replace(tzinfo=UTC)
    assert datetime.now(UTC) - refreshed < timedelta(minutes=1)


# --- revocation, rotation, expiry --------------------------------------------------


def test_a_revoked_key_is_refused_at_once(env: Env, team: str) -> None:
    key_id, token = new_token(env)
    _spare_id, spare = new_token(env, "spare")
    assert env.status(token) == 200

    info = revoke_key(env.gateway.db, team, key_id)
    assert info.status == "revoked"
    assert env.status(token) == 401
    assert env.status(spare) == 200  # other keys of the team are untouched
    assert key_info(env, key_id).status == "revoked"


def test_regenerate_without_overlap_retires_the_old_key_at_once(env: Env, team: str) -> None:
    old_id, old = new_token(env, "okta", adapter="okta")
    assert env.status(old) == 200

    info, new = regenerate_key(env.gateway.db, env.gateway.hasher, team, old_id)
    assert new != old
    assert (info.name, info.adapter) == ("okta", "okta")
    assert env.status(old) == 401
    assert env.status(new) == 200
    retired = key_info(env, old_id)
    assert (retired.status, retired.replaced_by) == ("revoked", info.id)


def test_regenerate_with_overlap_keeps_both_until_it_ends(env: Env, team: str) -> None:
    old_id, old = new_token(env)
    info, new = regenerate_key(
        env.gateway.db, env.gateway.hasher, team, old_id, keep_old_for_minutes=30
    )
    assert env.status(old) == 200
    assert env.status(new) == 200
    retiring = key_info(env, old_id)
    assert retiring.status == "retiring"
    assert retiring.revoked_at is not None

    # The overlap passes.
    env.set_key(old_id, revoked_at=datetime.now(UTC) - timedelta(seconds=1))
    assert env.status(old) == 401
    assert env.status(new) == 200
    assert key_info(env, old_id).status == "revoked"
    assert key_info(env, info.id).status == "active"


def test_a_key_with_an_expiry_stops_working_after_it(env: Env, team: str) -> None:
    key_id, token = new_token(env, expires_in_days=1)
    assert env.status(token) == 200
    assert key_info(env, key_id).status == "active"

    env.set_key(key_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert env.status(token) == 401
    assert key_info(env, key_id).status == "expired"


# --- a key that verified, kept until the next commit (SQLite) -------------------------


def elsewhere(env: Env, table: Any, where: Any, **values: Any) -> None:
    """Change a stored row through an engine of its own: another gateway process, or
    the admin CLI, doing it."""
    other = make_engine(str(env.gateway.db.engine.url))
    try:
        with other.begin() as conn:
            conn.execute(update(table).where(where).values(**values))
    finally:
        other.dispose()


def test_a_key_revoked_by_another_process_is_refused_at_once(env: Env, team: str) -> None:
    key_id, token = new_token(env)
    for _ in range(3):  # verified, then kept
        assert env.status(token) == 200
    elsewhere(env, keys_table, keys_table.c.key_id == key_id, revoked_at=datetime.now(UTC))
    assert env.status(token) == 401


def test_scim_turned_off_by_another_process_answers_403_at_once(env: Env, team: str) -> None:
    _key_id, token = new_token(env)
    for _ in range(3):
        assert env.status(token) == 200
    elsewhere(env, teams_table, teams_table.c.slug == team, scim_enabled=False)
    response = env.get("/Users", token)
    assert response.status_code == 403
    assert "disabled" in response.json()["detail"]


def test_a_kept_key_stops_working_when_it_expires(env: Env, team: str) -> None:
    """Nothing is committed between the requests, so the last one finds the key kept:
    its expiry is checked all the same."""
    key_id, token = new_token(env)
    env.set_key(
        key_id,
        expires_at=datetime.now(UTC) + timedelta(seconds=1.5),
        last_used_at=datetime.now(UTC),  # no "last used" write on the next requests
    )
    assert env.status(token) == 200
    assert env.status(token) == 200
    time.sleep(1.6)
    assert env.status(token) == 401


def test_a_verified_key_is_looked_up_again_only_after_a_commit(env: Env, team: str) -> None:
    """On SQLite. On PostgreSQL other gateway processes commit unseen: every request
    looks its key up."""
    kept = env.gateway.db.data_version() is not None
    key_id, token = new_token(env)
    env.set_key(key_id, last_used_at=datetime.now(UTC))

    def lookups(requests: int) -> int:
        with recorded(env.client) as seen:
            for _ in range(requests):
                assert env.status(token) == 200
        return len([s for s in seen if s.is_select and s.touches("scim_key")])

    assert lookups(4) == (1 if kept else 4)
    new_token(env, "another")  # a commit: what was verified is verified again
    assert lookups(2) == (1 if kept else 2)


# --- every refusal looks the same ------------------------------------------------------


def bad_credentials(env: Env) -> dict[str, str | None]:
    """One credential of each kind the gateway must refuse, by name."""
    _live_id, live = new_token(env, "live")
    expired_id, expired = new_token(env, "expired", expires_in_days=1)
    env.set_key(expired_id, expires_at=datetime.now(UTC) - timedelta(days=1))
    revoked_id, revoked = new_token(env, "revoked")
    revoke_key(env.gateway.db, env.slug, revoked_id)
    wrong_secret = live[:-43] + new_key()[1][-43:]
    return {
        "missing": None,
        "malformed": "not-a-scim-key",
        "malformed-prefix": "scimgw_short_secret",
        "unknown": new_key()[1],
        "wrong-secret": wrong_secret,
        "expired": expired,
        "revoked": revoked,
    }


def test_every_bad_key_gets_the_identical_401(env: Env, team: str) -> None:
    answers = {name: env.get("/Users", token) for name, token in bad_credentials(env).items()}
    answers["not-bearer"] = env.client.get(
        "/scim/v2/Users", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    answers["empty-bearer"] = env.client.get("/scim/v2/Users", headers={"Authorization": "Bearer "})

    reference = answers["unknown"]
    assert reference.status_code == 401
    assert reference.json()["schemas"] == [ERROR]
    assert reference.json()["status"] == "401"
    assert reference.headers["www-authenticate"].startswith("Bearer")
    for name, response in answers.items():
        assert response.status_code == 401, name
        assert response.content == reference.content, name
        assert response.headers["www-authenticate"] == reference.headers["www-authenticate"], name
        assert response.headers["content-type"] == reference.headers["content-type"], name


def test_every_bad_key_takes_about_as_long(env: Env, team: str) -> None:
    """Each kind of refusal does one lookup and one HMAC, so none stands out in time."""
    credentials = bad_credentials(env)
    verify = env.gateway.keys.verify

    def once(token: str | None) -> int:
        start = time.perf_counter_ns()
        try:
            verify(token)
        except Unauthorized:
            pass
        else:  # pragma: no cover - a bad key was accepted
            pytest.fail("a bad key was accepted")
        return time.perf_counter_ns() - start

    for token in credentials.values():  # warm up connections and caches
        for _ in range(10):
            once(token)
    samples: dict[str, list[int]] = {name: [] for name in credentials}
    for _ in range(200):  # interleaved, so drift affects every kind alike
        for name, token in credentials.items():
            samples[name].append(once(token))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    fastest, slowest = min(medians.values()), max(medians.values())
    assert slowest <= 3 * fastest, {name: f"{m / 1000:.0f}us" for name, m in medians.items()}
