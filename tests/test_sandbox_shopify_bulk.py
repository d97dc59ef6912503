"""Bulk query operations end to end: run, poll three ways, download JSONL with `__parentId`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.sandbox.shopify.bulk import BulkTiming
from tests.sandbox_shopify_fixtures import Client, small_shop

RUN = """mutation($q: String!) { bulkOperationRunQuery(query: $q) {
  bulkOperation { id status } userErrors { field message code } } }"""
BY_ID = """query($id: ID!) { bulkOperation(id: $id) {
  id status errorCode objectCount rootObjectCount fileSize url } }"""
BY_NODE = """query($id: ID!) { node(id: $id) { ... on BulkOperation {
  id status objectCount rootObjectCount fileSize url } } }"""
CURRENT = "{ currentBulkOperation { id status objectCount rootObjectCount fileSize url } }"

ORDERS_WITH_LINES = """{ orders(query: "updated_at:>='2025-01-01T00:00:00Z'") { edges { node {
  id name totalPriceSet { shopMoney { amount } }
  lineItems { edges { node { id sku quantity } } } } } } }"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ShopifySandbox]:
    with ShopifySandbox(small_shop(80), bulk_ready_after_polls=2, restore_rate=1e6) as sb:
        yield sb


def start(client: Client, inner: str) -> dict[str, Any]:
    return client.data(RUN, {"q": inner})["bulkOperationRunQuery"]


def poll(client: Client, query: str, variables: dict[str, Any], key: str) -> dict[str, Any]:
    statuses = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        op = client.data(query, variables)[key]
        statuses.append(op["status"])
        if op["status"] not in ("CREATED", "RUNNING"):
            assert statuses[0] == "RUNNING"  # ready only after the configured polls
            return op
        time.sleep(0.02)
    raise AssertionError(f"bulk operation never finished: {statuses[-3:]}")


def download(url: str) -> list[dict[str, Any]]:
    response = requests.get(url, timeout=30)  # no token: a signed URL
    assert response.status_code == 200
    return [json.loads(line) for line in response.text.splitlines()]


def test_orders_with_line_items_end_to_end(sandbox: ShopifySandbox) -> None:
    client = Client(sandbox)
    run = start(client, ORDERS_WITH_LINES)
    assert run["userErrors"] == []
    assert run["bulkOperation"]["status"] == "CREATED"
    op = poll(client, BY_ID, {"id": run["bulkOperation"]["id"]}, "bulkOperation")
    assert op["status"] == "COMPLETED"
    response = requests.get(op["url"], timeout=30)
    assert int(op["fileSize"]) == len(response.content)
    lines = [json.loads(line) for line in response.text.splitlines()]

    expected = [o for o in sandbox.dataset.orders.values() if o.updated_at.year >= 2025]
    roots = [line for line in lines if "__parentId" not in line]
    children = [line for line in lines if "__parentId" in line]
    assert int(op["rootObjectCount"]) == len(roots) == len(expected)
    assert int(op["objectCount"]) == len(lines)
    assert len(children) == sum(len(o.lines) for o in expected)
    seen: set[str] = set()
    for line in lines:  # children come after their parent
        if "__parentId" in line:
            assert line["__parentId"] in seen
            assert line["id"].startswith("gid://shopify/LineItem/")
        else:
            assert "lineItems" not in line
            seen.add(line["id"])
    first = sandbox.dataset.orders[int(roots[0]["id"].rsplit("/", 1)[1])]
    assert roots[0]["name"] == f"#{first.number}"


def test_poll_through_node_and_current_bulk_operation(sandbox: ShopifySandbox) -> None:
    client = Client(sandbox)
    run = start(client, "{ customers { nodes { id email tags } } }")
    gid = run["bulkOperation"]["id"]
    op = poll(client, BY_NODE, {"id": gid}, "node")
    assert op["id"] == gid
    current = client.data(CURRENT)["currentBulkOperation"]
    assert current == op
    lines = download(current["url"])
    assert {line["id"] for line in lines} == {
        f"gid://shopify/Customer/{i}" for i in sandbox.dataset.customers
    }


def test_bulk_costs_only_the_mutation(sandbox: ShopifySandbox) -> None:
    body = Client(sandbox).gql(RUN, {"q": "{ customers { nodes { id } } }"})
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10


def test_result_is_not_served_before_completion() -> None:
    with ShopifySandbox(small_shop(20), bulk_ready_after_polls=3) as sb:
        client = Client(sb)
        gid = start(client, "{ customers { nodes { id } } }")["bulkOperation"]["id"]
        ident = gid.rsplit("/", 1)[1]
        assert requests.get(f"{sb.url}/bulk-results/{ident}.jsonl", timeout=10).status_code == 404
        op = poll(client, BY_ID, {"id": gid}, "bulkOperation")
        assert len(download(op["url"])) == 20


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        ("{ customers { nodes { nope } } }", "Invalid bulk query"),
        ("{ shop { name } }", "exactly one top-level connection"),
        ("{ orders { nodes { name lineItems { nodes { id } } } } }", "must select the 'id' field"),
        ("{ customers { nodes { id } ", "Invalid bulk query"),
    ],
)
def test_invalid_bulk_queries_are_user_errors(
    sandbox: ShopifySandbox, inner: str, message: str
) -> None:
    run = start(Client(sandbox), inner)
    assert run["bulkOperation"] is None
    assert run["userErrors"][0]["field"] == ["query"]
    assert run["userErrors"][0]["code"] == "INVALID"
    assert message in run["userErrors"][0]["message"]


