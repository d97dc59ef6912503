"""`shopcrm db check` and `shopcrm db backup`: is the store sound, and a safe copy of it.

The check never changes the store: SQLite is opened read-only (`mode=ro`), and nothing is
upgraded. The backup uses SQLite's online backup API, which copies a consistent snapshot while
other connections go on writing; the copy is checked, written under a temporary name and only
then linked to its final name, which is never overwritten.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from shopcrm.errors import StoreDamaged, StoreError, UsageError
from shopcrm.store import models  # noqa: F401 - registers the tables in SQLModel.metadata
from shopcrm.store.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    current_revision,
    head_revision,
    make_engine,
    sqlite_error,
    translate_sqlite_errors,
)


@dataclass
class StoreCheck:
    """What `db check` found; `problems` is empty when the store is sound."""

    database: str
    dialect: str
    integrity: list[str] | None  # None: PostgreSQL checks its own pages
    revision: str | None
    head: str | None
    tables: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise UsageError("the store is in memory: there is nothing to check or back up")
    path = Path(parsed.database).expanduser()
    if not path.is_file():
        raise UsageError(f"no store at {path} (nothing to check or back up)")
    return path


def _readonly_engine(path: Path) -> Engine:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    engine = create_engine(
        f"sqlite:///{path}", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False)
    )
    translate_sqlite_errors(engine)
    return engine


def check_store(url: str) -> StoreCheck:
    """Integrity (SQLite), schema revision against head and row counts, changing nothing.

    Raises:
        StoreDamaged: the SQLite file is not a database at all.
        UsageError: there is no store file.
    """
    path = _sqlite_file(url)
    engine = _readonly_engine(path) if path else make_engine(url)
    report = StoreCheck(
        database=make_url(url).render_as_string(hide_password=True),
        dialect=engine.dialect.name,
        integrity=None,
        revision=None,
        head=head_revision(),
    )
    try:
        _inspect(engine, report)
    except StoreDamaged as exc:
        cause = exc.__cause__
        if getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            raise
        report.problems.append(str(exc))
    finally:
        engine.dispose()
    return report


def _inspect(engine: Engine, report: StoreCheck) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            report.integrity = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
            if report.integrity != ["ok"]:
                report.problems += [f"integrity: {line}" for line in report.integrity]
    report.revision = current_revision(engine)
    if report.revision != report.head:
        report.problems.append(
            f"schema at {report.revision or 'empty'}, this shopcrm's head is {report.head}: "
            "`shopcrm db upgrade` (or any command) brings an older one up to date"
        )
    present = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in present:
                count = conn.execute(select(func.count()).select_from(table)).scalar_one()
                report.tables[table.name] = int(count)
            else:
                report.problems.append(f"table {table.name} is missing")


@dataclass
class BackupResult:
    source: Path
    target: Path
    pages: int
    bytes: int


def backup_store(url: str, target: Path) -> BackupResult:
    """Copy a SQLite store to `target` with the online backup API, safe while a run writes.

    Raises:
        UsageError: a PostgreSQL store (use pg_dump), no store, or `target` already exists.
        StoreError: the copy failed its integrity check (nothing is left at `target`).
    """
    if make_url(url).get_backend_name() == "postgresql":
        raise UsageError(
            "a PostgreSQL store is backed up with the server's own tools: "
            "pg_dump --format=custom --file=PATH DBNAME (restore with pg_restore)"
        )
    source = _sqlite_file(url)
    assert source is not None
    if target.exists():
        raise UsageError(f"{target} already exists; not overwritten")
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pages = _copy(source, Path(temporary))
        try:
            os.link(temporary, target)  # unlike rename, never replaces a file made meanwhile
        except FileExistsError:
            raise UsageError(f"{target} already exists; not overwritten") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    return BackupResult(source, target, pages, target.stat().st_size)


def _copy(source: Path, temporary: Path) -> int:
    try:
        src = sqlite3.connect(source, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        dst = sqlite3.connect(temporary)
        try:
            src.backup(dst)  # one step: a consistent snapshot, however busy the source is
            verdict = [row[0] for row in dst.execute("PRAGMA integrity_check")]
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
            dst.commit()
        finally:
            dst.close()
            src.close()
    except sqlite3.Error as exc:
        raise (sqlite_error(exc, str(source)) or StoreError(f"backup failed: {exc}")) from exc
    if verdict != ["ok"]:
        raise StoreError(f"the copy of {source} failed its integrity check: {verdict[0]}")
    return pages
