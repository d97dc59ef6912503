"""WooCommerce REST v3 (`/wp-json/wc/v3/`): customers, orders and managed customer meta.

Auth: over https, HTTP Basic with the consumer key and secret; over plain http (the sandbox, a
dev store) WooCommerce accepts only OAuth 1.0a one-legged, so every request URL is signed with
the `woocommerce` package's `OAuth` signer (HMAC-SHA256), inside the retried call so a retry
gets a fresh nonce and timestamp. Requests go through our pooled `HttpClient`, never through
`woocommerce.API` (no session reuse, duplicated query params). `Link` URLs are never followed:
they echo the old oauth_* params (a 401); we page with `page=N+1` up to `X-WP-TotalPages`.

Paging is by `orderby=id` within a pass. A page-number walk over a result ordered by
modification time skips records: one changed on a later page moves to the end and shifts the
rest one place back across the page boundary. Ordered by id, a record never moves; the result
set only grows while we page (a change can only move `date_modified` forward, new records get
higher ids), which can repeat a record on the next page but never hide one, and upserts make a
repeat harmless. The price is that no page can promise a high-water mark (`Page.high_water_mark`
is None), so pull saves the sync start time when the stream ends; changes made during the pass
are caught by the next run.

Customers have no server-side modified filter. A full pull pages whole customers; an
incremental one first scans only `id,date_modified_gmt` (`_fields`), then fetches just the
new and changed customers with `include=` (100 ids a request).

Tags: WooCommerce customers have no tags. shopcrm keeps its managed tags in one meta key,
`shopcrm_tags`, as a comma-joined sorted list, and `CustomerRecord.tags` is that list (so only
managed tags ever appear). Pushing writes that key alone through `customers/batch`; other meta
keys are never sent, and an empty set sends `null`, which deletes the row.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from woocommerce.oauth import OAuth

from shopcrm.config.schema import AppConfig, WooCommerceShop
from shopcrm.connectors.http import HttpClient, parse_json
from shopcrm.errors import AuthError, PlatformError, TransientError
from shopcrm.records import (
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    Page,
    ShopFacts,
    TagChange,
    TagResult,
)

log = logging.getLogger(__name__)

API_PATH = "wp-json/wc/v3/"
PAGE_SIZE = 100  # the API's maximum per_page
BATCH_LIMIT = 100  # create + update + delete items per batch request
INCLUDE_LIMIT = 100  # ids per `include=` request (one full page)
META_KEY = "shopcrm_tags"
PRICE_DECIMALS = 6  # the store keeps money to 6 decimals
MODIFIED_AFTER_SLACK = timedelta(seconds=1)  # WP's modified_after is exclusive
SCAN_FIELDS = "id,date_modified_gmt,date_created_gmt"


def parse_gmt(value: Any, *, what: str) -> datetime | None:
    """A WooCommerce `*_gmt` field (naive UTC text, no offset) as an aware UTC datetime."""
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise PlatformError(f"{what}: unreadable date {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def modified_after(since: datetime) -> str:
    """`since` as WooCommerce must get it with dates_are_gmt=true: naive UTC, a second early.

    An explicit "Z" or offset is converted to the site's zone and then compared with the GMT
    column by the real server (wrong by the site's offset), so none is sent.
    """
    value = since.astimezone(UTC) - MODIFIED_AFTER_SLACK
    return value.replace(tzinfo=None, microsecond=0).isoformat()


def _money(value: Any, *, what: str) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation as exc:
        raise PlatformError(f"{what}: not an amount: {value!r}") from exc


def managed_tags(meta: Any) -> tuple[str, ...]:
    """The managed tags held in a customer's `shopcrm_tags` meta row (sorted, unique)."""
    for row in meta or ():
        if isinstance(row, Mapping) and row.get("key") == META_KEY:
            value = row.get("value")
            if isinstance(value, str):
                return tuple(sorted({t.strip() for t in value.split(",") if t.strip()}))
    return ()


def customer_record(item: Mapping[str, Any], shop: str) -> CustomerRecord:
    """A WooCommerce customer as a unified record; date_modified_gmt is null for some users
    (no `last_update` meta, e.g. the admin): their creation time stands in."""
    where = f"shop {shop}: customer {item.get('id')}"
    created = parse_gmt(item.get("date_created_gmt"), what=where)
    updated = parse_gmt(item.get("date_modified_gmt"), what=where) or created
    if updated is None:
        raise PlatformError(f"{where}: neither date_modified_gmt nor date_created_gmt is set")
    return CustomerRecord(
        platform_id=str(item["id"]),
        updated_at=updated,
        email=(item.get("email") or "").strip() or None,
        first_name=item.get("first_name") or None,
        last_name=item.get("last_name") or None,
        created_at=created,
        tags=managed_tags(item.get("meta_data")),
    )


def unit_price(line: Mapping[str, Any], where: str) -> Decimal:
    """`price` is a JSON number, the unrounded net price (e.g. 192.436975). When it needs more
    than 6 decimals, subtotal / quantity is used instead (rounded to 6)."""
    price = _money(line.get("price"), what=where)
    exponent = price.as_tuple().exponent
    if isinstance(exponent, int) and -exponent <= PRICE_DECIMALS:
        return price
    quantity = int(line.get("quantity") or 0)
    if quantity:
        subtotal = _money(line.get("subtotal"), what=where)
        return (subtotal / quantity).quantize(Decimal(1).scaleb(-PRICE_DECIMALS))
    return price.quantize(Decimal(1).scaleb(-PRICE_DECIMALS))


def order_record(item: Mapping[str, Any], shop: str) -> OrderRecord:
    """A WooCommerce order as a unified record.

    `total` is the order total as charged (refunds do not lower it); `refunded` sums the
    refunds (listed with negative totals). WooCommerce has no cancellation time, so a cancelled
    order's `cancelled_at` is its last modification; `processed_at` is `date_paid_gmt`.
    """
    where = f"shop {shop}: order {item.get('id')}"
    created = parse_gmt(item.get("date_created_gmt"), what=where)
    updated = parse_gmt(item.get("date_modified_gmt"), what=where) or created
    if created is None or updated is None:
        raise PlatformError(f"{where}: date_created_gmt is missing")
    lines = tuple(
        OrderLineRecord(
            quantity=int(line.get("quantity") or 0),
            unit_price=unit_price(line, f"{where} line {line.get('id')}"),
            platform_id=str(line["id"]) if line.get("id") is not None else None,
            sku=line.get("sku") or None,
            product_id=str(line["product_id"]) if line.get("product_id") else None,
            title=line.get("name") or None,
        )
        for line in item.get("line_items") or ()
    )
    refunded = sum(
        (abs(_money(r.get("total"), what=where)) for r in item.get("refunds") or ()), Decimal(0)
    )
    customer_id = item.get("customer_id") or 0
    status = item.get("status")
    return OrderRecord(
        platform_id=str(item["id"]),
        created_at=created,
        updated_at=updated,
        currency=str(item.get("currency") or ""),
        total=_money(item.get("total"), what=where),
        refunded=refunded,
        customer_platform_id=str(customer_id) if customer_id else None,
        email=((item.get("billing") or {}).get("email") or "").strip() or None,
        number=str(item["number"]) if item.get("number") not in (None, "") else None,
        processed_at=parse_gmt(item.get("date_paid_gmt"), what=where),
        cancelled_at=updated if status == "cancelled" else None,
        financial_status=status,
        lines=lines,
    )


@dataclass(frozen=True, slots=True)
class ListPage:
    items: list[dict[str, Any]]
    total_pages: int | None


class WooCommerceConnector:
    """Reads customers and orders of one WooCommerce store and writes its managed meta.

    Args:
        shop: the shop's config entry.
        config: the whole config (unused today; the factory passes it to every connector).
        client: an HttpClient to use instead of building one (tests).
    """

    def __init__(
        self, shop: WooCommerceShop, config: AppConfig, *, client: HttpClient | None = None
    ) -> None:
        self.shop = shop
        self.name = shop.name
        self._key = shop.credentials.consumer_key.get_secret_value()
        self._secret = shop.credentials.consumer_secret.get_secret_value()
        site = shop.url.rstrip("/") + "/"
        self._oauth = urlsplit(site).scheme == "http"
        self.client = client or HttpClient(site + API_PATH, shop=shop.name)
        if not self._oauth:
            self.client.session.headers["Authorization"] = self._basic()
        self.site = site

    def _basic(self) -> str:
        token = base64.b64encode(f"{self._key}:{self._secret}".encode()).decode()
        return f"Basic {token}"

    @property
    def requests_made(self) -> int:
        return self.client.requests_made

    def close(self) -> None:
        self.client.close()

    # -- HTTP -----------------------------------------------------------------------------

    def _url(self, method: str, path: str, params: Mapping[str, Any] | None) -> str:
        """The request URL; over http signed afresh (new nonce and timestamp) on every call."""
        url = self.client.url(path)
        if params:
            url = f"{url}?{urlencode(params)}"
        if not self._oauth:
            return url
        return str(OAuth(url, self._key, self._secret, method=method).get_oauth_url())

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> tuple[Any, requests.Response]:
        """A retried request, signed inside the retry, returning (JSON body, response)."""

        def attempt() -> tuple[Any, requests.Response]:
            url = self._url(method, path, params)
            response = self.client.send_once(method, url, json=body)
            return parse_json(response, self.name), response

        return self.client.retrying(attempt)

    def _list(self, path: str, params: Mapping[str, Any], page: int) -> ListPage:
        body, response = self._call("GET", path, {**params, "page": page})
        if not isinstance(body, list):
            raise PlatformError(
                f"shop {self.name}: GET {path} page {page}: expected a JSON list, "
                f"got {type(body).__name__}"
            )
        pages = response.headers.get("X-WP-TotalPages")
        return ListPage(body, int(pages) if pages and pages.isdigit() else None)

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Every page of a listing, page=1.. until X-WP-TotalPages (or a short page)."""
        page = 1
        while True:
            listing = self._list(path, {**params, "per_page": PAGE_SIZE}, page)
            if listing.items:
                yield listing.items
            if (listing.total_pages is not None and page >= listing.total_pages) or len(
                listing.items
            ) < PAGE_SIZE:
                return
            page += 1

    # -- Connector ------------------------------------------------------------------------

    def check(self) -> ShopFacts:
        """Currency from settings/general (authenticated), name and zone from the site index.

        Raises:
            AuthError: the keys were refused (the message quotes WooCommerce's reason).
        """
        settings, _ = self._call("GET", "settings/general")
        values = {s.get("id"): s.get("value") for s in settings or () if isinstance(s, Mapping)}
        currency = str(values.get("woocommerce_currency") or "")
        warnings: list[str] = []
        if not currency:
            warnings.append("settings/general has no woocommerce_currency")
        index, _ = self._call("GET", self.site + "wp-json/")
        index = index if isinstance(index, Mapping) else {}
        zone = str(index.get("timezone_string") or "")
        if not zone:
            offset = index.get("gmt_offset") or 0
            zone = "UTC" if not offset else f"UTC{float(offset):+g}"
            warnings.append(f"the site has no named time zone (UTC offset {offset}); using {zone}")
        return ShopFacts(
            name=str(index.get("name") or self.name),
            currency=currency,
            timezone=zone,
            domain=urlsplit(self.site).netloc,
            warnings=tuple(warnings),
        )

    def customers(self, since: datetime | None) -> Iterator[Page[CustomerRecord]]:
        """Customers of every role updated at or after `since` (all when None), by id."""
        base = {"role": "all", "orderby": "id", "order": "asc"}
        if since is None:
            for items in self._pages("customers", base):
                yield Page([customer_record(i, self.name) for i in items])
            return
        changed = self._changed_customer_ids(since, base)
        for start in range(0, len(changed), INCLUDE_LIMIT):
            ids = changed[start : start + INCLUDE_LIMIT]
            body, _ = self._call(
                "GET",
                "customers",
                {**base, "include": ",".join(map(str, ids)), "per_page": PAGE_SIZE},
            )
            yield Page([customer_record(i, self.name) for i in body or ()])

    def _changed_customer_ids(self, since: datetime, base: Mapping[str, Any]) -> list[int]:
        """Scan ids and modification times only; the ids of new and changed customers."""
        changed: list[int] = []
        for items in self._pages("customers", {**base, "_fields": SCAN_FIELDS}):
            for item in items:
                where = f"shop {self.name}: customer {item.get('id')}"
                stamp = parse_gmt(item.get("date_modified_gmt"), what=where) or parse_gmt(
                    item.get("date_created_gmt"), what=where
                )
                if stamp is None or stamp >= since:
                    changed.append(int(item["id"]))
        return changed

    def orders(self, since: datetime | None) -> Iterator[Page[OrderRecord]]:
        """Orders (guests included) modified at or after `since` (all when None), by id."""
        params: dict[str, Any] = {"orderby": "id", "order": "asc"}
        if since is not None:
            params.update(modified_after=modified_after(since), dates_are_gmt="true")
        for items in self._pages("orders", params):
            yield Page([order_record(i, self.name) for i in items])

    def apply(self, changes: Sequence[TagChange]) -> Iterator[TagResult]:
        """Add/remove managed tags in the `shopcrm_tags` meta key, 100 customers a batch.

        Only that key is ever sent; a customer whose result is empty gets `null` (the row is
        deleted). Per-item batch errors (deleted customer, validation) become failed results;
        auth and transient errors are raised.
        """
        for chunk in _chunks(changes):
            yield from self._apply_chunk(chunk)

    def _apply_chunk(self, chunk: list[TagChange]) -> Iterator[TagResult]:
        valid = [c for c in chunk if c.customer_platform_id.isdigit()]
        for change in chunk:
            if change not in valid:
                yield TagResult(change.customer_platform_id, False, "not a WooCommerce customer id")
        if not valid:
            return
        try:
            current = self._current_tags([int(c.customer_platform_id) for c in valid])
            updates, results = self._plan(valid, current)
            if updates:
                results.update(self._write(updates))
        except (AuthError, TransientError):
            raise
        except PlatformError as exc:
            for change in valid:
                yield TagResult(change.customer_platform_id, False, str(exc))
            return
        for change in valid:
            yield results[change.customer_platform_id]

    def _current_tags(self, ids: list[int]) -> dict[str, tuple[str, ...]]:
        body, _ = self._call(
            "GET",
            "customers",
            {
                "include": ",".join(map(str, ids)),
                "role": "all",
                "per_page": PAGE_SIZE,
                "_fields": "id,meta_data",
            },
        )
        return {str(item["id"]): managed_tags(item.get("meta_data")) for item in body or ()}

    def _plan(
        self, changes: list[TagChange], current: Mapping[str, tuple[str, ...]]
    ) -> tuple[list[dict[str, Any]], dict[str, TagResult]]:
        updates: list[dict[str, Any]] = []
        results: dict[str, TagResult] = {}
        for change in changes:
            cid = change.customer_platform_id
            if cid not in current:
                results[cid] = TagResult(cid, False, f"shop {self.name}: customer {cid} not found")
                continue
            before = set(current[cid])
            after = (before - change.remove) | change.add
            results[cid] = TagResult(cid, True)
            if after != before:
                value = ",".join(sorted(after)) if after else None
                updates.append({"id": int(cid), "meta_data": [{"key": META_KEY, "value": value}]})
        return updates, results

    def _write(self, updates: list[dict[str, Any]]) -> dict[str, TagResult]:
        body, _ = self._call("POST", "customers/batch", body={"update": updates})
        answered = body.get("update") if isinstance(body, Mapping) else None
        results: dict[str, TagResult] = {}
        for sent, item in zip(updates, answered or (), strict=False):
            cid = str(sent["id"])
            error = item.get("error") if isinstance(item, Mapping) else None
            if error:
                message = f"{error.get('code')}: {error.get('message')}"
                results[cid] = TagResult(cid, False, f"shop {self.name}: customer {cid}: {message}")
        for sent in updates[len(answered or ()) :]:
            cid = str(sent["id"])
            results[cid] = TagResult(cid, False, f"shop {self.name}: no batch result for {cid}")
        return results


def _chunks(changes: Sequence[TagChange]) -> Iterator[list[TagChange]]:
    """Groups of at most BATCH_LIMIT changes, no customer twice in one group."""
    chunk: list[TagChange] = []
    ids: set[str] = set()
    for change in changes:
        if len(chunk) == BATCH_LIMIT or change.customer_platform_id in ids:
            yield chunk
            chunk, ids = [], set()
        chunk.append(change)
        ids.add(change.customer_platform_id)
    if chunk:
        yield chunk
