"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 10:53:24.920812
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shopcrm.store.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_normalised", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("created_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email_normalised"),
    )
    op.create_table(
        "shop",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("domain", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("email_normalised", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("first_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("last_name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("created_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepts_marketing", sa.Boolean(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("redacted", sa.Boolean(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("synced_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shop.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "platform_id"),
    )
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_email_normalised"), ["email_normalised"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_customer_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_customer_shop_id"), ["shop_id"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "customer_platform_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("email_normalised", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("total", shopcrm.store.types.Money(), nullable=False),
        sa.Column("refunded", shopcrm.store.types.Money(), nullable=False),
        sa.Column("financial_status", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("synced_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shop.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "platform_id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_email_normalised"), ["email_normalised"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_orders_person_id"), ["person_id"], unique=False)
        batch_op.create_index(
            "ix_orders_shop_customer", ["shop_id", "customer_platform_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_orders_shop_id"), ["shop_id"], unique=False)

    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("started_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shop.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_run_shop_id"), ["shop_id"], unique=False)

    op.create_table(
        "sync_state",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("stream", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("cursor", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("high_water_mark", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shop.id"],
        ),
        sa.PrimaryKeyConstraint("shop_id", "stream"),
    )
    op.create_table(
        "customer_metrics",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True),
        sa.Column("orders_count", sa.Integer(), nullable=False),
        sa.Column("first_order_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_order_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("total_spent", shopcrm.store.types.Money(), nullable=False),
        sa.Column("average_order_value", shopcrm.store.types.Money(), nullable=True),
        sa.Column("mean_days_between_orders", sa.Float(), nullable=True),
        sa.Column("days_since_last_order", sa.Integer(), nullable=True),
        sa.Column("recency_score", sa.Integer(), nullable=True),
        sa.Column("frequency_score", sa.Integer(), nullable=True),
        sa.Column("monetary_score", sa.Integer(), nullable=True),
        sa.Column("rfm_segment", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("expected_purchases", sa.Float(), nullable=True),
        sa.Column("expected_order_value", shopcrm.store.types.Money(), nullable=True),
        sa.Column("predicted_clv", shopcrm.store.types.Money(), nullable=True),
        sa.Column("computed_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shop.id"],
        ),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    with op.batch_alter_table("customer_metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_metrics_shop_id"), ["shop_id"], unique=False)

    op.create_table(
        "order_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("platform_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("product_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", shopcrm.store.types.Money(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_line_order_id"), ["order_id"], unique=False)

    op.create_table(
        "push_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column(
            "customer_platform_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column("added", sa.JSON(), nullable=False),
        sa.Column("removed", sa.JSON(), nullable=False),
        sa.Column("at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["sync_run.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shop.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("push_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_push_log_shop_id"), ["shop_id"], unique=False)

    op.create_table(
        "segment_membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("segment", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shop.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "segment"),
    )
    with op.batch_alter_table("segment_membership", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segment_membership_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_segment_membership_shop_id"), ["shop_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("segment_membership", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_membership_shop_id"))
        batch_op.drop_index(batch_op.f("ix_segment_membership_customer_id"))

    op.drop_table("segment_membership")
    with op.batch_alter_table("push_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_log_shop_id"))

    op.drop_table("push_log")
    with op.batch_alter_table("order_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_line_order_id"))

    op.drop_table("order_line")
    with op.batch_alter_table("customer_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_metrics_shop_id"))

    op.drop_table("customer_metrics")
    op.drop_table("sync_state")
    with op.batch_alter_table("sync_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_run_shop_id"))

    op.drop_table("sync_run")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_shop_id"))
        batch_op.drop_index("ix_orders_shop_customer")
        batch_op.drop_index(batch_op.f("ix_orders_person_id"))
        batch_op.drop_index(batch_op.f("ix_orders_email_normalised"))

    op.drop_table("orders")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_shop_id"))
        batch_op.drop_index(batch_op.f("ix_customer_person_id"))
        batch_op.drop_index(batch_op.f("ix_customer_email_normalised"))

    op.drop_table("customer")
    op.drop_table("shop")
    op.drop_table("person")
