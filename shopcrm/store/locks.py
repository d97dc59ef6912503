"""Named locks on a store, across processes, that a killed process cannot leave behind.

SQLite store: an OS file lock (`flock`) on `<db dir>/.<name>.lock` (the temp dir for an
in-memory database); the kernel drops it when the holder's process dies, SIGKILL included.
PostgreSQL store: a session advisory lock, keyed by a digest of the name, on a connection held
for the block; the server drops it when that connection goes away.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout
from sqlalchemy import text

from shopcrm.errors import LockHeld

if TYPE_CHECKING:
    from shopcrm.store.db import Store

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often a waiting PostgreSQL lock is tried again (filelock polls alike)


def lock_file(database: str | None, name: str) -> Path:
    """The lock file of `name`: beside the SQLite database (temp dir for in-memory ones)."""
    folder = (
        Path(database).expanduser().resolve().parent
        if database and database != ":memory:"
        else Path(tempfile.gettempdir())
    )
    return folder / f".{name}.lock"


def advisory_key(label: str) -> int:
    """A stable signed 64-bit key for an advisory lock (Python's hash() is salted)."""
    digest = hashlib.sha256(label.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _waiting(what: str, wait_s: float) -> None:
    log.info("waiting up to %g s for %s to finish", wait_s, what)


@contextmanager
def _file_lock(
    path: Path, wait_s: float, what: str, refused: Callable[[], LockHeld]
) -> Iterator[None]:
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        if wait_s <= 0:
            raise refused() from None
        _waiting(what, wait_s)
        try:
            lock.acquire(timeout=wait_s)
        except Timeout:
            raise refused() from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _advisory_lock(
    store: Store, key: int, wait_s: float, what: str, refused: Callable[[], LockHeld]
) -> Iterator[None]:
    deadline = time.monotonic() + wait_s
    with store.engine.connect() as conn:
        tries = 0
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one():
            conn.rollback()
            if time.monotonic() >= deadline:
                raise refused()
            if not tries:
                _waiting(what, wait_s)
            tries += 1
            time.sleep(POLL_S)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


@contextmanager
def store_lock(
    store: Store,
    *,
    file: str,
    advisory: str,
    wait_s: float,
    what: str,
    refused: Callable[[], LockHeld],
) -> Iterator[None]:
    """Hold a named lock on the store for the block.

    Args:
        store: the open store; its database decides the kind of lock.
        file: the lock file's name stem (SQLite stores).
        advisory: the label the advisory key is derived from (PostgreSQL stores).
        wait_s: how long to wait for a holder to finish; 0 tries once.
        what: the work that holds the lock, for the log line a wait starts with.
        refused: the error raised when the lock is still held after `wait_s`.

    Raises:
        LockHeld: from `refused`, when another process (or thread) still holds the lock.
    """
    if store.dialect == "postgresql":
        with _advisory_lock(store, advisory_key(advisory), wait_s, what, refused):
            yield
    else:
        with _file_lock(lock_file(store.engine.url.database, file), wait_s, what, refused):
            yield
