"""identity keys written with every email: fill email_normalised of rows stored before

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shopcrm.store.emails import normalise_email

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Before 0003 the enrichment filled `email_normalised`; from now on the upserts do, so
    rows stored since the last enrichment need theirs. Links are left to the next enrichment."""
    conn = op.get_bind()
    for table in ("customer", "orders"):
        rows = conn.execute(
            sa.text(f"SELECT id, email, email_normalised FROM {table}")  # noqa: S608
        ).all()
        changed = [
            {"id": row_id, "key": key}
            for row_id, email, stored in rows
            if (key := normalise_email(email)) != stored
        ]
        if changed:
            conn.execute(
                sa.text(f"UPDATE {table} SET email_normalised = :key WHERE id = :id"),  # noqa: S608
                changed,
            )


def downgrade() -> None:
    """Nothing to undo: the keys are the ones the older enrichment writes itself."""
