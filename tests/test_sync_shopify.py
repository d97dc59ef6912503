"""`shopcrm sync` against the Shopify sandbox on 127.0.0.1: exactness, incremental cost,
shared timestamps, money, tokens."""

from __future__ import annotations

import logging
import math
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from shopcrm.cli.main import app
from shopcrm.config.load import parse_config
from shopcrm.connectors.shopify.connector import ShopifyConnector
from shopcrm.records import Page, TagChange
from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.sandbox.shopify.render import MoneyRenderer
from shopcrm.store.db import Store, open_store
from shopcrm.store.models import SyncRun, SyncState
from shopcrm.sync.pull import pull_shop
from tests.shopify_sync_fixtures import (
    FAST,
    assert_exact,
    row_counts,
    sandbox_config,
    seeded,
    stored_state,
)
from tests.sync_kill import kill_when


@pytest.fixture
def sandbox_factory() -> Iterator[Any]:
    started: list[ShopifySandbox] = []

    def make(customers: int, years: float = 3.0, **knobs: Any) -> ShopifySandbox:
        sandbox = ShopifySandbox(seeded(customers, years=years), **{**FAST, **knobs}).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


def test_full_sync_is_exact_and_one_percent_changed_costs_requests_in_proportion(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    sandbox = sandbox_factory(5000)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    config, shop, _ = sandbox_config(sandbox, "sqlite://")
    ds = sandbox.dataset
    assert len(ds.orders) >= 15_000

    first = pull_shop(store, config, shop)
    assert first.ok, first.error
    assert_exact(store, sandbox)
    # 15k orders are above the 10k threshold: one bulk operation; 5k customers are paged
    assert any(path.startswith("GET /bulk-results/") for path in sandbox.server.stats.by_path)
    # money is the shop's: orders shown to buyers in another currency still match shopMoney
    converted = [o for o in ds.orders.values() if MoneyRenderer(o).presentment != ds.currency]
    assert len(converted) > 0.15 * len(ds.orders)
    _, stored_orders = stored_state(store, "main")
    for o in converted[:500]:
        stored = stored_orders[f"gid://shopify/Order/{o.id}"]
        assert (stored[3], stored[4], stored[5]) == (ds.currency, o.total, o.refunded)

    changed = ds.mutate(int(0.01 * (len(ds.customers) + len(ds.orders))))
    changed_customers = {i for kind, i in changed if kind == "customer"}
    changed_orders = {i for kind, i in changed if kind == "order"}
    before = sandbox.server.stats.requests
    second = pull_shop(store, config, shop)
    assert second.ok, second.error
    assert_exact(store, sandbox)
    assert (second.customers, second.orders) == (len(changed_customers), len(changed_orders))
    # check, a count per stream, then one request per page of changes
    pages = math.ceil(len(changed_customers) / 250) + math.ceil(len(changed_orders) / 25)
    assert second.requests == 3 + pages
    assert sandbox.server.stats.requests - before == second.requests
    with store.session() as session:
        runs = session.execute(select(SyncRun).order_by(SyncRun.id)).scalars().all()
    assert [(r.outcome, r.customers, r.orders) for r in runs] == [
        ("success", 5000, len(ds.orders)),
        ("success", len(changed_customers), len(changed_orders)),
    ]
    assert runs[1].requests == second.requests
    store.close()


def test_small_full_sync_is_exact_on_every_store_and_idempotent(
    sandbox_factory: Any, store: Store
) -> None:
    sandbox = sandbox_factory(150)
    config, shop, _ = sandbox_config(sandbox, "sqlite://", bulk_threshold=100)
    assert pull_shop(store, config, shop).ok  # customers and orders both above: bulk
    assert_exact(store, sandbox)
    counts = row_counts(store)
    paged_config, _, _ = sandbox_config(sandbox, "sqlite://", bulk_threshold=100_000)
    again = pull_shop(store, paged_config, shop, full=True)  # the paged path, everything again
    assert again.ok, again.error
    assert (again.customers, again.orders) == (150, len(sandbox.dataset.orders))
    assert again.deleted == {"customers": 0, "orders": 0}
    assert row_counts(store) == counts
    assert_exact(store, sandbox)


class DiesAfter:
    """The real connector, killed (as by a crash) after `pages` pages of one stream."""

    def __init__(self, connector: ShopifyConnector, pages: int) -> None:
        self.connector = connector
        self.pages = pages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connector, name)

    def customers(self, since: datetime | None) -> Iterator[Page[Any]]:
        for n, page in enumerate(self.connector.customers(since), start=1):
            yield page
            if n == self.pages:
                raise KeyboardInterrupt("killed mid-stream")


