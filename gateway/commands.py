"""Administration commands: ``teams``, ``sso``, ``scim``, ``keys``, ``plugins`` and ``admin``.

Each command opens the configured database, applies the config file's teams (as
``serve`` does), acts through :mod:`gateway.teams`, and prints either lines for a
person or, with ``--json``, one JSON document for a script. Failures go to stderr
with a non-zero exit code and say what to do.
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
from .config import Settings
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


_HANDLERS = {"teams": _teams, "sso": _sso, "scim": _scim, "keys": _keys, "plugins": _plugins}


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one administration command; 0 on success, 1 when refused."""
    try:
        if args.command == "admin":
            _admin(args)
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
