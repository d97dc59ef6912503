"""CSV / POS import: parsing rules, line-numbered rejections, --skip-invalid, idempotent syncs."""

from __future__ import annotations

import csv
import logging
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopcrm.config.schema import CsvShop
from shopcrm.connectors.csv.connector import NO_TAGS, CsvConnector, skip_invalid_rows
from shopcrm.connectors.csv.values import CellError, CellParser
from shopcrm.errors import ConfigError, InputError
from shopcrm.records import CustomerRecord, OrderLineRecord, OrderRecord, TagChange
from tests.csv_fixtures import (
    EXPORTED,
    HEADER,
    connector,
    csv_config,
    customers_of,
    orders_of,
    write_export,
)

UTC_AT = EXPORTED  # the updated_at of every record of a file written at EXPORTED
REFUSED = (
    "shop pos: 1 file(s) rejected, nothing imported; fix the rows, or sync with --skip-invalid "
    "to import the valid rows and write the orders concerned to <file>.rejects.csv beside "
    "each file:"
)

# Default layout with a byte-order mark, quoted commas, a guest and a customer without email.
DEFAULT_LAYOUT = f"""\ufeff{HEADER}
1001,C1,anna@example.test,2026-02-01T10:15:00,"1,234.50",EUR,Anna,"Smith, Jr.",MUG-1,2,600.00
1001,C1,anna@example.test,2026-02-01T10:15:00,1234.50,EUR,Anna,"Smith, Jr.",TEA-2,1,34.50
1002,,guest@example.test,2026-02-02T11:00:00+01:00,20,EUR,,,"BAG, large",1,20
1003,C2,,2026-02-03,15.5,,Ben,,,,
"""


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_default_layout_with_bom_quoted_commas_guest_and_missing_email(tmp_path: Path) -> None:
    path = write_export(tmp_path / "pos.csv", DEFAULT_LAYOUT)

    orders = orders_of(path, timezone="Europe/Berlin")
    customers = customers_of(path, timezone="Europe/Berlin")

    assert orders == [
        OrderRecord(
            platform_id="1001",
            created_at=berlin(2026, 2, 1, 9, 15),  # 10:15 in Berlin (CET, UTC+1)
            updated_at=UTC_AT,
            currency="EUR",
            total=Decimal("1234.50"),
            customer_platform_id="C1",
            email="anna@example.test",
            number="1001",
            lines=(
                OrderLineRecord(quantity=2, unit_price=Decimal("600.00"), sku="MUG-1"),
                OrderLineRecord(quantity=1, unit_price=Decimal("34.50"), sku="TEA-2"),
            ),
        ),
        OrderRecord(
            platform_id="1002",
            created_at=berlin(2026, 2, 2, 10, 0),  # the offset in the value wins over the zone
            updated_at=UTC_AT,
            currency="EUR",
            total=Decimal("20"),
            email="guest@example.test",
            number="1002",
            lines=(OrderLineRecord(quantity=1, unit_price=Decimal("20"), sku="BAG, large"),),
        ),
        OrderRecord(
            platform_id="1003",
            created_at=berlin(2026, 2, 2, 23, 0),  # a bare date is local midnight
            updated_at=UTC_AT,
            currency="EUR",
            total=Decimal("15.5"),
            customer_platform_id="C2",
            number="1003",
        ),
    ]
    assert customers == [
        CustomerRecord("C1", UTC_AT, "anna@example.test", "Anna", "Smith, Jr."),
        CustomerRecord("C2", UTC_AT, None, "Ben", None),
    ]


