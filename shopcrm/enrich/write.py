"""Bulk writes of customer metrics, person metrics and segment memberships (raw SQL).

Metrics rows are made exactly what the data imply, in the caller's transaction: rows that
exist are updated in place, new ones inserted, ones no longer implied deleted. Memberships are
diffed, so a customer who stays in a segment keeps the date it joined (`since`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection

from shopcrm.enrich.codes import find
from shopcrm.enrich.dbio import Dialect, dialect_of, execute_many, fetch_columns, present_or_none
from shopcrm.errors import StoreError

Ints = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class MetricsRows:
    """Metrics of one group per entry (customer, or person and currency); -1/nan/None = none."""

    key: Ints  # customer id or person id
    currency: list[str | None]
    orders_count: Ints
    total_micros: Ints
    aov_micros: Ints
    first_us: Ints
    last_us: Ints
    mean_days_between: NDArray[np.float64]
    days_since_last: Ints
    # Digest of the history columns and of the versions of the orders behind them: unchanged,
    # the history is (top products included, so those need not be computed: None below).
    history_prints: Ints
    top_products: list[str | None]  # JSON text (written only for groups with purchases)


@dataclass(frozen=True, slots=True)
class ScoreRows:
    """RFM and model outputs per customer, parallel to a MetricsRows."""

    recency: Ints  # 0 = not scored
    frequency: Ints
    monetary: Ints
    segment: NDArray[np.object_]
    p_alive: NDArray[np.float64]
    expected_purchases: NDArray[np.float64]
    eov_micros: Ints  # -1 = none
    clv_micros: Ints  # -1 = none
    previous_segment: NDArray[np.object_]  # the RFM group last left, None = none
    segment_since_us: Ints  # when the current RFM group was entered, -1 = no group


def _floats(values: NDArray[np.float64]) -> list[float | None]:
    return present_or_none(values, ~np.isnan(values))


def _json(d: Dialect) -> str:
    return d.param() if d.sqlite else f"CAST({d.param()} AS JSON)"


def _history_columns(d: Dialect, m: MetricsRows, rows: Ints) -> dict[str, list[Any]]:
    """The purchase history, which changes only when the group's orders do."""
    bought = m.orders_count[rows] > 0
    return {
        "orders_count": m.orders_count[rows].tolist(),
        "first_order_at": d.times(m.first_us[rows], bought),
        "last_order_at": d.times(m.last_us[rows], bought),
        "total_spent": d.money(m.total_micros[rows]),
        "average_order_value": d.money(m.aov_micros[rows], bought),
        "mean_days_between_orders": _floats(m.mean_days_between[rows]),
        "top_products": present_or_none(_top_products(m, rows, bought), bought),
    }


def _top_products(m: MetricsRows, rows: Ints, bought: NDArray[np.bool_]) -> NDArray[np.object_]:
    tops = np.array(m.top_products, dtype=object)[rows]
    picked = rows[bought].tolist()
    if missing := [i for i, top in zip(picked, tops[bought].tolist(), strict=True) if top is None]:
        # computed where `stale_histories` found the history changed, from the same stored
        # rows this write compares with: rows read apart would be a bug, not data
        raise StoreError(
            f"top products of metrics row {m.key[missing[0]]} ({m.currency[missing[0]]}) "
            "were not computed though its purchase history changed; nothing was written"
        )
    return tops


def _days_since(m: MetricsRows, rows: Ints) -> list[Any]:
    return present_or_none(m.days_since_last[rows], m.orders_count[rows] > 0)


@dataclass(frozen=True, slots=True)
class _Values:
    """What `_write_rows` writes, split in two: the purchase history, which changes only with
    the orders, and the daily part (days since the last order, scores, model outputs), which
    moves every day. A row whose history is unchanged gets only its daily part rewritten."""

    history_prints: Ints  # digest of the history columns
    prints: Ints  # digest of every column
    history_of: Callable[[Ints], dict[str, list[Any]]]
    daily_of: Callable[[Ints], dict[str, list[Any]]]


