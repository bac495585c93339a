"""Administration commands: ``teams``, ``sso``, ``scim``, ``keys``, ``plugins``, ``audit``,
``events``, ``db`` and ``admin``.

Each command opens the configured database, applies the config file's teams (as
``serve`` does), acts through :mod:`gateway.teams`, and prints either lines for a
person or, with ``--json``, one JSON document for a script. Failures go to stderr
with a non-zero exit code and say what to do. ``db`` touches the schema alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from plugins import PluginError

from .app import Gateway
from .audit import list_audit, parse_since
from .config import Settings
from .outbox import STATES, list_deliveries, redeliver
from .sso import SsoError, validate_oidc, validate_saml
from .teams import (
    KeyInfo,
    TeamError,
    TeamInfo,
    clear_sso,
    create_key,
    create_team,
    disable_scim,
    enable_scim,
    get_team,
    list_keys,
    list_teams,
    regenerate_key,
    revoke_key,
    set_sso,
)

__all__ = ["CommandError", "add_commands", "run_command"]


class CommandError(Exception):
    """A failed command; the message is printed to stderr."""


def add_commands(sub: Any) -> None:
    """Register the administration sub-commands on an argparse sub-parser set."""
    teams = sub.add_parser("teams", help="create and list teams").add_subparsers(
        dest="action", required=True
    )
    p = teams.add_parser("create", help="create a team")
    p.add_argument("slug")
    p.add_argument("--name")
    p.add_argument("--adapter", dest="default_adapter", default="generic")
    p = teams.add_parser("list", help="list teams")
    p.add_argument("--json", action="store_true")

    sso = sub.add_parser("sso", help="configure a team's SSO").add_subparsers(
        dest="action", required=True
    )
    p = sso.add_parser("set-saml", help="SAML 2.0: entity ID, SSO URL, signing certificate")
    p.add_argument("team")
    p.add_argument("--entity-id", required=True)
    p.add_argument("--sso-url", required=True)
    p.add_argument("--certificate", required=True, metavar="PEM_FILE")
    p = sso.add_parser("set-oidc", help="OpenID Connect: issuer, client id, secret reference")
    p.add_argument("team")
    p.add_argument("--issuer", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret-env", required=True, metavar="VAR")
    p = sso.add_parser("clear", help="remove the team's SSO (turns SCIM off)")
    p.add_argument("team")

    scim = sub.add_parser("scim", help="turn SCIM provisioning on or off").add_subparsers(
        dest="action", required=True
    )
    for action in ("enable", "disable"):
        scim.add_parser(action, help=f"{action} SCIM provisioning").add_argument("team")
    p = scim.add_parser("status", help="show whether SCIM is on, and why not")
    p.add_argument("team")
    p.add_argument("--json", action="store_true")

    keys = sub.add_parser("keys", help="manage SCIM API keys").add_subparsers(
        dest="action", required=True
    )
    p = keys.add_parser("create", help="generate a key (shown once)")
    p.add_argument("team")
    p.add_argument("--name", required=True)
    p.add_argument("--adapter")
    p.add_argument("--expires-in", type=int, metavar="DAYS")
    p.add_argument("--json", action="store_true")
    p = keys.add_parser("list", help="list a team's keys")
    p.add_argument("team")
    p.add_argument("--json", action="store_true")
    p = keys.add_parser("revoke", help="revoke a key now")
    p.add_argument("team")
    p.add_argument("key_id")
    p = keys.add_parser("regenerate", help="issue a new key; the old one may overlap")
    p.add_argument("team")
    p.add_argument("key_id")
    p.add_argument("--keep-old-for", type=int, default=0, metavar="MINUTES")
    p.add_argument("--json", action="store_true")

    plugins = sub.add_parser("plugins", help="show the plugins and adapters loaded")
    p = plugins.add_subparsers(dest="action", required=True).add_parser(
        "list", help="each plugin, its distribution and its adapters"
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("audit", help="a team's provisioning changes, newest first")
    p.add_argument("team")
    p.add_argument("--user", metavar="ID", help="only changes about this user (SCIM id)")
    p.add_argument("--since", metavar="TIME", help="2024-05-01, 2024-05-01T12:00:00Z or 7d")
    p.add_argument("--start-index", type=int, default=1, metavar="N", help="1-based (default 1)")
    p.add_argument("--count", type=int, default=100, metavar="N", help="page size (default 100)")
    p.add_argument("--json", action="store_true")

    events = sub.add_parser("events", help="webhook deliveries of provisioning events")
    events_sub = events.add_subparsers(dest="action", required=True)
    p = events_sub.add_parser("list", help="a team's deliveries, oldest event first")
    p.add_argument("team")
    p.add_argument("--state", choices=STATES)
    p.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (default 100)")
    p.add_argument("--json", action="store_true")
    p = events_sub.add_parser("redeliver", help="send an event, or every dead one, again")
    p.add_argument("team")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--event", metavar="ID", help="one event (any state but pending)")
    which.add_argument("--dead", action="store_true", help="every dead-lettered delivery")

    db = sub.add_parser("db", help="the database schema and its migrations").add_subparsers(
        dest="action", required=True
    )
    db.add_parser("upgrade", help="apply the schema migrations this version brings")
    p = db.add_parser("current", help="the database's schema revision and this version's")
    p.add_argument("--json", action="store_true")

    admin = sub.add_parser("admin", help="operator credentials").add_subparsers(
        dest="action", required=True
    )
    admin.add_parser("new-token", help="generate an operator token for /admin/v1")
    admin.add_parser("hash-token", help="print the SHA-256 of a token read from stdin")


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _team_line(team: TeamInfo) -> str:
    state = "SCIM on" if team.scim_enabled else "SCIM off"
    sso = team.sso_method or "no SSO"
    return f"{team.slug}\t{team.name}\t{sso}\t{state}\tadapter={team.default_adapter}"


def _key_lines(key: KeyInfo) -> list[str]:
    last = key.last_used.isoformat() if key.last_used else "never"
    expires = key.expires.isoformat() if key.expires else "never"
    return [
        f"{key.id}\t{key.name}\t{key.prefix}\tadapter={key.adapter}\t{key.status}\t"
        f"created={key.created.isoformat()}\tlast_used={last}\texpires={expires}"
    ]


def _new_key_output(args: argparse.Namespace, key: KeyInfo, token: str, verb: str) -> None:
    if args.json:
        _print_json({**key.to_dict(), "token": token})
        return
    print(f"{verb} key {key.id} ({key.name!r}, adapter {key.adapter}) for team {key.team}.")
    print("Copy it now; it is shown only this once:\n")
    print(f"  {token}\n")


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc


def _sso(gw: Gateway, args: argparse.Namespace) -> None:
    if args.action == "set-saml":
        pem = _read_text(args.certificate)
        team = set_sso(gw.db, args.team, validate_saml(args.entity_id, args.sso_url, pem))
        print(f"SAML SSO saved for team {team.slug}.")
    elif args.action == "set-oidc":
        if not os.environ.get(args.client_secret_env):
            raise CommandError(
                f"Environment variable {args.client_secret_env} is not set; export the client "
                "secret in it (the gateway stores only the variable's name)."
            )
        verify: bool | str = gw.settings.security.sso_ca_bundle or True
        conn = validate_oidc(
            args.issuer, args.client_id, {"env": args.client_secret_env}, verify=verify
        )
        team = set_sso(gw.db, args.team, conn)
        print(f"OpenID Connect SSO saved for team {team.slug} (issuer {conn.issuer}).")
    else:
        team = clear_sso(gw.db, args.team)
        print(f"SSO removed for team {team.slug}; SCIM provisioning is off.")


def _scim(gw: Gateway, args: argparse.Namespace) -> None:
    if args.action == "enable":
        team = enable_scim(gw.db, args.team)
        print(f"SCIM provisioning is on for team {team.slug}.")
        print(f"Next: scim-gateway keys create {team.slug} --name <name>")
        return
    if args.action == "disable":
        team = disable_scim(gw.db, args.team)
        print(f"SCIM provisioning is off for team {team.slug}; its data is kept.")
        return
    team = get_team(gw.db, args.team)
    active = [k for k in list_keys(gw.db, args.team) if k.status in ("active", "retiring")]
    status = {
        "team": team.slug,
        "scim_enabled": team.scim_enabled,
        "sso": team.sso_method,
        "active_keys": len(active),
    }
    if args.json:
        _print_json(status)
    else:
        print(
            f"team {team.slug}: SCIM {'on' if team.scim_enabled else 'off'}, "
            f"SSO {team.sso_method or 'not configured'}, {len(active)} active key(s)"
        )


def _check_adapter(gw: Gateway, name: str | None) -> None:
    """Refuse an adapter name that no loaded plugin provides."""
    if name is not None and gw.plugins.registry.get(name) is None:
        loaded = ", ".join(gw.plugins.registry.canonical_names()) or "none"
        raise CommandError(
            f"No adapter named {name!r} is loaded on this gateway (loaded: {loaded}). "
            "Install the plugin that provides it, or unblock it; "
            "scim-gateway plugins list shows what is loaded."
        )


def _plugins(gw: Gateway, args: argparse.Namespace) -> None:
    infos = gw.plugins.describe()
    adapters = gw.plugins.registry.classes()
    if args.json:
        _print_json(
            {
                "plugins": [info.to_dict() for info in infos],
                "blocked": gw.plugins.blocked,
                "adapters": [
                    {"name": a.name, "aliases": list(a.aliases), "description": a.description}
                    for a in adapters
                ],
            }
        )
        return
    for info in infos:
        provides = ", ".join(info.adapters) or "no adapter"
        print(f"{info.name}	{info.distribution} {info.version}".rstrip() + f"	{provides}")
    for name in gw.plugins.blocked:
        print(f"{name}	blocked (not loaded)")
    names = [f"{a.name} ({', '.join(a.aliases)})" if a.aliases else a.name for a in adapters]
    print(f"adapters: {', '.join(names) or 'none'}")


def _keys(gw: Gateway, args: argparse.Namespace) -> None:
    if args.action == "create":
        _check_adapter(gw, args.adapter)
        key, token = create_key(
            gw.db,
            gw.hasher,
            args.team,
            args.name,
            adapter=args.adapter,
            expires_in_days=args.expires_in,
        )
        _new_key_output(args, key, token, "Created")
    elif args.action == "list":
        keys = list_keys(gw.db, args.team)
        if args.json:
            _print_json([k.to_dict() for k in keys])
        else:
            for key in keys:
                print("\n".join(_key_lines(key)))
    elif args.action == "revoke":
        key = revoke_key(gw.db, args.team, args.key_id)
        print(f"Key {key.id} ({key.name!r}) of team {key.team} is revoked.")
    else:
        key, token = regenerate_key(
            gw.db, gw.hasher, args.team, args.key_id, keep_old_for_minutes=args.keep_old_for
        )
        _new_key_output(args, key, token, "Regenerated")
        if not args.json:
            when = f"in {args.keep_old_for} minute(s)" if args.keep_old_for else "now"
            print(f"The old key {args.key_id} stops working {when}.")


def _teams(gw: Gateway, args: argparse.Namespace) -> None:
    if args.action == "create":
        _check_adapter(gw, args.default_adapter)
        team = create_team(gw.db, args.slug, args.name, default_adapter=args.default_adapter)
        print(f"Created team {team.slug}. Next: configure its SSO (scim-gateway sso set-saml ...).")
        return
    teams = list_teams(gw.db)
    if args.json:
        _print_json([t.to_dict() for t in teams])
    else:
        for team in teams:
            print(_team_line(team))


def _audit(gw: Gateway, args: argparse.Namespace) -> None:
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise CommandError(f"--since: {exc}") from None
    if args.start_index < 1 or args.count < 0:
        raise CommandError("--start-index must be 1 or more and --count 0 or more.")
    page = list_audit(
        gw.db,
        args.team,
        user_id=args.user,
        since=since,
        start_index=args.start_index,
        count=args.count,
    )
    if args.json:
        _print_json(page.to_dict())
        return
    for record in page.records:
        key = f"{record.key_name} ({record.key_id})" if record.key_id else "-"
        print(
            f"{record.occurred_at.isoformat(timespec='seconds')}\t{record.action}\t"
            f"key={key}\tadapter={record.adapter or '-'}\trequest={record.request_id or '-'}"
        )
    last = args.start_index + len(page.records) - 1
    if page.records:
        print(f"records {args.start_index}-{last} of {page.total}", file=sys.stderr)
    else:
        print(f"no records (of {page.total})", file=sys.stderr)


def _events(gw: Gateway, args: argparse.Namespace) -> None:
    if args.action == "redeliver":
        count = redeliver(gw.db, args.team, event_id=args.event, dead=args.dead)
        what = f"event {args.event}" if args.event else "dead deliveries"
        print(
            f"Queued {count} delivery(ies) of {what} for team {args.team}; a running gateway "
            "sends them within moments."
        )
        return
    infos = list_deliveries(gw.db, args.team, state=args.state, limit=args.limit)
    if args.json:
        _print_json([info.to_dict() for info in infos])
        return
    for info in infos:
        detail = info.last_error or (f"HTTP {info.last_status}" if info.last_status else "")
        print(
            f"{info.event_id}\t{info.kind}\t{info.resource_type}/{info.resource_id}\t"
            f"{info.url}\t{info.state}\tattempts={info.attempts}\t{detail}".rstrip()
        )


def _admin(args: argparse.Namespace) -> None:
    if args.action == "new-token":
        token = "scimgw_admin_" + secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode()).hexdigest()
        print(f"Operator token (shown once):\n\n  {token}\n")
        print(f'Put its hash in the config:\n\n  [admin]\n  token_sha256 = "{digest}"')
        return
    token = sys.stdin.readline().strip()
    if not token:
        raise CommandError("Pipe the token on standard input: ... | scim-gateway admin hash-token")
    print(hashlib.sha256(token.encode()).hexdigest())


def _db(args: argparse.Namespace, settings: Settings) -> None:
    """``db upgrade`` and ``db current``: the schema alone, no teams, keys or plugins."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import InterfaceError, OperationalError

    from .scim.errors import ServiceUnavailable
    from .store import migrate
    from .store.db import Database, make_engine

    url = settings.database.url
    db = Database(make_engine(url, pool_size=1))
    try:
        with db.transaction(write=False) as conn:
            before = migrate.current_revision(conn)
        head = migrate.head_revision()
        if args.action == "upgrade":
            after = migrate.upgrade(db)
            if before == after:
                print(f"The database schema is at {after} (head); nothing to do.")
            else:
                print(f"Upgraded the database schema from {before or 'nothing'} to {after} (head).")
        elif args.json:
            _print_json({"current": before, "head": head, "up_to_date": before == head})
        elif before == head:
            print(f"{before} (head)")
        elif before is not None and not migrate.is_known(before):
            print(f"{before} (newer than this version, whose head is {head})")
        else:
            print(
                f"{before or 'none'} (this version's head is {head}; run scim-gateway db upgrade)"
            )
    except migrate.MigrationError as exc:
        raise CommandError(str(exc)) from exc
    except (OperationalError, InterfaceError, ServiceUnavailable) as exc:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        shown = make_url(url).render_as_string(hide_password=True)
        raise CommandError(
            f"cannot open the database {shown}: {reason}. Check database.url (or "
            "SCIM_GATEWAY_DATABASE_URL) and that the database is running and reachable."
        ) from exc
    finally:
        db.dispose()


_HANDLERS = {
    "teams": _teams,
    "sso": _sso,
    "scim": _scim,
    "keys": _keys,
    "plugins": _plugins,
    "audit": _audit,
    "events": _events,
}


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one administration command; 0 on success, 1 when refused."""
    try:
        if args.command == "admin":
            _admin(args)
            return 0
        if args.command == "db":  # the schema only: nothing else of the gateway starts
            _db(args, settings)
            return 0
        gateway = Gateway(settings)
        try:
            if args.command != "plugins":  # listing plugins needs no database
                gateway.start()
            _HANDLERS[args.command](gateway, args)
        finally:
            gateway.stop()
    except (TeamError, SsoError, CommandError, PluginError) as exc:
        print(f"scim-gateway: {exc}", file=sys.stderr)
        return 1
    return 0
