"""privacy: forgotten customers and orders stay redacted, and each forget is recorded

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 16:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import shopcrm.store.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("redacted_at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("redacted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("redacted", server_default=None)
    op.create_table(
        "forget_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", shopcrm.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("shops", sa.JSON(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("forget_log")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("redacted")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_column("redacted_at")
