"""One command per shop at a time, across processes, with locks a killed process cannot leave
behind.

Every command that reads from or writes to a shop holds the shop's lock while it does: `sync`
(`pull_shops`), `push` and `untag` (`push_shops`), and `run` and `schedule`'s runs (`run_shop`,
around pull -> enrich -> push). The lock is taken by those entry points only, never by
`pull_shop` / `push_shop` themselves, so a run calls them under the lock it already holds.

SQLite store: an OS file lock (`flock`) on `<db dir>/.shopcrm-<shop>.lock`; the kernel drops it
when the holder's process dies, SIGKILL included. PostgreSQL store: a session advisory lock on
a connection held for the command; the server drops it when that connection goes away (both
made by `store.locks`, which also records and reads back who holds them). Both are tried once,
never waited for: a second command on the same shop is refused at once, naming the holder.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from shopcrm.errors import LockHeld, RateLimited
from shopcrm.store.locks import held_by, lock_file, store_lock

if TYPE_CHECKING:
    from shopcrm.store.db import Store

LOCK_NAMESPACE = "shopcrm-run:"


def _refused(shop: str, holder: str) -> LockHeld:
    return LockHeld(
        f"shop {shop} is already being run by another shopcrm process ({holder}); "
        "this command was refused for that shop (retry when it has finished)"
    )


def lock_path(store: Store, shop: str) -> Path:
    """The lock file of a shop: beside the SQLite database (temp dir for in-memory ones)."""
    return lock_file(store.engine.url.database, _file_stem(shop))


def _file_stem(shop: str) -> str:
    return f"shopcrm-{shop}"


@contextmanager
def shop_lock(store: Store, shop: str) -> Iterator[None]:
    """Hold the lock of `shop` for the block.

    Args:
        store: the open store; its database decides the kind of lock.
        shop: the shop's name from the config.

    Raises:
        LockHeld: another process (or scheduler job) holds the shop's lock; the message
            names it (pid, host, command line, since when).
    """
    with store_lock(
        store,
        file=_file_stem(shop),
        advisory=LOCK_NAMESPACE + shop,
        wait_s=0,
        what=f"the work on shop {shop}",
        refused=lambda holder: _refused(shop, holder),
    ):
        yield


def shop_held(database_url: str, shop: str) -> bool:
    """Whether another process runs `shop` now; works from the URL alone, without opening the
    store (for `shopcrm status`)."""
    return held_by(database_url, file=_file_stem(shop), advisory=LOCK_NAMESPACE + shop) is not None


def refuse_if_all_running(database_url: str, shops: Sequence[str]) -> None:
    """Refuse at once, before the command's modules are loaded, when every shop asked for is
    held by another process.

    A fast path for cron's overlapping runs (exit 75 in well under a second); `shop_lock`
    still decides for real, shop by shop, so a lock freed in between is simply taken.

    Raises:
        LockHeld: every shop in `shops` is held by another process.
    """
    holders = {}
    for shop in shops:
        holder = held_by(database_url, file=_file_stem(shop), advisory=LOCK_NAMESPACE + shop)
        if holder is None:
            return
        holders[shop] = holder
    if holders:
        raise LockHeld("; ".join(str(_refused(shop, h)) for shop, h in holders.items()))


def raise_if_busy(locked: Sequence[str], throttled: Sequence[str]) -> None:
    """End a command whose only problems were busy shops with exit 75, naming them all.

    Args:
        locked: the refusals of shops another process held.
        throttled: the errors of shops the platform kept throttled past the wait.

    Raises:
        LockHeld: shops were locked, none throttled.
        RateLimited: a shop stayed throttled (the locked ones are named too).
    """
    if throttled:
        raise RateLimited("; ".join([*throttled, *locked]))
    if locked:
        raise LockHeld("; ".join(locked))
