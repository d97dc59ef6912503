"""BigCommerce: v3 customers and customer attribute values, v2 orders and store, over requests.

Paging that neither loses nor repeats records while the shop changes under it
----------------------------------------------------------------------------
Both lists are read oldest-modified first (`sort=date_modified:asc` on v3 customers; on v2
orders `sort=date_modified`, whose published enum has no `:asc`, ascending by default) and never
by page number: every request asks again for page 1 of "modified at or after T", T being the
newest `date_modified` delivered so far (keyset paging on the timestamp). A record modified while
we page moves to the end of the list, past T, so it is read again in this same pass with its new
values, and nothing shifts under a page number. Records at exactly T come back on the next
request and are dropped by id. Every record modified before T has then been delivered, so each
page's `high_water_mark` is T and a killed sync resumes from there.

A run of records sharing one timestamp longer than a page (a merchant's bulk import) would stall
that scheme, so it is read on its own: orders by `min_id` keyset within `min/max_date_modified=T`;
customers (v3 has no `id:min`) by page number within `date_modified:min/max=T`, restarting at
page 1 when `meta.pagination.total` changes and dropping ids already delivered. Afterwards paging
resumes at T + 1 s (both APIs keep whole seconds).

Line items come embedded with `include=consignments.line_items` (one request per 250 orders,
instead of one per order through `/v2/orders/{id}/products`, which at the Standard plan's
5 requests/s would take hours for a large shop). Only an order whose embedded lines are
incomplete (a consignment `__warning__`, or quantities not adding up to `items_total`) is
completed from `/v2/orders/{id}/products`.

Order mapping: `total` = `total_inc_tax`, `refunded` = `refunded_amount`, guests have
`customer_id` 0, `financial_status` = the order status in lower case, and a Cancelled order's
`cancelled_at` is its `date_modified` (v2 keeps no cancellation time).

Push: customers have no tags in v3, so the managed tags live in one customer attribute,
`shopcrm_tags` (a string of comma-joined, sorted tags, at most 255 characters), created on first
push. `apply` reads the current values, removes and adds only the tags it is given, upserts in
batches of 10 with at most 3 requests at once, and deletes the value when no tag is left, so
other attributes and any text it did not put there stay as they are.

Pacing: `RateLimitPacer` reads the `X-Rate-Limit-*` headers of every response and, when the
requests left in the window reach a small reserve (the quota is shared with the store's other
apps), waits for the window to reset instead of running into 429.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from shopcrm.config.schema import AppConfig, BigCommerceShop
from shopcrm.connectors.http import HttpClient
from shopcrm.errors import AuthError, PlatformError, PlatformUnavailable
from shopcrm.records import (
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    Page,
    R,
    ShopFacts,
    TagChange,
    TagResult,
)

log = logging.getLogger(__name__)

PAGE_LIMIT = 250  # the documented maximum of v2 and v3 lists
VALUES_PER_PUT = 10  # PUT /v3/customers/attribute-values: "Limit of 10 customers per call"
PUT_CONCURRENCY = 3  # ... "Limit of 3 concurrent requests"
IDS_PER_READ = 50  # customer ids per `customer_id:in` / `id:in` query
MANAGED_ATTRIBUTE = "shopcrm_tags"
ATTRIBUTE_MAX_LENGTH = 255
RATE_RESERVE = 2  # requests left for the store's other apps before we wait for the reset
ONE_SECOND = timedelta(seconds=1)
CANCELLED_STATUS_ID = 5
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_ERROR_INDEX = re.compile(r'"(\d+)\.\w+"\s*:')


class RateLimitPacer:
    """Keeps a client inside BigCommerce's per-window quota, shared by concurrent threads.

    Args:
        reserve: wait for the window reset when this many requests are left.
        sleep: injectable for tests.
        clock: monotonic seconds, injectable with `sleep`.
    """

    def __init__(
        self,
        *,
        reserve: int = RATE_RESERVE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reserve = reserve
        self.waited_s = 0.0
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._left: int | None = None  # None: unknown, e.g. a new window
        self._reset_at = 0.0
        self._in_flight = 0

    def before_request(self) -> None:
        with self._lock:
            if self._left is not None and self._left <= self.reserve:
                wait = self._reset_at - self._clock()
                if wait > 0:
                    log.debug("rate limit: %d left, waiting %.2fs for the reset", self._left, wait)
                    self._sleep(wait)
                    self.waited_s += wait
                self._left = None
            if self._left is not None:
                self._left -= 1
            self._in_flight += 1

    def after_response(self, response: requests.Response) -> None:
        headers = response.headers
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            try:
                left = int(headers["X-Rate-Limit-Requests-Left"])
                reset_ms = float(headers["X-Rate-Limit-Time-Reset-Ms"])
            except (KeyError, ValueError):
                return
            # a little past the reset: the server counts from before our clock saw the answer
            self._reset_at = self._clock() + reset_ms / 1000 + 0.01
            self._left = left - self._in_flight


def parse_rfc2822(text: str, what: str) -> datetime:
    """A v2 date (`Wed, 05 Dec 2018 20:16:55 +0000`) as aware UTC.

    v2 always answers in UTC; that shape is parsed directly (the email parser is the hot spot
    of a large sync), anything else goes through `email.utils`.
    """
    parts = text.split() if isinstance(text, str) else ()
    if len(parts) == 6 and parts[5] == "+0000" and parts[2] in _MONTHS:
        try:
            hour, minute, second = parts[4].split(":")
            return datetime(
                int(parts[3]), _MONTHS[parts[2]], int(parts[1]),
                int(hour), int(minute), int(second), tzinfo=UTC,
            )  # fmt: skip
        except ValueError:
            pass
    try:
        return parsedate_to_datetime(text).astimezone(UTC)
    except (TypeError, ValueError, IndexError) as exc:
        raise PlatformUnavailable(f"{what}: unreadable date {text!r}") from exc


def parse_iso(text: str, what: str) -> datetime:
    """A v3 date-time (`2024-05-14T09:34:00Z`) as aware UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError) as exc:
        raise PlatformUnavailable(f"{what}: unreadable date {text!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def decimal(value: Any, what: str) -> Decimal:
    """Money from a v2 string (or a JSON number, through str) as an exact Decimal."""
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise PlatformUnavailable(f"{what}: {value!r} is not an amount") from exc


def _whole_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def split_tags(value: str | None) -> tuple[str, ...]:
    """The managed attribute's value as sorted tags."""
    return tuple(sorted({t.strip() for t in (value or "").split(",") if t.strip()}))


class BigCommerceConnector:
    """One BigCommerce store (see the module docstring for paging, lines, push and pacing).

    Args:
        shop: the shop's config.
        config: the whole config (unused by BigCommerce beyond the shop).
        sleep: injectable wait for retries and pacing.
        clock: monotonic seconds for pacing, injectable with `sleep`.
    """

    def __init__(
        self,
        shop: BigCommerceShop,
        config: AppConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shop = shop
        self.pacer = RateLimitPacer(sleep=sleep, clock=clock)
        self.http = HttpClient(
            f"{shop.api_url.rstrip('/')}/stores/{shop.store_hash}/",
            shop=shop.name,
            headers={
                "X-Auth-Token": shop.credentials.access_token.get_secret_value(),
                # the orders spec requires it even on GET /orders/{id}/products
                "Content-Type": "application/json",
            },
            pacer=self.pacer,
            sleep=sleep,
        )
        self._attribute_id: int | None = None

    @property
    def requests_made(self) -> int:
        return self.http.requests_made

    def close(self) -> None:
        self.http.close()

    def _where(self, detail: str) -> str:
        return f"shop {self.shop.name}: {detail}"

    # -- check -------------------------------------------------------------------------------

    def check(self) -> ShopFacts:
        """The store's name, currency, time zone and domain from GET /v2/store.

        Raises:
            AuthError: the access token was refused.
        """
        try:
            body = self.http.json("GET", "v2/store")
        except AuthError as exc:
            raise AuthError(
                f"shop {self.shop.name}: BigCommerce refused the access token for store "
                f"{self.shop.store_hash} (HTTP {exc.status}); check credentials.access_token and "
                "its scopes (store_v2_customers, store_v2_orders, store_v2_information)",
                status=exc.status,
            ) from exc
        if not isinstance(body, dict) or not body.get("currency"):
            raise PlatformUnavailable(self._where("GET /v2/store gave no store information"))
        zone = body.get("timezone") or {}
        return ShopFacts(
            name=str(body.get("name") or self.shop.name),
            currency=str(body["currency"]),
            timezone=str(zone.get("name") or "UTC"),
            domain=body.get("domain") or None,
        )

    # -- customers ---------------------------------------------------------------------------

    def customers(self, since: datetime | None) -> Iterator[Page[CustomerRecord]]:
        """Customers modified at or after `since`, oldest first, with their managed tags."""
        attribute_id = self._find_attribute()

        def fetch(params: dict[str, Any]) -> tuple[list[CustomerRecord], int | None]:
            query = {"include": "attributes", "sort": "date_modified:asc", **params}
            body = self.http.json("GET", "v3/customers", params=query)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise PlatformUnavailable(self._where("GET /v3/customers gave no data list"))
            total = (body.get("meta") or {}).get("pagination", {}).get("total")
            return [self._customer(c, attribute_id) for c in body["data"]], total

        def after(mark: datetime | None) -> list[CustomerRecord]:
            params = {"limit": PAGE_LIMIT, "page": 1}
            if mark is not None:
                params["date_modified:min"] = _iso_param(mark)
            return fetch(params)[0]

        def run(mark: datetime, seen: set[str]) -> Iterator[list[CustomerRecord]]:
            at = _iso_param(mark)
            page, total = 1, None
            while True:
                params = {"date_modified:min": at, "date_modified:max": at}
                records, now_total = fetch({**params, "limit": PAGE_LIMIT, "page": page})
                if total is not None and now_total != total:
                    page, total = 1, now_total  # the run changed under us: read it again
                    continue
                total = now_total
                yield records
                if len(records) < PAGE_LIMIT:
                    return
                page += 1

        yield from keyset_pages(after, run, since)

    def _customer(self, raw: dict[str, Any], attribute_id: int | None) -> CustomerRecord:
        what = self._where(f"customer {raw.get('id')}")
        try:
            platform_id = str(raw["id"])
            updated = parse_iso(raw["date_modified"], what)
        except KeyError as exc:
            raise PlatformUnavailable(f"{what}: missing {exc.args[0]}") from exc
        managed = next(
            (
                a.get("attribute_value")
                for a in raw.get("attributes") or ()
                if attribute_id is not None and a.get("attribute_id") == attribute_id
            ),
            None,
        )
        created = raw.get("date_created")
        return CustomerRecord(
            platform_id=platform_id,
            updated_at=updated,
            email=raw.get("email") or None,
            first_name=raw.get("first_name") or None,
            last_name=raw.get("last_name") or None,
            created_at=parse_iso(created, what) if created else None,
            accepts_marketing=raw.get("accepts_product_review_abandoned_cart_emails"),
            tags=split_tags(managed),
        )

    # -- orders ------------------------------------------------------------------------------

    def orders(self, since: datetime | None) -> Iterator[Page[OrderRecord]]:
        """Orders modified at or after `since`, oldest first, with their line items."""

        def fetch(params: dict[str, Any]) -> list[OrderRecord]:
            query = {
                "include": "consignments.line_items",
                "consignment_structure": "object",
                "limit": PAGE_LIMIT,
                "page": 1,
                **params,
            }
            body = self.http.json("GET", "v2/orders", params=query)
            if body is None:  # 204 No Content: nothing (more) to read
                return []
            if not isinstance(body, list):
                raise PlatformUnavailable(self._where("GET /v2/orders gave no order list"))
            return [self._order(o) for o in body]

        def after(mark: datetime | None) -> list[OrderRecord]:
            params: dict[str, Any] = {"sort": "date_modified"}
            if mark is not None:
                params["min_date_modified"] = _iso_param(mark)
            return fetch(params)

        def run(mark: datetime, seen: set[str]) -> Iterator[list[OrderRecord]]:
            at = _iso_param(mark)
            min_id = 1
            while True:
                records = fetch(
                    {
                        "sort": "id",
                        "min_date_modified": at,
                        "max_date_modified": at,
                        "min_id": min_id,
                    }
                )
                yield records
                if len(records) < PAGE_LIMIT:
                    return
                min_id = int(records[-1].platform_id) + 1

        yield from keyset_pages(after, run, since)

    def _order(self, raw: dict[str, Any]) -> OrderRecord:
        what = self._where(f"order {raw.get('id')}")
        try:
            order_id = str(raw["id"])
            updated = parse_rfc2822(raw["date_modified"], what)
            created = parse_rfc2822(raw["date_created"], what)
            total = decimal(raw["total_inc_tax"], f"{what}: total_inc_tax")
            currency = str(raw["currency_code"])
        except KeyError as exc:
            raise PlatformUnavailable(f"{what}: missing {exc.args[0]}") from exc
        customer_id = raw.get("customer_id") or 0
        billing = raw.get("billing_address") or {}
        status = str(raw.get("status") or "") or None
        cancelled = raw.get("status_id") == CANCELLED_STATUS_ID
        return OrderRecord(
            platform_id=order_id,
            created_at=created,
            updated_at=updated,
            currency=currency,
            total=total,
            refunded=decimal(raw.get("refunded_amount") or "0", f"{what}: refunded_amount"),
            customer_platform_id=str(int(customer_id)) if customer_id else None,
            email=billing.get("email") or None,
            number=order_id,
            processed_at=created,
            cancelled_at=updated if cancelled else None,
            financial_status=status.lower() if status else None,
            lines=self._lines(raw, what),
        )

    def _lines(self, raw: dict[str, Any], what: str) -> tuple[OrderLineRecord, ...]:
        consignments = raw.get("consignments")
        embedded: list[dict[str, Any]] = []
        complete = isinstance(consignments, dict)
        if isinstance(consignments, dict):
            for kind in ("shipping", "pickups", "downloads"):
                for consignment in consignments.get(kind) or ():
                    embedded.extend(consignment.get("line_items") or ())
                    complete = complete and "__warning__" not in consignment
            gifts = (consignments.get("email") or {}).get("gift_certificates") or ()
            for consignment in gifts:
                embedded.extend(consignment.get("line_items") or ())
        quantity = sum(int(line.get("quantity") or 0) for line in embedded)
        if not complete or quantity != int(raw.get("items_total") or 0):
            embedded = self._order_products(raw["id"])
        return tuple(_line(line, what) for line in embedded)

    def _order_products(self, order_id: Any) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.http.json(
                "GET", f"v2/orders/{order_id}/products", params={"page": page, "limit": PAGE_LIMIT}
            )
            batch = body if isinstance(body, list) else []
            lines.extend(batch)
            if len(batch) < PAGE_LIMIT:
                return lines
            page += 1

    # -- push --------------------------------------------------------------------------------

    def apply(self, changes: Sequence[TagChange]) -> Iterator[TagResult]:
        """Add/remove managed tags in the `shopcrm_tags` attribute; one result per change.

        Only the tags given are added or removed: other text in the value, other attributes and
        other customers are never written. A customer that cannot be written (deleted, value too
        long, refused) gets a failed result and the others go on.

        Raises:
            AuthError: the access token was refused (nothing can be pushed).
        """
        if not changes:
            return
        attribute_id = self._ensure_attribute()
        failed: dict[str, str] = {}
        numeric = []
        for change in changes:
            if change.customer_platform_id.isdigit():
                numeric.append(int(change.customer_platform_id))
            else:
                failed[change.customer_platform_id] = self._where(
                    f"customer {change.customer_platform_id!r} is not a BigCommerce customer id"
                )
        current = self._read_values(sorted(set(numeric)), attribute_id, failed)
        desired: dict[int, tuple[str, ...]] = {}
        for change in changes:
            if change.customer_platform_id in failed:
                continue
            cid = int(change.customer_platform_id)
            tags = set(desired.get(cid, current.get(cid, (None, ()))[1]))
            desired[cid] = tuple(sorted((tags - change.remove) | change.add))
        puts, deletes = self._plan(desired, current, attribute_id, failed)
        self._send(puts, deletes, failed)
        for change in changes:
            error = failed.get(change.customer_platform_id)
            yield TagResult(change.customer_platform_id, ok=error is None, error=error)

    def _plan(
        self,
        desired: dict[int, tuple[str, ...]],
        current: dict[int, tuple[int, tuple[str, ...]]],
        attribute_id: int,
        failed: dict[str, str],
    ) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
        """The upserts and (customer, value id) deletions that turn `current` into `desired`."""
        puts: list[dict[str, Any]] = []
        deletes: list[tuple[int, int]] = []
        for cid, tags in sorted(desired.items()):
            value_id, now = current.get(cid, (None, ()))
            if tags == now:
                continue
            if not tags:
                if value_id is not None:
                    deletes.append((cid, value_id))
                continue
            if any("," in tag for tag in tags):
                failed[str(cid)] = self._where(f"customer {cid}: a tag contains a comma")
                continue
            value = ",".join(tags)
            if len(value) > ATTRIBUTE_MAX_LENGTH:
                failed[str(cid)] = self._where(
                    f"customer {cid}: managed tags need {len(value)} characters, the "
                    f"{MANAGED_ATTRIBUTE} attribute holds at most {ATTRIBUTE_MAX_LENGTH}"
                )
                continue
            puts.append({"attribute_id": attribute_id, "customer_id": cid, "value": value})
        return puts, deletes

    def _send(
        self,
        puts: list[dict[str, Any]],
        deletes: list[tuple[int, int]],
        failed: dict[str, str],
    ) -> None:
        batches = [puts[i : i + VALUES_PER_PUT] for i in range(0, len(puts), VALUES_PER_PUT)]
        with ThreadPoolExecutor(max_workers=PUT_CONCURRENCY) as pool:
            for outcome in pool.map(self._put_batch, batches):
                failed.update(outcome)
        for i in range(0, len(deletes), IDS_PER_READ):
            chunk = deletes[i : i + IDS_PER_READ]
            ids = ",".join(str(value_id) for _, value_id in chunk)
            try:
                self.http.request("DELETE", "v3/customers/attribute-values", params={"id:in": ids})
            except AuthError:
                raise
            except PlatformError as exc:
                for cid, _ in chunk:
                    failed[str(cid)] = self._where(f"customer {cid}: untag failed: {exc}")

    def _put_batch(self, batch: list[dict[str, Any]]) -> dict[str, str]:
        """Upsert one batch; on a 422 naming items, retry once without them."""
        try:
            self.http.request("PUT", "v3/customers/attribute-values", json=batch)
            return {}
        except AuthError:
            raise
        except PlatformError as exc:
            bad = _rejected_items(exc, len(batch)) if exc.status == 422 else set()
            if not bad or len(bad) == len(batch):
                return {str(item["customer_id"]): self._tag_error(item, exc) for item in batch}
            failures = {str(batch[i]["customer_id"]): self._tag_error(batch[i], exc) for i in bad}
            failures.update(self._put_batch([b for i, b in enumerate(batch) if i not in bad]))
            return failures

    def _tag_error(self, item: dict[str, Any], exc: PlatformError) -> str:
        return self._where(f"customer {item['customer_id']}: tags not saved: {exc}")

    def _read_values(
        self, customer_ids: list[int], attribute_id: int, failed: dict[str, str]
    ) -> dict[int, tuple[int, tuple[str, ...]]]:
        """customer id -> (value id, managed tags) of the customers that have a value."""
        values: dict[int, tuple[int, tuple[str, ...]]] = {}
        for i in range(0, len(customer_ids), IDS_PER_READ):
            chunk = customer_ids[i : i + IDS_PER_READ]
            params = {
                "customer_id:in": ",".join(map(str, chunk)),
                "attribute_id:in": attribute_id,
                "limit": PAGE_LIMIT,
            }
            try:
                body = self.http.json("GET", "v3/customers/attribute-values", params=params)
            except AuthError:
                raise
            except PlatformError as exc:
                for cid in chunk:
                    failed[str(cid)] = self._where(f"customer {cid}: tags not read: {exc}")
                continue
            for item in (body or {}).get("data") or ():
                if item.get("attribute_id") == attribute_id:
                    tags = split_tags(item.get("attribute_value"))
                    values[int(item["customer_id"])] = (int(item["id"]), tags)
        return values

    def _find_attribute(self) -> int | None:
        """The id of the managed attribute, or None when it was never created."""
        if self._attribute_id is None:
            body = self.http.json(
                "GET", "v3/customers/attributes", params={"name": MANAGED_ATTRIBUTE}
            )
            for item in (body or {}).get("data") or ():
                if item.get("name") == MANAGED_ATTRIBUTE:
                    self._attribute_id = int(item["id"])
        return self._attribute_id

    def _ensure_attribute(self) -> int:
        attribute_id = self._find_attribute()
        if attribute_id is not None:
            return attribute_id
        body = self.http.json(
            "POST",
            "v3/customers/attributes",
            json=[{"name": MANAGED_ATTRIBUTE, "type": "string"}],
        )
        try:
            self._attribute_id = int(body["data"][0]["id"])
        except (TypeError, KeyError, IndexError, ValueError) as exc:
            raise PlatformUnavailable(
                self._where(f"creating the {MANAGED_ATTRIBUTE} attribute gave no id")
            ) from exc
        log.info("shop %s: created customer attribute %s", self.shop.name, MANAGED_ATTRIBUTE)
        return self._attribute_id


def _iso_param(moment: datetime) -> str:
    """A filter time both APIs accept: ISO 8601 UTC to the (floored) second."""
    return _whole_second(moment).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _line(raw: dict[str, Any], what: str) -> OrderLineRecord:
    return OrderLineRecord(
        quantity=int(raw.get("quantity") or 0),
        unit_price=decimal(raw.get("price_inc_tax") or "0", f"{what}: line price"),
        platform_id=str(raw["id"]) if raw.get("id") is not None else None,
        sku=raw.get("sku") or None,
        product_id=str(raw["product_id"]) if raw.get("product_id") else None,
        title=raw.get("name") or None,
    )


def _rejected_items(exc: PlatformError, size: int) -> set[int]:
    """Indexes of a batch that a 422 body names (`errors` keys like `"3.customer_id"`).

    The error message carries only the start of the body, so this may name fewer than all;
    the retry without them then names the next ones.
    """
    return {int(i) for i in _ERROR_INDEX.findall(str(exc)) if int(i) < size}


def keyset_pages(
    after: Callable[[datetime | None], list[R]],
    run: Callable[[datetime, set[str]], Iterator[list[R]]],
    since: datetime | None,
) -> Iterator[Page[R]]:
    """Pages of a list sorted by modification time, read by timestamp keyset.

    Args:
        after: page 1 of the records modified at or after a time (all when None), oldest first.
        run: the pages of the records modified exactly at a time, for a run longer than a page.
        since: where to start (None: everything).

    Returns:
        Pages whose `high_water_mark` is the newest timestamp delivered so far: every record
        modified before it has been delivered.
    """
    mark = _whole_second(since) if since is not None else None
    seen: set[str] = set()  # ids already delivered with updated_at == mark
    while True:
        records = after(mark)
        full = len(records) >= PAGE_LIMIT
        if full and records[0].updated_at == records[-1].updated_at:
            at = records[-1].updated_at
            if at != mark:
                seen = set()
            for batch in run(at, seen):
                fresh = [r for r in batch if r.platform_id not in seen]
                seen.update(r.platform_id for r in fresh)
                if fresh:
                    yield Page(fresh, high_water_mark=at, cursor=at.isoformat())
            mark, seen = at + ONE_SECOND, set()
            continue
        fresh = [r for r in records if not (r.updated_at == mark and r.platform_id in seen)]
        if fresh:
            last = fresh[-1].updated_at
            if last != mark:
                mark, seen = last, set()
            seen.update(r.platform_id for r in fresh if r.updated_at == mark)
            yield Page(fresh, high_water_mark=mark, cursor=mark.isoformat())
        if not full or not fresh:
            return
