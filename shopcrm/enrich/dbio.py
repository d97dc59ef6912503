"""Raw SQL reads and writes for bulk enrichment: the one place that knows each dialect's bytes.

The ORM types (`Money`, `UTCDateTime`) convert one value at a time, which is too slow for a
million orders. Here amounts are read as integer micro-units and times as integer epoch
microseconds straight from SQL, and written back in each dialect's storage form:
- SQLite: money is the stored integer micro-units; times are the text SQLAlchemy writes
  (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC); dates are ISO text.
- PostgreSQL: money is NUMERIC (written as Decimal); times are timestamptz; dates are dates.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine

from shopcrm.errors import StoreError
from shopcrm.store.types import from_micros

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


# A bound array of ids (`Dialect.each_int`) pays up to one row in this many of a table; past
# that, reading or writing the whole table (id ranges, one set-wide statement) costs less.
FEW_ROWS = 4


def few(chosen: int, rows: int) -> bool:
    """Whether `chosen` of a table's `rows` are few enough to visit through their ids."""
    return chosen * FEW_ROWS <= rows


class Dialect:
    """SQL fragments and value encoders of one database dialect."""

    def __init__(self, name: str) -> None:
        if name not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported dialect {name!r}")
        self.name = name
        self.sqlite = name == "sqlite"

    def param(self) -> str:
        """The DB-API placeholder of the driver."""
        return "?" if self.sqlite else "%s"

    def params(self, count: int) -> str:
        return ", ".join([self.param()] * count)

    def micros(self, column: str) -> str:
        """An expression giving a Money column as integer micro-units."""
        if self.sqlite:
            return column
        return f"CAST(ROUND({column} * 1000000) AS BIGINT)"

    def caseless(self, expr: str) -> str:
        """`expr` for comparing with lower-case ASCII constants, ignoring case."""
        return f"{expr} COLLATE NOCASE" if self.sqlite else f"lower({expr})"

    def contains(self, expr: str, char: str) -> str:
        """True when text `expr` contains the literal character `char`."""
        return f"instr({expr}, '{char}') > 0" if self.sqlite else f"strpos({expr}, '{char}') > 0"

    def concat(self, a: str, b: str) -> str:
        return f"({a} || {b})"

    def distinct(self, a: str, b: str) -> str:
        """NULL-safe inequality."""
        return f"({a} IS NOT {b})" if self.sqlite else f"({a} IS DISTINCT FROM {b})"

    def money(
        self, micros: NDArray[np.int64], present: NDArray[np.bool_] | None = None
    ) -> list[Any]:
        """Money values to bind, from micro-units (None where not `present`)."""
        if self.sqlite:
            return present_or_none(micros, present)
        values = [from_micros(m) for m in micros.tolist()]
        return values if present is None else _none_where_absent(values, present)

    def times(
        self, micros: NDArray[np.int64], present: NDArray[np.bool_] | None = None
    ) -> list[Any]:
        """Timestamps to bind, from epoch microseconds (None where not `present`)."""
        if self.sqlite:
            text = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")
            if len(text):  # 'YYYY-MM-DDTHH:MM:SS.ffffff' -> the ' ' SQLAlchemy stores
                text.view(np.uint32).reshape(len(text), -1)[:, 10] = ord(" ")
            return present_or_none(text, present)
        values = [_EPOCH + timedelta(microseconds=m) for m in micros.tolist()]
        return values if present is None else _none_where_absent(values, present)

    def time(self, value: datetime) -> Any:
        utc = value.astimezone(UTC)
        return (
            utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
            if self.sqlite
            else utc
        )

    def day(self, value: date) -> Any:
        return value.isoformat() if self.sqlite else value

    def each_int(self) -> str:
        """A FROM item giving every integer of one bound array (`array`) as column `value`.

        A million values bound one row at a time cost a Python call each; one array is
        expanded by the database itself (SQLite's `json_each`, PostgreSQL's `unnest`).
        """
        return "json_each(?)" if self.sqlite else "unnest(CAST(%s AS BIGINT[])) AS a(value)"

    def text_at(self, index: str) -> str:
        """Element `index` (an integer expression, from 0) of a bound array of texts."""
        if self.sqlite:
            return f"json_extract(?, '$[' || ({index}) || ']')"
        return f"(CAST(%s AS TEXT[]))[({index}) + 1]"

    def array(self, values: Sequence[Any]) -> Any:
        """A list bound for `each_int` or `text_at`."""
        return json.dumps(list(values)) if self.sqlite else list(values)


def present_or_none(values: NDArray[Any], present: NDArray[np.bool_] | None = None) -> list[Any]:
    """Python values to bind (None where not `present`), converted in bulk by numpy."""
    if present is None:
        return values.tolist()
    return np.where(present, values.astype(object), None).tolist()


def _none_where_absent(values: list[Any], present: NDArray[np.bool_]) -> list[Any]:
    return [v if ok else None for v, ok in zip(values, present.tolist(), strict=True)]


def dialect_of(conn: Connection) -> Dialect:
    return Dialect(conn.dialect.name)