@dataclass(frozen=True, slots=True)
class StoredRows:
    """A table's stored rows in one scope, matched by key to the rows about to be written.

    Read once per enrichment, before the lines (to know which histories changed) and used
    again by the write: the enrichment holds the store's lock, so no other writes them.
    """

    table: str
    given: dict[str, list[Any]]  # the key columns of the rows to write
    keys: list[Any]  # the stored key columns
    key: Ints  # one composite key per stored row
    given_key: Ints  # the same for the given rows
    found: Ints  # per given row: its stored row's position (valid only where `held`)
    held: NDArray[np.bool_]  # per given row: a stored row exists
    prints: Ints  # per stored row
    history_prints: Ints  # per stored row


def _read_stored(
    conn: Connection, table: str, given: dict[str, list[Any]], scope_params: Sequence[Any] = ()
) -> StoredRows:
    *stored_keys, prints, history_prints = fetch_columns(
        conn,
        [
            *((k, _KEY_KINDS[k]) for k in given),
            ("COALESCE(fingerprint, 0)", "int"),
            ("COALESCE(history_fingerprint, 0)", "int"),
        ],
        _SCOPES[table](dialect_of(conn)),
        scope_params,
    )
    given_key, stored_key = _composite_keys(list(given.values()), stored_keys)
    found, held = find(stored_key, given_key)
    return StoredRows(
        table, given, stored_keys, stored_key, given_key, found, held, prints, history_prints
    )


def stored_person_metrics(conn: Connection, m: MetricsRows) -> StoredRows:
    """Every stored person metrics row, matched to these persons and currencies."""
    return _read_stored(
        conn, "person_metrics", {"person_id": m.key.tolist(), "currency": m.currency}
    )


def stored_customer_metrics(conn: Connection, shop_id: int, m: MetricsRows) -> StoredRows:
    """A shop's stored customer metrics rows."""
    return _read_stored(conn, "customer_metrics", {"customer_id": m.key.tolist()}, (shop_id,))


def stale_histories(stored: StoredRows, history_prints: Ints) -> NDArray[np.bool_]:
    """Which of these rows' purchase histories differ from the stored ones (or are not stored):
    only theirs need their orders' lines, for the top products."""
    return ~_same(stored, stored.history_prints, history_prints)


def _same(stored: StoredRows, stored_prints: Ints, prints: Ints) -> NDArray[np.bool_]:
    if not len(stored.key):
        return np.zeros(len(prints), dtype=bool)
    return stored.held & (stored_prints[stored.found] == prints)


_SCOPES: dict[str, Callable[[Dialect], str]] = {
    "customer_metrics": lambda d: f"customer_metrics WHERE shop_id = {d.param()}",
    "person_metrics": lambda d: "person_metrics WHERE true",
}


def _write_rows(
    conn: Connection,
    stored: StoredRows,
    given: _Values,
    insert_only: Mapping[str, Any] | None = None,
) -> int:
    """Make the rows of `stored.table` in its scope (`_SCOPES`) exactly the given ones;
    returns how many changed.

    A row is compared with the stored one by its fingerprints (digests of its values): an
    unchanged row is left alone, a changed one updated in place (which keeps its position in
    the table and its indexes: far cheaper than deleting and inserting it again), and only in
    its daily columns when its history digest is unchanged (a day later, that is nearly every
    row: binding half the values), a new one inserted, and a stored row no longer given
    deleted. Values are built only for the rows written; `insert_only` columns (the scope's
    own, such as the shop) are left out of updates, where even an unchanged value costs an
    index and foreign-key visit.
    """
    insert_only = insert_only or {}
    d = dialect_of(conn)
    table, keys = stored.table, stored.given
    key_names = list(keys)
    held = stored.held
    same = _same(stored, stored.prints, given.prints)
    same_history = _same(stored, stored.history_prints, given.history_prints)
    gone = np.flatnonzero(~np.isin(stored.key, stored.given_key, assume_unique=True))
    execute_many(
        conn,
        f"DELETE FROM {table} WHERE {_key_match(d, key_names)}",  # noqa: S608
        list(zip(*(np.asarray(c)[gone].tolist() for c in stored.keys), strict=True)),
    )

    def everything(rows: Ints) -> dict[str, list[Any]]:
        return (
            given.history_of(rows)
            | given.daily_of(rows)
            | {"history_fingerprint": given.history_prints[rows].tolist()}
        )

    daily = np.flatnonzero(same_history & ~same)
    changed = np.flatnonzero(held & ~same_history)
    added = np.flatnonzero(~held)
    for positions, values_of, update in (
        (daily, given.daily_of, True),
        (changed, everything, True),
        (added, everything, False),
    ):
        # in batches: a row's bound values are Python objects, ~1 KB a row
        for start in range(0, len(positions), WRITE_BATCH_ROWS):
            batch = positions[start : start + WRITE_BATCH_ROWS]
            values = values_of(batch) | {"fingerprint": given.prints[batch].tolist()}
            if not update:
                values |= {name: [value] * len(batch) for name, value in insert_only.items()}
            picked = batch.tolist()
            key_values = [[column[i] for i in picked] for column in keys.values()]
            rows = list(zip(*values.values(), *key_values, strict=True))
            execute_many(conn, _row_statement(d, table, list(values), key_names, update), rows)
    return len(daily) + len(changed) + len(added) + len(gone)


