"""The whole enrichment path with a fitted model, the CLI commands, and the schema migration."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlmodel import SQLModel
from typer.testing import CliRunner

from shopcrm.cli.main import app
from shopcrm.config.load import parse_config
from shopcrm.enrich import pipeline
from shopcrm.enrich.pipeline import STAGES, enrichment_lock, model_shop, run_enrich
from shopcrm.errors import LockHeld
from shopcrm.records import CustomerRecord, OrderRecord
from shopcrm.store.db import open_store
from shopcrm.store.models import (
    Customer,
    CustomerMetrics,
    Order,
    Person,
    SegmentMembership,
)
from shopcrm.store.upsert import ensure_shop, upsert_customers, upsert_orders

AS_OF = date(2026, 6, 30)
NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)
CLV = {
    "min_buyers": 100,
    "min_repeat_buyers": 20,
    "min_history_days": 180,
    "max_days_since_last_order": 30,
}


def config_for(database: str = "sqlite:///unused.db"):
    return parse_config(
        {
            "database": database,
            "defaults": {"clv": CLV},
            "shops": [{"name": "pos", "platform": "csv", "path": "x", "currency": "EUR"}],
        }
    )


def seed(store, customers: int = 400, seed: int = 3) -> None:
    """BG/NBD-like buyers: a first purchase in the last two years, repeats until they drop out."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 7, 1, 9, tzinfo=UTC)
    end = datetime(2026, 6, 30, 20, tzinfo=UTC)
    span = (end - start).days
    orders = []
    for i in range(customers):
        rate, drop = rng.gamma(1.0, 1 / 40), rng.beta(2.0, 5.0)
        t = float(rng.uniform(0, span))
        n = 0
        while t <= span:
            created = start + timedelta(days=t)
            total = Decimal(str(round(float(rng.gamma(4.0, 12.0)), 2)))
            orders.append(
                OrderRecord(f"o{i}-{n}", created, NOW, "EUR", total, customer_platform_id=f"c{i}")
            )
            n += 1
            if n > 1 and rng.random() < drop:
                break
            t += float(rng.exponential(1 / rate))
    with store.session() as s:
        shop = ensure_shop(s, "pos", "csv", now=NOW, currency="EUR")
        upsert_customers(
            s,
            shop,
            [CustomerRecord(f"c{i}", NOW, email=f"c{i}@x.com") for i in range(customers)],
            NOW,
        )
        upsert_orders(s, shop, orders, NOW)


def test_fitted_shop_gets_clv_and_model_segments(store):
    seed(store)
    report = run_enrich(store, config_for(), as_of=AS_OF, now=NOW)
    shop = report.shops[0]
    assert shop.model_status == "fitted", shop.model_message
    with store.session() as s:
        rows = s.execute(select(CustomerMetrics)).scalars().all()
        vip = (
            s.execute(
                select(SegmentMembership.customer_id).where(SegmentMembership.segment == "vip")
            )
            .scalars()
            .all()
        )
    buyers = [m for m in rows if m.orders_count > 0]
    assert len(buyers) == shop.buyers == 400
    for m in buyers:
        assert 0 <= m.p_alive <= 1
        assert m.expected_purchases >= 0
        assert isinstance(m.predicted_clv, Decimal)
        assert m.predicted_clv >= 0
        assert isinstance(m.expected_order_value, Decimal)
        assert m.expected_order_value > 0
    clv = sorted((m.predicted_clv, m.customer_id) for m in buyers)
    assert len(vip) == 40  # top decile of 400
    assert min(v for v, c in clv if c in set(vip)) >= max(v for v, c in clv if c not in set(vip))
    assert shop.segments["at-risk"] == sum(
        1 for m in buyers if m.p_alive < 0.3 and m.orders_count >= 2
    )


def test_model_shop_reports_parameters(store):
    seed(store)
    as_of, model = model_shop(store, config_for(), "pos", as_of=AS_OF, now=NOW)
    assert as_of == AS_OF
    assert model.fitted
    assert model.customers == 400
    assert model.bgnbd is not None
    assert model.gamma_gamma is not None
    assert model.log_likelihood["bgnbd"] < 0


def test_orders_after_as_of_are_ignored(store):
    seed(store)
    cutoff = datetime(2025, 7, 1, tzinfo=UTC)  # the shop is on UTC: as of 2025-06-30
    with store.session() as s:
        orders = s.execute(select(Order.customer_platform_id, Order.created_at, Order.total)).all()
    expected = {c for c, created, _ in orders if created < cutoff}
    spent = {
        c: sum(t for cc, created, t in orders if cc == c and created < cutoff) for c in expected
    }
    early = run_enrich(store, config_for(), as_of=date(2025, 6, 30), now=NOW).shops[0]
    assert early.buyers == len(expected) < 400
    with store.session() as s:
        rows = s.execute(
            select(Customer.platform_id, CustomerMetrics.total_spent).join(CustomerMetrics)
        ).all()
    assert {c: t for c, t in rows if t} == spent


