"""WooCommerce end to end against the sandbox on 127.0.0.1: pull into a real store, push meta."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shopcrm.connectors.woocommerce.connector import WooCommerceConnector
from shopcrm.records import TagChange
from shopcrm.sandbox.seed import generate
from shopcrm.sandbox.woocommerce import shapes
from shopcrm.store.db import Store, open_store
from shopcrm.sync.pull import pull_shop
from tests.sync_kill import kill_when
from tests.woocommerce_fixtures import (
    SECRET,
    app_config,
    expected_customers,
    expected_orders,
    start_sandbox,
    stored_customers,
    stored_orders,
    woo,
)

__all__ = ["woo"]  # the fixture, re-exported for pytest


def _sync(store: Store, sandbox, *, full: bool = False):  # type: ignore[no-untyped-def]
    config = app_config(sandbox)
    result = pull_shop(store, config, config.shops[0], full=full)
    assert result.ok, result.error
    return result


def _assert_store_equals(store: Store, sandbox) -> None:  # type: ignore[no-untyped-def]
    assert stored_customers(store) == expected_customers(sandbox.dataset)
    assert stored_orders(store) == expected_orders(sandbox.dataset)


def test_full_sync_equals_the_sandbox_data(store: Store) -> None:
    sandbox = start_sandbox(generate(customers=120, seed=11))
    try:
        result = _sync(store, sandbox)
        _assert_store_equals(store, sandbox)
        dataset = sandbox.dataset
        assert result.customers == len(dataset.customers)
        assert result.orders == len(dataset.orders)
        guests = [o for o in dataset.orders.values() if o.customer_id is None]
        assert guests
        stored = stored_orders(store)
        assert all(stored[str(o.id)][0] is None for o in guests)
        assert result.facts is not None
        assert (result.facts.currency, result.facts.timezone) == ("USD", "America/New_York")
    finally:
        sandbox.stop()


def test_incremental_reads_only_what_changed(store: Store) -> None:
    sandbox = start_sandbox(generate(customers=400, seed=12))
    try:
        _sync(store, sandbox)
        dataset = sandbox.dataset
        records = len(dataset.customers) + len(dataset.orders)
        changed = dataset.mutate(records // 100)  # 1% of the records
        result = _sync(store, sandbox)
        _assert_store_equals(store, sandbox)
        customers_changed = len({i for kind, i in changed if kind == "customer"})
        orders_changed = len({i for kind, i in changed if kind == "order"})
        assert result.customers == customers_changed
        assert result.orders == orders_changed
        scan = math.ceil(len(dataset.customers) / 100)  # id + date_modified_gmt only
        expected = 2 + scan + math.ceil(customers_changed / 100) + math.ceil(orders_changed / 100)
        assert result.requests == expected
    finally:
        sandbox.stop()


@pytest.mark.parametrize("after_reads", [2, 6])
def test_records_changing_mid_sync_are_neither_lost_nor_duplicated(after_reads: int) -> None:
    store = open_store("sqlite://")
    sandbox = start_sandbox(generate(customers=250, seed=13))
    dataset = sandbox.dataset
    dataset.mutate_after_reads, dataset.mutate_count = after_reads, 30
    try:
        first = _sync(store, sandbox)
        assert dataset.mutated_during_sync, "the knob never fired"
        stored_c, stored_o = stored_customers(store), stored_orders(store)
        assert set(stored_c) == {str(i) for i in dataset.customers}
        assert set(stored_o) == {str(i) for i in dataset.orders}
        assert first.orders >= len(dataset.orders)  # a repeat is possible, a gap is not
        dataset.mutate_after_reads = None
        _sync(store, sandbox)
        _assert_store_equals(store, sandbox)
    finally:
        sandbox.stop()
        store.close()


@pytest.mark.parametrize("customers", [0, 100])
def test_page_edges_empty_shop_and_exactly_one_full_page(customers: int) -> None:
    store = open_store("sqlite://")
    sandbox = start_sandbox(generate(customers=customers, seed=14))
    try:
        _sync(store, sandbox)
        _assert_store_equals(store, sandbox)
        customer_reads = sandbox.server.stats.by_path["GET /wp-json/wc/v3/customers"]
        assert customer_reads == 1  # 0 or exactly 100: one request, no empty page after it
    finally:
        sandbox.stop()
        store.close()


def test_push_touches_only_the_managed_meta_key(woo) -> None:  # type: ignore[no-untyped-def]
    dataset = woo.dataset
    ids = sorted(dataset.customers)[:5]
    before = {i: [dict(r) for r in dataset.customers[i].extra[shapes.META]] for i in ids}
    assert all(before[i] for i in ids), "seeded customers carry merchant meta"
    connector = WooCommerceConnector(app_config(woo).shops[0], app_config(woo))
    add = [TagChange(str(i), add=frozenset({"crm:vip", "crm:loyal"})) for i in ids]
    assert all(r.ok for r in connector.apply(add))
    for i in ids:
        rows = dataset.customers[i].extra[shapes.META]
        assert [r for r in rows if r["key"] != "shopcrm_tags"] == before[i]
        assert [r["value"] for r in rows if r["key"] == "shopcrm_tags"] == ["crm:loyal,crm:vip"]
    # a merchant edits another key after our pull: still untouched by the next push
    dataset.customers[ids[0]].extra[shapes.META][0]["value"] = "edited-by-merchant"
    before[ids[0]][0]["value"] = "edited-by-merchant"
    swap = [
        TagChange(str(i), add=frozenset({"crm:at-risk"}), remove=frozenset({"crm:vip"}))
        for i in ids
    ]
    assert all(r.ok for r in connector.apply(swap))
    assert [
        r["value"]
        for r in dataset.customers[ids[1]].extra[shapes.META]
        if r["key"] == "shopcrm_tags"
    ] == ["crm:at-risk,crm:loyal"]
    untag = [TagChange(str(i), remove=frozenset({"crm:at-risk", "crm:loyal"})) for i in ids]
    assert all(r.ok for r in connector.apply(untag))
    assert {i: dataset.customers[i].extra[shapes.META] for i in ids} == before  # row deleted
    connector.close()


def test_push_batches_by_100_and_reports_per_customer_failures() -> None:
    sandbox = start_sandbox(generate(customers=230, seed=15))
    try:
        config = app_config(sandbox)
        connector = WooCommerceConnector(config.shops[0], config)
        gone = 17
        changes = [
            TagChange(str(i), add=frozenset({"crm:vip"})) for i in sorted(sandbox.dataset.customers)
        ]
        del sandbox.dataset.customers[gone]  # deleted upstream since our pull
        results = list(connector.apply(changes))
        assert [r.customer_platform_id for r in results] == [
            c.customer_platform_id for c in changes
        ]
        failed = [r for r in results if not r.ok]
        assert [r.customer_platform_id for r in failed] == [str(gone)]
        assert "not found" in (failed[0].error or "")
        assert sandbox.server.stats.by_path["POST /wp-json/wc/v3/customers/batch"] == 3  # 230 / 100
        connector.close()
    finally:
        sandbox.stop()


def test_sigkill_at_random_points_then_resume_is_exact(tmp_path: Path) -> None:
    sandbox = start_sandbox(generate(customers=400, seed=16))
    try:
        entry, env = sandbox.shop_entry("woo")
        database = tmp_path / "shopcrm.db"
        config = tmp_path / "shopcrm.yaml"
        config.write_text(yaml.safe_dump({"database": f"sqlite:///{database}", "shops": [entry]}))
        run_env = {**os.environ, **env}
        command = [str(Path(sys.executable).with_name("shopcrm")), "--config", str(config), "sync"]
        rng = random.Random(7)
        killed = 0
        for _ in range(4):
            served = sandbox.server.stats.requests
            proc = subprocess.Popen(
                command, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            # a random point in the sync's progress (about 20 requests from scratch), not in
            # wall time, so a fast machine cannot finish before the kill
            kill_after = served + rng.randint(2, 12)
            killed += kill_when(
                proc, lambda after=kill_after: sandbox.server.stats.requests >= after
            )
            _, stderr = proc.communicate(timeout=60)
            assert SECRET.encode() not in stderr
        assert killed >= 2, "the sync finished before it could be killed; grow the shop"
        done = subprocess.run(command, env=run_env, capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert SECRET not in done.stdout.decode() + done.stderr.decode()
        store = open_store(f"sqlite:///{database}")
        try:
            _assert_store_equals(store, sandbox)
        finally:
            store.close()
    finally:
        sandbox.stop()