def fetch(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """All rows of a raw query as tuples, through the DB-API cursor (no Row objects)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, tuple(params))
        return cursor.fetchall()
    finally:
        cursor.close()


_SEPARATOR = "\x1f"  # ASCII unit separator: never part of an email, title or currency code


def fetch_columns(
    conn: Connection, exprs: Sequence[tuple[str, str]], source: str, params: Sequence[Any] = ()
) -> list[Any]:
    """Columns of `SELECT exprs FROM source` as int64 arrays ("int"), lists of str ("text"), or
    a `UTCDateTime` column as int64 epoch microseconds ("time").

    Expressions must never be NULL (COALESCE them). On SQLite each column is aggregated into
    one text value by `group_concat` and parsed by numpy: sqlite3 builds a Python object per
    value (about a microsecond each), which would dominate a million-row read. One scan feeds
    every aggregate in the same row order, so the columns stay aligned.
    """
    d = dialect_of(conn)
    if d.sqlite:
        parts = [
            f"group_concat({e}, char(31))" if kind == "text" else f"group_concat({e})"
            for e, kind in exprs
        ]
        row = fetch(conn, f"SELECT {', '.join(parts)} FROM {source}", params)[0]  # noqa: S608
        parsed = [_parse(value, kind) for value, (_, kind) in zip(row, exprs, strict=True)]
        if len({len(col) for col in parsed}) > 1:
            raise StoreError(f"unreadable values (NULL or malformed) in {source.split()[0]}")
        return parsed
    selected = [
        f"CAST(ROUND(EXTRACT(EPOCH FROM {e}) * 1000000) AS BIGINT)" if kind == "time" else e
        for e, kind in exprs
    ]
    rows = fetch(conn, f"SELECT {', '.join(selected)} FROM {source}", params)  # noqa: S608
    return [
        list(col) if kind == "text" else np.array(col, dtype=np.int64)
        for col, (_, kind) in zip(columns(rows, len(exprs)), exprs, strict=True)
    ]


def _parse(value: str | None, kind: str) -> Any:
    if kind == "text":
        return value.split(_SEPARATOR) if value is not None else []
    if not value:
        return np.zeros(0, dtype=np.int64)
    if kind == "time":  # the text SQLAlchemy stores: 'YYYY-MM-DD HH:MM:SS.ffffff', UTC
        return np.array(value.split(","), dtype="datetime64[us]").astype(np.int64)
    return np.fromstring(value, dtype=np.int64, sep=",")


@dataclass(frozen=True, slots=True)
class ColumnQuery:
    """A `fetch_columns` read that can be split into ranges of an integer key.

    `source` must end in a WHERE clause; each range adds `AND key >= lo AND key < hi`.
    """

    exprs: Sequence[tuple[str, str]]
    source: str
    table: str
    key: str


def fetch_columns_split(
    engine: Engine, queries: Sequence[ColumnQuery], parts: int
) -> Iterator[list[Any]]:
    """The columns of each query in turn, read as `parts` key ranges on parallel connections.

    SQLite runs a whole `group_concat` scan inside one call that releases the GIL, so ranges
    read on threads use every core; and each query's columns are yielded as soon as its ranges
    are read, so the caller works on them while later queries are still being read. Ranges are
    read in separate transactions: a row written meanwhile may be seen in its newer version,
    but no row is read twice or skipped unless it was inserted or deleted meanwhile.
    """
    with engine.connect() as conn:
        d = dialect_of(conn)
        jobs = []
        for q in queries:
            low, high = fetch(  # one aggregate per query: each is then one index lookup
                conn,
                f"SELECT (SELECT MIN(id) FROM {q.table}), (SELECT MAX(id) FROM {q.table})",  # noqa: S608
            )[0]
            bounds = np.linspace(low or 0, (high or 0) + 1, parts + 1).astype(np.int64).tolist()
            ranged = f"{q.source} AND {q.key} >= {d.param()} AND {q.key} < {d.param()}"
            jobs += [(q.exprs, ranged, (lo, hi)) for lo, hi in itertools.pairwise(bounds)]

    def read(job: tuple[Sequence[tuple[str, str]], str, tuple[int, int]]) -> list[Any]:
        with engine.connect() as conn:
            return fetch_columns(conn, *job)

    with executor_for(engine, min(len(jobs), os.cpu_count() or 1)) as pool:
        futures = [pool.submit(read, job) for job in jobs]
        for i, q in enumerate(queries):
            chunks = [f.result() for f in futures[i * parts : (i + 1) * parts]]
            yield [
                list(itertools.chain.from_iterable(c[k] for c in chunks))
                if kind == "text"
                else np.concatenate([c[k] for c in chunks])
                for k, (_, kind) in enumerate(q.exprs)
            ]


def executor_for(engine: Engine, workers: int) -> Executor:
    """Threads for work on `engine`'s database; the calling thread itself for an in-memory
    SQLite database, which exists once per connection and so once per thread."""
    if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
        return _InlineExecutor()
    return ThreadPoolExecutor(max_workers=workers)


class _InlineExecutor(Executor):
    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to whoever asks the future, as a pool would
            future.set_exception(exc)
        return future


def columns(rows: list[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    """Rows transposed to columns (empty columns when there are no rows)."""
    if not rows:
        return [()] * width
    return list(zip(*rows, strict=True))


def execute_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """One statement over many parameter rows, through the DB-API cursor."""
    if not rows:
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()
