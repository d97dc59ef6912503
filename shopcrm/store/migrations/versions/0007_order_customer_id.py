"""orders carry their stored customer's id: read without a text join on (shop, platform id)

On SQLite adding the reference rebuilds the orders table (about 17 s per million orders
with their lines here, once); env.py turns foreign keys off meanwhile, so the lines stay.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 16:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_orders_customer_id_customer"),
            "customer",
            ["customer_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(batch_op.f("ix_orders_customer_id"), ["customer_id"], unique=False)
    op.execute(
        "UPDATE orders SET customer_id = (SELECT c.id FROM customer AS c "
        "WHERE c.shop_id = orders.shop_id AND c.platform_id = orders.customer_platform_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_customer_id"))
        batch_op.drop_constraint(batch_op.f("fk_orders_customer_id_customer"), type_="foreignkey")
        batch_op.drop_column("customer_id")
