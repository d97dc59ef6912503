"""Benchmark: the Shopify sandbox at shop scale (default 100,000 customers, ~330,000 orders).

Times, medians over `--repeat` pages:
- the first request after start (builds the sorted (updated_at, id) indexes),
- a page of 250 customers over HTTP, paging forward with cursors (request to parsed JSON),
- the same customers page, and a page of 100 orders with up to 5 line items each, executed in
  process (parse, validate, cost, execute; wall and CPU time, as the machine may be busy; the
  orders query over HTTP would cost more than Shopify's 1000-point cap),
- a bulk operation over all orders with their line items: seconds from bulkOperationRunQuery
  to COMPLETED, JSONL lines and bytes, and the growth of the process's peak memory.

    .venv/bin/python bench/shopify_sandbox.py --customers 100000 --repeat 20
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from datetime import date

import requests
from graphql import execute, parse, validate

from shopcrm.sandbox.seed import generate
from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.sandbox.shopify.cost import QueryCost
from shopcrm.sandbox.shopify.resolvers import Call, Resolvers

CUSTOMERS = """query($after: String) { customers(first: 250, after: $after, sortKey: UPDATED_AT) {
  nodes { id email firstName lastName tags createdAt updatedAt
          defaultEmailAddress { emailAddress marketingState } }
  pageInfo { hasNextPage endCursor } } }"""
ORDERS = """query($after: String) { orders(first: 100, after: $after, sortKey: UPDATED_AT) {
  nodes { id name email createdAt updatedAt cancelledAt displayFinancialStatus customer { id }
          totalPriceSet { shopMoney { amount currencyCode } }
          totalRefundedSet { shopMoney { amount currencyCode } }
          lineItems(first: 5) { nodes { id sku title quantity
                                       originalUnitPriceSet { shopMoney { amount } } } } }
  pageInfo { hasNextPage endCursor } } }"""
BULK = """{ orders { edges { node { id name updatedAt totalPriceSet { shopMoney { amount } }
  customer { id } lineItems { edges { node { id sku quantity } } } } } } }"""


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def execute_pages(sandbox: ShopifySandbox, query: str, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds to parse, validate, cost and execute one page."""
    shop = sandbox.shops["sandbox"]
    token = shop.tokens[shop.admin_token]
    walls, cpus, after = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        document = parse(query)
        assert not validate(sandbox.schema, document)
        QueryCost(sandbox.schema, document, {"after": after}).total()
        call = Call(shop=shop, token=token, bulk=sandbox.bulk)
        result = execute(
            sandbox.schema,
            document,
            root_value=Resolvers(call).query_root(),
            context_value=call,
            variable_values={"after": after},
            is_awaitable=lambda _value: False,
        )
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert result.errors is None, result.errors
        after = next(iter(result.data.values()))["pageInfo"]["endCursor"]
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    started = time.perf_counter()
    dataset = generate(customers=args.customers, seed=42, anchor=date(2026, 11, 1))
    print(
        f"seeded {len(dataset.customers)} customers, {len(dataset.orders)} orders "
        f"in {time.perf_counter() - started:.1f} s"
    )
    with ShopifySandbox(dataset, bucket_size=1e9, restore_rate=1e9) as sandbox:
        session = requests.Session()
        session.headers.update(
            {"X-Shopify-Access-Token": sandbox.admin_token(), "Host": sandbox.domain()}
        )
        url = f"{sandbox.url}/admin/api/2026-10/graphql.json"

        started = time.perf_counter()
        session.post(url, json={"query": CUSTOMERS}).raise_for_status()
        print(f"first customers page incl. index build: {time.perf_counter() - started:.3f} s")

        timings, after = [], None
        for _ in range(args.repeat):
            started = time.perf_counter()
            body = session.post(url, json={"query": CUSTOMERS, "variables": {"after": after}})
            page = body.json()["data"]["customers"]
            timings.append(time.perf_counter() - started)
            after = page["pageInfo"]["endCursor"]
        print(f"customers page of 250 over HTTP: median {statistics.median(timings) * 1000:.1f} ms")

        for name, query in (("customers page of 250", CUSTOMERS), ("orders page of 100", ORDERS)):
            wall, cpu = execute_pages(sandbox, query, args.repeat)
            print(
                f"{name} executed in process: median {wall * 1000:.1f} ms wall, "
                f"{cpu * 1000:.1f} ms CPU"
            )

        before = peak_mb()
        started, cpu = time.perf_counter(), time.process_time()
        run = session.post(
            url,
            json={
                "query": "mutation($q: String!) { bulkOperationRunQuery(query: $q) "
                "{ bulkOperation { id } userErrors { message } } }",
                "variables": {"q": BULK},
            },
        ).json()["data"]["bulkOperationRunQuery"]
        poll = {
            "query": "query($id: ID!) { bulkOperation(id: $id) { status objectCount "
            "rootObjectCount fileSize url } }",
            "variables": {"id": run["bulkOperation"]["id"]},
        }
        while (op := session.post(url, json=poll).json()["data"]["bulkOperation"])["status"] in (
            "CREATED",
            "RUNNING",
        ):
            time.sleep(0.5)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"bulk orders+lineItems: {op['status']} in {elapsed:.1f} s ({cpu:.1f} s CPU), "
            f"{op['rootObjectCount']} orders, {op['objectCount']} lines, "
            f"{int(op['fileSize']) / 1e6:.0f} MB; peak memory +{peak_mb() - before:.0f} MB "
            f"(process peak {peak_mb():.0f} MB)"
        )


if __name__ == "__main__":
    main()
