"""enrichment: top products per customer, purchase history per person and currency

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shopcrm.store.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_metrics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("top_products", sa.JSON(), nullable=True))
    op.create_table(
        "person_metrics",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("orders_count", sa.Integer(), nullable=False),
        sa.Column("first_order_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_order_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("total_spent", shopcrm.store.types.Money(), nullable=False),
        sa.Column("average_order_value", shopcrm.store.types.Money(), nullable=True),
        sa.Column("mean_days_between_orders", sa.Float(), nullable=True),
        sa.Column("days_since_last_order", sa.Integer(), nullable=True),
        sa.Column("top_products", sa.JSON(), nullable=True),
        sa.Column("computed_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("person_id", "currency"),
    )


def downgrade() -> None:
    op.drop_table("person_metrics")
    with op.batch_alter_table("customer_metrics", schema=None) as batch_op:
        batch_op.drop_column("top_products")
