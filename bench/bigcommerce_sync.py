"""Benchmark: BigCommerce full sync and push against the sandbox under the Standard plan's quota.

The sandbox runs as its own process (`shopcrm sandbox bigcommerce`), as a real store would, with
the Standard plan's 150 requests per window; the window is scaled down (default 3 s instead of
30 s) so the quota binds for a client this fast. Each repeat is a full `pull_shop` into a fresh
SQLite store, then a push of one managed tag to every customer and its removal (10 customers per
PUT, 3 at once: the phase that runs into the quota). Reported: records/s, requests, 429 answers
seen by the client (must be 0: the pacer waits for the window reset instead) and the time spent
waiting, median of --repeat runs.

    .venv/bin/python bench/bigcommerce_sync.py --customers 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from typing import Any

import requests
from sandbox_process import serve_sandbox

from shopcrm.config.load import parse_config
from shopcrm.config.schema import AppConfig
from shopcrm.connectors.bigcommerce.connector import BigCommerceConnector
from shopcrm.records import TagChange
from shopcrm.store.db import open_store
from shopcrm.sync.pull import pull_shop

TOKEN = "bench-token-0000"  # noqa: S105 - the local sandbox's token


def serve(customers: int, seed: int, quota: int, window_ms: int) -> tuple[subprocess.Popen, str]:
    """Start `shopcrm sandbox bigcommerce` and return it with its URL."""
    return serve_sandbox(
        "bigcommerce",
        *("--customers", str(customers), "--seed", str(seed)),
        *("--quota", str(quota), "--window-ms", str(window_ms)),
        env={"SHOPCRM_SANDBOX_BC_TOKEN": TOKEN},
    )


def config(url: str, database: str) -> AppConfig:
    shop = {
        "name": "bench",
        "platform": "bigcommerce",
        "store_hash": "sandbox1",
        "api_url": url,
        "credentials": {"access_token": "${BENCH_BC_TOKEN}"},
    }
    return parse_config({"database": database, "shops": [shop]}, env={"BENCH_BC_TOKEN": TOKEN})


class Counted:
    """A connector whose answers' statuses are recorded."""

    def __init__(self, app: AppConfig) -> None:
        self.connector = BigCommerceConnector(app.shops[0], app)  # type: ignore[arg-type]
        self.statuses: list[int] = []

        def record(response: requests.Response, *_: Any, **__: Any) -> None:
            self.statuses.append(response.status_code)

        self.connector.http.session.hooks["response"].append(record)


def full_sync(url: str, customers: int) -> dict[str, Any]:
    """A full sync into a fresh store, then tag and untag every customer."""
    with tempfile.TemporaryDirectory() as tmp:
        app = config(url, f"sqlite:///{tmp}/bench.db")
        counted = Counted(app)
        connector = counted.connector
        store = open_store(app.database)
        start = time.perf_counter()
        result = pull_shop(store, app, app.shops[0], full=True, connector=connector)
        seconds = time.perf_counter() - start
        store.close()
        assert result.ok, result.error
        sync_waited, sync_429 = connector.pacer.waited_s, counted.statuses.count(429)
        tag = frozenset({"crm:bench"})
        start = time.perf_counter()
        pushed = list(
            connector.apply([TagChange(str(c), add=tag) for c in range(1, customers + 1)])
        )
        untagged = list(
            connector.apply([TagChange(str(c), remove=tag) for c in range(1, customers + 1)])
        )
        push_seconds = time.perf_counter() - start
        connector.close()
        assert all(r.ok for r in pushed + untagged)
        return {
            "seconds": seconds,
            "customers": result.customers,
            "orders": result.orders,
            "requests": result.requests,
            "429": sync_429,
            "waited": sync_waited,
            "push_seconds": push_seconds,
            "push_requests": connector.requests_made - result.requests,
            "push_429": counted.statuses.count(429) - sync_429,
            "push_waited": connector.pacer.waited_s - sync_waited,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quota", type=int, default=150)
    parser.add_argument("--window-ms", type=int, default=3000)
    args = parser.parse_args()
    proc, url = serve(args.customers, args.seed, args.quota, args.window_ms)
    try:
        runs = []
        for i in range(args.repeat):
            runs.append(full_sync(url, args.customers))
            print(f"run {i + 1}: {runs[-1]}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    seconds = statistics.median(r["seconds"] for r in runs)
    records = runs[0]["customers"] + runs[0]["orders"]
    window_s = args.window_ms / 1000
    print(
        f"full sync: {runs[0]['customers']} customers + {runs[0]['orders']} orders, "
        f"median {seconds:.1f}s = {records / seconds:.0f} records/s; "
        f"requests {statistics.median(r['requests'] for r in runs):.0f}; "
        f"429 answers {max(r['429'] for r in runs)}; "
        f"paced waits median {statistics.median(r['waited'] for r in runs):.1f}s "
        f"(quota {args.quota} per {window_s:g}s)"
    )
    push_s = statistics.median(r["push_seconds"] for r in runs)
    push_requests = statistics.median(r["push_requests"] for r in runs)
    print(
        f"push + untag of {args.customers} customers: median {push_s:.1f}s, "
        f"{push_requests:.0f} requests = {push_requests / push_s:.1f} requests/s "
        f"(quota allows {args.quota / window_s:.1f}/s); "
        f"429 answers {max(r['push_429'] for r in runs)}; "
        f"paced waits median {statistics.median(r['push_waited'] for r in runs):.1f}s"
    )


if __name__ == "__main__":
    main()
