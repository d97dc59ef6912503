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

import json
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


def _starts(*keys: Ints) -> Ints:
    """Indices where a run of equal keys begins, in arrays sorted by those keys."""
    if len(keys[0]) == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(len(keys[0]), dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


def _first_k(sorted_group: Ints, k: int) -> NDArray[np.bool_]:
    """Which entries are among the first k of their group, in an array sorted by group."""
    first = np.full(len(sorted_group), k > 0)
    if 0 < k < len(sorted_group):
        first[k:] = sorted_group[k:] != sorted_group[:-k]
    return first


def _time_order(group: Ints, created_us: Ints) -> Ints:
    """The permutation of np.lexsort((created_us, group)), several times faster.

    Group and time are packed into one int64 and argsorted stably (timsort: near linear on
    input already grouped, as orders usually come). When they do not fit in 63 bits the time
    is coarsened by a shift, and only the runs of equal packed keys are then ordered by time.
    """
    if len(group) == 0:
        return np.zeros(0, dtype=np.intp)
    g = group - group.min()
    t = created_us - created_us.min()
    time_bits = int(t.max()).bit_length()
    shift = max(0, int(g.max()).bit_length() + time_bits - 63)
    key = (g << (time_bits - shift)) | (t >> shift)
    order = np.argsort(key, kind="stable")
    if shift:
        _order_runs_by_time(order, key[order], created_us)
    return order


def _order_runs_by_time(order: Ints, sorted_key: Ints, created_us: Ints) -> None:
    """Sort, in place and stably, the runs of equal `sorted_key` in `order` by exact time."""
    same = sorted_key[1:] == sorted_key[:-1]
    if not same.any():
        return
    pos = np.flatnonzero(np.r_[same, False] | np.r_[False, same])
    run = np.cumsum(~np.r_[False, same][pos])
    members = order[pos]
    order[pos] = members[np.lexsort((created_us[members], run))]


def _sorted_rows(*columns: Ints, grouped: bool = False) -> list[Ints]:
    """The rows of `columns` sorted lexicographically, first column first.

    When the value ranges of the columns fit in 63 bits together the rows are packed into one
    int64 and sorted with np.sort: several times faster than np.lexsort and gathers. With
    `grouped` (first column already sorted) timsort is used: it only has to sort each group.
    """
    if len(columns[0]) == 0:
        return list(columns)
    lows = [int(c.min()) for c in columns]
    widths = [(int(c.max()) - low).bit_length() for c, low in zip(columns, lows, strict=True)]
    if sum(widths) > 63:
        order = np.lexsort(columns[::-1])
        return [c[order] for c in columns]
    packed = columns[0] - lows[0]
    for column, low, width in zip(columns[1:], lows[1:], widths[1:], strict=True):
        packed <<= width
        packed |= column - low if low else column
    packed.sort(kind="stable" if grouped else None)
    rows = []
    for low, width in zip(lows[:0:-1], widths[:0:-1], strict=True):
        row = packed & ((1 << width) - 1)
        row += low
        rows.append(row)
        packed >>= width
    packed += lows[0]
    return [packed, *rows[::-1]]


def _extreme_index(group: Ints, created_us: Ints, n_groups: int, pick: np.ufunc) -> Ints:
    """Per group, the index of its earliest (pick=np.minimum) or latest (np.maximum) purchase.

    Of purchases at that same time, the first or the last in input order: the ends of each
    group after a stable sort by group and time, found without sorting. A group without
    purchases gets len(group) (np.minimum) or -1 (np.maximum): both index a value appended.
    """
    earliest = pick is np.minimum
    limits = np.iinfo(np.int64)
    when = np.full(n_groups, limits.max if earliest else limits.min)
    pick.at(when, group, created_us)
    at = np.flatnonzero(created_us == when[group])
    index = np.full(n_groups, len(group) if earliest else -1)
    pick.at(index, group[at], at)
    return index


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
    group, created_us, day, net_micros = (
        np.asarray(a, dtype=np.int64) for a in (group, created_us, day, net_micros)
    )
    count = np.bincount(group, minlength=n_groups).astype(np.int64, copy=False)
    total = np.zeros(n_groups, dtype=np.int64)
    np.add.at(total, group, net_micros)
    first = _extreme_index(group, created_us, n_groups, np.minimum)
    last = _extreme_index(group, created_us, n_groups, np.maximum)
    padded_us, padded_day = np.append(created_us, 0), np.append(day, 0)
    first_us, last_us = padded_us[first], padded_us[last]
    first_day, last_day = padded_day[first], padded_day[last]
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
    order = _time_order(np.asarray(group, dtype=np.int64), np.asarray(created_us, dtype=np.int64))
    group, day, net = (np.asarray(a, dtype=np.int64)[order] for a in (group, day, net_micros))
    day_starts = _starts(group, day)
    if len(day_starts) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, RepeatSummary(empty, empty, empty, np.zeros(0), empty)
    day_value = np.add.reduceat(net, day_starts)
    day_group = group[day_starts]
    day_num = day[day_starts]
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
    g, p, q = _sorted_rows(*(np.asarray(a, dtype=np.int64) for a in (group, product, quantity)))
    starts = _starts(g, p)
    totals = np.add.reduceat(q, starts) if len(starts) else q
    bought = totals > 0
    g, negative, p = _sorted_rows(
        g[starts][bought], -totals[bought], p[starts][bought], grouped=True
    )
    keep = _first_k(g, k)
    return g[keep], p[keep], -negative[keep]


def top_products_json(
    line_group: Ints,
    line_product: Ints,
    line_quantity: Ints,
    labels: list[str],
    n_groups: int,
    k: int = 3,
) -> list[str]:
    """Per group 0..n_groups-1, its `top_products` as JSON text, e.g. '["Mug", "Tea"]'.

    That is "[" + ", ".join(json.dumps(label) in rank order) + "]", "[]" without purchases;
    lines with a group below 0 are ignored. Built without Python work per line: the labels
    are encoded once and every group's text comes out of one join and one split.
    """
    line_group = np.asarray(line_group, dtype=np.int64)
    mine = line_group >= 0
    g, p, _ = top_products(
        line_group[mine], np.asarray(line_product)[mine], np.asarray(line_quantity)[mine], k
    )
    return _json_lists(g, p, [json.dumps(label) for label in labels], n_groups)


def _json_lists(group: Ints, item: Ints, texts: list[str], n_groups: int) -> list[str]:
    """Per group, the JSON list of the texts of its items (arrays sorted by group).

    All lists are written by one join of precomputed pieces ("[" or ", " and an item's text;
    "]" or "[]" and a newline to end a group) and split at the newlines, which JSON texts
    never contain (json.dumps escapes them).
    """
    n = len(texts)
    pieces = np.array(
        ["[" + t for t in texts] + [", " + t for t in texts] + ["]\n", "[]\n"], dtype=object
    )
    later = np.zeros(len(group), dtype=bool)
    later[1:] = group[1:] == group[:-1]
    count = np.bincount(group, minlength=n_groups)
    tokens = np.empty(len(group) + n_groups, dtype=np.int64)  # items and one end per group
    tokens[np.arange(len(group)) + group] = item + n * later  # after the ends of groups < g
    tokens[np.cumsum(count) + np.arange(n_groups)] = np.where(count > 0, 2 * n, 2 * n + 1)
    return "".join(pieces[tokens].tolist()).split("\n")[:-1]
