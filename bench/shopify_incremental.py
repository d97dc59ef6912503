"""Benchmark: incremental Shopify sync of many changed customers under the Standard plan's bucket.

A seeded shop is copied into a fresh SQLite store through a sandbox without limits (bulk).
Then every customer is changed, and an incremental `pull_shop` runs against a second sandbox
over the same data, throttled like the Standard plan (bucket 2,000 points, 100 points/s).
Reported: wall time, the points the run cost (sum of Shopify's actualQueryCost), the bound the
restore rate sets (points / restore rate, and the same less the full bucket we start with),
their ratio, THROTTLED answers (must be 0: the pacer waits instead) and requests.

    .venv/bin/python bench/shopify_incremental.py --customers 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from shopcrm.config.load import parse_config
from shopcrm.config.schema import AppConfig, ShopConfig
from shopcrm.connectors.shopify.connector import ShopifyConnector
from shopcrm.sandbox.seed import generate
from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.store.db import open_store
from shopcrm.sync.pull import pull_shop

UNLIMITED = {"bucket_size": 1e9, "restore_rate": 1e9}


def config_for(
    sandbox: ShopifySandbox, database: str, bulk_threshold: int
) -> tuple[AppConfig, ShopConfig]:
    entry, env = sandbox.shop_entry("bench")
    data = {
        "database": database,
        "defaults": {"sync": {"bulk_threshold": bulk_threshold}},
        "shops": [entry],
    }
    config = parse_config(data, env=env)
    return config, config.shops[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--years", type=float, default=0.5, help="order history to seed")
    parser.add_argument("--bucket", type=float, default=2000.0)
    parser.add_argument("--restore-rate", type=float, default=100.0)
    args = parser.parse_args()

    started = time.perf_counter()
    dataset = generate(customers=args.customers, seed=4, anchor=date(2026, 11, 1), years=args.years)
    print(
        f"seeded {len(dataset.customers)} customers, {len(dataset.orders)} orders "
        f"in {time.perf_counter() - started:.1f}s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        database = f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = open_store(database)
        with ShopifySandbox(dataset, **UNLIMITED) as loader:
            config, shop = config_for(loader, database, bulk_threshold=0)
            first = pull_shop(store, config, shop)
            assert first.ok, first.error
        print(
            f"first sync (bulk): {first.customers} customers, {first.orders} orders "
            f"in {first.duration_s:.1f}s"
        )

        dataset.touch_customers(sorted(dataset.customers), datetime.now(UTC).replace(microsecond=0))
        with ShopifySandbox(
            dataset, bucket_size=args.bucket, restore_rate=args.restore_rate
        ) as sandbox:
            config, shop = config_for(sandbox, database, bulk_threshold=10_000)
            connector = ShopifyConnector(shop, config)
            clock = time.perf_counter()
            result = pull_shop(store, config, shop, connector=connector)
            wall = time.perf_counter() - clock
            connector.close()
            throttled = sandbox.throttled_count
        store.close()
    assert result.ok, result.error
    points = connector.pacer.spent
    bound = points / args.restore_rate
    credited = max(0.0, points - args.bucket) / args.restore_rate
    print(
        f"incremental: {result.customers} customers, {result.orders} orders, "
        f"{result.requests} requests, {throttled} THROTTLED"
    )
    print(f"points charged (sum of actualQueryCost): {points:.0f}")
    print(
        f"wall {wall:.1f}s; bound points/rate {bound:.1f}s (ratio {wall / bound:.3f}); "
        f"bound less the initial bucket {credited:.1f}s (ratio {wall / max(credited, 1e-9):.3f}); "
        f"pacer waited {connector.pacer.waited_s:.1f}s"
    )


if __name__ == "__main__":
    main()
