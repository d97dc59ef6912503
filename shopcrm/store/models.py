"""The unified store: SQLModel tables (DESIGN.md "Unified store").

Platform ids are strings, money is `Money` (exact Decimal) beside an ISO currency code, and
times are `UTCDateTime` (aware UTC). Every platform record is unique by (shop, platform id).
The schema is created and changed only by the Alembic migrations in `store/migrations`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from shopcrm.store.types import Money, UTCDateTime


def _utc(nullable: bool = True, **kw: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, **kw)


def _money(nullable: bool = False) -> Any:
    return Field(default=None, sa_type=Money, nullable=nullable)


class Shop(SQLModel, table=True):
    """A shop from the config; its name is the stable key, facts come from `check()`."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    platform: str = Field(max_length=20)
    domain: str | None = Field(default=None, max_length=255)
    currency: str | None = Field(default=None, max_length=3)
    timezone: str | None = Field(default=None, max_length=64)
    created_at: datetime | None = _utc()


class Person(SQLModel, table=True):
    """One human across shops and guest checkouts, keyed by normalised email."""

    id: int | None = Field(default=None, primary_key=True)
    email_normalised: str | None = Field(default=None, unique=True, max_length=320)
    created_at: datetime | None = _utc()


class Customer(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("shop_id", "platform_id"),)

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    platform_id: str = Field(max_length=64)
    email: str | None = Field(default=None, max_length=320)
    email_normalised: str | None = Field(default=None, max_length=320, index=True)
    first_name: str | None = Field(default=None, max_length=255)
    last_name: str | None = Field(default=None, max_length=255)
    created_at: datetime | None = _utc()
    updated_at: datetime = _utc(nullable=False)
    accepts_marketing: bool | None = None
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    deleted: bool = False
    # Set by `shopcrm forget` (store/privacy.py): the personal columns stay empty on re-sync
    # until the customer places an order created after `redacted_at` (store/upsert.py).
    redacted: bool = False
    redacted_at: datetime | None = _utc()
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    synced_at: datetime | None = _utc()


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "platform_id"),
        Index("ix_orders_shop_customer", "shop_id", "customer_platform_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    platform_id: str = Field(max_length=64)
    customer_platform_id: str | None = Field(default=None, max_length=64)
    # The stored customer of that platform id, kept by the upserts (store/upsert.py): None for a
    # guest checkout or while the customer is not stored yet.
    customer_id: int | None = Field(
        default=None, foreign_key="customer.id", index=True, ondelete="SET NULL"
    )
    email: str | None = Field(default=None, max_length=320)
    email_normalised: str | None = Field(default=None, max_length=320, index=True)
    number: str | None = Field(default=None, max_length=64)
    created_at: datetime = _utc(nullable=False)
    processed_at: datetime | None = _utc()
    updated_at: datetime = _utc(nullable=False)
    cancelled_at: datetime | None = _utc()
    currency: str = Field(max_length=3)
    total: Decimal = _money()
    refunded: Decimal = _money()
    financial_status: str | None = Field(default=None, max_length=40)
    deleted: bool = False
    redacted: bool = False  # forgotten: its email stays empty on re-sync (store/privacy.py)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    synced_at: datetime | None = _utc()


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_line"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True, ondelete="CASCADE")
    position: int
    platform_id: str | None = Field(default=None, max_length=64)
    sku: str | None = Field(default=None, max_length=255)
    product_id: str | None = Field(default=None, max_length=64)
    title: str | None = Field(default=None, max_length=500)
    quantity: int
    unit_price: Decimal = _money()


class CustomerMetrics(SQLModel, table=True):
    """Recomputed per customer by `enrich`; money in the shop's currency."""

    __tablename__ = "customer_metrics"

    customer_id: int = Field(foreign_key="customer.id", primary_key=True, ondelete="CASCADE")
    shop_id: int = Field(foreign_key="shop.id", index=True)
    currency: str | None = Field(default=None, max_length=3)
    orders_count: int = 0
    first_order_at: datetime | None = _utc()
    last_order_at: datetime | None = _utc()
    total_spent: Decimal = _money()
    average_order_value: Decimal | None = _money(nullable=True)
    mean_days_between_orders: float | None = None
    days_since_last_order: int | None = None
    recency_score: int | None = None
    frequency_score: int | None = None
    monetary_score: int | None = None
    rfm_segment: str | None = Field(default=None, max_length=40)
    p_alive: float | None = None
    expected_purchases: float | None = None
    expected_order_value: Decimal | None = _money(nullable=True)
    predicted_clv: Decimal | None = _money(nullable=True)
    top_products: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    computed_at: datetime = _utc(nullable=False)
    # A digest of the row's values: a rerun that computes the same values leaves the row alone.
    fingerprint: int | None = Field(default=None, sa_type=BigInteger)
    # A digest of the purchase history alone: when only the daily values moved, only they are
    # rewritten.
    history_fingerprint: int | None = Field(default=None, sa_type=BigInteger)
    # The RFM group the customer last left, and when it entered its current one (`segment_change`).
    previous_rfm_segment: str | None = Field(default=None, max_length=40)
    rfm_segment_since: datetime | None = _utc()


class PersonMetrics(SQLModel, table=True):
    """Purchase history of one person in one currency, over all shops and guest checkouts."""

    __tablename__ = "person_metrics"

    person_id: int = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    currency: str = Field(primary_key=True, max_length=3)
    orders_count: int = 0
    first_order_at: datetime | None = _utc()
    last_order_at: datetime | None = _utc()
    total_spent: Decimal = _money()
    average_order_value: Decimal | None = _money(nullable=True)
    mean_days_between_orders: float | None = None
    days_since_last_order: int | None = None
    top_products: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    computed_at: datetime = _utc(nullable=False)
    # A digest of the row's values: a rerun that computes the same values leaves the row alone.
    fingerprint: int | None = Field(default=None, sa_type=BigInteger)
    # A digest of the purchase history alone: when only the daily values moved, only they are
    # rewritten.
    history_fingerprint: int | None = Field(default=None, sa_type=BigInteger)


class SegmentMembership(SQLModel, table=True):
    """A customer in a segment since a date. Keyed by (customer, segment) and, on SQLite,
    stored in that key's B-tree (no rowid): one tree to write per membership instead of three."""

    __tablename__ = "segment_membership"
    __table_args__ = {"sqlite_with_rowid": False}

    customer_id: int = Field(foreign_key="customer.id", primary_key=True, ondelete="CASCADE")
    segment: str = Field(primary_key=True, max_length=100)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    since: date


class SegmentChange(SQLModel, table=True):
    """A customer entering or leaving a segment (`rfm-*` ones included), at the time of the
    enrichment that saw it: the history `segment_membership` keeps only the present of."""

    __tablename__ = "segment_change"
    __table_args__ = (
        Index("ix_segment_change_customer_at", "customer_id", "at"),
        Index("ix_segment_change_shop_at", "shop_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id")
    customer_id: int = Field(foreign_key="customer.id", ondelete="CASCADE")
    segment: str = Field(max_length=100)
    entered: bool
    at: datetime = _utc(nullable=False)


class MetricSnapshot(SQLModel, table=True):
    """A shop's CRM measures in one currency over one period (a calendar month or day in the
    shop's timezone, ending on `period_end`), as of `as_of` (docs/enrichment.md "Trends")."""

    __tablename__ = "metric_snapshot"

    shop_id: int = Field(foreign_key="shop.id", primary_key=True)
    currency: str = Field(primary_key=True, max_length=3)
    period: str = Field(primary_key=True, max_length=10)
    period_end: date = Field(primary_key=True)
    as_of: date
    customers: int
    new_customers: int
    returning_customers: int
    orders: int
    net_revenue: Decimal = _money()
    average_order_value: Decimal | None = _money(nullable=True)
    purchase_frequency: float | None = None
    customers_to_date: int
    repeat_customers_to_date: int
    repeat_purchase_rate: float | None = None
    segments: dict[str, int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    rfm_groups: dict[str, int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    computed_at: datetime = _utc(nullable=False)


class CohortRetention(SQLModel, table=True):
    """Of the buyers whose first order in a shop fell in `cohort_month`, how many bought again
    `months_since` months later (rewritten by each enrichment from the orders)."""

    __tablename__ = "cohort_retention"

    shop_id: int = Field(foreign_key="shop.id", primary_key=True)
    cohort_month: date = Field(primary_key=True)
    months_since: int = Field(primary_key=True)
    customers: int
    active: int


class SyncState(SQLModel, table=True):
    """The checkpoint of one stream: every record updated before `high_water_mark` is stored."""

    __tablename__ = "sync_state"

    shop_id: int = Field(foreign_key="shop.id", primary_key=True)
    stream: str = Field(primary_key=True, max_length=40)
    cursor: str | None = Field(default=None, max_length=2000)
    high_water_mark: datetime | None = _utc()
    last_success_at: datetime | None = _utc()
    updated_at: datetime | None = _utc()


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int | None = Field(default=None, foreign_key="shop.id", index=True)
    kind: str = Field(max_length=20)
    started_at: datetime = _utc(nullable=False)
    finished_at: datetime | None = _utc()
    duration_s: float | None = None
    outcome: str = Field(default="running", max_length=20)
    customers: int = 0
    orders: int = 0
    requests: int = 0
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str | None = None


class PushLog(SQLModel, table=True):
    __tablename__ = "push_log"

    id: int | None = Field(default=None, primary_key=True)
    shop_id: int = Field(foreign_key="shop.id", index=True)
    run_id: int | None = Field(default=None, foreign_key="sync_run.id")
    customer_id: int | None = Field(default=None, foreign_key="customer.id")
    customer_platform_id: str = Field(max_length=64)
    added: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    removed: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    at: datetime = _utc(nullable=False)
    outcome: str = Field(max_length=20)
    error: str | None = None


class ForgetLog(SQLModel, table=True):
    """That a forget happened: when, in which shops, how many rows; never whom."""

    __tablename__ = "forget_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc(nullable=False)
    scope: str = Field(max_length=20)  # "person" or "customer"
    shops: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    customers: int = 0
    orders: int = 0
    persons: int = 0
