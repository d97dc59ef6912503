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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, select, text, update

from shopcrm.config.load import parse_config
from shopcrm.enrich import dbio, pipeline, write
from shopcrm.enrich.codes import distinct_codes, find
from shopcrm.enrich.load import load_lines, load_store
from shopcrm.enrich.pipeline import run_enrich
from shopcrm.enrich.rfm import SEGMENTS, quintile_scores, segment_names
from shopcrm.enrich.write import fingerprints
from shopcrm.errors import StoreError
from shopcrm.records import CustomerRecord, OrderLineRecord, OrderRecord
from shopcrm.store.db import open_store
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


@contextmanager
def first_run(
    databases,
    as_of: date = AS_OF,
    now: datetime = NOW,
    change: Callable[[Any], None] | None = None,
) -> Iterator[Any]:
    """A fresh store of the same kind with the fixture (and `change`), enriched once: what
    a rerun over the same data must leave."""
    fresh = open_store(databases.empty())
    try:
        load_fixture(fresh)
        if change is not None:
            change(fresh)
        run_enrich(fresh, CONFIG, as_of=as_of, now=now)
        yield fresh
    finally:
        fresh.close()


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


def ann_history(store) -> dict[str, PersonMetrics]:
    with store.session() as s:
        return {
            (m.currency): m
            for m in s.execute(
                select(PersonMetrics)
                .join(Person)
                .where(Person.email_normalised == "ann@example.com")
            ).scalars()
        }


def test_person_history_per_currency(enriched):
    store, _ = enriched
    rows = ann_history(store)
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


def test_a_person_goes_only_when_no_row_at_all_points_to_it(enriched):
    """An order deleted upstream counts for nobody's history but still points to its person:
    the person stays until the row itself is gone (identity.py: persons no customer or order
    points to are deleted)."""
    store, _ = enriched
    with store.session() as s:
        a = ensure_shop(s, "a", "csv", now=SYNCED)
        upsert_orders(s, a, [order("g9", utc(2026, 2, 3), "5", email="zed@x.com")], SYNCED)
    run_enrich(store, CONFIG, as_of=AS_OF, now=NOW)
    zed = persons(store)["g9"]
    assert zed is not None
    with store.session() as s:
        s.execute(update(Order).where(Order.platform_id == "g9").values(deleted=True))
    report = run_enrich(store, CONFIG, as_of=AS_OF, now=NOW)
    assert report.identity.persons_deleted == 0
    assert persons(store)["g9"] == zed
    with store.session() as s:
        s.execute(delete(Order).where(Order.platform_id == "g9"))
    report = run_enrich(store, CONFIG, as_of=AS_OF, now=NOW)
    assert report.identity.persons_deleted == 1
    with store.session() as s:
        assert s.get(Person, zed) is None


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


def _state(store, *, stamps: bool = True) -> dict[str, Any]:
    """Metrics keyed by what identifies them across stores (platform ids, emails), not ids;
    without `computed_at` unless `stamps`, and without the RFM history (the group left before
    and since when: a rerun has a past a first run has not) nor the digest covering it."""

    def columns(model) -> str:
        skipped = {"previous_rfm_segment", "rfm_segment_since"}
        if model is CustomerMetrics:
            skipped.add("fingerprint")
        if not stamps:
            skipped.add("computed_at")
        names = [c.name for c in model.__table__.columns if c.name not in skipped]
        return ", ".join(f"m.{name}" for name in names)

    with store.engine.connect() as conn:
        customers = conn.execute(
            text(
                f"SELECT c.platform_id, {columns(CustomerMetrics)} FROM customer_metrics AS m "  # noqa: S608
                "JOIN customer AS c ON c.id = m.customer_id"
            )
        ).all()
        people = conn.execute(
            text(
                f"SELECT COALESCE(p.email_normalised, c.platform_id), {columns(PersonMetrics)} "  # noqa: S608
                "FROM person_metrics AS m JOIN person AS p ON p.id = m.person_id "
                "LEFT JOIN customer AS c ON c.person_id = p.id AND p.email_normalised IS NULL"
            )
        ).all()
    return {
        "customers": sorted((r[0], *r[3:]) for r in customers),  # without customer and shop ids
        "persons": sorted((r[0], *r[2:]) for r in people),  # without the person id
    }


