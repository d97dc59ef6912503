"""The Alembic migrations make exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData, String, inspect, text
from sqlmodel import SQLModel

import shopcrm.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from shopcrm.errors import SchemaOutOfDate, StoreError
from shopcrm.store import history
from shopcrm.store.db import (
    Store,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    open_store,
    upgrade,
)
from tests.conftest import Databases


@pytest.fixture
def engine(databases: Databases) -> Any:
    eng = make_engine(databases.empty())
    yield eng
    eng.dispose()


def _diffs(engine: Engine, metadata: MetaData) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_matches_the_models(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _tables(engine) == set(SQLModel.metadata.tables)
    assert _diffs(engine, SQLModel.metadata) == []


def test_downgrade_to_base_then_upgrade_again(engine: Engine) -> None:
    upgrade(engine)
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert _tables(engine) == set()
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _diffs(engine, SQLModel.metadata) == []


def test_the_comparison_sees_a_type_change(engine: Engine) -> None:
    """Guards the check above: a column whose type differs from the schema is reported."""
    upgrade(engine)
    changed = MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["orders"].c.total.type = String(20)
    changed.tables["customer"].c.updated_at.type = String(40)
    modified = _modified_types(_diffs(engine, changed))
    assert modified == {("orders", "total"), ("customer", "updated_at")}


def _modified_types(diffs: list[Any]) -> set[tuple[str, str]]:
    return {
        (op[2], op[3])
        for group in diffs
        for op in (group if isinstance(group, list) else [group])
        if op[0] == "modify_type"
    }


def test_the_comparison_sees_money_with_the_wrong_scale(databases: Databases) -> None:
    """Money is compared as the type it is on each database (NUMERIC(20, 6) or BIGINT)."""
    engine = make_engine(databases.empty())
    try:
        upgrade(engine)
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(
                    text("ALTER TABLE order_line ALTER COLUMN unit_price TYPE NUMERIC(10, 2)")
                )
            else:  # SQLite cannot alter a column's type: rebuild the table with a REAL column
                conn.execute(text("DROP TABLE order_line"))
                conn.execute(
                    text(
                        "CREATE TABLE order_line (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL"
                        " REFERENCES orders(id) ON DELETE CASCADE, position INTEGER NOT NULL,"
                        " platform_id VARCHAR(64), sku VARCHAR(255), product_id VARCHAR(64),"
                        " title VARCHAR(500), quantity INTEGER NOT NULL, unit_price REAL NOT NULL)"
                    )
                )
                conn.execute(text("CREATE INDEX ix_order_line_order_id ON order_line (order_id)"))
        assert _modified_types(_diffs(engine, SQLModel.metadata)) == {("order_line", "unit_price")}
    finally:
        engine.dispose()


def test_opening_an_old_store_without_upgrading_says_how_to_fix_it(
    databases: Databases,
) -> None:
    url = databases.empty()
    with pytest.raises(SchemaOutOfDate, match="shopcrm db upgrade") as info:
        open_store(url, auto_upgrade=False)
    assert info.value.exit_code == 2
    store = open_store(url)  # auto-upgrades by default
    try:
        assert current_revision(store.engine) == head_revision()
        open_store(url, auto_upgrade=False).close()
    finally:
        store.close()


def test_a_store_from_a_newer_shopcrm_is_refused_clearly(databases: Databases) -> None:
    url = databases.ready()
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    finally:
        engine.dispose()
    for auto_upgrade in (True, False):
        with pytest.raises(StoreError, match="newer than this shopcrm") as info:
            open_store(url, auto_upgrade=auto_upgrade)
        assert not isinstance(info.value, SchemaOutOfDate)  # `db upgrade` would not help


EMAIL_ROWS = [
    {"id": 1, "email": " Ann@Example.COM ", "stored": None},
    {"id": 2, "email": "bob@x.com", "stored": "bob@x.com"},
    {"id": 3, "email": "none", "stored": "stale@x.com"},
    {"id": 4, "email": None, "stored": None},
]


def test_0003_fills_the_email_keys_of_rows_stored_before(engine: Engine) -> None:
    """Before 0003 the enrichment wrote `email_normalised`; rows synced since have none."""
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO shop (id, name, platform) VALUES (1, 's', 'csv')"))
        conn.execute(
            text(
                "INSERT INTO customer (id, shop_id, platform_id, email, email_normalised, "
                "updated_at, tags, deleted, redacted) VALUES (:id, 1, 'c' || :id, :email, "
                ":stored, '2026-01-01 00:00:00.000000', '[]', false, false)"
            ),
            EMAIL_ROWS,
        )
        conn.execute(
            text(
                "INSERT INTO orders (id, shop_id, platform_id, email, email_normalised, "
                "created_at, updated_at, currency, total, refunded, deleted) VALUES (:id, 1, "
                "'o' || :id, :email, :stored, '2026-01-01 00:00:00.000000', "
                "'2026-01-01 00:00:00.000000', 'EUR', 0, 0, false)"
            ),
            EMAIL_ROWS,
        )
    upgrade(engine)
    with engine.connect() as conn:
        for table in ("customer", "orders"):
            keys = dict(conn.execute(text(f"SELECT id, email_normalised FROM {table}")).all())  # noqa: S608
            assert keys == {1: "ann@example.com", 2: "bob@x.com", 3: None, 4: None}


def _customers(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Customers with only the columns every schema version requires (`pid`: platform id)."""
    conn.execute(
        text(
            "INSERT INTO customer (id, shop_id, platform_id, updated_at, tags, deleted, "
            "redacted) VALUES (:id, :shop, :pid, '2026-01-01 00:00:00.000000', '[]', false, false)"
        ),
        rows,
    )


