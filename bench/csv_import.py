"""Benchmark: import a large POS export through `pull_shop` into a temporary SQLite store.

Writes a deterministic CSV of --rows rows (about two rows per order, one order in ten a guest)
into a temporary folder, times the validation pass alone, the connector's two streams without
a store, then a whole first sync (validation and import of customers and orders), and reports
rows/s (wall and CPU: the machine may be shared) and the process's peak RSS. Run it at
two sizes to see that memory does not grow with the file:

    .venv/bin/python bench/csv_import.py --rows 100000
    .venv/bin/python bench/csv_import.py --rows 1000000
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
import resource
import tempfile
import time
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import TypeVar

from shopcrm.config.load import parse_config
from shopcrm.connectors.csv.columns import COLUMNS
from shopcrm.connectors.csv.connector import CsvConnector
from shopcrm.connectors.csv.rows import ExportFile
from shopcrm.connectors.csv.validate import validate
from shopcrm.store.db import open_store
from shopcrm.sync.pull import pull_shop

T = TypeVar("T")


def write_export(path: Path, rows: int, seed: int = 7) -> int:
    """Write `rows` rows; returns how many orders they make."""
    rng = random.Random(seed)
    customers = max(rows // 20, 1)
    written = orders = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.DictWriter(handle, fieldnames=COLUMNS)
        out.writeheader()
        while written < rows:
            orders += 1
            n_lines = min(rng.choice((1, 2, 3)), rows - written)
            prices = [rng.randint(100, 9_999) for _ in range(n_lines)]
            cid, hour = rng.randrange(customers), orders % 24
            order = {
                "order_id": f"R{orders}",
                "customer_id": "" if rng.random() < 0.1 else f"C{cid}",  # one in ten a guest
                "email": f"buyer{cid}@example.test",
                "created_at": f"2025-{1 + orders % 12:02d}-{1 + orders % 28:02d}T{hour:02d}:15",
                "total": f"{sum(prices) / 100:.2f}",
                "currency": "EUR",
                "first_name": "Kim",
                "last_name": "Lee, Jr.",
            }
            for price in prices:
                line = {
                    "sku": f"SKU-{price % 500}",
                    "quantity": 1,
                    "unit_price": f"{price / 100:.2f}",
                }
                out.writerow(order | line)
            written += n_lines
    return orders


def timed(work: Callable[[], T]) -> tuple[T, float, float]:
    """The result of `work`, its wall time and its CPU time (the machine may be shared)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = work()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def report(what: str, rows: int, wall: float, cpu: float) -> None:
    print(
        f"{what}: {wall:.1f} s wall = {rows / wall:,.0f} rows/s; "
        f"{cpu:.1f} s CPU = {rows / cpu:,.0f} rows/CPU-s"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the generated data has a few duplicate rows
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp, "exports")
        folder.mkdir()
        export = folder / "pos.csv"
        orders = write_export(export, args.rows)
        size_mb = export.stat().st_size / 2**20
        config = parse_config(
            {
                "database": f"sqlite:///{tmp}/bench.db",
                "shops": [
                    {"name": "pos", "platform": "csv", "path": str(folder), "currency": "EUR"}
                ],
            },
            env={},
        )
        shop = config.shops[0]
        store = open_store(config.database)
        baseline = peak_rss_mb()

        export_file = ExportFile(export, shop, updated_at=None)  # type: ignore[arg-type]
        checked, *validation_s = timed(lambda: validate(export_file))
        assert checked.ok, checked.messages()
        pos = CsvConnector(shop, config)  # type: ignore[arg-type]
        _, *streams_s = timed(
            lambda: sum(len(p.records) for p in chain(pos.customers(None), pos.orders(None)))
        )
        result, *sync_s = timed(lambda: pull_shop(store, config, shop))
        assert result.ok, result.error
        store.close()
    print(f"rows={args.rows} orders={orders} customers={result.customers} file={size_mb:.0f} MB")
    report("validation pass", args.rows, *validation_s)
    report("connector alone (validate + customers + orders, no store)", args.rows, *streams_s)
    report("first sync into SQLite (pull_shop: connector + store)", args.rows, *sync_s)
    print(f"peak RSS: {peak_rss_mb():.0f} MB (after imports and store open: {baseline:.0f} MB)")


if __name__ == "__main__":
    main()
