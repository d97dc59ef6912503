"""Column types that keep money exact and times aware on every database.

SQLite has no decimal type: SQLAlchemy's Numeric goes through float there and can lose cents.
`Money` therefore stores whole micro-units (amount x 10^6) in a 64-bit integer on SQLite, which
sums exactly in SQL too, and NUMERIC(20, 6) on PostgreSQL. Both read back as `Decimal`.
The integer bounds an amount, and a SQL SUM, to about 9.2 x 10^12 units on SQLite (10^14 on
PostgreSQL): enough for one order in any currency, but shop-wide sums in IDR or VND can need
PostgreSQL. An amount out of range is refused, never wrapped.
Six decimal places cover every ISO currency (at most three) and WooCommerce's unrounded line
prices; an amount with more places is refused rather than rounded.

`UTCDateTime` accepts only timezone-aware datetimes, stores UTC (naive ISO text on SQLite,
timestamptz on PostgreSQL) and always returns aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

MONEY_SCALE = 6
_MICROS = Decimal(10) ** MONEY_SCALE
_SQLITE_MIN, _SQLITE_MAX = -(2**63), 2**63 - 1  # a 64-bit INTEGER: about +-9.2 x 10^12 units


def to_micros(amount: Decimal) -> int:
    """Exact integer micro-units of an amount; refuses amounts finer than 10^-6."""
    if not amount.is_finite():
        raise ValueError(f"amount {amount} is not a finite number")
    scaled = amount * _MICROS
    if scaled != scaled.to_integral_value():
        raise ValueError(f"amount {amount} has more than {MONEY_SCALE} decimal places")
    return int(scaled)


def from_micros(micros: int) -> Decimal:
    """The Decimal amount of integer micro-units, with trailing zeros removed."""
    value = Decimal(micros) / _MICROS
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


class Money(TypeDecorator[Decimal]):
    """An exact money amount (its currency lives in a sibling column)."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(20, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must be Decimal, never float")
        amount = Decimal(value)
        if dialect.name == "sqlite":
            micros = to_micros(amount)
            if not _SQLITE_MIN <= micros <= _SQLITE_MAX:
                raise ValueError(f"amount {amount} is beyond what the SQLite store holds")
            return micros
        to_micros(amount)  # same precision check on every dialect
        return amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return from_micros(int(value))
        return from_micros(to_micros(Decimal(value)))


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: times are aware UTC")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
