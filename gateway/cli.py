"""The ``scim-gateway`` command."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from plugins import PluginError

from .commands import add_commands, run_command
from .config import ConfigError, Settings, load_settings
from .store.migrate import MigrationError

__all__ = ["build_parser", "effective_settings", "main"]


_DATABASE_SCHEMES = ("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")


def effective_settings(config: str | None) -> Settings:
    """The config file's settings, with SCIM_GATEWAY_DATABASE_URL applied on top."""
    settings = load_settings(config)
    url = os.environ.get("SCIM_GATEWAY_DATABASE_URL")
    if url:
        from dataclasses import replace

        if not url.startswith(_DATABASE_SCHEMES):
            raise ConfigError(
                f"SCIM_GATEWAY_DATABASE_URL {_safe_url(url)!r} is not supported. Use "
                "sqlite:///path/to/file.sqlite3 or postgresql://user@host:5432/dbname."
            )
        settings = settings.replace(database=replace(settings.database, url=url))
    return settings


def _safe_url(url: str) -> str:
    """The database URL with any password masked, fit for a message."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


class DatabaseUnavailable(Exception):
    """The database named by the settings cannot be opened; the message says which."""


def _prepare(settings: Settings, *, demo: bool = False) -> str | None:
    """Create the schema and the configured teams once, before any worker starts;
    with ``demo``, set up the demo team and return a new key for it."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    from .app import Gateway
    from .scim.errors import ServiceUnavailable

    gateway = Gateway(settings)
    try:
        gateway.start()
        if demo:
            from .demo import setup_demo

            return setup_demo(gateway)
        return None
    except (OperationalError, InterfaceError, ServiceUnavailable) as exc:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot open the database {_safe_url(settings.database.url)}: {reason}. "
            "Check database.url (or SCIM_GATEWAY_DATABASE_URL) and that the database is "
            "running and reachable."
        ) from exc
    finally:
        gateway.stop()


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
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug"],
        help="overrides [logging] level (default info)",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="set up a labelled demo team (SSO, SCIM on) and print a key for it",
    )
    add_commands(sub)
    return parser


@contextlib.contextmanager
def _metrics_directory(workers: int) -> Iterator[None]:
    """Several workers share their metrics through files in PROMETHEUS_MULTIPROC_DIR:
    the operator's directory, else a fresh one for this run, removed afterwards."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        if any(Path(given).glob("*.db")):
            logging.getLogger("scim_gateway").warning(
                "PROMETHEUS_MULTIPROC_DIR %s holds metrics of an earlier run, which /metrics "
                "adds in; empty it before starting the gateway",
                given,
            )
        yield
        return
    if workers <= 1:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="scim-gateway-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        try:
            yield
        finally:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def _serve(args: argparse.Namespace, settings: Settings, config: str | None) -> int:
    import uvicorn

    from . import logging_setup

    log_level = args.log_level or settings.logging.level
    logging_setup.configure(log_level, settings.logging.format)

    # The workers read their settings from SCIM_GATEWAY_CONFIG: point it at this run's
    # file, or clear it so that a value left in the shell cannot swap in another config.
    if config:
        os.environ["SCIM_GATEWAY_CONFIG"] = str(Path(config).resolve())
    else:
        os.environ.pop("SCIM_GATEWAY_CONFIG", None)
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    workers = args.workers or settings.server.workers
    token = _prepare(settings, demo=args.demo)
    if token is not None:
        print(
            "Demo team 'demo' is ready (SSO with a generated demo certificate, SCIM on).\n"
            "Its new SCIM API key is shown only here:\n\n"
            f"  {token}\n\nTry it:\n\n"
            f"  curl -H 'Authorization: Bearer {token}' "
            f"http://{host}:{port}/scim/v2/Users\n",
            file=sys.stderr,
            flush=True,
        )
    with _metrics_directory(workers):
        uvicorn.run(
            "gateway.app:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            # Every worker logs through the same scrubbing handler (JSON or text).
            log_config=logging_setup.dict_config(log_level, settings.logging.format),
            access_log=False,
            server_header=False,
            # Forwarded headers are read by the gateway itself, from the peers listed in
            # server.trusted_proxies only (gateway/forwarded.py); uvicorn's own handling
            # would trust loopback by default and hide the peer's address.
            proxy_headers=False,
            forwarded_allow_ips=[],
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
        return run_command(args, settings)
    except ConfigError as exc:
        print(f"scim-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    except (DatabaseUnavailable, PluginError, MigrationError) as exc:
        print(f"scim-gateway: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
