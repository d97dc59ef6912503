"""Benchmark: a first Shopify sync of a large shop through bulk operations.

The sandbox serves a seeded shop (default 100,000 customers, about 300,000 orders) from this
process without rate limits; `shopcrm sync` runs as a child process into a fresh SQLite store,
so its peak memory (max RSS of the child) is the connector's and the store's alone. Reported:
wall time of the sync, records per second, peak RSS of the sync process, and the store's row
counts checked against the seed.

    .venv/bin/python bench/shopify_bulk.py --customers 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import yaml
from sqlalchemy import func, select

from shopcrm.sandbox.seed import generate
from shopcrm.sandbox.shopify import ShopifySandbox
from shopcrm.store.db import open_store
from shopcrm.store.models import Customer, Order, OrderLine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()

    clock = time.perf_counter()
    dataset = generate(customers=args.customers, seed=5, anchor=date(2026, 11, 1))
    lines = sum(len(o.lines) for o in dataset.orders.values())
    print(
        f"seeded {len(dataset.customers)} customers, {len(dataset.orders)} orders, "
        f"{lines} lines in {time.perf_counter() - clock:.1f}s"
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        ShopifySandbox(dataset, bucket_size=1e9, restore_rate=1e9) as sandbox,
    ):
        database = f"sqlite:///{Path(tmp) / 'bench.db'}"
        entry, env = sandbox.shop_entry("bench")
        config = {
            "database": database,
            "defaults": {"sync": {"bulk_threshold": 10_000}},
            "shops": [entry],
        }
        path = Path(tmp) / "shopcrm.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        command = [str(Path(sys.executable).with_name("shopcrm")), "--config", str(path), "sync"]
        clock = time.perf_counter()
        done = subprocess.run(
            command, env={**os.environ, **env}, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - clock
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if done.returncode != 0:
            sys.exit(f"sync failed ({done.returncode}): {done.stderr[-2000:]}")
        bulk_files = sum(1 for p in sandbox.server.stats.by_path if p.startswith("GET /bulk"))
        store = open_store(database)
        with store.session() as session:
            rows = [
                session.execute(select(func.count()).select_from(model)).scalar_one()
                for model in (Customer, Order, OrderLine)
            ]
        store.close()
    records = rows[0] + rows[1]
    assert rows == [len(dataset.customers), len(dataset.orders), lines], rows
    print(done.stdout.strip())
    print(f"bulk result files downloaded: {bulk_files}")
    print(
        f"wall {wall:.1f}s for {records} records ({rows[2]} lines): "
        f"{records / wall:,.0f} records/s; peak RSS of the sync process {peak_mib:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
