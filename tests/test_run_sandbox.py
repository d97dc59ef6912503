"""Acceptance of run/push/untag against the platform sandboxes over 127.0.0.1 (SQLite store)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from shopcrm.cli.main import app
from shopcrm.config.load import parse_config
from shopcrm.config.schema import AppConfig
from shopcrm.connectors.registry import make_connector
from shopcrm.enrich.pipeline import run_enrich
from shopcrm.sandbox.bigcommerce.app import BigCommerceSandbox
from shopcrm.sandbox.seed import generate
from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.sandbox.woocommerce.app import WooCommerceSandbox
from shopcrm.store.db import Store, open_store
from shopcrm.store.models import Customer, SegmentMembership, Shop, SyncRun
from shopcrm.sync.push import push_shop
from shopcrm.sync.run import run_shops

SANDBOXES = {
    "shopify": ShopifySandbox,
    "woocommerce": WooCommerceSandbox,
    "bigcommerce": BigCommerceSandbox,
}
SMALL_CLV = {"min_buyers": 20, "min_repeat_buyers": 5}
PREFIX = "crm:"


def start(stack: ExitStack, platform: str, seed: int = 3, customers: int = 60) -> Any:
    dataset = generate(customers=customers, seed=seed)
    sandbox = SANDBOXES[platform](dataset).start()
    stack.callback(sandbox.stop)
    return sandbox


def config_for(store_url: str, sandboxes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    entries, env = [], {}
    for name, sandbox in sandboxes.items():
        entry, values = sandbox.shop_entry(name)
        entries.append(entry)
        env.update(values)
    return {"database": store_url, "defaults": {"clv": SMALL_CLV}, "shops": entries}, env


def one_shop(stack: ExitStack, store: Store, platform: str) -> tuple[Any, AppConfig]:
    """A started sandbox of `platform` and a config naming it shop "shop"."""
    sandbox = start(stack, platform)
    data, env = config_for(str(store.engine.url), {"shop": sandbox})
    return sandbox, parse_config(data, env=env)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.close()


def platform_tags(config: AppConfig, shop_name: str) -> dict[str, frozenset[str]]:
    """Every customer's managed tags as the platform has them now (a full scan)."""
    connector = make_connector(config.shop(shop_name), config)
    try:
        return {
            r.platform_id: frozenset(t for t in r.tags if t.startswith(PREFIX))
            for page in connector.customers(None)
            for r in page.records
        }
    finally:
        connector.close()


def merchant_state(platform: str, sandbox: Any) -> dict[Any, Any]:
    """What shopcrm must never change: tags without the prefix, other meta keys, attributes."""
    ds = sandbox.dataset
    if platform == "shopify":
        return {
            c.id: sorted(t for t in c.tags if not t.startswith(PREFIX))
            for c in ds.customers.values()
        }
    if platform == "woocommerce":
        return {
            c.id: [
                (m["key"], m["value"]) for m in c.extra["woo_meta"] if m["key"] != "shopcrm_tags"
            ]
            for c in ds.customers.values()
        }
    names = {a.id: a.name for a in sandbox.attributes.values()}
    return {
        (v.customer_id, names[v.attribute_id]): v.value
        for v in sandbox.values.values()
        if names[v.attribute_id] != "shopcrm_tags"
    }


def desired_tags(store: Store, shop_name: str) -> dict[str, frozenset[str]]:
    with store.session() as session:
        shop_id = session.execute(select(Shop.id).where(Shop.name == shop_name)).scalar_one()
        customers = dict(
            session.execute(
                select(Customer.id, Customer.platform_id).where(Customer.shop_id == shop_id)
            ).all()
        )
        out: dict[str, set[str]] = {pid: set() for pid in customers.values()}
        for cid, segment in session.execute(
            select(SegmentMembership.customer_id, SegmentMembership.segment).where(
                SegmentMembership.shop_id == shop_id
            )
        ):
            out[customers[cid]].add(PREFIX + segment)
    return {pid: frozenset(tags) for pid, tags in out.items()}


