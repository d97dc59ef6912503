"""Root resolvers of the Shopify sandbox: shop, customers, orders, node lookups, tag mutations.

The schema is the pruned published one (`schema`); resolvers are the callables in the
root dicts `query_root` and `mutation_root` return, so graphql-core's default resolver does the
rest. Scope checks, paging limits and userErrors follow Shopify's documented behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from graphql import GraphQLError

from shopcrm.sandbox.seed import SeedOrder
from shopcrm.sandbox.shopify.index import (
    ORDER_WINDOW,
    CursorError,
    Kind,
    Record,
    Slice,
    decode_cursor,
    encode_cursor,
)
from shopcrm.sandbox.shopify.render import (
    MoneyRenderer,
    Node,
    customer_node,
    gid,
    line_node,
    order_node,
    parse_gid,
)
from shopcrm.sandbox.shopify.search import Search, SearchError, parse_search
from shopcrm.sandbox.shopify.state import (
    MAX_PAGE,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    SCOPE_DESCRIPTIONS,
    ShopState,
    Token,
)


class BulkOperations(Protocol):
    """What the resolvers ask of the bulk runner (`bulk.BulkRunner`)."""

    def run_query(self, call: Call, query: str) -> Node: ...

    def node(self, shop: ShopState, ident: int) -> Node | None: ...

    def current(self, shop: ShopState, kind: str = "QUERY") -> Node | None: ...


LINE_SORT = "POSITION"
SUPPORTED_SORTS = ("UPDATED_AT", "CREATED_AT", "PROCESSED_AT", "ID")


@dataclass
class Call:
    """One GraphQL request: whose shop, which token, and what it did."""

    shop: ShopState
    token: Token
    bulk: BulkOperations
    bulk_mode: bool = False  # running a bulk query: nested connections need no `first`
    wrote: bool = False
    search_warnings: list[dict[str, Any]] = field(default_factory=list)


def _require(call: Call, scope: str, field_name: str) -> None:
    if scope not in call.token.scopes:
        raise GraphQLError(
            f"Access denied for {field_name} field. Required access: `{scope}` access scope.",
            extensions={
                "code": "ACCESS_DENIED",
                "documentation": "https://shopify.dev/api/usage/access-scopes",
                "requiredAccess": f"`{scope}` access scope.",
            },
        )


def _page_size(call: Call, first: int | None) -> int | None:
    if first is None:
        if call.bulk_mode:
            return None
        raise GraphQLError("you must provide one of first or last")
    if first < 0 or first > MAX_PAGE:
        raise GraphQLError(
            f"The value of `first` ({first}) must be between 0 and {MAX_PAGE}.",
            extensions={"code": "BAD_REQUEST"},
        )
    return first


def _connection(page: Slice, sort: str, render: Callable[[Any], Node]) -> Node:
    """A connection's dict; edge cursors are encoded only if the query selects them."""
    nodes = [render(r) for r in page.records]
    keys = page.keys
    return {
        "edges": [
            {"cursor": lambda _info, k=k: encode_cursor(sort, k), "node": n}
            for k, n in zip(keys, nodes, strict=True)
        ],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": page.has_next,
            "hasPreviousPage": page.has_previous,
            "startCursor": encode_cursor(sort, keys[0]) if keys else None,
            "endCursor": encode_cursor(sort, keys[-1]) if keys else None,
        },
    }


