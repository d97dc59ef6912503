"""The `shopcrm` command line: thin commands over the library, errors mapped to exit codes here.

Exit codes: 0 success, 1 a run failed, 2 usage or config error, 75 temporarily unable
(lock held, platform unavailable). See `shopcrm.errors` for the tree behind them. Each command
group is a module of this package (`config`, `db`, `sync`, `enrich`, `sandbox`, `privacy`);
`common` is what they share.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from shopcrm.cli import config, customer, db, enrich, export, privacy, sandbox, status, sync
from shopcrm.cli.common import LogFormat, LogLevel, State, command_group
from shopcrm.config.schema import DEFAULT_CONFIG_PATH
from shopcrm.errors import EXIT_USAGE
from shopcrm.log import setup_logging

app = command_group(
    "Sync customers and orders from your shops, enrich them, push segments back as tags."
)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            envvar="SHOPCRM_CONFIG",
            help="Config file (YAML).",
            show_default=True,
        ),
    ] = DEFAULT_CONFIG_PATH,
    log_level: Annotated[LogLevel, typer.Option(help="Least severe log level shown.")] = (
        LogLevel.info
    ),
    log_format: Annotated[
        LogFormat, typer.Option(help="text for people, json (one object a line) for machines.")
    ] = LogFormat.text,
) -> None:
    """Global options; logs go to stderr."""
    setup_logging(log_level.value, log_format.value)
    ctx.obj = State(config_path=config, log_format=log_format)


for group in (config, db, sync, sandbox, enrich, status, customer, export, privacy):
    group.register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except typer.Abort:  # pragma: no cover - Ctrl-C at a prompt
        sys.exit(EXIT_USAGE)
