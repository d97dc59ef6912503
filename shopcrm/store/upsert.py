"""Batched idempotent upserts and stream checkpoints.

Every write is INSERT ... ON CONFLICT (shop, platform id) DO UPDATE ... WHERE the incoming
record is at least as new as the stored one, so replays, overlaps and pages arriving out of
order never duplicate a record or move it backwards. A page and its stream's checkpoint are
written in the caller's transaction (`write_page`), so a crash leaves both or neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, case, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from shopcrm.records import CustomerRecord, OrderRecord, Page
from shopcrm.store.emails import normalise_email
from shopcrm.store.models import Customer, Order, OrderLine, Shop, SyncState

CUSTOMERS = "customers"
ORDERS = "orders"

_customer_t: Table = Customer.__table__  # type: ignore[assignment]
_order_t: Table = Order.__table__  # type: ignore[assignment]
_line_t: Table = OrderLine.__table__  # type: ignore[assignment]
_state_t: Table = SyncState.__table__  # type: ignore[assignment]

# The id of the stored customer an order row names (None while it is not stored).
_CUSTOMER_OF = (
    select(_customer_t.c.id)
    .where(
        _customer_t.c.shop_id == _order_t.c.shop_id,
        _customer_t.c.platform_id == _order_t.c.customer_platform_id,
    )
    .scalar_subquery()
)

T = TypeVar("T", CustomerRecord, OrderRecord)


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def newest_per_id(records: Iterable[T]) -> list[T]:
    """One record per platform id: the newest (the later one on equal `updated_at`)."""
    newest: dict[str, T] = {}
    for record in records:
        held = newest.get(record.platform_id)
        if held is None or record.updated_at >= held.updated_at:
            newest[record.platform_id] = record
    return list(newest.values())


# Columns a forgotten row keeps empty on re-sync (store/privacy.py, docs/privacy.md).
PERSONAL = {
    "customer": (
        "email",
        "email_normalised",
        "first_name",
        "last_name",
        "accepts_marketing",
        "tags",
    ),
    "orders": ("email", "email_normalised"),
}


def _upsert(
    session: Session, table: Table, rows: list[dict[str, Any]], *, returning: bool
) -> list[Any]:
    stmt = _insert(session, table)
    updatable: dict[str, Any] = {
        name: stmt.excluded[name] for name in rows[0] if name not in ("shop_id", "platform_id")
    }
    # a forgotten row keeps its personal columns as forget left them, and stays redacted
    # (a customer's own `redacted` flag comes from the platform: only `redacted_at` is ours)
    forgotten = table.c.redacted_at.is_not(None) if table is _customer_t else table.c.redacted
    for name in PERSONAL[table.name]:
        updatable[name] = case((forgotten, table.c[name]), else_=stmt.excluded[name])
    updatable["redacted"] = or_(forgotten, stmt.excluded.redacted)
    stmt = stmt.on_conflict_do_update(
        index_elements=["shop_id", "platform_id"],
        set_=updatable,
        where=stmt.excluded.updated_at >= table.c.updated_at,
    )
    if returning:
        return list(session.execute(stmt.returning(table.c.id, table.c.platform_id), rows))
    session.execute(stmt, rows)
    return []


def upsert_customers(
    session: Session, shop_id: int, records: Sequence[CustomerRecord], now: datetime
) -> int:
    """Insert or refresh customers; returns how many distinct records were offered."""
    unique = newest_per_id(records)
    if not unique:
        return 0
    rows = [
        {
            "shop_id": shop_id,
            "platform_id": r.platform_id,
            "email": r.email,
            "email_normalised": normalise_email(r.email),
            "first_name": r.first_name,
            "last_name": r.last_name,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "accepts_marketing": r.accepts_marketing,
            "tags": list(r.tags),
            "deleted": r.deleted,
            "redacted": r.redacted,
            "synced_at": now,
        }
        for r in unique
    ]
    _upsert(session, _customer_t, rows, returning=False)
    # orders stored before their customer (a first sync that read orders first, a customer
    # created after its first checkout) now point at it
    session.execute(
        _order_t.update()
        .where(
            _order_t.c.shop_id == shop_id,
            _order_t.c.customer_platform_id.in_([r.platform_id for r in unique]),
            _order_t.c.customer_id.is_(None),
        )
        .values(customer_id=_CUSTOMER_OF)
    )
    return len(unique)


def _forgotten_customers(session: Session, shop_id: int, orders: Sequence[OrderRecord]) -> set[str]:
    """The orders (platform ids) that belong to a forgotten customer and stay forgotten.

    The rule (docs/privacy.md): an order of a redacted customer created before the forget is
    stored redacted; one created after it is a new purchase and brings the customer back
    (`redacted` cleared). The rest of their record returns with their next customer record:
    the customers stream's checkpoint is moved back to re-read it on the next sync.
    """
    wanted = {r.customer_platform_id for r in orders if r.customer_platform_id}
    if not wanted:
        return set()
    redacted = {
        platform_id: (at, updated)
        for platform_id, at, updated in session.execute(
            select(_customer_t.c.platform_id, _customer_t.c.redacted_at, _customer_t.c.updated_at)
            .where(_customer_t.c.shop_id == shop_id, _customer_t.c.redacted_at.is_not(None))
            .where(_customer_t.c.platform_id.in_(sorted(wanted)))
        )
    }
    if not redacted:
        return set()
    back = {
        r.customer_platform_id
        for r in orders
        if r.customer_platform_id in redacted and redacted[r.customer_platform_id][0] < r.created_at
    }
    if back:
        session.execute(
            update(_customer_t)
            .where(_customer_t.c.shop_id == shop_id, _customer_t.c.platform_id.in_(sorted(back)))
            .values(redacted=False, redacted_at=None)
        )
        _reread_customers_from(session, shop_id, min(redacted[p][1] for p in back))
    return {
        r.platform_id
        for r in orders
        if r.customer_platform_id in redacted and r.customer_platform_id not in back
    }


def _reread_customers_from(session: Session, shop_id: int, updated_at: datetime) -> None:
    """Move the customers checkpoint back so the next sync re-reads a returning customer."""
    state = session.get(SyncState, (shop_id, CUSTOMERS))
    if state is not None and (state.high_water_mark is None or state.high_water_mark > updated_at):
        state.high_water_mark = updated_at
        session.flush()


def upsert_orders(
    session: Session, shop_id: int, records: Sequence[OrderRecord], now: datetime
) -> int:
    """Insert or refresh orders and replace the lines of every order that was written."""
    unique = newest_per_id(records)
    if not unique:
        return 0
    forgotten = _forgotten_customers(session, shop_id, unique)
    rows = [
        {
            "shop_id": shop_id,
            "platform_id": r.platform_id,
            "customer_platform_id": r.customer_platform_id,
            "email": None if r.platform_id in forgotten else r.email,
            "email_normalised": None if r.platform_id in forgotten else normalise_email(r.email),
            "redacted": r.platform_id in forgotten,
            "number": r.number,
            "created_at": r.created_at,
            "processed_at": r.processed_at,
            "updated_at": r.updated_at,
            "cancelled_at": r.cancelled_at,
            "currency": r.currency,
            "total": r.total,
            "refunded": r.refunded,
            "financial_status": r.financial_status,
            "deleted": False,
            "synced_at": now,
        }
        for r in unique
    ]
    written = {
        platform_id: order_id
        for order_id, platform_id in _upsert(session, _order_t, rows, returning=True)
    }
    if written:
        session.execute(
            _order_t.update()
            .where(_order_t.c.id.in_(list(written.values())))
            .values(customer_id=_CUSTOMER_OF)
        )
        session.execute(delete(_line_t).where(_line_t.c.order_id.in_(list(written.values()))))
        lines = [
            {
                "order_id": written[r.platform_id],
                "position": position,
                "platform_id": line.platform_id,
                "sku": line.sku,
                "product_id": line.product_id,
                "title": line.title,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            }
            for r in unique
            if r.platform_id in written
            for position, line in enumerate(r.lines)
        ]
        if lines:
            session.execute(insert(_line_t), lines)
    return len(unique)


def load_checkpoint(session: Session, shop_id: int, stream: str) -> SyncState | None:
    return session.get(SyncState, (shop_id, stream))


def save_checkpoint(
    session: Session,
    shop_id: int,
    stream: str,
    *,
    high_water_mark: datetime | None,
    cursor: str | None,
    now: datetime,
    success: bool = False,
) -> None:
    """Record a stream's progress. The high-water mark only ever moves forward."""
    state = session.get(SyncState, (shop_id, stream))
    if state is None:
        state = SyncState(shop_id=shop_id, stream=stream)
        session.add(state)
    if high_water_mark is not None and (
        state.high_water_mark is None or high_water_mark > state.high_water_mark
    ):
        state.high_water_mark = high_water_mark
    state.cursor = cursor
    state.updated_at = now
    if success:
        state.last_success_at = now
    session.flush()


