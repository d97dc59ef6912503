"""`shopcrm db ...`: the local store's schema."""

from __future__ import annotations

import typer

from shopcrm.cli.common import command_group, open_configured_store, out

db_app = command_group("Manage the local store's schema.")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create the store or bring its schema to the newest version."""
    from shopcrm.store import db

    with open_configured_store(ctx) as store:
        out.print(f"store schema at {db.current_revision(store.engine)} (head)")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
