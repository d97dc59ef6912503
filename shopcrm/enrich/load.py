"""Bulk reads of shops, customers, orders and order lines into numpy arrays (raw SQL)."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine

from shopcrm.enrich.dbio import ColumnQuery, Dialect, fetch, fetch_columns_split
from shopcrm.enrich.identity import GUEST_PERSON
from shopcrm.enrich.purchases import VOID_STATUSES

Ints = NDArray[np.int64]
CANCELLED = 1
VOID = 2
RELINK = 4


@dataclass(frozen=True, slots=True)
class ShopInfo:
    id: int
    name: str
    currency: str | None
    timezone: str | None


@dataclass(frozen=True, slots=True)
class Orders:
    """Every order not deleted upstream, one entry per order. Missing ids are -1."""

    order_id: Ints
    shop_id: Ints
    customer_id: Ints  # the stored customer it belongs to; -1 for a guest checkout
    person_id: Ints  # through its customer, else its own link (guest checkout)
    relink: NDArray[np.bool_]  # its own person link is missing or wrong (identity.py rules)
    created_us: Ints
    cancelled: NDArray[np.bool_]
    void_status: NDArray[np.bool_]
    currency: Ints  # index into `currencies`
    currencies: list[str]
    net_micros: Ints

    def __len__(self) -> int:
        return len(self.order_id)


@dataclass(frozen=True, slots=True)
class Lines:
    """Order lines: the order's position in `Orders`, a product code and the quantity."""

    order_index: Ints
    product: Ints
    quantity: Ints
    labels: list[str]  # product code -> product name


def load_shops(conn: Connection) -> list[ShopInfo]:
    rows = fetch(conn, "SELECT id, name, currency, timezone FROM shop ORDER BY id")
    return [ShopInfo(*row) for row in rows]


def _codes(values: list[str]) -> tuple[Ints, list[str]]:
    """Small integer codes of strings in sorted order (so ties break alphabetically), and the
    strings by code."""
    table = {value: i for i, value in enumerate(sorted(set(values)))}
    codes = np.fromiter(map(table.__getitem__, values), dtype=np.int64, count=len(values))
    return codes, list(table)


def _orders_query(d: Dialect) -> ColumnQuery:
    void = ", ".join(f"'{s}'" for s in VOID_STATUSES)
    flags = (
        f"(CASE WHEN o.cancelled_at IS NULL THEN 0 ELSE {CANCELLED} END"
        f" + CASE WHEN {d.caseless('o.financial_status')} IN ({void}) THEN {VOID} ELSE 0 END"
        " + CASE WHEN (CASE WHEN c.id IS NULL AND o.email_normalised IS NOT NULL"
        f" THEN {d.distinct('o.person_id', f'COALESCE({GUEST_PERSON}, 0)')}"
        f" ELSE o.person_id IS NOT NULL END) THEN {RELINK} ELSE 0 END)"
    )
    return ColumnQuery(
        [
            ("o.id", "int"),
            ("o.shop_id", "int"),
            ("CASE WHEN c.deleted THEN -1 ELSE COALESCE(c.id, -1) END", "int"),
            ("COALESCE(CASE WHEN c.id IS NULL THEN o.person_id ELSE c.person_id END, -1)", "int"),
            ("o.created_at", "time"),
            (flags, "int"),
            (f"{d.micros('o.total')} - {d.micros('o.refunded')}", "int"),
            ("o.currency", "text"),
        ],
        "orders AS o LEFT JOIN customer AS c ON c.id = o.customer_id WHERE NOT o.deleted",
        table="orders",
        key="o.id",
    )


_LINES_QUERY = ColumnQuery(
    [
        ("order_id", "int"),
        ("quantity", "int"),
        ("COALESCE(title, sku, product_id, '')", "text"),
    ],
    "order_line WHERE true",
    table="order_line",
    key="id",
)


_CUSTOMERS_QUERY = ColumnQuery(
    [("id", "int"), ("shop_id", "int")], "customer WHERE NOT deleted", table="customer", key="id"
)


@dataclass(frozen=True, slots=True)
class Customers:
    """Every customer not deleted upstream."""

    customer_id: Ints
    shop_id: Ints

    def of_shop(self, shop_id: int) -> Ints:
        """A shop's customer ids, ascending."""
        return np.sort(self.customer_id[self.shop_id == shop_id])


def load_store(engine: Engine, parts: int = 4) -> tuple[Customers, Orders, Lines]:
    """All customers and orders not deleted, and the orders' lines, read in `parts` id ranges
    on parallel connections (`fetch_columns_split`).

    An order's customer is the one the upserts linked it to (`orders.customer_id`); an order
    of a customer deleted upstream is no customer's purchase any more, but still its person's.
    """
    queries = [_LINES_QUERY, _CUSTOMERS_QUERY, _orders_query(Dialect(engine.dialect.name))]
    with closing(fetch_columns_split(engine, queries, parts)) as results:
        line_order, quantity, names = next(results)
        product, labels = _codes(names)  # while the orders are still being read
        customers = Customers(*next(results))
        orders = _orders(*next(results))
    return customers, orders, _lines(orders, line_order, quantity, product, labels)


def _orders(
    order_id: Ints,
    shop_id: Ints,
    customer_id: Ints,
    person_id: Ints,
    created: Ints,
    flag: Ints,
    net: Ints,
    currency: list[str],
) -> Orders:
    codes, currencies = _codes(currency)
    return Orders(
        order_id=order_id,
        shop_id=shop_id,
        customer_id=customer_id,
        person_id=person_id,
        relink=(flag & RELINK) > 0,
        created_us=created,
        cancelled=(flag & CANCELLED) > 0,
        void_status=(flag & VOID) > 0,
        currency=codes,
        currencies=currencies,
        net_micros=net,
    )


def _lines(
    orders: Orders, order_ids: Ints, quantity: Ints, product: Ints, labels: list[str]
) -> Lines:
    """Lines of the loaded orders; a product is known by its title, else SKU, else product id.

    Titles are what people recognise in "products bought most"; variants sharing a title are
    one product there.
    """
    sorter = np.argsort(orders.order_id, kind="stable")
    if len(sorter) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Lines(empty, empty, empty, [])
    pos = np.minimum(np.searchsorted(orders.order_id, order_ids, sorter=sorter), len(sorter) - 1)
    index = sorter[pos]
    unnamed = labels.index("") if "" in labels else -1
    known = (orders.order_id[index] == order_ids) & (product != unnamed)
    return Lines(index[known], product[known], quantity[known], labels)
