"""Enrichment over a real store (SQLite and PostgreSQL): identity, history, RFM, segments.

The fixture below has hand-computed answers. Shop "a" (EUR, Europe/Berlin), as of 2026-03-01:
- c1 (" Ann@Example.com "): o1 2026-01-10 10:00Z 100 and o2 15:00Z 50 (same day), o3 2026-02-09
  80 with 30 refunded; o4 cancelled, o5 fully refunded, o6 after the as-of date, o7 in USD.
  -> 3 orders, 200 spent, AOV 66.666667, mean gap 30 days / 2 = 15, 20 days since the last.
- c2 (no email): o8 at 2026-02-28 23:30Z = 2026-03-01 00:30 in Berlin (counts, 0 days ago);
  o9 at 2026-03-01 23:30Z = 2026-03-02 in Berlin (after the as-of date, ignored).
- c3 ("bob@example.com"): one VOIDED order: no purchase.
- guests: g1 " ANN@example.com" 30 EUR (Ann's person, not c1), g2 without email (nobody).
Shop "b": d1 ("ann@example.com") 25 EUR: Ann again.
RFM of a's buyers (c1: 20 days, 3 orders, 200; c2: 0 days, 1 order, 10): c1 R2 F4 M4 ->
at-risk, c2 R4 F2 M2 -> potential-loyalist.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, text

from shopcrm.config import parse_config
from shopcrm.connectors.base import CustomerRecord, OrderLineRecord, OrderRecord
from shopcrm.enrich import run_enrich
from shopcrm.enrich.rfm import SEGMENTS, quintile_scores, segment_names
from shopcrm.store.emails import normalise_email
from shopcrm.store.models import (
    Customer,
    CustomerMetrics,
    Order,
    Person,
    PersonMetrics,
    SegmentMembership,
)
from shopcrm.store.upsert import ensure_shop, upsert_customers, upsert_orders

AS_OF = date(2026, 3, 1)
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
SYNCED = datetime(2026, 3, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def order(pid: str, created: datetime, total: str, **kw: Any) -> OrderRecord:
    kw.setdefault("currency", "EUR")
    return OrderRecord(pid, created, SYNCED, total=Decimal(total), **kw)


def line(title: str, quantity: int) -> OrderLineRecord:
    return OrderLineRecord(quantity=quantity, unit_price=Decimal("1"), title=title)


CONFIG = parse_config(
    {
        "shops": [
            {
                "name": "a",
                "platform": "csv",
                "path": "a",
                "currency": "EUR",
                "timezone": "Europe/Berlin",
            },
            {"name": "b", "platform": "csv", "path": "b", "currency": "EUR"},
        ],
        "segments": [{"name": "big", "rule": "total_spent > 100"}],
    }
)


def load_fixture(store) -> None:
    with store.session() as s:
        a = ensure_shop(s, "a", "csv", now=SYNCED, currency="EUR", timezone="Europe/Berlin")
        b = ensure_shop(s, "b", "csv", now=SYNCED, currency="EUR")
        upsert_customers(
            s,
            a,
            [
                CustomerRecord("c1", SYNCED, email=" Ann@Example.com "),
                CustomerRecord("c2", SYNCED),
                CustomerRecord("c3", SYNCED, email="bob@example.com"),
            ],
            SYNCED,
        )
        upsert_orders(
            s,
            a,
            [
                order(
                    "o1",
                    utc(2026, 1, 10, 10),
                    "100",
                    customer_platform_id="c1",
                    lines=(line("Mug", 2),),
                ),
                order(
                    "o2",
                    utc(2026, 1, 10, 15),
                    "50",
                    customer_platform_id="c1",
                    lines=(line("Tea", 1),),
                ),
                order(
                    "o3",
                    utc(2026, 2, 9, 10),
                    "80",
                    refunded=Decimal(30),
                    customer_platform_id="c1",
                    lines=(line("Mug", 1),),
                ),
                order(
                    "o4",
                    utc(2026, 2, 15),
                    "500",
                    customer_platform_id="c1",
                    cancelled_at=utc(2026, 2, 16),
                ),
                order(
                    "o5", utc(2026, 2, 20), "40", refunded=Decimal(40), customer_platform_id="c1"
                ),
                order("o6", utc(2026, 3, 5), "999", customer_platform_id="c1"),
                order("o7", utc(2026, 2, 25), "70", currency="USD", customer_platform_id="c1"),
                order("o8", utc(2026, 2, 28, 23, 30), "10", customer_platform_id="c2"),
                order("o9", utc(2026, 3, 1, 23, 30), "20", customer_platform_id="c2"),
                order(
                    "o10",
                    utc(2026, 2, 1),
                    "15",
                    customer_platform_id="c3",
                    financial_status="VOIDED",
                ),
                order("g1", utc(2026, 2, 1), "30", email=" ANN@example.com"),
                order("g2", utc(2026, 2, 2), "12"),
            ],
            SYNCED,
        )
        upsert_customers(s, b, [CustomerRecord("d1", SYNCED, email="ann@example.com")], SYNCED)
        upsert_orders(s, b, [order("b1", utc(2026, 2, 2), "25", customer_platform_id="d1")], SYNCED)


def metrics(store) -> dict[str, CustomerMetrics]:
    with store.session() as s:
        rows = s.execute(select(Customer.platform_id, CustomerMetrics).join(CustomerMetrics)).all()
    return dict(rows)


def memberships(store) -> dict[tuple[str, str], date]:
    with store.session() as s:
        rows = s.execute(
            select(Customer.platform_id, SegmentMembership.segment, SegmentMembership.since).join(
                SegmentMembership, SegmentMembership.customer_id == Customer.id
            )
        ).all()
    return {(pid, seg): since for pid, seg, since in rows}


def persons(store) -> dict[str, int | None]:
    """Platform id (customers and orders) -> person id; an order's is its customer's."""
    with store.session() as s:
        out = dict(s.execute(select(Customer.platform_id, Customer.person_id)).all())
        for platform_id, own, through in s.execute(
            select(Order.platform_id, Order.person_id, Customer.person_id).outerjoin(
                Customer,
                (Customer.shop_id == Order.shop_id)
                & (Customer.platform_id == Order.customer_platform_id),
            )
        ).all():
            assert own is None or through is None  # a customer's order keeps no link of its own
            out[platform_id] = through if through is not None else own
    return out


@pytest.fixture
def enriched(store):
    load_fixture(store)
    report = run_enrich(store, CONFIG, as_of=AS_OF, now=NOW)
    return store, report


def test_customer_history(enriched):
    store, _ = enriched
    m = metrics(store)
    c1 = m["c1"]
    assert c1.currency == "EUR"
    assert c1.orders_count == 3
    assert c1.total_spent == Decimal("200")
    assert c1.average_order_value == Decimal("66.666667")
    assert c1.first_order_at == utc(2026, 1, 10, 10)
    assert c1.last_order_at == utc(2026, 2, 9, 10)
    assert c1.mean_days_between_orders == pytest.approx(15.0)
    assert c1.days_since_last_order == 20
    assert c1.top_products == ["Mug", "Tea"]
    c2 = m["c2"]
    assert (c2.orders_count, c2.total_spent, c2.days_since_last_order) == (1, Decimal("10"), 0)
    assert c2.mean_days_between_orders is None
    c3 = m["c3"]
    assert (c3.orders_count, c3.total_spent, c3.first_order_at, c3.recency_score) == (
        0,
        Decimal(0),
        None,
        None,
    )
    assert c3.average_order_value is None


def test_rfm_scores_and_segments(enriched):
    store, _ = enriched
    m = metrics(store)
    assert (m["c1"].recency_score, m["c1"].frequency_score, m["c1"].monetary_score) == (2, 4, 4)
    assert m["c1"].rfm_segment == "at-risk"
    assert (m["c2"].recency_score, m["c2"].frequency_score, m["c2"].monetary_score) == (4, 2, 2)
    assert m["c2"].rfm_segment == "potential-loyalist"
    assert m["d1"].rfm_segment == "need-attention"  # a single buyer is the middle of its shop


def test_segments_and_model_status(enriched):
    store, report = enriched
    assert set(memberships(store)) == {
        ("c1", "rfm-at-risk"),
        ("c1", "big"),
        ("c2", "rfm-potential-loyalist"),
        ("c2", "one-time"),
        ("c2", "new"),
        ("d1", "rfm-need-attention"),
        ("d1", "one-time"),
        ("d1", "new"),
    }
    shop_a = next(s for s in report.shops if s.shop == "a")
    assert shop_a.model_status == "insufficient-data"
    assert "2 buyers, needs at least 500" in shop_a.model_message
    assert shop_a.other_currency_orders == 1
    assert metrics(store)["c1"].p_alive is None
    assert metrics(store)["c1"].predicted_clv is None


def test_identity_links_shops_and_guests(enriched):
    store, report = enriched
    p = persons(store)
    ann = p["c1"]
    assert ann is not None
    assert p["o1"] == p["g1"] == p["d1"] == p["b1"] == ann
    assert p["c2"] not in (None, ann)
    assert p["o8"] == p["c2"]
    assert p["c3"] not in (None, ann, p["c2"])
    assert p["g2"] is None
    with store.session() as s:
        emails = sorted((e or "") for e in s.execute(select(Person.email_normalised)).scalars())
    assert emails == ["", "ann@example.com", "bob@example.com"]
    assert report.identity.persons == 3


def test_person_history_per_currency(enriched):
    store, _ = enriched
    with store.session() as s:
        rows = {
            (m.currency): m
            for m in s.execute(
                select(PersonMetrics)
                .join(Person)
                .where(Person.email_normalised == "ann@example.com")
            ).scalars()
        }
    assert set(rows) == {"EUR", "USD"}  # never summed across currencies
    eur = rows["EUR"]
    assert (eur.orders_count, eur.total_spent) == (5, Decimal("255"))  # c1 x3, guest g1, shop b
    assert eur.first_order_at == utc(2026, 1, 10, 10)
    assert (rows["USD"].orders_count, rows["USD"].total_spent) == (1, Decimal("70"))


def snapshot(store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return {
            table: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {table}")).all()), key=repr)  # noqa: S608
            for table in ("person", "customer_metrics", "person_metrics", "segment_membership")
        } | {"links": persons(store)}


def test_rerun_is_idempotent(enriched):
    store, _ = enriched
    before = snapshot(store)
    report = run_enrich(store, CONFIG, as_of=AS_OF, now=NOW)
    assert snapshot(store) == before
    assert report.identity.persons_created == 0
    assert report.identity.links_changed == 0
    assert all(s.joined == 0 and s.left == 0 for s in report.shops)


def test_email_change_moves_person_and_memberships_keep_their_date(enriched):
    store, _ = enriched
    ann = persons(store)["c1"]
    later = datetime(2026, 3, 2, tzinfo=UTC)
    with store.session() as s:
        a = ensure_shop(s, "a", "csv", now=later)
        upsert_customers(s, a, [CustomerRecord("c1", later, email="ann.new@example.com")], later)
        upsert_customers(s, a, [CustomerRecord("c3", later)], later)  # email removed
    run_enrich(store, CONFIG, as_of=date(2026, 3, 2), now=NOW)
    p = persons(store)
    assert p["c1"] not in (None, ann)
    assert p["o1"] == p["o3"] == p["c1"]  # its orders moved with it
    assert p["g1"] == p["d1"] == ann  # the guest checkout and the other shop stay with the email
    assert p["c3"] is not None
    assert p["c3"] != p["c1"]
    with store.session() as s:
        bob = s.execute(select(Person).where(Person.email_normalised == "bob@example.com")).first()
    assert bob is None  # nobody points to it any more
    m = memberships(store)
    assert m[("c1", "big")] == AS_OF  # still a member: keeps the date it joined
    assert m[("c2", "new")] == AS_OF
    assert ("c2", "one-time") not in m  # o9 (2026-03-02 in Berlin) now counts: two orders


def test_guest_order_follows_its_customer_once_the_customer_is_stored(store):
    """An order whose customer is not stored yet is a guest checkout of its email's person;
    when the customer arrives, the order belongs to the customer's person and keeps no link."""
    with store.session() as s:
        a = ensure_shop(s, "a", "csv", now=SYNCED, currency="EUR", timezone="Europe/Berlin")
        upsert_orders(
            s,
            a,
            [order("g3", utc(2026, 2, 3), "40", customer_platform_id="c9", email="carol@x.com")],
            SYNCED,
        )
        upsert_customers(s, a, [CustomerRecord("h1", SYNCED, email="#hash@x.com")], SYNCED)
    run_enrich(store, CONFIG, as_of=AS_OF, now=NOW)
    carol = persons(store)["g3"]
    assert carol is not None
    with store.session() as s:
        upsert_customers(s, a, [CustomerRecord("c9", SYNCED, email="carol.new@x.com")], SYNCED)
    report = run_enrich(store, CONFIG, as_of=AS_OF, now=NOW)
    p = persons(store)
    assert p["g3"] == p["c9"] != carol
    assert report.identity.persons_deleted == 1  # carol@x.com: nobody points to it any more
    with store.session() as s:
        keys = set(s.execute(select(Person.email_normalised)).scalars())
    assert keys == {"carol.new@x.com", "#hash@x.com"}  # a real key may start with '#'