def test_rerun_after_changes_leaves_what_a_first_run_would(store, databases):
    """Rows are updated in place, inserted and deleted; the result equals a fresh enrichment."""
    later = datetime(2026, 3, 20, tzinfo=UTC)

    def change(target) -> None:
        with target.session() as s:
            a = ensure_shop(s, "a", "csv", now=later)
            upsert_customers(
                s,
                a,
                [
                    CustomerRecord("c3", later, email="bob@example.com", deleted=True),
                    CustomerRecord("c4", later, email="dora@example.com"),
                ],
                later,
            )
            upsert_orders(
                s,
                a,
                [
                    order("o11", utc(2026, 3, 12), "45", customer_platform_id="c4"),
                    order("o12", utc(2026, 3, 14), "5", customer_platform_id="c2"),
                    OrderRecord(  # fully refunded since: no purchase any more
                        "o3",
                        utc(2026, 2, 9, 10),
                        later,
                        total=Decimal(80),
                        refunded=Decimal(80),
                        currency="EUR",
                        customer_platform_id="c1",
                    ),
                ],
                later,
            )

    load_fixture(store)
    run_enrich(store, CONFIG, as_of=AS_OF, now=NOW)
    change(store)
    run_enrich(store, CONFIG, as_of=date(2026, 3, 20), now=later)
    with first_run(databases, date(2026, 3, 20), later, change) as fresh:
        assert _state(store) == _state(fresh)
    assert "c3" not in metrics(store)  # deleted upstream: its row is gone
    assert metrics(store)["c1"].days_since_last_order == 15  # o6 (03-05) counts by now


@pytest.mark.parametrize("few_rows", [0, 10**9], ids=["customer-by-customer", "set-wide"])
def test_relinking_either_way_leaves_what_a_first_run_would(
    store, databases, monkeypatch, few_rows
):
    """Wrong links are fixed through the ids of the wrong customers when few, by set-wide
    joins when many (`dbio.few`); both must link exactly as a first run: a changed email, a
    removed one, a new customer sharing an email, one without any."""
    later = datetime(2026, 3, 20, tzinfo=UTC)

    def change(target) -> None:
        with target.session() as s:
            a = ensure_shop(s, "a", "csv", now=later)
            upsert_customers(
                s,
                a,
                [
                    CustomerRecord("c1", later, email="ann.new@example.com"),
                    CustomerRecord("c3", later),  # bob's email removed
                    CustomerRecord("c5", later, email="ANN@example.com "),
                    CustomerRecord("c6", later),
                ],
                later,
            )
            upsert_orders(
                s, a, [order("o13", utc(2026, 3, 12), "8", customer_platform_id="c6")], later
            )

    def partition(target) -> set[frozenset[str]]:
        groups: dict[int | None, set[str]] = {}
        for platform_id, person in persons(target).items():
            groups.setdefault(person, set()).add(platform_id)
        return {frozenset(g) for person, g in groups.items() if person is not None}

    monkeypatch.setattr(dbio, "FEW_ROWS", few_rows)
    load_fixture(store)
    run_enrich(store, CONFIG, as_of=AS_OF, now=NOW)
    change(store)
    report = run_enrich(store, CONFIG, as_of=date(2026, 3, 20), now=later)
    assert (report.identity.links_changed, report.identity.persons_deleted) == (4, 1)
    monkeypatch.undo()  # the first run by the usual rule: every link wrong, set-wide
    with first_run(databases, date(2026, 3, 20), later, change) as fresh:
        assert partition(store) == partition(fresh)
        assert _state(store) == _state(fresh)
    p = persons(store)
    assert p["c5"] == p["d1"] == p["g1"] != p["c1"]  # the email c1 left behind, with c5 now
    assert None not in (p["c2"], p["c3"], p["c6"])
    assert len({p["c2"], p["c3"], p["c6"]}) == 3  # no email: a person each


def test_an_in_memory_store_is_enriched_like_a_file(tmp_path):
    """An in-memory SQLite database exists once per connection: its reads and writes must
    stay on the calling thread instead of the parallel readers and the person writer."""
    memory = open_store("sqlite:///:memory:")
    disk = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        for target in (memory, disk):
            load_fixture(target)
            run_enrich(target, CONFIG, as_of=AS_OF, now=NOW)
        assert _state(disk)["customers"]
        assert _state(memory) == _state(disk)
    finally:
        memory.close()
        disk.close()


def test_rows_written_in_small_batches_are_the_same(store, databases, monkeypatch):
    load_fixture(store)
    run_enrich(store, CONFIG, as_of=AS_OF, now=NOW)
    monkeypatch.setattr(write, "WRITE_BATCH_ROWS", 2)
    with first_run(databases) as batched:
        assert len(_state(batched)["customers"]) > 2
        assert _state(batched) == _state(store)


