"""metrics history fingerprints: a row whose purchase history is unchanged gets only its
daily columns rewritten

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 16:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("customer_metrics", "person_metrics"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("history_fingerprint", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for table in ("customer_metrics", "person_metrics"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("history_fingerprint")