def _two_customers_in_segments(conn: Connection, memberships: list[dict[str, Any]]) -> None:
    """Shop 1 with customers 1 and 2, and these memberships (customer, segment, since)."""
    conn.execute(text("INSERT INTO shop (id, name, platform) VALUES (1, 's', 'csv')"))
    _customers(conn, [{"id": 1, "shop": 1, "pid": "c1"}, {"id": 2, "shop": 1, "pid": "c2"}])
    conn.execute(
        text(
            "INSERT INTO segment_membership (shop_id, customer_id, segment, since) "
            "VALUES (1, :customer, :segment, :since)"
        ),
        memberships,
    )


def test_0005_keeps_every_membership_both_ways(engine: Engine) -> None:
    """0005 rebuilds segment_membership keyed by (customer, segment); no row may be lost."""
    upgrade(engine, "0004")
    with engine.begin() as conn:
        _two_customers_in_segments(
            conn,
            [
                {"customer": 1, "segment": "vip", "since": "2026-02-01"},
                {"customer": 1, "segment": "new", "since": "2026-02-01"},
                {"customer": 2, "segment": "vip", "since": "2026-02-01"},
            ],
        )

    def memberships() -> list[tuple[Any, ...]]:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT customer_id, segment, shop_id, since FROM segment_membership")
            ).all()
        return sorted((c, s, shop, str(since)) for c, s, shop, since in rows)

    before = memberships()
    assert len(before) == 3
    upgrade(engine)
    assert memberships() == before
    downgrade(engine, "0004")
    assert memberships() == before


