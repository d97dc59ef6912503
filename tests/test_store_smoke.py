from shopcrm.store.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_CACHE_KIB,
    current_revision,
    head_revision,
    open_store,
)


def test_store_is_at_head(store):
    assert current_revision(store.engine) == head_revision()


def test_sqlite_connections_get_the_store_settings(tmp_path):
    """Every connection of a SQLite store: WAL, enforced references, a busy wait and the page
    cache the enrichment's bulk writes rely on."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with store.engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "cache_size")
            }
    finally:
        store.close()
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
        "cache_size": -SQLITE_CACHE_KIB,
    }
