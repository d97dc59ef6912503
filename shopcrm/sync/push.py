"""Push: segments -> managed tags on the platform, sending only the difference.

Desired managed tags of a customer are `prefix + segment` for its `segment_membership` rows;
current ones are the customer's tags as last pulled (or as last pushed) that carry the prefix.
Only `TagChange(add=desired - current, remove=current - desired)` is sent, through the
connector's add/remove primitives, so tags without the prefix are never touched, even when a
merchant changes them between our pull and our push.

Changes go out in batches. Each batch's results and the customers' new tags are committed in
one transaction, so a second push without a pull sends nothing. A crash between the platform's
answer and that commit is safe to re-run: adding a tag a customer already has, or removing one
it lacks, is a no-op on every platform's primitive.

Forgotten (redacted) customers are never pushed to, not even to remove a tag.

A dry run computes the plan and writes nothing, neither to the platform nor to the store.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlmodel import Session

from shopcrm.config.schema import AppConfig, ShopConfig
from shopcrm.connectors.base import Connector
from shopcrm.connectors.registry import make_connector
from shopcrm.errors import LockHeld, PushRefused, ShopcrmError
from shopcrm.log import redact
from shopcrm.records import TagChange, TagResult
from shopcrm.store.db import Store
from shopcrm.store.models import Customer, Order, PushLog, SegmentMembership, Shop
from shopcrm.sync.lock import shop_lock
from shopcrm.sync.pull import finish_run, start_run, utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 250  # changes per apply() call and per store transaction
OK, FAILED = "ok", "failed"


@dataclass(frozen=True, slots=True)
class PlannedChange:
    customer_id: int
    change: TagChange


@dataclass
class SegmentPlan:
    """What a push does to one segment's tag."""

    adds: int = 0
    removes: int = 0
    customers: int = 0


@dataclass
class PushPlan:
    """The changes a push would send to one shop, and what they amount to."""

    shop: str
    prefix: str
    customers_total: int
    changes: list[PlannedChange] = field(default_factory=list)
    segment_sizes: dict[str, int] = field(default_factory=dict)
    guests_not_taggable: int = 0

    @property
    def customers_changed(self) -> int:
        return len(self.changes)

    @property
    def change_share(self) -> float:
        return self.customers_changed / self.customers_total if self.customers_total else 0.0

    @property
    def by_segment(self) -> dict[str, SegmentPlan]:
        """Per segment (the tag without its prefix): adds, removes, customers touched."""
        plans: dict[str, SegmentPlan] = defaultdict(SegmentPlan)
        for planned in self.changes:
            for tag in planned.change.add:
                plans[tag.removeprefix(self.prefix)].adds += 1
            for tag in planned.change.remove:
                plans[tag.removeprefix(self.prefix)].removes += 1
            for segment in {t.removeprefix(self.prefix) for t in planned.change.add}.union(
                t.removeprefix(self.prefix) for t in planned.change.remove
            ):
                plans[segment].customers += 1
        return dict(sorted(plans.items()))


@dataclass
class PushResult:
    shop: str
    ok: bool = False
    dry_run: bool = False
    taggable: bool = True
    plan: PushPlan | None = None
    applied: int = 0
    failed: int = 0
    tags_added: int = 0
    tags_removed: int = 0
    error: str | None = None
    refused: bool = False
    locked: bool = False


def managed(tags: Iterable[str], prefix: str) -> frozenset[str]:
    """The tags shopcrm owns: exactly those starting with the shop's prefix."""
    return frozenset(t for t in tags if t.startswith(prefix))


def _shop_id(session: Session, name: str) -> int | None:
    return session.execute(select(Shop.id).where(Shop.name == name)).scalar_one_or_none()


def _guests_without_account(session: Session, shop_id: int) -> int:
    """Distinct emails of guest checkouts that match no customer account of the shop."""
    accounts = select(func.lower(func.trim(Customer.email))).where(
        Customer.shop_id == shop_id, Customer.email.is_not(None)
    )
    guest_email = func.lower(func.trim(Order.email))
    return session.execute(
        select(func.count(distinct(guest_email))).where(
            Order.shop_id == shop_id,
            Order.customer_platform_id.is_(None),
            Order.deleted.is_(False),
            Order.email.is_not(None),
            guest_email.not_in(accounts),
        )
    ).scalar_one()


