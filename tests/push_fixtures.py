"""A real in-memory platform for the push/run/schedule tests: its own tags, a write counter.

`FakeConnector` follows the Connector protocol over a `FakePlatform`, so the tests exercise
push semantics (add/remove primitives, per-customer failures, crashes) without HTTP.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from shopcrm.config.load import parse_config
from shopcrm.config.schema import AppConfig
from shopcrm.errors import PlatformUnavailable
from shopcrm.records import CustomerRecord, OrderRecord, Page, ShopFacts, TagChange, TagResult
from shopcrm.store.db import Store
from shopcrm.store.models import Customer, SegmentMembership, Shop

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeCustomer:
    id: str
    tags: list[str]
    updated_at: datetime
    email: str | None = None


@dataclass
class FakePlatform:
    """One shop's data as the platform holds it; apply() changes it like the real primitives."""

    customers: dict[str, FakeCustomer] = field(default_factory=dict)
    orders: list[OrderRecord] = field(default_factory=list)
    writes: int = 0
    reads: int = 0
    missing: set[str] = field(default_factory=set)  # answer 404 for these
    invalid: set[str] = field(default_factory=set)  # answer a validation error for these
    fail_all: bool = False  # every request fails like a 500
    fail_detail: str = ""  # appended to that error (e.g. a URL quoting a credential)
    crash_after_writes: int | None = None  # raise after this many writes (a crash)
    page_delay_s: float = 0.0
    gate: Path | None = None  # after the first page, wait until this file exists
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tags(self) -> dict[str, list[str]]:
        return {cid: sorted(c.tags) for cid, c in self.customers.items()}

    def set_tags(self, cid: str, tags: list[str]) -> None:
        c = self.customers[cid]
        c.tags = list(tags)
        c.updated_at = max(c.updated_at + timedelta(seconds=1), datetime.now(UTC))


def make_platform(
    customers: int = 20, merchant: dict[int, list[str]] | None = None
) -> FakePlatform:
    """`customers` customers (ids c1..cN), each with one order; c1 also buys as a guest."""
    platform = FakePlatform()
    merchant = merchant or {}
    for i in range(1, customers + 1):
        cid = f"c{i}"
        platform.customers[cid] = FakeCustomer(
            cid, list(merchant.get(i, [])), START + timedelta(minutes=i), f"{cid}@example.test"
        )
        platform.orders.append(
            OrderRecord(
                platform_id=f"o{i}",
                created_at=START,
                updated_at=START + timedelta(minutes=i),
                currency="EUR",
                total=Decimal(10 * i),
                customer_platform_id=cid,
                email=f"{cid}@example.test",
            )
        )
    platform.orders.append(
        OrderRecord(
            platform_id="g1",
            created_at=START,
            updated_at=START,
            currency="EUR",
            total=Decimal(5),
            email="walk-in@example.test",
        )
    )
    return platform


class FakeConnector:
    """The Connector protocol over a FakePlatform."""

    supports_tags = True

    def __init__(self, platform: FakePlatform, page_size: int = 7) -> None:
        self.platform = platform
        self.page_size = page_size
        self._requests = 0
        self.closed = False

    def _request(self, write: bool = False) -> None:
        p = self.platform
        if p.fail_all:
            self._requests += 1
            raise PlatformUnavailable(f"HTTP 500 from the fake platform{p.fail_detail}", status=500)
        if write and p.crash_after_writes is not None and p.writes >= p.crash_after_writes:
            raise KeyboardInterrupt("simulated crash")
        self._requests += 1
        if write:
            p.writes += 1
        else:
            p.reads += 1

    def check(self) -> ShopFacts:
        self._request()
        return ShopFacts(name="fake", currency="EUR", timezone="UTC")

    def customers(self, since: datetime | None) -> Iterator[Page[CustomerRecord]]:
        with self.platform.lock:
            records = sorted(
                (
                    CustomerRecord(c.id, c.updated_at, email=c.email, tags=tuple(c.tags))
                    for c in self.platform.customers.values()
                    if since is None or c.updated_at >= since
                ),
                key=lambda r: r.updated_at,
            )
        yield from self._paged(records)

    def orders(self, since: datetime | None) -> Iterator[Page[OrderRecord]]:
        records = [o for o in self.platform.orders if since is None or o.updated_at >= since]
        yield from self._paged(sorted(records, key=lambda r: r.updated_at))

    def _paged(self, records: list[Any]) -> Iterator[Page[Any]]:
        for start in range(0, max(1, len(records)), self.page_size):
            self._request()
            time.sleep(self.platform.page_delay_s)
            while start and self.platform.gate is not None and not self.platform.gate.exists():
                time.sleep(0.02)
            chunk = records[start : start + self.page_size]
            yield Page(chunk, chunk[-1].updated_at if chunk else None)

    def apply(self, changes: Sequence[TagChange]) -> Iterator[TagResult]:
        for change in changes:
            cid = change.customer_platform_id
            if cid in self.platform.missing or cid not in self.platform.customers:
                self._request(write=True)
                yield TagResult(cid, False, f"customer {cid} not found (404)")
                continue
            if cid in self.platform.invalid:
                self._request(write=True)
                yield TagResult(cid, False, f"customer {cid}: tags is invalid")
                continue
            with self.platform.lock:
                tags = self.platform.customers[cid].tags
                if change.add - set(tags):
                    self._request(write=True)
                    self.platform.set_tags(cid, tags + sorted(change.add - set(tags)))
                if change.remove & set(self.platform.customers[cid].tags):
                    self._request(write=True)
                    kept = [t for t in self.platform.customers[cid].tags if t not in change.remove]
                    self.platform.set_tags(cid, kept)
            yield TagResult(cid, True)

    @property
    def requests_made(self) -> int:
        return self._requests

    def close(self) -> None:
        self.closed = True


