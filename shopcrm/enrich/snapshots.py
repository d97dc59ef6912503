"""Writes of a shop's metric snapshots and cohort retention rows (few rows: through Core).

A snapshot of a period is rewritten while the period holds the as-of date, and completed
once by the first enrichment after its end (`as_of` stored before `period_end`); a period
already seen complete is left as it was: the history is kept, not overwritten. Rows whose
values did not change are not written, so a rerun writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from shopcrm.store.models import CohortRetention, MetricSnapshot

_SNAPSHOT = MetricSnapshot.__table__  # type: ignore[attr-defined]
_COHORT = CohortRetention.__table__  # type: ignore[attr-defined]
SNAPSHOT_KEY = ("currency", "period", "period_end")
_KEPT_WHEN_COMPLETED = ("segments", "rfm_groups")  # a state seen then, not recomputable


def write_snapshots(
    conn: Connection, shop_id: int, rows: Sequence[dict[str, Any]], as_of: date, now: datetime
) -> int:
    """Insert or update these snapshot rows of a shop (rows of periods before the one holding
    `as_of` that are stored complete are left alone); returns how many were written."""
    stored = {
        tuple(r[k] for k in SNAPSHOT_KEY): dict(r)
        for r in conn.execute(select(_SNAPSHOT).where(_SNAPSHOT.c.shop_id == shop_id)).mappings()
    }
    written = 0
    for row in rows:
        key = tuple(row[k] for k in SNAPSHOT_KEY)
        old = stored.get(key)
        current = row["period_end"] >= as_of
        if old is not None and not current:
            if old["as_of"] >= old["period_end"]:
                continue  # complete when it was stored
            row = row | {k: old[k] for k in _KEPT_WHEN_COMPLETED}
        if old is not None and all(old[k] == v for k, v in row.items()):
            continue
        values = row | {"shop_id": shop_id, "computed_at": now}
        if old is None:
            conn.execute(insert(_SNAPSHOT).values(values))
        else:
            match = and_(
                _SNAPSHOT.c.shop_id == shop_id, *(_SNAPSHOT.c[k] == row[k] for k in SNAPSHOT_KEY)
            )
            conn.execute(update(_SNAPSHOT).where(match).values(values))
        written += 1
    return written


def write_cohorts(
    conn: Connection, shop_id: int, cells: dict[tuple[date, int], tuple[int, int]]
) -> int:
    """Make a shop's cohort rows exactly `cells` ((cohort month, months since) -> (customers,
    active)); returns how many rows changed."""
    c = _COHORT.c
    stored = {
        (r.cohort_month, r.months_since): (r.customers, r.active)
        for r in conn.execute(
            select(c.cohort_month, c.months_since, c.customers, c.active).where(
                c.shop_id == shop_id
            )
        )
    }

    def match(key: tuple[date, int]) -> Any:
        return and_(c.shop_id == shop_id, c.cohort_month == key[0], c.months_since == key[1])

    gone = [key for key in stored if key not in cells]
    for key in gone:
        conn.execute(delete(_COHORT).where(match(key)))
    changed = [key for key, value in cells.items() if key in stored and stored[key] != value]
    for key in changed:
        customers, active = cells[key]
        conn.execute(update(_COHORT).where(match(key)).values(customers=customers, active=active))
    added = [
        {
            "shop_id": shop_id,
            "cohort_month": k[0],
            "months_since": k[1],
            "customers": v[0],
            "active": v[1],
        }
        for k, v in cells.items()
        if k not in stored
    ]
    if added:
        conn.execute(insert(_COHORT), added)
    return len(gone) + len(changed) + len(added)
