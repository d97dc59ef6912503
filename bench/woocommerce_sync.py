"""Benchmark: WooCommerce full sync, and the incremental customer scan vs re-reading everyone.

The sandbox runs as its own process (`shopcrm sandbox woocommerce`), as a real store would, so
its JSON rendering does not share this process's GIL. Measures:
1. a full `pull_shop` into a fresh SQLite store: records/s and requests;
2. `customers(since)` with `since` chosen so 1% of the customers changed (scan of
   `id,date_modified_gmt` + `include=` fetch) against `customers(None)` (every customer in full):
   requests, bytes received and time, median of --repeat runs.

    .venv/bin/python bench/woocommerce_sync.py --customers 20000 --repeat 3 --full-runs 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import requests
from sandbox_process import serve_sandbox

from shopcrm.config.load import parse_config
from shopcrm.config.schema import AppConfig
from shopcrm.connectors.woocommerce.connector import WooCommerceConnector
from shopcrm.sandbox.seed import generate
from shopcrm.store.db import open_store
from shopcrm.sync.pull import pull_shop

ENV = {
    "SHOPCRM_SANDBOX_WOO_KEY": "ck_bench_0000000000000000000000000000000000",
    "SHOPCRM_SANDBOX_WOO_SECRET": "cs_bench_0000000000000000000000000000000000",
}


def serve(customers: int, seed: int) -> tuple[subprocess.Popen[str], str]:
    """Start `shopcrm sandbox woocommerce` and return it with its URL."""
    return serve_sandbox("woocommerce", "--customers", str(customers), "--seed", str(seed), env=ENV)


def config(url: str, database: str) -> AppConfig:
    shop = {
        "name": "bench",
        "platform": "woocommerce",
        "url": url,
        "credentials": {
            "consumer_key": "${SHOPCRM_SANDBOX_WOO_KEY}",
            "consumer_secret": "${SHOPCRM_SANDBOX_WOO_SECRET}",
        },
    }
    return parse_config({"database": database, "shops": [shop]}, env=ENV)


class Counted:
    """A connector whose received bytes are counted."""

    def __init__(self, app: AppConfig) -> None:
        self.connector = WooCommerceConnector(app.shops[0], app)  # type: ignore[arg-type]
        self.bytes = 0

        def count(response: requests.Response, *_: Any, **__: Any) -> None:
            self.bytes += len(response.content)

        self.connector.client.session.hooks["response"].append(count)


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def drain(pages: Iterator[Any]) -> int:
    return sum(len(page.records) for page in pages)


def one_percent_since(customers: int, seed: int) -> tuple[datetime, int]:
    """The instant after which 1% of the (same, deterministic) customers were updated."""
    stamps = sorted(
        c.updated_at for c in generate(customers=customers, seed=seed).customers.values()
    )
    since = stamps[-max(1, customers // 100)]
    return since, sum(1 for s in stamps if s >= since)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each customer pass")
    parser.add_argument("--full-runs", type=int, default=3, help="runs of the full sync")
    args = parser.parse_args()
    proc, url = serve(args.customers, args.seed)
    try:
        full: list[tuple[float, int, int, int]] = []
        for _ in range(args.full_runs):
            with tempfile.TemporaryDirectory() as tmp:
                app = config(url, f"sqlite:///{tmp}/bench.db")
                store = open_store(app.database)
                start = time.perf_counter()
                result = pull_shop(store, app, app.shops[0], full=True)
                seconds = time.perf_counter() - start
                store.close()
                assert result.ok, result.error
                full.append((seconds, result.customers, result.orders, result.requests))
                print(f"  full sync run: {seconds:.1f}s", flush=True)
        seconds = statistics.median(f[0] for f in full)
        _, customers, orders, requests_made = full[0]
        print(
            f"full sync: {customers} customers + {orders} orders in {seconds:.1f}s median "
            f"of {args.full_runs} ({(customers + orders) / seconds:,.0f} records/s), "
            f"{requests_made} requests"
        )
        since, changed = one_percent_since(args.customers, args.seed)
        app = config(url, "sqlite://")
        rows = []
        for label, start in (
            ("scan + include (1% changed)", since),
            ("re-read every customer", None),
        ):
            runs = []
            for _ in range(args.repeat):
                counted = Counted(app)
                took, records = timed(lambda c=counted, s=start: drain(c.connector.customers(s)))
                runs.append((took, records, counted.connector.requests_made, counted.bytes))
                counted.connector.close()
            took = statistics.median(r[0] for r in runs)
            rows.append((label, took, *runs[0][1:]))
        for label, took, records, made, received in rows:
            print(
                f"customers, {label}: {records} records, {made} requests, "
                f"{received / 1e6:.1f} MB, {took:.2f}s median"
            )
        scan, reread = rows
        print(
            f"incremental customer pass ({changed} changed): {reread[1] / scan[1]:.1f}x faster, "
            f"{reread[4] / scan[4]:.1f}x fewer bytes, requests {scan[3]} vs {reread[3]}"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
