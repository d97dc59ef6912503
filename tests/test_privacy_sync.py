"""Forgetting against a real sync: the WooCommerce sandbox on 127.0.0.1 and a store on disk.

A full re-sync after the forget must not bring the person back; a new order placed after it
must (docs/privacy.md "What a later sync does").
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from shopcrm.enrich.pipeline import run_enrich
from shopcrm.sandbox.seed import generate
from shopcrm.store.db import open_store
from shopcrm.store.models import Customer, CustomerMetrics, Order
from shopcrm.store.privacy import forget, parse_selector
from shopcrm.sync.pull import pull_shop
from tests.woocommerce_fixtures import app_config, start_sandbox


def _totals(store):
    with store.session() as s:
        return s.execute(
            select(
                func.count(),
                func.sum(CustomerMetrics.orders_count),
                func.sum(CustomerMetrics.total_spent),
            )
        ).one()


def test_a_forgotten_customer_stays_forgotten_until_a_new_order(tmp_path) -> None:
    sandbox = start_sandbox(generate(customers=60, seed=21))
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        config = app_config(sandbox, database=f"sqlite:///{tmp_path / 'store.db'}")
        shop = config.shops[0]

        def sync(full: bool = False) -> None:
            result = pull_shop(store, config, shop, full=full)
            assert result.ok, result.error

        sync()
        ds = sandbox.dataset
        buyer = next(
            c
            for c in ds.customers.values()
            if c.email and sum(o.customer_id == c.id for o in ds.orders.values()) >= 2
        )
        as_of = date.today()
        now = datetime.now(UTC)
        run_enrich(store, config, as_of=as_of, now=now)
        before = _totals(store)
        forgot_at = datetime.now(UTC)
        with store.session() as s:
            report = forget(s, parse_selector(buyer.email), forgot_at)
        assert report.customers == 1
        assert report.orders >= 2

        sync(full=True)  # everything re-read: nothing personal comes back
        with store.session() as s:
            row = s.execute(
                select(Customer).where(Customer.platform_id == str(buyer.id))
            ).scalar_one()
            assert (row.redacted, row.email, row.first_name, row.last_name) == (
                True,
                None,
                None,
                None,
            )
            emails = (
                s.execute(select(Order.email).where(Order.customer_id == row.id)).scalars().all()
            )
            assert emails
            assert set(emails) == {None}
        run_enrich(store, config, as_of=as_of, now=now)
        assert _totals(store) == before

        with ds.lock:  # the customer buys again
            last = max(
                (o for o in ds.orders.values() if o.customer_id == buyer.id), key=lambda o: o.id
            )
            when = (forgot_at + timedelta(minutes=1)).replace(microsecond=0)
            new = replace(
                last,
                id=ds.next_id("order"),
                number=ds.next_id("number"),
                created_at=when,
                updated_at=when,
                refunds=[],
                cancelled_at=None,
            )
            ds.orders[new.id] = new
            buyer.updated_at = when
            ds.version += 1
        sync()
        sync()  # the customer record is read again and its details return
        with store.session() as s:
            row = s.execute(
                select(Customer).where(Customer.platform_id == str(buyer.id))
            ).scalar_one()
            assert (row.redacted, row.first_name, row.last_name) == (
                False,
                buyer.first_name,
                buyer.last_name,
            )
            assert row.email == buyer.email.strip()
            order = s.execute(select(Order).where(Order.platform_id == str(new.id))).scalar_one()
            assert order.email is not None
    finally:
        sandbox.stop()
        store.close()
