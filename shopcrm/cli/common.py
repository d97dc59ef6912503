"""What every command module shares: the consoles, the error-to-exit-code group, the global
state (config path, log format) and the store and progress bar a command works with."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from shopcrm.config.load import load_config
from shopcrm.config.schema import AppConfig
from shopcrm.errors import ShopcrmError
from shopcrm.log import redact

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _Group(TyperGroup):
    """Turns every ShopcrmError into its message on stderr and its exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ShopcrmError as exc:
            message = redact(str(exc))
            if isinstance(ctx.obj, State) and ctx.obj.log_format is LogFormat.json:
                logging.getLogger("shopcrm").error(message)  # one JSON line, like every log
            else:
                err.print(f"error: {message}", markup=False)
            raise typer.Exit(exc.exit_code) from None


def command_group(help_text: str) -> typer.Typer:
    """A Typer app whose errors become messages and exit codes (`_Group`)."""
    return typer.Typer(
        cls=_Group,
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )


ShopOption = Annotated[
    str | None, typer.Option(help="Only this shop (default: every enabled shop).")
]


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only (for scripts).")]


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@dataclass
class State:
    config_path: Path
    log_format: LogFormat = LogFormat.text
    _config: AppConfig | None = field(default=None, repr=False)

    @property
    def config(self) -> AppConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def shops_config(self) -> AppConfig:
        """The config of a command that works on shops: refused when it has none."""
        return self.config.require_shops()


def state(ctx: typer.Context) -> State:
    return ctx.ensure_object(State) if ctx.obj is None else ctx.obj


@contextmanager
def open_configured_store(ctx: typer.Context) -> Iterator[Any]:
    """The configured store, its schema brought to head, closed when the command ends."""
    from shopcrm.store import db

    store = db.open_store(state(ctx).config.database)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def progress_bar() -> Iterator[Any]:
    """A live progress bar on a terminal; None otherwise (pull then logs plain lines)."""
    from shopcrm.sync import progress

    if not progress.on_terminal():
        yield None
        return
    with progress.BarProgress() as bar:
        yield bar
