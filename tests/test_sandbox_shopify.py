"""The Shopify sandbox over 127.0.0.1: routing, auth, paging, search, money, tags."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from shopcrm.sandbox.shopify.app import ShopifySandbox
from tests.sandbox_shopify_fixtures import Client, small_shop

CUSTOMERS = """
query($first: Int!, $after: String, $query: String, $reverse: Boolean) {
  customers(first: $first, after: $after, sortKey: UPDATED_AT, query: $query, reverse: $reverse) {
    edges { cursor node { id updatedAt tags email defaultEmailAddress { emailAddress } } }
    pageInfo { hasNextPage endCursor hasPreviousPage }
  }
}"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(small_shop(), restore_rate=1e6) as sb:  # throttling: its own file
        yield sb


@pytest.fixture
def client(sandbox: ShopifySandbox) -> Client:
    return Client(sandbox)


def all_customers(client: Client, query: str | None = None, first: int = 50) -> list[dict]:
    out, after = [], None
    while True:
        page = client.data(CUSTOMERS, {"first": first, "after": after, "query": query})["customers"]
        out += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_shop_facts_and_versions(client: Client, sandbox: ShopifySandbox) -> None:
    query = "{ shop { name myshopifyDomain currencyCode ianaTimezone } }"
    for version in ("2026-07", "2026-10"):
        response = client.post(query, version=version)
        assert response.headers["X-Shopify-API-Version"] == version
        assert response.json()["data"]["shop"] == {
            "name": "Sandbox Shop",
            "myshopifyDomain": "sandbox.myshopify.com",
            "currencyCode": "USD",
            "ianaTimezone": "America/New_York",
        }
    assert client.post(query, version="2019-13").status_code == 404


def test_host_header_picks_the_shop() -> None:
    shops = {
        "alpha": small_shop(30, seed=1, shop_name="Alpha", currency="EUR"),
        "beta": small_shop(40, seed=2, shop_name="Beta"),
    }
    with ShopifySandbox(shops) as sb:
        alpha, beta = Client(sb, "alpha"), Client(sb, "beta")
        assert alpha.data("{ shop { name currencyCode } }")["shop"] == {
            "name": "Alpha",
            "currencyCode": "EUR",
        }
        assert beta.data("{ shop { myshopifyDomain } }")["shop"]["myshopifyDomain"] == (
            "beta.myshopify.com"
        )
        assert len(all_customers(alpha)) == 30
        assert len(all_customers(beta)) == 40
        # a shop's token is no key to another shop
        assert (
            Client(sb, "beta", token=sb.admin_token("alpha")).post("{ shop { name } }").status_code
            == 401
        )
        # any other host is the first shop
        plain = requests.post(
            f"{sb.url}/admin/api/2026-10/graphql.json",
            json={"query": "{ shop { name } }"},
            headers={"X-Shopify-Access-Token": sb.admin_token("alpha")},
            timeout=10,
        )
        assert plain.json()["data"]["shop"]["name"] == "Alpha"


