"""Push semantics against an in-memory platform: diff only, managed tags only, logged, safe."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shopcrm.errors import PlatformUnavailable, PushRefused
from shopcrm.log import register_secret
from shopcrm.store.db import Store
from shopcrm.store.models import Customer, PushLog
from shopcrm.sync.lock import shop_lock
from shopcrm.sync.pull import pull_shop
from shopcrm.sync.push import push_shop, push_shops
from tests.push_fixtures import (
    FakeConnector,
    FakePlatform,
    assign_segments,
    fake_config,
    make_platform,
)

MERCHANT = {1: ["vip", "wholesale"], 2: ["at-risk"], 3: ["crm-friend", "crm:legacy"]}
SEGMENTS = {"c1": ["vip"], "c2": ["vip", "at-risk"], "c4": ["at-risk"], "c5": ["vip"]}


@pytest.fixture
def setup(store: Store) -> tuple[Store, FakePlatform, object]:
    platform = make_platform(customers=20, merchant=MERCHANT)
    config = fake_config(store.engine.url.render_as_string(hide_password=False))
    pull(store, config, platform)
    assign_segments(store, "fake", SEGMENTS)
    return store, platform, config


def pull(store: Store, config, platform: FakePlatform) -> None:
    result = pull_shop(store, config, config.shops[0], connector=FakeConnector(platform))
    assert result.ok, result.error


def push(store: Store, config, platform: FakePlatform, **kw):
    return push_shop(store, config, config.shops[0], connector=FakeConnector(platform), **kw)


def expected_tags() -> dict[str, list[str]]:
    out = {f"c{i}": list(MERCHANT.get(i, [])) for i in range(1, 21)}
    out["c3"] = [t for t in out["c3"] if not t.startswith("crm:")]
    for cid, segments in SEGMENTS.items():
        out[cid] = out[cid] + [f"crm:{s}" for s in segments]
    return {cid: sorted(tags) for cid, tags in out.items()}


def test_push_sends_the_difference_and_never_touches_merchant_tags(setup) -> None:
    store, platform, config = setup
    result = push(store, config, platform, force=True)
    assert result.ok
    assert platform.tags() == expected_tags()
    # c1..c5 get tags; c3 loses a stale managed tag; plain "vip" / "at-risk" stay untouched
    assert (result.applied, result.tags_added, result.tags_removed) == (5, 5, 1)
    assert result.plan.segment_sizes == {"at-risk": 2, "vip": 3}
    assert result.plan.guests_not_taggable == 1

    writes = platform.writes
    again = push(store, config, platform)  # no pull in between: the store knows what it applied
    assert again.plan.changes == []
    assert platform.writes == writes


def test_push_log_has_one_row_per_change(setup) -> None:
    store, platform, config = setup
    push(store, config, platform, force=True)
    with store.session() as session:
        rows = session.execute(select(PushLog).order_by(PushLog.customer_platform_id)).scalars()
        logged = {r.customer_platform_id: (r.added, r.removed, r.outcome) for r in rows}
    assert logged == {
        "c1": (["crm:vip"], [], "ok"),
        "c2": (["crm:at-risk", "crm:vip"], [], "ok"),
        "c3": ([], ["crm:legacy"], "ok"),
        "c4": (["crm:at-risk"], [], "ok"),
        "c5": (["crm:vip"], [], "ok"),
    }


def test_merchant_tag_added_between_pull_and_push_survives(setup) -> None:
    store, platform, config = setup
    platform.set_tags("c1", [*platform.customers["c1"].tags, "added-after-pull"])
    platform.set_tags("c4", ["crm-lookalike", "crm:vip-ish"])  # after our pull, unknown to us
    push(store, config, platform, force=True)
    assert platform.tags()["c1"] == ["added-after-pull", "crm:vip", "vip", "wholesale"]
    assert platform.tags()["c4"] == ["crm-lookalike", "crm:at-risk", "crm:vip-ish"]


def test_safety_limit_refuses_force_proceeds_dry_run_writes_nothing(setup) -> None:
    store, platform, config = setup  # 5 of 20 customers change: 25% is allowed
    assign_segments(store, "fake", {**SEGMENTS, "c6": ["vip"]})  # 6 of 20 = 30%
    with pytest.raises(PushRefused, match=r"6 of 20 customers \(30%\).*--force"):
        push(store, config, platform)
    assert platform.writes == 0

    dry = push(store, config, platform, dry_run=True)
    assert platform.writes == 0
    assert {k: (v.adds, v.removes, v.customers) for k, v in dry.plan.by_segment.items()} == {
        "at-risk": (2, 0, 2),
        "legacy": (0, 1, 1),
        "vip": (4, 0, 4),
    }
    with store.session() as session:
        assert session.execute(select(PushLog)).first() is None

    assert push(store, config, platform, force=True).applied == 6
    assert platform.writes > 0


def test_limit_follows_the_configured_share(store: Store) -> None:
    platform = make_platform(customers=10)
    config = fake_config(
        store.engine.url.render_as_string(hide_password=False), push={"max_change_share": 0.5}
    )
    pull(store, config, platform)
    assign_segments(store, "fake", {f"c{i}": ["vip"] for i in range(1, 6)})
    assert push(store, config, platform).applied == 5


def test_untag_restores_the_tags_from_before_the_first_push(setup) -> None:
    store, platform, config = setup
    before = platform.tags()
    push(store, config, platform, force=True)
    pull(store, config, platform)
    result = push(store, config, platform, untag=True)
    assert result.ok
    restored = platform.tags()
    assert restored["c3"] == ["crm-friend"]  # the old managed tag goes too: it is ours
    before["c3"] = ["crm-friend"]
    assert restored == before


def test_failures_are_logged_and_the_rest_continue(setup) -> None:
    store, platform, config = setup
    platform.missing.add("c2")
    platform.invalid.add("c4")
    result = push(store, config, platform, force=True)
    assert (result.applied, result.failed) == (3, 2)
    assert platform.tags()["c5"] == ["crm:vip"]
    with store.session() as session:
        failed = dict(
            session.execute(
                select(PushLog.customer_platform_id, PushLog.error).where(
                    PushLog.outcome == "failed"
                )
            ).all()
        )
        tags = dict(session.execute(select(Customer.platform_id, Customer.tags)).all())
    assert failed == {"c2": "customer c2 not found (404)", "c4": "customer c4: tags is invalid"}
    assert tags["c4"] == []  # not applied, so a later push retries it

    platform.missing.clear()
    platform.invalid.clear()
    assert push(store, config, platform).applied == 2  # the failed ones are retried


@pytest.mark.parametrize("crash_after", [1, 3, 4])
def test_crash_mid_push_is_safe_to_rerun(setup, crash_after: int) -> None:
    store, platform, config = setup
    platform.crash_after_writes = crash_after
    with pytest.raises(KeyboardInterrupt):
        push(store, config, platform, force=True, batch_size=2)
    platform.crash_after_writes = None
    push(store, config, platform, force=True, batch_size=2)
    assert platform.tags() == expected_tags()
    assert all(len(tags) == len(set(tags)) for tags in platform.tags().values())
    assert push(store, config, platform).plan.changes == []


def test_crash_after_apply_before_commit_resends_harmlessly(setup) -> None:
    store, platform, config = setup
    # the platform applied the first push but the store never heard of it
    push(store, config, platform, force=True)
    with store.session() as session:
        for c in session.execute(select(Customer)).scalars():
            c.tags = [t for t in c.tags if not t.startswith("crm:")] + (
                ["crm:legacy"] if c.platform_id == "c3" else []
            )
    writes = platform.writes
    again = push(store, config, platform, force=True)
    assert again.applied == 5
    assert platform.writes == writes  # the primitives found nothing to do
    assert platform.tags() == expected_tags()


def test_a_platform_failing_for_a_batch_stops_and_logs_it(setup) -> None:
    store, platform, config = setup
    register_secret("cs_fake_secret")
    platform.fail_all = True
    platform.fail_detail = " at /customers?consumer_secret=cs_fake_secret"
    with pytest.raises(PlatformUnavailable):
        push(store, config, platform, force=True)
    with store.session() as session:
        outcomes = session.execute(select(PushLog.outcome, PushLog.error)).all()
    assert len(outcomes) == 5
    for outcome, error in outcomes:
        assert outcome == "failed"
        assert (
            error
            == "not applied: HTTP 500 from the fake platform at /customers?consumer_secret=***"
        )


def test_a_shop_that_cannot_be_tagged_is_skipped(setup) -> None:
    store, platform, config = setup

    class Untaggable(FakeConnector):
        supports_tags = False

    # no --force: a shop that cannot be tagged is never refused by the safety limit
    result = push_shop(store, config, config.shops[0], connector=Untaggable(platform))
    assert result.ok
    assert not result.taggable
    assert platform.writes == 0


def test_push_shops_skips_a_shop_another_process_is_running(setup) -> None:
    store, platform, config = setup
    with shop_lock(store, "fake"):
        [result] = push_shops(store, config, force=True)
    assert result.locked
    assert "already being run" in result.error
    assert platform.writes == 0
