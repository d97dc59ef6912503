"""metrics fingerprints: reruns rewrite only the metrics rows whose values changed

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("customer_metrics", "person_metrics"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("fingerprint", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for table in ("customer_metrics", "person_metrics"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("fingerprint")
