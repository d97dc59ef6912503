"""A local BigCommerce: v3 customers and attribute values, v2 orders and store, rate limits.

Serves one seeded `Dataset` under `/stores/{store_hash}/v3/...` and `/stores/{store_hash}/v2/...`
in the shapes of BigCommerce's published OpenAPI specs (../shared/platforms/bigcommerce). What
the specs leave open follows the platform's documented or observed behaviour:

- `X-Auth-Token` auth; a wrong token gets BigCommerce's 401 body (v3 object, v2 list).
- One request quota per store and fixed window (150 per 30 s on the Standard plan). Every answer
  carries `X-Rate-Limit-Requests-Left`, `-Requests-Quota`, `-Time-Reset-Ms` and `-Time-Window-Ms`;
  past the quota it is 429 with those headers, `X-Retry-After` and no body.
- v2 orders: a bare array, `page`/`limit` (max 250, 413 above), `min_/max_date_modified` (RFC-2822
  or ISO 8601, inclusive), `min_id`, `sort` with or without `:asc`/`:desc` (ties by id), and
  `204 No Content` for an empty page. `include=consignments.line_items` embeds the lines in the
  object consignment shape, at most `embedded_line_limit` per consignment (then `__warning__`,
  as the platform does past 50), so clients need `/v2/orders/{id}/products` for the rest.
- v3 customers: `meta.pagination`, `date_modified:min/:max` (inclusive), `id:in`,
  `include=attributes`, `sort=date_modified:asc|desc` (ties by id). Upserting an attribute value
  bumps the customer's `date_modified`.
- attribute values: PUT upserts at most 10 per call with at most 3 at once (429 past that); a
  request with an invalid item is refused whole with a 422 `ErrorResponse` whose `errors` keys
  start with the item's index (`"2.customer_id"`).

Merchant tags of the seed have no v3 equivalent; the sandbox seeds other attributes
(`loyalty_tier`, `birthday`, `merchant_tags`) so a client touching them shows.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from shopcrm.sandbox.base import PlatformSandbox
from shopcrm.sandbox.seed import Dataset, SeedCustomer, SeedOrder
from shopcrm.sandbox.server import SandboxRequest, SandboxResponse, SandboxServer

DEFAULT_TOKEN = "bc-sandbox-token"  # noqa: S105 - a local stand-in's token, not a secret
TOKEN_ENV = "SHOPCRM_SANDBOX_BC_TOKEN"  # noqa: S105 - a variable name
MAX_LIMIT = 250
DEFAULT_LIMIT = 50
VALUES_PER_PUT = 10
PUT_CONCURRENCY = 3
MAX_ATTRIBUTES = 50
MAX_VALUE_LENGTH = 255
EMBEDDED_LINE_LIMIT = 50
ZERO = "0.0000"
_ROUTE = re.compile(r"^/stores/(?P<hash>[^/]+)/(?P<version>v2|v3)(?P<rest>/.*)$")
_ORDER_PRODUCTS = re.compile(r"^/orders/(?P<id>\d+)/products$")


class _ApiError(Exception):
    """An error answer in the shape of the API version that raised it."""

    def __init__(self, status: int, title: str, errors: dict[str, str] | None = None) -> None:
        self.status = status
        self.title = title
        self.errors = errors or {}
        super().__init__(title)


@dataclass
class _Attribute:
    id: int
    name: str
    type: str
    created: datetime


@dataclass
class _Value:
    id: int
    attribute_id: int
    customer_id: int
    value: str
    created: datetime
    modified: datetime


class RateWindow:
    """BigCommerce's quota: `quota` requests per fixed window, shared by the whole store."""

    def __init__(
        self, quota: int, window_ms: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.quota = quota
        self.window_ms = window_ms
        self._clock = clock
        self._lock = threading.Lock()
        self._start: float | None = None
        self._used = 0

    def take(self) -> tuple[bool, dict[str, str]]:
        """Count one request; returns whether it is allowed and the headers to send."""
        with self._lock:
            now = self._clock()
            window = self.window_ms / 1000
            if self._start is None or now >= self._start + window:
                self._start, self._used = now, 0
            allowed = self._used < self.quota
            if allowed:
                self._used += 1
            reset_ms = max(1, math.ceil((self._start + window - now) * 1000))
            headers = {
                "X-Rate-Limit-Requests-Left": str(self.quota - self._used),
                "X-Rate-Limit-Requests-Quota": str(self.quota),
                "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
                "X-Rate-Limit-Time-Window-Ms": str(self.window_ms),
            }
            if not allowed:
                headers["X-Retry-After"] = str(math.ceil(reset_ms / 1000))
            return allowed, headers


def iso(moment: datetime) -> str:
    """v3 date-time: ISO 8601 UTC with a Z, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc2822(moment: datetime) -> str:
    """v2 dates: RFC-2822 in UTC, e.g. `Wed, 05 Dec 2018 20:16:55 +0000`."""
    return format_datetime(moment.astimezone(UTC))


def parse_when(text: str, name: str) -> datetime:
    """A filter date in RFC-2822, ISO 8601 (naive = UTC) or a plain date; 400 when neither."""
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            raise _ApiError(400, f"The filter {name} is not a valid date: {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def money(value: Decimal) -> str:
    """v2 money: a string with four decimals, e.g. `"12.3400"`."""
    return f"{value:.4f}"


def _ints(text: str | None, name: str) -> list[int]:
    if not text:
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise _ApiError(400, f"The filter {name} must be a list of integers") from None


def _int(request: SandboxRequest, name: str, default: int) -> int:
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise _ApiError(400, f"The parameter {name} must be a number") from None
    if value < 1:
        raise _ApiError(400, f"The parameter {name} must be at least 1")
    return value


def _paging(request: SandboxRequest) -> tuple[int, int]:
    page, limit = _int(request, "page", 1), _int(request, "limit", DEFAULT_LIMIT)
    if limit > MAX_LIMIT:
        raise _ApiError(413, f"The limit {limit} exceeds the maximum of {MAX_LIMIT}")
    return page, limit


def _bounds(
    request: SandboxRequest, low_name: str, high_name: str
) -> tuple[datetime | None, datetime | None]:
    """The inclusive modification-time filters of a list request."""
    low, high = request.arg(low_name), request.arg(high_name)
    return (
        parse_when(low, low_name) if low else None,
        parse_when(high, high_name) if high else None,
    )


def _modified_between(
    items: Iterable[Any],
    low: datetime | None,
    high: datetime | None,
    keep: Callable[[Any], bool],
) -> list[Any]:
    return [
        item
        for item in items
        if (low is None or item.updated_at >= low)
        and (high is None or item.updated_at <= high)
        and keep(item)
    ]


def _sorted(items: list[Any], sort: str | None, fields: dict[str, Callable[[Any], Any]]) -> list:
    field_name, _, direction = (sort or "id").partition(":")
    if field_name not in fields or direction not in ("", "asc", "desc"):
        raise _ApiError(400, f"Unsupported sort {sort!r}")
    key = fields[field_name]
    return sorted(items, key=lambda item: (key(item), item.id), reverse=direction == "desc")


def _collection(
    chosen: list[Any], page: int, limit: int, render: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """One page of `chosen` as a v3 collection body with `meta.pagination`."""
    data = [render(item) for item in chosen[(page - 1) * limit : page * limit]]
    return {"data": data, "meta": _meta(len(chosen), len(data), page, limit)}


def _meta(total: int, count: int, page: int, limit: int) -> dict[str, Any]:
    pages = max(1, math.ceil(total / limit))
    links = {"current": f"?page={page}&limit={limit}"}
    if page > 1:
        links["previous"] = f"?page={page - 1}&limit={limit}"
    if page < pages:
        links["next"] = f"?page={page + 1}&limit={limit}"
    return {
        "pagination": {
            "total": total,
            "count": count,
            "per_page": limit,
            "current_page": page,
            "total_pages": pages,
            "links": links,
        }
    }


def _order_status(order: SeedOrder) -> tuple[int, str, str]:
    """(status_id, status, payment_status) of BigCommerce's built-in statuses."""
    if order.cancelled_at is not None:
        return 5, "Cancelled", "void" if not order.refunds else "refunded"
    if order.refunds and order.refunded >= order.total:
        return 4, "Refunded", "refunded"
    if order.refunds:
        return 14, "Partially Refunded", "partially refunded"
    return 10, "Completed", "captured"


class BigCommerceSandbox(PlatformSandbox):
    """A BigCommerce store on 127.0.0.1 serving `dataset` (see the module docstring).

    Args:
        dataset: the shop's records; changed in place by writes.
        port: 0 picks a free port.
        store_hash: the `{store_hash}` of every path.
        access_token: the `X-Auth-Token` accepted.
        quota: requests per window for the whole store.
        window_ms: the rate-limit window.
        clock: monotonic seconds for the window (injectable so tests can run 30 s windows fast).
        latency_s: round-trip delay added to every response (see `SandboxServer`).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        port: int = 0,
        store_hash: str = "sandbox1",
        access_token: str = DEFAULT_TOKEN,
        quota: int = 150,
        window_ms: int = 30_000,
        clock: Callable[[], float] = time.monotonic,
        latency_s: float = 0.0,
    ) -> None:
        self.dataset = dataset
        self.store_hash = store_hash
        self.access_token = access_token
        self.rate = RateWindow(quota, window_ms, clock)
        self.embedded_line_limit = EMBEDDED_LINE_LIMIT
        self.attributes: dict[int, _Attribute] = {}
        self.values: dict[int, _Value] = {}
        self._by_customer: dict[int, dict[int, int]] = {}  # customer -> attribute -> value id
        self._next = {"attribute": 1, "value": 1}
        self._puts_in_flight = 0
        self._put_lock = threading.Lock()
        self._seed_attributes()
        self.server = SandboxServer(
            self.handle, port=port, name="bigcommerce-sandbox", latency_s=latency_s
        )

    # -- PlatformSandbox ------------------------------------------------------------------

    def shop_entry(self, name: str) -> tuple[dict[str, Any], dict[str, str]]:
        entry = {
            "name": name,
            "platform": "bigcommerce",
            "store_hash": self.store_hash,
            "api_url": self.url,
            "credentials": {"access_token": "${" + TOKEN_ENV + "}"},
        }
        return entry, {TOKEN_ENV: self.access_token}

    # -- state helpers for tests and the demo ------------------------------------------------

    def attribute_named(self, name: str) -> _Attribute | None:
        with self.dataset.lock:
            return next((a for a in self.attributes.values() if a.name == name), None)

    def customer_values(self, customer_id: int) -> dict[str, str]:
        """The customer's attribute values by attribute name."""
        with self.dataset.lock:
            return {
                self.attributes[v.attribute_id].name: v.value for v in self._values_of(customer_id)
            }

    def _values_of(self, customer_id: int) -> list[_Value]:
        held = self._by_customer.get(customer_id, {})
        return [self.values[value_id] for value_id in sorted(held.values())]

    def _seed_attributes(self) -> None:
        ds = self.dataset
        created = min((c.created_at for c in ds.customers.values()), default=ds.now)
        tier = self._add_attribute("loyalty_tier", "string", created)
        birthday = self._add_attribute("birthday", "date", created)
        merchant = self._add_attribute("merchant_tags", "string", created)
        for c in ds.customers.values():
            if c.id % 4 == 0:
                self._put_value(tier, c, ("bronze", "silver", "gold")[c.id % 3], c.created_at)
            if c.id % 5 == 0:
                day = f"19{60 + c.id % 40}-{1 + c.id % 12:02d}-{1 + c.id % 28:02d}"
                self._put_value(birthday, c, day, c.created_at)
            if c.tags:
                self._put_value(merchant, c, ",".join(c.tags), c.created_at)

    def _add_attribute(self, name: str, kind: str, at: datetime) -> _Attribute:
        attribute = _Attribute(self._next["attribute"], name, kind, at)
        self._next["attribute"] += 1
        self.attributes[attribute.id] = attribute
        return attribute

    def _put_value(
        self, attribute: _Attribute, customer: SeedCustomer, value: str, at: datetime
    ) -> _Value:
        index = self._by_customer.setdefault(customer.id, {})
        held = self.values.get(index.get(attribute.id, -1))
        if held is None:
            held = _Value(self._next["value"], attribute.id, customer.id, value, at, at)
            self._next["value"] += 1
            self.values[held.id] = held
            index[attribute.id] = held.id
        else:
            held.value, held.modified = value, at
        return held

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        match = _ROUTE.match(request.path)
        version = match.group("version") if match else "v3"
        if request.header("x-auth-token") != self.access_token:
            return self._error(version, _ApiError(401, "You are not authorized to access this"))
        allowed, headers = self.rate.take()
        if not allowed:
            return SandboxResponse(status=429, headers=headers)
        try:
            if match is None or match.group("hash") != self.store_hash:
                raise _ApiError(404, "The requested resource was not found")
            response = self._route(request, version, match.group("rest"))
        except _ApiError as exc:
            response = self._error(version, exc)
        response.headers.update(headers)
        return response

    def _route(self, request: SandboxRequest, version: str, rest: str) -> SandboxResponse:
        method = request.method
        routes: dict[tuple[str, str, str], Callable[[SandboxRequest], SandboxResponse]] = {
            ("GET", "v3", "/customers"): self._customers,
            ("GET", "v3", "/customers/attributes"): self._attributes,
            ("POST", "v3", "/customers/attributes"): self._create_attributes,
            ("GET", "v3", "/customers/attribute-values"): self._values_list,
            ("PUT", "v3", "/customers/attribute-values"): self._values_put,
            ("DELETE", "v3", "/customers/attribute-values"): self._values_delete,
            ("GET", "v2", "/orders"): self._orders,
            ("GET", "v2", "/store"): self._store,
        }
        handler = routes.get((method, version, rest))
        if handler is not None:
            return handler(request)
        products = _ORDER_PRODUCTS.match(rest)
        if method == "GET" and version == "v2" and products:
            return self._order_products(request, int(products.group("id")))
        raise _ApiError(404, f"No route for {method} /{version}{rest}")

    def _error(self, version: str, exc: _ApiError) -> SandboxResponse:
        if version == "v2":
            return SandboxResponse.json([{"status": exc.status, "message": exc.title}], exc.status)
        body: dict[str, Any] = {
            "status": exc.status,
            "title": exc.title,
            "type": "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes",
        }
        if exc.errors:
            body["errors"] = exc.errors
        return SandboxResponse.json(body, exc.status)

    # -- v2 store ----------------------------------------------------------------------------

    def _store(self, request: SandboxRequest) -> SandboxResponse:
        ds = self.dataset
        zone = ZoneInfo(ds.timezone)
        now = datetime.now(zone)
        offset = now.utcoffset() or (now - now)
        dst = now.dst() or (now - now)
        domain = f"{self.store_hash}.mybigcommerce.com"
        return SandboxResponse.json(
            {
                "id": self.store_hash,
                "domain": domain,
                "secure_url": f"https://{domain}",
                "status": "live",
                "name": ds.shop_name,
                "country": "United States",
                "country_code": "US",
                "language": "en",
                "currency": ds.currency,
                "currency_symbol": "$" if ds.currency == "USD" else ds.currency,
                "decimal_separator": ".",
                "thousands_separator": ",",
                "decimal_places": 2,
                "currency_symbol_location": "left",
                "timezone": {
                    "name": ds.timezone,
                    "raw_offset": int((offset - dst).total_seconds()),
                    "dst_offset": int(offset.total_seconds()),
                    "dst_correction": bool(dst),
                    "date_format": {
                        "display": "jS M Y",
                        "export": "M jS Y",
                        "extended_display": "M jS Y @ g:i A",
                    },
                },
                "plan_name": "Standard",
                "plan_level": "Standard",
                "plan_is_trial": False,
                "is_price_entered_with_tax": False,
                "default_channel_id": 1,
            }
        )

    # -- v3 customers ------------------------------------------------------------------------

    def _customers(self, request: SandboxRequest) -> SandboxResponse:
        page, limit = _paging(request)
        low, high = _bounds(request, "date_modified:min", "date_modified:max")
        ids = set(_ints(request.arg("id:in"), "id:in"))
        include = set((request.arg("include") or "").split(","))
        with self.dataset.lock:
            self.dataset.on_read()
            chosen = _modified_between(
                self.dataset.customers.values(), low, high, lambda c: not ids or c.id in ids
            )
            chosen = _sorted(
                chosen,
                request.arg("sort"),
                {
                    "id": lambda c: c.id,
                    "date_modified": lambda c: c.updated_at,
                    "date_created": lambda c: c.created_at,
                    "last_name": lambda c: c.last_name,
                },
            )
            window = chosen[(page - 1) * limit : page * limit]
            data = [self._customer(c, "attributes" in include) for c in window]
        return SandboxResponse.json(
            {"data": data, "meta": _meta(len(chosen), len(data), page, limit)}
        )

    def _customer(self, c: SeedCustomer, with_attributes: bool) -> dict[str, Any]:
        values = self._values_of(c.id)
        body: dict[str, Any] = {
            "id": c.id,
            "first_name": c.first_name,
            "last_name": c.last_name,
            "company": "",
            "notes": "",
            "customer_group_id": 0,
            "date_created": iso(c.created_at),
            "date_modified": iso(c.updated_at),
            "address_count": 0,
            "attribute_count": len(values),
            "accepts_product_review_abandoned_cart_emails": c.accepts_marketing,
            "channel_ids": [1],
            "origin_channel_id": 1,
            "registration_ip_address": "",
            "tax_exempt_category": "",
        }
        if c.email:
            body["email"] = c.email
        if c.phone:
            body["phone"] = c.phone
        if with_attributes:
            body["attributes"] = [self._value_in_customer(v) for v in values]
        return body

    @staticmethod
    def _value_in_customer(v: _Value) -> dict[str, Any]:
        return {
            "id": v.id,
            "attribute_id": v.attribute_id,
            "attribute_value": v.value,
            "customer_id": v.customer_id,
            "date_created": iso(v.created),
            "date_modified": iso(v.modified),
        }

    def _attribute_body(self, a: _Attribute) -> dict[str, Any]:
        return {
            "id": a.id,
            "name": a.name,
            "type": a.type,
            "date_created": iso(a.created),
            "date_modified": iso(a.created),
        }

    def _attributes(self, request: SandboxRequest) -> SandboxResponse:
        page, limit = _paging(request)
        name = request.arg("name")
        with self.dataset.lock:
            chosen = [a for a in self.attributes.values() if name is None or a.name == name]
            window = chosen[(page - 1) * limit : page * limit]
            data = [self._attribute_body(a) for a in window]
        return SandboxResponse.json(
            {"data": data, "meta": _meta(len(chosen), len(data), page, limit)}
        )

    def _create_attributes(self, request: SandboxRequest) -> SandboxResponse:
        items = self._array_body(request)
        with self.dataset.lock:
            taken = {a.name for a in self.attributes.values()}
            errors: dict[str, str] = {}
            for i, item in enumerate(items):
                name, kind = item.get("name"), item.get("type")
                if not isinstance(name, str) or not 1 <= len(name) <= MAX_VALUE_LENGTH:
                    errors[f"{i}.name"] = "name must be 1-255 characters"
                elif name in taken:
                    errors[f"{i}.name"] = f"attribute {name!r} already exists"
                if kind not in ("string", "number", "date"):
                    errors[f"{i}.type"] = "type must be string, number or date"
            if len(self.attributes) + len(items) > MAX_ATTRIBUTES:
                errors["attributes"] = f"a store holds at most {MAX_ATTRIBUTES} attributes"
            if errors:
                raise _ApiError(422, "The attributes could not be created", errors)
            made = [self._add_attribute(i["name"], i["type"], self.dataset.now) for i in items]
            data = [self._attribute_body(a) for a in made]
        return SandboxResponse.json({"data": data, "meta": {}}, write=True)

    # -- v3 attribute values -------------------------------------------------------------------

    def _values_list(self, request: SandboxRequest) -> SandboxResponse:
        page, limit = _paging(request)
        customers = set(_ints(request.arg("customer_id:in"), "customer_id:in"))
        attributes = set(_ints(request.arg("attribute_id:in"), "attribute_id:in"))
        with self.dataset.lock:
            chosen = sorted(
                (
                    v
                    for v in self.values.values()
                    if (not customers or v.customer_id in customers)
                    and (not attributes or v.attribute_id in attributes)
                ),
                key=lambda v: v.id,
            )
            window = chosen[(page - 1) * limit : page * limit]
            data = [self._value_in_customer(v) for v in window]
        return SandboxResponse.json(
            {"data": data, "meta": _meta(len(chosen), len(data), page, limit)}
        )

    def _values_put(self, request: SandboxRequest) -> SandboxResponse:
        with self._put_lock:
            self._puts_in_flight += 1
            crowded = self._puts_in_flight > PUT_CONCURRENCY
        try:
            if crowded:
                raise _ApiError(429, "Limit of 3 concurrent requests exceeded")
            return self._upsert_values(self._array_body(request))
        finally:
            with self._put_lock:
                self._puts_in_flight -= 1

    def _upsert_values(self, items: list[dict[str, Any]]) -> SandboxResponse:
        if len(items) > VALUES_PER_PUT:
            raise _ApiError(413, f"Limit of {VALUES_PER_PUT} customers per call")
        ds = self.dataset
        with ds.lock:
            errors: dict[str, str] = {}
            for i, item in enumerate(items):
                errors.update(self._value_errors(i, item))
            if errors:
                raise _ApiError(422, "The attribute values could not be saved", errors)
            now = ds.now
            saved = []
            for item in items:
                customer = ds.customers[item["customer_id"]]
                attribute = self.attributes[item["attribute_id"]]
                saved.append(self._put_value(attribute, customer, item["value"], now))
                customer.updated_at = max(customer.updated_at, now)
            data = [self._value_in_customer(v) for v in saved]
        return SandboxResponse.json(
            {"data": data, "meta": _meta(len(data), len(data), 1, max(1, len(data)))}, write=True
        )

    def _value_errors(self, i: int, item: Any) -> Iterable[tuple[str, str]]:
        if not isinstance(item, dict):
            yield f"{i}", "must be an object"
            return
        if item.get("attribute_id") not in self.attributes:
            yield f"{i}.attribute_id", f"attribute {item.get('attribute_id')} does not exist"
        if item.get("customer_id") not in self.dataset.customers:
            yield f"{i}.customer_id", f"customer {item.get('customer_id')} does not exist"
        value = item.get("value")
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
            yield f"{i}.value", f"value must be a string of at most {MAX_VALUE_LENGTH} characters"

    def _values_delete(self, request: SandboxRequest) -> SandboxResponse:
        ids = _ints(request.arg("id:in"), "id:in")
        if not ids:
            raise _ApiError(422, "id:in is required", {"id:in": "required"})
        ds = self.dataset
        with ds.lock:
            now = ds.now
            for value_id in ids:
                held = self.values.pop(value_id, None)
                if held is None:
                    continue
                del self._by_customer[held.customer_id][held.attribute_id]
                customer = ds.customers.get(held.customer_id)
                if customer is not None:
                    customer.updated_at = max(customer.updated_at, now)
        return SandboxResponse(status=204, write=True)

    @staticmethod
    def _array_body(request: SandboxRequest) -> list[dict[str, Any]]:
        try:
            items = request.json()
        except ValueError:
            raise _ApiError(400, "The request body is not valid JSON") from None
        if not isinstance(items, list):
            raise _ApiError(422, "The request body must be an array", {"body": "not an array"})
        return items

    # -- v2 orders -----------------------------------------------------------------------------

    def _orders(self, request: SandboxRequest) -> SandboxResponse:
        page, limit = _paging(request)
        low, high = _bounds(request, "min_date_modified", "max_date_modified")
        min_id = _int(request, "min_id", 0) if request.arg("min_id") else 0
        lines = "consignments.line_items" in (request.arg("include") or "").split(",")
        with self.dataset.lock:
            self.dataset.on_read()
            chosen = _modified_between(
                self.dataset.orders.values(), low, high, lambda o: o.id >= min_id
            )
            chosen = _sorted(
                chosen,
                request.arg("sort"),
                {
                    "id": lambda o: o.id,
                    "date_modified": lambda o: o.updated_at,
                    "date_created": lambda o: o.created_at,
                },
            )
            window = chosen[(page - 1) * limit : page * limit]
            data = [self._order(o, lines) for o in window]
        if not data:
            return SandboxResponse(status=204)
        return SandboxResponse.json(data)

    def _resource(self, path: str) -> dict[str, str]:
        return {
            "url": f"{self.url}/stores/{self.store_hash}/v2{path}",
            "resource": path,
        }

    def _order(self, o: SeedOrder, with_lines: bool) -> dict[str, Any]:
        status_id, status, payment = _order_status(o)
        subtotal, total = o.subtotal, o.total
        body: dict[str, Any] = {
            "id": o.id,
            "customer_id": o.customer_id or 0,
            "date_created": rfc2822(o.created_at),
            "date_modified": rfc2822(o.updated_at),
            "date_shipped": "",
            "status_id": status_id,
            "status": status,
            "subtotal_ex_tax": money(subtotal),
            "subtotal_inc_tax": money(subtotal),
            "subtotal_tax": ZERO,
            "base_shipping_cost": money(o.shipping),
            "shipping_cost_ex_tax": money(o.shipping),
            "shipping_cost_inc_tax": money(o.shipping),
            "total_ex_tax": money(total),
            "total_inc_tax": money(total),
            "total_tax": ZERO,
            "items_total": sum(line.quantity for line in o.lines),
            "items_shipped": 0,
            "payment_method": "Credit Card",
            "payment_status": payment,
            "refunded_amount": money(o.refunded),
            "is_email_opt_in": False,
            "discount_amount": ZERO,
            "coupon_discount": ZERO,
            "currency_id": 1,
            "currency_code": o.currency,
            "currency_exchange_rate": "1.0000000000",
            "default_currency_id": 1,
            "default_currency_code": o.currency,
            "store_default_currency_code": self.dataset.currency,
            "is_deleted": False,
            "is_tax_inclusive_pricing": False,
            "order_source": "www",
            "channel_id": 1,
            "external_source": None,
            "billing_address": {
                "first_name": o.first_name,
                "last_name": o.last_name,
                "street_1": "1 Sandbox Street",
                "city": "Austin",
                "state": "Texas",
                "zip": "78751",
                "country": "United States",
                "country_iso2": "US",
                "email": o.email or "",
            },
            "products": self._resource(f"/orders/{o.id}/products"),
            "shipping_addresses": self._resource(f"/orders/{o.id}/shipping_addresses"),
            "coupons": self._resource(f"/orders/{o.id}/coupons"),
        }
        if with_lines:
            lines = [self._line(o, i) for i in range(len(o.lines))]
            shipping: dict[str, Any] = {
                "id": o.id,
                "first_name": o.first_name,
                "last_name": o.last_name,
                "zip": "78751",
                "items_total": body["items_total"],
                "line_items": lines[: self.embedded_line_limit],
            }
            if len(lines) > self.embedded_line_limit:
                shipping["__warning__"] = (
                    f"Only the first {self.embedded_line_limit} line items are returned"
                )
            body["consignments"] = {"shipping": [shipping]}
        else:
            body["consignments"] = self._resource(f"/orders/{o.id}/consignments")
        return body

    def _line(self, o: SeedOrder, index: int) -> dict[str, Any]:
        line = o.lines[index]
        return {
            "id": line.id,
            "order_id": o.id,
            "product_id": line.product_id,
            "name": line.title,
            "sku": line.sku,
            "type": "physical",
            "base_price": money(line.unit_price),
            "price_ex_tax": money(line.unit_price),
            "price_inc_tax": money(line.unit_price),
            "price_tax": ZERO,
            "base_total": money(line.total),
            "total_ex_tax": money(line.total),
            "total_inc_tax": money(line.total),
            "total_tax": ZERO,
            "quantity": line.quantity,
            "is_refunded": False,
            "quantity_shipped": 0,
        }

    def _order_products(self, request: SandboxRequest, order_id: int) -> SandboxResponse:
        page, limit = _paging(request)
        with self.dataset.lock:
            order = self.dataset.orders.get(order_id)
            if order is None:
                raise _ApiError(404, f"Order {order_id} not found")
            self.dataset.on_read()
            indexes = range(len(order.lines))[(page - 1) * limit : page * limit]
            data = [self._line(order, i) for i in indexes]
        if not data:
            return SandboxResponse(status=204)
        return SandboxResponse.json(data)


def banner(sandbox: BigCommerceSandbox, name: str) -> str:
    """What `shopcrm sandbox bigcommerce` prints: URL, credentials and a config snippet."""
    entry, env = sandbox.shop_entry(name)
    snippet = yaml.safe_dump({"shops": [entry]}, sort_keys=False).rstrip()
    exports = "\n".join(f"export {key}={value}" for key, value in env.items())
    ds, rate = sandbox.dataset, sandbox.rate
    return (
        f"BigCommerce sandbox at {sandbox.url} "
        f"(API {sandbox.url}/stores/{sandbox.store_hash}/v3/ and /v2/, header X-Auth-Token)\n"
        f"{len(ds.customers)} customers, {len(ds.orders)} orders, currency {ds.currency}, "
        f"time zone {ds.timezone}; rate limit {rate.quota} requests per {rate.window_ms} ms\n\n"
        f"{exports}\n\n{snippet}\n"
    )
