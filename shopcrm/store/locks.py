"""Named locks on a store, across processes, that a killed process cannot leave behind, and
that say who holds them.

SQLite store: an OS file lock (`flock`) on `<db dir>/.<name>.lock` (the temp dir for an
in-memory database); the kernel drops it when the holder's process dies, SIGKILL included.
The holder writes who it is (`Holder`: pid, host, command line, since when) into that file
while it holds the lock, and empties it on release; a refused process reads it back. The file
itself is never deleted: a process locking a new file while another holds the old one would
break the lock.

PostgreSQL store: a session advisory lock, keyed by a digest of the name, on a connection held
for the block; the server drops it when that connection goes away. The lock is taken by a
statement that carries the holder as a comment (`/* shopcrm lock holder {...} */`); as that
connection runs nothing else while it holds the lock, the statement stays its
`pg_stat_activity.query`, which a refused process finds through `pg_locks`. No table, nothing
to clean up; a role that may not see other sessions' queries gets "holder unknown".
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from shopcrm.errors import LockHeld

if TYPE_CHECKING:
    from shopcrm.store.db import Store

log = logging.getLogger(__name__)

POLL_S = 0.2  # how often a waited-for lock is tried again
COMMAND_CHARS = 300  # the holder's command line is cut to this (pg_stat_activity keeps 1 KiB)
_MARK = "shopcrm lock holder"
_IN_QUERY = re.compile(r"/\* " + _MARK + r" (\{.*?\}) \*/")
_HOLDER_QUERY = text(
    "SELECT a.query FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid = CAST(CAST(:high AS bigint) AS oid) "
    "AND l.objid = CAST(CAST(:low AS bigint) AS oid)"
)


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a lock: enough for a person to find the process and judge it."""

    pid: int
    host: str
    command: str
    since: datetime  # aware UTC

    @classmethod
    def this_process(cls) -> Holder:
        args = [Path(sys.argv[0]).name or "python", *sys.argv[1:]] if sys.argv else ["python"]
        if args[0] == "-c":  # `python -c ...`: the code is argv[0]'s stand-in
            args[0] = "python -c"
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            command=" ".join(args)[:COMMAND_CHARS],
            since=datetime.now(UTC).replace(microsecond=0),
        )

    def to_json(self) -> str:
        """One line of ASCII JSON without `*` (so it never opens or closes an SQL comment) and
        without `%` (a DB-API placeholder)."""
        data = {**asdict(self), "since": self.since.isoformat()}
        text = json.dumps(data, sort_keys=True)
        return text.replace("%", "\\u0025").replace("*", "\\u002a")

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        """The holder written by `to_json`; None for an empty or half-written one."""
        try:
            data = json.loads(text)
            since = datetime.fromisoformat(data["since"]).astimezone(UTC)
            return cls(int(data["pid"]), str(data["host"]), str(data["command"]), since)
        except (ValueError, KeyError, TypeError):
            return None

    def __str__(self) -> str:
        since = self.since.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"pid {self.pid} on host {self.host}, `{self.command}`, since {since}"


def describe(holder: Holder | None) -> str:
    """The holder for a message; a lock taken an instant ago may not have written it yet."""
    return str(holder) if holder else "holder unknown: it has only just started, or is hidden"


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


class _Lock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits."""
        ...

    def holder(self) -> Holder | None:
        """Who holds the lock now, as far as can be told."""
        ...

    def release(self) -> None: ...


class _FileLock:
    """`flock` on a file that holds its holder. A lock per open file, so two in one process
    (threads, or a nested take) exclude each other like two processes do."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, Holder.this_process().to_json().encode() + b"\n", 0)
        self._fd = fd
        return True

    def holder(self) -> Holder | None:
        try:
            return Holder.from_json(self.path.read_text(encoding="ascii", errors="replace"))
        except OSError:
            return None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # while still locked: nobody reads a holder that has left
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class _AdvisoryLock:
    """A session advisory lock on `conn` (in autocommit), its holder in the taking statement."""

    def __init__(self, conn: Connection, key: int) -> None:
        self.conn = conn
        self.key = key

    def try_acquire(self) -> bool:
        # the key is an int and the holder escaped JSON (`Holder.to_json`): nothing to inject
        statement = (
            f"SELECT pg_try_advisory_lock({self.key}) "
            f"/* {_MARK} {Holder.this_process().to_json()} */"
        )
        return bool(self.conn.exec_driver_sql(statement).scalar_one())

    def holder(self) -> Holder | None:
        # a bigint key shows in pg_locks as its high half (classid) and low half (objid)
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF
        row = self.conn.execute(
            _HOLDER_QUERY, {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF}
        ).first()
        found = _IN_QUERY.search(row[0] or "") if row else None
        return Holder.from_json(found.group(1)) if found else None

    def release(self) -> None:
        self.conn.exec_driver_sql(f"SELECT pg_advisory_unlock({self.key})")


@contextmanager
def _lock_on(engine: Engine, *, file: str, advisory: str) -> Iterator[_Lock]:
    """The lock of that name on the engine's database (an autocommit connection for
    PostgreSQL, so the taking statement stays the session's last query)."""
    if engine.dialect.name != "postgresql":
        yield _FileLock(lock_file(engine.url.database, file))
        return
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        yield _AdvisoryLock(conn, advisory_key(advisory))


def _waiting(what: str, wait_s: float, holder: Holder | None) -> None:
    log.info("waiting up to %g s for %s to finish (%s)", wait_s, what, describe(holder))


@contextmanager
def store_lock(
    store: Store,
    *,
    file: str,
    advisory: str,
    wait_s: float,
    what: str,
    refused: Callable[[str], LockHeld],
) -> Iterator[None]:
    """Hold a named lock on the store for the block.

    Args:
        store: the open store; its database decides the kind of lock.
        file: the lock file's name stem (SQLite stores).
        advisory: the label the advisory key is derived from (PostgreSQL stores).
        wait_s: how long to wait for a holder to finish; 0 tries once.
        what: the work that holds the lock, for the log line a wait starts with.
        refused: builds the error raised when the lock is still held after `wait_s`, from
            the holder's description (`describe`).

    Raises:
        LockHeld: from `refused`, when another process (or thread) still holds the lock.
    """
    with _lock_on(store.engine, file=file, advisory=advisory) as lock:
        deadline = time.monotonic() + wait_s
        tries = 0
        while not lock.try_acquire():
            if time.monotonic() >= deadline:
                raise refused(describe(lock.holder()))
            if not tries:
                _waiting(what, wait_s, lock.holder())
            tries += 1
            time.sleep(POLL_S)
        try:
            yield
        finally:
            lock.release()


def held_by(database_url: str, *, file: str, advisory: str) -> str | None:
    """Who holds the named lock of a database, without opening the store; None when free.

    For refusing at once before a command loads its heavy modules: the lock is tried and, if
    taken, released straight away.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql" and not lock_file(url.database, file).parent.is_dir():
        return None  # no database folder yet: nothing can hold a lock there
    engine = create_engine(url, poolclass=NullPool)
    try:
        with _lock_on(engine, file=file, advisory=advisory) as lock:
            if lock.try_acquire():
                lock.release()
                return None
            return describe(lock.holder())
    finally:
        engine.dispose()
