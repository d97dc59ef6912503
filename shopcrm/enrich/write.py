"""Bulk writes of customer metrics, person metrics and segment memberships (raw SQL).

Metrics rows are made exactly what the data imply, in the caller's transaction: rows that
exist are updated in place, new ones inserted, ones no longer implied deleted. Memberships are
diffed, so a customer who stays in a segment keeps the date it joined (`since`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection

from shopcrm.enrich.dbio import Dialect, dialect_of, execute_many, fetch_columns, present_or_none

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
    top_products: list[str]  # JSON text (written only for groups with purchases)


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


def _floats(values: NDArray[np.float64]) -> list[float | None]:
    return present_or_none(values, ~np.isnan(values))


def _json(d: Dialect) -> str:
    return d.param() if d.sqlite else f"CAST({d.param()} AS JSON)"


def _history_columns(d: Dialect, m: MetricsRows) -> dict[str, list[Any]]:
    bought = m.orders_count > 0
    return {
        "currency": list(m.currency),
        "orders_count": m.orders_count.tolist(),
        "first_order_at": d.times(m.first_us, bought),
        "last_order_at": d.times(m.last_us, bought),
        "total_spent": d.money(m.total_micros),
        "average_order_value": d.money(m.aov_micros, bought),
        "mean_days_between_orders": _floats(m.mean_days_between),
        "days_since_last_order": present_or_none(m.days_since_last, bought),
        "top_products": present_or_none(np.array(m.top_products, dtype=object), bought),
    }


def _write_rows(
    conn: Connection,
    table: str,
    keys: dict[str, list[Any]],
    values: dict[str, list[Any]],
    scope: str,
    scope_params: Sequence[Any] = (),
) -> None:
    """Make the rows of `table` selected by `scope` exactly these: update the rows whose key
    is stored, insert the others, delete stored rows that are not given.

    Updating in place keeps each row where it is in the table and its indexes, which costs
    far less than deleting and inserting every row again.
    """
    d = dialect_of(conn)
    key_names = list(keys)
    stored_columns = fetch_columns(
        conn, [(k, _KEY_KINDS[k]) for k in key_names], scope, scope_params
    )
    stored = set(zip(*(np.asarray(c).tolist() for c in stored_columns), strict=True))
    given = list(zip(*keys.values(), strict=True))
    rows = list(zip(*values.values(), *keys.values(), strict=True))
    old = [row for row, key in zip(rows, given, strict=True) if key in stored]
    new = [row for row, key in zip(rows, given, strict=True) if key not in stored]
    match = " AND ".join(f"{k} = {d.param()}" for k in key_names)
    execute_many(
        conn,
        f"DELETE FROM {table} WHERE {match}",  # noqa: S608
        sorted(stored - set(given)),
    )
    marks = [_json(d) if name == "top_products" else d.param() for name in values]
    sets = ", ".join(f"{name} = {mark}" for name, mark in zip(values, marks, strict=True))
    execute_many(conn, f"UPDATE {table} SET {sets} WHERE {match}", old)  # noqa: S608
    names = ", ".join([*values, *key_names])
    execute_many(
        conn,
        f"INSERT INTO {table} ({names}) VALUES ({', '.join([*marks, *[d.param()] * len(keys)])})",  # noqa: S608
        new,
    )


_KEY_KINDS = {"customer_id": "int", "person_id": "int", "currency": "text"}


def write_customer_metrics(
    conn: Connection, shop_id: int, m: MetricsRows, s: ScoreRows, computed_at: datetime
) -> None:
    """Make a shop's metrics rows exactly these."""
    d = dialect_of(conn)
    scored = s.recency > 0
    values = {"shop_id": [shop_id] * len(m.key), **_history_columns(d, m)}
    values |= {
        "recency_score": present_or_none(s.recency, scored),
        "frequency_score": present_or_none(s.frequency, scored),
        "monetary_score": present_or_none(s.monetary, scored),
        "rfm_segment": s.segment.tolist(),
        "p_alive": _floats(s.p_alive),
        "expected_purchases": _floats(s.expected_purchases),
        "expected_order_value": d.money(s.eov_micros, s.eov_micros >= 0),
        "predicted_clv": d.money(s.clv_micros, s.clv_micros >= 0),
        "computed_at": [d.time(computed_at)] * len(m.key),
    }
    _write_rows(
        conn,
        "customer_metrics",
        {"customer_id": m.key.tolist()},
        values,
        f"customer_metrics WHERE shop_id = {d.param()}",
        (shop_id,),
    )


def write_person_metrics(conn: Connection, m: MetricsRows, computed_at: datetime) -> None:
    """Make the person metrics rows exactly these."""
    d = dialect_of(conn)
    values = _history_columns(d, m)
    currency = values.pop("currency")
    values["computed_at"] = [d.time(computed_at)] * len(m.key)
    _write_rows(
        conn,
        "person_metrics",
        {"person_id": m.key.tolist(), "currency": currency},
        values,
        "person_metrics WHERE true",
    )


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
) -> MembershipChanges:
    """Make a shop's memberships equal to `segments`; new members get `since`, others keep theirs.

    Args:
        conn: connection inside the shop's transaction.
        shop_id: the shop.
        customer_ids: customer ids, parallel to every mask.
        segments: segment name -> which customers are members.
        since: the date new memberships start (the as-of date).

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
    joined = np.setdiff1d(wanted, held)
    left = np.setdiff1d(held, wanted)
    execute_many(
        conn,
        f"DELETE FROM segment_membership WHERE customer_id = {d.param()} AND segment = {d.param()}",  # noqa: S608
        [(int(k // width), names[int(k % width)]) for k in left.tolist()],
    )
    day = d.day(since)
    execute_many(
        conn,
        "INSERT INTO segment_membership (shop_id, customer_id, segment, since) "  # noqa: S608
        f"VALUES ({d.params(4)})",
        [(shop_id, k // width, names[k % width], day) for k in joined.tolist()],
    )
    return MembershipChanges(
        len(joined),
        len(left),
        {name: int(np.count_nonzero(mask)) for name, mask in segments.items()},
    )


def metrics_rows_for(
    key: Ints, currency: Sequence[str | None], history: Any, top: list[str]
) -> MetricsRows:
    """MetricsRows from a `History` of the same groups."""
    return MetricsRows(
        key=key,
        currency=list(currency),
        orders_count=history.orders_count,
        total_micros=history.total_micros,
        aov_micros=history.aov_micros,
        first_us=history.first_us,
        last_us=history.last_us,
        mean_days_between=history.mean_days_between,
        days_since_last=history.days_since_last,
        top_products=top,
    )
