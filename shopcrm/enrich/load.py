"""Bulk reads of shops, customers, orders and order lines into numpy arrays (raw SQL)."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine

from shopcrm.enrich.codes import find
from shopcrm.enrich.dbio import (
    ColumnQuery,
    Dialect,
    dialect_of,
    fetch,
    fetch_columns,
    fetch_columns_split,
    few,
)
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
    version_us: Ints  # when the order and its lines were last written (lines change only then)
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


def metrics_stored(conn: Connection) -> bool:
    """Whether any enrichment has written metrics yet (else every order's lines are needed)."""
    return bool(fetch(conn, "SELECT EXISTS (SELECT 1 FROM person_metrics)")[0][0])


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
            ("COALESCE(o.synced_at, o.updated_at)", "time"),
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
        ("CASE WHEN deleted THEN 1 ELSE 0 END + CASE WHEN redacted THEN 2 ELSE 0 END", "int"),
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
    redacted: NDArray[np.bool_]  # forgotten (store/privacy.py): in no segment

    def of_shop(self, shop_id: int) -> Ints:
        """A shop's customer ids, ascending."""
        return np.sort(self.customer_id[self.shop_id == shop_id])

    def redacted_of_shop(self, shop_id: int) -> NDArray[np.bool_]:
        """Which of `of_shop(shop_id)` are forgotten, in the same order."""
        mine = self.shop_id == shop_id
        return self.redacted[mine][np.argsort(self.customer_id[mine])]


@dataclass(frozen=True, slots=True)
class LineColumns:
    """Order lines as read: the order id, the quantity and a product code."""

    order_id: Ints
    quantity: Ints
    product: Ints
    labels: list[str]  # product code -> product name


def load_store(
    engine: Engine, parts: int = 4, *, every_line: bool = False
) -> tuple[Customers, Orders, LineColumns | None]:
    """All customers and orders not deleted, read in `parts` id ranges on parallel connections
    (`fetch_columns_split`), and every order line when asked (a first run needs them all, and
    they are read beside the orders); else `load_lines` reads the lines of the orders that
    need them.

    An order's customer is the one the upserts linked it to (`orders.customer_id`); an order
    of a customer deleted upstream is no customer's purchase any more, but still its person's.
    """
    queries = [_orders_query(Dialect(engine.dialect.name)), _CUSTOMERS_QUERY]
    lines = None
    with closing(
        fetch_columns_split(engine, [_LINES_QUERY, *queries] if every_line else queries, parts)
    ) as results:
        if every_line:
            lines = _line_columns(*next(results))  # coded while the orders are read
        order_columns = next(results)
        people = _People(*next(results))
    orders = _orders(people, *order_columns)
    kept = ~people.deleted
    customers = Customers(people.customer_id[kept], people.shop_id[kept], people.redacted[kept])
    return customers, orders, lines


def load_lines(
    engine: Engine,
    orders: Orders,
    wanted: NDArray[np.bool_],
    read: LineColumns | None = None,
    parts: int = 4,
) -> Lines:
    """The lines of the `wanted` orders, from those `read` already, else read now: every line
    in id ranges on parallel connections when most orders are wanted, else only theirs."""
    if read is None:
        read = _read_lines(engine, orders.order_id[wanted], len(orders), parts)
    return _lines(orders, wanted, read)


def _read_lines(engine: Engine, ids: Ints, orders: int, parts: int) -> LineColumns:
    if len(ids) == 0:
        return _line_columns(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), [])
    if not few(len(ids), orders):
        with closing(fetch_columns_split(engine, [_LINES_QUERY], parts)) as results:
            return _line_columns(*next(results))
    with engine.connect() as conn:
        d = dialect_of(conn)
        return _line_columns(
            *fetch_columns(
                conn,
                _LINES_QUERY.exprs,
                f"order_line WHERE order_id IN (SELECT value FROM {d.each_int()})",  # noqa: S608
                (d.array(ids.tolist()),),
            )
        )


def _line_columns(order_id: Ints, quantity: Ints, names: list[str]) -> LineColumns:
    product, labels = _codes(names)
    return LineColumns(order_id, quantity, product, labels)


@dataclass(frozen=True, slots=True)
class _People:
    """Every stored customer, deleted upstream or not, with its person (-1: none)."""

    customer_id: Ints
    shop_id: Ints
    person_id: Ints
    flags: Ints

    @property
    def deleted(self) -> NDArray[np.bool_]:
        return (self.flags & 1) > 0

    @property
    def redacted(self) -> NDArray[np.bool_]:
        return (self.flags & 2) > 0


def _orders(
    people: _People,
    order_id: Ints,
    shop_id: Ints,
    stored_customer: Ints,
    own_person: Ints,
    created: Ints,
    version: Ints,
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
        version_us=version,
        cancelled=(flag & CANCELLED) > 0,
        void_status=(flag & VOID) > 0,
        currency=codes,
        currencies=currencies,
        net_micros=net,
    )


def _lines(orders: Orders, wanted: NDArray[np.bool_], read: LineColumns) -> Lines:
    """Lines of the wanted orders; a product is known by its title, else SKU, else product id.

    Titles are what people recognise in "products bought most"; variants sharing a title are
    one product there.
    """
    index, known = find(orders.order_id, read.order_id)
    product, quantity, labels = read.product, read.quantity, read.labels
    unnamed = labels.index("") if "" in labels else -1
    known &= product != unnamed
    known[known] = wanted[index[known]]
    return Lines(index[known], product[known], quantity[known], labels)
