"""The shared sandbox server (faults, counts, loopback only) and the seeded data generator."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from shopcrm.sandbox.seed import MERCHANT_TAGS, SeedSpec, generate
from shopcrm.sandbox.server import SandboxRequest, SandboxResponse, SandboxServer


def echo(request: SandboxRequest) -> SandboxResponse:
    return SandboxResponse.json(
        {"path": request.path, "q": request.arg("q"), "host": request.host},
        write=request.method != "GET",
    )


@pytest.fixture
def server():
    with SandboxServer(echo) as srv:
        yield srv


def test_serves_on_loopback_and_counts_reads_and_writes(server):
    assert server.url.startswith("http://127.0.0.1:")
    assert server._httpd.server_address[0] == "127.0.0.1"
    got = requests.get(f"{server.url}/a?q=1&q=2", timeout=5, headers={"Host": "x.myshopify.com"})
    assert got.json() == {"path": "/a", "q": "2", "host": "x.myshopify.com"}
    requests.post(f"{server.url}/b", json={}, timeout=5)
    assert (server.stats.reads, server.stats.writes) == (1, 1)
    assert server.stats.by_path["POST /b"] == 1


def test_fail_next_then_recovers_with_retry_after(server):
    server.faults.fail_next = [503, 429]
    first = requests.get(server.url, timeout=5)
    second = requests.get(server.url, timeout=5)
    third = requests.get(server.url, timeout=5)
    assert [first.status_code, second.status_code, third.status_code] == [503, 429, 200]
    assert second.headers["Retry-After"] == "1.0"
    assert server.stats.faults == 2


def test_fail_all_and_reset(server):
    server.faults.fail_all = 500
    assert requests.get(server.url, timeout=5).status_code == 500
    server.faults.reset()
    assert requests.get(server.url, timeout=5).status_code == 200


def test_truncated_body_is_not_json(server):
    server.faults.truncate_next = 1
    body = requests.get(f"{server.url}/long-enough-path", timeout=5).content
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    assert requests.get(server.url, timeout=5).json()["path"] == "/"


def test_delay_makes_a_client_time_out(server):
    server.faults.delay_s = 1.0
    server.faults.delay_next = 1
    with pytest.raises(requests.Timeout):
        requests.get(server.url, timeout=0.2)
    assert requests.get(server.url, timeout=5).status_code == 200


def test_a_handler_crash_is_a_500_not_a_dead_server():
    def boom(request: SandboxRequest) -> SandboxResponse:
        raise RuntimeError("bug")

    with SandboxServer(boom) as srv:
        assert requests.get(srv.url, timeout=5).status_code == 500
        assert requests.get(srv.url, timeout=5).status_code == 500


def snapshot(ds):
    return (
        [(c.id, c.email, c.updated_at, tuple(c.tags)) for c in ds.customers.values()],
        [(o.id, o.customer_id, o.total, o.refunded, o.updated_at) for o in ds.orders.values()],
    )


def test_seed_is_deterministic_and_seed_sensitive():
    spec = SeedSpec(customers=300, seed=5, anchor=date(2026, 11, 1))
    assert snapshot(generate(spec)) == snapshot(generate(spec))
    other = SeedSpec(customers=300, seed=6, anchor=date(2026, 11, 1))
    assert snapshot(generate(other)) != snapshot(generate(spec))


def test_seed_has_the_shapes_the_tests_rely_on():
    ds = generate(customers=2000, seed=3, anchor=date(2026, 11, 1))
    orders = list(ds.orders.values())
    end = datetime(2026, 11, 1, 0, 0).astimezone()
    assert all(o.created_at.tzinfo is not None and o.created_at < end for o in orders)
    assert 2.0 < len([o for o in orders if o.customer_id]) / 2000 < 4.5
    assert any(o.customer_id is None for o in orders)
    statuses = {o.financial_status for o in orders}
    assert statuses == {"paid", "partially_refunded", "refunded", "voided"}
    assert any(len(o.lines) > 1 for o in orders)
    assert all(o.total == o.subtotal + o.shipping for o in orders)
    assert all(isinstance(o.total, Decimal) and o.total.as_tuple().exponent >= -2 for o in orders)
    assert all(o.refunded <= o.total for o in orders)
    tags = {t for c in ds.customers.values() for t in c.tags}
    assert tags <= set(MERCHANT_TAGS)
    assert {"vip", "at-risk"} <= tags
    assert any(c.email is None for c in ds.customers.values())
    repeaters = {o.customer_id for o in orders if o.customer_id}
    per_customer = [sum(1 for o in orders if o.customer_id == c) for c in list(repeaters)[:300]]
    assert max(per_customer) >= 5  # heavy buyers exist: lifetime value has signal


def test_mutate_changes_records_and_moves_them_forward():
    ds = generate(customers=200, seed=1, anchor=date(2026, 11, 1))
    at = datetime(2026, 11, 2).astimezone()
    changed = ds.mutate(10, at=at)
    assert len(changed) == 10
    for kind, rid in changed:
        record = ds.customers[rid] if kind == "customer" else ds.orders[rid]
        assert record.updated_at == at


def test_mid_sync_knob_fires_once_after_n_reads():
    ds = generate(customers=50, seed=1, anchor=date(2026, 11, 1))
    ds.mutate_after_reads, ds.mutate_count = 3, 4
    for _ in range(5):
        ds.on_read()
    assert len(ds.mutated_during_sync) == 4


def test_touch_customers_shares_one_timestamp():
    ds = generate(customers=50, seed=1, anchor=date(2026, 11, 1))
    at = datetime(2026, 11, 2).astimezone() + timedelta(seconds=1)
    ds.touch_customers(list(ds.customers)[:20], at)
    assert sum(1 for c in ds.customers.values() if c.updated_at == at) == 20
