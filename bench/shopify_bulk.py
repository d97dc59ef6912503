"""Benchmark: a first Shopify sync of a large shop through bulk operations.

The sandbox serves a seeded shop (default 100,000 customers, about 300,000 orders) from this
process without rate limits; `shopcrm sync` runs as a child process into a fresh SQLite store,
so its peak memory is the connector's and the store's alone. The peak is the child's VmHWM read
from /proc while it runs (getrusage's children max RSS would also count the bench process's own
pages the child shares between fork and exec). Reported:
wall time of the sync, records per second, peak RSS of the sync process, and the store's row
counts checked against the seed.

    .venv/bin/python bench/shopify_bulk.py --customers 100000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import yaml
from sqlalchemy import func, select

from shopcrm.sandbox.seed import generate
from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.store.db import open_store
from shopcrm.store.models import Customer, Order, OrderLine


def watch_peak(process: subprocess.Popen[str], peak: list[int]) -> None:
    """Keep the child's peak resident set (VmHWM, KiB) in `peak[0]` until it exits."""
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]))
        except (OSError, ValueError):
            return
        time.sleep(0.2)


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
        process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak = [0]
        watcher = threading.Thread(target=watch_peak, args=(process, peak), daemon=True)
        watcher.start()
        stdout, stderr = process.communicate()
        wall = time.perf_counter() - clock
        watcher.join()
        peak_mib = peak[0] / 1024
        if process.returncode != 0:
            sys.exit(f"sync failed ({process.returncode}): {stderr[-2000:]}")
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
    print(stdout.strip())
    print(f"bulk result files downloaded: {bulk_files}")
    print(
        f"wall {wall:.1f}s for {records} records ({rows[2]} lines): "
        f"{records / wall:,.0f} records/s; peak RSS of the sync process {peak_mib:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
