"""`python main.py daemon`: the supervisor and its three children (crawler, embedding worker, API)."""

from __future__ import annotations

import argparse
import asyncio

from core.cli import UsageError
from core.cli.serve import add_address_arguments
from core.config import config_from_args
from core.logs import configure_logging
from core.supervision.settings import load_settings
from core.supervisor import Supervisor, child_specs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_address_arguments(parser)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    settings = load_settings(config)
    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError("--port must be between 1 and 65535")
    configure_logging(component="supervisor")
    host = args.host or config.api_host
    port = args.port if args.port is not None else config.api_port
    # Children resolve the config exactly as we did: same flags, same environment, same directory.
    passed: list[str] = []
    for flag, value in (("--data-dir", getattr(args, "data_dir", None)), ("--config", getattr(args, "config", None))):
        if value:
            passed += [flag, value]
    if args.insecure:
        passed.append("--insecure")
    supervisor = Supervisor(config, settings, child_specs(passed, host=host, port=port))
    return asyncio.run(supervisor.run())
