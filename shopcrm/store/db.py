"""Engine, sessions and schema upgrades for the store (SQLite by default, PostgreSQL by URL).

Alembic migrations are the only way the schema is made or changed. `open_store` brings the
schema to head before anything reads it, so every command that needs the store can just open it.

SQLite's "database is locked" and damaged-file errors are translated here, once, for every
connection of an engine (`sqlite_error`): a locked store becomes `StoreLocked` (exit 75), a
file that is not SQLite or is corrupt becomes `StoreDamaged` (exit 2). A SQLite URL may set how
long to wait for another process's lock: `sqlite:///shopcrm.db?timeout=5` (seconds, default 30).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlmodel import Session

from shopcrm.errors import ConfigError, SchemaOutOfDate, StoreDamaged, StoreError, StoreLocked

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 65_536
_DAMAGE = {
    sqlite3.SQLITE_NOTADB: "it is not an SQLite database",
    sqlite3.SQLITE_CORRUPT: "its database image is malformed (truncated or corrupted)",
}


def sqlite_error(exc: BaseException, database: str | None) -> StoreError | None:
    """The store error a sqlite3 error stands for (locked, damaged), or None for any other.

    Args:
        exc: an exception from the sqlite3 driver.
        database: the store's file, named in the message.
    """
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    where = database or "(in memory)"
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "is locked" in str(exc):
        return StoreLocked(
            f"the store {where} is locked by another process; retry later (nothing was written)"
        )
    if primary in _DAMAGE:
        return StoreDamaged(
            f"the store {where} is damaged: {_DAMAGE[primary]}; restore it from a backup "
            '(see `shopcrm db check` and docs/running.md, "The store: check, back up, restore")'
        )
    return None


def _translate_sqlite(context: ExceptionContext) -> None:
    translated = sqlite_error(context.original_exception, context.engine.url.database)
    if translated is not None:
        raise translated from context.original_exception


def translate_sqlite_errors(engine: Engine) -> None:
    """Raise StoreLocked / StoreDamaged instead of SQLite's own errors on every connection."""
    event.listen(engine, "handle_error", _translate_sqlite)


def _busy_timeout(raw: Any) -> float:
    value = raw[-1] if isinstance(raw, tuple) else raw
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 <= seconds <= 86_400:
        raise ConfigError(
            f"timeout={value!r} is not a number of seconds between 0 and 86400", path="database"
        )
    return seconds


def _sqlite_pragmas(busy_timeout_s: float, dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout_s * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 64 MiB of page cache instead of 2: the enrichment rewrites hundreds of thousands of rows
    # and their indexes in one transaction; with a small cache every index page is reread.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for a database URL, with SQLite's pragmas set and its errors translated on
    every connection."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {exc}", path="database") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        timeout = _busy_timeout(parsed.query.get("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000))
        engine = create_engine(parsed, connect_args={"timeout": timeout})
        event.listen(engine, "connect", partial(_sqlite_pragmas, timeout))
        translate_sqlite_errors(engine)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(
            f"unsupported database {parsed.get_backend_name()!r} (use sqlite:/// or "
            "postgresql+psycopg://)",
            path="database",
        )
    return create_engine(parsed, pool_pre_ping=True)


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def _known_revision(revision: str) -> bool:
    """Whether `revision` is one of our migrations (not one of a newer shopcrm)."""
    try:
        return ScriptDirectory(str(MIGRATIONS)).get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision`."""
    try:
        command.upgrade(alembic_config(engine), revision)
    except (SQLAlchemyError, CommandError) as exc:
        raise StoreError(f"schema upgrade failed: {exc.__class__.__name__}: {exc}") from exc


def downgrade(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine), revision)


class Store:
    """The open store: an engine and a session factory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, auto_upgrade: bool = True) -> Store:
    """Open the store at `url`, upgrading its schema to head (or refusing if told not to)."""
    engine = make_engine(url)
    try:
        current = current_revision(engine)
    except OperationalError as exc:
        raise StoreError(f"cannot open the store at {make_url(url)!r}: {exc.orig}") from exc
    head = head_revision()
    if current is not None and not _known_revision(current):
        engine.dispose()
        raise StoreError(
            f"the store's schema {current} is newer than this shopcrm knows (up to {head}): "
            "upgrade shopcrm, or point `database` at another store"
        )
    if current != head:
        if not auto_upgrade:
            raise SchemaOutOfDate(
                f"the store is at schema {current or 'empty'}, the code needs {head}: "
                "run `shopcrm db upgrade`"
            )
        log.info("upgrading store schema from %s to %s", current or "empty", head)
        upgrade(engine)
    return Store(engine)
