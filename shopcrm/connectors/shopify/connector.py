"""Shopify connector: Admin GraphQL API over the shared pooled HTTP client.

Streams page by `updated_at` (sortKey UPDATED_AT, filter `updated_at:>=`), so each page's last
record is a valid high-water mark. A first or full sync of a shop above the bulk threshold
runs a bulk operation instead. Pacing reads the cost bucket from every response and waits
before a query would be throttled; a THROTTLED answer (other clients drained the bucket) is
waited out by the pacer for as long as `defaults.sync.max_throttle_wait` allows; 429, 5xx and
connection errors are retried by the HttpClient policy. Tags are pushed with aliased
`tagsAdd`/`tagsRemove` mutations that only ever name the managed tags they were given.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
import shopify

from shopcrm.config.schema import AppConfig, ShopifyShop
from shopcrm.connectors.http import HttpClient, parse_json
from shopcrm.connectors.shopify.auth import ShopifyAuth
from shopcrm.connectors.shopify.bulk import BulkReader
from shopcrm.connectors.shopify.nodes import customer_record, order_record
from shopcrm.connectors.shopify.queries import (
    CUSTOMERS,
    CUSTOMERS_COUNT,
    CUSTOMERS_PAGE,
    LINES_PAGE,
    LINES_PER_ORDER,
    MUTATIONS_PER_DOCUMENT,
    ORDER_LINES,
    ORDERS,
    ORDERS_COUNT,
    ORDERS_PAGE,
    READ_ALL_ORDERS,
    SHOP,
    estimate_cost,
    tags_document,
    updated_since,
)
from shopcrm.connectors.shopify.throttle import ThrottlePacer
from shopcrm.errors import (
    AuthError,
    PlatformError,
    PlatformUnavailable,
    RateLimited,
    TransientError,
)
from shopcrm.records import CustomerRecord, OrderRecord, Page, R, ShopFacts, TagChange, TagResult

Connection = Callable[[dict[str, Any]], Any]
log = logging.getLogger(__name__)
VERSION_HEADER = "X-Shopify-API-Version"  # the version that executed the request


@dataclass(frozen=True, slots=True)
class _Stream:
    """How one record type is counted and paged."""

    count: str  # the count document
    document: str  # the list document
    root: str  # its connection field
    page: int  # records per full page
    variables: dict[str, Any]  # beyond first/after/query


@dataclass(frozen=True, slots=True)
class GraphQLResult:
    """`data` of a response and the errors that came with it (each a dict with a message)."""

    data: dict[str, Any]
    errors: list[dict[str, Any]]


def _messages(errors: Any) -> str:
    if isinstance(errors, str):
        return errors
    if isinstance(errors, list):
        return "; ".join(
            str(e.get("message", e)) if isinstance(e, Mapping) else str(e) for e in errors
        )
    return str(errors)


def _codes(errors: Any) -> set[str]:
    if not isinstance(errors, list):
        return set()
    return {
        str((e.get("extensions") or {}).get("code"))
        for e in errors
        if isinstance(e, Mapping) and isinstance(e.get("extensions"), Mapping)
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ShopifyConnector:
    """The Connector for one Shopify shop (see `shopcrm.connectors.base.Connector`).

    Args:
        shop: the shop's config; `api_url` points at another origin (the sandbox), in which
            case the `Host` header still names the shop's domain.
        config: the app config (bulk threshold).
        sleep: used for retries, pacing and bulk polling; injectable for tests.
    """

    def __init__(
        self,
        shop: ShopifyShop,
        config: AppConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.shop = shop
        origin = (shop.api_url or f"https://{shop.domain}").rstrip("/")
        host = {"Host": shop.domain} if shop.api_url else {}
        max_wait = config.defaults.sync.throttle_wait_limit.total_seconds()
        self.pacer = ThrottlePacer(max_wait_s=max_wait, sleep=sleep)
        self._client = HttpClient(
            origin, shop=shop.name, headers=host, pacer=self.pacer, sleep=sleep
        )
        self._auth = ShopifyAuth(shop.credentials, self._client)
        self._endpoint = shopify.ApiVersion.coerce_to_version(shop.api_version).api_path(origin)
        self._endpoint += "/graphql.json"
        self._version_warned = False
        self._bulk_threshold = config.defaults.sync.bulk_threshold
        self._costs: dict[tuple[str, tuple[tuple[str, int], ...]], float] = {}
        self._bulk = BulkReader(self.query, self._client, sleep=sleep)

    @property
    def requests_made(self) -> int:
        return self._client.requests_made

    def close(self) -> None:
        self._client.close()

    # -- GraphQL ---------------------------------------------------------------------------

    def execute(self, document: str, variables: Mapping[str, Any] | None = None) -> GraphQLResult:
        """Run a document, paced and retried; errors beside `data` are returned, not raised.

        Raises:
            RateLimited: still THROTTLED after `defaults.sync.max_throttle_wait` (or after
                the retries, when Shopify reported no bucket).
            AuthError: the token is refused (after one renewal for client credentials).
            PlatformError: GraphQL errors without data, or an unexpected body.
        """
        variables = dict(variables or {})
        key = (document, tuple(sorted((k, v) for k, v in variables.items() if isinstance(v, int))))
        payload = {"query": document, "variables": variables}

        def cost() -> float:
            return self._costs.get(key) or estimate_cost(document, variables)

        def call() -> GraphQLResult | None:
            """The result, or None for a THROTTLED answer that reported the bucket."""
            self.pacer.expect(cost())
            body = parse_json(self._post(payload), self.shop.name)
            if not isinstance(body, dict):
                raise PlatformUnavailable(f"shop {self.shop.name}: GraphQL answer is not an object")
            requested = self.pacer.observe(body.get("extensions"))
            if requested:
                self._costs[key] = requested
            errors = body.get("errors")
            if errors and "THROTTLED" in _codes(errors):
                if self.pacer.knows_bucket:
                    return None  # waited out below, outside the retry policy's attempts
                raise RateLimited(
                    f"shop {self.shop.name}: GraphQL query throttled (needs {cost():.0f} points)"
                )
            data = body.get("data")
            if errors and not isinstance(data, dict):
                raise PlatformError(f"shop {self.shop.name}: GraphQL error: {_messages(errors)}")
            if not isinstance(data, dict):
                raise PlatformUnavailable(f"shop {self.shop.name}: GraphQL answer without data")
            return GraphQLResult(data, list(errors) if isinstance(errors, list) else [])

        waited = self.pacer.allow(self.shop.name, cost(), 0.0, throttled=False)
        while (result := self._client.retrying(call)) is None:
            waited = self.pacer.allow(self.shop.name, cost(), waited, throttled=True)
        return result

    def query(self, document: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """`data` of a document that must succeed entirely (any GraphQL error raises)."""
        result = self.execute(document, variables)
        if result.errors:
            raise PlatformError(f"shop {self.shop.name}: GraphQL error: {_messages(result.errors)}")
        return result.data

    def _post(self, payload: dict[str, Any]) -> requests.Response:
        try:
            return self._served(
                self._client.send_once(
                    "POST", self._endpoint, json=payload, headers=self._auth.headers()
                )
            )
        except AuthError as exc:
            if exc.status != 401 or not self._auth.renewable:
                raise
        self._auth.invalidate()  # expired or revoked: one new token, then give up
        return self._served(
            self._client.send_once(
                "POST", self._endpoint, json=payload, headers=self._auth.headers()
            )
        )

    def _served(self, response: requests.Response) -> requests.Response:
        """Warn once if Shopify answered with another version than the one asked for.

        Shopify serves a version it no longer supports as the oldest supported one and says so
        in X-Shopify-API-Version (shopify.dev "About Shopify API versioning"): the sync still
        works, but on a schema the config did not pick.
        """
        served = response.headers.get(VERSION_HEADER)
        if served and served != self.shop.api_version and not self._version_warned:
            self._version_warned = True
            log.warning(
                "shop %s: asked for Admin API version %s, Shopify answered as %s; "
                "set api_version to %s or newer",
                self.shop.name,
                self.shop.api_version,
                served,
                served,
            )
        return response

    def _paginate(
        self, document: str, variables: Mapping[str, Any], connection: Connection, first: int
    ) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        """Pages of a connection; the first asks for `first` nodes, later ones for a full page."""
        after: str | None = None
        size = first
        while True:
            page_vars = {**variables, "first": size, "after": after}
            conn = connection(self.query(document, page_vars)) or {}
            nodes = [edge["node"] for edge in conn.get("edges") or ()]
            info = conn.get("pageInfo") or {}
            cursor = info.get("endCursor")
            yield nodes, cursor
            if not info.get("hasNextPage"):
                return
            if not cursor or cursor == after:
                raise PlatformError(
                    f"shop {self.shop.name}: pagination loop detected (cursor {cursor!r} repeated)"
                )
            after = cursor
            size = variables["first"]

    def _count(self, document: str, search: str | None, limit: int) -> int:
        data = self.query(document, {"limit": limit, "query": search})
        counted = next(iter(data.values()), None) or {}
        count = counted.get("count")
        if not isinstance(count, int):
            raise PlatformError(f"shop {self.shop.name}: count without a number: {counted!r}")
        return count

    def _first_page(self, document: str, since: datetime | None, page: int) -> int:
        """How many records the first page asks for (0: nothing to read, -1: use bulk).

        Shopify charges a query's requested cost up front, so a page sized to what changed
        costs no more than the changes; a first sync above the threshold goes to bulk.
        """
        if since is None:
            count = self._count(document, None, self._bulk_threshold + 1)
            return -1 if count > self._bulk_threshold else min(page, count)
        return min(page, self._count(document, updated_since(_iso(since)), page))

    # -- Connector -------------------------------------------------------------------------

    def check(self) -> ShopFacts:
        """Shop name, currency, time zone and granted scopes; warns if old orders are hidden."""
        data = self.query(SHOP)
        shop = data["shop"]
        installation = data.get("currentAppInstallation") or {}
        scopes = tuple(s["handle"] for s in installation.get("accessScopes") or ())
        warnings = ()
        if READ_ALL_ORDERS not in scopes:
            warnings = (
                f"the app lacks the {READ_ALL_ORDERS} access scope: Shopify shows it only "
                "the last 60 days of orders, so older orders are missing from the store",
            )
        return ShopFacts(
            name=shop["name"],
            currency=shop["currencyCode"],
            timezone=shop["ianaTimezone"],
            domain=shop.get("myshopifyDomain"),
            scopes=scopes,
            warnings=warnings,
        )

    def customers(self, since: datetime | None) -> Iterator[Page[CustomerRecord]]:
        """Customers updated at or after `since`, oldest-updated first (bulk if a large first
        sync)."""
        stream = _Stream(CUSTOMERS_COUNT, CUSTOMERS, "customers", CUSTOMERS_PAGE, {})
        yield from self._stream(stream, since, self._bulk.customers, customer_record)

    def orders(self, since: datetime | None) -> Iterator[Page[OrderRecord]]:
        """Orders (with every line) updated at or after `since`, oldest-updated first."""
        stream = _Stream(ORDERS_COUNT, ORDERS, "orders", ORDERS_PAGE, {"lines": LINES_PER_ORDER})
        yield from self._stream(
            stream, since, self._bulk.orders, lambda n: order_record(n, self._all_lines(n))
        )

    def _stream(
        self,
        stream: _Stream,
        since: datetime | None,
        bulk: Callable[[], Iterator[Page[R]]],
        record: Callable[[dict[str, Any]], R],
    ) -> Iterator[Page[R]]:
        """Count, then bulk or pages sorted by updatedAt, each marked with its last record's."""
        first = self._first_page(stream.count, since, stream.page)
        if first < 0:
            yield from bulk()
            return
        if first == 0:
            return
        search = updated_since(since and _iso(since))
        variables = {**stream.variables, "first": stream.page, "query": search}
        connection: Connection = lambda d: d.get(stream.root)  # noqa: E731
        for nodes, cursor in self._paginate(stream.document, variables, connection, first):
            records = [record(n) for n in nodes]
            if records:
                yield Page(records, high_water_mark=records[-1].updated_at, cursor=cursor)

    def _all_lines(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        """The order's lines, paging past the ones that came with it."""
        first = order.get("lineItems") or {}
        lines = [edge["node"] for edge in first.get("edges") or ()]
        info = first.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return lines
        variables = {"id": order["id"], "first": LINES_PAGE}
        connection: Connection = lambda d: (d.get("order") or {}).get("lineItems")  # noqa: E731
        # restart from the top rather than trust the nested cursor across queries
        pages = self._paginate(ORDER_LINES, variables, connection, LINES_PAGE)
        return [node for nodes, _ in pages for node in nodes]

    def apply(self, changes: Sequence[TagChange]) -> Iterator[TagResult]:
        """Add and remove the given managed tags, many customers per request.

        Only the tags named in each change are sent; `tagsAdd`/`tagsRemove` leave every
        other tag of the customer as it is on Shopify now, even if it changed since our pull.
        A customer that fails (deleted, invalid) gets `ok=False` and the rest continue.

        Raises:
            AuthError: credentials refused (nothing more can be done for this shop).
            TransientError: the platform stayed unavailable through the retries.
        """
        batch: list[TagChange] = []
        size = 0
        for change in changes:
            ops = bool(change.add) + bool(change.remove)
            if ops == 0:
                yield TagResult(change.customer_platform_id, ok=True)
                continue
            if size + ops > MUTATIONS_PER_DOCUMENT:
                yield from self._apply_batch(batch)
                batch, size = [], 0
            batch.append(change)
            size += ops
        if batch:
            yield from self._apply_batch(batch)

    def _apply_batch(self, batch: list[TagChange]) -> Iterator[TagResult]:
        ops: list[tuple[str, str]] = []
        variables: dict[str, Any] = {}
        owners: dict[str, int] = {}
        for i, change in enumerate(batch):
            for suffix, field, tags in (
                ("a", "tagsAdd", change.add),
                ("r", "tagsRemove", change.remove),
            ):
                if tags:
                    alias = f"c{i}{suffix}"
                    ops.append((alias, field))
                    owners[alias] = i
                    variables[f"{alias}_id"] = change.customer_platform_id
                    variables[f"{alias}_tags"] = sorted(tags)
        try:
            result = self.execute(tags_document(ops), variables)
        except (AuthError, TransientError):
            raise
        except PlatformError as exc:
            for change in batch:
                yield TagResult(change.customer_platform_id, ok=False, error=str(exc))
            return
        problems: dict[int, list[str]] = {}
        for error in result.errors:
            path = error.get("path") or []
            if path and path[0] in owners:
                problems.setdefault(owners[path[0]], []).append(str(error.get("message")))
        for alias, index in owners.items():
            outcome = result.data.get(alias)
            if outcome is None:
                problems.setdefault(index, []).append("not applied")
                continue
            for user_error in outcome.get("userErrors") or ():
                problems.setdefault(index, []).append(str(user_error.get("message")))
            if outcome.get("node") is None and not outcome.get("userErrors"):
                problems.setdefault(index, []).append("customer not found")
        for i, change in enumerate(batch):
            errors = problems.get(i)
            yield TagResult(
                change.customer_platform_id,
                ok=errors is None,
                error=None if errors is None else "; ".join(dict.fromkeys(errors)),
            )
