"""Reads of the history the enrichment keeps: segment changes, RFM state, metric snapshots,
cohort retention and RFM group flows (docs/enrichment.md "History" and "Trends").

For the operator commands and reports: plain dataclasses, money as Decimal, times aware UTC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select

from shopcrm.errors import UsageError
from shopcrm.store import models
from shopcrm.store.db import Store
from shopcrm.store.models import CohortRetention, CustomerMetrics, MetricSnapshot, Shop

RFM_PREFIX = "rfm-"
ALL_SHOPS = "all"


@dataclass(frozen=True, slots=True)
class SegmentChange:
    segment: str
    entered: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class RfmState:
    group: str | None  # the current RFM group
    previous: str | None  # the group last left
    since: datetime | None  # when the current group was entered


@dataclass(frozen=True, slots=True)
class Snapshot:
    shop: str
    currency: str
    period: str
    period_end: date
    as_of: date
    customers: int
    new_customers: int
    returning_customers: int
    orders: int
    net_revenue: Decimal
    average_order_value: Decimal | None
    purchase_frequency: float | None
    customers_to_date: int
    repeat_customers_to_date: int
    repeat_purchase_rate: float | None
    segments: dict[str, int] | None
    rfm_groups: dict[str, int] | None


@dataclass(frozen=True, slots=True)
class CohortRow:
    cohort_month: date  # first day of the month of the cohort's first orders
    months_since: int
    customers: int  # buyers in the cohort
    active: int  # of them, buyers in the month `months_since` after
    share: float


def segment_history(store: Store, customer_ids: Sequence[int]) -> dict[int, list[SegmentChange]]:
    """Every segment each customer entered or left, oldest first (a leave before an entry
    recorded at the same time)."""
    out: dict[int, list[SegmentChange]] = {c: [] for c in customer_ids}
    if not customer_ids:
        return out
    c = models.SegmentChange
    with store.session() as s:
        rows = s.execute(
            select(c.customer_id, c.segment, c.entered, c.at)
            .where(c.customer_id.in_(list(customer_ids)))  # type: ignore[attr-defined]
            .order_by(c.customer_id, c.at, c.entered, c.segment)
        ).all()
    for customer, segment, entered, at in rows:
        out[customer].append(SegmentChange(segment, bool(entered), at))
    return out


def rfm_state(store: Store, customer_ids: Sequence[int]) -> dict[int, RfmState]:
    """Each customer's current RFM group, the one it last left and since when (customers
    without metrics are left out)."""
    m = CustomerMetrics
    with store.session() as s:
        rows = s.execute(
            select(m.customer_id, m.rfm_segment, m.previous_rfm_segment, m.rfm_segment_since).where(
                m.customer_id.in_(list(customer_ids))  # type: ignore[attr-defined]
            )
        ).all()
    return {c: RfmState(group, previous, since) for c, group, previous, since in rows}


def _shop_id(session: Any, shop: str) -> int:
    found = session.execute(select(Shop.id).where(Shop.name == shop)).scalar_one_or_none()
    if found is None:
        raise UsageError(f"shop {shop!r} has no data in the store yet: run a sync first")
    return int(found)


_MEASURES = [
    name
    for name in MetricSnapshot.model_fields
    if name not in ("shop_id", "currency", "period", "period_end", "computed_at")
]


def metric_snapshots(store: Store, shop: str | None, *, period: str = "month") -> list[Snapshot]:
    """The stored snapshots of one shop (every shop when None), by shop, currency and period
    end.

    Raises:
        UsageError: `shop` is not in the store.
    """
    m = MetricSnapshot
    with store.session() as s:
        query = (
            select(Shop.name, m)
            .join(Shop, Shop.id == m.shop_id)
            .where(m.period == period)
            .order_by(Shop.name, m.currency, m.period_end)
        )
        if shop is not None:
            query = query.where(m.shop_id == _shop_id(s, shop))
        rows = s.execute(query).all()
    return [
        Snapshot(
            shop=name,
            currency=row.currency,
            period=row.period,
            period_end=row.period_end,
            **{k: getattr(row, k) for k in _MEASURES},
        )
        for name, row in rows
    ]


def rollup(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """One snapshot per currency, period and period end, adding up the shops (shop "all").

    Counts and money are summed (a person buying in two shops counts in each), the average
    order value, purchase frequency and repeat purchase rate are recomputed from the sums,
    segment counts are summed only when every shop has them. Two currencies are never added.
    """
    groups: dict[tuple[str, str, date], list[Snapshot]] = defaultdict(list)
    for snap in snapshots:
        groups[(snap.currency, snap.period, snap.period_end)].append(snap)
    out = []
    for _, rows in sorted(groups.items()):
        total = rows[0]
        for row in rows[1:]:
            total = _add(total, row)
        out.append(_rates(replace(total, shop=ALL_SHOPS)))
    return out


def _add(a: Snapshot, b: Snapshot) -> Snapshot:
    def counts(x: dict[str, int] | None, y: dict[str, int] | None) -> dict[str, int] | None:
        if x is None or y is None:
            return None
        return {k: x.get(k, 0) + y.get(k, 0) for k in sorted(set(x) | set(y))}

    buyer_orders = _buyer_orders(a) + _buyer_orders(b)
    summed = replace(
        a,
        as_of=min(a.as_of, b.as_of),
        customers=a.customers + b.customers,
        new_customers=a.new_customers + b.new_customers,
        returning_customers=a.returning_customers + b.returning_customers,
        orders=a.orders + b.orders,
        net_revenue=a.net_revenue + b.net_revenue,
        customers_to_date=a.customers_to_date + b.customers_to_date,
        repeat_customers_to_date=a.repeat_customers_to_date + b.repeat_customers_to_date,
        segments=counts(a.segments, b.segments),
        rfm_groups=counts(a.rfm_groups, b.rfm_groups),
    )
    frequency = buyer_orders / summed.customers if summed.customers else None
    return replace(summed, purchase_frequency=frequency)


def _buyer_orders(s: Snapshot) -> float:
    """Orders of identified buyers: frequency x customers (exact up to float rounding)."""
    return (s.purchase_frequency or 0.0) * s.customers


def _rates(s: Snapshot) -> Snapshot:
    aov = None
    if s.orders:
        aov = (s.net_revenue / s.orders).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
        aov = aov.normalize() if aov != aov.to_integral_value() else aov.quantize(Decimal(1))
    repeat = s.repeat_customers_to_date / s.customers_to_date if s.customers_to_date else None
    return replace(s, average_order_value=aov, repeat_purchase_rate=repeat)


def cohort_retention(store: Store, shop: str, *, months: int = 24) -> list[CohortRow]:
    """The shop's cohorts of the last `months` months (as of its last enrichment), each with
    every month since.

    Raises:
        UsageError: `shop` is not in the store.
    """
    c = CohortRetention
    with store.session() as s:
        shop_id = _shop_id(s, shop)
        rows = s.execute(
            select(c.cohort_month, c.months_since, c.customers, c.active)
            .where(c.shop_id == shop_id)
            .order_by(c.cohort_month, c.months_since)
        ).all()
    kept = sorted({r.cohort_month for r in rows})[-months:] if months > 0 else []
    return [
        CohortRow(r.cohort_month, r.months_since, r.customers, r.active, r.active / r.customers)
        for r in rows
        if r.cohort_month in set(kept)
    ]


def segment_flows(
    store: Store, shop: str, since: datetime
) -> list[tuple[str | None, str | None, int]]:
    """How many customers moved from one RFM group to another since `since`: from the group
    they were in at `since` (None: none, e.g. a first purchase) to the one they are in now
    (None: none any more); customers back in the group they started from are left out.

    Raises:
        UsageError: `shop` is not in the store.
    """
    c = models.SegmentChange
    with store.session() as s:
        shop_id = _shop_id(s, shop)
        rows = s.execute(
            select(c.customer_id, c.segment, c.entered, c.at)
            .where(c.shop_id == shop_id, c.at >= since, c.segment.startswith(RFM_PREFIX))  # type: ignore[attr-defined]
            .order_by(c.customer_id, c.at, c.entered)
        ).all()
    moves: dict[int, list[Any]] = {}
    for customer, segment, entered, at in rows:
        group = segment[len(RFM_PREFIX) :]
        move = moves.setdefault(customer, [None, None, None])  # from, to, first time
        if move[2] is None:
            move[2] = at
        if not entered and at == move[2] and move[0] is None:
            move[0] = group
        move[1] = group if entered else (None if move[1] == group else move[1])
    flows: dict[tuple[str | None, str | None], int] = defaultdict(int)
    for start, end, _ in moves.values():
        if start != end:
            flows[(start, end)] += 1
    return sorted(
        ((a, b, n) for (a, b), n in flows.items()),
        key=lambda f: (-f[2], f[0] or "", f[1] or ""),
    )