WRITE_BATCH_ROWS = 50_000


def _row_statement(d: Dialect, table: str, names: list[str], keys: list[str], update: bool) -> str:
    """UPDATE ... WHERE keys, or INSERT, binding `names` then `keys` in that order."""
    marks = [_json(d) if name == "top_products" else d.param() for name in names]
    if update:
        sets = ", ".join(f"{name} = {mark}" for name, mark in zip(names, marks, strict=True))
        return f"UPDATE {table} SET {sets} WHERE {_key_match(d, keys)}"  # noqa: S608
    placeholders = ", ".join([*marks, *[d.param()] * len(keys)])
    return f"INSERT INTO {table} ({', '.join([*names, *keys])}) VALUES ({placeholders})"  # noqa: S608


def _key_match(d: Dialect, keys: list[str]) -> str:
    return " AND ".join(f"{k} = {d.param()}" for k in keys)


def _composite_keys(given: list[list[Any]], stored: list[Any]) -> tuple[Ints, Ints]:
    """One int64 per row for the given and the stored keys (integer ids, and texts such as a
    currency coded over the union of both sides), so rows are matched by numpy, not dicts."""
    given_key = np.zeros(len(given[0]), dtype=np.int64)
    stored_key = np.zeros(len(stored[0]), dtype=np.int64)
    for mine, theirs in zip(given, stored, strict=True):
        if isinstance(theirs, np.ndarray):
            g, t = np.asarray(mine, dtype=np.int64), theirs
        else:
            code = {text: i for i, text in enumerate(sorted(set(mine) | set(theirs)))}
            g = np.fromiter(map(code.__getitem__, mine), dtype=np.int64, count=len(mine))
            t = np.fromiter(map(code.__getitem__, theirs), dtype=np.int64, count=len(theirs))
        width = int(max(g.max(initial=0), t.max(initial=0))) + 1
        given_key, stored_key = given_key * width + g, stored_key * width + t
    return given_key, stored_key


_KEY_KINDS = {"customer_id": "int", "person_id": "int", "currency": "text"}


@dataclass(frozen=True, slots=True)
class CustomerRows:
    """A shop's customer metrics with their digests, computed before the write transaction
    (`customer_rows`) so that they overlap the person writer instead of following it."""

    metrics: MetricsRows
    scores: ScoreRows
    prints: Ints  # digest of every column (the history's is metrics.history_prints)


def customer_rows(m: MetricsRows, s: ScoreRows) -> CustomerRows:
    daily = [m.days_since_last, s.recency, s.frequency, s.monetary, s.segment, s.p_alive]
    daily += [s.expected_purchases, s.eov_micros, s.clv_micros]
    daily += [s.previous_segment, s.segment_since_us]
    return CustomerRows(m, s, fingerprints(daily, m.history_prints))


