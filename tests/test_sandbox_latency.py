"""Every sandbox answers after its round-trip latency, measured on real HTTP requests."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from shopcrm.sandbox.base import PlatformSandbox
from shopcrm.sandbox.bigcommerce.app import BigCommerceSandbox
from shopcrm.sandbox.seed import generate
from shopcrm.sandbox.server import SandboxResponse, SandboxServer
from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.sandbox.woocommerce.app import WooCommerceSandbox
from tests.sandbox_shopify_fixtures import Client
from tests.woocommerce_fixtures import KEY, SECRET
from tests.woocommerce_fixtures import get as woo_get

LATENCY_S = 0.100
Request = Callable[[PlatformSandbox], requests.Response]


def shopify(latency_s: float) -> ShopifySandbox:
    return ShopifySandbox(generate(customers=10, seed=3), latency_s=latency_s)


def woocommerce(latency_s: float) -> WooCommerceSandbox:
    ds = generate(customers=10, seed=3)
    return WooCommerceSandbox(ds, consumer_key=KEY, consumer_secret=SECRET, latency_s=latency_s)


def bigcommerce(latency_s: float) -> BigCommerceSandbox:
    ds = generate(customers=10, seed=3)
    return BigCommerceSandbox(ds, access_token="t0ken", quota=10_000, latency_s=latency_s)


def shopify_customers(sb: PlatformSandbox) -> requests.Response:
    assert isinstance(sb, ShopifySandbox)
    return Client(sb).post("{ customers(first: 10) { nodes { id } } }")


def woo_customers(sb: PlatformSandbox) -> requests.Response:
    assert isinstance(sb, WooCommerceSandbox)
    return woo_get(sb, "customers", role="all")


def bigcommerce_customers(sb: PlatformSandbox) -> requests.Response:
    assert isinstance(sb, BigCommerceSandbox)
    url = f"{sb.url}/stores/{sb.store_hash}/v3/customers"
    return requests.get(url, headers={"X-Auth-Token": "t0ken"}, timeout=10)


def fastest(sb: PlatformSandbox, request: Request, times: int = 3) -> float:
    """The shortest of `times` successful round trips, in seconds."""
    took = []
    for _ in range(times):
        start = time.perf_counter()
        response = request(sb)
        took.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return min(took)


@pytest.mark.parametrize(
    ("make", "request_"),
    [
        (shopify, shopify_customers),
        (woocommerce, woo_customers),
        (bigcommerce, bigcommerce_customers),
    ],
    ids=["shopify", "woocommerce", "bigcommerce"],
)
def test_latency_is_added_to_every_request(
    make: Callable[[float], PlatformSandbox], request_: Request
) -> None:
    with make(LATENCY_S) as sb:
        slow = fastest(sb, request_)
        sb.server.latency_s = 0.0  # a live knob
        fast = fastest(sb, request_)
    assert slow >= LATENCY_S
    assert fast < LATENCY_S
    assert slow - fast >= LATENCY_S * 0.9


def test_latency_applies_to_injected_faults_too() -> None:
    with shopify(LATENCY_S) as sb:
        sb.server.faults.fail_next = [503]
        start = time.perf_counter()
        response = shopify_customers(sb)
        took = time.perf_counter() - start
    assert response.status_code == 503
    assert took >= LATENCY_S


def test_sandboxes_have_no_latency_unless_asked() -> None:
    with ShopifySandbox(generate(customers=10, seed=3)) as sb:
        assert sb.server.latency_s == 0.0
        assert fastest(sb, shopify_customers) < LATENCY_S


def test_negative_latency_is_refused() -> None:
    with pytest.raises(ValueError, match="latency_s must be >= 0"):
        SandboxServer(lambda _request: SandboxResponse(), latency_s=-0.1)
