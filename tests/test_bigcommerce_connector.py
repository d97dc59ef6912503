"""BigCommerce connector units: HTTP mocked with `responses`, paging and pacing in memory."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses
from hypothesis import given, settings
from hypothesis import strategies as st

from shopcrm.config.load import parse_config
from shopcrm.connectors.bigcommerce.connector import (
    PAGE_LIMIT,
    BigCommerceConnector,
    RateLimitPacer,
    keyset_pages,
    parse_rfc2822,
)
from shopcrm.errors import AuthError, PlatformUnavailable
from shopcrm.records import CustomerRecord, TagChange

BASE = "https://api.bigcommerce.com/stores/abc123"
SECRET = "tok-very-secret-91d"


@pytest.fixture
def connector() -> BigCommerceConnector:
    config = parse_config(
        {
            "shops": [
                {
                    "name": "outlet",
                    "platform": "bigcommerce",
                    "store_hash": "abc123",
                    "credentials": {"access_token": "${BC_TOKEN}"},
                }
            ]
        },
        env={"BC_TOKEN": SECRET},
    )
    waits: list[float] = []
    conn = BigCommerceConnector(config.shops[0], config, sleep=waits.append)  # type: ignore[arg-type]
    conn.waits = waits  # type: ignore[attr-defined]
    return conn


def _order(**over: Any) -> dict[str, Any]:
    order = {
        "id": 101,
        "customer_id": 7,
        "date_created": "Wed, 10 Jan 2018 21:05:30 +0000",
        "date_modified": "Thu, 11 Jan 2018 08:00:00 +0000",
        "status_id": 10,
        "status": "Completed",
        "total_inc_tax": "59.9000",
        "refunded_amount": "10.0000",
        "currency_code": "EUR",
        "items_total": 3,
        "billing_address": {"email": "a@example.test", "zip": "1"},
        "consignments": {
            "shipping": [
                {
                    "id": 1,
                    "line_items": [
                        {
                            "id": 5,
                            "product_id": 9,
                            "name": "Mug",
                            "sku": "M-1",
                            "quantity": 2,
                            "price_inc_tax": "20.0000",
                        },
                        {
                            "id": 6,
                            "product_id": 0,
                            "name": "Gift",
                            "sku": "",
                            "quantity": 1,
                            "price_inc_tax": "19.9000",
                        },
                    ],
                }
            ]
        },
    }
    order.update(over)
    return order


@responses.activate
def test_orders_map_money_guests_cancellations_and_lines(connector: BigCommerceConnector) -> None:
    cancelled = _order(
        id=102,
        customer_id=0,
        status_id=5,
        status="Cancelled",
        total_inc_tax=12.5,
        billing_address={"email": "", "zip": "1"},
    )
    responses.get(f"{BASE}/v2/orders", json=[_order(), cancelled])
    pages = list(connector.orders(None))
    first, second = pages[0].records
    assert first.total == Decimal("59.9000")
    assert first.refunded == Decimal("10")
    assert first.currency == "EUR"
    assert first.customer_platform_id == "7"
    assert first.email == "a@example.test"
    assert first.financial_status == "completed"
    assert first.cancelled_at is None
    assert first.updated_at == datetime(2018, 1, 11, 8, tzinfo=UTC)
    assert [(x.sku, x.product_id, x.quantity, x.unit_price) for x in first.lines] == [
        ("M-1", "9", 2, Decimal("20")),
        (None, None, 1, Decimal("19.9")),
    ]
    assert second.customer_platform_id is None
    assert second.email is None
    assert second.total == Decimal("12.5")  # a JSON number goes through str, never float
    assert second.cancelled_at == second.updated_at
    assert second.financial_status == "cancelled"
    assert pages[0].high_water_mark == second.updated_at
    sent = responses.calls[0].request
    assert "include=consignments.line_items" in sent.url
    assert "sort=date_modified&" in sent.url + "&"
    assert sent.headers["X-Auth-Token"] == SECRET


@pytest.mark.parametrize("empty", [{"status": 204}, {"json": []}])
@responses.activate
def test_no_orders_is_204_or_an_empty_list(
    connector: BigCommerceConnector, empty: dict[str, Any]
) -> None:
    responses.get(f"{BASE}/v2/orders", **empty)
    assert list(connector.orders(datetime(2025, 1, 1, tzinfo=UTC))) == []
    assert "min_date_modified=2025-01-01T00%3A00%3A00%2B00%3A00" in responses.calls[0].request.url


@responses.activate
def test_incomplete_embedded_lines_are_read_from_order_products(
    connector: BigCommerceConnector,
) -> None:
    order = _order(items_total=60)
    order["consignments"]["shipping"][0]["__warning__"] = "only 50 line items"
    responses.get(f"{BASE}/v2/orders", json=[order])
    products = [
        {
            "id": i,
            "product_id": 9,
            "name": "P",
            "sku": f"S{i}",
            "quantity": 1,
            "price_inc_tax": "1.0000",
        }
        for i in range(PAGE_LIMIT)
    ]
    responses.get(f"{BASE}/v2/orders/101/products", json=products)
    responses.get(f"{BASE}/v2/orders/101/products", status=204)
    (page,) = connector.orders(None)
    assert len(page.records[0].lines) == PAGE_LIMIT
    pages_asked = [c.request.url for c in responses.calls if "/products" in c.request.url]
    assert len(pages_asked) == 2
    assert "page=2" in pages_asked[1]


@responses.activate
def test_refused_token_is_a_clear_auth_error_without_the_secret(
    connector: BigCommerceConnector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses.get(f"{BASE}/v2/store", status=401, json={"status": 401, "title": "Unauthorized"})
    with pytest.raises(AuthError) as caught:
        connector.check()
    message = str(caught.value)
    assert "outlet" in message
    assert "abc123" in message
    assert SECRET not in message
    assert SECRET not in caplog.text


@responses.activate
def test_a_429_waits_what_the_headers_say_then_goes_on(connector: BigCommerceConnector) -> None:
    limited = {
        "X-Rate-Limit-Requests-Left": "0",
        "X-Rate-Limit-Requests-Quota": "150",
        "X-Rate-Limit-Time-Reset-Ms": "4200",
        "X-Rate-Limit-Time-Window-Ms": "30000",
        "X-Retry-After": "5",
    }
    responses.get(f"{BASE}/v2/store", status=429, headers=limited)
    responses.get(
        f"{BASE}/v2/store",
        json={"name": "Outlet", "currency": "GBP", "timezone": {"name": "Europe/London"}},
    )
    facts = connector.check()
    assert (facts.name, facts.currency, facts.timezone) == ("Outlet", "GBP", "Europe/London")
    assert sum(connector.waits) >= 4.2  # type: ignore[attr-defined]


def _headers(left: int, reset_ms: int) -> requests.Response:
    response = requests.Response()
    response.headers.update(
        {"X-Rate-Limit-Requests-Left": str(left), "X-Rate-Limit-Time-Reset-Ms": str(reset_ms)}
    )
    return response


def test_pacer_waits_for_the_reset_only_at_the_reserve() -> None:
    now = [100.0]
    waits: list[float] = []
    pacer = RateLimitPacer(reserve=2, sleep=waits.append, clock=lambda: now[0])
    pacer.before_request()
    pacer.after_response(_headers(left=4, reset_ms=2000))
    pacer.before_request()  # 3 left after this one
    pacer.before_request()  # 2 left: the reserve
    assert waits == []
    pacer.before_request()
    assert waits == [pytest.approx(2.01)]
    pacer.before_request()  # a new window: unknown allowance, no wait
    assert len(waits) == 1


def test_pacer_counts_requests_in_flight() -> None:
    waits: list[float] = []
    pacer = RateLimitPacer(reserve=1, sleep=waits.append, clock=lambda: 0.0)
    for _ in range(3):
        pacer.before_request()
    pacer.after_response(_headers(left=3, reset_ms=500))  # two still in flight: 1 left really
    pacer.before_request()
    assert waits == [pytest.approx(0.51)]


@responses.activate
def test_apply_reads_then_upserts_in_batches_and_isolates_a_refused_customer(
    connector: BigCommerceConnector,
) -> None:
    responses.get(
        f"{BASE}/v3/customers/attributes",
        json={"data": [{"id": 42, "name": "shopcrm_tags", "type": "string"}], "meta": {}},
    )
    responses.get(
        f"{BASE}/v3/customers/attribute-values",
        json={
            "data": [
                {"id": 900, "attribute_id": 42, "attribute_value": "crm:old,mine", "customer_id": 1}
            ],
            "meta": {},
        },
    )

    def put(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        batch = json.loads(request.body or "[]")
        named = {
            f"{i}.customer_id": "does not exist"
            for i, x in enumerate(batch)
            if x["customer_id"] == 2
        }
        if named:
            return 422, {}, json.dumps({"status": 422, "title": "bad", "errors": named})
        return 200, {}, json.dumps({"data": [], "meta": {}})

    responses.add_callback(responses.PUT, f"{BASE}/v3/customers/attribute-values", callback=put)
    changes = [
        TagChange("1", add=frozenset({"crm:vip"}), remove=frozenset({"crm:old"})),
        *[TagChange(str(cid), add=frozenset({"crm:vip"})) for cid in range(2, 12)],
    ]
    results = list(connector.apply(changes))
    assert [r.customer_platform_id for r in results] == [c.customer_platform_id for c in changes]
    assert [r.customer_platform_id for r in results if not r.ok] == ["2"]
    puts = [json.loads(c.request.body) for c in responses.calls if c.request.method == "PUT"]
    assert all(len(batch) <= 10 for batch in puts)
    assert {item["attribute_id"] for batch in puts for item in batch} == {42}
    first = next(i for batch in puts for i in batch if i["customer_id"] == 1)
    assert first["value"] == "crm:vip,mine"  # "mine" was not ours to remove
    ids = [sorted(item["customer_id"] for item in batch) for batch in puts]
    assert list(range(1, 11)) in ids  # the first batch, refused for customer 2
    assert [1, *range(3, 11)] in ids  # sent again without customer 2


def _records(stamps: list[int]) -> list[CustomerRecord]:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        CustomerRecord(platform_id=str(i), updated_at=base + timedelta(seconds=s))
        for i, s in enumerate(stamps)
    ]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=3 * PAGE_LIMIT))
def test_keyset_paging_delivers_every_record_once_with_honest_marks(stamps: list[int]) -> None:
    records = sorted(_records(stamps), key=lambda r: (r.updated_at, int(r.platform_id)))

    def after(mark: datetime | None) -> list[CustomerRecord]:
        return [r for r in records if mark is None or r.updated_at >= mark][:PAGE_LIMIT]

    def run(at: datetime, seen: set[str]):
        same = [r for r in records if r.updated_at == at]
        for i in range(0, len(same), PAGE_LIMIT):
            yield same[i : i + PAGE_LIMIT]

    delivered: list[str] = []
    last_mark = None
    for page in keyset_pages(after, run, None):
        delivered.extend(r.platform_id for r in page.records)
        mark = page.high_water_mark
        assert mark is not None
        assert last_mark is None or mark >= last_mark
        last_mark = mark
        assert {r.platform_id for r in records if r.updated_at < mark} <= set(delivered)
    assert sorted(delivered) == sorted(r.platform_id for r in records)
    assert len(delivered) == len(set(delivered))


@pytest.mark.parametrize(
    "text",
    [
        "Wed, 05 Dec 2018 20:16:55 +0000",
        "Wed, 5 Dec 2018 20:16:55 +0000",
        "Wed, 05 Dec 2018 22:16:55 +0200",
        "Wed, 05 Dec 2018 15:16:55 -0500",
    ],
)
def test_v2_dates_in_any_offset_become_the_same_utc_instant(text: str) -> None:
    assert parse_rfc2822(text, "order 1") == datetime(2018, 12, 5, 20, 16, 55, tzinfo=UTC)


def test_an_unreadable_v2_date_names_the_record() -> None:
    with pytest.raises(PlatformUnavailable, match="order 9"):
        parse_rfc2822("yesterday", "shop outlet: order 9")
