"""`shopcrm demo`: the whole job on this machine, against local sandbox shops.

Every platform sandbox shopcrm ships is started on 127.0.0.1 with its own seeded data, a POS
export is written as CSV, and a config and SQLite store are written to a temporary folder (or
`--keep DIR`). Then each shop is pulled, enriched and pushed exactly as `shopcrm run --force`
does, and a summary says what happened. No account, no network, nothing left outside the folder.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import yaml
from rich import box
from rich.console import Console
from rich.table import Table

from shopcrm.config.load import load_config
from shopcrm.connectors.csv.columns import COLUMNS
from shopcrm.sandbox.seed import Dataset, generate
from shopcrm.store.db import open_store
from shopcrm.sync.run import ShopRunResult, run_shops

log = logging.getLogger(__name__)

# (shop name, module, class, seed, currency, timezone, options): one sandbox shop per platform.
# The Shopify shop gets Shopify Plus's query-cost limit (20,000 points, 1,000 a second) so that
# tagging every customer takes seconds, not the minutes the Standard plan's 100 a second would.
SANDBOXES: tuple[tuple[str, str, str, int, str, str, dict[str, Any]], ...] = (
    (
        "shopify-demo",
        "shopcrm.sandbox.shopify.app",
        "ShopifySandbox",
        11,
        "USD",
        "America/New_York",
        {"bucket_size": 20_000.0, "restore_rate": 1_000.0},
    ),
    (
        "woo-demo",
        "shopcrm.sandbox.woocommerce.app",
        "WooCommerceSandbox",
        12,
        "EUR",
        "Europe/Berlin",
        {},
    ),
    (
        "bigcommerce-demo",
        "shopcrm.sandbox.bigcommerce.app",
        "BigCommerceSandbox",
        13,
        "GBP",
        "Europe/London",
        {},
    ),
)
POS_SHOP = ("pos-demo", 14, "EUR", "Europe/Berlin")
# The demo shops are small: CLV is fitted from fewer buyers than a real shop should need.
DEMO_CLV = {"min_buyers": 50, "min_repeat_buyers": 10}


@dataclass(frozen=True, slots=True)
class DemoShop:
    """A shop the demo made: its config entry and the environment its `${VAR}`s need."""

    entry: dict[str, Any]
    env: dict[str, str]


class _Quiet:
    """Pages are not worth a line each in the demo's output."""

    def page(self, shop: str, stream: str, records: int, total: int) -> None:
        return None


