"""A store held locked by another process: exit 75, a clear message, nothing written (#18.3)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from shopcrm.cli.main import app
from shopcrm.errors import EXIT_TEMPFAIL
from tests.csv_fixtures import HEADER, write_export

pytestmark = pytest.mark.usefixtures("restore_root_logger")


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A CSV shop and a SQLite store that waits only 0.2 s for another process's lock."""
    write_export(
        tmp_path / "pos.csv",
        f"{HEADER}\nR1,C1,ann@example.com,2026-01-05T10:00:00Z,20.00,EUR,Ann,Lee,SKU1,1,20.00\n",
    )
    file = tmp_path / "shopcrm.yaml"
    file.write_text(
        "database: sqlite:///crm.db?timeout=0.2\n"
        "shops:\n"
        "  - {name: pos, platform: csv, path: pos.csv, currency: EUR}\n",
        encoding="utf-8",
    )
    return file


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), *args])


def dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


@pytest.mark.parametrize("command", [["sync"], ["enrich"], ["sync", "--full"]])
def test_a_locked_store_ends_the_command_with_75_and_writes_nothing(
    config_file: Path, command: list[str]
) -> None:
    assert invoke(config_file, "sync").exit_code == 0
    (config_file.parent / "pos.csv").touch()  # a newer export: the next sync has work to do
    database = config_file.parent / "crm.db"
    before = dump(database)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = invoke(config_file, *command)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == EXIT_TEMPFAIL, result.output
    assert f"the store {database} is locked by another process; retry later" in result.stderr
    assert "Traceback" not in result.output
    assert "OperationalError" not in result.output
    assert dump(database) == before
