"""Helpers for the Shopify connector tests: configs, GraphQL bodies, a recording sleep."""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

from shopcrm.config.schema import AppConfig, Defaults, ShopifyCredentials, ShopifyShop, SyncSettings

TOKEN = "shpat_unit_test_token_9f8e7d6c"
CLIENT_SECRET = "shpss_unit_test_secret_1a2b3c"
DOMAIN = "main.myshopify.com"
GRAPHQL_URL = f"https://{DOMAIN}/admin/api/2026-10/graphql.json"
TOKEN_URL = f"https://{DOMAIN}/admin/oauth/access_token"


def shop_config(*, client_credentials: bool = False, **overrides: Any) -> ShopifyShop:
    credentials = (
        ShopifyCredentials(client_id="app-id", client_secret=SecretStr(CLIENT_SECRET))
        if client_credentials
        else ShopifyCredentials(access_token=SecretStr(TOKEN))
    )
    return ShopifyShop(
        name="main", platform="shopify", domain=DOMAIN, credentials=credentials, **overrides
    )


def app_config(bulk_threshold: int = 10_000) -> AppConfig:
    return AppConfig(defaults=Defaults(sync=SyncSettings(bulk_threshold=bulk_threshold)))


def cost(requested: float = 10, available: float = 1990, maximum: float = 2000, rate: float = 100):
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": requested,
            "throttleStatus": {
                "maximumAvailable": maximum,
                "currentlyAvailable": available,
                "restoreRate": rate,
            },
        }
    }


def body(data: Any, **cost_kw: Any) -> str:
    return json.dumps({"data": data, "extensions": cost(**cost_kw)})


def throttled(requested: float = 502, available: float = 2.0, rate: float = 100) -> str:
    return json.dumps(
        {
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": cost(requested=requested, available=available, rate=rate),
        }
    )


def connection(nodes: list[dict[str, Any]], *, cursor: str | None = None, more: bool = False):
    return {
        "edges": [{"node": n} for n in nodes],
        "pageInfo": {"hasNextPage": more, "endCursor": cursor},
    }


def customer_node(n: int, updated: str = "2026-11-01T10:00:00Z", **kw: Any) -> dict[str, Any]:
    node = {
        "id": f"gid://shopify/Customer/{n}",
        "firstName": "Ida",
        "lastName": "Berg",
        "createdAt": "2025-01-02T03:04:05Z",
        "updatedAt": updated,
        "tags": ["vip", "crm:loyal"],
        "defaultEmailAddress": {
            "emailAddress": f"ida{n}@example.test",
            "marketingState": "SUBSCRIBED",
        },
    }
    node.update(kw)
    return node


def money(amount: Any, currency: str = "EUR", presentment: Any = None) -> dict[str, Any]:
    bag: dict[str, Any] = {"shopMoney": {"amount": amount, "currencyCode": currency}}
    if presentment is not None:
        bag["presentmentMoney"] = {"amount": presentment, "currencyCode": "JPY"}
    return bag


def line_node(n: int, price: Any = "10.00") -> dict[str, Any]:
    return {
        "id": f"gid://shopify/LineItem/{n}",
        "quantity": 2,
        "sku": f"SKU-{n}",
        "title": f"Product {n}",
        "product": {"id": f"gid://shopify/Product/{n}"},
        "originalUnitPriceSet": money(price),
    }


def order_node(n: int, lines: list[dict[str, Any]], *, more_lines: bool = False, **kw: Any):
    node = {
        "id": f"gid://shopify/Order/{n}",
        "name": f"#{n}",
        "email": f"buyer{n}@example.test",
        "createdAt": "2026-10-01T08:00:00Z",
        "processedAt": "2026-10-01T08:00:01Z",
        "updatedAt": "2026-10-02T09:00:00+02:00",
        "cancelledAt": None,
        "displayFinancialStatus": "PARTIALLY_REFUNDED",
        "customer": {"id": "gid://shopify/Customer/7"},
        "totalPriceSet": money("24.90", presentment="3900"),
        "totalRefundedSet": money("5.00", presentment="780"),
        "lineItems": connection(lines, cursor="L1" if more_lines else None, more=more_lines),
    }
    node.update(kw)
    return node


class Sleeps(list[float]):
    """A `sleep` that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def sent(call: Any) -> dict[str, Any]:
    """The JSON payload of a recorded request."""
    return json.loads(call.request.body)