@pytest.mark.parametrize("token", [None, "", "shpat_wrong"])
def test_missing_or_wrong_token_is_401_like_shopify(sandbox: ShopifySandbox, token) -> None:
    headers = {} if token is None else {"X-Shopify-Access-Token": token}
    response = requests.post(
        f"{sandbox.url}/admin/api/2026-10/graphql.json",
        json={"query": "{ shop { name } }"},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


def test_client_credentials_tokens_expire_and_revoke() -> None:
    with ShopifySandbox(small_shop(10), token_ttl_s=3600) as sb:
        client_id, secret = sb.client_credentials()
        url = f"{sb.url}/admin/oauth/access_token"
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        issued = requests.post(url, data=form, timeout=10).json()
        assert issued["expires_in"] == 3600
        assert issued["scope"].split(",") == [
            "read_customers",
            "write_customers",
            "read_orders",
            "read_all_orders",
        ]
        fresh = Client(sb, token=issued["access_token"])
        assert fresh.post("{ shop { name } }").status_code == 200
        sb.expire_issued_tokens()
        assert fresh.post("{ shop { name } }").status_code == 401
        static = Client(sb)
        assert static.post("{ shop { name } }").status_code == 200  # the static token lives on
        again = requests.post(url, data=form, timeout=10).json()["access_token"]
        assert again != issued["access_token"]
        sb.revoke_tokens()
        assert static.post("{ shop { name } }").status_code == 401
        assert Client(sb, token=again).post("{ shop { name } }").status_code == 401


def test_issued_tokens_expire_after_their_ttl() -> None:
    with ShopifySandbox(small_shop(10), token_ttl_s=0.3) as sb:
        client_id, secret = sb.client_credentials()
        token = requests.post(
            f"{sb.url}/admin/oauth/access_token",
            json={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
            timeout=10,
        ).json()["access_token"]
        client = Client(sb, token=token)
        assert client.post("{ shop { name } }").status_code == 200
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while client.post("{ shop { name } }").status_code == 200:
            assert datetime.now(UTC) < deadline, "token never expired"
        assert client.post("{ shop { name } }").json()["errors"].startswith("[API] Invalid API key")


def test_wrong_client_secret_is_refused_without_echoing_it(sandbox: ShopifySandbox) -> None:
    client_id, secret = sandbox.client_credentials()
    wrong = secret[:-4] + "zzzz"
    response = requests.post(
        f"{sandbox.url}/admin/oauth/access_token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": wrong},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"
    assert wrong not in response.text
    assert secret not in response.text


def test_customers_page_oldest_updated_first_each_once(
    client: Client, sandbox: ShopifySandbox
) -> None:
    nodes = all_customers(client, first=17)
    keys = [(when(n["updatedAt"]), int(n["id"].rsplit("/", 1)[1])) for n in nodes]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys)) == len(sandbox.dataset.customers)


def test_reverse_gives_newest_first(client: Client) -> None:
    page = client.data(CUSTOMERS, {"first": 5, "reverse": True})["customers"]
    stamps = [e["node"]["updatedAt"] for e in page["edges"]]
    assert stamps == sorted(stamps, reverse=True)
    newest = max(all_customers(client), key=lambda n: n["updatedAt"])
    assert stamps[0] == newest["updatedAt"]


def test_cursor_stays_valid_while_records_change() -> None:
    ds = small_shop(60)
    with ShopifySandbox(ds) as sb:
        client = Client(sb)
        first = client.data(CUSTOMERS, {"first": 20})["customers"]
        seen = {e["node"]["id"] for e in first["edges"]}
        changed = {f"gid://shopify/Customer/{i}" for k, i in ds.mutate(10) if k == "customer"}
        after = first["pageInfo"]["endCursor"]
        rest = []
        while after:
            page = client.data(CUSTOMERS, {"first": 20, "after": after})["customers"]
            rest += [e["node"]["id"] for e in page["edges"]]
            after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
        assert page["pageInfo"]["hasPreviousPage"] is True
        # nothing unchanged is lost, changed records come again at the end
        assert seen | set(rest) == {f"gid://shopify/Customer/{i}" for i in ds.customers}
        assert changed <= set(rest[-len(changed) :])


@pytest.mark.parametrize(
    "term",
    [
        "updated_at:>'{day}T00:00:00Z'",
        "updated_at:>'{day} 00:00:00+00:00'",
        "updated_at:>={day}",
    ],
)
def test_search_date_formats(client: Client, sandbox: ShopifySandbox, term: str) -> None:
    # the shop is in New York: the bare date means midnight there, 05:00 UTC
    cut = datetime(2025, 6, 1, tzinfo=UTC)
    if "'" not in term:
        cut += timedelta(hours=4)  # EDT in June
    found = {n["id"] for n in all_customers(client, term.format(day="2025-06-01"))}
    expected = {
        f"gid://shopify/Customer/{c.id}"
        for c in sandbox.dataset.customers.values()
        if c.updated_at >= cut
    }
    assert found == expected
    assert 0 < len(found) < len(sandbox.dataset.customers)