def test_unknown_bulk_operation_is_null(sandbox: ShopifySandbox) -> None:
    data = Client(sandbox).data(BY_ID, {"id": "gid://shopify/BulkOperation/1"})
    assert data["bulkOperation"] is None


def test_result_download_can_be_cut_short_by_the_fault_knob() -> None:
    with ShopifySandbox(small_shop(30), bulk_ready_after_polls=2) as sb:
        client = Client(sb)
        gid = start(client, "{ customers { nodes { id email } } }")["bulkOperation"]["id"]
        op = poll(client, BY_ID, {"id": gid}, "bulkOperation")
        sb.server.faults.truncate_next = 1
        cut = requests.get(op["url"], timeout=10).content
        whole = requests.get(op["url"], timeout=10).content
        assert len(whole) == int(op["fileSize"])
        assert whole.startswith(cut)
        assert len(cut) == len(whole) // 2


# --- the latency model ----------------------------------------------------------------------


def test_bulk_operation_runs_for_its_modelled_time_with_a_growing_object_count() -> None:
    start_delay, rate = 0.5, 2000.0
    with ShopifySandbox(
        small_shop(1000), bulk_start_delay_s=start_delay, bulk_records_per_s=rate
    ) as sb:
        client = Client(sb)
        started = time.monotonic()
        gid = start(client, "{ customers { nodes { id } } }")["bulkOperation"]["id"]
        seen: list[tuple[float, str, int, int]] = []
        while not seen or seen[-1][1] == "RUNNING":
            assert time.monotonic() - started < 10, seen[-3:]
            op = client.data(BY_ID, {"id": gid})["bulkOperation"]
            elapsed = time.monotonic() - started
            seen.append((elapsed, op["status"], int(op["objectCount"]), int(op["rootObjectCount"])))
            time.sleep(0.05)
    modelled = start_delay + 1000 / rate  # 1.0 s
    running = [s for s in seen if s[1] == "RUNNING"]
    status, completed_at, count = seen[-1][1], seen[-1][0], seen[-1][2]
    assert status == "COMPLETED"
    assert count == 1000
    assert modelled <= completed_at <= modelled + 0.5
    assert running[-1][0] >= modelled - 0.1  # RUNNING until (about) the modelled time
    counts = [s[2] for s in running]
    assert counts == sorted(counts)  # objectCount only grows
    assert counts[0] == 0  # nothing during the start delay
    assert 0 < max(counts) < 1000
    assert all(roots == objects for _, _, objects, roots in running)  # customers are roots
    for elapsed, _, objects, _ in running:  # never ahead of the rate
        assert objects <= max(0.0, elapsed - start_delay) * rate


def test_bulk_timing_counts_lines_at_the_rate_after_the_start_delay() -> None:
    timing = BulkTiming(start_delay_s=2.0, records_per_s=100.0)
    assert timing.duration(500) == 7.0
    assert [timing.shown(t, 500) for t in (0.0, 1.99, 2.5, 4.0, 60.0)] == [0, 0, 50, 200, 500]
    assert timing.shown(60.0, 120) == 120  # never more than the file holds
    instant = BulkTiming()
    assert (instant.duration(10**6), instant.shown(0.0, 42)) == (0.0, 42)
    with pytest.raises(ValueError, match="records_per_s"):
        BulkTiming(records_per_s=0)
    with pytest.raises(ValueError, match="start_delay_s"):
        BulkTiming(start_delay_s=-1)


def test_modelled_counts_and_completed_at_follow_the_runner_clock() -> None:
    now = [1000.0]
    with ShopifySandbox(small_shop(30), bulk_start_delay_s=40.0, bulk_records_per_s=1.0) as sb:
        sb.bulk.clock = lambda: now[0]
        client = Client(sb)
        gid = start(client, "{ customers { nodes { id } } }")["bulkOperation"]["id"]
        record = sb.bulk.operations[int(gid.rsplit("/", 1)[1])]
        assert record.finished.wait(10)  # the file is written at once; the model holds it back
        query = "query($id: ID!) { bulkOperation(id: $id) { status objectCount completedAt } }"
        states = []
        for at in (1030.0, 1050.0, 1069.0, 1070.0):
            now[0] = at
            op = client.data(query, {"id": gid})["bulkOperation"]
            states.append((op["status"], op["objectCount"]))
    assert states == [("RUNNING", "0"), ("RUNNING", "10"), ("RUNNING", "29"), ("COMPLETED", "30")]
    assert record.completed_at is not None
    took = record.completed_at - record.started_wall.replace(microsecond=0)
    assert 69 <= took.total_seconds() <= 71  # 40 s + 30 objects at 1/s, at whole seconds
