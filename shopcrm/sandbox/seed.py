"""Deterministic shop data shared by every platform sandbox.

The same (seed, size, anchor) always gives the same shop. Customers buy the way the BG/NBD
model describes real shoppers (each has a purchase rate and, after every purchase, a chance of
never coming back), so predicted lifetime value has signal. The data holds guests (some of
them customers' emails in another case), refunds, cancellations, multi-line orders, customers
without email and tags set by the merchant, including ones that look like shopcrm's without
its prefix. Each sandbox renders these neutral records in its platform's shapes.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

CENT = Decimal("0.01")
MERCHANT_TAGS = ("wholesale", "newsletter", "vip", "at-risk", "staff", "imported", "crm-friend")
FIRST = (
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Eva",
    "Felix",
    "Greta",
    "Hugo",
    "Ida",
    "Jonas",
    "Kira",
    "Leon",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
)
LAST = (
    "Müller",
    "Schmidt",
    "Novak",
    "Rossi",
    "García",
    "Smith",
    "Dubois",
    "Jensen",
    "Kowalski",
    "O'Brien",
    "Nguyen",
    "Silva",
    "Yilmaz",
    "Berg",
    "Costa",
    "Fischer",
    "Lee",
    "Martin",
)


@dataclass
class SeedProduct:
    id: int
    sku: str
    title: str
    price: Decimal


@dataclass
class SeedLine:
    id: int
    product_id: int
    sku: str
    title: str
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass
class SeedRefund:
    id: int
    created_at: datetime
    amount: Decimal
    reason: str = ""


@dataclass
class SeedCustomer:
    id: int
    email: str | None
    first_name: str
    last_name: str
    created_at: datetime
    updated_at: datetime
    tags: list[str] = field(default_factory=list)
    accepts_marketing: bool = False
    phone: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # platform-specific state


@dataclass
class SeedOrder:
    id: int
    number: int
    customer_id: int | None  # None: guest checkout
    email: str | None
    first_name: str
    last_name: str
    created_at: datetime
    updated_at: datetime
    currency: str
    lines: list[SeedLine]
    shipping: Decimal
    refunds: list[SeedRefund] = field(default_factory=list)
    cancelled_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.shipping

    @property
    def refunded(self) -> Decimal:
        return sum((r.amount for r in self.refunds), Decimal(0))

    @property
    def financial_status(self) -> str:
        """Shopify-style: paid, partially_refunded, refunded or voided (cancelled unpaid)."""
        if self.cancelled_at is not None and not self.refunds:
            return "voided"
        if self.refunds and self.refunded >= self.total:
            return "refunded"
        if self.refunds:
            return "partially_refunded"
        return "paid"


@dataclass(frozen=True)
class SeedSpec:
    customers: int = 1000
    seed: int = 42
    anchor: date | None = None  # data ends the day before; default: today (UTC)
    currency: str = "USD"
    timezone: str = "America/New_York"
    shop_name: str = "Sandbox Shop"
    years: float = 3.0
    guest_share: float = 0.12  # share of orders placed as guests
    tagged_share: float = 0.2  # customers with merchant tags
    no_email_share: float = 0.02
    # BG/NBD population: purchase rate ~ Gamma(r, alpha days), dropout ~ Beta(a, b)
    r: float = 0.9
    alpha: float = 110.0
    a: float = 0.7
    b: float = 2.8


class Dataset:
    """A shop's records, thread-safe for the sandbox servers that serve and change them."""

    def __init__(self, spec: SeedSpec) -> None:
        self.spec = spec
        self.currency = spec.currency
        self.timezone = spec.timezone
        self.shop_name = spec.shop_name
        self.customers: dict[int, SeedCustomer] = {}
        self.orders: dict[int, SeedOrder] = {}
        self.products: list[SeedProduct] = []
        self.lock = threading.RLock()
        self.rng = random.Random(spec.seed * 7919 + 1)
        self._next_id: dict[str, int] = {}
        # records updated while a sync pages through them: after this many list reads,
        # `mutate_count` records are changed (None: off)
        self.mutate_after_reads: int | None = None
        self.mutate_count: int = 0
        self.reads = 0
        self.mutated_during_sync: list[tuple[str, int]] = []
        # bumped whenever records change, so sandboxes can re-index lazily instead of per request
        self.version = 0

    def next_id(self, kind: str, start: int = 1000) -> int:
        with self.lock:
            value = self._next_id.get(kind, start)
            self._next_id[kind] = value + 1
            return value

    @property
    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    def on_read(self) -> None:
        """Called by sandboxes on each list page they serve: drives the mid-sync change knob."""
        with self.lock:
            self.reads += 1
            if self.mutate_after_reads is not None and self.reads == self.mutate_after_reads:
                changed = self.mutate(self.mutate_count, at=self.now)
                self.mutated_during_sync.extend(changed)

    def mutate(self, count: int, *, at: datetime | None = None) -> list[tuple[str, int]]:
        """Change `count` records (about half customers, half orders); returns (kind, id)."""
        at = at or self.now
        changed: list[tuple[str, int]] = []
        with self.lock:
            customer_ids = sorted(self.customers)
            order_ids = sorted(self.orders)
            for i in range(count):
                if i % 2 == 0 and customer_ids:
                    c = self.customers[self.rng.choice(customer_ids)]
                    c.last_name = self.rng.choice(LAST)
                    c.accepts_marketing = not c.accepts_marketing
                    c.updated_at = max(at, c.updated_at)
                    changed.append(("customer", c.id))
                elif order_ids:
                    o = self.orders[self.rng.choice(order_ids)]
                    if o.cancelled_at is None and o.refunded < o.total:
                        remaining = o.total - o.refunded
                        amount = min(remaining, (o.lines[0].unit_price).quantize(CENT))
                        o.refunds.append(
                            SeedRefund(self.next_id("refund", 900_000_000), at, amount, "changed")
                        )
                    o.updated_at = max(at, o.updated_at)
                    changed.append(("order", o.id))
            self.version += 1
        return changed

    def touch_customers(self, ids: list[int], at: datetime) -> None:
        """Give customers one shared updated_at (a merchant's bulk import)."""
        with self.lock:
            for cid in ids:
                c = self.customers[cid]
                c.first_name = c.first_name.upper() if c.first_name.islower() else c.first_name
                c.updated_at = at
            self.version += 1


