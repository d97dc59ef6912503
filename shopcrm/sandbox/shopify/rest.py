"""The legacy REST Admin API's read endpoints many existing tools still call.

`shop.json`, and `customers.json` / `orders.json` with `updated_at_min`/`_max`,
`created_at_min`/`_max`, `since_id`, `order`, `status` (orders: open by default), `limit` (50 by
default, at most 250) and cursor paging through the `Link` header's `page_info`, which (as on
Shopify) may only be combined with `limit` and `fields`. REST is limited per request by its
own leaky bucket (40 requests, 2 per second), reported in `X-Shopify-Shop-Api-Call-Limit`.
Times are in the shop's offset, ids are numbers, money is a string: REST's shapes, not GraphQL's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from shopcrm.sandbox.seed import CENT, SeedCustomer, SeedOrder
from shopcrm.sandbox.server import SandboxRequest, SandboxResponse
from shopcrm.sandbox.shopify.cost import LeakyBucket
from shopcrm.sandbox.shopify.index import ORDER_WINDOW, CursorError, Kind, Record, encode_cursor
from shopcrm.sandbox.shopify.render import gid
from shopcrm.sandbox.shopify.search import DateFilter, Search
from shopcrm.sandbox.shopify.state import (
    MAX_PAGE,
    REST_BUCKET,
    REST_DEFAULT_LIMIT,
    ShopState,
    Token,
)

ORDERS = {"id": "ID", "updated_at": "UPDATED_AT", "created_at": "CREATED_AT"}
DATE_PARAMS = {
    "updated_at_min": ("updated_at", ">="),
    "updated_at_max": ("updated_at", "<="),
    "created_at_min": ("created_at", ">="),
    "created_at_max": ("created_at", "<="),
}
PAGE_INFO_COMPANIONS = {"page_info", "limit", "fields"}
RESOURCES: dict[str, tuple[Kind, str]] = {
    "customers": ("customer", "read_customers"),
    "orders": ("order", "read_orders"),
}


class RestError(ValueError):
    def __init__(self, status: int, errors: Any) -> None:
        super().__init__(str(errors))
        self.status = status
        self.errors = errors


def _time(value: datetime | None, tz: ZoneInfo) -> str | None:
    return None if value is None else value.astimezone(tz).isoformat()


def _amount(value: Decimal) -> str:
    return str(value.quantize(CENT))


class RestApi:
    """GET endpoints of the legacy REST API for one sandbox."""

    def __init__(
        self, bucket: Callable[[ShopState], LeakyBucket], base_url: Callable[[], str]
    ) -> None:
        self.bucket = bucket  # the shop's REST call bucket (apart from GraphQL's points)
        self.base_url = base_url  # the server's URL, known once it listens

    def get(
        self,
        shop: ShopState,
        token: Token,
        version: str,
        resource: str,
        request: SandboxRequest,
        headers: dict[str, str],
    ) -> SandboxResponse:
        bucket = self.bucket(shop)
        if not bucket.take(1):
            headers = {
                **headers,
                "Retry-After": "2.0",
                "X-Shopify-Shop-Api-Call-Limit": f"{REST_BUCKET}/{REST_BUCKET}",
            }
            message = (
                "Exceeded 2 calls per second for api client. "
                "Reduce request rates to resume uninterrupted service."
            )
            return SandboxResponse.json({"errors": message}, status=429, headers=headers)
        used = REST_BUCKET - int(bucket.status()["currentlyAvailable"])
        headers = {**headers, "X-Shopify-Shop-Api-Call-Limit": f"{used}/{REST_BUCKET}"}
        try:
            if resource == "shop":
                return SandboxResponse.json({"shop": self.shop(shop)}, headers=headers)
            if resource in RESOURCES:
                body, link = self.listing(shop, token, version, resource, request)
                if link:
                    headers["Link"] = link
                return SandboxResponse.json(body, headers=headers)
        except RestError as exc:
            return SandboxResponse.json({"errors": exc.errors}, status=exc.status, headers=headers)
        return SandboxResponse.json({"errors": "Not Found"}, status=404, headers=headers)

    def shop(self, shop: ShopState) -> dict[str, Any]:
        ds = shop.dataset
        return {
            "id": shop.shop_id,
            "name": ds.shop_name,
            "email": f"owner@{shop.domain}",
            "domain": shop.domain,
            "myshopify_domain": shop.domain,
            "currency": ds.currency,
            "iana_timezone": ds.timezone,
            "plan_name": "basic",
        }

    def listing(
        self, shop: ShopState, token: Token, version: str, resource: str, request: SandboxRequest
    ) -> tuple[dict[str, Any], str | None]:
        """One page of a list and its `Link` header."""
        kind, scope = RESOURCES[resource]
        if scope not in token.scopes:
            raise RestError(403, f"[API] This action requires merchant approval for {scope} scope.")
        limit = self._limit(request)
        params = self._params(request)
        sort, reverse = self._sort(params.get("order"))
        search = self._search(params, shop.dataset.timezone)
        accept = self._accept(shop, token, kind, params)
        after = params.get("cursor")
        backwards = params.get("direction") == "prev"
        with shop.dataset.lock:
            try:
                page = shop.index.page(
                    kind,
                    sort=sort,
                    first=limit,
                    after=after,
                    reverse=reverse != backwards,
                    search=search,
                    accept=accept,
                )
            except CursorError as exc:
                raise RestError(400, {"page_info": "Invalid value."}) from exc
            if backwards:
                page.records.reverse()
                page.keys.reverse()
            tz = ZoneInfo(shop.dataset.timezone)
            render = self._render_customer if kind == "customer" else self._render_order
            body = {resource: [render(shop, r, tz) for r in page.records]}
        shop.dataset.on_read()
        more_after = page.has_previous if backwards else page.has_next
        more_before = page.has_next if backwards else (after is not None)
        links = []
        base = f"{self.base_url()}/admin/api/{version}/{resource}.json"
        state = {k: v for k, v in params.items() if k not in ("cursor", "direction")}
        if page.keys and more_before:
            token_ = _page_info(
                {**state, "cursor": encode_cursor(sort, page.keys[0]), "direction": "prev"}
            )
            links.append(
                f'<{base}?{urlencode({"limit": limit, "page_info": token_})}>; rel="previous"'
            )
        if page.keys and more_after:
            token_ = _page_info(
                {**state, "cursor": encode_cursor(sort, page.keys[-1]), "direction": "next"}
            )
            links.append(f'<{base}?{urlencode({"limit": limit, "page_info": token_})}>; rel="next"')
        return body, ", ".join(links) or None

    def _limit(self, request: SandboxRequest) -> int:
        raw = request.arg("limit")
        try:
            limit = int(raw) if raw is not None else REST_DEFAULT_LIMIT
        except ValueError:
            raise RestError(400, {"limit": "Invalid value."}) from None
        if limit < 1 or limit > MAX_PAGE:
            raise RestError(400, {"limit": f"must be between 1 and {MAX_PAGE}"})
        return limit

    def _params(self, request: SandboxRequest) -> dict[str, str]:
        """The filters of this page: from the query, or carried in `page_info`."""
        given = {k: v[-1] for k, v in request.query.items()}
        raw = given.get("page_info")
        if raw is None:
            return {k: v for k, v in given.items() if k not in ("limit", "fields")}
        if set(given) - PAGE_INFO_COMPANIONS:
            raise RestError(400, {"page_info": "Only limit and fields are allowed with page_info."})
        try:
            decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except ValueError:
            raise RestError(400, {"page_info": "Invalid value."}) from None
        if not isinstance(decoded, dict):
            raise RestError(400, {"page_info": "Invalid value."})
        return {str(k): str(v) for k, v in decoded.items()}

    def _sort(self, raw: str | None) -> tuple[str, bool]:
        field_, _, direction = (raw or "id asc").strip().partition(" ")
        if field_ not in ORDERS or direction.lower() not in ("", "asc", "desc"):
            raise RestError(400, {"order": f"Invalid value {raw!r}."})
        return ORDERS[field_], direction.lower() == "desc"

    def _search(self, params: dict[str, str], timezone: str) -> Search:
        tz = ZoneInfo(timezone)
        filters = []
        for name, (field_, op) in DATE_PARAMS.items():
            if name not in params:
                continue
            try:
                at = datetime.fromisoformat(params[name].replace("Z", "+00:00"))
            except ValueError:
                raise RestError(400, {name: "Invalid value."}) from None
            at = (at if at.tzinfo else at.replace(tzinfo=tz)).astimezone(UTC)
            filters.append(DateFilter(field_, op, at))
        return Search(tuple(filters), ())

    def _accept(self, shop: ShopState, token: Token, kind: Kind, params: dict[str, str]) -> Any:
        since_id = int(params.get("since_id", "0") or 0)
        status = params.get("status", "open") if kind == "order" else "any"
        if status not in ("open", "closed", "cancelled", "any"):
            raise RestError(400, {"status": "Invalid value."})
        oldest = (
            None
            if "read_all_orders" in token.scopes or kind != "order"
            else shop.dataset.now - ORDER_WINDOW
        )

        def accept(record: Record) -> bool:
            if record.id <= since_id:
                return False
            if oldest is not None and record.created_at < oldest:
                return False
            if status == "any":
                return True
            cancelled = getattr(record, "cancelled_at", None) is not None
            return cancelled if status in ("closed", "cancelled") else not cancelled

        return accept

    def _render_customer(self, shop: ShopState, c: SeedCustomer, tz: ZoneInfo) -> dict[str, Any]:
        orders = shop.index.orders_of(c.id)
        spent = sum((o.total - o.refunded for o in orders if o.cancelled_at is None), Decimal(0))
        return {
            "id": c.id,
            "email": c.email,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "phone": c.phone,
            "created_at": _time(c.created_at, tz),
            "updated_at": _time(c.updated_at, tz),
            "orders_count": len(orders),
            "total_spent": _amount(spent),
            "currency": shop.dataset.currency,
            "state": "enabled" if c.email else "disabled",
            "verified_email": c.email is not None,
            "tags": ", ".join(c.tags),
            "email_marketing_consent": None
            if c.email is None
            else {"state": "subscribed" if c.accepts_marketing else "not_subscribed"},
            "admin_graphql_api_id": gid("Customer", c.id),
        }

    def _render_order(self, shop: ShopState, o: SeedOrder, tz: ZoneInfo) -> dict[str, Any]:
        customer = shop.dataset.customers.get(o.customer_id) if o.customer_id is not None else None
        return {
            "id": o.id,
            "admin_graphql_api_id": gid("Order", o.id),
            "name": f"#{o.number}",
            "number": o.number - 1000,
            "order_number": o.number,
            "email": o.email,
            "created_at": _time(o.created_at, tz),
            "processed_at": _time(o.created_at, tz),
            "updated_at": _time(o.updated_at, tz),
            "cancelled_at": _time(o.cancelled_at, tz),
            "closed_at": None,
            "currency": o.currency,
            "subtotal_price": _amount(o.subtotal),
            "total_price": _amount(o.total),
            "financial_status": o.financial_status,
            "tags": ", ".join(o.extra.get("tags", ())),
            "customer": None
            if customer is None
            else {
                "id": customer.id,
                "email": customer.email,
                "admin_graphql_api_id": gid("Customer", customer.id),
            },
            "line_items": [
                {
                    "id": line.id,
                    "product_id": line.product_id,
                    "sku": line.sku,
                    "title": line.title,
                    "name": line.title,
                    "quantity": line.quantity,
                    "price": _amount(line.unit_price),
                    "admin_graphql_api_id": gid("LineItem", line.id),
                }
                for line in o.lines
            ],
            "refunds": [
                {
                    "id": r.id,
                    "created_at": _time(r.created_at, tz),
                    "note": r.reason or None,
                    "transactions": [
                        {"kind": "refund", "status": "success", "amount": _amount(r.amount)}
                    ],
                }
                for r in o.refunds
            ],
        }


def _page_info(state: dict[str, str]) -> str:
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
