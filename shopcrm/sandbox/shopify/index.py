"""Sorted views of a Dataset and cursor paging over them, shared by GraphQL, REST and bulk.

Records are kept in lists sorted by (sort value, id) and paged with bisect, so a page costs
the same at 100 or 100,000 customers. The lists are rebuilt only when `Dataset.version` moved
(a mutation), never per request. A cursor holds the (sort value, id) of the last record served,
so it stays valid while records change, as Shopify's do.
"""

from __future__ import annotations

import base64
import json
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shopcrm.sandbox.seed import Dataset, SeedCustomer, SeedOrder
from shopcrm.sandbox.shopify.search import Search

Kind = Literal["customer", "order"]
Record = SeedCustomer | SeedOrder
SortKey = tuple[Any, int]

# sortKey -> the record attribute it orders by (ties broken by id)
SORT_ATTRIBUTES = {
    "UPDATED_AT": "updated_at",
    "CREATED_AT": "created_at",
    "PROCESSED_AT": "created_at",  # orders' default sort
    "ID": None,
}
PROCESSED_AT = "processed_at"  # Shopify's processed_at is our created_at
ORDER_WINDOW = timedelta(days=60)  # readable without read_all_orders


class CursorError(ValueError):
    """A cursor the sandbox did not issue for this sort."""


def encode_cursor(sort: str, key: SortKey) -> str:
    value = key[0].isoformat() if isinstance(key[0], datetime) else key[0]
    raw = json.dumps({"s": sort, "v": value, "id": key[1]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str) -> SortKey:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if raw["s"] != sort:
            raise CursorError(f"cursor was issued for sortKey {raw['s']}, not {sort}")
        value = datetime.fromisoformat(raw["v"]) if isinstance(raw["v"], str) else raw["v"]
        return value, int(raw["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CursorError(f"Invalid cursor for current pagination sort: {cursor!r}") from exc


def sort_key(record: Record, sort: str) -> SortKey:
    attribute = SORT_ATTRIBUTES[sort]
    return (record.id if attribute is None else getattr(record, attribute)), record.id


@dataclass
class Slice:
    """One page: the records, their keys, and whether more exist on either side."""

    records: list[Any]  # customers, orders, or an order's lines
    keys: list[SortKey]
    has_next: bool
    has_previous: bool


class ShopIndex:
    """Sorted keys of one Dataset's customers and orders, rebuilt after mutations."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._version: int | None = None
        self._keys: dict[tuple[Kind, str], list[SortKey]] = {}
        self._orders_of: dict[int, list[SeedOrder]] = {}

    def _fresh(self) -> None:
        if self._version == self.dataset.version:
            return
        self._keys.clear()
        orders_of: dict[int, list[SeedOrder]] = defaultdict(list)
        for order in self.dataset.orders.values():
            if order.customer_id is not None:
                orders_of[order.customer_id].append(order)
        self._orders_of = dict(orders_of)
        self._version = self.dataset.version

    def keys(self, kind: Kind, sort: str) -> list[SortKey]:
        """The (sort value, id) of every record of `kind`, ascending."""
        self._fresh()
        found = self._keys.get((kind, sort))
        if found is None:
            found = sorted(sort_key(r, sort) for r in self.records(kind).values())
            self._keys[kind, sort] = found
        return found

    def records(self, kind: Kind) -> dict[int, Any]:
        return self.dataset.customers if kind == "customer" else self.dataset.orders

    def orders_of(self, customer_id: int) -> list[SeedOrder]:
        with self.dataset.lock:  # renderers call this outside the page's lock
            self._fresh()
        return self._orders_of.get(customer_id, [])

    def page(
        self,
        kind: Kind,
        *,
        sort: str,
        first: int | None,
        after: str | None = None,
        reverse: bool = False,
        search: Search | None = None,
        accept: Callable[[Record], bool] | None = None,
    ) -> Slice:
        """Up to `first` records (None: all) after the cursor that match the search.

        Raises:
            CursorError: `after` is not a cursor of this sort.
        """
        keys = self.keys(kind, sort)
        lo, hi = 0, len(keys)
        attribute = SORT_ATTRIBUTES[sort]
        filters = list(search.filters) if search else []
        for f in [f for f in filters if f.field == attribute]:
            edge = (f.at, -1) if f.op in (">=", "<") else (f.at, 1 << 62)
            if f.op == ">=":
                lo = max(lo, bisect_left(keys, edge))
            else:
                hi = min(hi, bisect_left(keys, edge))
            filters.remove(f)
        start, stop = lo, hi
        if after is not None:
            position = decode_cursor(sort, after)
            if reverse:
                stop = min(hi, bisect_left(keys, position))
            else:
                start = max(lo, bisect_right(keys, position))
        positions: Sequence[int] = range(stop - 1, start - 1, -1) if reverse else range(start, stop)
        table = self.records(kind)
        out: list[Record] = []
        out_keys: list[SortKey] = []
        has_next = False
        for i in positions:
            record = table[keys[i][1]]
            if filters and not all(f.accepts(_value(record, f.field)) for f in filters):
                continue
            if accept is not None and not accept(record):
                continue
            if first is not None and len(out) == first:
                has_next = True
                break
            out.append(record)
            out_keys.append(keys[i])
        has_previous = after is not None and (stop < hi if reverse else start > lo)
        return Slice(out, out_keys, has_next, has_previous)


def _value(record: Record, field: str) -> datetime:
    return record.created_at if field == PROCESSED_AT else getattr(record, field)
