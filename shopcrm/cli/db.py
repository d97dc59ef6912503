"""`shopcrm db ...`: the local store's schema, its health and its backups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shopcrm.cli.common import command_group, open_configured_store, out, state

db_app = command_group("Manage the local store: schema, check, backup.")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Create the store or bring its schema to the newest version."""
    from shopcrm.store import db

    with open_configured_store(ctx) as store:
        out.print(f"store schema at {db.current_revision(store.engine)} (head)")


@db_app.command("check")
def db_check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only (for scripts).")] = False,
) -> None:
    """Check the store without changing it: SQLite integrity, schema revision, rows per table;
    exit 1 if it finds problems, 2 if the file is not a database."""
    import json

    from shopcrm.errors import EXIT_FAILED
    from shopcrm.store.health import check_store

    report = check_store(state(ctx).config.database)
    if as_json:
        out.print(json.dumps(report.to_dict()), markup=False)
    else:
        integrity = (
            "not checked (PostgreSQL)"
            if report.integrity is None
            else ("ok" if report.integrity == ["ok"] else f"{len(report.integrity)} problem(s)")
        )
        out.print(
            f"store {report.database} ({report.dialect})\n"
            f"integrity: {integrity}\n"
            f"schema: {report.revision or 'empty'} (head {report.head})",
            markup=False,
        )
        for table, count in report.tables.items():
            out.print(f"  {table}: {count} rows", markup=False)
        for problem in report.problems:
            out.print(f"PROBLEM: {problem}", markup=False)
        out.print("store OK" if report.ok else f"{len(report.problems)} problem(s)", markup=False)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@db_app.command("backup")
def db_backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The copy to write (never overwritten).")],
) -> None:
    """Copy a SQLite store to PATH while it may be in use (SQLite's online backup API)."""
    from shopcrm.store.health import backup_store

    done = backup_store(state(ctx).config.database, path)
    out.print(
        f"backed up {done.source} to {done.target}: {done.pages} pages, {done.bytes} bytes, "
        "integrity ok",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
