"""Helpers for syncing from the Shopify sandbox: configs, and the store vs the sandbox's data.

`expected_state` renders the seed Dataset the way the unified store must hold it, and
`stored_state` reads the store back in the same shape, so a test compares every id, email,
total, refund, line and tag in one equality.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from shopcrm.config.load import parse_config
from shopcrm.config.schema import AppConfig, ShopConfig
from shopcrm.sandbox.seed import Dataset, generate
from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.store.db import Store
from shopcrm.store.models import Customer, Order, OrderLine, Shop

ANCHOR = date(2026, 11, 1)
FAST = {"bucket_size": 100_000.0, "restore_rate": 50_000.0}  # pacing is tested elsewhere


def seeded(customers: int, seed: int = 11, **spec: Any) -> Dataset:
    return generate(customers=customers, seed=seed, anchor=ANCHOR, **spec)


def sandbox_config(
    sandbox: ShopifySandbox,
    database: str,
    *,
    bulk_threshold: int = 10_000,
    client_credentials: bool = False,
    name: str = "main",
) -> tuple[AppConfig, ShopConfig, dict[str, str]]:
    """An AppConfig with one shop on the sandbox, its shop entry and the environment it reads."""
    entry, env = sandbox.shop_entry(name)
    if client_credentials:
        client_id, secret = sandbox.client_credentials()
        entry["credentials"] = {"client_id": client_id, "client_secret": "${SANDBOX_SECRET}"}
        env = {"SANDBOX_SECRET": secret}
    data: dict[str, Any] = {
        "database": database,
        "defaults": {"sync": {"bulk_threshold": bulk_threshold}},
        "shops": [entry],
    }
    config = parse_config(data, env=env)
    return config, config.shops[0], env


def _gid(kind: str, ident: int | None) -> str | None:
    return None if ident is None else f"gid://shopify/{kind}/{ident}"


def expected_state(ds: Dataset) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(customers, orders) of the sandbox's data, keyed by GID, as the store must hold them."""
    with ds.lock:
        customers = {
            _gid("Customer", c.id): (
                c.email,
                c.first_name,
                c.last_name,
                # consent travels on the email address: none without one
                c.accepts_marketing if c.email else None,
                tuple(sorted(c.tags)),
                c.updated_at,
            )
            for c in ds.customers.values()
        }
        orders = {
            _gid("Order", o.id): (
                _gid("Customer", o.customer_id),
                o.email,
                f"#{o.number}",
                o.currency,
                o.total,
                o.refunded,
                o.cancelled_at,
                o.financial_status,
                o.updated_at,
                tuple(
                    (
                        _gid("LineItem", line.id),
                        line.sku,
                        _gid("Product", line.product_id),
                        line.title,
                        line.quantity,
                        line.unit_price,
                    )
                    for line in o.lines
                ),
            )
            for o in ds.orders.values()
        }
    return customers, orders


def stored_state(store: Store, shop: str) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(customers, orders) in the store for `shop`, in `expected_state`'s shape."""
    c, o, line = Customer.__table__.c, Order.__table__.c, OrderLine.__table__.c  # type: ignore[attr-defined]
    with store.session() as session:
        shop_id = session.execute(select(Shop.id).where(Shop.name == shop)).scalar_one()
        customers = {
            row[0]: (*row[1:5], tuple(sorted(row[5])), row[6])
            for row in session.execute(
                select(
                    c.platform_id,
                    c.email,
                    c.first_name,
                    c.last_name,
                    c.accepts_marketing,
                    c.tags,
                    c.updated_at,
                ).where(c.shop_id == shop_id, c.deleted.is_(False))
            )
        }
        lines: dict[int, list[tuple]] = {}
        for row in session.execute(
            select(
                line.order_id,
                line.platform_id,
                line.sku,
                line.product_id,
                line.title,
                line.quantity,
                line.unit_price,
            )
            .join(Order.__table__, o.id == line.order_id)
            .where(o.shop_id == shop_id)
            .order_by(line.order_id, line.position)
        ):
            lines.setdefault(row[0], []).append((*row[1:6], Decimal(row[6])))
        orders = {
            row[1]: (
                *row[2:6],
                Decimal(row[6]),
                Decimal(row[7]),
                *row[8:],
                tuple(lines.get(row[0], ())),
            )
            for row in session.execute(
                select(
                    o.id,
                    o.platform_id,
                    o.customer_platform_id,
                    o.email,
                    o.number,
                    o.currency,
                    o.total,
                    o.refunded,
                    o.cancelled_at,
                    o.financial_status,
                    o.updated_at,
                ).where(o.shop_id == shop_id, o.deleted.is_(False))
            )
        }
    return customers, orders


def row_counts(store: Store) -> tuple[int, int, int]:
    """Rows in customer, orders and order_line (duplicates would show here)."""
    with store.session() as session:
        return tuple(  # type: ignore[return-value]
            len(session.execute(select(model.id)).all()) for model in (Customer, Order, OrderLine)
        )


def diff(expected: dict[str, tuple], stored: dict[str, tuple]) -> dict[str, Any]:
    """A short account of how two states differ (for assertion messages)."""
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    changed = sorted(k for k in set(expected) & set(stored) if expected[k] != stored[k])
    sample = {k: (expected[k], stored[k]) for k in changed[:2]}
    return {"missing": missing[:5], "extra": extra[:5], "changed": len(changed), "sample": sample}


def assert_exact(store: Store, sandbox: ShopifySandbox, shop: str = "main") -> None:
    """The store holds exactly the sandbox's customers and orders for `shop`."""
    expected_c, expected_o = expected_state(sandbox.dataset)
    stored_c, stored_o = stored_state(store, shop)
    assert stored_c == expected_c, diff(expected_c, stored_c)
    assert stored_o == expected_o, diff(expected_o, stored_o)
