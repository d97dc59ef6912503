"""Alembic environment: runs against the engine handed over by `shopcrm.store.db`."""

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import shopcrm.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from shopcrm.errors import StoreError

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    engine = context.config.attributes.get("engine")
    if engine is None:
        engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration rebuilds a table by copying it and dropping the original; with
            # foreign keys enforced, dropping a referenced table would cascade to the rows that
            # reference it (SQLite's own procedure for table changes turns them off first).
            # The pragma only takes effect outside a transaction, so it comes first.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreError(f"the schema upgrade left broken references: {broken[:5]}")
        connection.commit()
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


run_migrations()