def computed_at(store) -> dict[str, datetime]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.platform_id, m.computed_at FROM customer_metrics AS m "
                "JOIN customer AS c ON c.id = m.customer_id"
            )
        ).all()
    return dict(rows)


def test_rerun_writes_only_rows_whose_values_changed(enriched):
    store, _ = enriched
    first = computed_at(store)
    later = NOW + timedelta(hours=1)
    run_enrich(store, CONFIG, as_of=AS_OF, now=later)
    assert computed_at(store) == first  # same values: no row rewritten
    with store.session() as s:
        a = ensure_shop(s, "a", "csv", now=later)
        upsert_orders(s, a, [order("o13", utc(2026, 2, 27), "9", customer_platform_id="c2")], later)
    run_enrich(store, CONFIG, as_of=AS_OF, now=later)
    stamps = computed_at(store)
    assert {pid for pid in stamps if stamps[pid] != first[pid]} == {"c2"}
    assert metrics(store)["c2"].orders_count == 2


def test_next_day_rewrites_only_the_daily_columns(store, databases, monkeypatch):
    """A day later every buyer's days since the last order moves, its history does not: rows
    are rewritten in their daily columns only, and end as a first run on that day leaves them."""
    load_fixture(store)
    run_enrich(store, CONFIG, as_of=AS_OF, now=NOW)
    ann_days = {c: m.days_since_last_order for c, m in ann_history(store).items()}
    statements: list[tuple[str, list]] = []
    real = write.execute_many

    def recording(conn, sql, rows):
        statements.append((sql, rows))
        real(conn, sql, rows)

    monkeypatch.setattr(write, "execute_many", recording)
    next_day, later = AS_OF + timedelta(days=1), NOW + timedelta(days=1)
    run_enrich(store, CONFIG, as_of=next_day, now=later)
    with store.session() as s:
        platform_id = dict(s.execute(select(Customer.id, Customer.platform_id)).all())
    rewritten: dict[str, set[str]] = {"daily": set(), "whole": set()}
    for sql, rows in statements:
        if sql.startswith("UPDATE customer_metrics"):
            part = "whole" if "total_spent" in sql else "daily"
            rewritten[part] |= {platform_id[row[-1]] for row in rows}
    # o9 (2026-03-02 in Berlin) counts from the next day on: c2's history changed
    assert rewritten == {"daily": {"c1", "d1"}, "whole": {"c2"}}
    # persons' days are moved by one statement in the database, not row by row
    person_rows = [rows for sql, rows in statements if sql.startswith("UPDATE person_metrics")]
    assert len(person_rows) == 1  # the whole rows of persons whose history changed: c2's
    assert [row[-2] for row in person_rows[0]] == [persons(store)["c2"]]
    moved = {c: m.days_since_last_order for c, m in ann_history(store).items()}
    assert moved == {c: days + 1 for c, days in ann_days.items()}
    assert metrics(store)["c1"].days_since_last_order == 21
    with first_run(databases, next_day, later) as fresh:
        # c3 bought nothing: its row did not change, so it keeps the time it was written
        assert _state(store, stamps=False) == _state(fresh, stamps=False)


ROW = {
    "count": np.array([3, 3]),
    "spent": np.array([1.5, 1.5]),
    "gap": np.array([np.nan, np.nan]),
    "name": np.array(["Mug", "Mug"], dtype=object),
    "missing": np.array([None, None], dtype=object),
}


@pytest.mark.parametrize(
    ("column", "other"),
    [("count", 4), ("spent", 1.25), ("gap", 0.0), ("name", "mug"), ("missing", "")],
)
def test_fingerprints_see_a_change_in_any_column(column, other):
    columns = {name: values.copy() for name, values in ROW.items()}
    columns[column][1] = other
    prints = fingerprints(list(columns.values()))
    assert prints[0] != prints[1]
    assert fingerprints(list(ROW.values()))[0] == fingerprints(list(ROW.values()))[1]


def test_fingerprints_depend_on_column_order():
    a, b = np.array([1]), np.array([2])
    assert fingerprints([a, b])[0] != fingerprints([b, a])[0]


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


