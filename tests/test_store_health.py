"""A damaged store, `db check` and `db backup` (#18.4)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from shopcrm.cli.main import app
from shopcrm.errors import EXIT_FAILED, EXIT_USAGE
from shopcrm.store.db import head_revision, open_store
from tests.conftest import Databases

pytestmark = pytest.mark.usefixtures("restore_root_logger")


def config_for(tmp_path: Path, url: str) -> Path:
    file = tmp_path / "shopcrm.yaml"
    file.write_text(
        f"database: '{url}'\n"
        "shops:\n  - {name: pos, platform: csv, path: pos.csv, currency: EUR}\n",
        encoding="utf-8",
    )
    return file


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), *args])


def healthy_store(path: Path, rows: int = 2000) -> Path:
    """A store at head with `rows` shops (enough pages that truncation hits data)."""
    open_store(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO shop (name, platform) VALUES (?, 'csv')",
            [(f"shop-{i:05d}-{'x' * 60}",) for i in range(rows)],
        )
    conn.close()  # the last connection: the WAL is checkpointed into the file and removed
    return path


def truncated(path: Path) -> Path:
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)
    return path


def garbage(path: Path) -> Path:
    path.write_bytes(b"this is a spreadsheet, not a database\n" * 200)
    return path


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        (truncated, "its database image is malformed"),
        (garbage, "it is not an SQLite database"),
    ],
)
@pytest.mark.parametrize("command", [["sync"], ["enrich"], ["db", "upgrade"]])
def test_a_damaged_store_is_named_with_what_to_do_and_exit_2(
    tmp_path: Path, damage, what: str, command: list[str]
) -> None:
    store = damage(healthy_store(tmp_path / "crm.db"))
    before = store.read_bytes()
    result = invoke(config_for(tmp_path, f"sqlite:///{store}"), *command)
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"the store {store} is damaged: {what}" in result.stderr
    assert "restore it from a backup" in result.stderr
    assert "shopcrm db check" in result.stderr
    assert "Traceback" not in result.output
    assert store.read_bytes() == before


def test_check_on_a_healthy_store(tmp_path: Path, databases: Databases) -> None:
    url = databases.ready()
    config = config_for(tmp_path, url)
    result = invoke(config, "db", "check", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["revision"] == report["head"] == head_revision()
    assert report["integrity"] == (["ok"] if databases.kind == "sqlite" else None)
    assert report["tables"]["shop"] == 0
    assert {"customer", "orders", "sync_run", "push_log"} <= set(report["tables"])
    text = invoke(config, "db", "check")
    assert text.exit_code == 0
    assert "store OK" in text.stdout


def test_check_counts_rows(tmp_path: Path) -> None:
    store = healthy_store(tmp_path / "crm.db", rows=7)
    result = invoke(config_for(tmp_path, f"sqlite:///{store}"), "db", "check", "--json")
    assert json.loads(result.stdout)["tables"]["shop"] == 7


def test_check_on_a_truncated_store_reports_problems_with_exit_1(tmp_path: Path) -> None:
    store = truncated(healthy_store(tmp_path / "crm.db"))
    result = invoke(config_for(tmp_path, f"sqlite:///{store}"), "db", "check", "--json")
    assert result.exit_code == EXIT_FAILED, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert any("malformed" in p for p in report["problems"])


def test_check_on_a_file_that_is_not_a_database_exits_2(tmp_path: Path) -> None:
    store = garbage(tmp_path / "crm.db")
    result = invoke(config_for(tmp_path, f"sqlite:///{store}"), "db", "check")
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"the store {store} is damaged: it is not an SQLite database" in result.stderr


def test_check_creates_no_store(tmp_path: Path) -> None:
    result = invoke(config_for(tmp_path, f"sqlite:///{tmp_path / 'none.db'}"), "db", "check")
    assert result.exit_code == EXIT_USAGE
    assert "no store at" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_backup_while_another_connection_writes(tmp_path: Path) -> None:
    store = healthy_store(tmp_path / "crm.db", rows=5000)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        conn = sqlite3.connect(store, timeout=30)
        i = 0
        while not stop.is_set():
            with conn:
                conn.execute("INSERT INTO shop (name, platform) VALUES (?, 'csv')", (f"w{i}",))
            i += 1
            written.append(i)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            stop.wait(0.01)
        result = invoke(config_for(tmp_path, f"sqlite:///{store}"), "db", "backup", "copy.db")
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    copy = Path("copy.db")
    try:
        with sqlite3.connect(copy) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            seeded = conn.execute("SELECT count(*) FROM shop WHERE name LIKE 'shop-%'").fetchone()
            copied_writes = conn.execute("SELECT count(*) FROM shop WHERE name LIKE 'w%'")
            assert seeded == (5000,)
            assert copied_writes.fetchone()[0] >= 20
    finally:
        copy.unlink()
    assert not list(Path().glob(".copy.db.*"))


def test_backup_refuses_an_existing_path(tmp_path: Path) -> None:
    store = healthy_store(tmp_path / "crm.db", rows=3)
    target = tmp_path / "old-backup.db"
    target.write_bytes(b"yesterday's backup")
    result = invoke(config_for(tmp_path, f"sqlite:///{store}"), "db", "backup", str(target))
    assert result.exit_code == EXIT_USAGE
    assert f"{target} already exists; not overwritten" in result.stderr
    assert target.read_bytes() == b"yesterday's backup"


def test_backup_of_a_postgresql_store_points_to_pg_dump(tmp_path: Path, pg_server: str) -> None:
    result = invoke(config_for(tmp_path, pg_server), "db", "backup", str(tmp_path / "x.db"))
    assert result.exit_code == EXIT_USAGE
    assert "pg_dump" in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_backup_restores(tmp_path: Path) -> None:
    store = healthy_store(tmp_path / "crm.db", rows=4)
    config = config_for(tmp_path, f"sqlite:///{store}")
    target = tmp_path / "backup.db"
    assert invoke(config, "db", "backup", str(target)).exit_code == 0
    garbage(store)
    shutil.copyfile(target, store)
    result = invoke(config, "db", "check", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tables"]["shop"] == 4