def plan_push(
    session: Session, config: AppConfig, shop: ShopConfig, *, untag: bool = False
) -> PushPlan:
    """The tag changes that bring the shop's managed tags in line with its segments.

    Args:
        session: an open store session.
        config: the app config (tag prefix per shop).
        shop: the shop to plan for.
        untag: plan the removal of every managed tag instead.

    Returns:
        The plan; customers already in line are not part of it.
    """
    prefix = config.tag_prefix(shop)
    shop_id = _shop_id(session, shop.name)
    if shop_id is None:
        return PushPlan(shop=shop.name, prefix=prefix, customers_total=0)
    rows = session.execute(
        select(Customer.id, Customer.platform_id, Customer.tags).where(
            Customer.shop_id == shop_id,
            Customer.deleted.is_(False),
            Customer.redacted.is_(False),  # forgotten: never pushed to (docs/privacy.md)
        )
    ).all()
    desired: dict[int, set[str]] = defaultdict(set)
    sizes: Counter[str] = Counter()
    if not untag:
        for customer_id, segment in session.execute(
            select(SegmentMembership.customer_id, SegmentMembership.segment).where(
                SegmentMembership.shop_id == shop_id
            )
        ):
            desired[customer_id].add(prefix + segment)
            sizes[segment] += 1
    plan = PushPlan(
        shop=shop.name,
        prefix=prefix,
        customers_total=len(rows),
        segment_sizes=dict(sorted(sizes.items())),
        guests_not_taggable=_guests_without_account(session, shop_id),
    )
    for customer_id, platform_id, tags in sorted(rows, key=lambda r: r[0]):
        current = managed(tags or (), prefix)
        want = desired.get(customer_id, set())
        add, remove = frozenset(want - current), frozenset(current - want)
        if add or remove:
            plan.changes.append(PlannedChange(customer_id, TagChange(platform_id, add, remove)))
    return plan


def check_limit(plan: PushPlan, config: AppConfig, shop: ShopConfig) -> None:
    """Refuse a plan that changes more than the shop's `push.max_change_share` of customers.

    Raises:
        PushRefused: the plan exceeds the limit; `--force` is the way past it.
    """
    limit = config.push_settings(shop).max_change_share
    if plan.change_share <= limit:
        return
    raise PushRefused(
        f"shop {shop.name}: push would change {plan.customers_changed} of "
        f"{plan.customers_total} customers ({plan.change_share:.0%}), over the limit of "
        f"{limit:.0%} (push.max_change_share). A first push usually is: check it with "
        "`shopcrm push --dry-run`, then rerun with --force"
    )


def _applied_tags(tags: Sequence[str], change: TagChange) -> list[str]:
    """The customer's tags after a change: order kept, removed dropped, added appended."""
    kept = [t for t in tags if t not in change.remove]
    return kept + sorted(change.add - set(kept))


def _record_batch(
    session: Session,
    shop_id: int,
    run_id: int | None,
    batch: Sequence[PlannedChange],
    results: dict[str, TagResult],
    missing_error: str,
) -> None:
    """Write the batch's push_log rows and, for applied changes, the customers' new tags."""
    now = datetime.now(UTC)
    customers = {
        c.id: c
        for c in session.execute(
            select(Customer).where(Customer.id.in_([p.customer_id for p in batch]))
        ).scalars()
    }
    for planned in batch:
        change = planned.change
        result = results.get(change.customer_platform_id)
        ok = result is not None and result.ok
        error = None if ok else (result.error if result else None) or missing_error
        session.add(
            PushLog(
                shop_id=shop_id,
                run_id=run_id,
                customer_id=planned.customer_id,
                customer_platform_id=change.customer_platform_id,
                added=sorted(change.add),
                removed=sorted(change.remove),
                at=now,
                outcome=OK if ok else FAILED,
                error=redact(error)[:1000] if error else None,
            )
        )
        customer = customers.get(planned.customer_id)
        if ok and customer is not None:
            customer.tags = _applied_tags(customer.tags, change)


def _apply_batch(
    connector: Connector, batch: Sequence[PlannedChange]
) -> tuple[dict[str, TagResult], ShopcrmError | None]:
    """The connector's results for a batch, and the error that cut it short, if any."""
    results: dict[str, TagResult] = {}
    try:
        for result in connector.apply([p.change for p in batch]):
            results[result.customer_platform_id] = result
    except ShopcrmError as exc:
        return results, exc
    return results, None