TRANSITIONS = {  # UTC instants of offset changes: both sides of each are sampled densely
    "Europe/Berlin": ["2026-03-29T01:00", "2026-10-25T01:00", "1893-03-31T23:06:32"],  # LMT
    "America/New_York": ["2026-03-08T07:00", "2026-11-01T06:00", "1883-11-18T17:00"],
    "Australia/Lord_Howe": ["2026-04-04T15:00", "2026-10-03T15:30"],  # 30-minute DST
    "Asia/Kathmandu": ["1985-12-31T18:30"],  # +05:30 -> +05:45 at local midnight
    "America/St_Johns": ["2010-03-14T03:31", "2010-11-07T02:31"],  # 00:01 local, day goes back
    "America/Sao_Paulo": ["2018-11-04T03:00", "2019-02-17T02:00"],  # at local midnight
}


@pytest.mark.parametrize("zone", sorted(TRANSITIONS))
def test_local_days_match_zoneinfo_for_every_instant(zone):
    """Against the definition, one instant at a time (exact microseconds, not float seconds)."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from shopcrm.enrich.purchases import day_number, local_days

    rng = np.random.default_rng(7)
    us = [rng.integers(_us(1880, 1, 1), _us(2040, 1, 1), 3000)]  # before 1970 too
    for instant in TRANSITIONS[zone]:
        change = _us(*datetime.fromisoformat(instant).timetuple()[:6])
        near = change + np.array([-61, -60, -59, -1, 0, 1, 59, 60, 61]) * 10**6
        us.append(np.r_[near - 1, near, near + 1])
        window = np.arange(-36 * 3600, 36 * 3600, 599) * 10**6
        us.append(change + window + rng.integers(0, 10**6, len(window)))
    created = rng.permutation(np.concatenate(us))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected = [
        day_number((epoch + timedelta(microseconds=t)).astimezone(ZoneInfo(zone)).date())
        for t in created.tolist()
    ]
    assert local_days(created, zone).tolist() == expected


def _history_by_definition(group, created_us, day, net, as_of_day):
    """Per group with purchases, its History fields and its RepeatSummary, one at a time.

    A group's purchases are taken in time order, ties in input order (a stable sort).
    """
    per_group: dict[int, list[int]] = {}
    for _, _, i in sorted(zip(group.tolist(), created_us.tolist(), range(len(group)), strict=True)):
        per_group.setdefault(int(group[i]), []).append(i)
    history, repeat = {}, {}
    for g, idx in per_group.items():
        first, last = idx[0], idx[-1]
        history[g] = (
            len(idx),
            sum(int(net[i]) for i in idx),
            int(created_us[first]),
            int(created_us[last]),
            int(day[first]),
            int(day[last]),
            as_of_day - int(day[last]),
        )
        runs: list[list[int]] = []  # consecutive purchases on one day are one purchase day
        for i in idx:
            if runs and runs[-1][0] == day[i]:
                runs[-1][1] += int(net[i])
            else:
                runs.append([int(day[i]), int(net[i])])
        x = len(runs) - 1
        repeat[g] = (
            x,
            runs[-1][0] - runs[0][0],
            as_of_day - runs[0][0],
            sum(value for _, value in runs[1:]) / 1e6 / x if x else float("nan"),
            as_of_day - runs[-1][0],
        )
    return history, repeat


@pytest.mark.parametrize(
    ("n_groups", "time_span"),
    [(40, 50), (40, 10**13), (2**20, 2**50)],  # ties; spread out; group and time > 63 bits
)
def test_history_functions_match_their_definition(n_groups, time_span):
    from shopcrm.enrich.history import purchase_history, repeat_summary

    rng = np.random.default_rng(n_groups + time_span % 1000)
    n = 3000
    group = rng.choice(rng.choice(n_groups, 30, replace=False), n)  # some groups buy nothing
    base = rng.integers(0, time_span, 40)  # few distinct instants per group: ties, near ties
    created = _us(2024, 1, 1) + base[rng.integers(0, 40, n)] + rng.integers(0, 3, n)
    day = 19_800 + rng.integers(0, 4, n)  # not ordered with time: runs of days matter
    net = rng.integers(1, 10**9, n)
    as_of = 19_900
    history, repeat = _history_by_definition(group, created, day, net, as_of)

    h = purchase_history(group, created, day, net, n_groups, as_of)
    buyers = np.flatnonzero(h.orders_count)
    assert buyers.tolist() == sorted(history)
    fields = (h.orders_count, h.total_micros, h.first_us, h.last_us, h.first_day, h.last_day)
    got = np.stack([*fields, h.days_since_last], axis=1)
    assert [tuple(row) for row in got[buyers].tolist()] == [history[g] for g in sorted(history)]
    assert not got[h.orders_count == 0].any()
    owners, s = repeat_summary(group, created, day, net, n_groups, as_of)
    assert owners.tolist() == sorted(repeat)
    columns = (s.frequency, s.recency, s.age, s.monetary, s.days_since_last)
    got_repeat = list(zip(*(c.tolist() for c in columns), strict=True))
    np.testing.assert_array_equal(got_repeat, [repeat[g] for g in sorted(repeat)])


def _top_json_by_definition(line_group, line_product, line_quantity, labels, n_groups, k):
    import json

    totals: dict[int, dict[int, int]] = {g: {} for g in range(n_groups)}
    for g, p, q in zip(line_group, line_product, line_quantity, strict=True):
        if g >= 0:
            totals[g][p] = totals[g].get(p, 0) + q
    texts = []
    for g in range(n_groups):
        bought = [p for p, total in totals[g].items() if total > 0]
        ranked = sorted(bought, key=lambda p, g=g: (-totals[g][p], p))[:k]
        texts.append("[" + ", ".join(json.dumps(labels[p]) for p in ranked) + "]")
    return texts


TOP_LINES = {  # group: (product, quantity) of its lines
    0: [(3, 2), (1, 1), (3, 2), (2, 3), (4, 3), (0, 3)],  # 3 sums to 4; 0, 2 and 4 tie at 3
    1: [(2, 0), (4, 1)],  # a zero quantity is not bought
    2: [(1, 0)],  # nothing bought
    -1: [(0, 50), (5, 50)],  # lines of no group
    4: [(5, 1), (1, 1)],  # tie: the lower code first
    5: [(6, 2), (6, -2), (1, 1)],  # a return cancels a purchase
}  # group 3 has no lines
TOP_LABELS = ["Mug", "Tea", 'The "best" pot', "Über-Kanne", "Cup\nand saucer", "Spoon", "Lid"]


@pytest.mark.parametrize("k", [0, 1, 3, 10])
def test_top_products_json_matches_its_definition(k):
    import json

    from shopcrm.enrich.history import top_products_json

    lines = [(g, p, q) for g, bought in TOP_LINES.items() for p, q in bought]
    g, p, q = np.random.default_rng(k).permutation(lines).T.tolist()
    texts = top_products_json(np.array(g), np.array(p), np.array(q), TOP_LABELS, 6, k)
    assert texts == _top_json_by_definition(g, p, q, TOP_LABELS, 6, k)
    if k == 3:
        assert [json.loads(t) for t in texts] == [
            ["Über-Kanne", "Mug", 'The "best" pot'],
            ["Cup\nand saucer"],
            [],
            [],
            ["Tea", "Spoon"],
            ["Tea"],
        ]


@pytest.mark.parametrize("unit", [1, 2**45])  # 2**45: too wide to pack the rows in an int64
def test_top_products_json_on_random_lines(unit):
    from shopcrm.enrich.history import top_products_json

    rng = np.random.default_rng(unit)
    n, n_groups = 5000, 2**12
    g = rng.choice(np.r_[-1, rng.choice(n_groups, 400, replace=False)], n)
    p = rng.integers(0, 40, n)
    q = rng.integers(-1, 4, n) * unit  # many ties, zeros and returns
    labels = [f"Product {i}" for i in range(40)]
    texts = top_products_json(g, p, q, labels, n_groups)
    expected = _top_json_by_definition(g.tolist(), p.tolist(), q.tolist(), labels, n_groups, 3)
    assert texts == expected


def test_history_functions_without_purchases():
    from shopcrm.enrich.history import purchase_history, repeat_summary, top_products_json

    none = np.zeros(0, dtype=np.int64)
    h = purchase_history(none, none, none, none, 2, 20_000)
    assert h.orders_count.tolist() == h.first_day.tolist() == h.days_since_last.tolist() == [0, 0]
    assert np.isnan(h.mean_days_between).all()
    owners, summary = repeat_summary(none, none, none, none, 2, 20_000)
    assert owners.tolist() == summary.frequency.tolist() == []
    assert top_products_json(none, none, none, ["Mug"], 2) == ["[]", "[]"]
    assert top_products_json(none, none, none, [], 0) == []


@pytest.mark.parametrize("high", [3, 50, 10**12])
def test_distinct_codes_and_quintiles_by_counting_match_sorting(high):
    """Integer arrays over a short range are coded and ranked by counting: same answers."""
    values = np.random.default_rng(high).integers(-5, high, 2_000)
    levels, codes = distinct_codes(values)
    expected_levels, expected_codes = np.unique(values, return_inverse=True)
    assert levels.tolist() == expected_levels.tolist()
    assert codes.tolist() == expected_codes.tolist()
    assert quintile_scores(values).tolist() == quintile_scores(values.astype(float)).tolist()
    empty = distinct_codes(np.zeros(0, dtype=np.int64))
    assert (len(empty[0]), len(empty[1])) == (0, 0)


def test_find_locates_values_among_unordered_keys():
    keys = np.array([40, 10, 30, 20])
    at, found = find(keys, np.array([30, 5, 20, 99, 40]))
    assert found.tolist() == [True, False, True, False, True]
    assert keys[at[found]].tolist() == [30, 20, 40]
    assert at.min() >= 0  # absent values get a usable index too
    assert at.max() < len(keys)
    at, found = find(np.array([10, 20, 30]), np.array([20, 25, 5, 30, 99]))  # sorted keys
    assert found.tolist() == [True, False, False, True, False]
    assert at[found].tolist() == [1, 2]
    assert at.max() < 3
    at, found = find(np.zeros(0, dtype=np.int64), np.array([1, 2]))
    assert found.tolist() == [False, False]


def test_new_lines_of_an_order_refresh_its_top_products(enriched):
    """An order rewritten with other lines but the same total and date changes no history
    figure; its new version still makes its customer's and person's top products current."""
    store, _ = enriched
    assert metrics(store)["c1"].top_products == ["Mug", "Tea"]
    later = SYNCED + timedelta(days=1)
    exchanged = OrderRecord(
        "o2",
        utc(2026, 1, 10, 15),
        later,
        total=Decimal(50),
        currency="EUR",
        customer_platform_id="c1",
        lines=(line("Cake", 5),),
    )
    with store.session() as s:
        upsert_orders(s, ensure_shop(s, "a", "csv", now=later), [exchanged], later)
    run_enrich(store, CONFIG, as_of=AS_OF, now=NOW + timedelta(hours=1))
    assert metrics(store)["c1"].top_products == ["Cake", "Mug"]
    assert ann_history(store)["EUR"].top_products == ["Cake", "Mug"]
    assert metrics(store)["d1"].top_products == []  # b1 has no lines; its row was not rewritten


def test_lines_of_some_orders_read_by_id_match_the_full_read(store):
    load_fixture(store)
    _, orders, _ = load_store(store.engine)
    with store.session() as s:
        o1 = s.execute(select(Order.id).where(Order.platform_id == "o1")).scalar_one()
    one = orders.order_id == o1
    assert 4 * np.count_nonzero(one) < len(orders)  # few orders: read by id
    few = load_lines(store.engine, orders, one)
    every = load_lines(store.engine, orders, np.ones(len(orders), dtype=bool))

    def titled(lines) -> list[tuple[int, str, int]]:
        return sorted(
            (int(orders.order_id[i]), lines.labels[p], int(q))
            for i, p, q in zip(lines.order_index, lines.product, lines.quantity, strict=True)
        )

    assert titled(few) == [(o1, "Mug", 2)]
    assert titled(few) == [row for row in titled(every) if row[0] == o1]
    assert len(titled(every)) == 3  # o1, o2 and o3 have lines
    _, _, beside = load_store(store.engine, every_line=True)  # a first run reads them all at once
    assert titled(load_lines(store.engine, orders, one, beside)) == titled(few)


def test_top_products_missing_for_a_changed_history_are_refused_not_written_blank(
    enriched, monkeypatch
):
    """Top products are computed for the histories found changed before the lines are read;
    should the write ever find another row changed (a bug: both use the same stored rows), the
    run stops with an error naming the row instead of writing it without its top products."""
    store, _ = enriched
    before = metrics(store)
    with store.session() as s:
        a = ensure_shop(s, "a", "csv", now=SYNCED)
        upsert_orders(s, a, [order("o13", utc(2026, 2, 27), "9", customer_platform_id="c2")], NOW)
    monkeypatch.setattr(
        pipeline, "stale_histories", lambda stored, prints: np.zeros(len(prints), bool)
    )
    with pytest.raises(StoreError, match="were not computed though its purchase history changed"):
        run_enrich(store, CONFIG, as_of=AS_OF, now=NOW + timedelta(hours=1))
    assert metrics(store)["c2"].top_products == before["c2"].top_products
    assert metrics(store)["c2"].orders_count == before["c2"].orders_count  # rolled back