def test_semicolons_decimal_comma_date_format_and_column_mapping(tmp_path: Path) -> None:
    path = write_export(
        tmp_path / "kasse.csv",
        "Beleg;Kunde;E-Mail;Datum;Summe;Erstattet;Status\n"
        "A-1;K1;k1@example.test;01.07.2026 10:15;1.234,50;10,25;paid\n"
        "A-2;K2;;02.07.2026 08:00;12,5;;Storniert\n"
        "A-3;;;03.07.2026 00:30;0,99;;voided\n",
        encoding="cp1252",
    )
    shop = {
        "delimiter": ";",
        "decimal": ",",
        "date_format": "%d.%m.%Y %H:%M",
        "timezone": "Europe/Berlin",
        "encoding": "cp1252",
        "columns": {
            "order_id": "Beleg",
            "customer_id": "Kunde",
            "email": "E-Mail",
            "created_at": "Datum",
            "total": "Summe",
            "refunded": "Erstattet",
            "status": "Status",
        },
    }

    orders = orders_of(path, **shop)

    assert [(o.platform_id, o.total, o.refunded, o.created_at) for o in orders] == [
        ("A-1", Decimal("1234.50"), Decimal("10.25"), berlin(2026, 7, 1, 8, 15)),  # CEST
        ("A-2", Decimal("12.5"), Decimal(0), berlin(2026, 7, 2, 6, 0)),
        ("A-3", Decimal("0.99"), Decimal(0), berlin(2026, 7, 2, 22, 30)),
    ]
    assert [(o.financial_status, o.cancelled_at) for o in orders] == [
        ("paid", None),
        ("Storniert", None),  # only the documented void words cancel an order
        ("voided", berlin(2026, 7, 2, 22, 30)),
    ]


def test_exact_duplicate_rows_count_once_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    row = "7,C7,c7@example.test,2026-02-01,30,EUR,,,SOAP,1,10"
    path = write_export(
        tmp_path / "dup.csv",
        f"{HEADER}\n{row}\n{row}\n7,C7,c7@example.test,2026-02-01,30,EUR,,,SOAP,2,10\n",
    )
    caplog.set_level(logging.WARNING)

    [order] = orders_of(path)

    assert order.lines == (
        OrderLineRecord(quantity=1, unit_price=Decimal(10), sku="SOAP"),
        OrderLineRecord(quantity=2, unit_price=Decimal(10), sku="SOAP"),  # not identical: kept
    )
    assert f"{path}: 1 exact duplicate row(s) counted once (line 3 repeats line 2)" in caplog.text


BAD_ROWS = f"""{HEADER}
1,C1,a@example.test,2026-02-30T10:00:00,10,EUR,,,,,
2,C1,a@example.test,01/02/2026,10,EUR,,,,,
3,C1,a@example.test,2026-02-01,-10.00,EUR,,,,,
4,,not-an-email,2026-02-01,10,EUR,,,,,
5,C1,,2026-02-01,10,USD,,,,,
6,C1,,2026-02-01,,EUR,,,,,
7,C1,,2026-02-01,10,EUR,,,SKU,0,5
8,C1,,2026-02-01,10,EUR,,,SKU,1
,C1,,2026-02-01,10,EUR,,,,,
9,C1,,2026-02-01,10,EUR,,,,,
9,C2,,2026-02-01,12,EUR,,,,,
10,C3,c3@example.test,2026-02-01,"1,5",EUR,,,,,
11,C4,c4@example.test,2026-02-04,40,EUR,,,,,
"""


DIFFERS = (
    "differs from line 11, the order's first row (rows of one order repeat its order columns "
    "or leave them empty)"
)
BAD_ROW_REASONS = [
    (2, "created_at: '2026-02-30T10:00:00' is not a real date (day is out of range for month)"),
    (
        3,
        "created_at: '01/02/2026' is not an ISO 8601 date like 2024-03-01 or 2024-03-01T14:30:00 "
        "(set date_format for other layouts)",
    ),
    (4, "total: negative amount '-10.00'; put refunds in the refunded column"),
    (5, "email: not an email address"),
    (6, "currency: USD differs from the shop's currency EUR (configure one csv shop per currency)"),
    (7, "total: missing"),
    (8, "quantity: '0' is not a whole number of items (1 or more)"),
    (9, "has 10 fields, the header has 11 (quote values that contain the delimiter ',')"),
    (10, "order_id: missing"),
    (12, f"customer_id: {DIFFERS}"),
    (12, f"total: {DIFFERS}"),
    (13, "total: '1,5' is not an amount like 1234.50 (decimal mark '.', no currency sign)"),
]


