"""Seed records in the Admin GraphQL API's shapes: GIDs, MoneyBags, enums, ISO times with Z.

Nodes are plain dicts resolved by graphql-core's default resolver; fields that cost work (a
customer's totals, an order's line items or customer) are callables, which the default resolver
calls only when the query selects them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shopcrm.sandbox.seed import CENT, SeedCustomer, SeedLine, SeedOrder
from shopcrm.sandbox.shopify.index import ShopIndex
from shopcrm.sandbox.shopify.state import PRESENTMENT_RATE, PRESENTMENT_SHARE, presentment_currency

Node = dict[str, Any]


def gid(kind: str, ident: int | str) -> str:
    return f"gid://shopify/{kind}/{ident}"


def parse_gid(value: str) -> tuple[str, int] | None:
    """("Customer", 42) from "gid://shopify/Customer/42"; None if it is not a GID."""
    parts = value.split("/")
    if len(parts) != 5 or parts[:3] != ["gid:", "", "shopify"] or not parts[4].isdigit():
        return None
    return parts[3], int(parts[4])


def iso(value: datetime | None) -> str | None:
    """Shopify's DateTime: UTC, whole seconds, `Z`."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def money(amount: Decimal, currency: str) -> Node:
    return {"amount": str(amount.quantize(CENT)), "currencyCode": currency}


class MoneyRenderer:
    """MoneyBags of one order: shop money, and a converted presentment for some orders."""

    def __init__(self, order: SeedOrder) -> None:
        self.shop_currency = order.currency
        converted = order.id % PRESENTMENT_SHARE == 0
        self.presentment = presentment_currency(order.currency) if converted else order.currency
        self.rate = PRESENTMENT_RATE if converted else Decimal(1)

    def bag(self, amount: Decimal) -> Node:
        return {
            "shopMoney": money(amount, self.shop_currency),
            "presentmentMoney": money(amount * self.rate, self.presentment),
        }


def customer_node(c: SeedCustomer, index: ShopIndex, currency: str) -> Node:
    def spent(_info: Any) -> Node:
        total = sum(
            (o.total - o.refunded for o in index.orders_of(c.id) if o.cancelled_at is None),
            Decimal(0),
        )
        return money(total, currency)

    email = c.email
    display = f"{c.first_name} {c.last_name}".strip() or email or c.phone or ""
    return {
        "__typename": "Customer",
        "id": gid("Customer", c.id),
        "legacyResourceId": str(c.id),
        "email": email,
        "phone": c.phone,
        "firstName": c.first_name,
        "lastName": c.last_name,
        "displayName": display,
        "state": "ENABLED" if email else "DISABLED",
        "verifiedEmail": email is not None,
        "tags": list(c.tags),
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
        "numberOfOrders": lambda _info: str(len(index.orders_of(c.id))),
        "amountSpent": spent,
        "defaultEmailAddress": None
        if email is None
        else {
            "emailAddress": email,
            "marketingState": "SUBSCRIBED" if c.accepts_marketing else "NOT_SUBSCRIBED",
        },
    }


def line_node(line: SeedLine, bags: MoneyRenderer) -> Node:
    return {
        "__typename": "LineItem",
        "id": gid("LineItem", line.id),
        "name": line.title,
        "title": line.title,
        "sku": line.sku,
        "quantity": line.quantity,
        "currentQuantity": line.quantity,
        "vendor": "Sandbox",
        "variantTitle": None,
        "originalUnitPriceSet": bags.bag(line.unit_price),
        "originalTotalSet": bags.bag(line.total),
        "product": {
            "__typename": "Product",
            "id": gid("Product", line.product_id),
            "title": line.title,
        },
    }


def order_node(
    o: SeedOrder,
    customer: Callable[[int], Node | None],
    line_items: Callable[[SeedOrder, MoneyRenderer, dict[str, Any]], Node],
) -> Node:
    bags = MoneyRenderer(o)
    status = o.financial_status
    current = Decimal(0) if status == "voided" else o.total - o.refunded
    return {
        "__typename": "Order",
        "id": gid("Order", o.id),
        "legacyResourceId": str(o.id),
        "name": f"#{o.number}",
        "email": o.email,
        "createdAt": iso(o.created_at),
        "processedAt": iso(o.created_at),
        "updatedAt": iso(o.updated_at),
        "cancelledAt": iso(o.cancelled_at),
        "closedAt": None,
        "currencyCode": o.currency,
        "presentmentCurrencyCode": bags.presentment,
        "subtotalPriceSet": lambda _info: bags.bag(o.subtotal),
        "totalShippingPriceSet": lambda _info: bags.bag(o.shipping),
        "totalPriceSet": lambda _info: bags.bag(o.total),
        "totalRefundedSet": lambda _info: bags.bag(o.refunded),
        "currentTotalPriceSet": lambda _info: bags.bag(current),
        "displayFinancialStatus": status.upper(),
        "displayFulfillmentStatus": "UNFULFILLED" if o.cancelled_at else "FULFILLED",
        "customer": lambda _info: None if o.customer_id is None else customer(o.customer_id),
        "tags": list(o.extra.get("tags", ())),
        "test": False,
        "lineItems": lambda info, **args: line_items(o, bags, args),
    }