def push_shop(
    store: Store,
    config: AppConfig,
    shop: ShopConfig,
    *,
    connector: Connector | None = None,
    dry_run: bool = False,
    force: bool = False,
    untag: bool = False,
    run_id: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> PushResult:
    """Bring one shop's managed tags in line with its segments (or remove them all).

    The caller holds the shop's lock (`push_shops`, `run_shop`).

    Args:
        store: the open store.
        config: the app config.
        shop: the shop to push to.
        connector: an open connector to reuse (one is made, and closed, when None).
        dry_run: compute the plan only; nothing is written anywhere.
        force: go past the safety limit (`push.max_change_share`).
        untag: remove every managed tag; the safety limit does not apply.
        run_id: the `sync_run` row the push_log rows belong to.
        batch_size: changes per apply() call and per store transaction.

    Returns:
        The plan and what was applied; per-customer failures are counted, not raised.

    Raises:
        PushRefused: the plan exceeds the safety limit and `force` is false.
        ShopcrmError: the platform failed for a whole batch (auth, unavailable); the batches
            before it are applied and logged.
    """
    with store.session() as session:
        plan = plan_push(session, config, shop, untag=untag)
        shop_id = _shop_id(session, shop.name)
    result = PushResult(shop=shop.name, dry_run=dry_run, plan=plan)
    own = connector is None
    connector = connector or make_connector(shop, config)  # building one sends no request
    try:
        if not getattr(connector, "supports_tags", True):
            result.taggable = False
            result.ok = True
            log.info("shop %s: platform cannot be tagged; push skipped", shop.name)
            return result
        if not (dry_run or force or untag):
            check_limit(plan, config, shop)
        if dry_run or shop_id is None:
            result.ok = True
            return result
        for start in range(0, len(plan.changes), batch_size):
            batch = plan.changes[start : start + batch_size]
            results, error = _apply_batch(connector, batch)
            missing = f"not applied: {error}" if error else "no result from the connector"
            with store.session() as session:
                _record_batch(session, shop_id, run_id, batch, results, missing)
            _count(result, batch, results)
            if error is not None:
                raise error
    finally:
        if own:
            connector.close()
    result.ok = True
    log.info(
        "shop %s: pushed tags to %d customers (%d added, %d removed, %d failed)",
        shop.name,
        result.applied,
        result.tags_added,
        result.tags_removed,
        result.failed,
        extra={"shop": shop.name},
    )
    return result


def _count(
    result: PushResult, batch: Sequence[PlannedChange], results: dict[str, TagResult]
) -> None:
    for planned in batch:
        outcome = results.get(planned.change.customer_platform_id)
        if outcome is not None and outcome.ok:
            result.applied += 1
            result.tags_added += len(planned.change.add)
            result.tags_removed += len(planned.change.remove)
        else:
            result.failed += 1


def push_details(push: PushResult | None) -> dict[str, Any]:
    """What a push adds to its `sync_run` row (read back by `shopcrm status`)."""
    return {
        "segments": push.plan.segment_sizes if push and push.plan else {},
        "tags_added": push.tags_added if push else 0,
        "tags_removed": push.tags_removed if push else 0,
        "push_failed": push.failed if push else 0,
    }


def _recorded_push(store: Store, config: AppConfig, shop: ShopConfig, **options: Any) -> PushResult:
    """A push or untag outside `run`, in a `sync_run` row of its own kind; a dry run is not
    recorded, since it changes nothing."""
    with store.session() as session:
        shop_id = _shop_id(session, shop.name)
    if options.get("dry_run") or shop_id is None:
        return push_shop(store, config, shop, **options)
    clock = time.monotonic()
    run_id = start_run(store, shop_id, "untag" if options.get("untag") else "push", utcnow())
    try:
        result = push_shop(store, config, shop, run_id=run_id, **options)
    except ShopcrmError as exc:
        outcome = "refused" if isinstance(exc, PushRefused) else "failed"
        finish_run(store, run_id, outcome=outcome, started=clock, error=str(exc))
        raise
    finish_run(
        store,
        run_id,
        outcome="success" if result.ok and not result.failed else "failed",
        started=clock,
        error=f"{result.failed} customer(s) failed (see push_log)" if result.failed else None,
        **push_details(result),
    )
    return result


def push_shops(
    store: Store, config: AppConfig, shop_name: str | None = None, **options: Any
) -> list[PushResult]:
    """Push every selected shop under its run lock; one refused, locked or failing never
    stops the others.

    Args:
        store: the open store.
        config: the app config.
        shop_name: only this shop (default: every enabled shop).
        **options: passed to `push_shop` (dry_run, force, untag).

    Returns:
        One result per shop; `error` (and `refused` or `locked`) tell what went wrong.
    """
    results = []
    for shop in config.selected(shop_name):
        try:
            with shop_lock(store, shop.name):
                results.append(_recorded_push(store, config, shop, **options))
        except ShopcrmError as exc:
            log.error("shop %s: push failed: %s", shop.name, exc, extra={"shop": shop.name})
            results.append(
                PushResult(
                    shop=shop.name,
                    error=redact(str(exc)),
                    refused=isinstance(exc, PushRefused),
                    locked=isinstance(exc, LockHeld),
                )
            )
    return results
