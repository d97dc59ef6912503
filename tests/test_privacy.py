"""Forget and export (store/privacy.py) on SQLite and PostgreSQL: what goes, what stays, what
a later sync may and may not bring back, and the commands."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlmodel import SQLModel
from typer.testing import CliRunner

from shopcrm.cli.main import app
from shopcrm.config.load import parse_config
from shopcrm.enrich.pipeline import run_enrich
from shopcrm.errors import NoMatch, UsageError
from shopcrm.records import CustomerRecord, OrderLineRecord, OrderRecord
from shopcrm.store.db import Store, open_store
from shopcrm.store.models import (
    Customer,
    CustomerMetrics,
    ForgetLog,
    Order,
    PushLog,
    SegmentMembership,
    Shop,
    SyncRun,
    SyncState,
)
from shopcrm.store.privacy import export_person, forget, parse_selector
from shopcrm.store.upsert import (
    CUSTOMERS,
    ensure_shop,
    save_checkpoint,
    upsert_customers,
    upsert_orders,
)
from shopcrm.sync.lock import shop_lock
from shopcrm.sync.push import plan_push

T0 = datetime(2026, 1, 10, 9, tzinfo=UTC)
NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)
AS_OF = date(2026, 6, 30)
FORGOT_AT = datetime(2026, 7, 1, 13, tzinfo=UTC)


def config(database: str = "sqlite:///unused.db"):
    return parse_config(
        {
            "database": database,
            "shops": [
                {"name": "pos", "platform": "csv", "path": "x", "currency": "EUR"},
                {"name": "web", "platform": "csv", "path": "y", "currency": "EUR"},
            ],
        }
    )


def _order(pid: str, days: int, total: str, customer: str | None, email: str | None):
    created = T0 + timedelta(days=days)
    line = OrderLineRecord(quantity=1, unit_price=Decimal(total), sku="S1", title="Blue mug")
    return OrderRecord(
        pid,
        created,
        created,
        "EUR",
        Decimal(total),
        customer_platform_id=customer,
        email=email,
        lines=(line,),
    )


def seed(store: Store) -> None:
    """Ann: a customer of both shops (emails spelt differently) and a guest in `web`; Bob and
    Cy: customers of `pos` only."""
    with store.session() as s:
        pos = ensure_shop(s, "pos", "csv", now=NOW, currency="EUR")
        web = ensure_shop(s, "web", "csv", now=NOW, currency="EUR")
        upsert_customers(
            s,
            pos,
            [
                CustomerRecord(
                    "c1",
                    T0,
                    email="ann@x.com",
                    first_name="Ann",
                    last_name="Lee",
                    tags=("crm:rfm-loyal", "friend of Ann"),
                ),
                CustomerRecord("c2", T0, email="bob@x.com", first_name="Bob"),
                CustomerRecord("c3", T0, email="cy@x.com", first_name="Cy"),
            ],
            NOW,
        )
        upsert_customers(
            s, web, [CustomerRecord("d1", T0, email=" Ann@X.com ", first_name="Ann")], NOW
        )
        upsert_orders(
            s,
            pos,
            [
                _order("o1", 1, "10.00", "c1", "ann@x.com"),
                _order("o2", 40, "25.50", "c1", "ann@x.com"),
                _order("o3", 5, "7.00", "c2", "bob@x.com"),
                _order("o4", 9, "3.00", None, "bob@x.com"),
                _order("o5", 12, "99.99", "c3", "cy@x.com"),
            ],
            NOW,
        )
        upsert_orders(
            s,
            web,
            [
                _order("w1", 3, "12.00", "d1", "ann@x.com"),
                _order("w2", 60, "8.00", None, "ANN@x.com"),
            ],
            NOW,
        )
        s.add(
            SyncRun(
                shop_id=web,
                kind="sync",
                started_at=NOW,
                outcome="failed",
                error="order w2: bad address for ann@x.com",
            )
        )
        c1 = s.execute(select(Customer.id).where(Customer.platform_id == "c1")).scalar_one()
        s.add(
            PushLog(
                shop_id=pos,
                customer_id=c1,
                customer_platform_id="c1",
                added=["crm:vip"],
                at=NOW,
                outcome="failed",
                error="customer ann@x.com is locked",
            )
        )


def shop_totals(store: Store) -> dict[int, tuple]:
    with store.session() as s:
        rows = s.execute(
            select(
                CustomerMetrics.shop_id,
                func.count(),
                func.sum(CustomerMetrics.orders_count),
                func.sum(CustomerMetrics.total_spent),
            ).group_by(CustomerMetrics.shop_id)
        ).all()
    return {shop: (n, int(orders), Decimal(spent)) for shop, n, orders, spent in rows}


def everything(store: Store) -> str:
    """Every value of every table, as one lower-case text."""
    parts = []
    with store.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            parts += [repr(tuple(r)) for r in conn.execute(table.select())]
    return "\n".join(parts).lower()


def _id(store: Store, platform_id: str) -> int:
    with store.session() as s:
        return s.execute(
            select(Customer.id).where(Customer.platform_id == platform_id)
        ).scalar_one()


def test_forgetting_an_email_erases_the_person_everywhere_and_keeps_the_shop_totals(store):
    seed(store)
    run_enrich(store, config(), as_of=AS_OF, now=NOW)
    before = shop_totals(store)
    ann = [_id(store, "c1"), _id(store, "d1")]
    with store.session() as s:
        held = s.execute(
            select(func.count()).where(SegmentMembership.customer_id.in_(ann))
        ).scalar_one()
    assert held >= 2
    assert "ann@x.com" in everything(store)

    with store.session() as s:
        report = forget(s, parse_selector("ANN@x.com"), FORGOT_AT)
    assert (report.scope, report.shops) == ("person", ["pos", "web"])
    assert (report.customers, report.orders, report.memberships) == (2, 4, held)
    dump = everything(store)
    # email, names, tags, the error texts: gone everywhere (a word: "cannot-lose" is a segment)
    assert not re.search(r"\bann\b", dump)
    assert "bob@x.com" in dump
    assert "cy@x.com" in dump
    with store.session() as s:
        assert not s.execute(
            select(SegmentMembership).where(SegmentMembership.customer_id.in_(ann))
        ).all()
        log = s.execute(select(ForgetLog)).scalar_one()
        assert (log.at, log.scope, log.shops) == (FORGOT_AT, "person", ["pos", "web"])
        assert (log.customers, log.orders, log.persons) == (2, 4, 1)
        assert s.execute(select(PushLog.error)).scalar_one() == "[erased]"
        assert s.execute(select(SyncRun.error)).scalar_one() == "order w2: bad address for [erased]"

    report_after = run_enrich(store, config(), as_of=AS_OF, now=NOW)
    assert shop_totals(store) == before  # revenue, orders and customers counted the same
    with store.session() as s:
        assert not s.execute(
            select(SegmentMembership).where(SegmentMembership.customer_id.in_(ann))
        ).all()
        assert s.execute(select(func.count()).select_from(SegmentMembership)).scalar_one() > 0
        plans = {shop.name: plan_push(s, config(), shop) for shop in config().shops}
    touched = {c.change.customer_platform_id for p in plans.values() for c in p.changes}
    assert not touched & {"c1", "d1"}  # never pushed to, not even to remove crm:rfm-loyal
    assert {"c2", "c3"} <= touched
    assert report_after.shops[0].customers == 3
    again = parse_selector("ann@x.com")
    with (
        pytest.raises(NoMatch, match="nobody in the store matches that email"),
        store.session() as s,
    ):
        forget(s, again, FORGOT_AT)


def test_a_dry_run_counts_and_changes_nothing(store):
    seed(store)
    before = everything(store)
    with store.session() as s:
        report = forget(s, parse_selector("ann@x.com"), FORGOT_AT, dry_run=True)
    assert (report.customers, report.orders, report.dry_run) == (2, 4, True)
    assert everything(store) == before


def test_shop_id_forgets_that_customer_and_its_shops_guest_orders_only(store):
    seed(store)
    run_enrich(store, config(), as_of=AS_OF, now=NOW)
    with store.session() as s:
        report = forget(s, parse_selector("pos:c2"), FORGOT_AT)
    assert (report.scope, report.shops, report.customers, report.orders) == (
        "customer",
        ["pos"],
        1,
        2,
    )
    dump = everything(store)
    assert "bob" not in dump
    assert "ann@x.com" in dump
    with pytest.raises(NoMatch, match="customer c9 of shop pos"), store.session() as s:
        forget(s, parse_selector("pos:c9"), FORGOT_AT)


@pytest.mark.parametrize("bad", ["nobody", "pos:", ":c1", "  "])
def test_a_selector_that_is_neither_email_nor_shop_id_is_a_usage_error(bad):
    with pytest.raises(UsageError):
        parse_selector(bad)


def _stored(store: Store, model, platform_id: str):
    with store.session() as s:
        return s.execute(select(model).where(model.platform_id == platform_id)).scalar_one()


def test_a_resync_keeps_the_data_forgotten_until_the_customer_buys_again(store):
    seed(store)
    with store.session() as s:
        pos = s.execute(select(Shop.id).where(Shop.name == "pos")).scalar_one()
        save_checkpoint(
            s, pos, CUSTOMERS, high_water_mark=FORGOT_AT + timedelta(days=2), cursor=None, now=NOW
        )
        forget(s, parse_selector("ann@x.com"), FORGOT_AT)
    later = FORGOT_AT + timedelta(days=1)
    again = CustomerRecord("c1", later, email="ann@x.com", first_name="Ann", tags=("vip",))
    with store.session() as s:
        upsert_customers(s, pos, [again], later)
        # the same old order, changed upstream; and an old one first seen now
        old = _order("o1", 1, "10.00", "c1", "ann@x.com")
        late = _order("o0", 0, "4.00", "c1", "ann@x.com")
        upsert_orders(s, pos, [OrderRecord(**{**_fields(old), "updated_at": later}), late], later)
    c1 = _stored(store, Customer, "c1")
    assert (c1.email, c1.first_name, c1.tags, c1.redacted, c1.updated_at) == (
        None,
        None,
        [],
        True,
        later,
    )
    assert (_stored(store, Order, "o1").email, _stored(store, Order, "o0").email) == (None, None)
    assert _stored(store, Order, "o0").redacted
    assert not re.search(r"\bann\b", everything(store))

    bought = _order("o9", 200, "30.00", "c1", "ann@x.com")  # created after the forget
    assert bought.created_at > FORGOT_AT
    with store.session() as s:
        upsert_orders(s, pos, [bought], later)
        mark = s.get(SyncState, (pos, CUSTOMERS)).high_water_mark
    c1 = _stored(store, Customer, "c1")
    assert (c1.redacted, c1.redacted_at) == (False, None)
    assert _stored(store, Order, "o9").email == "ann@x.com"
    assert mark == later  # the next sync re-reads the customer record ...
    with store.session() as s:
        upsert_customers(s, pos, [again], later)
    c1 = _stored(store, Customer, "c1")
    assert (c1.email, c1.first_name, c1.tags) == ("ann@x.com", "Ann", ["vip"])  # ... and it is back
    assert _stored(store, Order, "o1").email is None  # the forgotten orders stay forgotten
    run_enrich(store, config(), as_of=date(2026, 8, 1), now=NOW + timedelta(days=40))
    with store.session() as s:
        assert (
            s.execute(
                select(func.count()).where(SegmentMembership.customer_id == c1.id)
            ).scalar_one()
            > 0
        )
    d1 = _stored(store, Customer, "d1")
    assert d1.redacted  # the other shop's account stays forgotten


def _fields(record: OrderRecord) -> dict:
    return {name: getattr(record, name) for name in record.__slots__}


def test_export_holds_identities_orders_metrics_segments_and_push_log(store):
    seed(store)
    run_enrich(store, config(), as_of=AS_OF, now=NOW)
    with store.session() as s:
        data = export_person(s, parse_selector("ann@x.com"))
    json.dumps(data)  # JSON-ready as it is
    assert data["shops"] == ["pos", "web"]
    assert [(i["shop"], i["platform_id"], i["email"]) for i in data["identities"]] == [
        ("pos", "c1", "ann@x.com"),
        ("web", "d1", " Ann@X.com "),
    ]
    c1 = data["identities"][0]
    assert c1["metrics"]["orders_count"] == 2
    assert Decimal(c1["metrics"]["total_spent"]) == Decimal("35.50")
    assert c1["segments"]
    assert all(date.fromisoformat(m["since"]) == AS_OF for m in c1["segments"])
    assert c1["push_log"][0]["error"] == "customer ann@x.com is locked"
    assert sorted(o["platform_id"] for o in data["orders"]) == ["o1", "o2", "w1", "w2"]
    assert data["orders"][0]["lines"][0]["title"] == "Blue mug"
    assert {m["currency"] for m in data["person_metrics"]} == {"EUR"}
    with pytest.raises(NoMatch), store.session() as s:
        export_person(s, parse_selector("zed@x.com"))


# -- the commands ----------------------------------------------------------------------------


@pytest.fixture
def cli_store(tmp_path, monkeypatch):
    database = f"sqlite:///{tmp_path / 'store.db'}"
    path = tmp_path / "shopcrm.yaml"
    path.write_text(
        f"database: {database}\nshops:\n"
        "  - {name: pos, platform: csv, path: x, currency: EUR}\n"
        "  - {name: web, platform: csv, path: y, currency: EUR}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SHOPCRM_CONFIG", str(path))
    st = open_store(database)
    seed(st)
    yield st
    st.close()


def test_cli_export_to_stdout_and_to_a_file(cli_store, tmp_path):
    result = CliRunner().invoke(app, ["export", "person", "ann@x.com"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["shops"] == ["pos", "web"]
    target = tmp_path / "ann.json"
    result = CliRunner().invoke(app, ["export", "person", "pos:c1", "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert [i["platform_id"] for i in json.loads(target.read_text())["identities"]] == ["c1"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_cli_export_and_forget_of_nobody_exit_1(cli_store, tmp_path):
    for args in (
        ["export", "person", "zed@x.com", "--out", str(tmp_path / "z.json")],
        ["forget", "zed@x.com", "--yes"],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1
        assert "nobody in the store matches that email" in result.stderr
    assert not (tmp_path / "z.json").exists()
    result = CliRunner().invoke(app, ["forget", "nobody"])
    assert result.exit_code == 2
    assert "neither an email nor SHOP:ID" in result.stderr


def test_cli_forget_dry_run_confirmation_and_yes(cli_store):
    before = everything(cli_store)
    dry = CliRunner().invoke(app, ["forget", "ann@x.com", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would forget 2 customer account(s), 4 order(s)" in dry.stdout
    declined = CliRunner().invoke(app, ["forget", "ann@x.com"], input="n\n")
    assert declined.exit_code == 1
    assert "nothing forgotten" in declined.stdout
    assert everything(cli_store) == before
    done = CliRunner().invoke(app, ["forget", "ann@x.com"], input="y\n")
    assert done.exit_code == 0, done.output
    assert "forgot 2 customer account(s) and 4 order(s) in pos, web" in done.stdout
    assert not re.search(r"\bann\b", everything(cli_store))
    with cli_store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM forget_log")).scalar_one() == 1


def test_cli_forget_is_refused_while_a_run_holds_one_of_the_shops(cli_store):
    before = everything(cli_store)
    with shop_lock(cli_store, "web"):
        result = CliRunner().invoke(app, ["forget", "ann@x.com", "--yes"])
    assert result.exit_code == 75
    assert "shop web is already being run" in result.stderr
    assert everything(cli_store) == before
