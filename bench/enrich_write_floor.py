"""Benchmark: the least the first enrichment's writes can cost with this schema and machine.

    .venv/bin/python bench/enrich.py --repeats 1 --db /tmp/enr/bench3.db   # makes the store
    .venv/bin/python bench/enrich_write_floor.py --db /tmp/enr/bench3.db [--repeats 3]

Runs a first enrichment on a copy of the generated store, reads back every row it wrote
(persons, customer links, customer and person metrics, memberships), then writes exactly those
rows into fresh copies of the store: prebuilt in memory as tuples, one `executemany` per table,
in two transactions as the enrichment commits them, with the store's own SQLite settings. No
reading, no computing and no Python per value beyond the driver's binding: what is left is
SQLite's own work (B-trees, indexes, foreign-key checks, the WAL and its checkpoint), the floor
that any first run's writes pay here. Then the floor of a next day's customer write: every
buyer's metrics row of the enriched store updated by key, once with the eleven values a day
changes and once with one. Prints the median seconds of each part.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.enrich import AS_OF, run_once
from shopcrm.store.db import _sqlite_pragmas

TABLES = ("person", "person_metrics", "customer_metrics", "segment_membership")


def _written(path: Path) -> dict[str, Any]:
    """Every row the enrichment wrote, as (columns, rows) per table, and the customer links."""
    conn = sqlite3.connect(path)
    out: dict[str, Any] = {}
    for table in TABLES:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        out[table] = (columns, conn.execute(f"SELECT * FROM {table}").fetchall())  # noqa: S608
    out["links"] = conn.execute("SELECT person_id, id FROM customer").fetchall()
    conn.close()
    return out


def _insert(conn: sqlite3.Connection, table: str, columns: list[str], rows: list[Any]) -> None:
    marks = ", ".join("?" * len(columns))
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)  # noqa: S608


def write_once(base: Path, copy: Path, written: dict[str, Any]) -> dict[str, float]:
    shutil.copyfile(base, copy)
    conn = sqlite3.connect(copy, isolation_level=None)
    _sqlite_pragmas(conn, None)
    seconds: dict[str, float] = {}

    def timed(part: str, work: Callable[[], object]) -> None:
        started = time.perf_counter()
        work()
        seconds[part] = time.perf_counter() - started

    conn.execute("BEGIN")
    timed("persons", lambda: _insert(conn, "person", *written["person"]))
    timed(
        "customer links",
        lambda: conn.executemany(
            "UPDATE customer SET person_id = ? WHERE id = ?", written["links"]
        ),
    )
    timed("commit (identity)", lambda: conn.execute("COMMIT"))
    conn.execute("BEGIN")
    for table in TABLES[1:]:
        timed(table, lambda table=table: _insert(conn, table, *written[table]))
    timed("commit (metrics)", lambda: conn.execute("COMMIT"))
    conn.close()
    return seconds


DAILY = [
    "days_since_last_order",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "rfm_segment",
    "p_alive",
    "expected_purchases",
    "expected_order_value",
    "predicted_clv",
    "computed_at",
    "fingerprint",
]


def update_once(enriched: Path, copy: Path, columns: list[str]) -> float:
    """Every buyer's row of a fresh copy updated by key in these columns (p_alive moved), as a
    new process's next day run writes it: the WAL starts empty and is checkpointed at commit."""
    shutil.copyfile(enriched, copy)
    conn = sqlite3.connect(copy, isolation_level=None)
    _sqlite_pragmas(conn, None)
    rows = conn.execute(
        f"SELECT {', '.join(columns)}, customer_id FROM customer_metrics "  # noqa: S608
        "WHERE orders_count > 0"
    ).fetchall()
    moved = columns.index("p_alive")
    values = [(*r[:moved], r[moved] * 0.99, *r[moved + 1 :]) for r in rows]
    sets = ", ".join(f"{name} = ?" for name in columns)
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(f"UPDATE customer_metrics SET {sets} WHERE customer_id = ?", values)  # noqa: S608
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    copy.unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="a store bench/enrich.py made")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shopcrm-floor-") as tmp:
        enriched = Path(tmp) / "enriched.db"
        shutil.copyfile(args.db, enriched)
        run_once(enriched, {"cold": AS_OF})
        written = _written(enriched)
        runs = [write_once(args.db, Path(tmp) / f"run{i}.db", written) for i in range(args.repeats)]
        updates = {
            f"{len(columns)} column(s)": [
                update_once(enriched, Path(tmp) / "update.db", columns) for _ in range(args.repeats)
            ]
            for columns in (DAILY, ["p_alive"])
        }
    counts = {t: len(written[t][1]) for t in TABLES} | {"customer links": len(written["links"])}
    print("rows:", ", ".join(f"{name} {n:,}" for name, n in counts.items()))
    medians = {part: statistics.median(r[part] for r in runs) for part in runs[0]}
    for part, value in medians.items():
        print(f"{part:>24}: {value:6.2f} s")
    total = statistics.median(sum(r.values()) for r in runs)
    print(f"{'total':>24}: {total:6.2f} s (median of {args.repeats})")
    print("a next day's customer write, every buyer's row by key, with its commit:")
    for part, seconds in updates.items():
        print(f"{part:>24}: {statistics.median(seconds):6.2f} s")


if __name__ == "__main__":
    main()