def test_a_bulk_import_sharing_one_second_is_never_skipped_and_never_stalls(
    sandbox_factory: Any, tmp_path: Path
) -> None:
    sandbox = sandbox_factory(1200, years=0.2)  # few orders: this test is about customers
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    loader, shop, _ = sandbox_config(sandbox, "sqlite://", bulk_threshold=0)
    assert pull_shop(store, loader, shop).ok
    config, _, _ = sandbox_config(sandbox, "sqlite://")
    ds = sandbox.dataset
    imported_at = datetime.now(UTC).replace(microsecond=0)
    ds.touch_customers(sorted(ds.customers)[:1000], imported_at)  # 4 pages of one timestamp

    crashing = DiesAfter(ShopifyConnector(shop, config), pages=2)
    with pytest.raises(KeyboardInterrupt):
        pull_shop(store, config, shop, connector=crashing)  # type: ignore[arg-type]
    crashing.connector.close()
    with store.session() as session:
        state = session.get(SyncState, (1, "customers"))
        assert state is not None
        mark = state.high_water_mark
    assert mark == imported_at  # every record updated before it was stored; not past it

    resumed = pull_shop(store, config, shop)
    assert resumed.ok, resumed.error
    assert resumed.customers >= 1000  # the whole shared second, re-read from the overlap
    assert_exact(store, sandbox)
    with store.session() as session:
        state = session.get(SyncState, (1, "customers"))
        assert state is not None
        assert state.high_water_mark is not None
        assert state.high_water_mark > imported_at  # moved on: no stall
    store.close()


def test_a_token_that_expires_mid_sync_is_renewed(sandbox_factory: Any, tmp_path: Path) -> None:
    sandbox = sandbox_factory(300, years=0.2)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    config, shop, _ = sandbox_config(sandbox, "sqlite://", client_credentials=True)

    class ExpireOnFirstPage:
        def page(self, shop: str, stream: str, records: int, total: int) -> None:
            if total == records and stream == "customers":
                sandbox.expire_issued_tokens()

    result = pull_shop(store, config, shop, progress=ExpireOnFirstPage())
    assert result.ok, result.error
    assert sandbox.server.stats.by_path["POST /admin/oauth/access_token"] == 2
    assert sandbox.server.stats.statuses[401] == 1
    assert_exact(store, sandbox)
    store.close()


def test_revoked_token_fails_the_sync_with_exit_1_and_no_token_in_output(
    sandbox_factory: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox = sandbox_factory(50)
    token = sandbox.admin_token()
    database = f"sqlite:///{tmp_path / 'store.db'}"
    entry, env = sandbox.shop_entry("main")
    path = tmp_path / "shopcrm.yaml"
    path.write_text(yaml.safe_dump({"database": database, "shops": [entry]}), encoding="utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sandbox.revoke_tokens()
    caplog.set_level(logging.DEBUG)

    result = CliRunner().invoke(app, ["--config", str(path), "--log-level", "debug", "sync"])

    assert result.exit_code == 1, result.output
    assert "authentication failed for shop main" in result.output
    assert token not in result.output
    assert token not in caplog.text
    with open_store(database).session() as session:
        run = session.execute(select(SyncRun)).scalar_one()
        assert run.outcome == "failed"
        assert token not in (run.error or "")


def stored_records(store_file: Path) -> int:
    """Customers plus orders committed so far (0 before the schema exists), read-only."""
    if not store_file.exists():
        return 0
    with closing(sqlite3.connect(f"file:{store_file}?mode=ro", uri=True, timeout=5)) as conn:
        try:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM customer) + (SELECT count(*) FROM orders)"
            ).fetchone()
        except sqlite3.OperationalError:  # tables not made yet
            return 0
    return int(row[0])


