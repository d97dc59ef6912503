"""Helpers for the BigCommerce tests: a sandbox per test, config for it, and snapshots.

Snapshots compare the store with what the sandbox holds, built from the neutral seed records
(not from the sandbox's JSON), so a mapping error on either side shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

from sqlmodel import select

from shopcrm.config.load import parse_config
from shopcrm.config.schema import AppConfig, BigCommerceShop
from shopcrm.connectors.bigcommerce.connector import MANAGED_ATTRIBUTE, split_tags
from shopcrm.sandbox.bigcommerce.app import BigCommerceSandbox
from shopcrm.sandbox.seed import Dataset, generate
from shopcrm.store.db import Store
from shopcrm.store.models import Customer, Order, OrderLine, Shop

ANCHOR = date(2026, 1, 1)
TOKEN = "bc-test-token-5f0c2e"  # asserted absent from every output


def dataset(customers: int, seed: int = 11) -> Dataset:
    return generate(customers=customers, seed=seed, anchor=ANCHOR)


@contextmanager
def sandbox(ds: Dataset, **kwargs: Any) -> Iterator[BigCommerceSandbox]:
    """A started sandbox with a quota high enough not to matter unless a test sets one."""
    kwargs.setdefault("quota", 100_000)
    kwargs.setdefault("window_ms", 1000)
    with BigCommerceSandbox(ds, access_token=TOKEN, **kwargs) as sb:
        yield sb


def config_for(sb: BigCommerceSandbox, database: str = "sqlite://") -> AppConfig:
    entry, env = sb.shop_entry("bc-shop")
    return parse_config({"database": database, "shops": [entry]}, env=env)


def shop_of(config: AppConfig) -> BigCommerceShop:
    shop = config.shops[0]
    assert isinstance(shop, BigCommerceShop)
    return shop


def expected_customers(sb: BigCommerceSandbox) -> dict[str, tuple[Any, ...]]:
    with sb.dataset.lock:
        return {
            str(c.id): (
                c.email,
                c.first_name,
                c.last_name,
                c.created_at,
                c.updated_at,
                c.accepts_marketing,
                split_tags(sb.customer_values(c.id).get(MANAGED_ATTRIBUTE)),
            )
            for c in sb.dataset.customers.values()
        }


def expected_orders(ds: Dataset) -> dict[str, tuple[Any, ...]]:
    with ds.lock:
        return {
            str(o.id): (
                str(o.customer_id) if o.customer_id else None,
                o.email,
                o.created_at,
                o.updated_at,
                o.currency,
                o.total,
                o.refunded,
                o.cancelled_at is not None,
                tuple(
                    (str(x.id), x.sku, str(x.product_id), x.title, x.quantity, x.unit_price)
                    for x in o.lines
                ),
            )
            for o in ds.orders.values()
        }


def _shop_id(session: Any, name: str) -> int:
    shop = session.exec(select(Shop).where(Shop.name == name)).one()
    return shop.id


def stored_customers(store: Store, name: str = "bc-shop") -> dict[str, tuple[Any, ...]]:
    with store.session() as session:
        rows = session.exec(select(Customer).where(Customer.shop_id == _shop_id(session, name)))
        return {
            c.platform_id: (
                c.email,
                c.first_name,
                c.last_name,
                c.created_at,
                c.updated_at,
                c.accepts_marketing,
                tuple(c.tags),
            )
            for c in rows
        }


def stored_orders(store: Store, name: str = "bc-shop") -> dict[str, tuple[Any, ...]]:
    with store.session() as session:
        orders = list(session.exec(select(Order).where(Order.shop_id == _shop_id(session, name))))
        lines: dict[int, list[OrderLine]] = {}
        ids = [o.id for o in orders]
        for line in session.exec(select(OrderLine).where(OrderLine.order_id.in_(ids))):  # type: ignore[union-attr]
            lines.setdefault(line.order_id, []).append(line)
        return {
            o.platform_id: (
                o.customer_platform_id,
                o.email,
                o.created_at,
                o.updated_at,
                o.currency,
                Decimal(o.total),
                Decimal(o.refunded),
                o.cancelled_at is not None,
                tuple(
                    (x.platform_id, x.sku, x.product_id, x.title, x.quantity, x.unit_price)
                    for x in sorted(lines.get(o.id, []), key=lambda x: x.position)
                ),
            )
            for o in orders
        }


def _same(kind: str, want: dict[str, Any], got: dict[str, Any]) -> None:
    assert got.keys() == want.keys(), f"{kind}: ids differ"
    wrong = [k for k in want if want[k] != got[k]]
    assert not wrong, (
        f"{len(wrong)} {kind} differ, e.g. {wrong[0]}: {want[wrong[0]]} != {got[wrong[0]]}"
    )


def assert_store_matches(
    store: Store, sb: BigCommerceSandbox, *, customers: bool = True, orders: bool = True
) -> None:
    """The store holds exactly the sandbox's customers and/or orders, field by field."""
    if customers:
        _same("customers", expected_customers(sb), stored_customers(store))
    if orders:
        _same("orders", expected_orders(sb.dataset), stored_orders(store))
