"""Pull: connector pages -> store, each page and its checkpoint in one transaction.

Incremental by `updated_at`: a stream restarts at its high-water mark minus the overlap window
(upserts make the overlap harmless). The saved mark never passes the time the sync started, so
records changed while we page are caught by the next run. A crash at any point resumes without
loss or duplication: the store holds whole pages and a mark that covers only stored data.
`--full` re-reads everything and then marks records the platform no longer has as deleted.

`pull_shops` (the `sync` command) holds each shop's lock (`sync.lock`) while it pulls it, and
refuses a shop another process is working on; `pull_shop` assumes its caller holds the lock
(`run` pulls under the lock it holds for the whole run).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shopcrm.config.schema import AppConfig, ShopConfig
from shopcrm.connectors.base import Connector
from shopcrm.connectors.registry import make_connector
from shopcrm.errors import LockHeld, RateLimited, ShopcrmError
from shopcrm.log import redact
from shopcrm.records import Page, ShopFacts
from shopcrm.store.db import Store
from shopcrm.store.models import SyncRun
from shopcrm.store.totals import record_totals
from shopcrm.store.upsert import (
    CUSTOMERS,
    ORDERS,
    ensure_shop,
    load_checkpoint,
    mark_missing_deleted,
    save_checkpoint,
    write_page,
)
from shopcrm.sync.lock import shop_lock
from shopcrm.sync.progress import LogProgress, Progress

log = logging.getLogger(__name__)

STREAMS = (CUSTOMERS, ORDERS)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PullResult:
    shop: str
    platform: str
    ok: bool = False
    customers: int = 0
    orders: int = 0
    requests: int = 0
    duration_s: float = 0.0
    deleted: dict[str, int] = field(default_factory=dict)
    facts: ShopFacts | None = None
    error: str | None = None
    error_type: str | None = None
    # failures that pass by themselves (the command exits 75, not 1): another process held
    # the shop's lock, or the platform kept rate-limiting it (RateLimited: Shopify throttled
    # past `sync.max_throttle_wait`, a 429 past the retries)
    locked: bool = False
    throttled: bool = False
    run_id: int | None = None


def start_run(store: Store, shop_id: int, kind: str, now: datetime) -> int:
    """Open a sync_run row (outcome "running") and return its id."""
    with store.session() as session:
        run = SyncRun(shop_id=shop_id, kind=kind, started_at=now, outcome="running")
        session.add(run)
        session.flush()
        assert run.id is not None
        return run.id


def finish_run(
    store: Store,
    run_id: int,
    *,
    outcome: str,
    started: float,
    error: str | None = None,
    **counts: Any,
) -> None:
    """Close a sync_run row with its outcome, duration, counts and (redacted) error."""
    with store.session() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        run.finished_at = utcnow()
        run.duration_s = round(time.monotonic() - started, 3)
        run.outcome = outcome
        run.error = redact(error) if error else None
        details = dict(run.details)
        for key, value in counts.items():
            if key in ("customers", "orders", "requests"):
                setattr(run, key, value)
            else:
                details[key] = value
        run.details = details


def _pages(connector: Connector, stream: str, since: datetime | None) -> Iterator[Page[Any]]:
    return connector.customers(since) if stream == CUSTOMERS else connector.orders(since)


def pull_shop(
    store: Store,
    config: AppConfig,
    shop: ShopConfig,
    *,
    full: bool = False,
    connector: Connector | None = None,
    progress: Progress | None = None,
    now: Callable[[], datetime] = utcnow,
    run_kind: str = "sync",
) -> PullResult:
    """Pull one shop's customers and orders into the store; never raises for a shop failure.

    The outcome, counts and any error are written to `sync_run` and returned. The caller
    holds the shop's lock (`pull_shops`, `run_shop`).
    """
    result = PullResult(shop=shop.name, platform=shop.platform)
    started_clock = time.monotonic()
    started = now()
    with store.session() as session:
        shop_id = ensure_shop(session, shop.name, shop.platform, now=started)
    run_id = start_run(store, shop_id, run_kind, started)
    result.run_id = run_id
    progress = progress or LogProgress()
    overlap: timedelta = config.defaults.sync.overlap_window
    own_connector = connector is None
    try:
        connector = connector or make_connector(shop, config)
        facts = connector.check()
        result.facts = facts
        for warning in facts.warnings:
            log.warning("shop %s: %s", shop.name, warning, extra={"shop": shop.name})
        with store.session() as session:
            ensure_shop(
                session,
                shop.name,
                shop.platform,
                now=started,
                domain=facts.domain,
                currency=facts.currency,
                timezone=facts.timezone,
            )
        for stream in STREAMS:
            with store.session() as session:
                state = load_checkpoint(session, shop_id, stream)
                mark = state.high_water_mark if state else None
            since = None if full or mark is None else mark - overlap
            seen: set[str] | None = set() if full else None
            total = 0
            for page in _pages(connector, stream, since):
                with store.session() as session:
                    written = write_page(session, shop_id, stream, page, now=now(), cap=started)
                total += written.records
                if seen is not None:
                    seen.update(r.platform_id for r in page.records)
                progress.page(shop.name, stream, written.records, total)
            with store.session() as session:
                if seen is not None:
                    result.deleted[stream] = mark_missing_deleted(session, shop_id, stream, seen)
                save_checkpoint(
                    session,
                    shop_id,
                    stream,
                    high_water_mark=started,
                    cursor=None,
                    now=now(),
                    success=True,
                )
            setattr(result, stream, total)
        result.ok = True
    except ShopcrmError as exc:
        result.error, result.error_type = redact(str(exc)), type(exc).__name__
        result.throttled = isinstance(exc, RateLimited)
    except Exception as exc:  # one shop's bug must not stop the others; recorded in sync_run
        log.exception("shop %s: unexpected error during sync", shop.name)
        result.error = redact(f"{type(exc).__name__}: {exc}")
        result.error_type = type(exc).__name__
    finally:
        if connector is not None:
            result.requests = connector.requests_made
            if own_connector:
                connector.close()
        result.duration_s = round(time.monotonic() - started_clock, 3)
        with store.session() as session:
            totals = record_totals(session, shop_id)
        finish_run(
            store,
            run_id,
            outcome="success" if result.ok else "failed",
            started=started_clock,
            error=result.error,
            customers=result.customers,
            orders=result.orders,
            requests=result.requests,
            deleted=result.deleted,
            totals=totals,
        )
    if result.ok:
        log.info(
            "shop %s: synced %d customers, %d orders in %.1fs (%d requests)",
            shop.name,
            result.customers,
            result.orders,
            result.duration_s,
            result.requests,
            extra={"shop": shop.name},
        )
    else:
        log.error("shop %s: sync failed: %s", shop.name, result.error, extra={"shop": shop.name})
    return result


def pull_shops(
    store: Store,
    config: AppConfig,
    shop_name: str | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
) -> list[PullResult]:
    """Pull every selected shop under its lock; one failing or locked never stops the others.

    Returns:
        One result per shop; a shop another process holds is not pulled (`locked`, its
        `error` naming the holder).
    """
    results = []
    for shop in config.selected(shop_name):
        try:
            with shop_lock(store, shop.name):
                results.append(pull_shop(store, config, shop, full=full, progress=progress))
        except LockHeld as exc:
            log.warning("shop %s: %s", shop.name, exc, extra={"shop": shop.name})
            results.append(
                PullResult(
                    shop=shop.name,
                    platform=shop.platform,
                    error=str(exc),
                    error_type=type(exc).__name__,
                    locked=True,
                )
            )
    return results
