"""WooCommerce connector units, HTTP mocked with `responses` (nothing leaves the machine)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from shopcrm.config.load import parse_config
from shopcrm.connectors.http import HttpClient
from shopcrm.connectors.woocommerce.connector import (
    API_PATH,
    WooCommerceConnector,
    customer_record,
    modified_after,
    order_record,
)
from shopcrm.errors import AuthError, PlatformError
from shopcrm.records import TagChange

KEY = "ck_unit_0123456789"
SECRET = "cs_unit_SECRET_abcdef0123456789"
SITE = "http://shop.example.test"
API = f"{SITE}/{API_PATH}"


def connector(site: str = SITE) -> WooCommerceConnector:
    config = parse_config(
        {
            "shops": [
                {
                    "name": "eu-store",
                    "platform": "woocommerce",
                    "url": site,
                    "credentials": {"consumer_key": KEY, "consumer_secret": SECRET},
                }
            ]
        },
        env={},
    )
    shop = config.shops[0]
    client = HttpClient(
        f"{site}/{API_PATH}", shop=shop.name, sleep=lambda _s: None, backoff_initial=0.01
    )
    return WooCommerceConnector(shop, config, client=client)  # type: ignore[arg-type]


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


ORDER = {
    "id": 35,
    "status": "completed",
    "currency": "EUR",
    "number": "35",
    "total": "252.33",
    "customer_id": 4,
    "billing": {"email": " Sophie@Example.test"},
    "date_created_gmt": "2026-08-11T23:18:06",
    "date_modified_gmt": "2026-08-14T05:25:06",
    "date_paid_gmt": "2026-08-11T23:22:06",
    "line_items": [
        {
            "id": 56,
            "name": "Mill",
            "product_id": 15,
            "quantity": 1,
            "subtotal": "192.44",
            "sku": "GRD-C40",
            "price": 192.436975,
        },
        {
            "id": 57,
            "name": "Chai",
            "product_id": 19,
            "quantity": 3,
            "subtotal": "24.53",
            "sku": "",
            "price": 8.1766666666667,
        },
    ],
    "refunds": [{"id": 36, "reason": "damaged", "total": "-229.00"}, {"id": 37, "total": "-1.50"}],
}


def test_order_mapping_money_dates_guests_and_cancellations() -> None:
    record = order_record(ORDER, "eu-store")
    assert record.total == Decimal("252.33")
    assert record.refunded == Decimal("230.50")
    assert record.created_at == datetime(2026, 8, 11, 23, 18, 6, tzinfo=UTC)
    assert record.processed_at == datetime(2026, 8, 11, 23, 22, 6, tzinfo=UTC)
    assert (record.customer_platform_id, record.email) == ("4", "Sophie@Example.test")
    first, second = record.lines
    assert (first.unit_price, first.sku, first.product_id) == (
        Decimal("192.436975"),
        "GRD-C40",
        "15",
    )
    # more than 6 decimals: subtotal / quantity instead of the float
    assert (second.unit_price, second.sku) == (Decimal("8.176667"), None)
    guest = order_record({**ORDER, "customer_id": 0, "status": "cancelled"}, "eu-store")
    assert guest.customer_platform_id is None
    assert guest.email == "Sophie@Example.test"
    assert guest.cancelled_at == datetime(2026, 8, 14, 5, 25, 6, tzinfo=UTC)
    assert record.cancelled_at is None


def test_customer_mapping_tags_from_the_managed_meta_key_and_null_modified() -> None:
    item = {
        "id": 1,
        "email": "",
        "first_name": "Ad",
        "last_name": "Min",
        "date_created_gmt": "2026-11-23T10:28:18",
        "date_modified_gmt": None,
        "meta_data": [
            {"id": 5, "key": "loyalty_tier", "value": "crm:gold"},
            {"id": 6, "key": "shopcrm_tags", "value": "crm:vip,crm:at-risk"},
        ],
    }
    record = customer_record(item, "eu-store")
    assert record.updated_at == record.created_at == datetime(2026, 11, 23, 10, 28, 18, tzinfo=UTC)
    assert record.email is None
    assert record.tags == ("crm:at-risk", "crm:vip")


def test_unreadable_date_names_shop_and_record() -> None:
    with pytest.raises(PlatformError, match="shop eu-store: order 35: unreadable date"):
        order_record({**ORDER, "date_created_gmt": "yesterday"}, "eu-store")


def test_modified_after_is_naive_utc_one_second_early() -> None:
    since = datetime(2026, 11, 23, 11, 32, 1, 500, tzinfo=UTC).astimezone()
    assert modified_after(since) == "2026-11-23T11:32:00"


@responses.activate
def test_orders_since_signs_every_attempt_afresh_and_pages_by_number() -> None:
    url = f"{API}orders"
    responses.add(responses.GET, url, status=503, json={"code": "x", "message": "busy"})
    page1 = [dict(ORDER, id=i) for i in range(100)]
    responses.add(
        responses.GET,
        url,
        json=page1,
        headers={
            "X-WP-TotalPages": "2",
            "Link": '<http://elsewhere.test/old?oauth_nonce=1&page=2>; rel="next"',
        },
    )
    responses.add(responses.GET, url, json=[dict(ORDER, id=100)], headers={"X-WP-TotalPages": "2"})
    c = connector()
    since = datetime(2026, 11, 23, 10, 32, 1, tzinfo=UTC)
    pages = list(c.orders(since))
    assert [len(p.records) for p in pages] == [100, 1]
    assert all(p.high_water_mark is None for p in pages)  # id order promises no mark
    calls = [query(call) for call in responses.calls]
    assert len(calls) == 3
    assert calls[0]["oauth_nonce"] != calls[1]["oauth_nonce"]  # the retry was re-signed
    assert calls[0]["oauth_signature"] != calls[1]["oauth_signature"]
    assert [q["page"] for q in calls] == [["1"], ["1"], ["2"]]
    for q in calls:
        assert q["modified_after"] == ["2026-11-23T10:32:00"]
        assert q["dates_are_gmt"] == ["true"]
        assert (q["orderby"], q["order"], q["per_page"]) == (["id"], ["asc"], ["100"])
        assert "consumer_secret" not in q
    assert all(urlsplit(call.request.url).netloc == "shop.example.test" for call in responses.calls)
    assert c.requests_made == 3


@responses.activate
def test_https_uses_basic_auth_and_no_oauth_params() -> None:
    site = "https://shop.example.test"
    responses.add(
        responses.GET, f"{site}/{API_PATH}orders", json=[], headers={"X-WP-TotalPages": "0"}
    )
    assert list(connector(site).orders(None)) == []
    request = responses.calls[0].request
    assert request.headers["Authorization"].startswith("Basic ")
    assert "oauth_signature" not in (request.url or "")


@responses.activate
def test_missing_total_pages_header_stops_on_a_short_page() -> None:
    responses.add(responses.GET, f"{API}orders", json=[ORDER, dict(ORDER, id=36)])
    pages = list(connector().orders(None))
    assert [len(p.records) for p in pages] == [2]
    assert len(responses.calls) == 1


@responses.activate
def test_incremental_customers_scan_ids_then_fetch_only_the_changed() -> None:
    scan = [
        {"id": 1, "date_modified_gmt": None, "date_created_gmt": "2020-01-01T00:00:00"},
        {
            "id": 2,
            "date_modified_gmt": "2026-11-23T10:40:00",
            "date_created_gmt": "2020-01-01T00:00:00",
        },
        {
            "id": 3,
            "date_modified_gmt": "2026-11-20T00:00:00",
            "date_created_gmt": "2020-01-01T00:00:00",
        },
    ]
    full = {
        "id": 2,
        "email": "b@example.test",
        "date_created_gmt": "2020-01-01T00:00:00",
        "date_modified_gmt": "2026-11-23T10:40:00",
        "meta_data": [],
    }
    responses.add(responses.GET, f"{API}customers", json=scan, headers={"X-WP-TotalPages": "1"})
    responses.add(responses.GET, f"{API}customers", json=[full], headers={"X-WP-TotalPages": "1"})
    pages = list(connector().customers(datetime(2026, 11, 23, 10, 0, tzinfo=UTC)))
    assert [r.platform_id for p in pages for r in p.records] == ["2"]
    scan_q, fetch_q = (query(call) for call in responses.calls)
    assert scan_q["_fields"] == ["id,date_modified_gmt,date_created_gmt"]
    assert scan_q["role"] == ["all"]
    assert fetch_q["include"] == ["2"]
    assert (fetch_q["role"], fetch_q["per_page"]) == (["all"], ["100"])


@responses.activate
def test_refused_keys_name_the_shop_and_never_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    body = {
        "code": "woocommerce_rest_authentication_error",
        "message": "Invalid signature - provided signature does not match.",
        "data": {"status": 401},
    }
    responses.add(responses.GET, f"{API}settings/general", json=body, status=401)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as caught:
        connector().check()
    message = str(caught.value)
    assert "eu-store" in message
    assert "Invalid signature" in message
    assert SECRET not in message
    assert SECRET not in caplog.text


@responses.activate
def test_check_reads_currency_and_time_zone() -> None:
    responses.add(
        responses.GET,
        f"{API}settings/general",
        json=[{"id": "woocommerce_currency", "value": "EUR"}],
    )
    responses.add(
        responses.GET,
        f"{SITE}/wp-json/",
        json={"name": "Kaffee", "timezone_string": "", "gmt_offset": 1},
    )
    facts = connector().check()
    assert (facts.name, facts.currency, facts.timezone) == ("Kaffee", "EUR", "UTC+1")
    assert facts.warnings


@responses.activate
def test_apply_sends_only_the_managed_key_and_maps_per_item_errors() -> None:
    current = [
        {
            "id": 5,
            "meta_data": [
                {"id": 1, "key": "loyalty_tier", "value": "gold"},
                {"id": 2, "key": "shopcrm_tags", "value": "crm:vip"},
            ],
        },
        {"id": 6, "meta_data": []},
        {"id": 7, "meta_data": []},
    ]
    responses.add(responses.GET, f"{API}customers", json=current)
    error = {"code": "wc_user_invalid_id", "message": "Invalid user ID.", "data": {"status": 404}}
    responses.add(
        responses.POST,
        f"{API}customers/batch",
        json={"update": [{"id": 5}, {"id": 7, "error": error}]},
    )
    changes = [
        TagChange("5", remove=frozenset({"crm:vip"})),
        TagChange("6", add=frozenset()),  # nothing to change: no write for it
        TagChange("7", add=frozenset({"crm:new"})),
        TagChange("8", add=frozenset({"crm:new"})),  # not returned by include=: gone
    ]
    results = list(connector().apply(changes))
    assert [(r.customer_platform_id, r.ok) for r in results] == [
        ("5", True),
        ("6", True),
        ("7", False),
        ("8", False),
    ]
    assert "wc_user_invalid_id" in (results[2].error or "")
    assert "not found" in (results[3].error or "")
    sent = json.loads(responses.calls[1].request.body or b"{}")
    assert sent == {
        "update": [
            {"id": 5, "meta_data": [{"key": "shopcrm_tags", "value": None}]},
            {"id": 7, "meta_data": [{"key": "shopcrm_tags", "value": "crm:new"}]},
        ]
    }


@responses.activate
def test_apply_rejected_batch_fails_its_customers_and_continues() -> None:
    responses.add(
        responses.GET, f"{API}customers", json=[{"id": i, "meta_data": []} for i in range(1, 151)]
    )
    body = {
        "code": "woocommerce_rest_request_entity_too_large",
        "message": "too many",
        "data": {"status": 413},
    }
    responses.add(responses.POST, f"{API}customers/batch", json=body, status=413)
    responses.add(
        responses.POST,
        f"{API}customers/batch",
        json={"update": [{"id": i} for i in range(101, 151)]},
    )
    changes = [TagChange(str(i), add=frozenset({"crm:x"})) for i in range(1, 151)]
    results = list(connector().apply(changes))
    assert [r.ok for r in results] == [False] * 100 + [True] * 50
    assert "413" in (results[0].error or "")
    batches = [
        json.loads(c.request.body or b"{}") for c in responses.calls if c.request.method == "POST"
    ]
    assert [len(b["update"]) for b in batches] == [100, 50]
