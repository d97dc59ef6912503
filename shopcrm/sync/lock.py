"""One run per shop at a time, across processes, with locks a killed process cannot leave behind.

SQLite store: an OS file lock (`flock`) on `<db dir>/.shopcrm-<shop>.lock`; the kernel drops it
when the holder's process dies, SIGKILL included. PostgreSQL store: a session advisory lock on a
connection held for the run; the server drops it when that connection goes away.
Both are tried once, never waited for: a second run of the same shop is refused at once.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import text

from shopcrm.errors import LockHeld
from shopcrm.store.db import Store

LOCK_NAMESPACE = b"shopcrm-run:"


def _refused(shop: str) -> LockHeld:
    return LockHeld(
        f"shop {shop} is already being run by another shopcrm process; "
        "this run was refused (retry later)"
    )


def lock_path(store: Store, shop: str) -> Path:
    """The lock file of a shop: beside the SQLite database (temp dir for in-memory ones)."""
    database = store.engine.url.database
    folder = (
        Path(database).expanduser().resolve().parent
        if database and database != ":memory:"
        else Path(tempfile.gettempdir())
    )
    return folder / f".shopcrm-{shop}.lock"


def advisory_key(shop: str) -> int:
    """A stable signed 64-bit key for a shop's advisory lock (Python's hash() is salted)."""
    digest = hashlib.sha256(LOCK_NAMESPACE + shop.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def _file_lock(store: Store, shop: str) -> Iterator[None]:
    lock = FileLock(lock_path(store, shop), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise _refused(shop) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _advisory_lock(store: Store, shop: str) -> Iterator[None]:
    key = advisory_key(shop)
    with store.engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one():
            conn.rollback()
            raise _refused(shop)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


@contextmanager
def shop_lock(store: Store, shop: str) -> Iterator[None]:
    """Hold the run lock of `shop` for the block.

    Args:
        store: the open store; its database decides the kind of lock.
        shop: the shop's name from the config.

    Raises:
        LockHeld: another process (or scheduler job) holds the shop's lock.
    """
    locker = _advisory_lock if store.dialect == "postgresql" else _file_lock
    with locker(store, shop):
        yield
