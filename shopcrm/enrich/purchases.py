"""Which orders count as purchases, and on which calendar day they fall.

An order counts as a purchase when all of these hold (docs/enrichment.md "What counts"):
- it is not deleted upstream and not cancelled (`cancelled_at` is empty);
- its financial status is not one of VOID_STATUSES (case-insensitive): the money never moved;
- its net value, total minus refunds, is above zero: a fully refunded order and a free order
  are not purchases; a partly refunded order counts with its net value;
- it was placed on or before the as-of date, in the shop's timezone.
Pending, authorised and partly paid orders count: CSV and POS exports often carry no status.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from shopcrm.enrich.codes import distinct_codes

VOID_STATUSES = ("voided", "failed", "cancelled")
MICROS_PER_DAY = 86_400_000_000
_SECONDS_PER_DAY = 86_400
_EPOCH_DAY = date(1970, 1, 1)


def is_purchase(
    cancelled: NDArray[np.bool_],
    void_status: NDArray[np.bool_],
    net_micros: NDArray[np.int64],
    local_day: NDArray[np.int64],
    as_of_day: int,
) -> NDArray[np.bool_]:
    """The purchase rule of the module docstring, over arrays of orders."""
    return ~cancelled & ~void_status & (net_micros > 0) & (local_day <= as_of_day)


def local_days(created_us: NDArray[np.int64], timezone: str | None) -> NDArray[np.int64]:
    """Calendar day (days since 1970-01-01) of each UTC instant in `timezone` (UTC when None).

    The UTC offset is looked up at the start of each distinct UTC day and of the day after; on
    the few days where the two differ, the change is located to the second by bisection (tz
    offsets change on whole seconds). So a few Python look-ups per day of data give the exact
    offset of every instant, provided no zone changes its offset twice within one day (the
    closest two changes of the tz database, 1939 in Africa/Freetown, are four days apart).
    """
    created_us = np.asarray(created_us, dtype=np.int64)
    if timezone is None or timezone == "UTC" or len(created_us) == 0:
        return created_us // MICROS_PER_DAY
    zone = ZoneInfo(timezone)
    starts_us, offsets_us = _offset_steps(zone, distinct_codes(created_us // MICROS_PER_DAY)[0])
    step = np.searchsorted(starts_us, created_us, side="right") - 1
    return (created_us + offsets_us[step]) // MICROS_PER_DAY


def _offset_steps(
    zone: ZoneInfo, days: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The UTC offset on the given UTC days as steps: first instant (microseconds), offset.

    Offset changes between two of the days are not looked for: no instant falls there.
    """
    bounds = np.union1d(days, days + 1) * _SECONDS_PER_DAY
    offset = dict(zip(bounds.tolist(), [_offset_us(zone, s) for s in bounds.tolist()], strict=True))
    steps: list[tuple[int, int]] = []
    for start in (days * _SECONDS_PER_DAY).tolist():
        end = start + _SECONDS_PER_DAY
        steps.append((start, offset[start]))
        if offset[end] != offset[start]:
            steps.append((_change_second(zone, start, end, offset[start]), offset[end]))
    seconds, offsets = (np.array(column, dtype=np.int64) for column in zip(*steps, strict=True))
    keep = np.r_[True, offsets[1:] != offsets[:-1]]
    return seconds[keep] * 1_000_000, offsets[keep]


def _change_second(zone: ZoneInfo, low: int, high: int, before: int) -> int:
    """The second in (low, high] where the offset changes from `before` (one change there)."""
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_us(zone, middle) == before:
            low = middle
        else:
            high = middle
    return high


def _offset_us(zone: ZoneInfo, second: int) -> int:
    offset = datetime.fromtimestamp(second, zone).utcoffset()
    assert offset is not None
    return offset // timedelta(microseconds=1)


def day_number(day: date) -> int:
    return (day - _EPOCH_DAY).days


def day_of(number: int) -> date:
    return _EPOCH_DAY + timedelta(days=number)


def today_in(timezone: str | None, now: datetime) -> date:
    """The calendar date at `now` in `timezone` (UTC when None)."""
    return now.astimezone(ZoneInfo(timezone) if timezone else UTC).date()