@dataclass(frozen=True, slots=True)
class PageWritten:
    records: int
    high_water_mark: datetime | None


def write_page(
    session: Session,
    shop_id: int,
    stream: str,
    page: Page[Any],
    *,
    now: datetime,
    cap: datetime | None = None,
) -> PageWritten:
    """Upsert one page and move its stream's checkpoint, in the session's transaction.

    `cap` bounds the saved high-water mark (the time the sync started): records updated while
    we page are caught by the next run instead of being skipped.
    """
    if stream == CUSTOMERS:
        count = upsert_customers(session, shop_id, page.records, now)
    elif stream == ORDERS:
        count = upsert_orders(session, shop_id, page.records, now)
    else:
        raise ValueError(f"unknown stream {stream!r}")
    mark = page.high_water_mark
    if mark is not None and cap is not None:
        mark = min(mark, cap)
    save_checkpoint(session, shop_id, stream, high_water_mark=mark, cursor=page.cursor, now=now)
    return PageWritten(count, mark)


def ensure_shop(
    session: Session,
    name: str,
    platform: str,
    *,
    now: datetime,
    domain: str | None = None,
    currency: str | None = None,
    timezone: str | None = None,
) -> int:
    """The id of the shop called `name`, created on first sight; facts refreshed when given."""
    shop = session.execute(select(Shop).where(Shop.name == name)).scalar_one_or_none()
    if shop is None:
        shop = Shop(name=name, platform=platform, created_at=now)
        session.add(shop)
    shop.platform = platform
    for attr, value in (("domain", domain), ("currency", currency), ("timezone", timezone)):
        if value is not None:
            setattr(shop, attr, value)
    session.flush()
    assert shop.id is not None
    return shop.id


def mark_missing_deleted(session: Session, shop_id: int, stream: str, seen: set[str]) -> int:
    """Reconcile after a full pass: flag this shop's records the platform no longer has."""
    table = {CUSTOMERS: _customer_t, ORDERS: _order_t}[stream]
    stored = session.execute(
        select(table.c.platform_id).where(table.c.shop_id == shop_id, table.c.deleted.is_(False))
    ).scalars()
    missing = [pid for pid in stored if pid not in seen]
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        session.execute(
            table.update()
            .where(table.c.shop_id == shop_id, table.c.platform_id.in_(chunk))
            .values(deleted=True)
        )
    return len(missing)
