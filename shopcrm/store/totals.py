"""How many live records a shop holds: what `sync` writes into its run row, so `status` can say
how the counts moved from one run to the next without counting history again."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session

from shopcrm.store.models import Customer, Order


def record_totals(session: Session, shop_id: int) -> dict[str, int]:
    """Customers and orders of the shop not marked deleted upstream."""
    customers = session.execute(
        select(func.count()).where(Customer.shop_id == shop_id, Customer.deleted.is_(False))
    ).scalar_one()
    orders = session.execute(
        select(func.count()).where(Order.shop_id == shop_id, Order.deleted.is_(False))
    ).scalar_one()
    return {"customers": int(customers), "orders": int(orders)}