def test_single_shop_run(enriched):
    store, _ = enriched
    report = run_enrich(store, CONFIG, shop_name="b", as_of=AS_OF, now=NOW)
    assert [s.shop for s in report.shops] == ["b"]


EMAILS = [
    (" Ann@Example.COM ", "ann@example.com"),
    ("\tbob@x.com\n", "bob@x.com"),
    ("ÄNNE@Beispiel.de", "änne@beispiel.de"),
    ("\u00a0zoë@x.com", "zoë@x.com"),
    ("a+tag@x.com", "a+tag@x.com"),
    ("first.last@gmail.com", "first.last@gmail.com"),
    ("none", None),
    ("   ", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("raw", "expected"), EMAILS)
def test_normalise_email(raw, expected):
    assert normalise_email(raw) == expected


def test_store_normalisation_matches_the_rule(store):
    """The upserts store exactly `normalise_email` of every email, on both databases."""
    with store.session() as s:
        shop = ensure_shop(s, "a", "csv", now=SYNCED)
        upsert_customers(
            s,
            shop,
            [CustomerRecord(f"c{i}", SYNCED, email=e) for i, (e, _) in enumerate(EMAILS)],
            SYNCED,
        )
        upsert_orders(
            s,
            shop,
            [order(f"g{i}", SYNCED, "1", email=e) for i, (e, _) in enumerate(EMAILS)],
            SYNCED,
        )
    run_enrich(store, CONFIG, shop_name="a", as_of=AS_OF, now=NOW)
    with store.session() as s:
        stored = dict(s.execute(select(Customer.platform_id, Customer.email_normalised)).all())
        stored_orders = dict(s.execute(select(Order.platform_id, Order.email_normalised)).all())
    for i, (_, expected) in enumerate(EMAILS):
        assert stored[f"c{i}"] == expected
        assert stored_orders[f"g{i}"] == expected


@pytest.mark.parametrize(
    ("values", "scores"),
    [
        ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
        ([7, 7, 7, 7], [3, 3, 3, 3]),  # all tied: the middle
        ([5, 5, 5, 5, 1], [4, 4, 4, 4, 1]),  # ties share the mid-rank percentile (0.6)
        ([3, 1, 2], [5, 1, 3]),
        ([42], [3]),
        ([], []),
    ],
)
def test_quintile_scores_with_ties(values, scores):
    assert quintile_scores(np.array(values, dtype=np.int64)).tolist() == scores
    assert quintile_scores(np.array(values[::-1], dtype=np.int64)).tolist() == scores[::-1]


def test_segment_map_is_complete():
    r, f, m = (a.ravel() for a in np.meshgrid(*[np.arange(1, 6)] * 3, indexing="ij"))
    names = segment_names(r, f, m)
    assert set(names) == set(SEGMENTS)
    cells = {
        (1, 1, 1): "lost",
        (5, 5, 5): "champions",
        (5, 1, 1): "new",
        (4, 1, 1): "promising",
        (3, 3, 3): "need-attention",
        (1, 5, 5): "cannot-lose",
        (2, 2, 1): "hibernating",
        (4, 5, 4): "loyal",
        (3, 1, 2): "about-to-sleep",
        (2, 3, 4): "at-risk",
        (5, 2, 3): "potential-loyalist",
    }
    for (rr, ff, mm), name in cells.items():
        assert segment_names(np.array([rr]), np.array([ff]), np.array([mm]))[0] == name


def _us(*args: int) -> int:
    return int(utc(*args).timestamp()) * 1_000_000


def test_local_days_follow_the_shop_timezone_and_dst():
    from shopcrm.enrich.purchases import day_number, local_days

    created = np.array(
        [
            _us(2026, 2, 28, 22, 59),
            _us(2026, 2, 28, 23, 0),
            _us(2026, 7, 1, 21, 59),
            _us(2026, 7, 1, 22, 0),
        ]
    )
    days = local_days(created, "Europe/Berlin")  # +01:00 in winter, +02:00 in summer
    expected = [date(2026, 2, 28), date(2026, 3, 1), date(2026, 7, 1), date(2026, 7, 2)]
    assert days.tolist() == [day_number(d) for d in expected]
    assert local_days(created, None).tolist() == [
        day_number(d) for d in (date(2026, 2, 28),) * 2 + (date(2026, 7, 1),) * 2
    ]


def test_repeat_summary_counts_purchase_days():
    """c1 of the fixture: 100 + 50 on 01-10 (one purchase day of 150), 50 net on 02-09."""
    from shopcrm.enrich.history import repeat_summary
    from shopcrm.enrich.purchases import day_number

    days = np.array(
        [day_number(date(2026, 1, 10))] * 2
        + [day_number(date(2026, 2, 9)), day_number(date(2026, 2, 1))]
    )
    owners, summary = repeat_summary(
        group=np.array([0, 0, 0, 2]),
        created_us=np.array(
            [_us(2026, 1, 10, 10), _us(2026, 1, 10, 15), _us(2026, 2, 9, 10), _us(2026, 2, 1)]
        ),
        day=days,
        net_micros=np.array([100_000_000, 50_000_000, 50_000_000, 7_000_000]),
        n_groups=3,
        as_of_day=day_number(AS_OF),
    )
    assert owners.tolist() == [0, 2]  # group 1 bought nothing
    assert summary.frequency.tolist() == [1, 0]
    assert summary.recency.tolist() == [30, 0]
    assert summary.age.tolist() == [50, 28]
    assert summary.monetary[0] == pytest.approx(50.0)  # the repeat day only
    assert np.isnan(summary.monetary[1])
    assert summary.days_since_last.tolist() == [20, 28]
