"""history: segment changes, the RFM group before and since, metric snapshots, cohorts

Memberships stored before this revision become `entered` changes at their `since` date
(midnight UTC), and each customer's current RFM group is taken as entered then.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from shopcrm.store.types import Money, UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _midnight(column: str) -> str:
    """`column` (a date) as the stored form of midnight UTC on that date."""
    if op.get_bind().dialect.name == "sqlite":
        return f"(CAST({column} AS TEXT) || ' 00:00:00.000000')"
    return f"CAST({column} AS TIMESTAMP) AT TIME ZONE 'UTC'"


def upgrade() -> None:
    op.create_table(
        "segment_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("segment", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("entered", sa.Boolean(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["shop_id"], ["shop.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_segment_change_customer_at", "segment_change", ["customer_id", "at"])
    op.create_index("ix_segment_change_shop_at", "segment_change", ["shop_id", "at"])
    op.execute(
        "INSERT INTO segment_change (shop_id, customer_id, segment, entered, at) "  # noqa: S608
        f"SELECT shop_id, customer_id, segment, true, {_midnight('since')} "
        "FROM segment_membership ORDER BY customer_id, segment"
    )
    with op.batch_alter_table("customer_metrics", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "previous_rfm_segment", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True
            )
        )
        batch_op.add_column(sa.Column("rfm_segment_since", UTCDateTime(), nullable=True))
    op.execute(
        f"UPDATE customer_metrics SET rfm_segment_since = (SELECT {_midnight('m.since')} "  # noqa: S608
        "FROM segment_membership AS m WHERE m.customer_id = customer_metrics.customer_id "
        "AND m.segment = 'rfm-' || customer_metrics.rfm_segment)"
    )
    op.create_table(
        "metric_snapshot",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("new_customers", sa.Integer(), nullable=False),
        sa.Column("returning_customers", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("net_revenue", Money(), nullable=False),
        sa.Column("average_order_value", Money(), nullable=True),
        sa.Column("purchase_frequency", sa.Float(), nullable=True),
        sa.Column("customers_to_date", sa.Integer(), nullable=False),
        sa.Column("repeat_customers_to_date", sa.Integer(), nullable=False),
        sa.Column("repeat_purchase_rate", sa.Float(), nullable=True),
        sa.Column("segments", sa.JSON(), nullable=True),
        sa.Column("rfm_groups", sa.JSON(), nullable=True),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shop.id"]),
        sa.PrimaryKeyConstraint("shop_id", "currency", "period", "period_end"),
    )
    op.create_table(
        "cohort_retention",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("cohort_month", sa.Date(), nullable=False),
        sa.Column("months_since", sa.Integer(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shop.id"]),
        sa.PrimaryKeyConstraint("shop_id", "cohort_month", "months_since"),
    )


def downgrade() -> None:
    op.drop_table("cohort_retention")
    op.drop_table("metric_snapshot")
    with op.batch_alter_table("customer_metrics", schema=None) as batch_op:
        batch_op.drop_column("rfm_segment_since")
        batch_op.drop_column("previous_rfm_segment")
    op.drop_index("ix_segment_change_shop_at", table_name="segment_change")
    op.drop_index("ix_segment_change_customer_at", table_name="segment_change")
    op.drop_table("segment_change")
