"""THROTTLED answers are waited out at the restore rate Shopify reports, for as long as
`defaults.sync.max_throttle_wait` allows; then RateLimited (exit 75) says the wait."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import responses
import yaml
from typer.testing import CliRunner

from shopcrm.cli.main import app
from shopcrm.config.load import parse_config
from shopcrm.config.schema import AppConfig, Defaults, SyncSettings
from shopcrm.connectors.shopify.connector import ShopifyConnector
from shopcrm.connectors.shopify.throttle import MIN_THROTTLED_WAIT_S, ThrottlePacer
from shopcrm.errors import EXIT_TEMPFAIL, ConfigError, RateLimited, exit_code_for
from shopcrm.sandbox.shopify.app import ShopifySandbox
from shopcrm.store.db import open_store
from shopcrm.sync.pull import pull_shop
from tests.shopify_fixtures import GRAPHQL_URL, Sleeps, body, cost, shop_config, throttled
from tests.shopify_sync_fixtures import assert_exact, sandbox_config, seeded

QUERY = "{ shop { name } }"


def connector(sleeps: Sleeps, max_wait: str = "10m") -> ShopifyConnector:
    config = AppConfig(defaults=Defaults(sync=SyncSettings(max_throttle_wait=max_wait)))
    return ShopifyConnector(shop_config(), config, sleep=sleeps)


@responses.activate
def test_throttled_answers_are_waited_out_past_the_retry_policys_attempts() -> None:
    sleeps = Sleeps()
    for _ in range(7):  # more than the six attempts of the HTTP retry policy
        responses.post(GRAPHQL_URL, body=throttled(requested=502, available=2.0, rate=100))
    responses.post(GRAPHQL_URL, body=body({"shop": {"name": "Main"}}))
    shopify = connector(sleeps)
    assert shopify.execute(QUERY).data == {"shop": {"name": "Main"}}
    assert len(responses.calls) == 8
    # each retry waits for the 500 missing points at 100/s, plus the pacer's safety margin
    assert len(sleeps) == 7
    assert sleeps == pytest.approx([5.02] * 7, abs=0.05)


@responses.activate
def test_a_wait_past_the_bound_fails_with_exit_75_and_says_the_wait() -> None:
    sleeps = Sleeps()
    for _ in range(3):
        responses.post(GRAPHQL_URL, body=throttled(requested=502, available=2.0, rate=100))
    shopify = connector(sleeps, max_wait="8s")
    with pytest.raises(RateLimited) as error:
        shopify.execute(QUERY)
    message = str(error.value)
    assert message.startswith("shop main: GraphQL query throttled: it needs 502 points and the")
    assert "bucket holds 2 of 2000, restoring 100 per second" in message
    assert "so it must wait 5.0 s more after 5.0 s" in message
    assert "passes defaults.sync.max_throttle_wait (8 s)" in message
    assert exit_code_for(error.value) == EXIT_TEMPFAIL
    assert len(responses.calls) == 2  # the first wait fits in 8 s, the second would not
    assert sleeps == pytest.approx([5.02], abs=0.05)


@responses.activate
def test_a_bucket_that_never_restores_fails_at_once() -> None:
    sleeps = Sleeps()
    responses.post(GRAPHQL_URL, body=throttled(requested=502, available=2.0, rate=0))
    with pytest.raises(RateLimited, match="restoring 0 per second, so it can never run"):
        connector(sleeps).execute(QUERY)
    assert sleeps == []


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("requested", "available", "rate", "wait"),
    [
        (502, 2, 100, 5.02),  # (needed - held) / restore rate, plus the safety margin
        (1000, 0, 50, 20.02),  # a full bucket at the standard plan's rate
        (100, 99.99, 50, MIN_THROTTLED_WAIT_S),  # nearly there: never retried sooner
        (100, 500, 50, MIN_THROTTLED_WAIT_S),  # the bucket already holds it: still a pause
    ],
)
def test_the_wait_of_a_throttled_answer(
    requested: float, available: float, rate: float, wait: float
) -> None:
    sleeps, clock = Sleeps(), Clock()
    pacer = ThrottlePacer(max_wait_s=60, sleep=sleeps, clock=clock)
    pacer.observe(cost(requested=requested, available=available, rate=rate))
    assert pacer.allow("main", requested, 0.0, throttled=True) == pytest.approx(wait)
    pacer.expect(requested)
    pacer.before_request()
    assert sleeps == [pytest.approx(wait)]


def test_the_waits_of_one_query_add_up_against_the_bound() -> None:
    clock = Clock()
    pacer = ThrottlePacer(max_wait_s=30, sleep=Sleeps(), clock=clock)
    pacer.observe(cost(requested=1000, available=0, rate=50))
    assert pacer.allow("main", 1000, 9.0, throttled=True) == pytest.approx(29.02)
    clock.now += 1  # the bucket restored 50 points meanwhile; 19.02 s more would pass 30 s
    with pytest.raises(RateLimited, match=r"wait 19\.0 s more after 11\.0 s"):
        pacer.allow("main", 1000, 11.0, throttled=True)


def test_a_paced_wait_before_the_first_try_counts_too() -> None:
    pacer = ThrottlePacer(max_wait_s=5, sleep=Sleeps(), clock=Clock())
    assert pacer.allow("main", 1000, 0.0, throttled=False) == 0.0  # no bucket known yet
    pacer.observe(cost(requested=10, available=1000, rate=50))
    assert pacer.allow("main", 900, 0.0, throttled=False) == 0.0  # the bucket holds it
    pacer.observe(cost(requested=10, available=0, rate=50))
    with pytest.raises(RateLimited, match=r"would be throttled: .* wait 18\.0 s more after 0\.0 s"):
        pacer.allow("main", 900, 0.0, throttled=False)


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., ShopifySandbox]]:
    started: list[ShopifySandbox] = []

    def make(**knobs: Any) -> ShopifySandbox:
        sandbox = ShopifySandbox(seeded(300, years=1.0), **knobs).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


def test_two_clients_draining_one_bucket_both_finish_exact(
    sandbox_factory: Callable[..., ShopifySandbox], tmp_path: Path
) -> None:
    """Two stores pull one shop at once: each paces on its own view of the bucket, so the
    other's spending surprises it with THROTTLED answers, which it waits out."""
    sandbox = sandbox_factory(bucket_size=1000.0, restore_rate=2000.0)
    stores = [open_store(f"sqlite:///{tmp_path / f'store-{i}.db'}") for i in range(2)]
    config, shop, _ = sandbox_config(sandbox, "sqlite://", bulk_threshold=100_000)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda store: pull_shop(store, config, shop), stores))
    assert [(r.ok, r.error) for r in results] == [(True, None), (True, None)]
    assert sandbox.throttled_count > 0  # the clients did collide
    for store in stores:
        assert_exact(store, sandbox)
        store.close()