@pytest.mark.parametrize("platform", sorted(SANDBOXES))
def test_run_tags_exactly_the_segments_then_untag_restores(
    sqlite_store: Store, platform: str
) -> None:
    with ExitStack() as stack:
        sandbox, config = one_shop(stack, sqlite_store, platform)
        merchant_before = merchant_state(platform, sandbox)
        managed_before = platform_tags(config, "shop")
        assert not any(managed_before.values())
        if platform == "shopify":  # merchant tags that look like ours without the prefix
            assert any("vip" in c.tags for c in sandbox.dataset.customers.values())

        [result] = run_shops(sqlite_store, config, force=True)
        assert result.ok, result.error
        wanted = desired_tags(sqlite_store, "shop")
        assert sum(map(len, wanted.values())) > 0
        assert platform_tags(config, "shop") == wanted
        assert merchant_state(platform, sandbox) == merchant_before

        sandbox.server.stats.reset()
        [again] = run_shops(sqlite_store, config)
        assert again.ok, again.error
        assert sandbox.server.stats.writes == 0
        assert sandbox.server.stats.reads > 0

        untagged = push_shop(sqlite_store, config, config.shops[0], untag=True)
        assert untagged.ok
        assert platform_tags(config, "shop") == managed_before
        assert merchant_state(platform, sandbox) == merchant_before


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_merchant_change_between_pull_and_push_survives(
    sqlite_store: Store, platform: str
) -> None:
    with ExitStack() as stack:
        sandbox, config = one_shop(stack, sqlite_store, platform)
        target = sandbox.dataset.customers[1]

        def enrich_then_merchant_edits(store: Store, cfg: AppConfig, *, shop_name: str) -> Any:
            report = run_enrich(store, cfg, shop_name=shop_name)
            with sandbox.dataset.lock:  # the merchant, in the admin, after our pull
                if platform == "shopify":
                    target.tags = [*target.tags, "added-by-merchant"]
                else:
                    target.extra["woo_meta"].append({"id": 99_999, "key": "note", "value": "hi"})
            return report

        [result] = run_shops(sqlite_store, config, force=True, enrich=enrich_then_merchant_edits)
        assert result.ok, result.error
        assert result.push.applied > 0
        if platform == "shopify":
            assert "added-by-merchant" in target.tags
        else:
            assert {"id": 99_999, "key": "note", "value": "hi"} in target.extra["woo_meta"]
        assert platform_tags(config, "shop") == desired_tags(sqlite_store, "shop")


def invoke(config_path: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--config", str(config_path), *args])


@pytest.fixture
def cli_shops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, dict[str, Any]]]:
    with ExitStack() as stack:
        sandboxes = {
            "bc-a": start(stack, "bigcommerce", seed=5),
            "woo-b": start(stack, "woocommerce", seed=6),
        }
        data, env = config_for("sqlite:///store.db", sandboxes)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        path = tmp_path / "shopcrm.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        yield path, sandboxes


def writes(sandboxes: dict[str, Any]) -> int:
    return sum(s.server.stats.writes for s in sandboxes.values())


def test_cli_limit_refuses_dry_run_writes_nothing_force_proceeds(cli_shops) -> None:
    path, sandboxes = cli_shops
    refused = invoke(path, "run")
    assert refused.exit_code == 1, refused.output
    assert "over the limit of 25%" in refused.output
    assert "--force" in refused.output
    assert writes(sandboxes) == 0

    dry = invoke(path, "push", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would change" in dry.output
    assert "crm:" in dry.output  # the per-segment table
    assert writes(sandboxes) == 0

    forced = invoke(path, "push", "--force")
    assert forced.exit_code == 0, forced.output
    assert writes(sandboxes) > 0
    for sandbox in sandboxes.values():
        sandbox.server.stats.reset()
    again = invoke(path, "run")
    assert again.exit_code == 0, again.output
    assert writes(sandboxes) == 0

    untag = invoke(path, "untag", "--shop", "woo-b")
    assert untag.exit_code == 0, untag.output
    assert sandboxes["woo-b"].server.stats.writes > 0
    for sandbox in sandboxes.values():
        token = next(iter(sandbox.shop_entry("x")[1].values()))
        for result in (refused, dry, forced, again, untag):
            assert token not in result.output


def test_cli_one_shop_down_fails_alone_and_sync_run_says_why(cli_shops) -> None:
    path, sandboxes = cli_shops
    sandboxes["bc-a"].server.faults.fail_all = 500
    result = invoke(path, "run", "--force")
    assert result.exit_code == 1, result.output
    assert "woo-b: run ok" in result.output
    assert "bc-a: run FAILED" in result.output
    store = open_store(f"sqlite:///{path.parent / 'store.db'}")
    try:
        with store.session() as session:
            rows = session.execute(
                select(Shop.name, SyncRun.kind, SyncRun.outcome, SyncRun.error)
                .join(Shop, Shop.id == SyncRun.shop_id)
                .where(SyncRun.kind == "run")
            ).all()
    finally:
        store.close()
    outcome = {name: (o, e) for name, _, o, e in rows}
    assert outcome["woo-b"] == ("success", None)
    assert outcome["bc-a"][0] == "failed"
    assert "pull failed" in outcome["bc-a"][1]
    assert "500" in outcome["bc-a"][1]
