"""sync/pull.py against a real in-memory connector: checkpoints, resume, isolation, reconcile."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlmodel import select

from shopcrm import errors
from shopcrm.config.load import parse_config
from shopcrm.records import (
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    Page,
    ShopFacts,
    TagChange,
    TagResult,
)
from shopcrm.store.models import Customer, Order, OrderLine, Shop, SyncRun, SyncState
from shopcrm.sync.pull import pull_shop

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def customer(i: int, minutes: int, name: str = "A") -> CustomerRecord:
    return CustomerRecord(
        platform_id=f"c{i}", updated_at=T0 + timedelta(minutes=minutes), email=f"{name}{i}@x.test"
    )


def order(i: int, minutes: int, total: str = "10.00") -> OrderRecord:
    at = T0 + timedelta(minutes=minutes)
    return OrderRecord(
        platform_id=f"o{i}",
        created_at=at,
        updated_at=at,
        currency="EUR",
        total=Decimal(total),
        customer_platform_id=f"c{i}",
        lines=(OrderLineRecord(1, Decimal(total), sku=f"s{i}"),),
    )


class FakeConnector:
    """A platform held in memory; pages sorted by updated_at like a real platform's."""

    def __init__(self, customers: list[CustomerRecord], orders: list[OrderRecord]) -> None:
        self.data = {"customers": customers, "orders": orders}
        self.page_size = 2
        self.fail_after_pages: int | None = None
        self.since_seen: dict[str, datetime | None] = {}
        self.requests_made = 0
        self.closed = False

    def check(self) -> ShopFacts:
        self.requests_made += 1
        return ShopFacts(name="Fake", currency="EUR", timezone="Europe/Berlin", domain="fake")

    def _pages(self, stream: str, since: datetime | None) -> Iterator[Page]:
        self.since_seen[stream] = since
        rows = sorted(
            (r for r in self.data[stream] if since is None or r.updated_at >= since),
            key=lambda r: (r.updated_at, r.platform_id),
        )
        for n, start in enumerate(range(0, len(rows), self.page_size)):
            if self.fail_after_pages is not None and n >= self.fail_after_pages:
                raise errors.PlatformUnavailable("fake: connection reset")
            self.requests_made += 1
            chunk = rows[start : start + self.page_size]
            yield Page(chunk, high_water_mark=chunk[-1].updated_at)

    def customers(self, since: datetime | None) -> Iterator[Page]:
        return self._pages("customers", since)

    def orders(self, since: datetime | None) -> Iterator[Page]:
        return self._pages("orders", since)

    def apply(self, changes: Sequence[TagChange]) -> Iterator[TagResult]:
        return iter(())

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def config():
    return parse_config(
        {
            "shops": [
                {
                    "name": "fake",
                    "platform": "bigcommerce",
                    "store_hash": "abc",
                    "credentials": {"access_token": "t0ken-fake"},
                }
            ],
            "defaults": {"sync": {"overlap": "5m"}},
        }
    )


def rows(store, model):
    with store.session() as s:
        return s.exec(select(model)).all()


def test_full_pull_stores_everything_and_checkpoints_at_start(store, config):
    conn = FakeConnector([customer(i, i) for i in range(5)], [order(i, i) for i in range(3)])
    result = pull_shop(store, config, config.shops[0], connector=conn, now=lambda: NOW)
    assert result.ok, result.error
    assert (result.customers, result.orders) == (5, 3)
    assert {c.platform_id for c in rows(store, Customer)} == {f"c{i}" for i in range(5)}
    assert len(rows(store, OrderLine)) == 3
    states = {s.stream: s for s in rows(store, SyncState)}
    assert states["customers"].high_water_mark == NOW
    assert states["orders"].last_success_at == NOW
    (shop,) = rows(store, Shop)
    assert (shop.currency, shop.timezone) == ("EUR", "Europe/Berlin")
    (run,) = rows(store, SyncRun)
    assert (run.outcome, run.customers, run.orders, run.requests) == ("success", 5, 3, 6)
    assert not conn.closed  # a connector handed in belongs to the caller


def test_incremental_pull_starts_at_mark_minus_overlap(store, config):
    conn = FakeConnector([customer(1, 1)], [])
    pull_shop(store, config, config.shops[0], connector=conn, now=lambda: NOW)
    pull_shop(store, config, config.shops[0], connector=conn, now=lambda: NOW + timedelta(hours=1))
    assert conn.since_seen["customers"] == NOW - timedelta(minutes=5)


def test_crash_mid_stream_keeps_whole_pages_and_an_honest_checkpoint(store, config):
    customers = [customer(i, i) for i in range(7)]
    conn = FakeConnector(customers, [])
    conn.fail_after_pages = 2
    result = pull_shop(store, config, config.shops[0], connector=conn, now=lambda: NOW)
    assert not result.ok
    assert result.error_type == "PlatformUnavailable"
    stored = {c.platform_id for c in rows(store, Customer)}
    assert stored == {"c0", "c1", "c2", "c3"}
    (state,) = rows(store, SyncState)
    # every record updated before the mark is stored; nothing after it is claimed
    assert state.high_water_mark == customers[3].updated_at
    assert state.last_success_at is None
    (run,) = rows(store, SyncRun)
    assert run.outcome == "failed"
    assert "connection reset" in run.error

    conn.fail_after_pages = None
    result = pull_shop(store, config, config.shops[0], connector=conn, now=lambda: NOW)
    assert result.ok
    assert len(rows(store, Customer)) == 7
    assert conn.since_seen["customers"] == customers[3].updated_at - timedelta(minutes=5)


def test_mark_never_passes_the_sync_start(store, config):
    late = customer(8, 60 * 24 * 365)  # updated after the sync started
    later = customer(9, 2 * 60 * 24 * 365)
    conn = FakeConnector([customer(1, 1), late, later], [])
    conn.fail_after_pages = 1  # page 1 = [c1, late] is stored, page 2 fails
    started = T0 + timedelta(days=10)
    pull_shop(store, config, config.shops[0], connector=conn, now=lambda: started)
    (state,) = rows(store, SyncState)
    assert state.stream == "customers"
    assert state.high_water_mark == started


def test_full_pull_marks_records_gone_upstream_as_deleted(store, config):
    conn = FakeConnector([customer(1, 1), customer(2, 2)], [order(1, 1), order(2, 2)])
    pull_shop(store, config, config.shops[0], connector=conn, now=lambda: NOW)
    conn.data["customers"] = [customer(1, 1)]
    conn.data["orders"] = [order(2, 2)]
    result = pull_shop(store, config, config.shops[0], connector=conn, full=True, now=lambda: NOW)
    assert result.deleted == {"customers": 1, "orders": 1}
    assert {c.platform_id: c.deleted for c in rows(store, Customer)} == {"c1": False, "c2": True}
    assert {o.platform_id: o.deleted for o in rows(store, Order)} == {"o1": True, "o2": False}


def test_an_unexpected_bug_is_recorded_not_raised(store, config):
    class Broken(FakeConnector):
        def check(self) -> ShopFacts:
            raise KeyError("data")

    result = pull_shop(store, config, config.shops[0], connector=Broken([], []), now=lambda: NOW)
    assert not result.ok
    assert result.error_type == "KeyError"
    (run,) = rows(store, SyncRun)
    assert run.outcome == "failed"
    assert "KeyError" in run.error