def _when(start: datetime, days: float) -> datetime:
    return (start + timedelta(days=days)).replace(microsecond=0)


def generate(spec: SeedSpec | None = None, **overrides: Any) -> Dataset:
    """Build a deterministic shop from `spec` (fields may also be given as keywords)."""
    spec = spec or SeedSpec(**overrides)
    rng = random.Random(spec.seed)
    ds = Dataset(spec)
    anchor = spec.anchor or datetime.now(UTC).date()
    end = datetime.combine(anchor, time(0), UTC) - timedelta(hours=1)
    start = end - timedelta(days=365 * spec.years)
    span_days = (end - start).total_seconds() / 86400

    ds.products = [
        SeedProduct(
            id=8_000_000 + i,
            sku=f"SKU-{i:04d}",
            title=f"Product {i}",
            price=(Decimal(rng.randint(300, 15_000)) / 100).quantize(CENT),
        )
        for i in range(1, 201)
    ]
    cum_weights = list(accumulate(1 / (i + 5) for i in range(len(ds.products))))  # long tail

    line_id = 5_000_000
    order_no = 1001
    orders: list[SeedOrder] = []

    def new_lines(taste: float, basket: float = 1.0) -> list[SeedLine]:
        """Lines of one order: `taste` sets how many products, `basket` how many of each."""
        nonlocal line_id
        count = 1 + min(4, int(rng.expovariate(1 / taste)))
        picked = rng.choices(ds.products, cum_weights=cum_weights, k=count)
        lines = []
        for product in {p.id: p for p in picked}.values():
            line_id += 1
            lines.append(
                SeedLine(
                    line_id,
                    product.id,
                    product.sku,
                    product.title,
                    max(1, round(basket * (1 + rng.expovariate(1.5)))),
                    product.price,
                )
            )
        return lines

    for cid in range(1, spec.customers + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        created = _when(start, rng.uniform(0, span_days - 1))
        email: str | None = f"{first}.{last}{cid}@example.test".lower().replace("'", "")
        if rng.random() < spec.no_email_share:
            email = None
        elif rng.random() < 0.05:
            email = f" {first}.{last}{cid}@Example.TEST".replace("'", "")  # messy, same person
        customer = SeedCustomer(
            id=cid,
            email=email,
            first_name=first,
            last_name=last,
            created_at=created,
            updated_at=created,
            accepts_marketing=rng.random() < 0.4,
            phone=f"+4915{cid:08d}" if email is None or rng.random() < 0.3 else None,
        )
        if rng.random() < spec.tagged_share:
            customer.tags = sorted(set(rng.sample(MERCHANT_TAGS, rng.randint(1, 2))))
        ds.customers[cid] = customer

        if rng.random() < 0.1:  # registered, never bought
            continue
        rate = rng.gammavariate(spec.r, 1 / spec.alpha)  # purchases per day
        dropout = rng.betavariate(spec.a, spec.b)
        taste = rng.uniform(0.3, 1.5)
        # customers differ in how much they spend per order (Gamma-Gamma's heterogeneity)
        basket = rng.gammavariate(2.0, 0.75)
        when = created + timedelta(minutes=rng.randint(1, 600))
        while when < end:
            order_no += 1
            orders.append(
                SeedOrder(
                    id=0,
                    number=order_no,
                    customer_id=cid,
                    email=email,
                    first_name=first,
                    last_name=last,
                    created_at=when.replace(microsecond=0),
                    updated_at=when.replace(microsecond=0),
                    currency=spec.currency,
                    lines=new_lines(taste, basket),
                    shipping=Decimal("4.90") if rng.random() < 0.6 else Decimal("0.00"),
                )
            )
            if rng.random() < dropout or rate <= 0:
                break
            when = when + timedelta(days=min(rng.expovariate(rate), 5000.0))

    customer_ids = sorted(ds.customers)
    guests = int(len(orders) * spec.guest_share / max(1e-9, 1 - spec.guest_share))
    for _ in range(guests):
        when = _when(start, rng.uniform(0, span_days))
        order_no += 1
        if rng.random() < 0.3:  # a customer checking out as a guest
            c = ds.customers[rng.choice(customer_ids)]
            email, first, last = c.email, c.first_name, c.last_name
            if email and rng.random() < 0.5:
                email = email.strip().upper()
        else:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"guest.{order_no}@example.test"
        orders.append(
            SeedOrder(
                id=0,
                number=order_no,
                customer_id=None,
                email=email,
                first_name=first,
                last_name=last,
                created_at=when,
                updated_at=when,
                currency=spec.currency,
                lines=new_lines(0.6),
                shipping=Decimal("4.90"),
            )
        )

    orders.sort(key=lambda o: (o.created_at, o.number))
    refund_id = 700_000_000
    for i, order in enumerate(orders):
        order.id = 4_000_000 + i
        roll = rng.random()
        later = min(end, order.created_at + timedelta(days=rng.uniform(1, 20))).replace(
            microsecond=0
        )
        if roll < 0.02:
            order.cancelled_at = min(end, order.created_at + timedelta(hours=2))
            order.updated_at = order.cancelled_at
        elif roll < 0.05:
            refund_id += 1
            order.refunds.append(SeedRefund(refund_id, later, order.total, "customer"))
            order.updated_at = later
        elif roll < 0.12:
            refund_id += 1
            line = order.lines[0]
            order.refunds.append(SeedRefund(refund_id, later, line.unit_price, "damaged"))
            order.updated_at = later
        ds.orders[order.id] = order
        if order.customer_id is not None:
            c = ds.customers[order.customer_id]
            c.updated_at = max(c.updated_at, order.created_at)
    ds._next_id = {
        "order": 4_000_000 + len(orders),
        "line": line_id + 1,
        "refund": refund_id + 1,
        "customer": spec.customers + 1,
        "number": order_no + 1,
    }
    return ds