def write_customer_metrics(
    conn: Connection, shop_id: int, rows: CustomerRows, computed_at: datetime, stored: StoredRows
) -> int:
    """Make a shop's metrics rows exactly these (`stored`: the shop's stored rows); returns
    how many rows changed."""
    d = dialect_of(conn)
    m, s = rows.metrics, rows.scores

    def history_of(rows: Ints) -> dict[str, list[Any]]:
        return {"currency": [m.currency[i] for i in rows.tolist()], **_history_columns(d, m, rows)}

    def daily_of(rows: Ints) -> dict[str, list[Any]]:
        scored = s.recency[rows] > 0
        eov, value = s.eov_micros[rows], s.clv_micros[rows]
        return {
            "days_since_last_order": _days_since(m, rows),
            "recency_score": present_or_none(s.recency[rows], scored),
            "frequency_score": present_or_none(s.frequency[rows], scored),
            "monetary_score": present_or_none(s.monetary[rows], scored),
            "rfm_segment": s.segment[rows].tolist(),
            "p_alive": _floats(s.p_alive[rows]),
            "expected_purchases": _floats(s.expected_purchases[rows]),
            "expected_order_value": d.money(eov, eov >= 0),
            "predicted_clv": d.money(value, value >= 0),
            "previous_rfm_segment": s.previous_segment[rows].tolist(),
            "rfm_segment_since": d.times(s.segment_since_us[rows], s.segment_since_us[rows] >= 0),
            "computed_at": [d.time(computed_at)] * len(rows),
        }

    return _write_rows(
        conn,
        stored,
        _Values(m.history_prints, rows.prints, history_of, daily_of),
        insert_only={"shop_id": shop_id},
    )


def write_person_metrics(
    conn: Connection, m: MetricsRows, as_of: date, computed_at: datetime, stored: StoredRows
) -> int:
    """Make the person metrics rows exactly these (`stored`: the stored rows); returns how
    many rows changed.

    Their days since the last order (UTC days, `m.days_since_last`) are compared and moved by
    one set-wide statement instead of row by row: a day later, every buyer's value moves.
    """
    d = dialect_of(conn)
    prints = m.history_prints

    def history_of(rows: Ints) -> dict[str, list[Any]]:
        return _history_columns(d, m, rows) | {"days_since_last_order": _days_since(m, rows)}

    def stamp(rows: Ints) -> dict[str, list[Any]]:
        return {"computed_at": [d.time(computed_at)] * len(rows)}

    changed = _write_rows(
        conn,
        stored,
        _Values(prints, prints, history_of, stamp),  # no daily digest: the days are below
    )
    return changed + _refresh_person_days(conn, as_of, computed_at)


def _refresh_person_days(conn: Connection, as_of: date, computed_at: datetime) -> int:
    d = dialect_of(conn)
    if d.sqlite:
        days = "CAST(ROUND(julianday(?) - julianday(date(last_order_at))) AS INTEGER)"
    else:
        days = "(CAST(%s AS DATE) - CAST(last_order_at AT TIME ZONE 'UTC' AS DATE))"
    return conn.exec_driver_sql(
        f"UPDATE person_metrics SET days_since_last_order = {days}, "  # noqa: S608
        f"computed_at = {d.param()} WHERE last_order_at IS NOT NULL "
        f"AND (days_since_last_order IS NULL OR days_since_last_order <> {days})",
        (d.day(as_of), d.time(computed_at), d.day(as_of)),
    ).rowcount


def fingerprints(columns: Sequence[Any], start: Ints | None = None) -> Ints:
    """A 64-bit digest of each row of these parallel columns, the same in every process;
    `start` (digests of earlier columns of the same rows) extends them by these.

    Numbers are digested by their bits, texts by their code points, then mixed column by
    column with the splitmix64 finaliser; two rows with different values get different
    fingerprints except with a negligible probability (one in billions per changed row).
    """
    n = len(columns[0])
    digest = np.zeros(n, dtype=np.uint64) if start is None else start.view(np.uint64)
    for number, column in enumerate(columns):
        value = _column_digest(column) + np.uint64(number * _GOLDEN % 2**64)
        digest = _mix(digest ^ _mix(value))
    return digest.view(np.int64)


_GOLDEN = 0x9E3779B97F4A7C15  # spreads the column numbers over 64 bits


