"""Calculated query cost and the leaky bucket: Shopify's numbers, THROTTLED shape, refunds."""

from __future__ import annotations

import pytest
from graphql import parse

from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.sandbox.shopify.cost import LeakyBucket, QueryCost
from shopcrm.sandbox.shopify.schema import sandbox_schema
from tests.sandbox_shopify_fixtures import Client, small_shop


def requested(query: str, variables: dict | None = None) -> int:
    return QueryCost(sandbox_schema(), parse(query), variables).total()


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        ("{ shop { name currencyCode } }", 1),  # object 1, scalars and enums 0
        # Shopify's published example: 2 + 250 x (order 1 + MoneyBag 1 + MoneyV2 1)
        (
            "{ orders(first: 250) { edges { node { id"
            " totalPriceSet { shopMoney { amount } } } } } }",
            752,
        ),
        ("{ customers(first: 10) { nodes { id } pageInfo { hasNextPage } } }", 12),
        (
            "{ orders(first: 10) { nodes { id lineItems(first: 5) { nodes { id } } } } }",
            2 + 10 * (1 + 2 + 5),
        ),
        (
            '{ node(id: "gid://shopify/Customer/1") {'
            " id ... on Customer { amountSpent { amount } } } }",
            2,
        ),
        (
            'mutation { a: tagsAdd(id: "x", tags: ["t"]) { node { id } }'
            ' b: tagsRemove(id: "x", tags: ["t"]) { node { id } } }',
            20,
        ),
    ],
)
def test_requested_cost_follows_shopifys_rules(query: str, cost: int) -> None:
    assert requested(query) == cost


def test_cost_reads_first_from_variables() -> None:
    query = "query($n: Int!) { customers(first: $n) { nodes { id } } }"
    assert requested(query, {"n": 40}) == 42


def test_every_response_carries_cost_and_actual_is_refunded() -> None:
    with ShopifySandbox(small_shop(30)) as sb:
        client = Client(sb)
        body = client.gql("{ customers(first: 250) { nodes { id } } }")
        cost = body["extensions"]["cost"]
        assert cost["requestedQueryCost"] == 252
        assert cost["actualQueryCost"] == 2 + 30
        status = cost["throttleStatus"]
        assert status["maximumAvailable"] == 2000.0
        assert status["restoreRate"] == 100.0
        assert 2000 - 32 - 1 <= status["currentlyAvailable"] <= 2000
        invalid = client.gql("{ shop { nope } }")
        assert set(invalid["extensions"]["cost"]["throttleStatus"]) == {
            "maximumAvailable",
            "currentlyAvailable",
            "restoreRate",
        }


def test_client_ignoring_throttle_status_gets_throttled() -> None:
    with ShopifySandbox(small_shop(300), bucket_size=1000, restore_rate=50) as sb:
        client = Client(sb)
        query = "{ customers(first: 250) { nodes { id defaultEmailAddress { emailAddress } } } }"
        bodies = [client.post(query) for _ in range(5)]
        assert all(r.status_code == 200 for r in bodies)
        throttled = [r.json() for r in bodies if "data" not in r.json()]
        assert throttled, "five 502-point queries in a row on a 1000-point bucket"
        body = throttled[0]
        assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
        assert body["errors"][0]["message"] == "Throttled"
        cost = body["extensions"]["cost"]
        assert cost["requestedQueryCost"] == 502
        assert cost["actualQueryCost"] is None
        assert cost["throttleStatus"]["maximumAvailable"] == 1000.0
        assert cost["throttleStatus"]["currentlyAvailable"] < 502
        assert sb.throttled_count == len(throttled)


def test_bucket_knobs_change_at_runtime() -> None:
    with ShopifySandbox(small_shop(10)) as sb:
        client = Client(sb)
        sb.bucket_size, sb.restore_rate = 50.0, 1.0
        status = client.gql("{ shop { name } }")["extensions"]["cost"]["throttleStatus"]
        assert status["maximumAvailable"] == 50.0
        assert status["restoreRate"] == 1.0
        assert status["currentlyAvailable"] <= 50
        body = client.gql("{ customers(first: 60) { nodes { id } } }")
        assert body["errors"][0]["extensions"]["code"] == "THROTTLED"


def test_query_over_the_single_query_limit_is_refused() -> None:
    with ShopifySandbox(small_shop(10)) as sb:
        body = Client(sb).gql(
            "{ orders(first: 250) { nodes { lineItems(first: 10) { nodes { id } } } } }"
        )
        error = body["errors"][0]
        assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
        assert error["extensions"]["cost"] == 2 + 250 * (1 + 2 + 10)
        assert "data" not in body
        assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 2000.0


def test_bucket_refills_at_the_restore_rate() -> None:
    now = [0.0]
    bucket = LeakyBucket(lambda: 100.0, lambda: 10.0, clock=lambda: now[0])
    assert bucket.take(100)
    assert not bucket.take(1)
    now[0] = 2.5
    assert bucket.status()["currentlyAvailable"] == 25.0
    assert not bucket.take(30)
    assert bucket.take(25)
    bucket.refund(500)
    assert bucket.status()["currentlyAvailable"] == 100.0
