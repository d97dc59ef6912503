"""Benchmark: enrich 300,000 customers with 1,000,000 orders from a SQLite store.

    .venv/bin/python bench/enrich.py [--customers 300000] [--orders 1000000] [--repeats 3]

Generates a seeded store once (one shop, Europe/Berlin, EUR; guests, duplicate and messy
emails, cancellations, refunds, a second currency, 1-3 lines per order), then for each repeat
copies it and runs `run_enrich` three times in a fresh process: "cold" (identity must create
every person and link every customer and guest order; no metrics exist yet), "warm" (a rerun
the same day over the same data: nothing to write) and "next_day" (as-of one day later: every
buyer's days since, recency, P(alive) and CLV change, so every buyer's daily values are
rewritten); then, in a second process, "next_day_fresh" (as-of a day later again: the daily
cron run, which starts without the page caches a previous run leaves in its process) and
"after_sync_fresh" (the day after that, once a day's sync has gone through the store's
upserts: `DAY` new customers, orders and refunds, as `shopcrm run` pulls them before it
enriches; the sync itself is timed apart and not counted). The generator stores
`email_normalised` beside each email and each order's `customer_id`, as the upserts do.
Prints the median seconds per stage and the peak resident memory of the enrich process
(ru_maxrss), and the same as JSON on the last line. CPU seconds are printed beside wall
seconds because the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:
    from shopcrm.store.db import Store

AS_OF = date(2026, 11, 1)
# first enrichment after the import, a rerun the same day, the next day's run: one process
RUNS = {"cold": AS_OF, "warm": AS_OF, "next_day": AS_OF + timedelta(days=1)}
# the day after, in a process of its own, as cron starts it (no warm caches of a previous run),
# and the day after that, following a day's sync
FRESH_RUNS = {
    "next_day_fresh": AS_OF + timedelta(days=2),
    "after_sync_fresh": AS_OF + timedelta(days=3),
}
SYNC_FIRST = {"after_sync_fresh"}
# one day's sync: new customers, orders (theirs, existing buyers', guests'), refunds of old ones
DAY = {"customers": 300, "orders": 1_500, "refunds": 100}
DAY_US = 86_400_000_000
YEARS = 3


def _times(micros: np.ndarray) -> list[str]:
    text = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")
    return [t.replace("T", " ") for t in text.tolist()]


def generate(path: Path, customers: int, orders: int, seed: int = 7) -> None:
    """Write a seeded store to `path` (raw SQL in the store's SQLite storage format)."""
    import sqlite3

    from shopcrm.store.db import open_store
    from shopcrm.store.emails import normalise_email

    open_store(f"sqlite:///{path}").close()
    rng = np.random.default_rng(seed)
    end_us = int(datetime(2026, 11, 1, 12, tzinfo=UTC).timestamp()) * 1_000_000
    start_us = end_us - YEARS * 365 * DAY_US
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(
        "INSERT INTO shop (id, name, platform, currency, timezone) "
        "VALUES (1, 'bench', 'csv', 'EUR', 'Europe/Berlin')"
    )
    ids = np.arange(customers)
    emails: list[str | None] = [f"user{i}@example.com" for i in range(customers)]
    kind = rng.random(customers)
    for i in np.flatnonzero(kind < 0.08).tolist():
        emails[i] = None
    for i in np.flatnonzero((kind >= 0.08) & (kind < 0.11)).tolist():
        emails[i] = f"  User{i}@Example.COM "
    for i in np.flatnonzero((kind >= 0.11) & (kind < 0.12)).tolist():
        emails[i] = f"user{max(i - 1, 0)}@example.com"
    stamp = _times(np.array([end_us]))[0]
    conn.executemany(
        "INSERT INTO customer (id, shop_id, platform_id, email, email_normalised, updated_at, "
        "tags, deleted, redacted) VALUES (?, 1, ?, ?, ?, ?, '[]', 0, 0)",
        [
            (int(i) + 1, f"c{i}", e, normalise_email(e), stamp)
            for i, e in zip(ids.tolist(), emails, strict=True)
        ],
    )
    # Customer orders follow BG/NBD (rate ~ Gamma(r, alpha) per day, dropout ~ Beta(a, b)
    # after each repeat) from a first purchase spread over the years; guests fill the rest.
    buyers = int(customers * 0.9)
    rate = rng.gamma(0.8, 1 / 90, buyers)
    drop = rng.beta(1.5, 6.0, buyers)
    t = rng.integers(start_us, end_us, buyers)
    owner_parts, time_parts = [np.arange(buyers)], [t.copy()]
    active = np.arange(buyers)
    while len(active):
        wait = np.minimum(rng.exponential(1 / rate[active]), 3650.0)
        t[active] += (wait * DAY_US).astype(np.int64)
        active = active[t[active] <= end_us]
        owner_parts.append(active)
        time_parts.append(t[active].copy())
        active = active[rng.random(len(active)) >= drop[active]]
    owner = np.concatenate(owner_parts)
    created = np.concatenate(time_parts)
    keep = np.argsort(owner, kind="stable")[: orders - orders // 20]
    owner, created = owner[keep], created[keep]
    guests = orders - len(owner)
    guest_created = rng.integers(start_us, end_us, guests)
    created = np.r_[created, guest_created]
    n = len(created)
    cust_pid: list[str | None] = [f"c{c}" for c in owner.tolist()] + [None] * guests
    cust_id: list[int | None] = [c + 1 for c in owner.tolist()] + [None] * guests
    guest_email = [
        f"user{rng.integers(customers)}@example.com" if rng.random() < 0.3 else f"guest{j}@ex.com"
        for j in range(guests)
    ]
    order_email: list[str | None] = [emails[c] for c in owner.tolist()] + guest_email
    total = (np.round(rng.lognormal(3.8, 0.6, n), 2) * 1_000_000).astype(np.int64)
    u = rng.random(n)
    refunded = np.where(u < 0.01, total, np.where(u < 0.04, total // 4, 0))
    cancelled = rng.random(n) < 0.02
    currency = np.where(rng.random(n) < 0.005, "USD", "EUR")
    status = np.where(rng.random(n) < 0.003, "voided", "paid")
    created_s = _times(created)
    cancelled_s = [s if c else None for s, c in zip(created_s, cancelled.tolist(), strict=True)]
    conn.executemany(
        "INSERT INTO orders (id, shop_id, platform_id, customer_platform_id, customer_id, "
        "email, email_normalised, created_at, updated_at, cancelled_at, currency, total, "
        "refunded, financial_status, deleted) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        zip(
            range(1, n + 1),
            (f"o{i}" for i in range(n)),
            cust_pid,
            cust_id,
            order_email,
            map(normalise_email, order_email),
            created_s,
            created_s,
            cancelled_s,
            currency.tolist(),
            total.tolist(),
            refunded.tolist(),
            status.tolist(),
            strict=True,
        ),
    )
    lines_per = rng.integers(1, 4, n)
    order_of = np.repeat(np.arange(1, n + 1), lines_per)
    products = rng.zipf(1.3, len(order_of)) % 5000
    conn.executemany(
        "INSERT INTO order_line (order_id, position, product_id, sku, title, quantity, unit_price) "
        "VALUES (?, 0, ?, ?, ?, ?, 1000000)",
        zip(
            order_of.tolist(),
            (f"p{p}" for p in products.tolist()),
            (f"SKU-{p}" for p in products.tolist()),
            (f"Product {p}" for p in products.tolist()),
            rng.integers(1, 4, len(order_of)).tolist(),
            strict=True,
        ),
    )
    conn.commit()
    conn.close()


def sync_a_day(store: Store, day: date, seed: int = 11) -> float:
    """Store one day's sync through the upserts (as a pull would); returns its seconds."""
    from sqlalchemy import select

    from shopcrm.records import CustomerRecord, OrderLineRecord, OrderRecord
    from shopcrm.store.models import Customer, Order, OrderLine
    from shopcrm.store.upsert import ensure_shop, upsert_customers, upsert_orders

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    morning = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=7)
    new = [f"new{day:%m%d}-{i}" for i in range(DAY["customers"])]
    customers = [CustomerRecord(c, morning, email=f"{c}@example.com") for c in new]
    with store.session() as s:
        shop = ensure_shop(s, "bench", "csv", now=morning)
        known = s.execute(select(Customer.platform_id)).scalars().all()
        refunded = s.execute(
            select(
                Order.id,
                Order.platform_id,
                Order.created_at,
                Order.total,
                Order.customer_platform_id,
            )
            .where(Order.refunded == 0, Order.cancelled_at.is_(None))
            .order_by(Order.id)
            .limit(DAY["refunds"])
        ).all()
        kept: dict[int, list[OrderLineRecord]] = {}  # a pull brings an order with its lines
        for line in s.execute(
            select(OrderLine).where(OrderLine.order_id.in_([r[0] for r in refunded]))
        ).scalars():
            kept.setdefault(line.order_id, []).append(
                OrderLineRecord(line.quantity, line.unit_price, title=line.title, sku=line.sku)
            )
    orders = []
    for i in range(DAY["orders"]):
        buyer = (
            (new[i % len(new)] if i < len(new) else known[int(rng.integers(len(known)))])
            if i % 8
            else None
        )  # one in eight a guest checkout
        at = morning + timedelta(minutes=int(rng.integers(12 * 60)))
        lines = tuple(
            OrderLineRecord(int(rng.integers(1, 4)), Decimal("9.90"), title=f"Product {p}")
            for p in rng.zipf(1.3, int(rng.integers(1, 4))) % 5000
        )
        email = None if buyer else f"walkin{day:%m%d}-{i}@example.com"
        total = Decimal(int(rng.integers(500, 20_000))) / 100
        orders.append(
            OrderRecord(
                f"d{day:%m%d}-{i}", at, at, "EUR", total, Decimal(0), buyer, email, lines=lines
            )
        )
    for order_id, platform_id, created, total, buyer in refunded:
        lines = tuple(kept.get(order_id, ()))
        orders.append(
            OrderRecord(platform_id, created, morning, "EUR", total, total, buyer, lines=lines)
        )
    with store.session() as s:
        upsert_customers(s, shop, customers, morning)
        upsert_orders(s, shop, orders, morning)
    return time.perf_counter() - started


def run_once(path: Path, runs: dict[str, date]) -> dict[str, object]:
    """These runs of enrich over the store at `path`, one after the other, in this process."""
    from shopcrm.config.load import parse_config
    from shopcrm.enrich.pipeline import run_enrich
    from shopcrm.store.db import open_store

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = parse_config(
        {
            "shops": [{"name": "bench", "platform": "csv", "path": ".", "currency": "EUR"}],
            "segments": [
                {"name": "big-spenders", "rule": "orders_count >= 3 and total_spent > 500"}
            ],
        }
    )
    store = open_store(f"sqlite:///{path}")
    out: dict[str, object] = {}
    for label, day in runs.items():
        synced = sync_a_day(store, day) if label in SYNC_FIRST else None
        started = time.perf_counter()
        cpu = time.process_time()
        now = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=23)
        report = run_enrich(store, config, as_of=day, now=now)
        total = time.perf_counter() - started
        cpu = time.process_time() - cpu
        shop = report.shops[0]
        out[label] = {
            "total": total,
            "cpu": cpu,
            "stages": report.timings,
            "model": shop.model_status,
            "message": shop.model_message,
            "buyers": shop.buyers,
            "customers": shop.customers,
            "persons": report.identity.persons,
            "memberships": sum(shop.segments.values()),
            "sync_seconds": synced,
        }
    store.close()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["baseline_rss_mb"] = baseline / 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--db", type=Path, help="Keep the generated store here and reuse it when it exists."
    )
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_once(args.run, FRESH_RUNS if args.fresh else RUNS)))
        return
    if args.generate:
        generate(args.generate, args.customers, args.orders)
        return
    with tempfile.TemporaryDirectory(prefix="shopcrm-bench-") as tmp:
        base = args.db or Path(tmp) / "base.db"
        if not base.exists():
            started = time.perf_counter()
            # in a child process: ru_maxrss survives exec, so the parent must stay small
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--generate",
                    str(base),
                    "--customers",
                    str(args.customers),
                    "--orders",
                    str(args.orders),
                ],
                check=True,
            )
            print(
                f"generated {args.customers} customers, {args.orders} orders in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
        runs = []
        for i in range(args.repeats):
            copy = Path(tmp) / f"run{i}.db"
            shutil.copyfile(base, copy)
            outputs = [
                json.loads(
                    subprocess.run(
                        [sys.executable, __file__, "--run", str(copy), *flags],
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout.splitlines()[-1]
                )
                for flags in ([], ["--fresh"])
            ]
            merged = outputs[0] | outputs[1]
            merged["peak_rss_mb"] = max(o["peak_rss_mb"] for o in outputs)
            runs.append(merged)
            print(f"run {i + 1}: {json.dumps(runs[-1])}", flush=True)
            copy.unlink()
    summary: dict[str, object] = {
        "customers": args.customers,
        "orders": args.orders,
        "repeats": args.repeats,
    }
    for label in [*RUNS, *FRESH_RUNS]:
        stages = {
            s: statistics.median(r[label]["stages"][s] for r in runs)
            for s in runs[0][label]["stages"]
        }
        summary[label] = {
            "total": statistics.median(r[label]["total"] for r in runs),
            "cpu": statistics.median(r[label]["cpu"] for r in runs),
            "stages": stages,
            "model": runs[0][label]["model"],
            "message": runs[0][label]["message"],
            "memberships": runs[0][label]["memberships"],
            "buyers": runs[0][label]["buyers"],
            "persons": runs[0][label]["persons"],
        }
        line = ", ".join(f"{s} {v:.2f}" for s, v in stages.items())
        print(
            f"{label}: total {summary[label]['total']:.2f} s wall, "
            f"{summary[label]['cpu']:.2f} s CPU (median of {args.repeats}); {line}"
        )
        print(f"  model: {runs[0][label]['message']}")
        if label in SYNC_FIRST:
            synced = statistics.median(r[label]["sync_seconds"] for r in runs)
            summary[label]["sync_seconds"] = synced
            print(f"  after a day's sync ({DAY}) through the upserts: {synced:.2f} s, not counted")
    summary["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    summary["baseline_rss_mb"] = statistics.median(r["baseline_rss_mb"] for r in runs)
    print(
        f"peak RSS {summary['peak_rss_mb']:.0f} MB (after imports: "
        f"{summary['baseline_rss_mb']:.0f} MB)"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