def _mix(h: NDArray[np.uint64]) -> NDArray[np.uint64]:
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _column_digest(column: Any) -> NDArray[np.uint64]:
    if isinstance(column, list):
        texts = column  # a list is of texts (a numpy array of them would be built for nothing)
    else:
        values = np.asarray(column)
        if values.dtype.kind in "iub":
            return values.astype(np.int64).view(np.uint64)
        if values.dtype.kind == "f":
            return np.where(np.isnan(values), np.nan, values).view(np.uint64)  # one NaN pattern
        texts = values.tolist()
    distinct = list(set(texts))
    if len(distinct) * 8 > len(texts):
        return _text_digests(texts)
    table = dict(zip(distinct, _text_digests(distinct).tolist(), strict=True))  # currencies
    return np.fromiter(map(table.__getitem__, texts), dtype=np.uint64, count=len(texts))


def _text_digests(texts: list[str | None]) -> NDArray[np.uint64]:
    """A polynomial digest of each text's code points, computed a character position at a
    time over all texts at once (None differs from every text, "" included)."""
    missing = np.array([t is None for t in texts], dtype=bool)
    points = np.array([t or "" for t in texts], dtype=str)
    width = points.dtype.itemsize // 4
    digest = missing.astype(np.uint64)
    if width:
        for char in points.view(np.uint32).reshape(len(texts), width).T:
            digest = digest * np.uint64(_POLYNOMIAL) + char
    return _mix(digest)


_POLYNOMIAL = 0x100000001B3  # the 64-bit FNV prime: odd, so every character keeps mattering


@dataclass(frozen=True, slots=True)
class MembershipChanges:
    joined: int
    left: int
    members: dict[str, int]


def sync_memberships(
    conn: Connection,
    shop_id: int,
    customer_ids: Ints,
    segments: Mapping[str, NDArray[np.bool_]],
    since: date,
    at: datetime,
) -> MembershipChanges:
    """Make a shop's memberships equal to `segments`; new members get `since`, others keep theirs.
    Each membership started or ended is recorded in `segment_change` at `at`, in the same
    transaction, so the changes are exactly the difference between two states.

    Args:
        conn: connection inside the shop's transaction.
        shop_id: the shop.
        customer_ids: customer ids, parallel to every mask.
        segments: segment name -> which customers are members.
        since: the date new memberships start (the as-of date).
        at: the time the changes are recorded at (the enrichment's).

    Returns:
        How many memberships started and ended, and each segment's size.
    """
    d = dialect_of(conn)
    held_customers, held_segments = fetch_columns(
        conn,
        [("customer_id", "int"), ("segment", "text")],
        f"segment_membership WHERE shop_id = {d.param()}",
        (shop_id,),
    )
    names = sorted(set(segments) | set(held_segments))
    code = {name: i for i, name in enumerate(names)}
    width = len(names)
    wanted = np.concatenate(
        [customer_ids[mask] * width + code[name] for name, mask in segments.items()]
        or [np.zeros(0, dtype=np.int64)]
    )
    held = held_customers * width + np.array([code[s] for s in held_segments], dtype=np.int64)
    # both sides hold each key once; sorted, they fill the (customer, segment) B-tree in order
    joined = np.sort(wanted[~np.isin(wanted, held, assume_unique=True)])
    left = np.sort(held[~np.isin(held, wanted, assume_unique=True)])
    # Each side binds one array of keys (customer id * width + segment number), unpacked in SQL.
    number = f"value - value / {width} * {width}"  # integer division in both dialects
    keyed = (
        f"SELECT value / {width} AS customer_id, {d.text_at(number)} AS segment "  # noqa: S608
        f"FROM {d.each_int()}"
    )
    if len(left):
        conn.exec_driver_sql(
            f"DELETE FROM segment_membership WHERE (customer_id, segment) IN ({keyed})",  # noqa: S608
            (d.array(names), d.array(left.tolist())),
        )
    if len(joined):
        conn.exec_driver_sql(
            "INSERT INTO segment_membership (shop_id, customer_id, segment, since) "  # noqa: S608
            f"SELECT {d.param()}, k.customer_id, k.segment, {d.param()} FROM ({keyed}) AS k",
            (shop_id, d.day(since), d.array(names), d.array(joined.tolist())),
        )
    for keys, entered in ((left, False), (joined, True)):
        if len(keys):
            conn.exec_driver_sql(
                "INSERT INTO segment_change (shop_id, customer_id, segment, entered, at) "  # noqa: S608
                f"SELECT {d.param()}, k.customer_id, k.segment, {d.param()}, {d.param()} "
                f"FROM ({keyed}) AS k",
                (shop_id, entered, d.time(at), d.array(names), d.array(keys.tolist())),
            )
    return MembershipChanges(
        len(joined),
        len(left),
        {name: int(np.count_nonzero(mask)) for name, mask in segments.items()},
    )


