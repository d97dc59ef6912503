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

VOID_STATUSES = ("voided", "failed", "cancelled")
MICROS_PER_DAY = 86_400_000_000
_QUARTER_HOUR = 900_000_000
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

    The UTC offset is looked up once per distinct quarter hour: every offset change of the
    tz database since 1970 happens on a quarter hour, so this is exact and fast.
    """
    created_us = np.asarray(created_us, dtype=np.int64)
    if timezone is None or timezone == "UTC" or len(created_us) == 0:
        return created_us // MICROS_PER_DAY
    zone = ZoneInfo(timezone)
    quarters, inverse = np.unique(created_us // _QUARTER_HOUR, return_inverse=True)
    offsets = np.array(
        [_offset_us(zone, datetime.fromtimestamp(int(q) * 900, UTC)) for q in quarters.tolist()],
        dtype=np.int64,
    )
    return (created_us + offsets[inverse.ravel()]) // MICROS_PER_DAY


def _offset_us(zone: ZoneInfo, instant: datetime) -> int:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return int(offset / timedelta(microseconds=1))


def day_number(day: date) -> int:
    return (day - _EPOCH_DAY).days


def day_of(number: int) -> date:
    return _EPOCH_DAY + timedelta(days=number)


def today_in(timezone: str | None, now: datetime) -> date:
    """The calendar date at `now` in `timezone` (UTC when None)."""
    return now.astimezone(ZoneInfo(timezone) if timezone else UTC).date()