def test_bad_rows_reject_the_file_listing_each_line_and_reason(tmp_path: Path) -> None:
    path = write_export(tmp_path / "bad.csv", BAD_ROWS)

    with pytest.raises(InputError) as caught:
        orders_of(path)

    assert str(caught.value).split("\n") == [
        REFUSED,
        *(f"{path}:{line}: {reason}" for line, reason in BAD_ROW_REASONS),
    ]
    assert "not-an-email" not in str(caught.value)  # personal data is never quoted


def test_the_listing_stops_at_twenty_and_counts_the_rest(tmp_path: Path) -> None:
    rows = "".join(f"{i},C1,,2026-13-01,1,EUR,,,,,\n" for i in range(25))
    path = write_export(tmp_path / "many.csv", f"{HEADER}\n{rows}")

    with pytest.raises(InputError) as caught:
        customers_of(path)

    lines = str(caught.value).split("\n")
    assert len(lines) == 1 + 20 + 1
    assert lines[1].startswith(f"{path}:2: created_at: '2026-13-01' is not a real date")
    assert lines[20].startswith(f"{path}:21: created_at:")
    assert lines[-1] == "... and 5 more"


def test_rows_of_one_order_must_be_adjacent(tmp_path: Path) -> None:
    path = write_export(
        tmp_path / "split.csv",
        f"{HEADER}\n"
        "1,C1,,2026-02-01,10,EUR,,,A,1,5\n"
        "2,C2,,2026-02-01,10,EUR,,,,,\n"
        "1,C1,,2026-02-01,10,EUR,,,B,1,5\n",
    )

    with pytest.raises(InputError) as caught:
        orders_of(path)

    assert str(caught.value).split("\n")[1:] == [
        f"{path}:4: order_id: order '1' continues here after other orders (its rows start at "
        "line 2); keep the rows of one order together"
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "the file is empty: it has no header row"),
        (
            "order_id,email,total\n1,a@example.test,3\n",
            "line 1: the header lacks the column(s) 'created_at' (map your export's names with "
            "the shop's `columns`)",
        ),
        ("order_id,total,TOTAL,created_at\n", "line 1: the header names column 'total' twice"),
    ],
)
def test_unusable_files_are_rejected_whole(tmp_path: Path, content: str, problem: str) -> None:
    path = write_export(tmp_path / "x.csv", content)

    with pytest.raises(InputError, match="rejected, nothing imported; fix them") as caught:
        orders_of(path)

    assert str(caught.value).split("\n")[1:] == [f"{path}: {problem}"]


def test_a_file_in_another_encoding_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(f"{HEADER}\n1,C1,,2026-02-01,10,EUR,J\xfcrgen,,,,\n".encode("latin-1"))

    with pytest.raises(InputError) as caught:
        orders_of(path)

    assert f"{path}: line 2: not readable as utf-8-sig" in str(caught.value)


