"""Helpers shared by the store tests: record builders, a store snapshot, a cheap reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session

from shopcrm.records import CustomerRecord, OrderLineRecord, OrderRecord
from shopcrm.store.db import Store
from shopcrm.store.models import (
    Customer,
    CustomerMetrics,
    Order,
    OrderLine,
    PushLog,
    SegmentMembership,
    Shop,
    SyncRun,
    SyncState,
)

BASE = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    """An aware UTC instant `minutes` after a fixed base."""
    return BASE + timedelta(minutes=minutes)


def customer(platform_id: str, minutes: int, **kw: Any) -> CustomerRecord:
    return CustomerRecord(platform_id=platform_id, updated_at=at(minutes), **kw)


def order(
    platform_id: str, minutes: int, total: str = "10.00", lines: int = 1, **kw: Any
) -> OrderRecord:
    return OrderRecord(
        platform_id=platform_id,
        created_at=at(0),
        updated_at=at(minutes),
        currency="EUR",
        total=Decimal(total),
        lines=tuple(
            OrderLineRecord(quantity=i + 1, unit_price=Decimal("1.25"), sku=f"sku-{minutes}-{i}")
            for i in range(lines)
        ),
        **kw,
    )


def reset(store: Store) -> None:
    """Empty every table the store tests write to (cheaper than a new database)."""
    with store.session() as session:
        for model in (
            PushLog,
            SegmentMembership,
            CustomerMetrics,
            SyncRun,
            OrderLine,
            Order,
            Customer,
            SyncState,
            Shop,
        ):
            session.execute(delete(model))


_CUSTOMER_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "created_at",
    "updated_at",
    "accepts_marketing",
    "tags",
    "deleted",
    "redacted",
)
_ORDER_FIELDS = (
    "customer_platform_id",
    "email",
    "number",
    "created_at",
    "processed_at",
    "updated_at",
    "cancelled_at",
    "currency",
    "total",
    "refunded",
    "financial_status",
)
UPDATED_AT_INDEX = {
    "customers": _CUSTOMER_FIELDS.index("updated_at"),
    "orders": _ORDER_FIELDS.index("updated_at"),
}
_LINE_FIELDS = ("platform_id", "sku", "product_id", "title", "quantity", "unit_price")


def customer_key(record: CustomerRecord) -> tuple[Any, ...]:
    """The stored content a customer record should produce, comparable with the snapshot."""
    return tuple(
        list(record.tags) if name == "tags" else getattr(record, name) for name in _CUSTOMER_FIELDS
    )


def order_key(record: OrderRecord) -> tuple[Any, ...]:
    head = tuple(getattr(record, name) for name in _ORDER_FIELDS)
    lines = tuple(tuple(getattr(line, name) for name in _LINE_FIELDS) for line in record.lines)
    return (*head, lines)


def snapshot(session: Session, shop_id: int) -> dict[str, dict[str, tuple[Any, ...]]]:
    """The store's customers and orders (with their lines) by platform id, minus surrogate ids.

    Raises AssertionError if a platform id appears twice, so a duplicate can never hide.
    """
    customers: dict[str, tuple[Any, ...]] = {}
    rows = session.execute(
        select(Customer.platform_id, *(getattr(Customer, n) for n in _CUSTOMER_FIELDS)).where(
            Customer.shop_id == shop_id
        )
    )
    for platform_id, *values in rows:
        assert platform_id not in customers, f"duplicate customer {platform_id}"
        customers[platform_id] = tuple(values)
    lines: dict[int, list[tuple[Any, ...]]] = {}
    line_rows = session.execute(
        select(OrderLine.order_id, *(getattr(OrderLine, n) for n in _LINE_FIELDS))
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.shop_id == shop_id)
        .order_by(OrderLine.order_id, OrderLine.position)
    )
    for order_id, *values in line_rows:
        lines.setdefault(order_id, []).append(tuple(values))
    orders: dict[str, tuple[Any, ...]] = {}
    order_rows = session.execute(
        select(Order.id, Order.platform_id, *(getattr(Order, n) for n in _ORDER_FIELDS)).where(
            Order.shop_id == shop_id
        )
    )
    for order_id, platform_id, *values in order_rows:
        assert platform_id not in orders, f"duplicate order {platform_id}"
        orders[platform_id] = (*values, tuple(lines.get(order_id, ())))
    return {"customers": customers, "orders": orders}


def high_water_mark(session: Session, shop_id: int, stream: str) -> datetime | None:
    state = session.get(SyncState, (shop_id, stream))
    return None if state is None else state.high_water_mark
