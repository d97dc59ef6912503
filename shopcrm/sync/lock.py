"""One run per shop at a time, across processes, with locks a killed process cannot leave behind.

SQLite store: an OS file lock (`flock`) on `<db dir>/.shopcrm-<shop>.lock`; the kernel drops it
when the holder's process dies, SIGKILL included. PostgreSQL store: a session advisory lock on a
connection held for the run; the server drops it when that connection goes away (both made
by `store.locks`). Both are tried once, never waited for: a second run of the same shop is
refused at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout
from sqlalchemy.engine import make_url

from shopcrm.errors import LockHeld
from shopcrm.store.locks import advisory_key, lock_file, store_lock

if TYPE_CHECKING:
    from shopcrm.store.db import Store

LOCK_NAMESPACE = "shopcrm-run:"


def _refused(shop: str) -> LockHeld:
    return LockHeld(
        f"shop {shop} is already being run by another shopcrm process; "
        "this run was refused (retry later)"
    )


def lock_path(store: Store, shop: str) -> Path:
    """The lock file of a shop: beside the SQLite database (temp dir for in-memory ones)."""
    return lock_file(store.engine.url.database, _file_stem(shop))


def _file_stem(shop: str) -> str:
    return f"shopcrm-{shop}"


@contextmanager
def shop_lock(store: Store, shop: str) -> Iterator[None]:
    """Hold the run lock of `shop` for the block.

    Args:
        store: the open store; its database decides the kind of lock.
        shop: the shop's name from the config.

    Raises:
        LockHeld: another process (or scheduler job) holds the shop's lock.
    """
    with store_lock(
        store,
        file=_file_stem(shop),
        advisory=LOCK_NAMESPACE + shop,
        wait_s=0,
        what=f"the run of shop {shop}",
        refused=lambda: _refused(shop),
    ):
        yield


def shop_held(database_url: str, shop: str) -> bool:
    """Whether another process runs `shop` now; works from the URL alone, without opening the
    store, and leaves nothing behind (no lock file is created to find out)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = lock_file(url.database, _file_stem(shop))
        if not path.exists():
            return False
        lock = FileLock(path, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return True
        lock.release()
        return False
    import psycopg  # PostgreSQL stores only; SQLite runs need not load the driver

    key = advisory_key(LOCK_NAMESPACE + shop)
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
    if shops and all(shop_held(database_url, shop) for shop in shops):
        raise _refused(", ".join(shops))
