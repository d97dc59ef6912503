"""What `shopcrm status` shows of each shop, read from the store, the config and the locks.

Everything comes from rows the commands already write: `sync_run` (each sync, run, push and
untag, with the record totals a sync leaves and the segment sizes a push planned),
`sync_state` (each stream's checkpoint) and `segment_membership` (the sizes now). A change is
"now" minus what the run before the latest one recorded, so it reads as "since the previous
run". Nothing here writes.

Health (`--check`): a shop is a problem when its latest sync or run failed, when it has never
synced, or when its oldest stream's last success is older than twice its schedule's period.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from shopcrm.config.schema import AppConfig, ShopConfig
from shopcrm.jsonable import jsonable
from shopcrm.store.db import Store
from shopcrm.store.models import SegmentMembership, Shop, SyncRun, SyncState
from shopcrm.store.totals import record_totals
from shopcrm.sync.lock import shop_held

SYNC_KINDS = ("sync", "run")  # the kinds of run that pull from the shop
PUSH_KINDS = ("push", "untag", "run")  # the kinds that may have changed tags on it
RECENT_RUNS = 20  # rows of sync_run read per shop: enough to find the latest of each kind


@dataclass
class RunStatus:
    kind: str
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    outcome: str
    error: str | None  # one line


@dataclass
class StreamStatus:
    last_success_at: datetime | None
    high_water_mark: datetime | None
    age_s: float | None  # how old the newest data is: now minus the high-water mark


@dataclass
class PushStatus:
    kind: str
    at: datetime
    outcome: str
    tags_added: int
    tags_removed: int
    failed: int


@dataclass
class Count:
    now: int
    change: int | None  # since the previous run; None without one to compare with


@dataclass
class ShopStatus:
    name: str
    platform: str
    enabled: bool
    schedule: str
    locked: bool
    next_run_at: datetime | None
    last_run: RunStatus | None = None
    streams: dict[str, StreamStatus] = field(default_factory=dict)
    counts: dict[str, Count] = field(default_factory=dict)
    last_push: PushStatus | None = None
    segments: dict[str, Count] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def schedule_period(config: AppConfig, shop: ShopConfig, now: datetime) -> timedelta:
    """The time between two scheduled runs (for a cron schedule, the next two fire times)."""
    schedule = config.schedule(shop)
    if schedule.interval is not None:
        return schedule.interval
    trigger = schedule.trigger()
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    return second - first


def _next_run(config: AppConfig, shop: ShopConfig, last: datetime | None, now: datetime) -> Any:
    """When the schedule would run the shop next: an interval counts from the last run."""
    schedule = config.schedule(shop)
    if schedule.interval is not None:
        return max(now, last + schedule.interval) if last else now
    return schedule.trigger().get_next_fire_time(None, now)


def _describe_schedule(config: AppConfig, shop: ShopConfig) -> str:
    schedule = config.schedule(shop)
    return f"every {schedule.every}" if schedule.every else f"cron {schedule.cron}"


def _one_line(text: str | None) -> str | None:
    return " ".join(text.split()) if text else None


def shop_statuses(
    store: Store, config: AppConfig, shop_name: str | None = None, *, now: datetime | None = None
) -> list[ShopStatus]:
    """The status of the shop called `shop_name`, or of every configured shop."""
    now = now or datetime.now(UTC)
    shops = [config.shop(shop_name)] if shop_name else list(config.shops)
    with store.session() as session:
        ids = dict(session.execute(select(Shop.name, Shop.id)).all())
        out = []
        for shop in shops:
            status = ShopStatus(
                name=shop.name,
                platform=shop.platform,
                enabled=shop.enabled,
                schedule=_describe_schedule(config, shop),
                locked=shop_held(config.database, shop.name),
                next_run_at=None,
            )
            shop_id = ids.get(shop.name)
            if shop_id is not None:
                _fill(session, status, shop_id, now)
            last_start = status.last_run.started_at if status.last_run else None
            if shop.enabled:
                status.next_run_at = _next_run(config, shop, last_start, now)
                status.problems = _problems(config, shop, status, now)
            out.append(status)
    return out


def _fill(session: Any, status: ShopStatus, shop_id: int, now: datetime) -> None:
    runs = (
        session.execute(
            select(SyncRun)
            .where(SyncRun.shop_id == shop_id)
            .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
            .limit(RECENT_RUNS)
        )
        .scalars()
        .all()
    )
    pulls = [r for r in runs if r.kind in SYNC_KINDS]
    if pulls:
        last = _enclosing_run(pulls)
        status.last_run = RunStatus(
            last.kind,
            last.started_at,
            last.finished_at,
            last.duration_s,
            last.outcome,
            _one_line(last.error),
        )
    for state in session.execute(select(SyncState).where(SyncState.shop_id == shop_id)).scalars():
        mark = state.high_water_mark
        status.streams[state.stream] = StreamStatus(
            state.last_success_at, mark, (now - mark).total_seconds() if mark else None
        )
    totals = [r.details["totals"] for r in runs if r.kind == "sync" and "totals" in r.details]
    for key, value in record_totals(session, shop_id).items():
        before = totals[1][key] if len(totals) > 1 else None
        status.counts[key] = Count(value, None if before is None else value - before)
    pushes = [
        r
        for r in runs
        if r.kind in PUSH_KINDS and "tags_added" in r.details and r.outcome != "running"
    ]
    if pushes:
        push = pushes[0]
        status.last_push = PushStatus(
            push.kind,
            push.finished_at or push.started_at,
            push.outcome,
            push.details["tags_added"],
            push.details["tags_removed"],
            push.details.get("push_failed", 0),
        )
    planned = [r.details["segments"] for r in pushes if r.details.get("segments")]
    sizes = dict(
        session.execute(
            select(SegmentMembership.segment, func.count())
            .where(SegmentMembership.shop_id == shop_id)
            .group_by(SegmentMembership.segment)
        ).all()
    )
    before_sizes = planned[1] if len(planned) > 1 else None
    for name in sorted(set(sizes) | set(before_sizes or {})):
        size = int(sizes.get(name, 0))
        change = None if before_sizes is None else size - int(before_sizes.get(name, 0))
        status.segments[name] = Count(size, change)


def _enclosing_run(pulls: list[SyncRun]) -> SyncRun:
    """The latest pull, or the `run` it was the first step of (its start, duration, outcome)."""
    latest = pulls[0]
    for row in pulls[1:]:
        if row.kind == "run" and row.started_at <= latest.started_at:
            if row.finished_at is None or row.finished_at >= latest.started_at:
                return row
            break
    return latest


def _problems(config: AppConfig, shop: ShopConfig, status: ShopStatus, now: datetime) -> list[str]:
    run = status.last_run
    if run is None:
        return [f"shop {shop.name}: never synced"]
    problems = []
    if run.outcome not in ("success", "running"):
        problems.append(
            f"shop {shop.name}: last {run.kind} {run.outcome} at {run.started_at:%Y-%m-%d %H:%M}"
            f" UTC: {run.error or 'no error recorded'}"
        )
    successes = [s.last_success_at for s in status.streams.values()]
    if not successes or None in successes:
        problems.append(f"shop {shop.name}: no stream has synced successfully yet")
        return problems
    oldest = min(s for s in successes if s is not None)
    period = schedule_period(config, shop, now)
    if now - oldest > 2 * period:
        problems.append(
            f"shop {shop.name}: data is {_age(now - oldest)} old, more than twice its schedule "
            f"({status.schedule})"
        )
    return problems


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def age_text(seconds: float | None) -> str:
    """How old, in words a person reads at a glance."""
    return "-" if seconds is None else _age(timedelta(seconds=seconds))
