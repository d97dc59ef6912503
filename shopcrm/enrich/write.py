"""Bulk writes of customer metrics, person metrics and segment memberships (raw SQL).

Metrics are replaced wholesale per shop (DELETE + INSERT in the caller's transaction), so a
rerun leaves exactly the rows the data imply. Memberships are diffed instead, so a customer who
stays in a segment keeps the date it joined (`since`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection

from shopcrm.enrich.dbio import Dialect, columns, dialect_of, execute_many, fetch

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
    top_products: list[str | None]  # JSON text


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
    return [None if v != v else v for v in values.tolist()]


def _ints(values: Ints, present: NDArray[np.bool_]) -> list[int | None]:
    return [v if ok else None for v, ok in zip(values.tolist(), present.tolist(), strict=True)]


def _json(d: Dialect) -> str:
    return d.param() if d.sqlite else f"CAST({d.param()} AS JSON)"


def _history_columns(d: Dialect, m: MetricsRows) -> list[list[Any]]:
    bought = m.orders_count > 0
    return [
        m.key.tolist(),
        list(m.currency),
        m.orders_count.tolist(),
        d.times(m.first_us, bought),
        d.times(m.last_us, bought),
        d.money(m.total_micros),
        d.money(m.aov_micros, bought),
        _floats(m.mean_days_between),
        _ints(m.days_since_last, bought),
        [p if ok else None for p, ok in zip(m.top_products, bought.tolist(), strict=True)],
    ]


_HISTORY = (
    "currency, orders_count, first_order_at, last_order_at, total_spent, average_order_value, "
    "mean_days_between_orders, days_since_last_order, top_products"
)


def replace_customer_metrics(
    conn: Connection, shop_id: int, m: MetricsRows, s: ScoreRows, computed_at: datetime
) -> None:
    """Replace every metrics row of a shop with these."""
    d = dialect_of(conn)
    execute_many(conn, f"DELETE FROM customer_metrics WHERE shop_id = {d.param()}", [(shop_id,)])  # noqa: S608
    scored = s.recency > 0
    cols = _history_columns(d, m)
    cols[1:1] = [[shop_id] * len(m.key)]
    cols += [
        _ints(s.recency, scored),
        _ints(s.frequency, scored),
        _ints(s.monetary, scored),
        s.segment.tolist(),
        _floats(s.p_alive),
        _floats(s.expected_purchases),
        d.money(s.eov_micros, s.eov_micros >= 0),
        d.money(s.clv_micros, s.clv_micros >= 0),
        [d.time(computed_at)] * len(m.key),
    ]
    params = [d.param()] * len(cols)
    params[10] = _json(d)
    execute_many(
        conn,
        f"INSERT INTO customer_metrics (customer_id, shop_id, {_HISTORY}, recency_score, "  # noqa: S608
        "frequency_score, monetary_score, rfm_segment, p_alive, expected_purchases, "
        f"expected_order_value, predicted_clv, computed_at) VALUES ({', '.join(params)})",
        list(zip(*cols, strict=True)),
    )


def replace_person_metrics(conn: Connection, m: MetricsRows, computed_at: datetime) -> None:
    """Replace every person metrics row with these."""
    d = dialect_of(conn)
    conn.exec_driver_sql("DELETE FROM person_metrics")
    cols = _history_columns(d, m)
    cols.append([d.time(computed_at)] * len(m.key))
    params = [d.param()] * len(cols)
    params[9] = _json(d)
    execute_many(
        conn,
        f"INSERT INTO person_metrics (person_id, {_HISTORY}, computed_at) "  # noqa: S608
        f"VALUES ({', '.join(params)})",
        list(zip(*cols, strict=True)),
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
    rows = fetch(
        conn,
        f"SELECT customer_id, segment FROM segment_membership WHERE shop_id = {d.param()}",  # noqa: S608
        (shop_id,),
    )
    held_customers, held_segments = columns(rows, 2)
    names = sorted(set(segments) | set(held_segments))
    code = {name: i for i, name in enumerate(names)}
    width = len(names)
    wanted = np.concatenate(
        [customer_ids[mask] * width + code[name] for name, mask in segments.items()]
        or [np.zeros(0, dtype=np.int64)]
    )
    held = np.array(held_customers, dtype=np.int64) * width + np.array(
        [code[s] for s in held_segments], dtype=np.int64
    )
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
    key: Ints, currency: Sequence[str | None], history: Any, top: list[str | None]
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
