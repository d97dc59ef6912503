"""segment memberships keyed by (customer, segment), without a rowid on SQLite

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 15:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "customer_id, segment, shop_id, since"


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("segment", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["shop_id"], ["shop.id"]),
    ]


def _move(new_table: str) -> None:
    """Copy the memberships into `new_table`, then put it in the old table's place."""
    op.execute(
        f"INSERT INTO {new_table} ({_COLUMNS}) SELECT {_COLUMNS} FROM segment_membership"  # noqa: S608
    )
    op.drop_table("segment_membership")
    op.rename_table(new_table, "segment_membership")


def upgrade() -> None:
    op.create_table(
        "segment_membership_keyed",
        *_columns(),
        sa.PrimaryKeyConstraint("customer_id", "segment"),
        sqlite_with_rowid=False,
    )
    _move("segment_membership_keyed")
    op.create_index("ix_segment_membership_shop_id", "segment_membership", ["shop_id"])


def downgrade() -> None:
    op.create_table(
        "segment_membership_ids",
        sa.Column("id", sa.Integer(), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "segment"),
    )
    _move("segment_membership_ids")
    op.create_index("ix_segment_membership_shop_id", "segment_membership", ["shop_id"])
    op.create_index("ix_segment_membership_customer_id", "segment_membership", ["customer_id"])
