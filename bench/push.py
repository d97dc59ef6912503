"""Benchmark: plan and push segment tags to a sandbox shop, then a push with nothing to do.

For each repeat: a fresh seeded sandbox (Shopify or WooCommerce) and SQLite store, a first pull,
then deterministic segments written straight to `segment_membership` (every 3rd customer `vip`,
every 5th `at-risk`, so the benchmark does not depend on enrich), then it times:
- the plan alone (`--dry-run`),
- the first push (every change sent in batches through the connector's primitives),
- a second push with nothing to change (must send no write request).
Medians over the repeats; one line per measurement.

    .venv/bin/python bench/push.py --platform shopify --customers 5000 --repeat 3
    .venv/bin/python bench/push.py --platform woocommerce --customers 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import select

from shopcrm.config.load import parse_config
from shopcrm.sandbox.seed import generate
from shopcrm.store.db import open_store
from shopcrm.store.models import Customer, SegmentMembership
from shopcrm.sync.pull import pull_shop
from shopcrm.sync.push import push_shop

# The Shopify sandbox gets Shopify Plus's query-cost limit (20,000 points, 1,000 a second), so
# the figures measure shopcrm rather than the Standard plan's 100 points a second.
SANDBOXES = {
    "shopify": (
        "shopcrm.sandbox.shopify.app",
        "ShopifySandbox",
        {"bucket_size": 20_000.0, "restore_rate": 1_000.0},
    ),
    "woocommerce": ("shopcrm.sandbox.woocommerce.app", "WooCommerceSandbox", {}),
}


def one_round(platform: str, customers: int, folder: Path) -> dict[str, float]:
    from importlib import import_module

    module, cls, options = SANDBOXES[platform]
    dataset = generate(customers=customers, seed=7)
    sandbox = getattr(import_module(module), cls)(dataset, **options).start()
    try:
        entry, env = sandbox.shop_entry("bench")
        url = f"sqlite:///{folder / 'bench.db'}"
        config = parse_config({"database": url, "shops": [entry]}, env=env)
        shop = config.shops[0]
        store = open_store(url)
        assert pull_shop(store, config, shop).ok
        with store.session() as session:
            for cid, pid in session.execute(select(Customer.id, Customer.platform_id)).all():
                number = int(pid.rsplit("/", 1)[-1])
                for segment, hit in (("vip", number % 3 == 0), ("at-risk", number % 5 == 0)):
                    if hit:
                        session.add(
                            SegmentMembership(
                                shop_id=1, customer_id=cid, segment=segment, since=date.today()
                            )
                        )
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        plan = push_shop(store, config, shop, dry_run=True).plan
        timings["plan_s"] = time.perf_counter() - clock
        timings["changes"] = plan.customers_changed if plan else 0
        writes = sandbox.server.stats.writes
        clock = time.perf_counter()
        first = push_shop(store, config, shop, force=True)
        timings["first_push_s"] = time.perf_counter() - clock
        timings["first_push_writes"] = sandbox.server.stats.writes - writes
        timings["failed"] = first.failed
        writes = sandbox.server.stats.writes
        clock = time.perf_counter()
        push_shop(store, config, shop)
        timings["second_push_s"] = time.perf_counter() - clock
        timings["second_push_writes"] = sandbox.server.stats.writes - writes
        store.close()
        return timings
    finally:
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", choices=sorted(SANDBOXES), default="shopify")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            rounds.append(one_round(args.platform, args.customers, Path(tmp)))
    print(f"platform={args.platform} customers={args.customers} repeat={args.repeat}")
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        print(f"{key}: median {statistics.median(values):.3f} (runs: {values})")


if __name__ == "__main__":
    main()
