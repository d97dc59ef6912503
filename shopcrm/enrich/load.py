"""Bulk reads of shops, customers, orders and order lines into numpy arrays (raw SQL)."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine

from shopcrm.enrich.codes import find
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
        " + CASE WHEN (CASE WHEN o.customer_id IS NULL AND o.email_normalised IS NOT NULL"
        f" THEN {d.distinct('o.person_id', f'COALESCE({GUEST_PERSON}, 0)')}"
        f" ELSE o.person_id IS NOT NULL END) THEN {RELINK} ELSE 0 END)"
    )
    return ColumnQuery(
        [
            ("o.id", "int"),
            ("o.shop_id", "int"),
            ("COALESCE(o.customer_id, -1)", "int"),
            ("COALESCE(o.person_id, -1)", "int"),
            ("o.created_at", "time"),
            (flags, "int"),
            (f"{d.micros('o.total')} - {d.micros('o.refunded')}", "int"),
            ("o.currency", "text"),
        ],
        "orders AS o WHERE NOT o.deleted",
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
    [
        ("id", "int"),
        ("shop_id", "int"),
        ("COALESCE(person_id, -1)", "int"),
        ("CASE WHEN deleted THEN 1 ELSE 0 END", "int"),
    ],
    "customer WHERE true",
    table="customer",
    key="id",
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
    # Lines first, so their titles are coded while the orders are read (SQLite reads them
    # without the GIL; the small customer read comes last, not starved by the coding).
    queries = [_LINES_QUERY, _orders_query(Dialect(engine.dialect.name)), _CUSTOMERS_QUERY]
    with closing(fetch_columns_split(engine, queries, parts)) as results:
        line_order, quantity, names = next(results)
        product, labels = _codes(names)
        order_columns = next(results)
        people = _People(*next(results))
    orders = _orders(people, *order_columns)
    customers = Customers(people.customer_id[~people.deleted], people.shop_id[~people.deleted])
    return customers, orders, _lines(orders, line_order, quantity, product, labels)


@dataclass(frozen=True, slots=True)
class _People:
    """Every stored customer, deleted upstream or not, with its person (-1: none)."""

    customer_id: Ints
    shop_id: Ints
    person_id: Ints
    deleted_flag: Ints

    @property
    def deleted(self) -> NDArray[np.bool_]:
        return self.deleted_flag > 0


def _orders(
    people: _People,
    order_id: Ints,
    shop_id: Ints,
    stored_customer: Ints,
    own_person: Ints,
    created: Ints,
    flag: Ints,
    net: Ints,
    currency: list[str],
) -> Orders:
    """Orders with their customer (-1 for a guest checkout or a customer deleted upstream) and
    person (the customer's, else the order's own link)."""
    codes, currencies = _codes(currency)
    customer_id, person_id = np.full(len(order_id), -1, dtype=np.int64), own_person
    at, known = find(people.customer_id, stored_customer)
    if known.any():
        customer_id = np.where(known & ~people.deleted[at], stored_customer, -1)
        person_id = np.where(known, people.person_id[at], own_person)
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
    index, known = find(orders.order_id, order_ids)
    unnamed = labels.index("") if "" in labels else -1
    known &= product != unnamed
    return Lines(index[known], product[known], quantity[known], labels)
