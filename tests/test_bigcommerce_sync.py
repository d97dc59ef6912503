"""BigCommerce connector against the sandbox over 127.0.0.1, into real SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from shopcrm.connectors.bigcommerce.connector import (
    MANAGED_ATTRIBUTE,
    PAGE_LIMIT,
    BigCommerceConnector,
)
from shopcrm.records import TagChange
from shopcrm.store.db import Store, open_store
from shopcrm.sync.pull import pull_shop
from tests.bigcommerce_fixtures import (
    TOKEN,
    assert_store_matches,
    config_for,
    dataset,
    sandbox,
    shop_of,
    stored_customers,
)


@pytest.fixture
def lite(tmp_path) -> Iterator[Store]:
    """A SQLite store for the paging tests (the store-agnostic ones run on both databases)."""
    st = open_store(f"sqlite:///{tmp_path / 'bc.db'}")
    yield st
    st.close()


def _sync(store: Store, sb, **kwargs):
    config = config_for(sb)
    result = pull_shop(store, config, shop_of(config), **kwargs)
    assert result.ok, result.error
    return result


def test_full_sync_equals_the_sandbox(store: Store) -> None:
    with sandbox(dataset(200)) as sb:
        result = _sync(store, sb)
        assert_store_matches(store, sb)
        assert result.customers == 200
        assert result.orders == len(sb.dataset.orders)
        guests = [o for o in sb.dataset.orders.values() if o.customer_id is None]
        assert guests, "the seed must hold guest orders for this test to mean something"
        assert sb.server.stats.statuses[429] == 0


def test_one_percent_changed_syncs_exactly_with_few_requests(store: Store) -> None:
    ds = dataset(400)
    with sandbox(ds) as sb:
        full = _sync(store, sb)
        changed = ds.mutate((len(ds.customers) + len(ds.orders)) // 100)
        incremental = _sync(store, sb)
        assert_store_matches(store, sb)
        # exactly the changed records are read again, in one page per stream after the
        # store check and the attribute lookup
        assert incremental.customers + incremental.orders == len(set(changed))
        assert incremental.requests == 4 < full.requests


@pytest.mark.parametrize("after_reads", [1, 4])  # among the customers' / the orders' pages
def test_records_changed_while_paging_are_neither_lost_nor_duplicated(
    lite: Store, after_reads: int
) -> None:
    ds = dataset(400)
    ds.mutate_after_reads = after_reads
    ds.mutate_count = 80
    with sandbox(ds) as sb:
        _sync(lite, sb)
        assert ds.mutated_during_sync, "the knob must have fired during the sync"
        # a stream still paging catches them in the same pass (they move past the keyset);
        # one already finished leaves them to the next run
        assert_store_matches(lite, sb, customers=after_reads == 1)
        _sync(lite, sb)
        assert_store_matches(lite, sb)


def test_run_of_one_timestamp_longer_than_a_page(lite: Store) -> None:
    ds = dataset(320)
    at = max(c.updated_at for c in ds.customers.values()) + timedelta(days=1)
    ds.touch_customers(sorted(ds.customers)[:300], at)
    for order in list(ds.orders.values())[:260]:
        order.updated_at = at
    ds.mutate_after_reads = 3  # inside the customers' run: it shrinks under the page numbers
    ds.mutate_count = 30
    with sandbox(ds) as sb:
        _sync(lite, sb)
        assert_store_matches(lite, sb)
        ds.touch_customers(sorted(ds.customers)[20:290], ds.now)  # after the saved mark
        _sync(lite, sb)
        assert_store_matches(lite, sb)


@pytest.mark.parametrize("size", [PAGE_LIMIT, 0])
def test_exactly_one_full_page_and_an_empty_shop(lite: Store, size: int) -> None:
    ds = dataset(max(size, 1) * 2)
    with ds.lock:
        for cid in sorted(ds.customers)[size:]:
            del ds.customers[cid]
        for oid in sorted(ds.orders)[size:]:
            del ds.orders[oid]
    with sandbox(ds) as sb:
        result = _sync(lite, sb)
        assert (result.customers, result.orders) == (size, size)
        assert_store_matches(lite, sb)
        if size == 0:
            assert sb.server.stats.statuses[204] == 1  # the orders list past its end
        again = _sync(lite, sb)
        assert again.orders == 0
        assert sb.server.stats.statuses[204] >= 1


def test_embedded_lines_incomplete_are_completed_from_order_products(lite: Store) -> None:
    ds = dataset(40)
    with sandbox(ds) as sb:
        sb.embedded_line_limit = 1  # like the platform's 50-per-consignment cut, smaller
        _sync(lite, sb)
        assert_store_matches(lite, sb)
        multi = sum(1 for o in ds.orders.values() if len(o.lines) > 1)
        fetched = sum(
            n for path, n in sb.server.stats.by_path.items() if path.endswith("/products")
        )
        assert multi > 0
        assert fetched == multi


def test_wrong_token_fails_the_shop_clearly_without_the_secret(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with sandbox(dataset(5)) as sb:
        config = config_for(sb)
        sb.access_token = "another-token"
        result = pull_shop(store, config, shop_of(config))
        assert not result.ok
        assert result.error_type == "AuthError"
        assert "bc-shop" in (result.error or "")
        assert "sandbox1" in (result.error or "")
        assert TOKEN not in (result.error or "")
        assert TOKEN not in caplog.text


def test_push_touches_only_the_managed_attribute(lite: Store) -> None:
    ds = dataset(60)
    with sandbox(ds) as sb:
        before = {cid: sb.customer_values(cid) for cid in ds.customers}
        others = [cid for cid, values in before.items() if values][:8]
        plain = [cid for cid, values in before.items() if not values][:4]
        assert len(others) == 8
        assert len(plain) == 4
        targets = others + plain
        connector = BigCommerceConnector(shop_of(config_for(sb)), config_for(sb))
        adds = [TagChange(str(cid), add=frozenset({"crm:vip", f"crm:c{cid}"})) for cid in targets]
        results = list(connector.apply(adds))
        assert [r.customer_platform_id for r in results] == [str(c) for c in targets]
        assert all(r.ok for r in results), results
        assert sb.attribute_named(MANAGED_ATTRIBUTE) is not None
        for cid in ds.customers:
            now = sb.customer_values(cid)
            managed = now.pop(MANAGED_ATTRIBUTE, None)
            assert now == before[cid], f"customer {cid}: other attributes changed"
            want = f"crm:c{cid},crm:vip" if cid in targets else None
            assert managed == want

        # someone edits our value by hand meanwhile: only the tags we name are removed
        extra = connector.apply([TagChange(str(targets[0]), add=frozenset({"hand-made"}))])
        assert all(r.ok for r in extra)
        removes = [
            TagChange(str(cid), remove=frozenset({"crm:vip", f"crm:c{cid}"})) for cid in targets
        ]
        assert all(r.ok for r in connector.apply(removes))
        assert sb.customer_values(targets[0]) == {
            **before[targets[0]],
            MANAGED_ATTRIBUTE: "hand-made",
        }
        assert all(sb.customer_values(cid) == before[cid] for cid in targets[1:])

        _sync(lite, sb)
        assert stored_customers(lite)[str(targets[0])][-1] == ("hand-made",)
        connector.close()


def test_push_failures_are_per_customer() -> None:
    ds = dataset(30)
    with sandbox(ds) as sb:
        connector = BigCommerceConnector(shop_of(config_for(sb)), config_for(sb))
        long_tags = frozenset(f"crm:segment-number-{i:03d}" for i in range(12))
        changes = [
            TagChange("1", add=frozenset({"crm:a"})),
            TagChange("999999", add=frozenset({"crm:a"})),  # deleted upstream
            TagChange("2", add=long_tags),
            TagChange("not-an-id", add=frozenset({"crm:a"})),
            TagChange("3", add=frozenset({"crm:b"})),
        ]
        results = {r.customer_platform_id: r for r in connector.apply(changes)}
        assert results["1"].ok
        assert results["3"].ok
        assert "999999" in (results["999999"].error or "")
        assert "255" in (results["2"].error or "")
        assert "customer 2" in (results["2"].error or "")
        assert not results["not-an-id"].ok
        assert sb.customer_values(1)[MANAGED_ATTRIBUTE] == "crm:a"
        assert MANAGED_ATTRIBUTE not in sb.customer_values(2)
        assert all(TOKEN not in (r.error or "") for r in results.values())
        connector.close()


class FakeClock:
    """One clock for the sandbox's window and the connector's waits: 30 s windows pass fast."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)


def test_pacing_holds_at_the_published_standard_quota() -> None:
    clock = FakeClock()
    ds = dataset(120)
    with sandbox(ds, quota=150, window_ms=30_000, clock=clock.monotonic) as sb:
        sb.embedded_line_limit = 0  # one request per order: well past one window's quota
        config = config_for(sb)
        connector = BigCommerceConnector(
            shop_of(config), config, sleep=clock.sleep, clock=clock.monotonic
        )
        customers = [r for page in connector.customers(None) for r in page.records]
        orders = [r for page in connector.orders(None) for r in page.records]
        assert len(customers) == len(ds.customers)
        assert len(orders) == len(ds.orders)
        assert sum(len(o.lines) for o in orders) == sum(len(o.lines) for o in ds.orders.values())
        changes = [TagChange(str(cid), add=frozenset({"crm:x"})) for cid in ds.customers]
        assert all(r.ok for r in connector.apply(changes))
        sent = connector.requests_made
        assert sent > 2 * 150
        assert sb.server.stats.statuses[429] == 0
        assert connector.pacer.waited_s >= (sent // 150 - 1) * 15  # it waited for resets
        connector.close()
