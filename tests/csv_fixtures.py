"""CSV import test helpers: exports with a chosen mtime, csv shop configs, store dumps."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import select

from shopcrm.config.load import parse_config
from shopcrm.config.schema import AppConfig
from shopcrm.connectors.csv.connector import CsvConnector
from shopcrm.store.db import Store
from shopcrm.store.models import Customer, Order, OrderLine

EXPORTED = datetime(2026, 3, 1, 9, 30, 15, tzinfo=UTC)  # mtime given to export files
HEADER = (
    "order_id,customer_id,email,created_at,total,currency,"
    "first_name,last_name,sku,quantity,unit_price"
)


def write_export(
    path: Path, text: str, *, at: datetime = EXPORTED, encoding: str = "utf-8"
) -> Path:
    """Write an export (lines joined with CRLF like a spreadsheet would) and set its mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", "\r\n").encode(encoding))
    os.utime(path, (at.timestamp(), at.timestamp()))
    return path


def csv_config(path: Path, **shop: Any) -> AppConfig:
    """An AppConfig with one csv shop called `pos` reading `path`."""
    settings = {"name": "pos", "platform": "csv", "path": str(path), "currency": "EUR", **shop}
    return parse_config({"shops": [settings]}, env={})


def connector(path: Path, **shop: Any) -> CsvConnector:
    config = csv_config(path, **shop)
    return CsvConnector(config.shops[0], config)  # type: ignore[arg-type]


def orders_of(path: Path, **shop: Any) -> list[Any]:
    return [record for page in connector(path, **shop).orders(None) for record in page.records]


def customers_of(path: Path, **shop: Any) -> list[Any]:
    return [record for page in connector(path, **shop).customers(None) for record in page.records]


def dump(store: Store, *, with_sync_time: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every customer, order and line of the store as sorted plain tuples."""
    with store.session() as session:
        customers = [
            (c.platform_id, c.email, c.first_name, c.last_name, c.updated_at, c.deleted)
            + ((c.synced_at,) if with_sync_time else ())
            for c in session.exec(select(Customer))
        ]
        orders = [
            (
                o.platform_id,
                o.customer_platform_id,
                o.email,
                o.created_at,
                o.updated_at,
                o.currency,
                o.total,
                o.refunded,
                o.financial_status,
                o.cancelled_at,
                o.deleted,
            )
            + ((o.synced_at,) if with_sync_time else ())
            for o in session.exec(select(Order))
        ]
        by_id = {o.id: o.platform_id for o in session.exec(select(Order))}
        lines = [
            (by_id[line.order_id], line.position, line.sku, line.quantity, line.unit_price)
            for line in session.exec(select(OrderLine))
        ]
    return {"customers": sorted(customers), "orders": sorted(orders), "lines": sorted(lines)}
