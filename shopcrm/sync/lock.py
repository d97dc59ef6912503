"""One run per shop at a time, across processes, with locks a killed process cannot leave behind.

SQLite store: an OS file lock (`flock`) on `<db dir>/.shopcrm-<shop>.lock`; the kernel drops it
when the holder's process dies, SIGKILL included. PostgreSQL store: a session advisory lock on a
connection held for the run; the server drops it when that connection goes away.
Both are tried once, never waited for: a second run of the same shop is refused at once.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shopcrm.errors import LockHeld

if TYPE_CHECKING:
    from shopcrm.store.db import Store

LOCK_NAMESPACE = b"shopcrm-run:"


def _refused(shop: str) -> LockHeld:
    return LockHeld(
        f"shop {shop} is already being run by another shopcrm process; "
        "this run was refused (retry later)"
    )


def lock_path(store: Store, shop: str) -> Path:
    """The lock file of a shop: beside the SQLite database (temp dir for in-memory ones)."""
    return _lock_file(store.engine.url.database, shop)


def _lock_file(database: str | None, shop: str) -> Path:
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


def _held_by_another(database_url: str, shop: str) -> bool:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        lock = FileLock(_lock_file(url.database, shop), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return True
        lock.release()
        return False
    import psycopg  # PostgreSQL stores only; SQLite runs need not load the driver

    key = advisory_key(shop)
    with psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=url.database,
        autocommit=True,
    ) as conn:
        free = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if free and free[0]:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            return False
        return True


def refuse_if_all_running(database_url: str, shops: Sequence[str]) -> None:
    """Refuse at once, before the pipeline is loaded, when every shop asked for is running.

    A fast path for cron's overlapping runs (exit 75 in well under a second); `shop_lock`
    still decides for real, shop by shop, so a lock freed in between is simply taken.

    Raises:
        LockHeld: every shop in `shops` is held by another process.
    """
    if shops and all(_held_by_another(database_url, shop) for shop in shops):
        raise _refused(", ".join(shops))
