"""A local WooCommerce (REST wc/v3) for the demo and the tests, faithful to a real 10.0.2 server.

Serves `/wp-json/wc/v3/` customers (list, single, update, `batch`), orders (list, single),
`settings/general`, `data/currencies/current`, and the public `/wp-json/` index (site name and
time zone). Plain HTTP on 127.0.0.1, so like a real store it accepts only OAuth 1.0a one-legged
signatures (timestamp window, nonce replay, read-only keys): HTTP Basic and query-string keys
are ignored and the request is then simply not allowed. Paging, `X-WP-Total(Pages)`, `Link`
(echoing the caller's oauth_* params, so following it verbatim fails as on the real server),
`modified_after` with its time-zone quirk, `_fields`, `include`, `role`, the 100-item batch
limit with per-item errors and `meta_data` upserts / null deletes behave as recorded in
../shared/platforms/woocommerce/recorded/.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import yaml

from shopcrm.sandbox.base import PlatformSandbox
from shopcrm.sandbox.seed import Dataset, SeedCustomer, SeedOrder
from shopcrm.sandbox.server import SandboxRequest, SandboxResponse, SandboxServer
from shopcrm.sandbox.woocommerce import shapes
from shopcrm.sandbox.woocommerce.oauth import (
    ApiKey,
    OAuthFailure,
    OAuthVerifier,
    PhpParams,
    php_query,
)
from shopcrm.sandbox.woocommerce.params import (
    Listing,
    ListQuery,
    WooError,
    only_fields,
    parse_list_query,
)

BATCH_LIMIT = 100
ENV_KEY = "SHOPCRM_SANDBOX_WOO_KEY"
ENV_SECRET = "SHOPCRM_SANDBOX_WOO_SECRET"  # noqa: S105 - a variable name, not a secret
CUSTOMER_LISTING = Listing(("id", "include", "name", "registered_date"), "name", "asc")
ORDER_LISTING = Listing(
    ("date", "id", "include", "title", "slug", "modified"),
    "date",
    "desc",
    ("after", "before", "modified_after", "modified_before"),
)
_COMMON_HEADERS = {
    "Content-Type": "application/json; charset=UTF-8",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Access-Control-Expose-Headers": "X-WP-Total, X-WP-TotalPages, Link",
    "Access-Control-Allow-Headers": (
        "Authorization, X-WP-Nonce, Content-Disposition, Content-MD5, Content-Type"
    ),
    "Expires": "Wed, 11 Jan 1984 05:00:00 GMT",
    "Cache-Control": "no-cache, must-revalidate, max-age=0, no-store, private",
}
_CANNOT = {
    "list": ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    "view": ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."),
    "edit": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
    "batch": (
        "woocommerce_rest_cannot_batch",
        "Sorry, you are not allowed to batch manipulate this resource.",
    ),
    "delete": (
        "woocommerce_rest_cannot_delete",
        "Sorry, you are not allowed to delete this resource.",
    ),
}
_CUSTOMER_404 = ("wc_user_invalid_id", "Invalid user ID.")
_ORDER_404 = ("woocommerce_rest_shop_order_invalid_id", "Invalid ID.")


@dataclass
class Call:
    """One routed API request: the raw request, its route match and its PHP-style params."""

    request: SandboxRequest
    match: re.Match[str]
    params: PhpParams

    @property
    def record_id(self) -> int:
        return int(self.match.group(1))


Route = Callable[[Call], SandboxResponse]


def _date_filtered(
    orders: Iterable[SeedOrder], name: str, instant: datetime
) -> Iterable[SeedOrder]:
    """WP date_query semantics: `*_after` / `*_before` are exclusive."""
    attr = attrgetter("updated_at" if name.startswith("modified") else "created_at")
    if name.endswith("after"):
        return (o for o in orders if attr(o) > instant)
    return (o for o in orders if attr(o) < instant)


def _meta_value(value: Any) -> Any:
    """WordPress stores meta as strings: true -> "1", false -> "", numbers as text."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, int | float):
        return str(value)
    return value