def fake_config(tmp_db: str, shops: Sequence[str] = ("fake",), **defaults: Any) -> AppConfig:
    """A config of WooCommerce-shaped shops (never contacted: tests pass FakeConnectors)."""
    return parse_config(
        {
            "database": tmp_db,
            "defaults": defaults,
            "shops": [
                {
                    "name": name,
                    "platform": "woocommerce",
                    "url": "http://127.0.0.1:9",
                    "credentials": {"consumer_key": "ck_x", "consumer_secret": "cs_fake_secret"},
                }
                for name in shops
            ],
        },
        env={},
    )


def assign_segments(store: Store, shop: str, members: dict[str, list[str]]) -> None:
    """Replace a shop's segment_membership with `members` (customer platform id -> segments)."""
    with store.session() as session:
        shop_id = session.execute(select(Shop.id).where(Shop.name == shop)).scalar_one()
        ids = dict(
            session.execute(
                select(Customer.platform_id, Customer.id).where(Customer.shop_id == shop_id)
            ).all()
        )
        session.execute(delete(SegmentMembership).where(SegmentMembership.shop_id == shop_id))
        for pid, segments in members.items():
            for segment in segments:
                session.add(
                    SegmentMembership(
                        shop_id=shop_id, customer_id=ids[pid], segment=segment, since=START.date()
                    )
                )


def spend_segments(
    store: Store, config: AppConfig, *, shop_name: str | None = None, **_: Any
) -> None:
    """A stand-in enrich step: customers whose number is even are `even`, above 10 `big`."""
    for shop in config.selected(shop_name):
        with store.session() as session:
            shop_id = session.execute(select(Shop.id).where(Shop.name == shop.name)).scalar_one()
            pids = session.execute(
                select(Customer.platform_id).where(Customer.shop_id == shop_id)
            ).scalars()
            members = {
                pid: [
                    s
                    for s, hit in (("even", int(pid[1:]) % 2 == 0), ("big", int(pid[1:]) > 10))
                    if hit
                ]
                for pid in pids
                if pid.startswith("c")
            }
        assign_segments(store, shop.name, members)


def slow_run_main() -> None:
    """`python -c` entry for the lock tests: a run of shop "fake" (argv: db url, gate file).

    The run holds its lock from its first page until the gate file exists.
    """
    import sys

    from shopcrm.errors import exit_code_for
    from shopcrm.store.db import open_store
    from shopcrm.sync.run import raise_for_results, run_shops

    url, gate = sys.argv[1], Path(sys.argv[2])
    platform = make_platform(customers=20)
    platform.gate = gate
    store = open_store(url)
    config = fake_config(url)
    results = run_shops(
        store,
        config,
        "fake",
        force=True,
        connectors=lambda shop, cfg: FakeConnector(platform),
        enrich=spend_segments,
    )
    try:
        raise_for_results(results)
    except Exception as exc:
        print(exc, file=sys.stderr)
        sys.exit(exit_code_for(exc))


def schedule_main() -> None:
    """`python -c` entry for the SIGTERM test: serve shop "fake" every second (argv: db url)."""
    import sys

    from apscheduler.triggers.interval import IntervalTrigger

    from shopcrm.log import setup_logging
    from shopcrm.store.db import open_store
    from shopcrm.sync.scheduler import serve

    setup_logging("info")
    platform = make_platform(customers=20)
    platform.page_delay_s = 0.4
    store = open_store(sys.argv[1])
    serve(
        store,
        fake_config(sys.argv[1]),
        force=True,
        triggers=lambda config, shop: IntervalTrigger(seconds=1, timezone=UTC),
        connectors=lambda shop, cfg: FakeConnector(platform),
        enrich=spend_segments,
    )


def url_of(store: Store) -> str:
    """The store's database URL, as a subprocess or a config file needs it."""
    return store.engine.url.render_as_string(hide_password=False)
