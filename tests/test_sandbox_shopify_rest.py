"""The legacy REST endpoints: shop.json, customers.json / orders.json with Link page_info."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests

from shopcrm.sandbox.shopify.app import ShopifySandbox
from tests.sandbox_shopify_fixtures import Client, small_shop

LINK = re.compile(r'<([^>]+)>; rel="(next|previous)"')


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(small_shop(90)) as sb:
        yield sb


def links(response: requests.Response) -> dict[str, str]:
    return {rel: url for url, rel in LINK.findall(response.headers.get("Link", ""))}


def walk(client: Client, path: str, params: dict) -> list[requests.Response]:
    pages = [client.rest(path, params)]
    while "next" in links(pages[-1]):
        assert len(pages) < 200, "pagination does not end"
        pages.append(client.rest(links(pages[-1])["next"]))
    return pages


def test_shop_json(sandbox: ShopifySandbox) -> None:
    response = Client(sandbox).rest("shop.json")
    assert response.status_code == 200
    shop = response.json()["shop"]
    assert shop["myshopify_domain"] == "sandbox.myshopify.com"
    assert shop["currency"] == "USD"
    assert re.fullmatch(r"\d+/40", response.headers["X-Shopify-Shop-Api-Call-Limit"])


def test_customers_follow_link_page_info_to_the_end(sandbox: ShopifySandbox) -> None:
    client = Client(sandbox)
    pages = walk(client, "customers.json", {"limit": 25})
    assert all(p.status_code == 200 for p in pages)
    ids = [c["id"] for p in pages for c in p.json()["customers"]]
    assert ids == sorted(sandbox.dataset.customers)  # default order: id asc
    assert [len(p.json()["customers"]) for p in pages] == [25, 25, 25, 15]
    assert "previous" not in links(pages[0])
    assert "previous" in links(pages[1])
    back = client.rest(links(pages[2])["previous"]).json()["customers"]
    assert [c["id"] for c in back] == ids[25:50]


def test_updated_at_min_with_updated_at_order(sandbox: ShopifySandbox) -> None:
    client = Client(sandbox)
    cut = "2025-06-01T00:00:00-04:00"
    pages = walk(
        client, "customers.json", {"updated_at_min": cut, "order": "updated_at asc", "limit": 10}
    )
    rows = [c for p in pages for c in p.json()["customers"]]
    stamps = [datetime.fromisoformat(c["updated_at"]) for c in rows]
    assert stamps == sorted(stamps)
    assert all(s >= datetime.fromisoformat(cut) for s in stamps)
    expected = [
        c for c in sandbox.dataset.customers.values() if c.updated_at >= datetime.fromisoformat(cut)
    ]
    assert len(rows) == len(expected)
    assert rows[0]["admin_graphql_api_id"].startswith("gid://shopify/Customer/")
    assert isinstance(rows[0]["tags"], str)


def test_orders_default_to_open_and_status_any_shows_all(sandbox: ShopifySandbox) -> None:
    client = Client(sandbox)
    everything = [
        o
        for p in walk(client, "orders.json", {"status": "any", "limit": 250})
        for o in p.json()["orders"]
    ]
    open_only = [o for p in walk(client, "orders.json", {"limit": 250}) for o in p.json()["orders"]]
    assert len(everything) == len(sandbox.dataset.orders)
    cancelled = [o for o in everything if o["cancelled_at"]]
    assert cancelled
    assert len(open_only) == len(everything) - len(cancelled)
    sample = everything[0]
    seed = sandbox.dataset.orders[sample["id"]]
    assert sample["total_price"] == str(seed.total)
    assert sample["name"] == f"#{seed.number}"
    assert len(sample["line_items"]) == len(seed.lines)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": 251}, 400),
        ({"limit": "many"}, 400),
        ({"updated_at_min": "last week"}, 400),
        ({"order": "colour asc"}, 400),
    ],
)
def test_bad_parameters_are_400_naming_them(
    sandbox: ShopifySandbox, params: dict, status: int
) -> None:
    response = Client(sandbox).rest("customers.json", params)
    assert response.status_code == status
    assert set(response.json()["errors"]) == set(params)


def test_page_info_cannot_be_combined_with_filters(sandbox: ShopifySandbox) -> None:
    client = Client(sandbox)
    first = client.rest("customers.json", {"limit": 5})
    page_info = re.search(r"page_info=([^&>]+)", links(first)["next"])[1]
    response = client.rest(
        "customers.json", {"page_info": page_info, "updated_at_min": "2025-01-01"}
    )
    assert response.status_code == 400
    assert "page_info" in response.json()["errors"]


def test_rest_needs_a_token_and_a_known_version(sandbox: ShopifySandbox) -> None:
    url = f"{sandbox.url}/admin/api/2026-10/customers.json"
    assert requests.get(url, timeout=10).status_code == 401
    assert (
        Client(sandbox).rest(f"{sandbox.url}/admin/api/1999-01/customers.json").status_code == 404
    )


def test_rest_bucket_answers_429_with_retry_after() -> None:
    with ShopifySandbox(small_shop(5)) as sb:
        client = Client(sb)
        statuses = [client.rest("shop.json") for _ in range(45)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, "45 requests at once exceed the 40-request REST bucket"
        assert float(limited[0].headers["Retry-After"]) > 0
        assert "Exceeded 2 calls per second" in limited[0].json()["errors"]
