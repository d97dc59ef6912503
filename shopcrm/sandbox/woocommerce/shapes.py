"""Seed records rendered in WooCommerce 10 REST v3 shapes (as recorded from a real server).

Quirks kept on purpose: dates carry no offset (`*_gmt` are UTC, the others site-local), money is
a 2-decimal string except `line_items[].price`, a JSON number; guests have `customer_id` 0;
`refunds[].total` is negative; meta rows have ids. Customer meta lives in the record's
`extra["woo_meta"]` so writes through the API change what later reads return.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from shopcrm.sandbox.seed import SeedCustomer, SeedOrder

API = "/wp-json/wc/v3"
WC_VERSION = "10.0.2"
META = "woo_meta"
TAX_RATE_ID = 1  # one zero-rate tax, so tax lines exist with the shapes the server sends
ALLOW_ITEM = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_ADDRESS = ("first_name", "last_name", "company", "address_1", "address_2", "city", "state")
_TIERS = ("bronze", "silver", "gold")


def gmt(value: datetime | None) -> str | None:
    """A UTC instant as WooCommerce writes `*_gmt` fields: naive, to the second."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def local(value: datetime | None, zone: ZoneInfo) -> str | None:
    """An instant as the site-local naive string of the non-`_gmt` fields."""
    if value is None:
        return None
    return value.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def seed_meta(customer: SeedCustomer, next_id: Any) -> list[dict[str, Any]]:
    """Non-managed meta a real store has on customers (WordPress's and a merchant plugin's)."""
    rows: list[dict[str, Any]] = []
    if customer.id % 3 == 0:
        rows.append({"id": next_id(), "key": "default_password_nag", "value": "1"})
    rows.append({"id": next_id(), "key": "loyalty_tier", "value": _TIERS[customer.id % 3]})
    if customer.id % 7 == 0:
        prefs = {"newsletter": customer.accepts_marketing, "channels": ["email", "sms"]}
        rows.append({"id": next_id(), "key": "preferences", "value": prefs})
    return rows


def role(customer: SeedCustomer) -> str:
    """Most are `customer`; a few are `subscriber`, seen only with `role=all`."""
    return str(
        customer.extra.get("woo_role", "subscriber" if customer.id % 40 == 0 else "customer")
    )


def _links(site: str, kind: str, record_id: int) -> dict[str, Any]:
    return {
        "self": [{"href": f"{site}{API}/{kind}/{record_id}", "targetHints": {"allow": ALLOW_ITEM}}],
        "collection": [{"href": f"{site}{API}/{kind}"}],
    }


def _address(first: str, last: str, email: str | None, phone: str | None) -> dict[str, str]:
    address = dict.fromkeys(_ADDRESS, "")
    address.update(first_name=first, last_name=last, postcode="", country="")
    address["email"] = email or ""
    address["phone"] = phone or ""
    return address


def customer(c: SeedCustomer, *, site: str, zone: ZoneInfo, paying: bool) -> dict[str, Any]:
    """One customer as GET /customers/{id} returns it."""
    email = (c.email or "").strip()
    shipping = _address(c.first_name, c.last_name, None, None)
    del shipping["email"]
    return {
        "id": c.id,
        "date_created": local(c.created_at, zone),
        "date_created_gmt": gmt(c.created_at),
        "date_modified": local(c.updated_at, zone),
        "date_modified_gmt": gmt(c.updated_at),
        "email": email,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "role": role(c),
        "username": email.split("@")[0].lower() if email else f"customer{c.id}",
        "billing": _address(c.first_name, c.last_name, email, c.phone),
        "shipping": shipping,
        "is_paying_customer": paying,
        "avatar_url": "https://secure.gravatar.com/avatar/?s=96&d=mm&r=g",
        "meta_data": [dict(row) for row in c.extra.get(META, [])],
        "_links": _links(site, "customers", c.id),
    }


def status(o: SeedOrder) -> str:
    if o.cancelled_at is not None:
        return "cancelled"
    if o.refunds and o.refunded >= o.total:
        return "refunded"
    return "completed"


def _order_meta(o: SeedOrder) -> list[dict[str, Any]]:
    """A merchant plugin's meta on every third order (as on the recorded store)."""
    if o.number % 3:
        return []
    return [{"id": o.id * 10 + 3, "key": "erp_export_id", "value": f"ERP-{o.number}"}]


