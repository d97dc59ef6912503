"""CRM measures per period and cohort retention: pure functions over arrays of purchases.

Inputs are one shop's counted purchases (`purchases.is_purchase`), each with its buyer (a
person: the customer's, or a guest checkout's by email; -1 for a guest without email), its
period (a calendar day or month number in the shop's timezone) and its net value in integer
micro-units. Definitions (docs/enrichment.md "Trends"), for a period P:
- orders, net revenue: counted orders placed in P and their net values (guests included);
  average order value = net revenue / orders, rounded half up to the micro-unit;
- customers: buyers with an order in P; new: of those, buyers whose first order falls in P;
  returning: the others (they had bought before P);
- purchase frequency: orders of those buyers in P / customers;
- customers to date: buyers whose first order is in P or before; repeat customers to date:
  buyers whose second order is; repeat purchase rate: their ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shopcrm.enrich.codes import distinct_codes

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


def month_numbers(days: Ints) -> Ints:
    """The month (months since 1970-01) of each day number (days since 1970-01-01)."""
    return np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]").astype(np.int64)


def month_start(month: int) -> date:
    return np.datetime64(int(month), "M").astype("datetime64[D]").astype(date)


def month_end(month: int) -> date:
    return month_start(month + 1) - timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Measures:
    """One entry per period asked for (`periods`, ascending)."""

    periods: Ints
    orders: Ints
    net_micros: Ints
    customers: Ints
    new_customers: Ints
    buyer_orders: Ints
    customers_to_date: Ints
    repeat_to_date: Ints

    @property
    def returning_customers(self) -> Ints:
        return self.customers - self.new_customers

    @property
    def aov_micros(self) -> Ints:
        """-1 where there are no orders."""
        safe = np.maximum(self.orders, 1)
        return np.where(self.orders > 0, (2 * self.net_micros + safe) // (2 * safe), -1)

    @property
    def purchase_frequency(self) -> Floats:
        return _ratio(self.buyer_orders, self.customers)

    @property
    def repeat_purchase_rate(self) -> Floats:
        return _ratio(self.repeat_to_date, self.customers_to_date)


def _ratio(a: Ints, b: Ints) -> Floats:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.maximum(b, 1), np.nan)


def _per_period(index: Ints, valid: NDArray[np.bool_], n: int, weights: Ints | None = None) -> Ints:
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, index[valid], 1 if weights is None else weights[valid])
    return out


@dataclass(frozen=True, slots=True)
class Buyers:
    """Purchases' buyers coded 0.. (-1: unidentified), with each buyer's first and second
    purchase day (-1: no second), computed once for every kind of period."""

    code: Ints
    first_day: Ints
    second_day: Ints


def buyers(buyer: Ints, day: Ints) -> Buyers:
    """Code the buyers of these purchases and find their first two purchase days."""
    known = buyer >= 0
    code = np.full(len(buyer), -1, dtype=np.int64)
    codes, inverse = distinct_codes(buyer[known])
    code[known] = inverse
    n = len(codes)
    second = np.full(n, -1, dtype=np.int64)
    if not n:
        return Buyers(code, np.zeros(0, dtype=np.int64), second)
    d = day[known]
    low = int(d.min())
    bits = (int(d.max()) - low).bit_length()
    key = np.sort((code[known] << bits) | (d - low))  # one int64 sort, no lexsort
    c, p = key >> bits, (key & ((1 << bits) - 1)) + low
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    has = starts + 1 < len(c)
    has[has] = c[starts[has] + 1] == c[starts[has]]
    second[c[starts[has]]] = p[starts[has] + 1]
    return Buyers(code, p[starts], second)


def period_measures(
    b: Buyers, period: Ints, net_micros: Ints, periods: Ints, period_of_day: Any = None
) -> Measures:
    """The module docstring's measures of each of `periods` (ascending) from the purchases;
    `period_of_day` maps day numbers to the periods' numbers (None: periods are days)."""
    n = len(periods)
    of = period_of_day or (lambda days: days)
    at = np.minimum(np.searchsorted(periods, period), max(n - 1, 0))
    valid = (periods[at] == period) if n else np.zeros(len(period), bool)
    first = of(b.first_day)
    second = of(b.second_day[b.second_day >= 0])
    mine = valid & (b.code >= 0)
    width = n + 1
    pairs, _ = distinct_codes(b.code[mine] * width + at[mine])
    pair_code, pair_at = pairs // width, pairs % width
    is_new = periods[pair_at] == first[pair_code]
    everywhere = np.ones(len(pairs), dtype=bool)
    return Measures(
        periods=periods,
        orders=_per_period(at, valid, n),
        net_micros=_per_period(at, valid, n, net_micros),
        customers=_per_period(pair_at, everywhere, n),
        new_customers=_per_period(pair_at, is_new, n),
        buyer_orders=_per_period(at, mine, n),
        customers_to_date=np.searchsorted(np.sort(first), periods, side="right"),
        repeat_to_date=np.searchsorted(np.sort(second), periods, side="right"),
    )


@dataclass(frozen=True, slots=True)
class Cohorts:
    """One entry per (cohort, months since): the cohort's first-order month, its buyers, and
    how many of them bought in the month `months_since` after it."""

    cohort_month: Ints
    months_since: Ints
    customers: Ints
    active: Ints


def cohort_retention(buyer: Ints, month: Ints, last_month: int, months: int) -> Cohorts:
    """Cohorts of the buyers whose first order falls in the `months` months up to
    `last_month`, with every month since up to `last_month` (zeros included)."""
    known = buyer >= 0
    codes, code = distinct_codes(buyer[known])
    m = month[known]
    first = np.full(len(codes), np.iinfo(np.int64).max)
    np.minimum.at(first, code, m)
    low = last_month - months + 1
    cohort = np.arange(low, last_month + 1)
    size = np.bincount(np.clip(first - low, 0, None)[first >= low], minlength=months)
    width = months + 1
    pairs, _ = distinct_codes(code.astype(np.int64) * width + np.clip(m - low + 1, 0, months))
    pair_code, pair_slot = pairs // width, pairs % width - 1
    mine = (first[pair_code] >= low) & (pair_slot >= 0)
    start = first[pair_code[mine]] - low
    since = pair_slot[mine] - start
    cells = np.zeros((months, months), dtype=np.int64)
    np.add.at(cells, (start, since), 1)
    c, k = (axis.ravel() for axis in np.indices((months, months)))
    keep = (cohort[c] + k <= last_month) & (size[c] > 0)
    c, k = c[keep], k[keep]
    return Cohorts(cohort[c], k, size[c], cells[c, k])