def test_unknown_column_in_the_mapping_is_a_config_error_with_its_key_path(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        csv_config(tmp_path, columns={"receipt": "Beleg"})

    assert str(caught.value).startswith("shops[0].columns: unknown column 'receipt' (known:")


def test_skip_invalid_imports_good_orders_and_writes_the_rejects_beside_the_file(
    tmp_path: Path,
) -> None:
    path = write_export(tmp_path / "bad.csv", BAD_ROWS)

    orders = orders_of(path, skip_invalid=True)
    customers = customers_of(path, skip_invalid=True)

    assert [o.platform_id for o in orders] == ["11"]
    assert customers == [CustomerRecord("C4", UTC_AT, "c4@example.test")]
    with (tmp_path / "bad.rejects.csv").open(encoding="utf-8-sig", newline="") as handle:
        rejects = list(csv.reader(handle))
    assert rejects[0] == [*HEADER.split(","), "line", "reason"]
    source = BAD_ROWS.splitlines()
    assert [row[:-2] for row in rejects[1:]] == [
        next(csv.reader([source[line - 1]])) for line in range(2, 14)
    ]
    reasons = {int(row[-2]): row[-1] for row in rejects[1:]}
    expected: dict[int, list[str]] = {}
    for line, reason in BAD_ROW_REASONS:
        expected.setdefault(line, []).append(reason)
    expected[11] = ["rejected with its order (see line 12)"]
    assert reasons == {line: "; ".join(texts) for line, texts in expected.items()}


def test_skip_invalid_rejects_every_row_of_a_split_order(tmp_path: Path) -> None:
    path = write_export(
        tmp_path / "split.csv",
        f"{HEADER}\n"
        "1,C1,,2026-02-01,10,EUR,,,A,1,5\n"
        "2,C2,,2026-02-01,10,EUR,,,,,\n"
        "1,C1,,2026-02-01,10,EUR,,,B,1,5\n",
    )

    assert [o.platform_id for o in orders_of(path, skip_invalid=True)] == ["2"]
    assert [c.platform_id for c in customers_of(path, skip_invalid=True)] == ["C2"]
    rejects = (tmp_path / "split.rejects.csv").read_text(encoding="utf-8-sig").splitlines()
    assert [row.split(",")[-2] for row in rejects[1:]] == ["2", "4"]


def test_rejects_files_are_not_read_as_exports(tmp_path: Path) -> None:
    write_export(tmp_path / "day1.csv", BAD_ROWS)
    orders_of(tmp_path, skip_invalid=True)

    assert (tmp_path / "day1.rejects.csv").exists()
    assert [o.platform_id for o in orders_of(tmp_path, skip_invalid=True)] == ["11"]


def test_sync_option_sets_skip_invalid_on_csv_shops_only(tmp_path: Path) -> None:
    config = csv_config(tmp_path)

    changed = skip_invalid_rows(config)

    assert [s.skip_invalid for s in changed.shops if isinstance(s, CsvShop)] == [True]
    assert config.shops[0].skip_invalid is False  # type: ignore[union-attr]


def test_files_are_picked_by_modification_or_arrival_time(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    write_export(tmp_path / "a.csv", f"{HEADER}\n1,C1,,2026-02-01,10,EUR,,,,,\n")
    pos = connector(tmp_path)

    assert [p.records[0].platform_id for p in pos.orders(now - timedelta(minutes=1))] == ["1"]
    assert list(pos.orders(now + timedelta(hours=1))) == []  # old mtime, arrived before
    later = now + timedelta(hours=2)
    os.utime(tmp_path / "a.csv", (later.timestamp(), later.timestamp()))
    [page] = pos.orders(now + timedelta(hours=1))
    assert page.records[0].updated_at == later.replace(microsecond=0)


def test_check_reports_the_shop_and_a_missing_path(tmp_path: Path) -> None:
    facts = connector(tmp_path, timezone="Europe/Berlin").check()
    assert (facts.name, facts.currency, facts.timezone) == ("pos", "EUR", "Europe/Berlin")
    assert facts.warnings == (f"no .csv files in {tmp_path} yet",)

    with pytest.raises(InputError, match=r"shop pos: .*nowhere does not exist"):
        connector(tmp_path / "nowhere").check()


def test_csv_shops_cannot_be_tagged(tmp_path: Path) -> None:
    pos = connector(tmp_path)
    changes = [TagChange("C1", add=frozenset({"crm:vip"})), TagChange("C2")]

    results = list(pos.apply(changes))

    assert CsvConnector.supports_tags is False
    assert [(r.customer_platform_id, r.ok, r.error) for r in results] == [
        ("C1", False, NO_TAGS),
        ("C2", False, NO_TAGS),
    ]
    assert pos.requests_made == 0


@pytest.mark.parametrize(
    ("decimal", "text", "amount"),
    [
        (".", "1,234,567.89", "1234567.89"),
        (".", "0.5", "0.5"),
        (",", "1.234.567,89", "1234567.89"),
        (",", "12,5", "12.5"),
        (",", "+7", "7"),
    ],
)
def test_amounts_with_thousands_grouping(decimal: str, text: str, amount: str) -> None:
    cells = CellParser(
        CsvShop(name="p", platform="csv", path=Path("."), currency="EUR", decimal=decimal)
    )  # type: ignore[arg-type]
    assert cells.money("total", text) == Decimal(amount)


@pytest.mark.parametrize(
    ("decimal", "text"),
    [(".", "1,23"), (",", "1.23"), (".", "€12"), (".", "1.2345678"), (",", "12 500,00")],
)
def test_ambiguous_or_foreign_amounts_are_refused(decimal: str, text: str) -> None:
    cells = CellParser(
        CsvShop(name="p", platform="csv", path=Path("."), currency="EUR", decimal=decimal)
    )  # type: ignore[arg-type]
    with pytest.raises(CellError):
        cells.money("total", text)


@given(
    st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False),
    st.sampled_from([".", ","]),
)
def test_any_grouped_amount_reads_back_exactly(amount: Decimal, decimal: str) -> None:
    grouped = f"{amount:,.2f}"  # 1,234,567.89
    if decimal == ",":
        grouped = grouped.translate(str.maketrans(",.", ".,"))
    cells = CellParser(
        CsvShop(name="p", platform="csv", path=Path("."), currency="EUR", decimal=decimal)
    )  # type: ignore[arg-type]
    assert cells.money("total", grouped) == amount


@pytest.mark.parametrize(
    ("date_format", "text", "expected"),
    [
        (None, "2026-07-01T10:15:00Z", datetime(2026, 7, 1, 10, 15, tzinfo=UTC)),
        (None, "2026-07-01 10:15", datetime(2026, 7, 1, 8, 15, tzinfo=UTC)),
        ("%d/%m/%Y %H:%M %z", "01/07/2026 10:15 -0400", datetime(2026, 7, 1, 14, 15, tzinfo=UTC)),
        ("%m/%d/%Y", "07/01/2026", datetime(2026, 6, 30, 22, 0, tzinfo=UTC)),
    ],
)
def test_dates_in_the_shops_zone_unless_they_carry_an_offset(
    date_format: str | None, text: str, expected: datetime
) -> None:
    cells = CellParser(
        CsvShop(
            name="p",
            platform="csv",
            path=Path("."),
            currency="EUR",
            timezone="Europe/Berlin",
            date_format=date_format,
        )
    )
    assert cells.when("created_at", text) == expected


def test_a_date_not_matching_the_configured_format_names_it(tmp_path: Path) -> None:
    path = write_export(tmp_path / "us.csv", f"{HEADER}\n1,,,2026-07-01,5,EUR,,,,,\n")

    with pytest.raises(InputError) as caught:
        orders_of(path, date_format="%m/%d/%Y")

    assert str(caught.value).split("\n")[1] == (
        f"{path}:2: created_at: '2026-07-01' does not match date_format '%m/%d/%Y'"
    )


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"encoding": "klingon"}, "shops[0].encoding: unknown encoding 'klingon'"),
        ({"decimal": ";"}, "shops[0].decimal:"),
        ({"columns": {"total": "Sum", "refunded": " sum "}}, "two columns are mapped to the same"),
    ],
)
def test_csv_shop_settings_are_checked_when_the_config_loads(
    tmp_path: Path, setting: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        csv_config(tmp_path, **setting)
