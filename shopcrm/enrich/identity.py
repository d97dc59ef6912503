"""One person across shops and guest checkouts, keyed by normalised email.

Rules (docs/enrichment.md "Identity"):
- An email is normalised by trimming surrounding whitespace and lower-casing it (Unicode
  `str.lower`). A value that is empty or has no `@` is not an email (placeholders such as
  "none" or "-" would otherwise merge strangers). Nothing else is rewritten: `+tags` and dots
  can be distinct mailboxes on many providers, so `a+x@` and `a@` stay two people.
- One `person` per normalised email, across every shop, customer account and guest checkout.
- A customer without an email is its own person (a person row with no email).
- An order belongs to its customer's person when its customer is in the store, whatever email
  the order carries; otherwise (guest checkout) to the person of its email; a guest order
  without an email belongs to nobody.
- Re-running changes nothing; a customer whose email changes moves to the person of the new
  email, and persons no customer or order points to any more are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, text

from shopcrm.enrich.dbio import Dialect, dialect_of, execute_many, fetch
from shopcrm.store.models import Person
from shopcrm.store.types import UTCDateTime


def normalise_email(email: str | None) -> str | None:
    """The identity key of an email address, or None when it is not one."""
    if email is None:
        return None
    value = email.strip().lower()
    if not value or "@" not in value:
        return None
    return value


@dataclass(frozen=True, slots=True)
class IdentityReport:
    emails_updated: int
    persons_created: int
    persons_deleted: int
    persons: int


def _normalise_column(conn: Connection, d: Dialect, table: str) -> int:
    """Bring `email_normalised` of every row of `table` in line with `normalise_email`.

    For emails of printable ASCII only, SQL's trim (spaces) and A-Z lower-casing are exactly
    Python's strip and lower, so SQL does those in place; the rest (other characters, which
    Python trims and folds differently) goes through `normalise_email`.
    """
    key = d.ascii_lower("trim(email)")
    has_at = d.contains("email", "@")  # trimming and lower-casing never add or remove an '@'
    changed = conn.exec_driver_sql(
        f"UPDATE {table} SET email_normalised = CASE WHEN {has_at} THEN {key} END, "  # noqa: S608
        "person_id = NULL "
        f"WHERE email IS NOT NULL AND ({d.distinct('email_normalised', key)} AND {has_at} "
        f"OR email_normalised IS NOT NULL AND NOT {has_at}) AND NOT {d.non_ascii('email')}"
    ).rowcount
    changed += conn.exec_driver_sql(
        f"UPDATE {table} SET email_normalised = NULL, person_id = NULL "  # noqa: S608
        "WHERE email IS NULL AND email_normalised IS NOT NULL"
    ).rowcount
    rows = fetch(
        conn,
        f"SELECT id, email, email_normalised FROM {table} "  # noqa: S608 - fixed names only
        f"WHERE email IS NOT NULL AND {d.non_ascii('email')}",
    )
    updates = [
        (new, row_id) for row_id, email, stored in rows if (new := normalise_email(email)) != stored
    ]
    execute_many(
        conn,
        f"UPDATE {table} SET email_normalised = {d.param()}, person_id = NULL "  # noqa: S608
        f"WHERE id = {d.param()}",
        updates,
    )
    return changed + len(updates)


def _count(conn: Connection, sql: str) -> int:
    return int(conn.execute(text(sql)).scalar_one())


def assign_persons(conn: Connection, now: datetime) -> IdentityReport:
    """Normalise emails and link every customer and order to its person, in `conn`'s transaction.

    Work is limited to what is unlinked: a row whose email changes loses its link when it is
    normalised, new rows arrive without one, and the orders of a customer that was (re)linked
    follow it. A rerun over unchanged data therefore only scans.

    Args:
        conn: a connection inside the transaction to write in.
        now: creation time of new persons.

    Returns:
        What changed, and how many persons exist afterwards.
    """
    d = dialect_of(conn)
    updated = _normalise_column(conn, d, "customer") + _normalise_column(conn, d, "orders")
    before = _count(conn, "SELECT COUNT(*) FROM person")
    relinked = fetch(
        conn, "SELECT id, shop_id, platform_id FROM customer WHERE person_id IS NULL ORDER BY id"
    )
    conn.execute(
        text(
            "INSERT INTO person (email_normalised, created_at) "
            "SELECT e, :now FROM ("
            " SELECT email_normalised AS e FROM customer"
            " WHERE person_id IS NULL AND email_normalised IS NOT NULL"
            " UNION SELECT email_normalised FROM orders"
            " WHERE person_id IS NULL AND email_normalised IS NOT NULL"
            ") AS emails WHERE true ON CONFLICT (email_normalised) DO NOTHING"
        ).bindparams(bindparam("now", type_=UTCDateTime)),
        {"now": now},
    )
    conn.execute(
        text(
            "UPDATE customer SET person_id = p.id FROM person AS p "
            "WHERE customer.person_id IS NULL AND p.email_normalised = customer.email_normalised"
        )
    )
    lonely = [
        row[0]
        for row in fetch(
            conn,
            "SELECT id FROM customer WHERE person_id IS NULL AND email_normalised IS NULL "
            "ORDER BY id",
        )
    ]
    if lonely:
        ids = (
            conn.execute(
                insert(Person).returning(Person.id, sort_by_parameter_order=True),  # type: ignore[arg-type]
                [{"email_normalised": None, "created_at": now} for _ in lonely],
            )
            .scalars()
            .all()
        )
        execute_many(
            conn,
            f"UPDATE customer SET person_id = {d.param()} WHERE id = {d.param()}",  # noqa: S608
            list(zip(ids, lonely, strict=True)),
        )
    execute_many(
        conn,
        f"UPDATE orders SET person_id = (SELECT person_id FROM customer WHERE id = {d.param()}) "  # noqa: S608
        f"WHERE shop_id = {d.param()} AND customer_platform_id = {d.param()}",
        relinked,
    )
    conn.execute(
        text(
            "UPDATE orders SET person_id = c.person_id FROM customer AS c "
            "WHERE orders.person_id IS NULL "
            "AND c.shop_id = orders.shop_id AND c.platform_id = orders.customer_platform_id"
        )
    )
    conn.execute(
        text(
            "UPDATE orders SET person_id = p.id FROM person AS p "
            "WHERE orders.person_id IS NULL AND p.email_normalised = orders.email_normalised "
            "AND NOT EXISTS (SELECT 1 FROM customer AS c "
            "WHERE c.shop_id = orders.shop_id AND c.platform_id = orders.customer_platform_id)"
        )
    )
    deleted = conn.execute(
        text(
            "DELETE FROM person WHERE "
            "NOT EXISTS (SELECT 1 FROM customer AS c WHERE c.person_id = person.id) "
            "AND NOT EXISTS (SELECT 1 FROM orders AS o WHERE o.person_id = person.id)"
        )
    ).rowcount
    after = _count(conn, "SELECT COUNT(*) FROM person")
    return IdentityReport(updated, after - before + deleted, deleted, after)