class Resolvers:
    """The root fields of one call, bound to its shop."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.shop = call.shop
        self.dataset = call.shop.dataset

    # --- rendering -----------------------------------------------------------------------
    def customer(self, customer_id: int) -> Node | None:
        c = self.dataset.customers.get(customer_id)
        return None if c is None else customer_node(c, self.shop.index, self.dataset.currency)

    def order(self, order: SeedOrder) -> Node:
        return order_node(order, self.customer, self.line_items)

    def line_items(self, order: SeedOrder, bags: MoneyRenderer, args: dict[str, Any]) -> Node:
        first = _page_size(self.call, args.get("first"))
        start = 0
        if args.get("after"):
            try:
                start = decode_cursor(LINE_SORT, args["after"])[0] + 1
            except CursorError as exc:
                raise GraphQLError(str(exc)) from exc
        stop = len(order.lines) if first is None else min(len(order.lines), start + first)
        lines = order.lines[start:stop]
        page = Slice(
            lines,
            [(start + i, line.id) for i, line in enumerate(lines)],
            stop < len(order.lines),
            start > 0,
        )
        return _connection(page, LINE_SORT, lambda line: line_node(line, bags))

    # --- lists -----------------------------------------------------------------------------
    def listing(self, kind: Kind, args: dict[str, Any], *, first: int | None = None) -> Slice:
        """The page a `customers`/`orders` field (or a bulk query) asks for."""
        sort = args.get("sortKey") or "ID"
        if sort not in SUPPORTED_SORTS:
            raise GraphQLError(f"The sandbox does not sort by {sort}; use one of {SUPPORTED_SORTS}")
        try:
            search = parse_search(args.get("query"), self.dataset.timezone)
        except SearchError as exc:
            raise GraphQLError(str(exc), extensions={"code": "BAD_REQUEST"}) from exc
        self._warn(kind, args.get("query"), search)
        accept = None
        if kind == "order" and "read_all_orders" not in self.call.token.scopes:
            accept = _created_since(self.dataset.now - ORDER_WINDOW)
        try:
            with self.dataset.lock:
                return self.shop.index.page(
                    kind,
                    sort=sort,
                    first=first,
                    after=args.get("after"),
                    reverse=bool(args.get("reverse")),
                    search=search,
                    accept=accept,
                )
        except CursorError as exc:
            raise GraphQLError(str(exc), extensions={"code": "BAD_REQUEST"}) from exc

    def _warn(self, kind: Kind, query: str | None, search: Search) -> None:
        if search.warnings:
            self.call.search_warnings.append(
                {
                    "path": [f"{kind}s"],
                    "query": query,
                    "warnings": [
                        {
                            "field": w.split(":", 1)[0],
                            "message": "Invalid search field for this query.",
                        }
                        for w in search.warnings
                    ],
                }
            )

    def _list_field(self, kind: Kind, scope: str) -> Callable[..., Node]:
        def resolve(_info: Any, **args: Any) -> Node:
            call = self.call
            _require(call, scope, f"{kind}s")
            sort = args.get("sortKey") or "ID"
            page = self.listing(kind, args, first=_page_size(call, args.get("first")))
            self.dataset.on_read()
            return _connection(page, sort, self.renderer(kind))

        return resolve

    def renderer(self, kind: Kind) -> Callable[[Any], Node]:
        """Record -> node dict for `kind`."""
        if kind == "order":
            return self.order
        return lambda record: customer_node(record, self.shop.index, self.dataset.currency)

    # --- roots ---------------------------------------------------------------------------
    def by_gid(self, value: str) -> Node | None:
        """The node a GID names, or None (like Shopify) if it names nothing."""
        parsed = parse_gid(value)
        if parsed is None:
            raise GraphQLError(
                f"Invalid global id '{value}'", extensions={"code": "argumentLiteralsIncompatible"}
            )
        kind, ident = parsed
        if kind == "Customer":
            _require(self.call, "read_customers", "customer")
            return self.customer(ident)
        if kind == "Order":
            _require(self.call, "read_orders", "order")
            order = self.dataset.orders.get(ident)
            return None if order is None else self.order(order)
        if kind == "BulkOperation":
            return self.call.bulk.node(self.shop, ident)
        return None

    def shop_node(self, _info: Any) -> Node:
        ds = self.dataset
        return {
            "__typename": "Shop",
            "id": gid("Shop", self.shop.shop_id),
            "name": ds.shop_name,
            "email": f"owner@{self.shop.domain}",
            "contactEmail": f"owner@{self.shop.domain}",
            "myshopifyDomain": self.shop.domain,
            "currencyCode": ds.currency,
            "ianaTimezone": ds.timezone,
            "url": f"https://{self.shop.domain}",
        }

    def app_installation(self, _info: Any) -> Node:
        return {
            "__typename": "AppInstallation",
            "id": gid("AppInstallation", self.shop.shop_id),
            "accessScopes": [
                {"handle": s, "description": SCOPE_DESCRIPTIONS.get(s, s)}
                for s in self.call.token.scopes
            ],
        }

    def query_root(self) -> dict[str, Any]:
        bulk = self.call.bulk
        return {
            "shop": self.shop_node,
            "customers": self._list_field("customer", "read_customers"),
            "orders": self._list_field("order", "read_orders"),
            "customer": lambda _info, id: self._typed(id, "Customer"),
            "order": lambda _info, id: self._typed(id, "Order"),
            "node": lambda _info, id: self.by_gid(id),
            "bulkOperation": lambda _info, id: self._typed(id, "BulkOperation"),
            "currentBulkOperation": lambda _info, type="QUERY": bulk.current(self.shop, type),
            "currentAppInstallation": self.app_installation,
            "customersCount": self._count_field("customer", "read_customers"),
            "ordersCount": self._count_field("order", "read_orders"),
        }

    def _count_field(self, kind: Kind, scope: str) -> Callable[..., Node]:
        """`customersCount`/`ordersCount`: records matching `query`, capped at `limit`."""

        def resolve(_info: Any, limit: int | None = 10_000, query: str | None = None) -> Node:
            _require(self.call, scope, f"{kind}sCount")
            total = len(self.listing(kind, {"query": query}).records)
            if limit is not None and total > limit:
                return {"count": limit, "precision": "AT_LEAST"}
            return {"count": total, "precision": "EXACT"}

        return resolve

    def _typed(self, value: str, kind: str) -> Node | None:
        node = self.by_gid(value)
        return node if node is not None and node["__typename"] == kind else None

    def mutation_root(self) -> dict[str, Any]:
        return {
            "tagsAdd": lambda _info, id, tags: self.change_tags(id, tags, add=True),
            "tagsRemove": lambda _info, id, tags: self.change_tags(id, tags, add=False),
            "bulkOperationRunQuery": lambda _info, query, groupObjects=False: (
                self.call.bulk.run_query(self.call, query)
            ),
        }

    # --- tags ----------------------------------------------------------------------------
    def change_tags(self, target: str, tags: Iterable[str], *, add: bool) -> Node:
        """tagsAdd / tagsRemove on a customer or an order: exactly the given tags, nothing else."""
        parsed = parse_gid(target)
        kind = parsed[0] if parsed else None
        scope = "write_orders" if kind == "Order" else "write_customers"
        _require(self.call, scope, "tagsAdd" if add else "tagsRemove")
        wanted = [t.strip() for raw in tags for t in raw.split(",") if t.strip()]
        with self.dataset.lock:
            record = self._taggable(parsed)
            if record is None:
                return _tags_payload(None, "id", "Resource does not exist")
            node = {"__typename": kind, "id": target}
            too_long = next((t for t in wanted if len(t) > MAX_TAG_LENGTH), None)
            if too_long is not None:
                message = (
                    f"Tag '{too_long[:40]}…' is too long (maximum is {MAX_TAG_LENGTH} characters)"
                )
                return _tags_payload(node, "tags", message)
            current = record.tags if kind == "Customer" else record.extra.setdefault("tags", [])
            changed = _apply_tags(current, wanted, add=add)
            if changed is None:
                return _tags_payload(node, "tags", f"A resource can have at most {MAX_TAGS} tags")
            if changed:
                record.updated_at = max(record.updated_at, self.dataset.now)
                self.dataset.version += 1
                self.call.wrote = True
        return {"node": node, "userErrors": []}

    def _taggable(self, parsed: tuple[str, int] | None) -> Any:
        if parsed is None:
            return None
        kind, ident = parsed
        if kind == "Customer":
            return self.dataset.customers.get(ident)
        if kind == "Order":
            return self.dataset.orders.get(ident)
        return None


def _created_since(oldest: datetime) -> Callable[[Record], bool]:
    """Orders older than this are hidden from tokens without `read_all_orders`."""
    return lambda record: record.created_at >= oldest


def _tags_payload(node: Node | None, field_name: str, message: str) -> Node:
    return {"node": node, "userErrors": [{"field": [field_name], "message": message}]}


def _apply_tags(current: list[str], wanted: list[str], *, add: bool) -> bool | None:
    """Change `current` in place (case-insensitively); True if it changed, None if too many."""
    have = {t.lower() for t in current}
    if add:
        new = list(dict.fromkeys(t for t in wanted if t.lower() not in have))
        fresh = list({t.lower(): t for t in new}.values())
        if len(current) + len(fresh) > MAX_TAGS:
            return None
        current.extend(fresh)
        current.sort(key=str.lower)
        return bool(fresh)
    drop = {t.lower() for t in wanted}
    kept = [t for t in current if t.lower() not in drop]
    changed = len(kept) != len(current)
    current[:] = kept
    return changed
