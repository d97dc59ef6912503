from shopcrm.store.db import current_revision, head_revision


def test_store_is_at_head(store):
    assert current_revision(store.engine) == head_revision()