class WooCommerceSandbox(PlatformSandbox):
    """A seeded WooCommerce store on 127.0.0.1 (follows `shopcrm.sandbox.PlatformSandbox`).

    Args:
        dataset: the shop's records; customers' meta rows live in `extra["woo_meta"]`.
        port: 0 picks a free port.
        consumer_key, consumer_secret: the read/write API key (random when not given).
        read_only_key: an extra (key, secret) pair with `read` permission only.
        latency_s: round-trip delay added to every response (see `SandboxServer`).
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        port: int = 0,
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        read_only_key: tuple[str, str] | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.dataset = dataset
        self.consumer_key = consumer_key or f"ck_{secrets.token_hex(20)}"
        self.consumer_secret = consumer_secret or f"cs_{secrets.token_hex(20)}"
        keys = {self.consumer_key: ApiKey(self.consumer_secret)}
        if read_only_key is not None:
            keys[read_only_key[0]] = ApiKey(read_only_key[1], permissions="read")
        self.verifier = OAuthVerifier(keys)
        self.zone = ZoneInfo(dataset.timezone)
        self._meta_ids = itertools.count(100)
        with dataset.lock:
            for customer in dataset.customers.values():
                customer.extra.setdefault(shapes.META, shapes.seed_meta(customer, self._meta_id))
        self.server = SandboxServer(self.handle, port=port, name="woocommerce", latency_s=latency_s)
        self._paying_cache: tuple[int, set[int]] | None = None
        self._writes = 0  # bumped by writes through the API, beside dataset.version
        self._selected: dict[Listing, tuple[tuple[Any, ...], list[Any]]] = {}
        api = "/wp-json/wc/v3"
        self._routes: list[tuple[str, re.Pattern[str], str | None, Route]] = [
            ("GET", re.compile(f"{api}/customers/?"), "list", self._list_customers),
            ("POST", re.compile(f"{api}/customers/batch/?"), "batch", self._batch_customers),
            ("GET", re.compile(rf"{api}/customers/(\d+)/?"), "view", self._get_customer),
            ("POST", re.compile(rf"{api}/customers/(\d+)/?"), "edit", self._put_customer),
            ("DELETE", re.compile(rf"{api}/customers/(\d+)/?"), "delete", self._delete_customer),
            ("GET", re.compile(f"{api}/orders/?"), "list", self._list_orders),
            ("GET", re.compile(rf"{api}/orders/(\d+)/?"), "view", self._get_order),
            ("GET", re.compile(f"{api}/settings/general/?"), "list", self._settings),
            ("GET", re.compile(f"{api}/data/currencies/current/?"), "view", self._currency),
            ("GET", re.compile(f"{api}/?"), None, self._namespace),
        ]

    # -- PlatformSandbox ------------------------------------------------------------------

    def shop_entry(self, name: str) -> tuple[dict[str, Any], dict[str, str]]:
        """A `shops:` entry for this store and the environment its `${VAR}`s need."""
        entry = {
            "name": name,
            "platform": "woocommerce",
            "url": self.url,
            "credentials": {
                "consumer_key": f"${{{ENV_KEY}}}",
                "consumer_secret": f"${{{ENV_SECRET}}}",
            },
        }
        return entry, {ENV_KEY: self.consumer_key, ENV_SECRET: self.consumer_secret}

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request as WooCommerce would (the SandboxServer handler)."""
        try:
            return self._dispatch(request)
        except WooError as exc:
            return self._json(exc.body(), status=exc.status)

    def _dispatch(self, request: SandboxRequest) -> SandboxResponse:
        path = request.path
        params = php_query(request.raw_query)
        route = params.get("rest_route")
        if path == "/" and isinstance(route, str):
            # plain-permalink form: served, but API keys are never checked on it (not /wp-json/wc/)
            return self._route(request, "/wp-json" + route, params, None)
        if path.rstrip("/") in ("", "/wp-json") and request.method in ("GET", "HEAD"):
            return self._json(self._site_index())
        if not path.startswith("/wp-json/wc/v3"):
            raise WooError(
                404, "rest_no_route", "No route was found matching the URL and request method."
            )
        try:
            key = self.verifier.authenticate(
                request.method, self.url + path, params, request.header("authorization")
            )
        except OAuthFailure as exc:
            raise WooError(401, exc.code, str(exc)) from None
        return self._route(request, path, params, key)

    def _route(
        self, request: SandboxRequest, path: str, params: PhpParams, key: str | None
    ) -> SandboxResponse:
        method = "POST" if request.method in ("PUT", "PATCH") else request.method
        method = "GET" if method == "HEAD" else method
        for verb, pattern, action, route in self._routes:
            match = pattern.fullmatch(path)
            if match and verb == method:
                if key is None and action is not None:
                    raise WooError(401, *_CANNOT[action])
                return route(Call(request, match, params))
        raise WooError(
            404, "rest_no_route", "No route was found matching the URL and request method."
        )

    def _json(
        self,
        body: Any,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        write: bool = False,
    ) -> SandboxResponse:
        extra = {"Link": f'<{self.url}/wp-json/>; rel="https://api.w.org/"', **(headers or {})}
        return SandboxResponse(
            status=status,
            body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
            headers={**_COMMON_HEADERS, **extra},
            write=write,
        )

    def _meta_id(self) -> int:
        return next(self._meta_ids)

    # -- collections ----------------------------------------------------------------------

    def _page(
        self,
        call: Call,
        query: ListQuery,
        records: list[Any],
        render: Callable[[Any], dict[str, Any]],
    ) -> SandboxResponse:
        total = len(records)
        pages = math.ceil(total / query.per_page)
        start = query.offset if query.offset is not None else (query.page - 1) * query.per_page
        body = [
            only_fields(render(r), query.fields) for r in records[start : start + query.per_page]
        ]
        self.dataset.on_read()
        links = []
        if query.page > 1:
            links.append(
                f'<{self._page_url(call.request, min(query.page - 1, pages))}>; rel="prev"'
            )
        if pages > query.page:
            links.append(f'<{self._page_url(call.request, query.page + 1)}>; rel="next"')
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages), "Allow": "GET, POST"}
        if links:  # otherwise the API-root link every WP response carries
            headers["Link"] = ", ".join(links)
        return self._json(body, headers=headers)

    def _page_url(self, request: SandboxRequest, page: int) -> str:
        """The caller's own query (oauth_* included, as the real server echoes it), page=N."""
        pairs = [p for p in request.raw_query.split("&") if p and not p.startswith("page=")]
        pairs.append(f"page={page}")
        return f"{self.url}{request.path}?{'&'.join(pairs)}"

    def _customers(self, query: ListQuery) -> list[SeedCustomer]:
        role = query.text.get("role", "customer")
        email = query.text.get("email", "").strip().lower()
        search = query.text.get("search", "").lower()
        include = set(query.include) if query.include is not None else None
        exclude = set(query.exclude)
        found = [
            c
            for c in self.dataset.customers.values()
            if (role == "all" or shapes.role(c) == role)
            and (include is None or c.id in include)
            and c.id not in exclude
            and (not email or (c.email or "").strip().lower() == email)
            and (not search or search in f"{c.email} {c.first_name} {c.last_name}".lower())
        ]
        keys: dict[str, Callable[[SeedCustomer], Any]] = {
            "id": lambda c: c.id,
            "name": lambda c: (f"{c.first_name} {c.last_name}", c.id),
            "registered_date": lambda c: (c.created_at, c.id),
            "include": lambda c: (query.include or []).index(c.id),
        }
        return sorted(found, key=keys[query.orderby], reverse=query.order == "desc")

    def _list_customers(self, call: Call) -> SandboxResponse:
        return self._listing(call, CUSTOMER_LISTING, self._customers, self._render_customer)

    def _orders(self, query: ListQuery) -> list[SeedOrder]:
        """The matching orders, sorted; each filter is a pass only when it was asked for."""
        found: Iterable[SeedOrder] = self.dataset.orders.values()
        if query.include is not None:
            include = set(query.include)
            found = (o for o in found if o.id in include)
        if query.exclude:
            exclude = set(query.exclude)
            found = (o for o in found if o.id not in exclude)
        if "customer" in query.text:
            customer = int(query.text["customer"])
            found = (o for o in found if (o.customer_id or 0) == customer)
        statuses = set(query.text.get("status", "any").split(",")) - {"any"}
        if statuses:
            found = (o for o in found if shapes.status(o) in statuses)
        column_zone = UTC if query.dates_are_gmt else self.zone
        for name, value in query.dates.items():
            found = _date_filtered(found, name, value.instant(column_zone))
        keys: dict[str, Callable[[SeedOrder], Any]] = {
            "id": attrgetter("id"),
            "date": attrgetter("created_at", "id"),
            "modified": attrgetter("updated_at", "id"),
            "title": attrgetter("id"),
            "slug": attrgetter("id"),
            "include": lambda o: (query.include or []).index(o.id),
        }
        return sorted(found, key=keys[query.orderby], reverse=query.order == "desc")

    def _list_orders(self, call: Call) -> SandboxResponse:
        return self._listing(call, ORDER_LISTING, self._orders, self._render_order)

    def _listing(
        self,
        call: Call,
        listing: Listing,
        select: Callable[[ListQuery], list[Any]],
        render: Callable[[Any], dict[str, Any]],
    ) -> SandboxResponse:
        query = parse_list_query(call.params, listing, zone=self.zone)
        with self.dataset.lock:
            return self._page(call, query, self._selection(listing, query, select), render)

    def _selection(
        self, listing: Listing, query: ListQuery, select: Callable[[ListQuery], list[Any]]
    ) -> list[Any]:
        """The matching records in order, kept while nothing changed: a client paging
        through a listing costs one filter-and-sort, not one per page."""
        ds = self.dataset
        key = (query.selection(), ds.version, self._writes, len(ds.customers), len(ds.orders))
        cached = self._selected.get(listing)
        if cached is None or cached[0] != key:
            cached = (key, select(query))
            self._selected[listing] = cached
        return cached[1]

    # -- single records -------------------------------------------------------------------

    def _paying(self) -> set[int]:
        """Customers with orders (`is_paying_customer`), cached while the order count holds."""
        count = len(self.dataset.orders)
        if self._paying_cache is None or self._paying_cache[0] != count:
            orders = self.dataset.orders.values()
            self._paying_cache = (count, {o.customer_id for o in orders if o.customer_id})
        return self._paying_cache[1]

    def _render_customer(self, c: SeedCustomer) -> dict[str, Any]:
        return shapes.customer(c, site=self.url, zone=self.zone, paying=c.id in self._paying())

    def _render_order(self, o: SeedOrder) -> dict[str, Any]:
        return shapes.order(o, site=self.url, zone=self.zone)

    def _customer(self, customer_id: int) -> SeedCustomer:
        found = self.dataset.customers.get(customer_id)
        if found is None:
            raise WooError(404, *_CUSTOMER_404)
        return found

    def _get_customer(self, call: Call) -> SandboxResponse:
        with self.dataset.lock:
            return self._json(self._render_customer(self._customer(call.record_id)))

    def _get_order(self, call: Call) -> SandboxResponse:
        with self.dataset.lock:
            found = self.dataset.orders.get(call.record_id)
            if found is None:
                raise WooError(404, *_ORDER_404)
            return self._json(self._render_order(found))

    @staticmethod
    def _body(request: SandboxRequest) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            raise WooError(
                400,
                "rest_invalid_json",
                "Invalid JSON body passed.",
                json_error_code=4,
                json_error_message="Syntax error",
            ) from None
        return body if isinstance(body, dict) else {}

    def _put_customer(self, call: Call) -> SandboxResponse:
        body = self._body(call.request)
        with self.dataset.lock:
            customer = self._customer(call.record_id)
            self._update(customer, body)
            return self._json(self._render_customer(customer), write=True)

    def _delete_customer(self, call: Call) -> SandboxResponse:
        if str(call.params.get("force", "")).lower() not in ("true", "1"):
            raise WooError(
                501, "woocommerce_rest_trash_not_supported", "Customers do not support trashing."
            )
        with self.dataset.lock:
            customer = self._customer(call.record_id)
            return self._json(self._delete(customer), write=True)

    # -- writes ---------------------------------------------------------------------------

    def _update(self, customer: SeedCustomer, body: dict[str, Any]) -> None:
        """Apply a customer update; like WooCommerce, any save bumps date_modified."""
        for name in ("first_name", "last_name", "email"):
            if isinstance(body.get(name), str):
                setattr(customer, name, body[name])
        rows: list[dict[str, Any]] = customer.extra.setdefault(shapes.META, [])
        for entry in body.get("meta_data") or []:
            if isinstance(entry, dict) and "key" in entry:
                self._set_meta(rows, entry)
        customer.updated_at = max(customer.updated_at, self.dataset.now)
        self._writes += 1

    def _set_meta(self, rows: list[dict[str, Any]], entry: dict[str, Any]) -> None:
        """`update_meta_data(key, value, id)`: by id, else upsert by key; null deletes."""
        key, value = str(entry["key"]), entry.get("value")
        target = next((r for r in rows if "id" in entry and r["id"] == entry["id"]), None)
        if target is None:
            target = next((r for r in rows if r["key"] == key), None)
        if value is None:
            if target is not None:
                rows.remove(target)
            return
        if target is None:
            rows.append({"id": self._meta_id(), "key": key, "value": _meta_value(value)})
        else:
            target.update(key=key, value=_meta_value(value))

    def _delete(self, customer: SeedCustomer) -> dict[str, Any]:
        """Delete a user: their orders become guest orders and are modified (as recorded)."""
        rendered = self._render_customer(customer)
        for link in rendered["_links"]["self"]:
            link.pop("targetHints")  # the resource is gone: nothing is allowed on it any more
        del self.dataset.customers[customer.id]
        self._paying_cache = None
        self._writes += 1
        now = self.dataset.now
        for order in self.dataset.orders.values():
            if order.customer_id == customer.id:
                order.customer_id = None
                order.updated_at = max(order.updated_at, now)
        return rendered

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        email = str(body.get("email") or "").strip()
        if not email:
            raise WooError(
                400, "registration-error-invalid-email", "Please provide a valid email address."
            )
        taken = {(c.email or "").strip().lower() for c in self.dataset.customers.values()}
        if email.lower() in taken:
            raise WooError(
                400,
                "registration-error-email-exists",
                f"An account is already registered with {email}. "
                "Please log in or use a different email address.",
            )
        now = self.dataset.now
        customer = SeedCustomer(
            id=self.dataset.next_id("customer"),
            email=email,
            first_name=str(body.get("first_name") or ""),
            last_name=str(body.get("last_name") or ""),
            created_at=now,
            updated_at=now,
        )
        customer.extra[shapes.META] = []
        self.dataset.customers[customer.id] = customer
        self._update(customer, body)
        return self._render_customer(customer)

    def _batch_customers(self, call: Call) -> SandboxResponse:
        body = self._body(call.request)
        groups = {name: list(body.get(name) or []) for name in ("create", "update", "delete")}
        if sum(len(items) for items in groups.values()) > BATCH_LIMIT:
            raise WooError(
                413,
                "woocommerce_rest_request_entity_too_large",
                f"Unable to accept more than {BATCH_LIMIT} items for this request.",
            )
        result: dict[str, list[dict[str, Any]]] = {}
        with self.dataset.lock:
            if "create" in body:
                result["create"] = list(self._each(groups["create"], lambda b: 0, self._create))
            if "update" in body:
                result["update"] = list(
                    self._each(groups["update"], self._item_id, self._batch_update)
                )
            if "delete" in body:
                result["delete"] = list(
                    self._each(groups["delete"], self._item_id, self._batch_delete)
                )
        return self._json(result, write=True)

    @staticmethod
    def _item_id(item: Any) -> int:
        raw = item.get("id") if isinstance(item, dict) else item
        try:
            return int(raw)
        except (TypeError, ValueError):
            return 0

    def _batch_update(self, item: Any) -> dict[str, Any]:
        customer = self._customer(self._item_id(item))
        self._update(customer, item if isinstance(item, dict) else {})
        return self._render_customer(customer)

    def _batch_delete(self, item: Any) -> dict[str, Any]:
        return self._delete(self._customer(self._item_id(item)))

    @staticmethod
    def _each(
        items: Iterable[Any],
        item_id: Callable[[Any], int],
        apply: Callable[[Any], dict[str, Any]],
    ) -> Iterable[dict[str, Any]]:
        """Per-item results: a failed item is {"id", "error"} and the others still apply."""
        for item in items:
            try:
                yield apply(item)
            except WooError as exc:
                yield {
                    "id": item_id(item),
                    "error": {
                        "code": exc.code,
                        "message": str(exc),
                        "data": {"status": exc.status},
                    },
                }

    # -- shop facts -----------------------------------------------------------------------

    def _site_index(self) -> dict[str, Any]:
        offset = datetime.now(self.zone).utcoffset()
        hours = offset.total_seconds() / 3600 if offset else 0
        return {
            "name": self.dataset.shop_name,
            "description": "",
            "url": self.url,
            "home": self.url,
            "gmt_offset": int(hours) if hours.is_integer() else hours,
            "timezone_string": self.dataset.timezone,
            "namespaces": ["oembed/1.0", "wc/v3", "wp/v2"],
            "authentication": {},
        }

    def _namespace(self, _: Call) -> SandboxResponse:
        return self._json({"namespace": "wc/v3", "routes": {}})

    def _setting(self, key: str, label: str, kind: str, value: str) -> dict[str, Any]:
        base = f"{self.url}{shapes.API}/settings/general"
        return {
            "id": key,
            "label": label,
            "description": "",
            "type": kind,
            "default": "",
            "tip": "",
            "value": value,
            "_links": {
                "self": [
                    {
                        "href": f"{base}/{quote(key)}",
                        "targetHints": {"allow": ["GET", "POST", "PUT", "PATCH"]},
                    }
                ],
                "collection": [{"href": base}],
            },
        }

    def _settings(self, _: Call) -> SandboxResponse:
        body = [
            self._setting("woocommerce_store_address", "Address line 1", "text", "1 Sandbox Way"),
            self._setting("woocommerce_store_city", "City", "text", "Springfield"),
            self._setting("woocommerce_default_country", "Country / State", "select", "US:NY"),
            self._setting("woocommerce_currency", "Currency", "select", self.dataset.currency),
            self._setting("woocommerce_price_num_decimals", "Number of decimals", "number", "2"),
        ]
        return self._json(body)

    def _currency(self, _: Call) -> SandboxResponse:
        code = self.dataset.currency
        base = f"{self.url}{shapes.API}/data/currencies"
        return self._json(
            {
                "code": code,
                "name": code,
                "symbol": "&#36;" if code == "USD" else code,
                "_links": {
                    "self": [{"href": f"{base}/{code}", "targetHints": {"allow": ["GET"]}}],
                    "collection": [{"href": base}],
                },
            }
        )


def banner(sandbox: WooCommerceSandbox, name: str) -> str:
    """What `shopcrm sandbox woocommerce` prints: URL, credentials and a config snippet."""
    entry, env = sandbox.shop_entry(name)
    snippet = yaml.safe_dump({"shops": [entry]}, sort_keys=False).rstrip()
    exports = "\n".join(f"export {key}={value}" for key, value in env.items())
    return (
        f"WooCommerce sandbox at {sandbox.url} (API {sandbox.url}{shapes.API}/, OAuth 1.0a)\n"
        f"{len(sandbox.dataset.customers)} customers, {len(sandbox.dataset.orders)} orders, "
        f"currency {sandbox.dataset.currency}, time zone {sandbox.dataset.timezone}\n\n"
        f"{exports}\n\n{snippet}\n"
    )