def write_pos_export(dataset: Dataset, path: Path) -> None:
    """The dataset's orders as a till's CSV export: one row per order line."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for order in dataset.orders.values():
            for line in order.lines:
                writer.writerow(
                    {
                        "order_id": f"R{order.number}",
                        "customer_id": f"P{order.customer_id}" if order.customer_id else "",
                        "email": (order.email or "").strip(),
                        "created_at": order.created_at.isoformat(),
                        "total": order.total,
                        "currency": order.currency,
                        "first_name": order.first_name,
                        "last_name": order.last_name,
                        "refunded": order.refunded,
                        "status": "cancelled" if order.cancelled_at else "paid",
                        "sku": line.sku,
                        "quantity": line.quantity,
                        "unit_price": line.unit_price,
                    }
                )


def _start_sandboxes(stack: ExitStack, customers: int) -> list[DemoShop]:
    """Start every platform sandbox this install has; each stops when the stack closes."""
    shops = []
    for name, module, cls, seed, currency, tz, options in SANDBOXES:
        try:
            sandbox_class = getattr(import_module(module), cls)
        except (ImportError, AttributeError):
            log.info("demo: no %s in this install; skipped", cls)
            continue
        dataset = generate(customers=customers, seed=seed, currency=currency, timezone=tz)
        sandbox = sandbox_class(dataset, **options).start()
        stack.callback(sandbox.stop)
        entry, env = sandbox.shop_entry(name)
        shops.append(DemoShop(entry, env))
    return shops


def _pos_shop(folder: Path, customers: int) -> DemoShop:
    name, seed, currency, tz = POS_SHOP
    exports = folder / "pos-exports"
    exports.mkdir(exist_ok=True)
    dataset = generate(customers=customers, seed=seed, currency=currency, timezone=tz)
    write_pos_export(dataset, exports / "till-2026.csv")
    entry = {
        "name": name,
        "platform": "csv",
        "path": "pos-exports",
        "currency": currency,
        "timezone": tz,
    }
    return DemoShop(entry, {})


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set the sandboxes' credential variables for this process only, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _write_config(folder: Path, shops: list[DemoShop]) -> tuple[Path, dict[str, str]]:
    env = {k: v for shop in shops for k, v in shop.env.items()}
    data = {
        "database": "sqlite:///shopcrm.db",
        "defaults": {"clv": DEMO_CLV},
        "shops": [shop.entry for shop in shops],
    }
    path = folder / "shopcrm.yaml"
    path.write_text(
        "# Written by `shopcrm demo`: local sandbox shops on 127.0.0.1 (gone when it ends).\n"
        + yaml.safe_dump(data, sort_keys=False),
        encoding="utf-8",
    )
    return path, env


def run_demo(console: Console, *, keep: Path | None = None, customers: int = 400) -> None:
    """Start the sandboxes, run pull -> enrich -> push on each shop, print what happened.

    Args:
        console: where the summary goes.
        keep: keep the config, store and exports in this folder (default: a temp folder).
        customers: customers per sandbox shop.

    Raises:
        RunFailed: a demo shop failed (the summary says which and why).
    """
    started = time.monotonic()
    with ExitStack() as stack:
        if keep is None:
            folder = Path(stack.enter_context(TemporaryDirectory(prefix="shopcrm-demo-")))
        else:
            folder = keep.resolve()
            folder.mkdir(parents=True, exist_ok=True)
        console.print(f"shopcrm demo: sandbox shops on 127.0.0.1, files in {folder}", markup=False)
        shops = [*_start_sandboxes(stack, customers), _pos_shop(folder, customers)]
        config_path, env = _write_config(folder, shops)
        stack.enter_context(_environment(env))
        config = load_config(config_path)
        store = open_store(config.database)
        stack.callback(store.close)
        results = run_shops(store, config, force=True, progress=_Quiet())
        elapsed = time.monotonic() - started
        _summary(console, results, elapsed)
        if keep is not None:
            env_file = folder / "demo.env"
            env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
        _next_steps(console, folder if keep is not None else None)
    from shopcrm.sync.run import raise_for_results

    raise_for_results(results)


def _segments(result: ShopRunResult) -> str:
    sizes = result.push.plan.segment_sizes if result.push and result.push.plan else {}
    return ", ".join(f"{name} {size}" for name, size in sizes.items()) or "-"


def _clv_status(result: ShopRunResult) -> str:
    report = result.enrich
    shops = getattr(report, "shops", None) or []
    return next((s.model_status for s in shops if s.shop == result.shop), "-")


def _summary(console: Console, results: list[ShopRunResult], elapsed: float) -> None:
    table = Table(title="What happened", box=box.SIMPLE_HEAD, padding=(0, 1))
    for column in ("shop", "platform", "customers", "orders", "tags +/-", "guests", "CLV"):
        table.add_column(column, no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    for r in results:
        push = r.push
        tags = (
            "n/a"
            if push is not None and not push.taggable
            else f"+{push.tags_added if push else 0}/-{push.tags_removed if push else 0}"
        )
        table.add_row(
            r.shop,
            r.platform,
            str(r.pull.customers if r.pull else 0),
            str(r.pull.orders if r.pull else 0),
            tags,
            str(push.plan.guests_not_taggable if push and push.plan else 0),
            _clv_status(r),
            f"{r.duration_s:.1f}s",
            "ok" if r.ok else "FAILED",
        )
    # a pipe or log file gets the whole table rather than ellipses at 80 columns
    wide = console if console.is_terminal else Console(file=console.file, width=120)
    wide.print(table)
    for r in results:
        if not r.ok:
            console.print(f"{r.shop} failed: {r.error}", markup=False)
    console.print("Segments (customers in each):", markup=False)
    for r in results:
        console.print(f"  {r.shop}: {_segments(r)}", markup=False)
    console.print(
        f"{sum(r.ok for r in results)} of {len(results)} shop(s) synced, enriched and tagged "
        f"in {elapsed:.1f}s at "
        f"{datetime.now(UTC):%H:%M} UTC. Tags carry the prefix crm: and only those were "
        "added; the merchants' own tags were left alone. Guests checked out without an "
        "account, so they cannot be tagged; the POS (CSV) shop cannot be tagged at all.",
        markup=False,
    )
    console.print(
        f"Note: the demo lowers CLV's minimum data ({DEMO_CLV}) because its shops are small, "
        "and its Shopify shop has Shopify Plus's API rate limit.",
        markup=False,
    )


def _next_steps(console: Console, folder: Path | None) -> None:
    if folder is None:
        console.print(
            "Next: `shopcrm demo --keep ./demo` keeps the config and store to explore, or "
            "`shopcrm init` writes a config for your own shops.",
            markup=False,
        )
        return
    cfg = folder / "shopcrm.yaml"
    console.print("Next, with the kept store (the sandboxes have stopped):", markup=False)
    for line in (
        f"set -a; . {folder / 'demo.env'}; set +a   # the sandbox credentials the config names",
        f"shopcrm --config {cfg} config check",
        f"shopcrm --config {cfg} push --dry-run     # nothing to change: the demo pushed it",
        f"shopcrm --config {cfg} untag --shop woo-demo --dry-run",
        "shopcrm init                                # a config for your own shops",
    ):
        console.print(f"  {line}", markup=False)
