"""Shopify GraphQL nodes -> unified records (the same shapes arrive in pages and bulk JSONL).

Money is read from `shopMoney` (the shop's currency), never `presentmentMoney` (what the buyer
saw); ids are whole GIDs; times are aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shopcrm.errors import PlatformError
from shopcrm.records import CustomerRecord, OrderLineRecord, OrderRecord

Node = Mapping[str, Any]


def parse_time(value: Any, what: str) -> datetime:
    """An ISO 8601 timestamp (`Z` or offset) as an aware UTC datetime."""
    if not isinstance(value, str):
        raise PlatformError(f"{what}: expected a timestamp, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PlatformError(f"{what}: not a timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise PlatformError(f"{what}: timestamp without a time zone: {value!r}")
    return parsed.astimezone(UTC)


def _optional_time(value: Any, what: str) -> datetime | None:
    return None if value is None else parse_time(value, what)


def shop_money(bag: Any, what: str) -> tuple[Decimal, str]:
    """(amount, currency) of a MoneyBag's `shopMoney`; JSON numbers go through str."""
    money = bag.get("shopMoney") if isinstance(bag, Mapping) else None
    if not isinstance(money, Mapping):
        raise PlatformError(f"{what}: missing shopMoney")
    try:
        amount = Decimal(str(money["amount"]))
    except (KeyError, InvalidOperation) as exc:
        raise PlatformError(f"{what}: bad amount {money.get('amount')!r}") from exc
    return amount, str(money.get("currencyCode") or "")


def _gid(node: Any) -> str | None:
    return node.get("id") if isinstance(node, Mapping) else None


def customer_record(node: Node) -> CustomerRecord:
    """A Customer node as a CustomerRecord."""
    pid = str(node["id"])
    email = node.get("defaultEmailAddress") or {}
    state = email.get("marketingState")
    return CustomerRecord(
        platform_id=pid,
        updated_at=parse_time(node.get("updatedAt"), f"customer {pid} updatedAt"),
        created_at=_optional_time(node.get("createdAt"), f"customer {pid} createdAt"),
        email=email.get("emailAddress"),
        first_name=node.get("firstName"),
        last_name=node.get("lastName"),
        accepts_marketing=None if state is None else state == "SUBSCRIBED",
        tags=tuple(node.get("tags") or ()),
    )


def line_record(node: Node, order_id: str) -> OrderLineRecord:
    """A LineItem node as an OrderLineRecord (unit price in the shop's currency)."""
    pid = _gid(node)
    price, _ = shop_money(node.get("originalUnitPriceSet"), f"order {order_id} line {pid}")
    return OrderLineRecord(
        platform_id=pid,
        quantity=int(node.get("quantity") or 0),
        unit_price=price,
        sku=node.get("sku") or None,
        product_id=_gid(node.get("product")),
        title=node.get("title"),
    )


def order_record(node: Node, lines: Iterable[Node]) -> OrderRecord:
    """An Order node and its LineItem nodes as an OrderRecord."""
    pid = str(node["id"])
    total, currency = shop_money(node.get("totalPriceSet"), f"order {pid} totalPriceSet")
    refunded_set = node.get("totalRefundedSet")
    refunded = shop_money(refunded_set, f"order {pid} totalRefundedSet")[0] if refunded_set else 0
    status = node.get("displayFinancialStatus")
    return OrderRecord(
        platform_id=pid,
        created_at=parse_time(node.get("createdAt"), f"order {pid} createdAt"),
        updated_at=parse_time(node.get("updatedAt"), f"order {pid} updatedAt"),
        processed_at=_optional_time(node.get("processedAt"), f"order {pid} processedAt"),
        cancelled_at=_optional_time(node.get("cancelledAt"), f"order {pid} cancelledAt"),
        currency=currency,
        total=total,
        refunded=Decimal(refunded),
        customer_platform_id=_gid(node.get("customer")),
        email=node.get("email"),
        number=node.get("name"),
        financial_status=status.lower() if isinstance(status, str) else None,
        lines=tuple(line_record(line, pid) for line in lines),
    )