@dataclass(frozen=True, slots=True)
class RfmState:
    """Each customer's RFM group as stored, the one it last left, and since when."""

    segment: NDArray[np.object_]  # None = no group
    previous: NDArray[np.object_]
    since_us: Ints  # -1 = none


def stored_rfm_state(conn: Connection, shop_id: int, customer_ids: Ints) -> RfmState:
    """The stored RFM state of these customers (ascending ids); customers without a metrics
    row have none."""
    d = dialect_of(conn)
    never = "'1970-01-01 00:00:00.000000'" if d.sqlite else "TIMESTAMPTZ 'epoch'"
    ids, segment, previous, since, known = fetch_columns(
        conn,
        [
            ("customer_id", "int"),
            ("COALESCE(rfm_segment, '')", "text"),
            ("COALESCE(previous_rfm_segment, '')", "text"),
            (f"COALESCE(rfm_segment_since, {never})", "time"),
            ("CASE WHEN rfm_segment_since IS NULL THEN 0 ELSE 1 END", "int"),
        ],
        f"customer_metrics WHERE shop_id = {d.param()}",
        (shop_id,),
    )
    n = len(customer_ids)
    state = RfmState(np.full(n, None, object), np.full(n, None, object), np.full(n, -1))
    at, held = find(customer_ids, ids)
    rows = at[held]
    for target, texts in ((state.segment, segment), (state.previous, previous)):
        values = np.array(texts, dtype=object)[held]
        target[rows] = np.where(values == "", None, values)
    state.since_us[rows] = np.where(known[held] > 0, since[held], -1)
    return state


def next_rfm_state(stored: RfmState, segment: NDArray[np.object_], now_us: int) -> RfmState:
    """The state after this enrichment's groups (`segment`, None = none): a customer whose
    group changed left the stored one (now its previous) and entered the new one now."""
    changed = stored.segment != segment
    left = changed & (stored.segment != None)  # noqa: E711  (element-wise on objects)
    previous = np.where(left, stored.segment, stored.previous)
    since = np.where(changed, now_us, stored.since_us)
    since = np.where(segment == None, -1, since)  # noqa: E711
    return RfmState(segment.copy(), previous, since)


def metrics_rows_for(
    key: Ints, currency: Sequence[str | None], history: Any, orders_digest: Ints
) -> MetricsRows:
    """MetricsRows from a `History` of the same groups and the digests of their orders
    (`order_set_digests`); top products are added by `with_top_products` where needed."""
    currencies = list(currency)
    history_prints = fingerprints(
        [
            currencies,
            history.orders_count,
            history.first_us,
            history.last_us,
            history.total_micros,
            history.aov_micros,
            history.mean_days_between,
        ],
        orders_digest,
    )
    return MetricsRows(
        key=key,
        currency=currencies,
        orders_count=history.orders_count,
        total_micros=history.total_micros,
        aov_micros=history.aov_micros,
        first_us=history.first_us,
        last_us=history.last_us,
        mean_days_between=history.mean_days_between,
        days_since_last=history.days_since_last,
        history_prints=history_prints,
        top_products=[None] * len(key),
    )


def with_top_products(m: MetricsRows, top: list[str | None]) -> MetricsRows:
    return replace(m, top_products=top)


def order_set_digests(group: Ints, order_id: Ints, version_us: Ints, n_groups: int) -> Ints:
    """Per group 0..n_groups-1, a digest of which orders it counts and when each was last
    written (with its lines); orders with a group below 0 are left out."""
    mine = group >= 0
    each = _mix(
        _mix(order_id[mine].astype(np.uint64)) ^ version_us[mine].astype(np.int64).view(np.uint64)
    )
    digest = np.zeros(n_groups, dtype=np.uint64)
    np.add.at(digest, group[mine], each)  # a sum: the same in any order of the orders
    return digest.view(np.int64)