def test_0007_links_stored_orders_to_their_customers(engine: Engine) -> None:
    """0007 fills each order's `customer_id` from (shop, customer platform id); guests and
    orders of customers not stored stay unlinked, and the link can be dropped again."""
    upgrade(engine, "0006")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO shop (id, name, platform) VALUES (1, 's', 'csv')"))
        conn.execute(text("INSERT INTO shop (id, name, platform) VALUES (2, 't', 'csv')"))
        _customers(conn, [{"id": 10, "shop": 1, "pid": "c1"}, {"id": 20, "shop": 2, "pid": "c1"}])
        conn.execute(
            text(
                "INSERT INTO orders (id, shop_id, platform_id, customer_platform_id, created_at, "
                "updated_at, currency, total, refunded, deleted) VALUES (:id, :shop, "
                "'o' || :id, :customer, '2026-01-01 00:00:00.000000', "
                "'2026-01-01 00:00:00.000000', 'EUR', 0, 0, false)"
            ),
            [
                {"id": 1, "shop": 1, "customer": "c1"},
                {"id": 2, "shop": 2, "customer": "c1"},  # the same platform id in another shop
                {"id": 3, "shop": 1, "customer": None},  # a guest checkout
                {"id": 4, "shop": 1, "customer": "c9"},  # a customer not stored
            ],
        )
        conn.execute(
            text(
                "INSERT INTO order_line (order_id, position, quantity, unit_price) "
                "VALUES (:order, 0, 1, 0)"
            ),
            [{"order": i} for i in (1, 2, 3, 4)],
        )

    def counts() -> tuple[int, int]:
        with engine.connect() as conn:
            return tuple(
                conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()  # noqa: S608
                for table in ("orders", "order_line")
            )

    upgrade(engine)
    with engine.connect() as conn:
        links = dict(conn.execute(text("SELECT id, customer_id FROM orders")).all())
    assert links == {1: 10, 2: 20, 3: None, 4: None}
    assert counts() == (4, 4)
    # going back rebuilds `orders` on SQLite: its lines must not go with the old table
    downgrade(engine, "0006")
    assert counts() == (4, 4)
    upgrade(engine)
    with engine.begin() as conn:  # the reference is enforced after the upgrade
        conn.execute(text("DELETE FROM customer WHERE id = 10"))
        assert (
            conn.execute(text("SELECT customer_id FROM orders WHERE id = 1")).scalar_one() is None
        )


def test_0008_adds_the_redaction_columns_and_the_forget_log(engine: Engine) -> None:
    """Rows stored before 0008 are not redacted; going back drops only what 0008 added."""
    upgrade(engine, "0007")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO shop (id, name, platform) VALUES (1, 's', 'csv')"))
        _customers(conn, [{"id": 1, "shop": 1, "pid": "c1"}])
        conn.execute(
            text(
                "INSERT INTO orders (id, shop_id, platform_id, customer_id, created_at, "
                "updated_at, currency, total, refunded, deleted) VALUES (1, 1, 'o1', 1, "
                "'2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', 'EUR', 0, 0, false)"
            )
        )
    upgrade(engine)
    assert _diffs(engine, SQLModel.metadata) == []
    with engine.begin() as conn:
        assert conn.execute(text("SELECT redacted FROM orders")).scalar_one() in (False, 0)
        assert conn.execute(text("SELECT redacted_at FROM customer")).scalar_one() is None
        conn.execute(
            text(
                "INSERT INTO forget_log (at, scope, shops, customers, orders, persons) "
                "VALUES ('2026-02-01 00:00:00.000000', 'person', '[\"s\"]', 1, 1, 1)"
            )
        )
    downgrade(engine, "0007")
    assert "forget_log" not in _tables(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT customer_id FROM orders")).scalar_one() == 1


def test_0009_records_stored_memberships_as_entered_at_their_date(engine: Engine) -> None:
    """Memberships stored before the history become `entered` changes at midnight UTC of
    their `since`, and each customer's current RFM group is taken as entered then."""
    upgrade(engine, "0008")
    with engine.begin() as conn:
        _two_customers_in_segments(
            conn,
            [
                {"customer": 1, "segment": "rfm-loyal", "since": "2026-02-01"},
                {"customer": 1, "segment": "vip", "since": "2026-03-05"},
            ],
        )
        conn.execute(
            text(
                "INSERT INTO customer_metrics (customer_id, shop_id, orders_count, total_spent, "
                "rfm_segment, computed_at) VALUES (:c, 1, 1, 0, :seg, '2026-03-06 00:00:00.000000')"
            ),
            [{"c": 1, "seg": "loyal"}, {"c": 2, "seg": None}],
        )
    upgrade(engine)
    store = Store(engine)
    changes = history.segment_history(store, [1, 2])
    assert [(c.segment, c.entered, c.at) for c in changes[1]] == [
        ("rfm-loyal", True, datetime(2026, 2, 1, tzinfo=UTC)),
        ("vip", True, datetime(2026, 3, 5, tzinfo=UTC)),
    ]
    assert changes[2] == []
    states = history.rfm_state(store, [1, 2])
    assert states[1] == history.RfmState("loyal", None, datetime(2026, 2, 1, tzinfo=UTC))
    assert states[2] == history.RfmState(None, None, None)
    downgrade(engine, "0008")
    assert "segment_change" not in _tables(engine)
