"""Purchase history per customer or per person: pure functions over arrays of purchases.

Inputs are the counted purchases only (`shopcrm.enrich.purchases.is_purchase`), each with the
index of its group (a customer, or a person and currency), its UTC time in epoch microseconds,
its calendar day in the shop's timezone and its net value in integer micro-units. Sums stay in
int64 micro-units, so they are exact; money becomes Decimal only when written.

Definitions (docs/enrichment.md "Purchase history"):
- orders_count: counted orders (two orders on one day are two orders);
- total_spent: sum of net values; average_order_value: total / count, rounded half up to the
  micro-unit;
- mean_days_between_orders: (last order time - first order time) / (count - 1), in days;
  undefined for a single order;
- days_since_last_order: as-of date minus the calendar day of the last order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shopcrm.enrich.clv import RepeatSummary
from shopcrm.enrich.purchases import MICROS_PER_DAY

Ints = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class History:
    """Per group; entries of groups without purchases are 0 (check `orders_count > 0`)."""

    orders_count: Ints
    total_micros: Ints
    aov_micros: Ints
    first_us: Ints
    last_us: Ints
    first_day: Ints
    last_day: Ints
    mean_days_between: NDArray[np.float64]  # nan below two orders
    days_since_last: Ints

    @property
    def buyers(self) -> NDArray[np.bool_]:
        return self.orders_count > 0


@dataclass(frozen=True, slots=True)
class _Sorted:
    group: Ints
    created_us: Ints
    day: Ints
    net: Ints


def _sort(group: Ints, created_us: Ints, day: Ints, net: Ints) -> _Sorted:
    order = np.lexsort((created_us, group))
    return _Sorted(group[order], created_us[order], day[order], net[order])


def _starts(*keys: Ints) -> Ints:
    """Indices where a run of equal keys begins, in arrays sorted by those keys."""
    if len(keys[0]) == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(len(keys[0]), dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


def purchase_history(
    group: Ints, created_us: Ints, day: Ints, net_micros: Ints, n_groups: int, as_of_day: int
) -> History:
    """Purchase history of `n_groups` groups from their counted purchases.

    Args:
        group: group index (0 .. n_groups-1) of each purchase.
        created_us: purchase time, epoch microseconds UTC.
        day: purchase calendar day (days since 1970-01-01) in the shop's timezone.
        net_micros: net value (total minus refunds) in micro-units, > 0.
        n_groups: number of groups.
        as_of_day: the as-of date as a day number.

    Returns:
        One History over all groups.
    """
    s = _sort(*(np.asarray(a, dtype=np.int64) for a in (group, created_us, day, net_micros)))
    starts = _starts(s.group)
    ends = np.r_[starts[1:], len(s.group)][: len(starts)] - 1
    owners = s.group[starts]
    zeros = np.zeros(n_groups, dtype=np.int64)
    count = zeros.copy()
    count[owners] = ends - starts + 1
    total = zeros.copy()
    if len(starts):
        total[owners] = np.add.reduceat(s.net, starts)
    first_us, last_us, first_day, last_day = zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy()
    first_us[owners] = s.created_us[starts]
    last_us[owners] = s.created_us[ends]
    first_day[owners] = s.day[starts]
    last_day[owners] = s.day[ends]
    safe = np.maximum(count, 1)
    aov = (2 * total + safe) // (2 * safe)  # half up; exact in integers
    with np.errstate(invalid="ignore", divide="ignore"):
        gaps = np.where(count > 1, (last_us - first_us) / MICROS_PER_DAY / (count - 1), np.nan)
    since = np.where(count > 0, as_of_day - last_day, 0)
    return History(
        count,
        total,
        np.where(count > 0, aov, 0),
        first_us,
        last_us,
        first_day,
        last_day,
        gaps,
        since,
    )


def repeat_summary(
    group: Ints, created_us: Ints, day: Ints, net_micros: Ints, n_groups: int, as_of_day: int
) -> tuple[Ints, RepeatSummary]:
    """The BG/NBD and Gamma-Gamma inputs of every group with a purchase (clv.py conventions).

    Purchases are counted per calendar day: several orders on one day are one purchase of
    their summed value. x = purchase days - 1, t_x = last day - first day, T = as-of day -
    first day; the monetary value is the mean value of the repeat days (the first excluded).

    Returns:
        The indices of the groups with purchases, and their summary in that order.
    """
    s = _sort(*(np.asarray(a, dtype=np.int64) for a in (group, created_us, day, net_micros)))
    day_starts = _starts(s.group, s.day)
    if len(day_starts) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, RepeatSummary(empty, empty, empty, np.zeros(0), empty)
    day_value = np.add.reduceat(s.net, day_starts)
    day_group = s.group[day_starts]
    day_num = s.day[day_starts]
    firsts = _starts(day_group)
    lasts = np.r_[firsts[1:], len(day_group)] - 1
    owners = day_group[firsts]
    days = lasts - firsts + 1
    frequency = days - 1
    spent = np.add.reduceat(day_value, firsts) - day_value[firsts]
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, spent / 1e6 / frequency, np.nan)
    summary = RepeatSummary(
        frequency=frequency,
        recency=day_num[lasts] - day_num[firsts],
        age=as_of_day - day_num[firsts],
        monetary=monetary,
        days_since_last=as_of_day - day_num[lasts],
    )
    return owners, summary


def top_products(group: Ints, product: Ints, quantity: Ints, k: int = 3) -> tuple[Ints, Ints, Ints]:
    """The k products each group bought most (by quantity; ties by lower product code).

    Returns:
        Parallel arrays (group, product, quantity), sorted by group then rank.
    """
    group = np.asarray(group, dtype=np.int64)
    product = np.asarray(product, dtype=np.int64)
    width = int(product.max()) + 1 if len(product) else 1
    key = group * width + product
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = _starts(key)
    totals = (
        np.add.reduceat(np.asarray(quantity, dtype=np.int64)[order], starts) if len(key) else key
    )
    g, p = key[starts] // width, key[starts] % width
    order = np.lexsort((p, -totals, g))
    g, p, totals = g[order], p[order], totals[order]
    starts = _starts(g)
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    keep = (rank < k) & (totals > 0)
    return g[keep], p[keep], totals[keep]
