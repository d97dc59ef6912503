"""Shopify connector against mocked HTTP (`responses`): shapes, pacing, retries, errors, auth."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses

from shopcrm.connectors.http import HttpClient
from shopcrm.connectors.shopify.auth import ShopifyAuth
from shopcrm.connectors.shopify.connector import ShopifyConnector
from shopcrm.connectors.shopify.queries import MUTATIONS_PER_DOCUMENT, ORDER_LINES
from shopcrm.errors import AuthError, PlatformError, PlatformUnavailable
from shopcrm.records import TagChange
from tests.shopify_fixtures import (
    CLIENT_SECRET,
    GRAPHQL_URL,
    TOKEN,
    TOKEN_URL,
    Sleeps,
    app_config,
    body,
    connection,
    customer_node,
    line_node,
    order_node,
    sent,
    shop_config,
    throttled,
)

SHOP_DATA = {
    "shop": {
        "name": "Main Shop",
        "myshopifyDomain": "main.myshopify.com",
        "currencyCode": "EUR",
        "ianaTimezone": "Europe/Berlin",
    },
    "currentAppInstallation": {
        "accessScopes": [{"handle": "read_customers"}, {"handle": "read_orders"}]
    },
}


def counted(stream: str, n: int) -> None:
    """The count query each stream starts with."""
    responses.post(GRAPHQL_URL, body=body({f"{stream}Count": {"count": n}}))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def connector(sleeps: Sleeps):
    c = ShopifyConnector(shop_config(), app_config(), sleep=sleeps)
    yield c
    c.close()


@responses.activate
def test_check_reports_facts_and_warns_without_read_all_orders(connector: ShopifyConnector) -> None:
    responses.post(GRAPHQL_URL, body=body(SHOP_DATA))
    facts = connector.check()
    assert (facts.name, facts.currency, facts.timezone) == ("Main Shop", "EUR", "Europe/Berlin")
    assert facts.scopes == ("read_customers", "read_orders")
    assert len(facts.warnings) == 1
    assert "read_all_orders" in facts.warnings[0]
    assert "60 days" in facts.warnings[0]
    assert responses.calls[0].request.headers["X-Shopify-Access-Token"] == TOKEN


@responses.activate
def test_check_has_no_warning_when_all_orders_are_readable(connector: ShopifyConnector) -> None:
    data = json.loads(json.dumps(SHOP_DATA))
    data["currentAppInstallation"]["accessScopes"].append({"handle": "read_all_orders"})
    responses.post(GRAPHQL_URL, body=body(data))
    assert connector.check().warnings == ()


@responses.activate
def test_customers_pages_since_a_mark_sorted_by_updated_at(connector: ShopifyConnector) -> None:
    counted("customers", 2)  # stale: one more arrives while we page
    responses.post(
        GRAPHQL_URL,
        body=body(
            {"customers": connection([customer_node(1), customer_node(2)], cursor="c2", more=True)}
        ),
    )
    responses.post(
        GRAPHQL_URL,
        body=body(
            {"customers": connection([customer_node(3, "2026-11-02T12:00:00+01:00")], cursor="c3")}
        ),
    )
    since = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    pages = list(connector.customers(since))

    count, first, second = (sent(c) for c in responses.calls)
    assert count["variables"] == {"limit": 250, "query": "updated_at:>='2026-11-01T09:30:00Z'"}
    assert "sortKey: UPDATED_AT" in first["query"]
    assert (first["variables"]["first"], second["variables"]["first"]) == (2, 250)
    assert first["variables"]["query"] == "updated_at:>='2026-11-01T09:30:00Z'"
    assert first["variables"]["after"] is None
    assert second["variables"]["after"] == "c2"
    assert [len(p.records) for p in pages] == [2, 1]
    customer = pages[0].records[0]
    assert customer.platform_id == "gid://shopify/Customer/1"
    assert customer.email == "ida1@example.test"
    assert customer.accepts_marketing is True
    assert customer.tags == ("vip", "crm:loyal")
    assert pages[1].records[0].updated_at == datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
    assert pages[0].high_water_mark == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert pages[1].high_water_mark == datetime(2026, 11, 2, 11, 0, tzinfo=UTC)


@responses.activate
def test_customer_without_email_or_consent(connector: ShopifyConnector) -> None:
    node = customer_node(5, defaultEmailAddress=None, tags=[])
    counted("customers", 1)
    responses.post(GRAPHQL_URL, body=body({"customers": connection([node])}))
    (page,) = connector.customers(datetime(2026, 1, 1, tzinfo=UTC))
    record = page.records[0]
    assert (record.email, record.accepts_marketing, record.tags) == (None, None, ())


@responses.activate
def test_orders_use_shop_money_and_page_the_remaining_lines(connector: ShopifyConnector) -> None:
    guest = order_node(2, [line_node(20, price=7.1)], customer=None, displayFinancialStatus="PAID")
    big = order_node(1, [line_node(10), line_node(11)], more_lines=True)
    counted("orders", 2)
    responses.post(GRAPHQL_URL, body=body({"orders": connection([big, guest])}))
    all_lines = [line_node(n) for n in (10, 11, 12)]
    responses.post(
        GRAPHQL_URL,
        body=body({"order": {"lineItems": connection(all_lines[:2], cursor="x", more=True)}}),
    )
    responses.post(GRAPHQL_URL, body=body({"order": {"lineItems": connection(all_lines[2:])}}))

    (page,) = connector.orders(datetime(2026, 10, 1, tzinfo=UTC))

    order, guest_order = page.records
    assert order.platform_id == "gid://shopify/Order/1"
    assert (order.total, order.refunded, order.currency) == (
        Decimal("24.90"),
        Decimal("5.00"),
        "EUR",
    )
    assert order.customer_platform_id == "gid://shopify/Customer/7"
    assert order.financial_status == "partially_refunded"
    assert order.number == "#1"
    assert order.updated_at == datetime(2026, 10, 2, 7, 0, tzinfo=UTC)
    assert [line.platform_id for line in order.lines] == [
        "gid://shopify/LineItem/10",
        "gid://shopify/LineItem/11",
        "gid://shopify/LineItem/12",
    ]
    line = order.lines[0]
    assert (line.quantity, line.unit_price, line.sku) == (2, Decimal("10.00"), "SKU-10")
    assert line.product_id == "gid://shopify/Product/10"
    assert guest_order.customer_platform_id is None
    assert guest_order.financial_status == "paid"
    assert guest_order.lines[0].unit_price == Decimal("7.1")  # a JSON number, exact
    line_queries = [sent(c) for c in responses.calls[2:]]
    assert all(q["query"] == ORDER_LINES for q in line_queries)
    assert [q["variables"]["after"] for q in line_queries] == [None, "x"]
    assert page.high_water_mark == guest_order.updated_at


@responses.activate
def test_repeated_cursor_is_a_clear_error(connector: ShopifyConnector) -> None:
    page = body({"customers": connection([customer_node(1)], cursor="same", more=True)})
    counted("customers", 5)
    responses.post(GRAPHQL_URL, body=page)
    responses.post(GRAPHQL_URL, body=page)
    with pytest.raises(PlatformError, match="shop main: pagination loop"):
        list(connector.customers(datetime(2026, 1, 1, tzinfo=UTC)))


@responses.activate
def test_throttled_with_200_waits_what_the_bucket_needs_then_succeeds(
    connector: ShopifyConnector, sleeps: Sleeps
) -> None:
    counted("customers", 250)
    responses.post(GRAPHQL_URL, body=throttled(requested=502, available=2.0, rate=100))
    responses.post(GRAPHQL_URL, body=body({"customers": connection([customer_node(1)])}))
    (page,) = connector.customers(datetime(2026, 1, 1, tzinfo=UTC))
    assert len(page.records) == 1
    assert len(responses.calls) == 3
    # the retry waits for 500 points at 100/s; the pacer adds only its small safety margin
    assert sum(sleeps) == pytest.approx(5.0, abs=0.1)


@responses.activate
def test_pacer_waits_before_a_query_the_bucket_cannot_afford(
    connector: ShopifyConnector, sleeps: Sleeps
) -> None:
    first = connection([customer_node(1)], cursor="c1", more=True)
    counted("customers", 250)
    responses.post(GRAPHQL_URL, body=body({"customers": first}, requested=502, available=100))
    responses.post(GRAPHQL_URL, body=body({"customers": connection([customer_node(2)])}))
    pages = list(connector.customers(datetime(2026, 1, 1, tzinfo=UTC)))
    assert len(pages) == 2
    assert len(sleeps) == 1
    assert sleeps[0] == pytest.approx((502 - 100) / 100, abs=0.1)
    assert len(responses.calls) == 3  # no THROTTLED round trip


@responses.activate
def test_429_with_retry_after_is_honoured(connector: ShopifyConnector, sleeps: Sleeps) -> None:
    responses.post(GRAPHQL_URL, status=429, headers={"Retry-After": "3"}, body="slow down")
    responses.post(GRAPHQL_URL, body=body(SHOP_DATA))
    assert connector.check().name == "Main Shop"
    assert sleeps[0] >= 3


@responses.activate
def test_502_then_success(connector: ShopifyConnector, sleeps: Sleeps) -> None:
    responses.post(GRAPHQL_URL, status=502, body="bad gateway")
    responses.post(GRAPHQL_URL, body=body(SHOP_DATA))
    assert connector.check().currency == "EUR"
    assert len(responses.calls) == 2
    assert len(sleeps) == 1


@responses.activate
def test_timeout_then_success(connector: ShopifyConnector) -> None:
    responses.post(GRAPHQL_URL, body=requests.ReadTimeout("read timed out"))
    responses.post(GRAPHQL_URL, body=body(SHOP_DATA))
    assert connector.check().timezone == "Europe/Berlin"


@responses.activate
def test_timeouts_that_persist_are_reported_as_unavailable(connector: ShopifyConnector) -> None:
    responses.post(GRAPHQL_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(PlatformUnavailable, match="shop main: POST timed out"):
        connector.check()
    assert len(responses.calls) == 6


@responses.activate
def test_malformed_json_is_retried_then_reported(connector: ShopifyConnector) -> None:
    responses.post(GRAPHQL_URL, body='{"data": {"shop": ')
    with pytest.raises(PlatformUnavailable, match="shop main: unreadable response body"):
        connector.check()
    assert len(responses.calls) == 6


@responses.activate
def test_malformed_json_once_then_success(connector: ShopifyConnector) -> None:
    responses.post(GRAPHQL_URL, body="<html>oops")
    responses.post(GRAPHQL_URL, body=body(SHOP_DATA))
    assert connector.check().name == "Main Shop"


@responses.activate
def test_graphql_errors_with_200_are_platform_errors_not_retried(
    connector: ShopifyConnector,
) -> None:
    responses.post(
        GRAPHQL_URL,
        body=json.dumps({"errors": [{"message": "Field 'bogus' doesn't exist on type 'Shop'"}]}),
    )
    with pytest.raises(PlatformError, match="shop main: GraphQL error: Field 'bogus'") as info:
        connector.check()
    assert not isinstance(info.value, PlatformUnavailable)
    assert len(responses.calls) == 1


@responses.activate
def test_revoked_token_is_an_auth_error_without_the_token(
    connector: ShopifyConnector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses.post(
        GRAPHQL_URL,
        status=401,
        body=json.dumps({"errors": "[API] Invalid API key or access token"}),
    )
    with pytest.raises(AuthError, match="authentication failed for shop main") as info:
        connector.check()
    assert len(responses.calls) == 1  # a fixed token cannot be renewed
    assert TOKEN not in str(info.value)
    assert TOKEN not in caplog.text


def _token_reply(token: str, expires_in: int = 86399) -> str:
    return json.dumps({"access_token": token, "scope": "read_customers", "expires_in": expires_in})


@responses.activate
def test_client_credentials_token_is_fetched_then_renewed_once_on_401(sleeps: Sleeps) -> None:
    responses.post(TOKEN_URL, body=_token_reply("shpat_first_token_abc"))
    responses.post(TOKEN_URL, body=_token_reply("shpat_second_token_def"))
    responses.post(GRAPHQL_URL, status=401, body="expired")
    responses.post(GRAPHQL_URL, body=body(SHOP_DATA))
    connector = ShopifyConnector(shop_config(client_credentials=True), app_config(), sleep=sleeps)
    assert connector.check().name == "Main Shop"
    urls = [c.request.url for c in responses.calls]
    assert urls == [TOKEN_URL, GRAPHQL_URL, TOKEN_URL, GRAPHQL_URL]
    grant = responses.calls[0].request.body
    assert "grant_type=client_credentials" in grant
    assert "client_id=app-id" in grant
    assert responses.calls[1].request.headers["X-Shopify-Access-Token"] == "shpat_first_token_abc"
    assert responses.calls[3].request.headers["X-Shopify-Access-Token"] == "shpat_second_token_def"


@responses.activate
def test_client_credentials_refused_twice_is_an_auth_error(
    sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses.post(TOKEN_URL, body=_token_reply("shpat_revoked_token_xyz"))
    responses.post(GRAPHQL_URL, status=401, body="revoked")
    connector = ShopifyConnector(shop_config(client_credentials=True), app_config(), sleep=sleeps)
    with pytest.raises(AuthError, match="authentication failed for shop main") as info:
        connector.check()
    assert len(responses.calls) == 4  # token, query, new token, query: then give up
    for secret in ("shpat_revoked_token_xyz", CLIENT_SECRET):
        assert secret not in str(info.value)
        assert secret not in caplog.text


@responses.activate
def test_token_endpoint_refusal_is_an_auth_error(sleeps: Sleeps) -> None:
    responses.post(TOKEN_URL, status=401, body='{"error":"invalid_client"}')
    connector = ShopifyConnector(shop_config(client_credentials=True), app_config(), sleep=sleeps)
    with pytest.raises(AuthError, match="authentication failed for shop main") as info:
        connector.check()
    assert CLIENT_SECRET not in str(info.value)


def test_token_is_renewed_shortly_before_it_expires() -> None:
    now = [1000.0]
    client = HttpClient(f"https://{shop_config().domain}", shop="main")
    auth = ShopifyAuth(
        shop_config(client_credentials=True).credentials, client, clock=lambda: now[0]
    )
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, body=_token_reply("shpat_day_one_token", expires_in=86399))
        mock.post(TOKEN_URL, body=_token_reply("shpat_day_two_token", expires_in=86399))
        assert auth.headers()["X-Shopify-Access-Token"] == "shpat_day_one_token"
        now[0] += 86399 - 301  # more than 5 minutes left: keep it
        assert auth.headers()["X-Shopify-Access-Token"] == "shpat_day_one_token"
        now[0] += 2  # within 5 minutes of expiry: renew before it fails
        assert auth.headers()["X-Shopify-Access-Token"] == "shpat_day_two_token"
        assert len(mock.calls) == 2


def _tag_outcome(node: bool = True, errors: list[str] | None = None) -> dict:
    return {
        "node": {"id": "gid"} if node else None,
        "userErrors": [{"field": ["id"], "message": m} for m in errors or []],
    }


@responses.activate
def test_apply_batches_aliased_mutations_with_only_the_given_tags(
    connector: ShopifyConnector,
) -> None:
    changes = [
        TagChange(
            f"gid://shopify/Customer/{n}",
            add=frozenset({"crm:vip"}),
            remove=frozenset({"crm:lost"}),
        )
        for n in range(60)
    ]

    def reply(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        aliases = [
            k.removesuffix("_id")
            for k in json.loads(request.body)["variables"]
            if k.endswith("_id")
        ]
        return 200, {}, body({a: _tag_outcome() for a in aliases})

    responses.add_callback(responses.POST, GRAPHQL_URL, callback=reply)
    results = list(connector.apply(changes))

    assert [r.customer_platform_id for r in results] == [c.customer_platform_id for c in changes]
    assert all(r.ok for r in results)
    documents = [sent(c) for c in responses.calls]
    assert len(documents) == 2  # 120 mutations, at most MUTATIONS_PER_DOCUMENT per document
    for doc in documents:
        ops = doc["query"].count("tagsAdd(") + doc["query"].count("tagsRemove(")
        assert ops <= MUTATIONS_PER_DOCUMENT
        tags = {tuple(v) for k, v in doc["variables"].items() if k.endswith("_tags")}
        assert tags == {("crm:vip",), ("crm:lost",)}
        assert "crm:vip" not in doc["query"]  # values travel as variables, never spliced


@responses.activate
def test_apply_reports_each_customer_and_continues(connector: ShopifyConnector) -> None:
    changes = [
        TagChange("gid://shopify/Customer/1", add=frozenset({"crm:vip"})),
        TagChange("gid://shopify/Customer/2", add=frozenset({"crm:vip"})),
        TagChange("gid://shopify/Customer/3", remove=frozenset({"crm:vip"})),
        TagChange("gid://shopify/Customer/4", add=frozenset({"crm:vip"})),
        TagChange("gid://shopify/Customer/5"),
    ]
    data = {
        "c0a": _tag_outcome(),
        "c1a": _tag_outcome(node=False, errors=["Customer does not exist"]),
        "c2r": None,
        "c3a": _tag_outcome(node=False),
    }
    errors = [{"message": "Invalid global id 'gid://shopify/Customer/3'", "path": ["c2r"]}]
    responses.post(GRAPHQL_URL, body=json.dumps({"data": data, "errors": errors}))
    results = {r.customer_platform_id.rsplit("/", 1)[1]: r for r in connector.apply(changes)}
    assert results["1"].ok
    assert results["5"].ok
    assert results["2"].error == "Customer does not exist"
    assert "Invalid global id" in str(results["3"].error)
    assert results["4"].error == "customer not found"
    assert len(responses.calls) == 1


@responses.activate
def test_apply_failed_document_fails_its_batch_only(connector: ShopifyConnector) -> None:
    changes = [
        TagChange(f"gid://shopify/Customer/{n}", add=frozenset({"crm:a"})) for n in range(80)
    ]
    responses.post(
        GRAPHQL_URL, body=json.dumps({"errors": [{"message": "Internal validation failed"}]})
    )
    responses.post(GRAPHQL_URL, body=body({f"c{i}a": _tag_outcome() for i in range(5)}))
    results = list(connector.apply(changes))
    assert len(results) == 80
    assert [r.ok for r in results] == [False] * MUTATIONS_PER_DOCUMENT + [True] * 5
    assert "Internal validation failed" in (results[0].error or "")


@responses.activate
def test_apply_stops_on_auth_error(connector: ShopifyConnector) -> None:
    responses.post(GRAPHQL_URL, status=401, body="no")
    with pytest.raises(AuthError):
        list(connector.apply([TagChange("gid://shopify/Customer/1", add=frozenset({"crm:a"}))]))


RESULT_URL = "https://storage.example.test/bulk/result.jsonl"


def _bulk_flow(stream: str, jsonl: str, *, count: int = 3) -> None:
    """Count, run, one RUNNING poll, COMPLETED, then the JSONL file."""
    counted(stream, count)
    op = {"id": "gid://shopify/BulkOperation/1", "status": "CREATED"}
    responses.post(
        GRAPHQL_URL, body=body({"bulkOperationRunQuery": {"bulkOperation": op, "userErrors": []}})
    )
    running = {**op, "status": "RUNNING", "errorCode": None, "url": None}
    responses.post(GRAPHQL_URL, body=body({"bulkOperation": running}))
    done = {**running, "status": "COMPLETED", "url": RESULT_URL}
    responses.post(GRAPHQL_URL, body=body({"bulkOperation": done}))
    responses.get(RESULT_URL, body=jsonl)


def _jsonl(*objects: dict) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


@responses.activate
def test_large_first_sync_of_orders_uses_a_bulk_operation(sleeps: Sleeps) -> None:
    def order(n: int) -> dict:
        node = order_node(n, [])
        del node["lineItems"]
        return node

    def line(n: int, parent: int) -> dict:
        return {**line_node(n), "__parentId": f"gid://shopify/Order/{parent}"}

    # children after their parent, but not right after it
    _bulk_flow(
        "orders",
        _jsonl(order(1), line(10, 1), order(2), order(3), line(20, 2), line(11, 1), line(30, 3)),
    )
    connector = ShopifyConnector(shop_config(), app_config(bulk_threshold=2), sleep=sleeps)
    pages = list(connector.orders(None))

    records = {r.platform_id.rsplit("/", 1)[1]: r for p in pages for r in p.records}
    assert sorted(records) == ["1", "2", "3"]
    assert [line.sku for line in records["1"].lines] == ["SKU-10", "SKU-11"]
    assert [line.sku for line in records["2"].lines] == ["SKU-20"]
    assert records["3"].total == Decimal("24.90")
    assert all(p.high_water_mark is None for p in pages)  # the file is not sorted
    run = sent(responses.calls[1])
    assert "bulkOperationRunQuery" in run["query"]
    assert "lineItems" in run["variables"]["query"]
    assert "bulkOperation(id: $id)" in sent(responses.calls[2])["query"]
    assert (
        "X-Shopify-Access-Token" not in responses.calls[-1].request.headers
    )  # not sent to storage
    assert len(sleeps) == 1  # one poll interval while RUNNING


@responses.activate
def test_large_first_sync_of_customers_uses_a_bulk_operation(sleeps: Sleeps) -> None:
    _bulk_flow("customers", _jsonl(customer_node(1), customer_node(2)))
    connector = ShopifyConnector(shop_config(), app_config(bulk_threshold=2), sleep=sleeps)
    (page,) = connector.customers(None)
    assert [r.email for r in page.records] == ["ida1@example.test", "ida2@example.test"]


@responses.activate
def test_first_sync_of_a_small_shop_pages(sleeps: Sleeps) -> None:
    counted("orders", 3)
    responses.post(GRAPHQL_URL, body=body({"orders": connection([order_node(1, [])])}))
    connector = ShopifyConnector(shop_config(), app_config(bulk_threshold=3), sleep=sleeps)
    (page,) = connector.orders(None)
    assert len(page.records) == 1
    assert sent(responses.calls[0])["variables"]["limit"] == 4
    paged = sent(responses.calls[1])
    assert "orders(first: $first" in paged["query"]
    assert paged["variables"]["query"] is None  # everything
    assert paged["variables"]["first"] == 3  # sized to the count


@responses.activate
def test_failed_bulk_operation_names_the_shop_and_code(sleeps: Sleeps) -> None:
    counted("customers", 50)
    op = {"id": "gid://shopify/BulkOperation/9", "status": "CREATED"}
    responses.post(
        GRAPHQL_URL, body=body({"bulkOperationRunQuery": {"bulkOperation": op, "userErrors": []}})
    )
    failed = {**op, "status": "FAILED", "errorCode": "TIMEOUT", "url": None}
    responses.post(GRAPHQL_URL, body=body({"bulkOperation": failed}))
    connector = ShopifyConnector(shop_config(), app_config(bulk_threshold=10), sleep=sleeps)
    with pytest.raises(PlatformError, match=r"shop main: bulk operation .*/9 FAILED \(TIMEOUT\)"):
        list(connector.customers(None))


@responses.activate
def test_nothing_changed_costs_one_count_per_stream(connector: ShopifyConnector) -> None:
    counted("customers", 0)
    counted("orders", 0)
    since = datetime(2026, 11, 1, tzinfo=UTC)
    assert list(connector.customers(since)) == []
    assert list(connector.orders(since)) == []
    assert len(responses.calls) == 2
    assert connector.requests_made == 2
