"""`shopcrm init` and `shopcrm config check`: write a starter config, validate one."""

from __future__ import annotations

import typer
import yaml

from shopcrm.cli.common import command_group, out, state
from shopcrm.config.load import read_yaml
from shopcrm.config.schema import EXAMPLE_PATH
from shopcrm.errors import UsageError

config_app = command_group("Validate and show the configuration.")


def init(ctx: typer.Context) -> None:
    """Write a commented starter config to the --config path (never overwrites)."""
    target = state(ctx).config_path
    text = EXAMPLE_PATH.read_text(encoding="utf-8")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with target.open("x", encoding="utf-8") as file:  # "x": never overwrite, even racing
            file.write(text)
    except FileExistsError:
        raise UsageError(f"{target} already exists; not overwritten") from None
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    out.print(f"wrote {target}: edit it, then run `shopcrm config check`")


@config_app.command("check")
def config_check(ctx: typer.Context) -> None:
    """Validate the config and print it resolved, with secrets masked; an empty file is an
    error (a file that sets only the database is valid: it serves `db` commands)."""
    cfg = state(ctx).config
    if not cfg.shops and not read_yaml(state(ctx).config_path):
        cfg.require_shops()
    out.print(yaml.safe_dump(cfg.masked(), sort_keys=False).rstrip(), markup=False)
    out.print(f"config OK: {len(cfg.shops)} shop(s)", markup=False)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.add_typer(config_app, name="config")
