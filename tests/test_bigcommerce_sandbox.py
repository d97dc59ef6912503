"""The BigCommerce sandbox over 127.0.0.1: auth, quota, paging, filters and attribute writes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from shopcrm.sandbox.bigcommerce.app import BigCommerceSandbox
from tests.bigcommerce_fixtures import TOKEN, dataset, sandbox


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sb() -> Iterator[BigCommerceSandbox]:
    with sandbox(dataset(120)) as running:
        yield running


def _get(sb: BigCommerceSandbox, path: str, token: str = TOKEN, **params) -> requests.Response:
    return requests.get(
        f"{sb.url}/stores/{sb.store_hash}{path}",
        params=params,
        headers={"X-Auth-Token": token},
        timeout=10,
    )


def _send(sb: BigCommerceSandbox, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(
        method,
        f"{sb.url}/stores/{sb.store_hash}{path}",
        headers={"X-Auth-Token": TOKEN},
        timeout=10,
        **kwargs,
    )


def test_a_wrong_token_gets_the_version_s_401_body(sb: BigCommerceSandbox) -> None:
    v3 = _get(sb, "/v3/customers", token="nope")
    v2 = _get(sb, "/v2/orders", token="nope")
    assert (v3.status_code, v2.status_code) == (401, 401)
    assert v3.json()["status"] == 401
    assert v2.json()[0]["status"] == 401


def test_the_quota_is_per_window_with_headers_and_429() -> None:
    clock = Clock()
    with sandbox(dataset(5), quota=3, window_ms=30_000, clock=clock) as sb:
        answers = [_get(sb, "/v2/store") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["X-Rate-Limit-Requests-Left"] for a in answers] == ["2", "1", "0", "0"]
        assert answers[0].headers["X-Rate-Limit-Requests-Quota"] == "3"
        assert answers[0].headers["X-Rate-Limit-Time-Window-Ms"] == "30000"
        assert answers[3].content == b""
        assert answers[3].headers["X-Retry-After"] == "30"
        clock.now = 12.5
        assert _get(sb, "/v2/store").headers["X-Rate-Limit-Time-Reset-Ms"] == "17500"
        clock.now = 30.0
        assert _get(sb, "/v2/store").status_code == 200


def test_customers_page_with_meta_filters_and_attributes(sb: BigCommerceSandbox) -> None:
    body = _get(sb, "/v3/customers", limit=50, page=2, sort="date_modified:asc").json()
    pagination = body["meta"]["pagination"]
    assert (pagination["total"], pagination["count"], pagination["current_page"]) == (120, 50, 2)
    assert pagination["total_pages"] == 3
    assert pagination["links"]["next"] == "?page=3&limit=50"
    stamps = [c["date_modified"] for c in body["data"]]
    assert stamps == sorted(stamps)
    cut = stamps[10]
    newer = _get(sb, "/v3/customers", limit=250, **{"date_modified:min": cut}).json()["data"]
    assert min(c["date_modified"] for c in newer) == cut  # inclusive
    with_attrs = _get(sb, "/v3/customers", limit=250, include="attributes").json()["data"]
    assert any(c["attributes"] for c in with_attrs)
    assert all("attributes" not in c for c in body["data"])
    assert _get(sb, "/v3/customers", limit=251).status_code == 413


def test_orders_are_a_bare_list_and_204_past_the_end(sb: BigCommerceSandbox) -> None:
    total = len(sb.dataset.orders)
    first = _get(sb, "/v2/orders", limit=250, sort="date_modified")
    assert first.status_code == 200
    assert isinstance(first.json(), list)
    past = _get(sb, "/v2/orders", limit=250, page=total // 250 + 2)
    assert past.status_code == 204
    assert past.content == b""
    newest = _get(sb, "/v2/orders", limit=1, sort="id:desc").json()[0]
    assert newest["id"] == max(sb.dataset.orders)
    above = _get(sb, "/v2/orders", limit=250, min_id=newest["id"]).json()
    assert [o["id"] for o in above] == [newest["id"]]
    assert _get(sb, "/v2/orders", min_date_modified="not a date").status_code == 400


def test_attribute_writes_validate_like_the_platform(sb: BigCommerceSandbox) -> None:
    dup = _send(sb, "POST", "/v3/customers/attributes", json=[{"name": "birthday", "type": "date"}])
    assert dup.status_code == 422
    made = _send(sb, "POST", "/v3/customers/attributes", json=[{"name": "x", "type": "string"}])
    attribute = made.json()["data"][0]["id"]
    eleven = [{"attribute_id": attribute, "customer_id": c, "value": "v"} for c in range(1, 12)]
    assert _send(sb, "PUT", "/v3/customers/attribute-values", json=eleven).status_code == 413
    mixed = [
        {"attribute_id": attribute, "customer_id": 1, "value": "v"},
        {"attribute_id": attribute, "customer_id": 99999, "value": "v"},
    ]
    refused = _send(sb, "PUT", "/v3/customers/attribute-values", json=mixed)
    assert refused.status_code == 422
    assert list(refused.json()["errors"]) == ["1.customer_id"]
    assert "x" not in sb.customer_values(1)  # refused whole
    saved = _send(sb, "PUT", "/v3/customers/attribute-values", json=mixed[:1]).json()["data"]
    assert sb.customer_values(1)["x"] == "v"
    gone = _send(sb, "DELETE", "/v3/customers/attribute-values", params={"id:in": saved[0]["id"]})
    assert gone.status_code == 204
    assert "x" not in sb.customer_values(1)
