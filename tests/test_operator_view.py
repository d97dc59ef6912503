"""`status`, `customer` and `export customers` against a store filled by the sandboxes.

Two platform sandboxes (WooCommerce, BigCommerce) and a POS export are run twice through
`run_shops`, on SQLite and PostgreSQL; the commands then run through the real CLI and every
figure they print is checked against the store, computed here independently.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from shopcrm.cli.main import app
from shopcrm.config.load import load_config
from shopcrm.config.schema import AppConfig
from shopcrm.sandbox.bigcommerce.app import BigCommerceSandbox
from shopcrm.sandbox.seed import generate
from shopcrm.sandbox.woocommerce.app import WooCommerceSandbox
from shopcrm.store.db import Store
from shopcrm.store.models import Customer, CustomerMetrics, Order, SegmentMembership, Shop
from shopcrm.sync.lock import shop_lock
from shopcrm.sync.run import run_shops
from shopcrm.views.export import Selection, customer_batches, write_export
from shopcrm.views.status import shop_statuses
from tests.csv_fixtures import write_export as write_csv

SMALL_CLV = {"min_buyers": 20, "min_repeat_buyers": 5}
POS_HEADER = "order_id,customer_id,email,created_at,total,currency,first_name,last_name"


def _pos_rows(first: int, count: int) -> list[str]:
    return [
        f"P{n},C{n % 7},pos{n % 7}@example.test,2026-0{1 + n % 9}-1{n % 10}T10:00:00Z,"
        f"{10 + n}.25,EUR,Pos,Buyer{n % 7}"
        for n in range(first, first + count)
    ]


@dataclass
class Filled:
    store: Store
    config: AppConfig
    config_path: Path
    env: dict[str, str]
    pos_file: Path
    woo: WooCommerceSandbox

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(app, ["--config", str(self.config_path), *args], env=self.env)


@pytest.fixture
def filled(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Filled]:
    with ExitStack() as stack:
        woo = WooCommerceSandbox(generate(customers=60, seed=5)).start()
        stack.callback(woo.stop)
        big = BigCommerceSandbox(generate(customers=60, seed=6)).start()
        stack.callback(big.stop)
        pos_file = write_csv(
            tmp_path / "pos" / "sales.csv", "\n".join([POS_HEADER, *_pos_rows(0, 20)])
        )
        env: dict[str, str] = {}
        shops = []
        for name, sandbox in (("woo", woo), ("big", big)):
            entry, values = sandbox.shop_entry(name)
            shops.append(entry)
            env.update(values)
        shops.append({"name": "pos", "platform": "csv", "path": str(pos_file), "currency": "EUR"})
        data = {
            "database": store.engine.url.render_as_string(hide_password=False),
            "defaults": {"clv": SMALL_CLV},
            "shops": shops,
            "segments": [{"name": "nobody", "rule": "orders_count > 100000"}],
        }
        config_path = tmp_path / "shopcrm.yaml"
        config_path.write_text(yaml.safe_dump(data), encoding="utf-8")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        config = load_config(config_path)
        for _ in range(2):
            results = run_shops(store, config, force=True)
            assert all(r.ok for r in results), [r.error for r in results]
        yield Filled(store, config, config_path, env, pos_file, woo)


def _live_counts(store: Store, shop: str) -> dict[str, int]:
    with store.session() as session:
        shop_id = session.execute(select(Shop.id).where(Shop.name == shop)).scalar_one()
        return {
            "customers": session.execute(
                select(func.count()).where(Customer.shop_id == shop_id, ~Customer.deleted)
            ).scalar_one(),
            "orders": session.execute(
                select(func.count()).where(Order.shop_id == shop_id, ~Order.deleted)
            ).scalar_one(),
        }


def _sizes(store: Store, shop: str) -> dict[str, int]:
    with store.session() as session:
        return dict(
            session.execute(
                select(SegmentMembership.segment, func.count())
                .join(Shop, Shop.id == SegmentMembership.shop_id)
                .where(Shop.name == shop)
                .group_by(SegmentMembership.segment)
            ).all()
        )


# --- status ---------------------------------------------------------------------------------


def test_status_json_counts_and_sizes_equal_the_store(filled: Filled) -> None:
    result = filled.cli("status", "--json")
    assert result.exit_code == 0, result.output
    shops = {s["name"]: s for s in json.loads(result.output)["shops"]}
    assert set(shops) == {"woo", "big", "pos"}
    for name, shop in shops.items():
        live = _live_counts(filled.store, name)
        assert {k: v["now"] for k, v in shop["counts"].items()} == live
        assert {k: v["change"] for k, v in shop["counts"].items()} == {"customers": 0, "orders": 0}
        assert shop["last_run"]["kind"] == "run"
        assert shop["last_run"]["outcome"] == "success"
        assert {k: v["now"] for k, v in shop["segments"].items() if v["now"]} == _sizes(
            filled.store, name
        )
        assert set(shop["streams"]) == {"customers", "orders"}
        assert shop["locked"] is False
        assert shop["next_run_at"] is not None
    assert shops["woo"]["last_push"]["kind"] == "run"


def test_status_shows_the_change_since_the_previous_run(filled: Filled) -> None:
    write_csv(filled.pos_file, "\n".join([POS_HEADER, *_pos_rows(0, 20), *_pos_rows(100, 3)]))
    filled.pos_file.touch()
    assert all(r.ok for r in run_shops(filled.store, filled.config, "pos", force=True))
    (pos,) = shop_statuses(filled.store, filled.config, "pos")
    assert pos.counts["orders"].change == 3
    assert pos.counts["orders"].now == _live_counts(filled.store, "pos")["orders"]


def test_status_text_names_every_shop_and_its_last_run(filled: Filled) -> None:
    result = filled.cli("status")
    assert result.exit_code == 0, result.output
    for name in ("woo", "big", "pos"):
        assert name in result.output
    assert "last run:" in result.output
    assert "next run:" in result.output


def test_status_check_is_quiet_when_healthy_and_fails_on_a_failed_run(filled: Filled) -> None:
    healthy = filled.cli("status", "--check")
    assert healthy.exit_code == 0, healthy.output
    assert "OK: 3 shop(s) healthy" in healthy.output
    filled.woo.server.faults.fail_next = [401] * 20  # every request of the next run refused
    results = run_shops(filled.store, filled.config, "woo", force=True)
    assert not results[0].ok
    failing = filled.cli("status", "--check")
    assert failing.exit_code == 1
    lines = failing.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("shop woo: last run failed at ")


def test_status_check_flags_data_older_than_twice_the_schedule(filled: Filled) -> None:
    (pos,) = shop_statuses(filled.store, filled.config, "pos")
    assert pos.problems == []
    later = pos.streams["orders"].last_success_at + timedelta(hours=2, minutes=1)  # every 1h
    (stale,) = shop_statuses(filled.store, filled.config, "pos", now=later)
    assert stale.problems == [
        "shop pos: data is 2.0 h old, more than twice its schedule (every 1h)"
    ]


def test_status_shows_a_shop_whose_lock_is_held(filled: Filled) -> None:
    with shop_lock(filled.store, "big"):
        statuses = {s.name: s for s in shop_statuses(filled.store, filled.config)}
    assert statuses["big"].locked is True
    assert statuses["woo"].locked is False


def test_status_of_an_unknown_shop_is_a_usage_error(filled: Filled) -> None:
    result = filled.cli("status", "--shop", "nope")
    assert result.exit_code == 2
    assert "no shop named 'nope'" in result.output


# --- customer -------------------------------------------------------------------------------


def _a_buyer(store: Store, shop: str) -> Customer:
    with store.session() as session:
        return session.execute(
            select(Customer)
            .join(Shop, Shop.id == Customer.shop_id)
            .join(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
            .where(Shop.name == shop, CustomerMetrics.orders_count >= 2)
            .order_by(Customer.id)
            .limit(1)
        ).scalar_one()


def test_customer_by_email_shows_the_orders_and_metrics_of_the_store(filled: Filled) -> None:
    buyer = _a_buyer(filled.store, "woo")
    result = filled.cli("customer", "--json", buyer.email or "")
    assert result.exit_code == 0, result.output
    profile = json.loads(result.output)
    with filled.store.session() as session:
        orders = session.execute(
            select(Order.platform_id, Order.total).where(
                (Order.customer_id == buyer.id) | (Order.person_id == buyer.person_id)
            )
        ).all()
        metrics = session.get(CustomerMetrics, buyer.id)
        segments = dict(
            session.execute(
                select(SegmentMembership.segment, SegmentMembership.since).where(
                    SegmentMembership.customer_id == buyer.id
                )
            ).all()
        )
    assert sorted(o["platform_id"] for o in profile["orders"]) == sorted(o[0] for o in orders)
    assert sum(float(o["total"]) for o in profile["orders"]) == pytest.approx(
        float(sum(o[1] for o in orders))
    )
    (identity,) = [i for i in profile["identities"] if i["customer_id"] == buyer.id]
    assert identity["metrics"]["total_spent"] == str(metrics.total_spent)
    assert identity["metrics"]["rfm_segment"] == metrics.rfm_segment
    assert identity["segments"] == {k: v.isoformat() for k, v in segments.items()}
    assert identity["pushes"], "the run pushed tags to this buyer"


def test_customer_by_shop_and_id_and_the_rich_view(filled: Filled) -> None:
    buyer = _a_buyer(filled.store, "big")
    result = filled.cli("customer", f"big:{buyer.platform_id}")
    assert result.exit_code == 0, result.output
    assert f"big (bigcommerce) {buyer.platform_id}" in result.output
    assert "RFM group" in result.output
    assert "orders (" in result.output


def test_customer_nobody_and_several(filled: Filled) -> None:
    nobody = filled.cli("customer", "no-such-person@nowhere.test")
    assert nobody.exit_code == 1
    assert "no customer matches" in nobody.output
    several = filled.cli("customer", "@example.test")
    assert several.exit_code == 2
    assert "customers match '@example.test'" in several.output
    assert "more than 20" in several.output


# --- export ---------------------------------------------------------------------------------


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_customers_csv_is_every_live_customer_with_exact_metrics(filled: Filled) -> None:
    out = filled.config_path.parent / "all.csv"
    result = filled.cli("export", "customers", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = _csv_rows(out.read_text(encoding="utf-8"))
    live = sum(_live_counts(filled.store, s)["customers"] for s in ("woo", "big", "pos"))
    assert len(rows) == live
    with filled.store.session() as session:
        spent = {
            (shop, pid): total
            for shop, pid, total in session.execute(
                select(Shop.name, Customer.platform_id, CustomerMetrics.total_spent)
                .join(Customer, Customer.id == CustomerMetrics.customer_id)
                .join(Shop, Shop.id == Customer.shop_id)
            )
        }
    for row in rows:
        key = (row["shop"], row["customer_id"])
        assert row["total_spent"] == (format(spent[key], "f") if key in spent else "")


def test_export_by_segment_and_shop_in_jsonl(filled: Filled) -> None:
    sizes = _sizes(filled.store, "woo")
    one, other = sorted(sizes, key=sizes.__getitem__)[-2:]
    args = ["--segment", one, "--segment", other, "--shop", "woo", "--format", "jsonl"]
    result = filled.cli("export", "customers", *args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    with filled.store.session() as session:
        members = session.execute(
            select(func.count(func.distinct(SegmentMembership.customer_id)))
            .join(Shop, Shop.id == SegmentMembership.shop_id)
            .where(Shop.name == "woo", SegmentMembership.segment.in_([one, other]))
        ).scalar_one()
    assert len(rows) == members >= max(sizes[one], sizes[other])
    assert all({one, other} & set(r["segments"].split(";")) for r in rows)
    assert {r["shop"] for r in rows} == {"woo"}


def test_export_parquet_keeps_money_exact(filled: Filled) -> None:
    out = filled.config_path.parent / "all.parquet"
    result = filled.cli("export", "customers", "--format", "parquet", "--out", str(out))
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert str(table.schema.field("total_spent").type) == "decimal128(20, 6)"
    with filled.store.session() as session:
        total = session.execute(select(func.sum(CustomerMetrics.total_spent))).scalar_one()
    assert sum(v for v in table.column("total_spent").to_pylist() if v is not None) == total


def test_export_neutralises_spreadsheet_formulas(filled: Filled) -> None:
    buyer = _a_buyer(filled.store, "pos")
    with filled.store.session() as session:
        session.execute(
            update(Customer)
            .where(Customer.id == buyer.id)
            .values(first_name='=HYPERLINK("http://x.test")', last_name="@SUM(A1)")
        )
    result = filled.cli("export", "customers", "--shop", "pos")
    assert result.exit_code == 0, result.output
    (row,) = [r for r in _csv_rows(result.output) if r["customer_id"] == buyer.platform_id]
    assert row["first_name"] == '\'=HYPERLINK("http://x.test")'
    assert row["last_name"] == "'@SUM(A1)"


def test_export_bad_input_writes_nothing(filled: Filled) -> None:
    folder = filled.config_path.parent
    unknown = filled.cli("export", "customers", "--segment", "nope", "--out", str(folder / "a.csv"))
    assert unknown.exit_code == 2
    assert "unknown segment 'nope'" in unknown.output
    empty = filled.cli("export", "customers", "--segment", "nobody", "--out", str(folder / "b.csv"))
    assert empty.exit_code == 1
    assert "no customers to export" in empty.output
    unwritable = filled.cli("export", "customers", "--out", str(folder / "missing" / "c.csv"))
    assert unwritable.exit_code == 2
    assert "cannot write" in unwritable.output
    assert not any(p.suffix in (".csv", ".part") for p in folder.iterdir())


def test_an_interrupted_export_leaves_no_file(filled: Filled) -> None:
    target = filled.config_path.parent / "interrupted.csv"

    def batches() -> Iterator[list[Any]]:
        yield from customer_batches(filled.store, Selection())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_export(batches(), "csv", target)
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".interrupted")] == []


def test_the_operator_commands_change_nothing_in_the_store(filled: Filled) -> None:
    def snapshot() -> dict[str, Any]:
        with filled.store.session() as session:
            return {
                model.__name__: session.execute(select(func.count()).select_from(model)).scalar()
                for model in (Customer, Order, CustomerMetrics, SegmentMembership)
            } | {"spent": session.execute(select(func.sum(CustomerMetrics.total_spent))).scalar()}

    before = snapshot()
    buyer = _a_buyer(filled.store, "woo")
    for args in (
        ("status",),
        ("status", "--check"),
        ("customer", buyer.email or ""),
        ("export", "customers", "--format", "jsonl"),
    ):
        assert filled.cli(*args).exit_code == 0
    assert snapshot() == before


def test_export_metrics_writes_every_snapshot_and_the_rollup(filled: Filled) -> None:
    from shopcrm.store.history import metric_snapshots

    snapshots = metric_snapshots(filled.store, None)
    assert snapshots, "the runs' enrichments stored snapshots"
    result = filled.cli("export", "metrics", "--rollup", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    own = [r for r in rows if r["shop"] != "all"]
    assert len(own) == len(snapshots)
    by_key = {(s.shop, s.currency, s.period_end.isoformat()): s for s in snapshots}
    for row in own:
        snap = by_key[(row["shop"], row["currency"], row["period_end"])]
        assert row["net_revenue"] == format(snap.net_revenue, "f")
        assert row["orders"] == snap.orders
    eur_month = {r["period_end"] for r in own if r["currency"] == "EUR"}
    rolled = [r for r in rows if r["shop"] == "all" and r["currency"] == "EUR"]
    assert {r["period_end"] for r in rolled} == eur_month
    bad = filled.cli("export", "metrics", "--period", "year")
    assert bad.exit_code == 2