def test_a_restore_rate_too_low_for_the_bound_exits_75_saying_the_wait(
    sandbox_factory: Callable[..., ShopifySandbox],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox = sandbox_factory(bucket_size=1000.0, restore_rate=1.0)
    entry, env = sandbox.shop_entry("main")
    config = {
        "database": f"sqlite:///{tmp_path / 'store.db'}",
        "defaults": {"sync": {"bulk_threshold": 100_000, "max_throttle_wait": "2s"}},
        "shops": [entry],
    }
    path = tmp_path / "shopcrm.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    result = CliRunner().invoke(app, ["--config", str(path), "sync"])
    assert result.exit_code == 75, result.output
    assert "— FAILED: shop main: GraphQL query" in result.output
    assert "restoring 1 per second, so it must wait" in result.output
    assert "passes defaults.sync.max_throttle_wait (2 s): giving up" in result.output
    assert time.monotonic() - started < 30  # gave up instead of waiting for the bucket


def test_the_bound_is_a_duration_of_the_config_ten_minutes_by_default() -> None:
    assert AppConfig().defaults.sync.throttle_wait_limit.total_seconds() == 600
    with pytest.raises(ConfigError, match=r"defaults\.sync\.max_throttle_wait: .*'soon'"):
        parse_config({"defaults": {"sync": {"max_throttle_wait": "soon"}}}, env={})
