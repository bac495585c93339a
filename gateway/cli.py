"""The ``scim-gateway`` command."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import ConfigError, Settings, load_settings

__all__ = ["build_parser", "effective_settings", "main"]


def effective_settings(config: str | None) -> Settings:
    """The config file's settings, with SCIM_GATEWAY_DATABASE_URL applied on top."""
    settings = load_settings(config)
    url = os.environ.get("SCIM_GATEWAY_DATABASE_URL")
    if url:
        from dataclasses import replace

        settings = settings.replace(database=replace(settings.database, url=url))
    return settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scim-gateway",
        description="A multi-team SCIM 2.0 provisioning gateway.",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML config file (default: built-in)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway under uvicorn")
    serve.add_argument("--config", dest="serve_config", metavar="FILE", help="TOML config file")
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    return parser


def _serve(args: argparse.Namespace, settings: Settings, config: str | None) -> int:
    import uvicorn

    from .app import Gateway

    if config:
        os.environ["SCIM_GATEWAY_CONFIG"] = str(Path(config).resolve())
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    workers = args.workers or settings.server.workers
    # Create the schema once, before any worker starts.
    gateway = Gateway(settings)
    gateway.start()
    gateway.stop()
    if settings.auth.token is None and not os.environ.get("SCIM_GATEWAY_TOKEN"):
        token = "scimgw_dev_" + secrets.token_urlsafe(32)
        os.environ["SCIM_GATEWAY_TOKEN"] = token
        print(
            "No SCIM credential is configured, so this run uses a one-time development token\n"
            f"for team '{settings.auth.default_team}'. It is shown only here:\n\n  {token}\n\n"
            f"  curl -H 'Authorization: Bearer {token}' "
            f"http://{host}:{port}/scim/v2/Users\n",
            file=sys.stderr,
            flush=True,
        )
    uvicorn.run(
        "gateway.app:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=args.log_level,
        access_log=False,
        server_header=False,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config = getattr(args, "serve_config", None) or args.config
    try:
        settings = effective_settings(config)
        if args.command == "serve":
            return _serve(args, settings, config)
    except ConfigError as exc:
        print(f"scim-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
