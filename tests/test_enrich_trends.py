"""History kept by the enrichment (SQLite and PostgreSQL): segment changes, the RFM group
before, metric snapshots per shop/currency/period, their roll-up, cohorts and RFM flows.

Hand-made shop "s" (UTC, EUR), enriched as of 2026-03-15:
- p1 (c1): 2026-01-05 100 EUR, 2026-01-20 50 EUR, 2026-03-02 80 EUR with 30 refunded
- p2 (c2): 2026-02-10 40 EUR; 2026-02-11 25 USD
- p3 (c3): 2026-03-03 10 EUR; 2026-03-04 60 EUR fully refunded (not a purchase)
- guest without email: 2026-02-10 20 EUR (an order, no customer)
EUR months: Jan: orders 2, revenue 150, customers 1 (new 1), frequency 2, to date 1, repeat 1.
Feb: orders 2 (p2 + guest), revenue 60, customers 1 (new), frequency 1, to date 2, repeat 1.
Mar (to the 15th): orders 2, revenue 60, customers 2 (p1 returning, p3 new), to date 3,
repeat 1 (p1; p3's refunded order does not count). USD Feb: 1 order 25, 1 new customer.
Cohorts (any currency): Jan {p1}: Jan 1, Feb 0, Mar 1; Feb {p2}: Feb 1, Mar 0; Mar {p3}: 1.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import func, select

from shopcrm.config.load import parse_config
from shopcrm.enrich import trends
from shopcrm.enrich.pipeline import run_enrich
from shopcrm.records import CustomerRecord, OrderRecord
from shopcrm.store import history
from shopcrm.store.models import Customer, MetricSnapshot, SegmentChange
from shopcrm.store.upsert import ensure_shop, upsert_customers, upsert_orders

AS_OF = date(2026, 3, 15)
NOW = datetime(2026, 3, 15, 23, tzinfo=UTC)


def config(*shops: str, rule: str = "orders_count >= 1"):
    return parse_config(
        {
            "shops": [{"name": s, "platform": "csv", "path": s, "currency": "EUR"} for s in shops],
            "segments": [{"name": "moved", "rule": rule}],
        }
    )


def utc(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 12, tzinfo=UTC)


def load(store, shop: str = "s") -> None:
    def o(pid, day, total, customer=None, currency="EUR", refunded="0", email=None):
        return OrderRecord(
            f"{shop}-{pid}",
            day,
            NOW,
            currency,
            Decimal(total),
            Decimal(refunded),
            customer,
            email,
        )

    with store.session() as s:
        sh = ensure_shop(s, shop, "csv", now=NOW, currency="EUR", timezone="UTC")
        upsert_customers(
            s, sh, [CustomerRecord(c, NOW, email=f"{c}@{shop}.x") for c in ("c1", "c2", "c3")], NOW
        )
        upsert_orders(
            s,
            sh,
            [
                o("1", utc(2026, 1, 5), "100", "c1"),
                o("2", utc(2026, 1, 20), "50", "c1"),
                o("3", utc(2026, 3, 2), "80", "c1", refunded="30"),
                o("4", utc(2026, 2, 10), "40", "c2"),
                o("5", utc(2026, 2, 11), "25", "c2", currency="USD"),
                o("6", utc(2026, 3, 3), "10", "c3"),
                o("7", utc(2026, 3, 4), "60", "c3", refunded="60"),
                o("8", utc(2026, 2, 10), "20"),
            ],
            NOW,
        )


def _measures(snap: history.Snapshot) -> tuple:
    return (
        snap.orders,
        snap.net_revenue,
        snap.customers,
        snap.new_customers,
        snap.returning_customers,
        snap.purchase_frequency,
        snap.customers_to_date,
        snap.repeat_customers_to_date,
    )


def test_month_snapshots_from_the_orders(store):
    load(store)
    run_enrich(store, config("s"), as_of=AS_OF, now=NOW)
    snaps = {(s.currency, s.period_end): s for s in history.metric_snapshots(store, "s")}
    assert set(snaps) == {
        ("EUR", date(2026, 1, 31)),
        ("EUR", date(2026, 2, 28)),
        ("EUR", date(2026, 3, 31)),
        ("USD", date(2026, 2, 28)),
        ("USD", date(2026, 3, 31)),  # every month from the currency's first to the as-of's
    }
    assert _measures(snaps["EUR", date(2026, 1, 31)]) == (2, Decimal(150), 1, 1, 0, 2.0, 1, 1)
    assert _measures(snaps["EUR", date(2026, 2, 28)]) == (2, Decimal(60), 1, 1, 0, 1.0, 2, 1)
    assert _measures(snaps["EUR", date(2026, 3, 31)]) == (2, Decimal(60), 2, 1, 1, 1.0, 3, 1)
    assert _measures(snaps["USD", date(2026, 2, 28)]) == (1, Decimal(25), 1, 1, 0, 1.0, 1, 0)
    march = snaps["EUR", date(2026, 3, 31)]
    assert march.average_order_value == Decimal(30)
    assert march.repeat_purchase_rate == pytest.approx(1 / 3)
    assert march.as_of == AS_OF
    # the month holding the as-of date has this enrichment's segment counts, back months none
    assert march.segments["moved"] == 3
    assert sum(march.rfm_groups.values()) == 3
    assert snaps["EUR", date(2026, 1, 31)].segments is None
    assert snaps["USD", date(2026, 2, 28)].segments is None
    days = history.metric_snapshots(store, "s", period="day")
    assert [(d.currency, d.period_end, d.orders, d.customers_to_date) for d in days] == [
        ("EUR", AS_OF, 0, 3),
        ("USD", AS_OF, 0, 1),
    ]
    assert days[0].segments == march.segments


def test_a_rerun_writes_nothing_and_a_later_run_keeps_completed_months(store):
    load(store)
    run_enrich(store, config("s"), as_of=AS_OF, now=NOW)
    before = history.metric_snapshots(store, "s")
    with store.session() as s:
        stamps = s.execute(select(func.max(MetricSnapshot.computed_at))).scalar_one()
        changes = s.execute(select(func.count()).select_from(SegmentChange)).scalar_one()
    run_enrich(store, config("s"), as_of=AS_OF, now=NOW + timedelta(hours=1))
    with store.session() as s:
        assert s.execute(select(func.max(MetricSnapshot.computed_at))).scalar_one() == stamps
        assert s.execute(select(func.count()).select_from(SegmentChange)).scalar_one() == changes
    assert history.metric_snapshots(store, "s") == before
    # a refund of a January order after January was seen complete leaves January alone;
    # March, still open, follows the data
    with store.session() as s:
        sh = ensure_shop(s, "s", "csv", now=NOW)
        upsert_orders(
            s,
            sh,
            [OrderRecord("s-2", utc(2026, 1, 20), NOW, "EUR", Decimal(50), Decimal(50), "c1")],
            NOW + timedelta(days=1),
        )
    run_enrich(store, config("s"), as_of=date(2026, 4, 2), now=NOW + timedelta(days=18))
    snaps = {(s.currency, s.period_end): s for s in history.metric_snapshots(store, "s")}
    assert snaps["EUR", date(2026, 1, 31)] == before[0]
    assert snaps["EUR", date(2026, 3, 31)].as_of == date(2026, 4, 2)
    assert snaps["EUR", date(2026, 3, 31)].segments == before[2].segments  # as seen in March
    assert snaps["EUR", date(2026, 4, 30)].orders == 0


def test_rollup_adds_shops_per_currency(store):
    load(store, "s")
    load(store, "t")
    run_enrich(store, config("s", "t"), as_of=AS_OF, now=NOW)
    every = history.metric_snapshots(store, None)
    assert {s.shop for s in every} == {"s", "t"}
    rolled = {(s.currency, s.period_end): s for s in history.rollup(every)}
    assert {s.shop for s in rolled.values()} == {"all"}
    march = rolled["EUR", date(2026, 3, 31)]
    assert _measures(march) == (4, Decimal(120), 4, 2, 2, 1.0, 6, 2)
    assert march.average_order_value == Decimal(30)
    assert march.repeat_purchase_rate == pytest.approx(1 / 3)
    assert march.segments["moved"] == 6
    assert rolled["USD", date(2026, 2, 28)].net_revenue == Decimal(50)  # never mixed with EUR


def test_cohort_retention(store):
    load(store)
    run_enrich(store, config("s"), as_of=AS_OF, now=NOW)
    rows = [
        (r.cohort_month, r.months_since, r.customers, r.active)
        for r in history.cohort_retention(store, "s")
    ]
    assert rows == [
        (date(2026, 1, 1), 0, 1, 1),
        (date(2026, 1, 1), 1, 1, 0),
        (date(2026, 1, 1), 2, 1, 1),
        (date(2026, 2, 1), 0, 1, 1),
        (date(2026, 2, 1), 1, 1, 0),
        (date(2026, 3, 1), 0, 1, 1),
    ]
    assert [r.cohort_month for r in history.cohort_retention(store, "s", months=1)] == [
        date(2026, 3, 1)
    ]


def _ids(store) -> dict[str, int]:
    with store.session() as s:
        return dict(s.execute(select(Customer.platform_id, Customer.id)).all())


def test_segment_changes_previous_rfm_group_and_flows(store):
    """c1's orders are all refunded by September: it leaves its RFM group, which becomes its
    previous one (a rule field too); c2 stays in its group, whose days count up."""
    load(store)
    run_enrich(store, config("s"), as_of=AS_OF, now=NOW)
    ids = _ids(store)
    c1, c2 = ids["c1"], ids["c2"]
    march = history.rfm_state(store, [c1, c2])
    assert march[c1].previous is None
    assert march[c1].since == NOW
    with store.session() as s:
        sh = ensure_shop(s, "s", "csv", now=NOW)
        refunds = [
            (f"s-{n}", utc(*day), total)
            for n, day, total in (
                (1, (2026, 1, 5), 100),
                (2, (2026, 1, 20), 50),
                (3, (2026, 3, 2), 80),
            )
        ]
        upsert_orders(
            s,
            sh,
            [OrderRecord(p, d, NOW, "EUR", Decimal(t), Decimal(t), "c1") for p, d, t in refunds],
            NOW + timedelta(days=1),
        )
    later = datetime(2026, 9, 1, 23, tzinfo=UTC)
    group = march[c1].group
    rule = f'previous_rfm_segment == "{group}" or days_in_rfm_segment >= 171'
    run_enrich(store, config("s", rule=rule), as_of=date(2026, 9, 1), now=later)
    september = history.rfm_state(store, [c1, c2])
    assert september[c1] == history.RfmState(None, group, None)
    assert september[c2] == march[c2]  # unchanged: the same group since March
    changes = history.segment_history(store, [c1, c2])
    assert [(c.segment, c.entered, c.at) for c in changes[c1] if c.segment.startswith("rfm-")] == [
        (f"rfm-{group}", True, NOW),
        (f"rfm-{group}", False, later),
    ]
    # c1 stays in "moved" by its previous group; c2, 170 days in its group (2026-03-15 to
    # 2026-09-01), leaves it, and is back a day later
    moved = {c: [(x.entered, x.at) for x in changes[c] if x.segment == "moved"] for c in (c1, c2)}
    assert moved == {c1: [(True, NOW)], c2: [(True, NOW), (False, later)]}
    next_day = later + timedelta(days=1)
    run_enrich(store, config("s", rule=rule), as_of=date(2026, 9, 2), now=next_day)
    back = history.segment_history(store, [c2])[c2]
    assert [(x.entered, x.at) for x in back if x.segment == "moved"][-1] == (True, next_day)
    assert history.segment_flows(store, "s", NOW + timedelta(days=1)) == [(group, None, 1)]
    assert history.segment_flows(store, "s", later + timedelta(seconds=1)) == []


def test_unknown_shop_is_a_usage_error(store):
    with pytest.raises(history.UsageError, match="'nope'"):
        history.metric_snapshots(store, "nope")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_period_measures_match_their_definition(seed):
    """Random purchases: each measure recounted per period from its definition, in Python."""
    rng = np.random.default_rng(seed)
    n = 400
    buyer = rng.integers(-1, 40, n)
    day = rng.integers(20_000, 20_200, n)
    net = rng.integers(1, 10_000_000, n)
    month = trends.month_numbers(day)
    months = np.arange(int(month.min()), int(month.max()) + 1)
    got = trends.period_measures(
        trends.buyers(buyer, day), month, net, months, trends.month_numbers
    )
    rows = list(zip(buyer.tolist(), day.tolist(), month.tolist(), net.tolist(), strict=True))
    for i, p in enumerate(months.tolist()):
        here = [r for r in rows if r[2] == p]
        people = {r[0] for r in here if r[0] >= 0}
        firsts = {
            b: min(r[1] for r in rows if r[0] == b) for b in {r[0] for r in rows if r[0] >= 0}
        }
        days = {b: sorted(r[1] for r in rows if r[0] == b) for b in firsts}
        new = {b for b in people if trends.month_numbers(np.array([firsts[b]]))[0] == p}
        upto = [b for b in firsts if trends.month_numbers(np.array([firsts[b]]))[0] <= p]
        repeat = [
            b
            for b in firsts
            if len(days[b]) > 1 and trends.month_numbers(np.array([days[b][1]]))[0] <= p
        ]
        assert got.orders[i] == len(here)
        assert got.net_micros[i] == sum(r[3] for r in here)
        assert got.customers[i] == len(people)
        assert got.new_customers[i] == len(new)
        assert got.buyer_orders[i] == sum(1 for r in here if r[0] >= 0)
        assert got.customers_to_date[i] == len(upto)
        assert got.repeat_to_date[i] == len(repeat)
