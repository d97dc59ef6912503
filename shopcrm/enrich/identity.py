"""One person across shops and guest checkouts, keyed by normalised email.

Rules (docs/enrichment.md "Identity"):
- Every email is stored with its identity key (`shopcrm.store.emails.normalise_email`,
  written by the upserts), so linking never re-reads or rewrites emails.
- One `person` per normalised email, across every shop, customer account and guest checkout.
- A customer without an email is its own person (a person row with no email).
- A customer links to its person; its orders belong to that person through it, whatever email
  they carry, and keep no link of their own. An order whose customer is not in the store (a
  guest checkout) links to the person of its email; one without an email belongs to nobody.
- Re-running changes nothing; a customer whose email changes moves to the person of the new
  email, and persons no customer or order points to any more are deleted.

Linking happens in two steps around the order snapshot: customers first (`link_customers`), so
the snapshot reads each order's person through its customer, then the guest orders the snapshot
found unlinked or wrongly linked (`link_guest_orders`). Only what is wrong is written, so a
rerun over unchanged data only reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, text

from shopcrm.enrich.dbio import dialect_of, fetch, fetch_columns, few

Ints = NDArray[np.int64]

# A guest order (its customer is not in the store) and the person its email points to.
GUEST_PERSON = "(SELECT p.id FROM person AS p WHERE p.email_normalised = o.email_normalised)"


@dataclass(frozen=True, slots=True)
class IdentityReport:
    links_changed: int
    persons_created: int
    persons_deleted: int
    persons: int


def _count(conn: Connection, sql: str) -> int:
    return int(conn.execute(text(sql)).scalar_one())


def _insert_persons(
    conn: Connection, emails_sql: str, now: datetime, params: Sequence[Any] = ()
) -> None:
    """Create a person for every email `emails_sql` selects (as `e`, binding `params`) that
    has none yet."""
    d = dialect_of(conn)
    conn.exec_driver_sql(
        "INSERT INTO person (email_normalised, created_at) "  # noqa: S608 - fixed fragments
        f"SELECT DISTINCT e, {d.param()} FROM ({emails_sql}) AS emails "
        "WHERE e IS NOT NULL ON CONFLICT (email_normalised) DO NOTHING",
        (d.time(now), *params),
    )


def link_customers(conn: Connection, now: datetime) -> int:
    """Point every customer at the person of its email (or a person of its own); returns how
    many customers were relinked.

    Person keys are unique, so a customer whose person carries its key is linked right: after
    the first run only new customers and changed emails are wrong. When they are few
    (`dbio.few`), the statements visit only them, through one bound array of their ids; else
    (a first run) they are set-wide joins, cheaper for most of the table.
    """
    d = dialect_of(conn)
    wrong_links = (
        "customer AS c LEFT JOIN person AS p ON p.id = c.person_id "
        f"WHERE (p.id IS NULL OR {d.distinct('p.email_normalised', 'c.email_normalised')})"
    )
    wrong = f"FROM {wrong_links}"
    (ids,) = fetch_columns(conn, [("c.id", "int")], wrong_links)
    if not len(ids):
        return 0
    chosen, only, given = wrong, "", ()
    if few(len(ids), _count(conn, "SELECT COUNT(*) FROM customer")):
        given = (d.array(ids.tolist()),)  # one bound array, expanded by the database
        chosen = f"FROM {d.each_int()} CROSS JOIN customer AS c WHERE c.id = value"
        only = f"AND customer.id IN (SELECT value FROM {d.each_int()})"  # noqa: S608
    _insert_persons(conn, f"SELECT c.email_normalised AS e {chosen}", now, given)
    changed = conn.exec_driver_sql(
        "UPDATE customer SET person_id = p.id FROM person AS p "  # noqa: S608
        "WHERE p.email_normalised = customer.email_normalised "
        f"AND {d.distinct('customer.person_id', 'p.id')} {only}",
        given,
    ).rowcount
    # A customer without an email gets a person of its own, created under a provisional key
    # that cannot be an email (no '@'), linked by it, then cleared: three statements.
    provisional = d.concat("'#'", "CAST(c.id AS VARCHAR(20))")
    lonely = conn.exec_driver_sql(
        f"INSERT INTO person (email_normalised, created_at) SELECT {provisional}, {d.param()} "
        f"{chosen} AND c.email_normalised IS NULL",
        (d.time(now), *given),
    ).rowcount
    if lonely:
        conn.exec_driver_sql(
            "UPDATE customer SET person_id = p.id FROM person AS p "  # noqa: S608
            "WHERE customer.email_normalised IS NULL "
            f"AND p.email_normalised = {provisional.replace('c.id', 'customer.id')} {only}",
            given,
        )
        conn.exec_driver_sql(
            "UPDATE person SET email_normalised = NULL "  # noqa: S608
            f"WHERE NOT {d.contains('email_normalised', '@')}"
        )
    return changed + lonely


def link_guest_orders(conn: Connection, order_ids: Ints, now: datetime) -> dict[int, int]:
    """Relink these orders: a guest order to the person of its email (created if missing), an
    order with a customer to nobody (it belongs to the customer's person).

    Returns:
        Guest order id -> its person id now (-1 for none), for the guest orders given.
    """
    if len(order_ids) == 0:
        return {}
    d = dialect_of(conn)
    given = (d.array(order_ids.tolist()),)  # one bound array, expanded by the database
    # CROSS JOIN makes SQLite walk the given ids and look orders up, not the other way
    chosen = f"FROM {d.each_int()} CROSS JOIN orders AS o WHERE o.id = value"
    has_customer = "o.customer_id IS NOT NULL"
    _insert_persons(
        conn, f"SELECT o.email_normalised AS e {chosen} AND NOT {has_customer}", now, given
    )
    conn.exec_driver_sql(
        f"UPDATE orders AS o SET person_id = CASE WHEN {has_customer} THEN NULL "  # noqa: S608
        f"ELSE {GUEST_PERSON} END WHERE o.id IN (SELECT value FROM {d.each_int()})",
        given,
    )
    rows = fetch(
        conn, f"SELECT o.id, COALESCE(o.person_id, -1) {chosen} AND NOT {has_customer}", given
    )
    return dict(rows)


def delete_orphans(conn: Connection) -> int:
    """Delete persons no customer or order points to; returns how many."""
    return conn.exec_driver_sql(
        "DELETE FROM person WHERE "
        "NOT EXISTS (SELECT 1 FROM customer AS c WHERE c.person_id = person.id) "
        "AND NOT EXISTS (SELECT 1 FROM orders AS o WHERE o.person_id = person.id)"
    ).rowcount


def count_persons(conn: Connection) -> int:
    return _count(conn, "SELECT COUNT(*) FROM person")
