"""Helpers for the WooCommerce tests: a running sandbox, signed raw requests, store snapshots."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests
from sqlalchemy import select
from woocommerce.oauth import OAuth

from shopcrm.config.load import parse_config
from shopcrm.config.schema import AppConfig
from shopcrm.sandbox.seed import Dataset, generate
from shopcrm.sandbox.woocommerce import shapes
from shopcrm.sandbox.woocommerce.app import WooCommerceSandbox
from shopcrm.store.db import Store
from shopcrm.store.models import Customer, Order, OrderLine

KEY = "ck_test0123456789abcdef0123456789abcdef01"
SECRET = "cs_test_SECRET_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
READ_KEY = ("ck_readonly00000000000000000000000000000", "cs_readonly_SECRET_000000000000000000000")
API = "/wp-json/wc/v3"


def start_sandbox(dataset: Dataset) -> WooCommerceSandbox:
    return WooCommerceSandbox(
        dataset, consumer_key=KEY, consumer_secret=SECRET, read_only_key=READ_KEY
    ).start()


@pytest.fixture
def woo() -> Iterator[WooCommerceSandbox]:
    """A small sandbox store (40 customers) with a read/write and a read-only key."""
    sandbox = start_sandbox(generate(customers=40, seed=5))
    yield sandbox
    sandbox.stop()


def app_config(sandbox: WooCommerceSandbox, database: str = "sqlite://", **shop: Any) -> AppConfig:
    entry, env = sandbox.shop_entry("woo")
    return parse_config({"database": database, "shops": [{**entry, **shop}]}, env=env)


def signed(
    sandbox: WooCommerceSandbox,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]] = (),
    *,
    key: tuple[str, str] = (KEY, SECRET),
    timestamp: int | None = None,
) -> str:
    """A URL signed by the `woocommerce` package's OAuth signer (HMAC-SHA256)."""
    url = f"{sandbox.url}{path}"
    if query:
        url += "?" + urlencode(list(query))
    extra = {} if timestamp is None else {"oauth_timestamp": timestamp}
    return OAuth(url, key[0], key[1], method=method, **extra).get_oauth_url()


def _enc(text: str) -> str:
    return quote(text, safe="-_.~")


def hand_signed_sha1_params(
    method: str, url: str, query: Sequence[tuple[str, str]], key: str, secret: str
) -> list[tuple[str, str]]:
    """RFC 5849 HMAC-SHA1 written out here, independent of both the library and the sandbox."""
    oauth = [
        ("oauth_consumer_key", key),
        ("oauth_nonce", secrets.token_hex(16)),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", str(int(time.time()))),
    ]
    pairs = sorted((_enc(k), _enc(v)) for k, v in [*query, *oauth])
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    base = "&".join([method, _enc(url), _enc(normalized)])
    digest = hmac.new(f"{secret}&".encode(), base.encode(), hashlib.sha1).digest()
    return [*oauth, ("oauth_signature", base64.b64encode(digest).decode())]


def get(sandbox: WooCommerceSandbox, path: str, **params: Any) -> requests.Response:
    return requests.get(signed(sandbox, "GET", f"{API}/{path}", list(params.items())), timeout=10)


def post(sandbox: WooCommerceSandbox, path: str, body: Any) -> requests.Response:
    return requests.post(signed(sandbox, "POST", f"{API}/{path}"), json=body, timeout=10)


# -- what the store should hold after a sync -------------------------------------------------


def expected_customers(dataset: Dataset) -> dict[str, tuple[Any, ...]]:
    out = {}
    for c in dataset.customers.values():
        tags = next(
            (r["value"] for r in c.extra.get(shapes.META, []) if r["key"] == "shopcrm_tags"), ""
        )
        out[str(c.id)] = (
            (c.email or "").strip() or None,
            c.first_name,
            c.last_name,
            c.created_at,
            c.updated_at,
            sorted(t for t in tags.split(",") if t),
        )
    return out


def expected_orders(dataset: Dataset) -> dict[str, tuple[Any, ...]]:
    out = {}
    for o in dataset.orders.values():
        status = shapes.status(o)
        out[str(o.id)] = (
            str(o.customer_id) if o.customer_id else None,
            (o.email or "").strip() or None,
            str(o.number),
            o.created_at,
            o.updated_at,
            o.updated_at if status == "cancelled" else None,
            o.currency,
            o.total,
            o.refunded,
            status,
            [(ln.sku, str(ln.product_id), ln.title, ln.quantity, ln.unit_price) for ln in o.lines],
        )
    return out


def stored_customers(store: Store) -> dict[str, tuple[Any, ...]]:
    with store.session() as s:
        rows = s.execute(select(Customer)).scalars().all()
        return {
            r.platform_id: (
                r.email,
                r.first_name,
                r.last_name,
                r.created_at,
                r.updated_at,
                sorted(r.tags),
            )
            for r in rows
        }


def stored_orders(store: Store) -> dict[str, tuple[Any, ...]]:
    with store.session() as s:
        lines: dict[int, list[tuple[Any, ...]]] = {}
        for ln in s.execute(select(OrderLine).order_by(OrderLine.position)).scalars():
            lines.setdefault(ln.order_id, []).append(
                (ln.sku, ln.product_id, ln.title, ln.quantity, Decimal(ln.unit_price))
            )
        return {
            r.platform_id: (
                r.customer_platform_id,
                r.email,
                r.number,
                r.created_at,
                r.updated_at,
                r.cancelled_at,
                r.currency,
                r.total,
                r.refunded,
                r.financial_status,
                lines.get(r.id or 0, []),
            )
            for r in s.execute(select(Order)).scalars()
        }