def test_sync_killed_at_random_points_resumes_exactly(sandbox_factory: Any, tmp_path: Path) -> None:
    """`shopcrm sync` as a subprocess, SIGKILLed mid-run again and again, then run to the end."""
    sandbox = sandbox_factory(800, years=1.0)
    database = f"sqlite:///{tmp_path / 'store.db'}"
    entry, env = sandbox.shop_entry("main")
    path = tmp_path / "shopcrm.yaml"
    config = {
        "database": database,
        "shops": [entry],
        "defaults": {"sync": {"bulk_threshold": 100_000}},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    command = [str(Path(sys.executable).with_name("shopcrm")), "--config", str(path), "sync"]
    environment = {**os.environ, **env}
    rng = random.Random(20261123)
    store_file = tmp_path / "store.db"
    total = len(sandbox.dataset.customers) + len(sandbox.dataset.orders)
    killed = 0
    for _ in range(5):
        # kill once a random share of what is left has been committed: a point in the sync's
        # progress, not in wall time, so a fast machine cannot finish first
        before = stored_records(store_file)
        target = before + rng.randint(1, max(1, (total - before) * 2 // 3))
        process = subprocess.Popen(
            command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        killed += kill_when(
            process, lambda goal=target: stored_records(store_file) >= goal, timeout=120
        )
        if killed and rng.random() < 0.5:
            sandbox.dataset.mutate(10)  # the shop moves on between attempts
    assert killed >= 3, "the sync finished before it could be killed; make the shop bigger"
    final = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    store = open_store(database)
    assert_exact(store, sandbox)
    assert row_counts(store)[:2] == (len(sandbox.dataset.customers), len(sandbox.dataset.orders))
    store.close()


def test_tags_change_only_the_managed_tags_given(sandbox_factory: Any) -> None:
    sandbox = sandbox_factory(120, years=0.2)
    config, shop, _ = sandbox_config(sandbox, "sqlite://")
    ds = sandbox.dataset
    ids = sorted(ds.customers)[:100]
    ds.customers[ids[0]].tags = ["vip", "crm:old"]
    ds.customers[ids[1]].tags = ["wholesale"]
    changes = [
        TagChange(f"gid://shopify/Customer/{cid}", add=frozenset({"crm:loyal"})) for cid in ids
    ]
    changes[0] = TagChange(
        changes[0].customer_platform_id,
        add=frozenset({"crm:loyal"}),
        remove=frozenset({"crm:old"}),
    )
    changes.insert(5, TagChange("gid://shopify/Customer/999999", add=frozenset({"crm:loyal"})))
    ds.customers[ids[1]].tags.append("added-by-merchant-after-our-pull")
    connector = ShopifyConnector(shop, config)
    before = sandbox.server.stats.requests
    results = list(connector.apply(changes))
    connector.close()

    assert [r.customer_platform_id for r in results] == [c.customer_platform_id for c in changes]
    failed = [r for r in results if not r.ok]
    assert [r.customer_platform_id for r in failed] == ["gid://shopify/Customer/999999"]
    assert sorted(ds.customers[ids[0]].tags) == ["crm:loyal", "vip"]
    assert sorted(ds.customers[ids[1]].tags) == [
        "added-by-merchant-after-our-pull",
        "crm:loyal",
        "wholesale",
    ]
    assert all("crm:loyal" in ds.customers[cid].tags for cid in ids)
    assert sandbox.server.stats.requests - before == 2  # 102 mutations in documents of 75


@pytest.mark.parametrize(("pinned", "warnings"), [("2024-01", 1), ("2026-10", 0)])
def test_a_connector_pinned_to_an_old_version_syncs_and_warns_once(
    sandbox_factory: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    pinned: str,
    warnings: int,
) -> None:
    sandbox = sandbox_factory(300)
    entry, env = sandbox.shop_entry("main")
    shops = [{**entry, "api_version": pinned}]
    config = parse_config({"database": "sqlite://", "shops": shops}, env=env)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with caplog.at_level(logging.WARNING, logger="shopcrm.connectors.shopify.connector"):
        result = pull_shop(store, config, config.shops[0])
    assert result.ok, result.error
    assert_exact(store, sandbox)
    assert sandbox.server.stats.by_path[f"POST /admin/api/{pinned}/graphql.json"] > 2
    said = [r.getMessage() for r in caplog.records if "Shopify answered as" in r.getMessage()]
    assert len(said) == warnings
    if warnings:
        assert said[0] == (
            "shop main: asked for Admin API version 2024-01, Shopify answered as 2025-10; "
            "set api_version to 2025-10 or newer"
        )