def test_greater_than_includes_the_same_second(client: Client, sandbox: ShopifySandbox) -> None:
    target = sorted(sandbox.dataset.customers.values(), key=lambda c: (c.updated_at, c.id))[50]
    stamp = target.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    after = all_customers(client, f"updated_at:>'{stamp}'")
    assert after[0]["updatedAt"] == stamp
    before = all_customers(client, f"updated_at:<'{stamp}'")
    assert all(n["updatedAt"] < stamp for n in before)
    assert len(before) + len(after) == len(sandbox.dataset.customers)


def test_unknown_search_field_is_a_warning_not_a_filter(client: Client) -> None:
    body = client.gql(CUSTOMERS, {"first": 3, "query": "colour:blue"})
    assert len(body["data"]["customers"]["edges"]) == 3
    assert body["extensions"]["search"][0]["warnings"][0]["field"] == "colour"


def test_bad_search_date_is_an_error_naming_it(client: Client) -> None:
    body = client.gql(CUSTOMERS, {"first": 3, "query": "updated_at:>'yesterday'"})
    assert "yesterday" in body["errors"][0]["message"]


@pytest.mark.parametrize("first", [251, -1])
def test_page_size_limits(client: Client, first: int) -> None:
    body = client.gql("query($n: Int!) { customers(first: $n) { nodes { id } } }", {"n": first})
    assert body["data"] is None
    assert "250" in body["errors"][0]["message"]


def test_connection_needs_first(client: Client) -> None:
    body = client.gql("{ customers { nodes { id } } }")
    assert body["errors"][0]["message"] == "you must provide one of first or last"


def test_deprecated_email_answers_beside_default_email_address(client: Client) -> None:
    nodes = all_customers(client)
    with_email = [n for n in nodes if n["defaultEmailAddress"]]
    assert with_email
    assert all(n["email"] == n["defaultEmailAddress"]["emailAddress"] for n in with_email)
    assert all(n["email"] is None for n in nodes if n["defaultEmailAddress"] is None)


