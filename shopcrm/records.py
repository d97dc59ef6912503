"""The unified records every platform is normalised to: what connectors produce and the store
and `sync/` consume. It imports nothing of shopcrm, so every stage may import it.

Conventions of every record: platform ids are strings (Shopify GIDs kept whole), money is
`Decimal` beside an ISO 4217 currency code, times are aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    platform_id: str
    updated_at: datetime
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    created_at: datetime | None = None
    accepts_marketing: bool | None = None
    tags: tuple[str, ...] = ()
    deleted: bool = False
    redacted: bool = False


@dataclass(frozen=True, slots=True)
class OrderLineRecord:
    quantity: int
    unit_price: Decimal
    platform_id: str | None = None
    sku: str | None = None
    product_id: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order in the shop's currency.

    `total` is what the customer paid at checkout (before refunds); `refunded` is the sum of
    refunds so far (positive). `customer_platform_id` is None for a guest checkout.
    """

    platform_id: str
    created_at: datetime
    updated_at: datetime
    currency: str
    total: Decimal
    refunded: Decimal = Decimal(0)
    customer_platform_id: str | None = None
    email: str | None = None
    number: str | None = None
    processed_at: datetime | None = None
    cancelled_at: datetime | None = None
    financial_status: str | None = None
    lines: tuple[OrderLineRecord, ...] = ()


R = TypeVar("R", CustomerRecord, OrderRecord)


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    """One page of a stream and what is safe to checkpoint after it.

    `high_water_mark`: every record of the stream updated before this instant has been
    delivered in this page or an earlier one of the same pass (None when the page order does
    not allow saying so, e.g. a scan by id, until its last page). `cursor` is the platform's
    opaque resume token after this page, kept for diagnostics and resumable streams.
    """

    records: Sequence[R]
    high_water_mark: datetime | None = None
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class ShopFacts:
    name: str
    currency: str
    timezone: str
    domain: str | None = None
    scopes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TagChange:
    """Managed tags to add to and remove from one customer."""

    customer_platform_id: str
    add: frozenset[str] = field(default_factory=frozenset)
    remove: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class TagResult:
    customer_platform_id: str
    ok: bool
    error: str | None = None
