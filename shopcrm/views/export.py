"""Customer exports an email tool imports as they are (`shopcrm export customers`).

Rows are streamed: customers are read in id order in batches, their segments from a second
cursor over `segment_membership` in the same order, merged as both go (no per-customer query,
nothing held but one batch). Customers deleted or redacted upstream are left out: an export is
for contacting people. Money is exact (a string in CSV and JSON lines, decimal(20, 6) in
Parquet), times are ISO 8601 UTC.

A file is written to a temporary name beside the target and renamed when complete, so a crash
or Ctrl-C never leaves half a file under the name asked for. In CSV, a text cell that a
spreadsheet would run as a formula (starting with =, +, -, @, a tab or a carriage return) is
prefixed with a single quote (OWASP's advice for CSV injection); numbers are never changed.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sqlalchemy import and_, exists, select

from shopcrm.errors import UsageError
from shopcrm.store.db import Store
from shopcrm.store.models import Customer, CustomerMetrics, SegmentMembership, Shop

FORMATS = ("csv", "jsonl", "parquet")
BATCH = 20_000  # customers per read and per Parquet row group
SEGMENT_SEPARATOR = ";"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# (column, kind): kind says how each format writes it
COLUMNS: Columns = (
    ("email", "text"),
    ("first_name", "text"),
    ("last_name", "text"),
    ("shop", "text"),
    ("customer_id", "text"),
    ("accepts_marketing", "bool"),
    ("segments", "text"),
    ("currency", "text"),
    ("orders_count", "int"),
    ("total_spent", "money"),
    ("average_order_value", "money"),
    ("first_order_at", "time"),
    ("last_order_at", "time"),
    ("days_since_last_order", "int"),
    ("recency_score", "int"),
    ("frequency_score", "int"),
    ("monetary_score", "int"),
    ("rfm_segment", "text"),
    ("previous_rfm_segment", "text"),
    ("rfm_segment_since", "time"),
    ("p_alive", "float"),
    ("expected_purchases", "float"),
    ("predicted_clv", "money"),
)
Columns = tuple[tuple[str, str], ...]
_METRICS = (
    CustomerMetrics.currency,
    CustomerMetrics.orders_count,
    CustomerMetrics.total_spent,
    CustomerMetrics.average_order_value,
    CustomerMetrics.first_order_at,
    CustomerMetrics.last_order_at,
    CustomerMetrics.days_since_last_order,
    CustomerMetrics.recency_score,
    CustomerMetrics.frequency_score,
    CustomerMetrics.monetary_score,
    CustomerMetrics.rfm_segment,
    CustomerMetrics.previous_rfm_segment,
    CustomerMetrics.rfm_segment_since,
    CustomerMetrics.p_alive,
    CustomerMetrics.expected_purchases,
    CustomerMetrics.predicted_clv,
)

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Selection:
    """Which customers: of these shops (all when empty), in any of these segments (any)."""

    shops: Sequence[str] = ()
    segments: Sequence[str] = ()


def customer_batches(store: Store, selection: Selection) -> Iterator[list[Row]]:
    """The export's rows in batches of at most BATCH, in customer id order."""
    where = [Customer.deleted.is_(False), Customer.redacted.is_(False)]
    if selection.shops:
        where.append(Shop.name.in_(selection.shops))
    if selection.segments:
        where.append(
            exists().where(
                and_(
                    SegmentMembership.customer_id == Customer.id,
                    SegmentMembership.segment.in_(selection.segments),
                )
            )
        )
    last_id = 0
    with store.session() as session:
        while True:
            rows = session.execute(
                select(
                    Customer.id,
                    Customer.email,
                    Customer.first_name,
                    Customer.last_name,
                    Shop.name,
                    Customer.platform_id,
                    Customer.accepts_marketing,
                    *_METRICS,
                )
                .join(Shop, Shop.id == Customer.shop_id)
                .outerjoin(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
                .where(Customer.id > last_id, *where)
                .order_by(Customer.id)
                .limit(BATCH)
            ).all()
            if not rows:
                return
            first, last_id = rows[0][0], rows[-1][0]
            segments: dict[int, list[str]] = {}
            for customer_id, segment in session.execute(
                select(SegmentMembership.customer_id, SegmentMembership.segment)
                .where(SegmentMembership.customer_id.between(first, last_id))
                .order_by(SegmentMembership.customer_id, SegmentMembership.segment)
            ):
                segments.setdefault(customer_id, []).append(segment)
            yield [
                (
                    row[1].strip() if row[1] else row[1],  # as typed, less stray whitespace
                    *row[2:7],
                    SEGMENT_SEPARATOR.join(segments.get(row[0], ())),
                    *row[7:],
                )
                for row in rows
            ]


def _neutral(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _money(value: Decimal | None) -> str | None:
    """Exact, and never in exponent form."""
    return None if value is None else format(value, "f")


def _csv_cell(kind: str) -> Callable[[Any], Any]:
    if kind == "json":
        return lambda v: "" if v is None else json.dumps(v, sort_keys=True)
    if kind == "date":
        return lambda v: "" if v is None else v.isoformat()
    if kind == "money":
        return lambda v: "" if v is None else _money(v)
    if kind == "text":
        return lambda v: "" if v is None else _neutral(v)
    if kind == "time":
        return lambda v: "" if v is None else v.isoformat()
    if kind == "bool":
        return lambda v: "" if v is None else ("true" if v else "false")
    return lambda v: "" if v is None else v


def _json_cell(kind: str) -> Callable[[Any], Any]:
    if kind == "money":
        return _money
    if kind in ("time", "date"):
        return lambda v: None if v is None else v.isoformat()
    return lambda v: v


def _write_csv(batches: Iterator[list[Row]], file: IO[str], columns: Columns) -> int:
    cells = [_csv_cell(kind) for _, kind in columns]
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow([name for name, _ in columns])
    count = 0
    for batch in batches:
        writer.writerows([[cell(v) for cell, v in zip(cells, row, strict=True)] for row in batch])
        count += len(batch)
    return count


def _write_jsonl(batches: Iterator[list[Row]], file: IO[str], columns: Columns) -> int:
    cells = [_json_cell(kind) for _, kind in columns]
    names = [name for name, _ in columns]
    count = 0
    for batch in batches:
        file.writelines(
            json.dumps(
                dict(zip(names, [c(v) for c, v in zip(cells, row, strict=True)], strict=True)),
                ensure_ascii=False,
            )
            + "\n"
            for row in batch
        )
        count += len(batch)
    return count


def _write_parquet(batches: Iterator[list[Row]], path: Path, columns: Columns) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(
            "Parquet needs pyarrow: pip install 'shopcrm[parquet]' (or choose --format csv)"
        ) from None
    types = {
        "text": pa.string(),
        "bool": pa.bool_(),
        "int": pa.int64(),
        "float": pa.float64(),
        "money": pa.decimal128(20, 6),
        "time": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "json": pa.string(),
    }
    schema = pa.schema([(name, types[kind]) for name, kind in columns])
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            json_at = [i for i, (_, kind) in enumerate(columns) if kind == "json"]
            if json_at:
                batch = [_json_texts(row, json_at) for row in batch]
            arrays = list(zip(*batch, strict=True))
            writer.write_batch(pa.record_batch(arrays, schema=schema))
            count += len(batch)
    return count


def _json_texts(row: Row, at: list[int]) -> Row:
    return tuple(
        json.dumps(v, sort_keys=True) if i in at and v is not None else v for i, v in enumerate(row)
    )


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A temporary path beside `target`, renamed onto it when the block ends normally and
    removed when it does not (an error, Ctrl-C)."""
    folder = target.parent
    try:
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_export(
    batches: Iterator[list[Row]], fmt: str, out: Path | None, columns: Columns = COLUMNS
) -> int:
    """Write the rows in `fmt` to `out` (stdout when None; not for Parquet); the row count."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if out is None:
        if fmt == "parquet":
            raise UsageError("Parquet is binary: give --out FILE")
        return (_write_csv if fmt == "csv" else _write_jsonl)(batches, sys.stdout, columns)
    if out.is_dir():
        raise UsageError(f"cannot write {out}: it is a folder")
    with replacing(out) as temp:
        if fmt == "parquet":
            return _write_parquet(batches, temp, columns)
        with temp.open("w", encoding="utf-8", newline="") as file:
            return (_write_csv if fmt == "csv" else _write_jsonl)(batches, file, columns)


# The history of metrics (`shopcrm export metrics`): one row per shop, currency and period.
METRIC_COLUMNS: Columns = (
    ("shop", "text"),
    ("currency", "text"),
    ("period", "text"),
    ("period_end", "date"),
    ("customers", "int"),
    ("new_customers", "int"),
    ("returning_customers", "int"),
    ("orders", "int"),
    ("net_revenue", "money"),
    ("average_order_value", "money"),
    ("purchase_frequency", "float"),
    ("repeat_purchase_rate", "float"),
    ("customers_to_date", "int"),
    ("repeat_customers_to_date", "int"),
    ("segments", "json"),
    ("rfm_groups", "json"),
)


def snapshot_rows(snapshots: Sequence[Any]) -> Iterator[list[Row]]:
    """Metric snapshots (`store.history.Snapshot`) as export rows, in one batch."""
    rows = [tuple(getattr(s, name) for name, _ in METRIC_COLUMNS) for s in snapshots]
    if rows:
        yield rows