def _line(o: SeedOrder, index: int) -> dict[str, Any]:
    line = o.lines[index]
    total = money(line.total)
    return {
        "id": line.id,
        "name": line.title,
        "product_id": line.product_id,
        "variation_id": 0,
        "quantity": line.quantity,
        "tax_class": "",
        "subtotal": total,
        "subtotal_tax": "0.00",
        "total": total,
        "total_tax": "0.00",
        "taxes": [{"id": TAX_RATE_ID, "total": "0.00", "subtotal": "0.00"}],
        "meta_data": [
            {
                "id": line.id * 10,
                "key": "_reduced_stock",
                "value": str(line.quantity),
                "display_key": "_reduced_stock",
                "display_value": str(line.quantity),
            }
        ],
        "sku": line.sku,
        "price": float(line.unit_price),  # a JSON number on the real server, not a string
        "image": {"id": "", "src": ""},
        "parent_name": None,
    }


def order(o: SeedOrder, *, site: str, zone: ZoneInfo) -> dict[str, Any]:
    """One order as GET /orders/{id} returns it (key order as the server sends them)."""
    state = status(o)
    paid = None if state == "cancelled" else o.created_at
    completed = None if state == "cancelled" else o.created_at
    guest = o.customer_id is None
    shipping = _address(o.first_name, o.last_name, None, None)
    del shipping["email"]
    links = _links(site, "orders", o.id)
    links["email_templates"] = [
        {"embeddable": True, "href": f"{site}{API}/orders/{o.id}/actions/email_templates"}
    ]
    if not guest:
        links["customer"] = [{"href": f"{site}{API}/customers/{o.customer_id}"}]
    key = f"wc_order_{o.id:x}"
    return {
        "id": o.id,
        "parent_id": 0,
        "status": state,
        "currency": o.currency,
        "version": WC_VERSION,
        "prices_include_tax": False,
        "date_created": local(o.created_at, zone),
        "date_modified": local(o.updated_at, zone),
        "discount_total": "0.00",
        "discount_tax": "0.00",
        "shipping_total": money(o.shipping),
        "shipping_tax": "0.00",
        "cart_tax": "0.00",
        "total": money(o.total),
        "total_tax": "0.00",
        "customer_id": 0 if guest else o.customer_id,
        "order_key": key,
        "billing": _address(o.first_name, o.last_name, (o.email or "").strip(), None),
        "shipping": shipping,
        "payment_method": "bacs",
        "payment_method_title": "Direct bank transfer",
        "transaction_id": "",
        "customer_ip_address": "",
        "customer_user_agent": "",
        "created_via": "checkout",
        "customer_note": "",
        "date_completed": local(completed, zone),
        "date_paid": local(paid, zone),
        "cart_hash": "",
        "number": str(o.number),
        "meta_data": _order_meta(o),
        "line_items": [_line(o, i) for i in range(len(o.lines))],
        "tax_lines": [
            {
                "id": o.id * 10 + 2,
                "rate_code": "US-EXEMPT-1",
                "rate_id": TAX_RATE_ID,
                "label": "Tax exempt",
                "compound": False,
                "tax_total": "0.00",
                "shipping_tax_total": "0.00",
                "rate_percent": 0,
                "meta_data": [],
            }
        ],
        "shipping_lines": [
            {
                "id": o.id * 10 + 1,
                "method_title": "Flat rate",
                "method_id": "flat_rate",
                "instance_id": "1",
                "total": money(o.shipping),
                "total_tax": "0.00",
                "taxes": [{"id": TAX_RATE_ID, "total": "0.00", "subtotal": ""}],
                "tax_status": "taxable",
                "meta_data": [],
            }
        ],
        "fee_lines": [],
        "coupon_lines": [],
        "refunds": [{"id": r.id, "reason": r.reason, "total": money(-r.amount)} for r in o.refunds],
        "payment_url": f"{site}/checkout/order-pay/{o.id}/?pay_for_order=true&key={key}",
        "is_editable": False,
        "needs_payment": False,
        "needs_processing": True,
        "date_created_gmt": gmt(o.created_at),
        "date_modified_gmt": gmt(o.updated_at),
        "date_completed_gmt": gmt(completed),
        "date_paid_gmt": gmt(paid),
        "currency_symbol": "$" if o.currency == "USD" else o.currency,
        "_links": links,
    }
