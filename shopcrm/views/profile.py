"""One person as the store knows them, across every shop and platform (`shopcrm customer`).

A person is found by email (its normalised form, `store.emails`) or as `SHOP:ID`, the shop's
name and the customer's platform id (a Shopify GID or only its number). An email that is no
customer's exactly is looked up as a part of one; several people matching is an answer too, a
list to choose from. The profile holds the person's identities (one customer per shop), every
order with that email or of those customers (guest checkouts included), their metrics per
currency and per shop, segments with the date each was entered, and the tags last pushed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from shopcrm.jsonable import jsonable
from shopcrm.store.db import Store
from shopcrm.store.emails import normalise_email
from shopcrm.store.models import (
    Customer,
    CustomerMetrics,
    Order,
    Person,
    PersonMetrics,
    PushLog,
    SegmentMembership,
    Shop,
)

MAX_CANDIDATES = 20
PUSHES_SHOWN = 10  # push_log rows per identity, newest first


@dataclass
class Identity:
    customer_id: int
    shop: str
    platform: str
    platform_id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    created_at: datetime | None
    deleted: bool
    metrics: dict[str, Any] | None = None
    segments: dict[str, date] = field(default_factory=dict)
    pushes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class OrderLine:
    at: datetime
    shop: str
    number: str | None
    platform_id: str
    currency: str
    total: Decimal
    refunded: Decimal
    status: str


@dataclass
class Profile:
    email: str | None
    identities: list[Identity]
    orders: list[OrderLine]
    person_metrics: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass
class Candidate:
    email: str | None
    shop: str
    platform_id: str
    name: str


def find(store: Store, query: str, shops: list[str]) -> Profile | list[Candidate]:
    """The profile `query` names, or the customers it could mean (empty: nobody; more than
    MAX_CANDIDATES: the first MAX_CANDIDATES + 1, so a caller can say there are more)."""
    with store.session() as session:
        customers = _match(session, query, shops)
        people = {(c.person_id or -c.id) for c in customers}
        if len(people) != 1:
            names = dict(session.execute(select(Shop.id, Shop.name)).all())
            return [
                Candidate(c.email, names[c.shop_id], c.platform_id, _name(c)) for c in customers
            ]
        return _profile(session, customers)


def _name(customer: Customer) -> str:
    return " ".join(p for p in (customer.first_name, customer.last_name) if p) or "-"


def _match(session: Session, query: str, shops: list[str]) -> list[Customer]:
    shop_name, sep, platform_id = query.partition(":")
    if sep and shop_name in shops:
        shop_id = session.execute(select(Shop.id).where(Shop.name == shop_name)).scalar()
        ids = (platform_id, f"%/{platform_id}") if platform_id.isdigit() else (platform_id,)
        found = list(
            session.execute(
                select(Customer).where(
                    Customer.shop_id == shop_id,
                    or_(Customer.platform_id == ids[0], Customer.platform_id.like(ids[-1])),
                )
            ).scalars()
        )
        return _with_person(session, found)
    key = normalise_email(query)
    if key is not None:
        exact = list(
            session.execute(
                select(Customer).where(Customer.email_normalised == key).order_by(Customer.id)
            ).scalars()
        )
        if exact:
            return exact
    needle = query.strip().lower()
    if not needle:
        return []
    return list(
        session.execute(
            select(Customer)
            .where(Customer.email_normalised.contains(needle, autoescape=True))
            .order_by(Customer.email_normalised, Customer.id)
            .limit(MAX_CANDIDATES + 1)
        ).scalars()
    )


def _with_person(session: Session, found: list[Customer]) -> list[Customer]:
    """The customer named by SHOP:ID and every other identity of the same person."""
    if len(found) != 1 or found[0].person_id is None:
        return found
    return list(
        session.execute(
            select(Customer).where(Customer.person_id == found[0].person_id).order_by(Customer.id)
        ).scalars()
    )


def _profile(session: Session, customers: list[Customer]) -> Profile:
    shops = {s.id: s for s in session.execute(select(Shop)).scalars()}
    ids = [c.id for c in customers if c.id is not None]
    person_id = customers[0].person_id
    metrics = {
        m.customer_id: m
        for m in session.execute(
            select(CustomerMetrics).where(CustomerMetrics.customer_id.in_(ids))
        ).scalars()
    }
    identities = []
    for c in customers:
        assert c.id is not None
        shop = shops[c.shop_id]
        identity = Identity(
            c.id,
            shop.name,
            shop.platform,
            c.platform_id,
            c.email,
            c.first_name,
            c.last_name,
            c.created_at,
            c.deleted,
        )
        if c.id in metrics:
            identity.metrics = _metrics(metrics[c.id])
        identities.append(identity)
    by_id = {i.customer_id: i for i in identities}
    for m in session.execute(
        select(SegmentMembership)
        .where(SegmentMembership.customer_id.in_(ids))
        .order_by(SegmentMembership.segment)
    ).scalars():
        by_id[m.customer_id].segments[m.segment] = m.since
    for row in session.execute(
        select(PushLog).where(PushLog.customer_id.in_(ids)).order_by(PushLog.at.desc())
    ).scalars():
        pushes = by_id[row.customer_id].pushes
        if len(pushes) < PUSHES_SHOWN:
            pushes.append(
                {
                    "at": row.at,
                    "added": row.added,
                    "removed": row.removed,
                    "outcome": row.outcome,
                    "error": row.error,
                }
            )
    owners = [Order.customer_id.in_(ids)]
    if person_id is not None:
        owners.append(Order.person_id == person_id)
    orders = [
        OrderLine(
            o.created_at,
            shops[o.shop_id].name,
            o.number,
            o.platform_id,
            o.currency,
            o.total,
            o.refunded,
            _order_status(o),
        )
        for o in session.execute(
            select(Order).where(or_(*owners)).order_by(Order.created_at, Order.id)
        ).scalars()
    ]
    person_metrics = (
        [
            _metrics(m)
            for m in session.execute(
                select(PersonMetrics)
                .where(PersonMetrics.person_id == person_id)
                .order_by(PersonMetrics.currency)
            ).scalars()
        ]
        if person_id is not None
        else []
    )
    email = session.get(Person, person_id).email_normalised if person_id else customers[0].email
    return Profile(email, identities, orders, person_metrics)


def _order_status(order: Order) -> str:
    if order.deleted:
        return "deleted upstream"
    if order.cancelled_at is not None:
        return "cancelled"
    if order.refunded and order.refunded >= order.total:
        return "refunded"
    if order.refunded:
        return "partly refunded"
    return order.financial_status or "-"


def _metrics(row: CustomerMetrics | PersonMetrics) -> dict[str, Any]:
    skip = {"customer_id", "person_id", "shop_id", "fingerprint", "history_fingerprint"}
    return {k: v for k, v in row.model_dump().items() if k not in skip}
