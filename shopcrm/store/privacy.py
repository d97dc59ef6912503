"""Forgetting a person (right to erasure) and exporting what the store holds of them (access).

What is personal here: the emails, email keys, names, marketing consent and tags of customers,
the emails of orders, the email key of a person, and error texts that may quote an email.
Forgetting empties those and marks the rows `redacted`; everything else stays, anonymised,
so a shop's revenue, order counts and metrics are the same after the next enrichment.
`forget_log` records that it happened (when, which shops, how many rows), never whom.
The re-sync rule (a forgotten customer's personal columns stay empty until they buy again)
is in `store/upsert.py`; docs/privacy.md has the whole picture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, or_, select, update
from sqlmodel import Session

from shopcrm.errors import NoMatch, UsageError
from shopcrm.jsonable import jsonable
from shopcrm.store.emails import normalise_email
from shopcrm.store.models import (
    Customer,
    CustomerMetrics,
    ForgetLog,
    Order,
    OrderLine,
    Person,
    PersonMetrics,
    PushLog,
    SegmentMembership,
    Shop,
    SyncRun,
)

ERASED = "[erased]"


@dataclass(frozen=True, slots=True)
class Selector:
    """Who: a person by email (every shop), or one customer of one shop (`SHOP:ID`)."""

    email: str | None = None
    shop: str | None = None
    platform_id: str | None = None

    @property
    def scope(self) -> str:
        return "person" if self.email is not None else "customer"


def parse_selector(text: str) -> Selector:
    """`EMAIL` or `SHOP:ID` (the shop's name from the config, the customer's platform id).

    Raises:
        UsageError: neither an email nor SHOP:ID.
    """
    value = text.strip()
    if "@" in value:
        if normalise_email(value) is None:
            raise UsageError(f"{text!r} is not an email address")
        return Selector(email=value)
    shop, sep, platform_id = value.partition(":")
    if not sep or not shop or not platform_id:
        raise UsageError(f"{text!r} is neither an email nor SHOP:ID (e.g. shopify-eu:123)")
    return Selector(shop=shop, platform_id=platform_id)


@dataclass(frozen=True, slots=True)
class _Targets:
    customers: list[Customer]
    orders: list[Order]
    person_ids: set[int]
    shops: list[str]


def _targets(session: Session, who: Selector) -> _Targets:
    if who.email is not None:
        key = normalise_email(who.email)
        person = session.execute(
            select(Person.id).where(Person.email_normalised == key)
        ).scalar_one_or_none()
        mine = [Customer.email_normalised == key]
        if person is not None:
            mine.append(Customer.person_id == person)
        customers = list(session.execute(select(Customer).where(or_(*mine))).scalars())
        ids = [c.id for c in customers]
        theirs = [Order.email_normalised == key, Order.customer_id.in_(ids)]
        if person is not None:
            theirs.append(Order.person_id == person)
        orders = list(session.execute(select(Order).where(or_(*theirs))).scalars())
        persons = {person} if person is not None else set()
    else:
        shop_id = session.execute(select(Shop.id).where(Shop.name == who.shop)).scalar_one_or_none()
        customers = list(
            session.execute(
                select(Customer).where(
                    Customer.shop_id == shop_id, Customer.platform_id == who.platform_id
                )
            ).scalars()
        )
        orders = []
        if customers:
            c = customers[0]
            guest = (
                Order.customer_id.is_(None) & (Order.email_normalised == c.email_normalised)
                if c.email_normalised
                else Order.id.is_(None)
            )
            orders = list(
                session.execute(
                    select(Order).where(
                        Order.shop_id == shop_id, or_(Order.customer_id == c.id, guest)
                    )
                ).scalars()
            )
        persons = set()
    persons |= {r.person_id for r in (*customers, *orders) if r.person_id is not None}
    shop_ids = {r.shop_id for r in (*customers, *orders)}
    shops = sorted(session.execute(select(Shop.name).where(Shop.id.in_(shop_ids))).scalars().all())
    return _Targets(customers, orders, persons, shops)


def _found(session: Session, who: Selector) -> _Targets:
    targets = _targets(session, who)
    if not targets.customers and not targets.orders:
        what = (
            "that email"
            if who.email is not None
            else f"customer {who.platform_id} of shop {who.shop}"
        )
        raise NoMatch(f"nobody in the store matches {what}; nothing was changed")
    return targets


@dataclass(frozen=True, slots=True)
class ForgetReport:
    scope: str
    shops: list[str]
    customers: int
    orders: int
    persons: int
    memberships: int
    dry_run: bool = False
    texts_scrubbed: int = 0


def forget(
    session: Session, who: Selector, now: datetime, *, dry_run: bool = False
) -> ForgetReport:
    """Erase the personal data of `who` in the session's transaction (nothing when `dry_run`).

    A person (by email) is forgotten in every shop: each customer account and guest order that
    carries the email or belongs to the person. `SHOP:ID` forgets that one customer: its
    account and its orders in that shop, and the shop's guest orders with its email.

    Raises:
        NoMatch: nobody matches; nothing was changed.
    """
    t = _found(session, who)
    customer_ids = [c.id for c in t.customers]
    order_ids = [o.id for o in t.orders]
    memberships = len(
        session.execute(
            select(SegmentMembership.customer_id).where(
                SegmentMembership.customer_id.in_(customer_ids)
            )
        ).all()
    )
    report = ForgetReport(
        who.scope,
        t.shops,
        len(customer_ids),
        len(order_ids),
        len(t.person_ids),
        memberships,
        dry_run,
    )
    if dry_run:
        return report
    emails = {e for r in (*t.customers, *t.orders) for e in (r.email, r.email_normalised) if e}
    if who.email:
        emails.add(who.email.strip())
    session.execute(
        update(Customer)
        .where(Customer.id.in_(customer_ids))
        .values(
            email=None,
            email_normalised=None,
            first_name=None,
            last_name=None,
            accepts_marketing=None,
            tags=[],
            redacted=True,
            redacted_at=now,
        )
    )
    session.execute(
        update(Order)
        .where(Order.id.in_(order_ids))
        .values(email=None, email_normalised=None, redacted=True)
    )
    _anonymise_persons(session, t, customer_ids, order_ids)
    session.execute(
        delete(SegmentMembership).where(SegmentMembership.customer_id.in_(customer_ids))
    )
    session.execute(
        update(PushLog)
        .where(PushLog.customer_id.in_(customer_ids), PushLog.error.is_not(None))
        .values(error=ERASED)
    )
    scrubbed = _scrub_run_errors(session, emails)
    session.add(
        ForgetLog(
            at=now,
            scope=who.scope,
            shops=t.shops,
            customers=report.customers,
            orders=report.orders,
            persons=report.persons,
        )
    )
    session.flush()
    return replace(report, texts_scrubbed=scrubbed)


def _anonymise_persons(
    session: Session, t: _Targets, customer_ids: list[int | None], order_ids: list[int | None]
) -> None:
    """A person only forgotten rows point to loses its email key and keeps its links, so its
    history stays one anonymous person; one that others still share is left to them, and the
    forgotten rows leave it (the next enrichment gives them persons of their own)."""
    for person_id in sorted(t.person_ids):
        shared = session.execute(
            select(
                exists().where(Customer.person_id == person_id, Customer.redacted.is_(False))
                | exists().where(Order.person_id == person_id, Order.redacted.is_(False))
            )
        ).scalar_one()
        if not shared:
            session.execute(
                update(Person).where(Person.id == person_id).values(email_normalised=None)
            )
            continue
        session.execute(
            update(Customer)
            .where(Customer.id.in_(customer_ids), Customer.person_id == person_id)
            .values(person_id=None)
        )
        session.execute(
            update(Order)
            .where(Order.id.in_(order_ids), Order.person_id == person_id)
            .values(person_id=None)
        )


def _scrub_run_errors(session: Session, emails: set[str]) -> int:
    """Replace the forgotten emails quoted in sync_run errors; returns how many runs changed."""
    if not emails:
        return 0
    pattern = re.compile(
        "|".join(re.escape(e) for e in sorted(emails, key=len, reverse=True)), re.I
    )
    changed = 0
    for run in session.execute(select(SyncRun).where(SyncRun.error.is_not(None))).scalars():
        assert run.error is not None
        scrubbed = pattern.sub(ERASED, run.error)
        if scrubbed != run.error:
            run.error = scrubbed
            changed += 1
    return changed


def _row(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        name: jsonable(getattr(obj, name))
        for name in obj.__class__.model_fields
        if name not in skip
    }


def export_person(session: Session, who: Selector) -> dict[str, Any]:
    """Everything the store holds about `who`: identities per shop with their metrics,
    segments (with since dates) and push log, orders with lines, and person metrics.

    Raises:
        NoMatch: nobody matches.
    """
    t = _found(session, who)
    shops = {s.id: s.name for s in session.execute(select(Shop)).scalars()}
    identities = []
    for c in sorted(t.customers, key=lambda c: (shops[c.shop_id], c.platform_id)):
        metrics = session.get(CustomerMetrics, c.id)
        segments = session.execute(
            select(SegmentMembership).where(SegmentMembership.customer_id == c.id)
        ).scalars()
        pushes = session.execute(
            select(PushLog).where(PushLog.customer_id == c.id).order_by(PushLog.id)
        ).scalars()
        identities.append(
            {
                "shop": shops[c.shop_id],
                **_row(c, ("id", "shop_id", "person_id")),
                "metrics": None
                if metrics is None
                else _row(
                    metrics, ("customer_id", "shop_id", "fingerprint", "history_fingerprint")
                ),
                "segments": [{"segment": m.segment, "since": jsonable(m.since)} for m in segments],
                "push_log": [_row(p, ("id", "shop_id", "customer_id")) for p in pushes],
            }
        )
    orders = []
    for o in sorted(t.orders, key=lambda o: (shops[o.shop_id], o.created_at, o.platform_id)):
        lines = session.execute(
            select(OrderLine).where(OrderLine.order_id == o.id).order_by(OrderLine.position)
        ).scalars()
        orders.append(
            {
                "shop": shops[o.shop_id],
                **_row(o, ("id", "shop_id", "customer_id", "person_id")),
                "lines": [_row(line, ("id", "order_id")) for line in lines],
            }
        )
    person_metrics = [
        _row(m, ("person_id", "fingerprint", "history_fingerprint"))
        for m in session.execute(
            select(PersonMetrics)
            .where(PersonMetrics.person_id.in_(sorted(t.person_ids)))
            .order_by(PersonMetrics.person_id, PersonMetrics.currency)
        ).scalars()
    ]
    return {
        "selector": {"email": who.email, "shop": who.shop, "platform_id": who.platform_id},
        "shops": t.shops,
        "identities": identities,
        "orders": orders,
        "person_metrics": person_metrics,
    }