def test_schema_matches_models(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata
        )
    assert diff == []


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    database = f"sqlite:///{tmp_path / 'store.db'}"
    config = tmp_path / "shopcrm.yaml"
    config.write_text(
        "database: " + database + "\n"
        "defaults:\n  clv: " + json.dumps(CLV) + "\n"
        "shops:\n  - {name: pos, platform: csv, path: x, currency: EUR}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SHOPCRM_CONFIG", str(config))
    store = open_store(database)
    yield store
    store.close()


def test_cli_enrich_json_and_text(cli_env):
    seed(cli_env, customers=150)
    result = CliRunner().invoke(app, ["enrich", "--as-of", "2026-06-30", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["shops"][0]["shop"] == "pos"
    assert data["shops"][0]["customers"] == 150
    assert set(data["timings"]) == set(STAGES)
    text = CliRunner().invoke(app, ["enrich", "--shop", "pos", "--as-of", "2026-06-30"])
    assert text.exit_code == 0
    assert "pos (as of 2026-06-30, EUR): 150 customers" in text.stdout


def test_cli_model_prints_parameters(cli_env):
    seed(cli_env)
    result = CliRunner().invoke(app, ["model", "--shop", "pos", "--as-of", "2026-06-30", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["bgnbd"]) == {"r", "alpha", "a", "b"}
    assert set(data["gamma_gamma"]) == {"p", "q", "v"}
    assert data["customers"] == 400
    assert data["repeat_customers"] > 0
    assert data["fit_seconds"] > 0
    text = CliRunner().invoke(app, ["model", "--shop", "pos", "--as-of", "2026-06-30"])
    assert "BG/NBD       r " in text.stdout
    assert "log-likelihood" in text.stdout


def test_cli_model_with_too_little_data_exits_1(cli_env):
    seed(cli_env, customers=30)
    result = CliRunner().invoke(app, ["model", "--shop", "pos", "--as-of", "2026-06-30"])
    assert result.exit_code == 1
    assert (
        "insufficient-data: not enough data for a model: 30 buyers, needs at least 100"
        in result.stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enrich", "--shop", "nope"], "no shop named 'nope'"),
        (["enrich", "--as-of", "yesterday"], "is not a date"),
        (["model", "--shop", "nope"], "no shop named 'nope'"),
    ],
)
def test_cli_usage_errors(cli_env, args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr


def _metrics(store) -> list[tuple]:
    with store.session() as s:
        rows = s.execute(
            select(
                CustomerMetrics.customer_id,
                CustomerMetrics.orders_count,
                CustomerMetrics.total_spent,
                CustomerMetrics.predicted_clv,
                CustomerMetrics.rfm_segment,
            ).order_by(CustomerMetrics.customer_id)
        )
        return [tuple(r) for r in rows]


def test_an_enrichment_waits_for_the_one_running_then_runs(store):
    seed(store, customers=120)
    with ThreadPoolExecutor(1) as pool, enrichment_lock(store, 0):
        waiting = pool.submit(run_enrich, store, config_for(), as_of=AS_OF, now=NOW, lock_wait_s=30)
        time.sleep(0.5)
        assert not waiting.done()
        assert _metrics(store) == []  # not even identity ran: it waits before its snapshot
    report = waiting.result(timeout=60)
    assert report.shops[0].customers == 120
    assert len(_metrics(store)) == 120


def test_an_enrichment_gives_up_after_its_wait_and_writes_nothing(store):
    seed(store, customers=50)
    with enrichment_lock(store, 0), pytest.raises(LockHeld, match="another enrichment") as err:
        run_enrich(store, config_for(), as_of=AS_OF, now=NOW, lock_wait_s=0.3)
    assert "still running after 0.3 s" in str(err.value)
    assert _metrics(store) == []
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 0


def test_concurrent_enrichments_both_finish_with_the_results_of_one(store):
    seed(store, customers=150)
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(run_enrich, store, config_for(), as_of=AS_OF, now=NOW) for _ in "ab"]
        reports = [r.result(timeout=120) for r in runs]
    assert [r.shops[0].customers for r in reports] == [150, 150]
    together = _metrics(store)
    run_enrich(store, config_for(), as_of=AS_OF, now=NOW)
    assert _metrics(store) == together
    assert len(together) == 150


def test_cli_enrich_exits_75_while_another_enrichment_holds_the_store(cli_env, monkeypatch):
    seed(cli_env, customers=30)
    monkeypatch.setattr(pipeline, "ENRICH_LOCK_WAIT_S", 0.2)
    with enrichment_lock(cli_env, 0):
        result = CliRunner().invoke(app, ["enrich", "--as-of", "2026-06-30"])
    assert result.exit_code == 75
    assert "another enrichment of this store was still running after 0.2 s" in result.stderr