ORDERS = """
query($after: String) {
  orders(first: 25, after: $after, sortKey: UPDATED_AT) {
    nodes {
      id name email customer { id } displayFinancialStatus cancelledAt currencyCode
      totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
      totalRefundedSet { shopMoney { amount } }
      lineItems(first: 10) { nodes { quantity originalUnitPriceSet { shopMoney { amount } } } }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""


def all_orders(client: Client) -> list[dict]:
    out, after = [], None
    while True:
        page = client.data(ORDERS, {"after": after})["orders"]
        out += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return out
        after = page["pageInfo"]["endCursor"]


def test_orders_money_guests_and_statuses(client: Client, sandbox: ShopifySandbox) -> None:
    orders = all_orders(client)
    assert len(orders) == len(sandbox.dataset.orders)
    statuses = {o["displayFinancialStatus"] for o in orders}
    assert {"PAID", "PARTIALLY_REFUNDED", "REFUNDED"} <= statuses
    guests = [o for o in orders if o["customer"] is None]
    assert len(guests) == sum(1 for o in sandbox.dataset.orders.values() if o.customer_id is None)
    converted = [
        o for o in orders if o["totalPriceSet"]["presentmentMoney"]["currencyCode"] != "USD"
    ]
    assert 0.1 < len(converted) / len(orders) < 0.3
    for o in orders:
        seed = sandbox.dataset.orders[int(o["id"].rsplit("/", 1)[1])]
        shop_money = o["totalPriceSet"]["shopMoney"]
        assert shop_money["currencyCode"] == "USD"
        assert Decimal(shop_money["amount"]) == seed.total
        assert Decimal(o["totalRefundedSet"]["shopMoney"]["amount"]) == seed.refunded
        assert o["name"] == f"#{seed.number}"
        assert o["email"] == seed.email
        lines = sum(
            Decimal(li["originalUnitPriceSet"]["shopMoney"]["amount"]) * li["quantity"]
            for li in o["lineItems"]["nodes"]
        )
        assert lines == seed.subtotal


def test_line_items_page_with_their_own_cursor(client: Client, sandbox: ShopifySandbox) -> None:
    order = next(o for o in sandbox.dataset.orders.values() if len(o.lines) >= 3)
    query = """query($id: ID!, $after: String) { order(id: $id) {
        lineItems(first: 2, after: $after) {
          nodes { id } pageInfo { hasNextPage endCursor } } } }"""
    gid = f"gid://shopify/Order/{order.id}"
    first = client.data(query, {"id": gid})["order"]["lineItems"]
    assert first["pageInfo"]["hasNextPage"] is True
    second = client.data(query, {"id": gid, "after": first["pageInfo"]["endCursor"]})["order"]
    ids = [n["id"] for n in first["nodes"] + second["lineItems"]["nodes"]]
    assert ids == [f"gid://shopify/LineItem/{line.id}" for line in order.lines][: len(ids)]
    assert len(ids) == min(4, len(order.lines))


def test_node_lookup_and_access_scopes(client: Client, sandbox: ShopifySandbox) -> None:
    data = client.data(
        """{ node(id: "gid://shopify/Customer/3") { id ... on Customer { firstName } }
             missing: customer(id: "gid://shopify/Customer/999999") { id }
             currentAppInstallation { accessScopes { handle } } }"""
    )
    assert data["node"] == {
        "id": "gid://shopify/Customer/3",
        "firstName": sandbox.dataset.customers[3].first_name,
    }
    assert data["missing"] is None
    assert {s["handle"] for s in data["currentAppInstallation"]["accessScopes"]} == {
        "read_customers",
        "write_customers",
        "read_orders",
        "read_all_orders",
    }


def test_without_read_all_orders_only_sixty_days_show() -> None:
    ds = small_shop(80)
    with ShopifySandbox(ds, scopes=("read_customers", "read_orders"), restore_rate=1e6) as sb:
        client = Client(sb)
        seen = all_orders(client)
        recent = [o for o in ds.orders.values() if o.created_at >= ds.now - timedelta(days=60)]
        assert len(seen) == len(recent) < len(ds.orders)
        denied = client.gql(
            'mutation { tagsAdd(id: "gid://shopify/Customer/1", tags: ["x"]) {'
            " userErrors { message } } }"
        )
        assert denied["errors"][0]["message"].startswith("Access denied")


def test_list_pages_drive_the_mid_sync_change_knob() -> None:
    ds = small_shop(60)
    ds.mutate_after_reads, ds.mutate_count = 2, 6
    with ShopifySandbox(ds) as sb:
        client = Client(sb)
        client.data(CUSTOMERS, {"first": 10})
        assert ds.mutated_during_sync == []
        client.data(CUSTOMERS, {"first": 10})
        assert len(ds.mutated_during_sync) == 6


TAGS_ADD = """mutation($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } } }"""
TAGS_REMOVE = """mutation($id: ID!, $tags: [String!]!) {
  tagsRemove(id: $id, tags: $tags) { node { id } userErrors { field message } } }"""


def test_tags_add_and_remove_touch_only_the_given_tags() -> None:
    ds = small_shop(20)
    customer = ds.customers[5]
    customer.tags = ["newsletter", "VIP"]
    before = customer.updated_at
    with ShopifySandbox(ds) as sb:
        client = Client(sb)
        gid = "gid://shopify/Customer/5"
        writes = sb.server.stats.writes
        result = client.data(TAGS_ADD, {"id": gid, "tags": ["crm:champion", "vip"]})["tagsAdd"]
        assert result == {"node": {"id": gid}, "userErrors": []}
        assert customer.tags == ["crm:champion", "newsletter", "VIP"]  # "vip" is already there
        assert customer.updated_at > before
        assert sb.server.stats.writes == writes + 1
        client.data(TAGS_REMOVE, {"id": gid, "tags": ["crm:champion", "crm:absent"]})
        assert customer.tags == ["newsletter", "VIP"]
        # a change that changes nothing is not a write
        client.data(TAGS_REMOVE, {"id": gid, "tags": ["crm:absent"]})
        assert sb.server.stats.writes == writes + 2
        seen = client.data('{ customer(id: "gid://shopify/Customer/5") { tags updatedAt } }')
        assert seen["customer"]["tags"] == ["newsletter", "VIP"]


def test_tags_on_unknown_customer_is_a_user_error(client: Client) -> None:
    result = client.data(TAGS_ADD, {"id": "gid://shopify/Customer/987654", "tags": ["crm:x"]})
    assert result["tagsAdd"]["node"] is None
    assert result["tagsAdd"]["userErrors"][0]["field"] == ["id"]


def test_too_long_tag_is_a_user_error(client: Client, sandbox: ShopifySandbox) -> None:
    before = list(sandbox.dataset.customers[7].tags)
    result = client.data(TAGS_ADD, {"id": "gid://shopify/Customer/7", "tags": ["x" * 256]})
    assert result["tagsAdd"]["userErrors"][0]["field"] == ["tags"]
    assert sandbox.dataset.customers[7].tags == before


def test_counts_follow_the_search_and_the_limit(client: Client, sandbox: ShopifySandbox) -> None:
    data = client.data(
        """{ all: customersCount { count precision }
             capped: customersCount(limit: 10) { count precision }
             recent: ordersCount(query: "updated_at:>='2025-06-01T00:00:00Z'", limit: null) {
               count } }"""
    )
    assert data["all"] == {"count": len(sandbox.dataset.customers), "precision": "EXACT"}
    assert data["capped"] == {"count": 10, "precision": "AT_LEAST"}
    cut = datetime(2025, 6, 1, tzinfo=UTC)
    expected = sum(1 for o in sandbox.dataset.orders.values() if o.updated_at >= cut)
    assert data["recent"]["count"] == expected


def test_reverse_paging_walks_the_same_records_backwards(client: Client) -> None:
    forward = [n["id"] for n in all_customers(client, first=40)]
    backward, after = [], None
    while True:
        page = client.data(CUSTOMERS, {"first": 40, "after": after, "reverse": True})["customers"]
        backward += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert backward == forward[::-1]


def test_created_at_window_with_both_bounds(client: Client, sandbox: ShopifySandbox) -> None:
    query = "created_at:>='2024-01-01T00:00:00Z' created_at:<='2024-12-31T23:59:59Z'"
    found = {n["id"] for n in all_customers(client, query)}
    low, high = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    expected = {
        f"gid://shopify/Customer/{c.id}"
        for c in sandbox.dataset.customers.values()
        if low <= c.created_at <= high
    }
    assert found == expected
    assert found


@pytest.mark.parametrize(
    ("asked", "served"),
    [
        ("2026-10", "2026-10"),
        ("2025-10", "2025-10"),
        ("unstable", "unstable"),
        ("2025-07", "2025-10"),  # no longer supported: falls forward to the oldest supported
        ("2024-01", "2025-10"),
        ("2019-04", "2025-10"),  # Shopify's first version
        ("2025-05", None),  # never released: versions are quarterly
        ("2019-01", None),  # before versioning began
        ("2027-01", None),  # not released in the sandbox's world
        ("2026-1", None),  # malformed
        ("latest", None),
    ],
)
def test_versions_are_served_as_shopify_serves_them(
    client: Client, asked: str, served: str | None
) -> None:
    graphql = client.post("{ shop { name } }", version=asked)
    rest = client.rest(f"{client.sandbox.url}/admin/api/{asked}/customers.json")
    if served is None:
        assert (graphql.status_code, rest.status_code) == (404, 404)
        return
    assert graphql.status_code == rest.status_code == 200
    assert graphql.json()["data"]["shop"]["name"] == "Sandbox Shop"
    assert len(rest.json()["customers"]) > 0
    assert graphql.headers["X-Shopify-API-Version"] == served
    assert rest.headers["X-Shopify-API-Version"] == served


def test_version_header_is_on_refusals_too(client: Client) -> None:
    refused = Client(client.sandbox, token="nope").post("{ shop { name } }", version="2024-04")
    assert refused.status_code == 401
    assert refused.headers["X-Shopify-API-Version"] == "2025-10"
    unknown = client.rest(f"{client.sandbox.url}/admin/api/2024-04/products.json")
    assert unknown.status_code == 404
    assert unknown.headers["X-Shopify-API-Version"] == "2025-10"
