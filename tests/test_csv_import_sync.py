"""CSV shops end to end: pull_shop into a real store (SQLite and PostgreSQL) and `shopcrm sync`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlmodel import select
from typer.testing import CliRunner

from shopcrm.cli.main import app
from shopcrm.store.db import Store
from shopcrm.store.models import SyncRun
from shopcrm.sync.pull import pull_shop
from tests.csv_fixtures import EXPORTED, HEADER, csv_config, dump, write_export

# Past any ctime the test files get, so an incremental sync sees them as old.
LATER = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
DAY1 = f"""{HEADER}
1001,C1,anna@example.test,2026-02-01T10:15:00,30.00,EUR,Anna,Smith,MUG,2,10
1001,C1,anna@example.test,2026-02-01T10:15:00,30.00,EUR,Anna,Smith,TEA,1,10
1002,,guest@example.test,2026-02-02T11:00:00,20,EUR,,,,,
"""
DAY2 = f"""{HEADER}
2001,C1,anna@example.test,2026-02-05T09:00:00,12.5,EUR,Anna,Smith,,,
2002,C2,,2026-02-05T09:30:00,7,EUR,Ben,,,,
"""
DAY1_ORDERS = [
    ("1001", "C1", "anna@example.test", datetime(2026, 2, 1, 10, 15, tzinfo=UTC), EXPORTED,
     "EUR", Decimal("30.00"), Decimal(0), None, None, False),
    ("1002", None, "guest@example.test", datetime(2026, 2, 2, 11, tzinfo=UTC), EXPORTED,
     "EUR", Decimal(20), Decimal(0), None, None, False),
]  # fmt: skip


def sync(store: Store, path: Path, *, at: datetime | None = None, full: bool = False, **shop):
    config = csv_config(path, **shop)
    now = (lambda: at) if at else (lambda: datetime.now(UTC))
    return pull_shop(store, config, config.shops[0], full=full, now=now)


def test_a_folder_imports_into_the_store_exactly(store: Store, tmp_path: Path) -> None:
    write_export(tmp_path / "day1.csv", DAY1)

    result = sync(store, tmp_path, at=LATER)

    assert (result.ok, result.customers, result.orders) == (True, 1, 2)
    stored = dump(store, with_sync_time=False)
    assert stored["customers"] == [("C1", "anna@example.test", "Anna", "Smith", EXPORTED, False)]
    assert stored["orders"] == DAY1_ORDERS
    assert stored["lines"] == [
        ("1001", 0, "MUG", 2, Decimal(10)),
        ("1001", 1, "TEA", 1, Decimal(10)),
    ]


def test_reimporting_an_unchanged_file_changes_and_rewrites_nothing(
    store: Store, tmp_path: Path
) -> None:
    write_export(tmp_path / "day1.csv", DAY1)
    sync(store, tmp_path, at=LATER)
    before, dump_plain = dump(store), dump(store, with_sync_time=False)

    again = sync(store, tmp_path, at=LATER + timedelta(hours=1))

    assert (again.ok, again.customers, again.orders) == (True, 0, 0)
    assert dump(store) == before  # synced_at included: no row was written
    full = sync(store, tmp_path, at=LATER + timedelta(hours=2), full=True)
    assert (full.ok, full.orders, full.deleted) == (True, 2, {"customers": 0, "orders": 0})
    assert dump(store, with_sync_time=False) == dump_plain  # rewritten with the same values


def test_a_corrected_file_updates_its_orders_and_replaces_their_lines(
    store: Store, tmp_path: Path
) -> None:
    write_export(tmp_path / "day1.csv", DAY1)
    sync(store, tmp_path, at=LATER)
    corrected_at = LATER + timedelta(minutes=30)  # edited after the first sync
    write_export(
        tmp_path / "day1.csv",
        DAY1.replace("30.00,EUR,Anna,Smith,TEA,1,10", "35.00,EUR,Anna,Smith,TEA,1,15").replace(
            "30.00", "35.00"
        ),
        at=corrected_at,
    )

    result = sync(store, tmp_path, at=LATER + timedelta(hours=1))

    assert (result.ok, result.orders) == (True, 2)
    stored = dump(store, with_sync_time=False)
    assert [(o[0], o[4], o[6]) for o in stored["orders"]] == [
        ("1001", corrected_at, Decimal(35)),
        ("1002", corrected_at, Decimal(20)),
    ]
    assert stored["lines"] == [
        ("1001", 0, "MUG", 2, Decimal(10)),
        ("1001", 1, "TEA", 1, Decimal(15)),
    ]


def test_the_newer_file_wins_an_order_whatever_the_names(store: Store, tmp_path: Path) -> None:
    write_export(tmp_path / "b-old.csv", DAY1.replace("30.00", "99.00"), at=EXPORTED)
    write_export(tmp_path / "a-new.csv", DAY1, at=EXPORTED + timedelta(minutes=1))

    assert sync(store, tmp_path, at=LATER).ok

    stored = dump(store, with_sync_time=False)
    assert [(o[0], o[6]) for o in stored["orders"]] == [
        ("1001", Decimal("30.00")),
        ("1002", Decimal(20)),
    ]


def test_a_new_file_in_the_folder_is_picked_up_by_the_next_sync(
    store: Store, tmp_path: Path
) -> None:
    write_export(tmp_path / "day1.csv", DAY1)
    assert sync(store, tmp_path).ok

    write_export(tmp_path / "day2.csv", DAY2, at=EXPORTED + timedelta(days=1))
    result = sync(store, tmp_path)

    assert result.ok
    stored = dump(store, with_sync_time=False)
    assert [o[0] for o in stored["orders"]] == ["1001", "1002", "2001", "2002"]
    assert [c[:3] for c in stored["customers"]] == [
        ("C1", "anna@example.test", "Anna"),
        ("C2", None, "Ben"),
    ]


def test_a_file_with_bad_rows_fails_the_shop_and_nothing_is_written(
    store: Store, tmp_path: Path
) -> None:
    write_export(tmp_path / "day1.csv", DAY1)
    bad = write_export(tmp_path / "day2.csv", DAY2.replace("2026-02-05T09:30:00", "5.2.2026"))

    result = sync(store, tmp_path, at=LATER)

    assert (result.ok, result.error_type) == (False, "InputError")
    assert f"{bad}:3: created_at: '5.2.2026' is not an ISO 8601 date" in (result.error or "")
    assert dump(store) == {"customers": [], "orders": [], "lines": []}
    with store.session() as session:
        run = session.exec(select(SyncRun).where(SyncRun.id == result.run_id)).one()
    assert (run.outcome, run.error) == ("failed", result.error)

    write_export(bad, DAY2, at=EXPORTED + timedelta(days=1))  # fixed: a newer mtime
    fixed = sync(store, tmp_path, at=LATER + timedelta(hours=1))
    assert (fixed.ok, fixed.orders) == (True, 4)


def test_sync_cli_rejects_then_skips_invalid_rows(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    write_export(exports / "day2.csv", DAY2.replace("12.5", "-12.5"))
    config = tmp_path / "shopcrm.yaml"
    config.write_text(
        "database: sqlite:///store.db\n"
        "shops:\n  - {name: pos, platform: csv, path: exports, currency: EUR}\n",
        encoding="utf-8",
    )
    runner = CliRunner()

    refused = runner.invoke(app, ["--config", str(config), "sync"])
    skipped = runner.invoke(app, ["--config", str(config), "sync", "--skip-invalid"])

    assert refused.exit_code == 1
    assert "day2.csv:2: total: negative amount '-12.5'" in refused.output
    assert skipped.exit_code == 0, skipped.output
    assert "pos: 1 customers, 1 orders" in skipped.output
    rejects = (exports / "day2.rejects.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rejects[1].endswith(
        ",2,total: negative amount '-12.5'; put refunds in the refunded column"
    )


def test_full_sync_marks_the_orders_of_a_removed_file_deleted(store: Store, tmp_path: Path) -> None:
    write_export(tmp_path / "day1.csv", DAY1)
    write_export(tmp_path / "day2.csv", DAY2)
    sync(store, tmp_path, at=LATER)
    (tmp_path / "day2.csv").unlink()

    result = sync(store, tmp_path, at=LATER + timedelta(hours=1), full=True)

    assert result.deleted == {"customers": 1, "orders": 2}
    stored = dump(store, with_sync_time=False)
    assert [(o[0], o[-1]) for o in stored["orders"]] == [
        ("1001", False),
        ("1002", False),
        ("2001", True),
        ("2002", True),
    ]
