"""Money stays exact and times stay aware UTC through the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import StatementError

from shopcrm.store.db import Store
from shopcrm.store.models import Order, Shop
from shopcrm.store.types import from_micros, to_micros

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop_id(store: Store) -> int:
    with store.session() as session:
        shop = Shop(name="main", platform="csv", created_at=T0)
        session.add(shop)
        session.flush()
        assert shop.id is not None
        return shop.id


def _order(shop_id: int, platform_id: str, total: object, **kw: object) -> Order:
    fields: dict[str, object] = {
        "shop_id": shop_id,
        "platform_id": platform_id,
        "created_at": T0,
        "updated_at": T0,
        "currency": "EUR",
        "total": total,
        "refunded": Decimal(0),
        **kw,
    }
    return Order(**fields)


def _roundtrip(store: Store, shop_id: int, amounts: dict[str, Decimal]) -> dict[str, Decimal]:
    with store.session() as session:
        for pid, amount in amounts.items():
            session.add(_order(shop_id, pid, amount))
    with store.session() as session:
        return dict(session.execute(select(Order.platform_id, Order.total)).tuples().all())


def test_decimal_sums_stay_exact(store: Store, shop_id: int) -> None:
    read = _roundtrip(store, shop_id, {"a": Decimal("0.1") + Decimal("0.2")})
    assert read["a"] == Decimal("0.3")
    assert str(read["a"]) == "0.3"
    assert isinstance(read["a"], Decimal)


AMOUNTS = {
    "kwd": "1.005",  # Kuwaiti dinar: three decimals
    "kwd-small": "0.001",
    "jpy": "1234567",  # yen: no decimals
    "negative": "-12.34",  # an adjustment
    "finest": "0.000001",  # the finest amount kept (unrounded WooCommerce line prices)
    "idr": "9000000000000",  # large currencies: nine trillion rupiah
}


def test_amounts_keep_their_precision(store: Store, shop_id: int) -> None:
    read = _roundtrip(store, shop_id, {k: Decimal(v) for k, v in AMOUNTS.items()})
    assert {k: str(v) for k, v in read.items()} == AMOUNTS
    assert all(isinstance(v, Decimal) for v in read.values())


def test_a_float_is_refused_and_nothing_is_written(store: Store, shop_id: int) -> None:
    with pytest.raises(StatementError, match="never float") as info, store.session() as session:
        session.add(_order(shop_id, "f", 0.1))
    assert isinstance(info.value.orig, TypeError)
    with store.session() as session:
        assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 0


def test_an_amount_finer_than_six_decimals_or_not_finite_is_refused(
    store: Store, shop_id: int
) -> None:
    for amount in ("0.0000001", "1.1234567", "NaN", "Infinity"):
        with pytest.raises(StatementError), store.session() as session:
            session.add(_order(shop_id, "fine", Decimal(amount)))
    with store.session() as session:
        assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 0


def test_an_amount_beyond_the_column_is_refused_not_wrapped(store: Store, shop_id: int) -> None:
    for amount in (Decimal(10) ** 14, -(Decimal(10) ** 14)):
        with pytest.raises(StatementError), store.session() as session:
            session.add(_order(shop_id, "huge", amount))
    with store.session() as session:
        assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 0


def test_sql_sum_and_comparisons_over_money_are_exact(store: Store, shop_id: int) -> None:
    amounts = [Decimal("0.1")] * 10 + [Decimal("19.99")] * 333 + [Decimal("0.000001")] * 7
    with store.session() as session:
        for i, amount in enumerate(amounts):
            session.add(_order(shop_id, str(i), amount, refunded=Decimal("0.01")))
    with store.session() as session:
        total, refunded = session.execute(
            select(func.sum(Order.total), func.sum(Order.refunded))
        ).one()
        net = session.execute(select(func.sum(Order.total - Order.refunded))).scalar_one()
        cheap = session.execute(
            select(func.count()).where(Order.total == Decimal("0.1"))
        ).scalar_one()
        dear = session.execute(
            select(func.count()).where(Order.total > Decimal("19.98"))
        ).scalar_one()
    assert total == sum(amounts) == Decimal("6657.670007")
    assert refunded == Decimal("3.5")
    assert net == Decimal("6654.170007")
    assert (cheap, dear) == (10, 333)


def test_micro_units_are_exact() -> None:
    assert to_micros(Decimal("1.005")) == 1_005_000
    assert from_micros(1_005_000) == Decimal("1.005")
    assert str(from_micros(1_234_567_000_000)) == "1234567"
    with pytest.raises(ValueError, match="more than 6 decimal places"):
        to_micros(Decimal("0.0000001"))
    for amount in ("NaN", "-Infinity"):
        with pytest.raises(ValueError, match="not a finite number"):
            to_micros(Decimal(amount))


def test_a_naive_datetime_is_refused(store: Store, shop_id: int) -> None:
    with pytest.raises(StatementError, match="naive datetime") as info, store.session() as session:
        session.add(_order(shop_id, "n", Decimal(1), created_at=datetime(2026, 3, 1, 12, 0)))
    assert isinstance(info.value.orig, ValueError)


AWARE = [
    datetime(2026, 3, 1, 17, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 3, 1, 7, 0, tzinfo=ZoneInfo("America/New_York")),  # EST, UTC-5
    datetime(2026, 3, 1, 13, 0, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
]


def test_an_aware_time_is_stored_and_read_back_as_utc(store: Store, shop_id: int) -> None:
    with store.session() as session:
        for i, written in enumerate(AWARE):
            session.add(_order(shop_id, str(i), Decimal(1), created_at=written))
    with store.session() as session:
        read = session.execute(select(Order.created_at)).scalars().all()
        later = session.execute(
            select(func.count()).where(Order.created_at > datetime(2026, 3, 1, 11, 59, tzinfo=UTC))
        ).scalar_one()
    assert read == [datetime(2026, 3, 1, 12, 0, tzinfo=UTC)] * len(AWARE)
    for value in read:
        assert value.utcoffset() == timedelta(0)
        assert value.tzname() == "UTC"
    assert later == len(AWARE)
